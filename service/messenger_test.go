package service_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// messengerNode starts a standalone node (blocks built as transactions
// arrive) with the minimal registration work.
func messengerNode(t *testing.T) *node.Node {
	t.Helper()
	work := config.MinimalRegistration()
	n, err := node.Start(node.Config{
		DataDir:        t.TempDir(),
		HTTPAddr:       "127.0.0.1:0",
		ChainOverrides: node.ChainOverrides{Registration: &work},
		Handler:        service.NewHandler,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		DisableWebUI:   true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newTestClient(url string) *service.Client {
	return service.NewClient(url, service.WithTimeout(30*time.Second), service.WithPollInterval(2*time.Millisecond))
}

// user is an identity with a Messenger over a file store.
type user struct {
	t    *testing.T
	name string
	id   *crypto.Identity
	dir  string
	url  string
	m    *service.Messenger
}

func newUser(t *testing.T, url, name string) *user {
	t.Helper()
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	u := &user{t: t, name: name, id: id, dir: filepath.Join(t.TempDir(), name+".chat"), url: url}
	u.open()
	reg, err := u.m.Register(testCtx(t))
	if err != nil {
		t.Fatalf("%s: Register: %v", name, err)
	}
	if reg.Already || reg.Prekeys == nil || reg.Prekeys.PublishedSigned == 0 || reg.Prekeys.PublishedOneTime != service.PrekeyTarget {
		t.Fatalf("%s: Register = %+v, prekeys %+v", name, reg, reg.Prekeys)
	}
	return u
}

// testStoreLogN is the scrypt work factor of the tests' chat stores (the
// lowest: they open stores many times).
const testStoreLogN = 10

func (u *user) open(opts ...service.MessengerOption) {
	u.t.Helper()
	m, err := service.OpenMessenger(testCtx(u.t), newTestClient(u.url), u.id, u.dir, "pass of "+u.name,
		append([]service.MessengerOption{service.WithStoreWorkFactor(testStoreLogN)}, opts...)...)
	if err != nil {
		u.t.Fatalf("%s: OpenMessenger: %v", u.name, err)
	}
	u.m = m
	u.t.Cleanup(func() { m.Close() })
}

// restart closes the Messenger and opens a new one on the same store, as
// a process that exits and starts again.
func (u *user) restart() {
	u.t.Helper()
	if err := u.m.Close(); err != nil {
		u.t.Fatal(err)
	}
	u.open()
}

func (u *user) send(session ids.ID, text string) *service.SendResult {
	u.t.Helper()
	res, err := u.m.Send(testCtx(u.t), session, []byte(text))
	if err != nil {
		u.t.Fatalf("%s: Send %q: %v", u.name, text, err)
	}
	msg := res.Message()
	if msg == nil || msg.Status != service.TxAccepted || msg.Seq == 0 {
		u.t.Fatalf("%s: Send %q: %+v", u.name, text, res)
	}
	return res
}

type line struct {
	Seq    uint64
	Sender string
	Text   string
}

// read reads the whole session and fails on a message that did not open.
func (u *user) read(session ids.ID) []line {
	u.t.Helper()
	var out []line
	var after uint64
	for {
		page, err := u.m.Read(testCtx(u.t), session, after, 0)
		if err != nil {
			u.t.Fatalf("%s: Read: %v", u.name, err)
		}
		for _, r := range page.Messages {
			if r.Err != nil {
				u.t.Fatalf("%s: message %d: %v", u.name, r.Seq, r.Err)
			}
			out = append(out, line{r.Seq, r.Sender, string(r.Text)})
		}
		if !page.More {
			return out
		}
		after = page.Next
	}
}

func TestMessengerConversation(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	alice := newUser(t, n.URL(), "alice")
	bob := newUser(t, n.URL(), "bob")
	ctx := testCtx(t)

	created, err := alice.m.CreateSession(ctx, []string{bob.id.SessionID}, []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if created.Status != service.TxAccepted || len(created.Claimed) != 1 || created.Claimed[0] == 0 {
		t.Fatalf("CreateSession = %+v", created)
	}
	s := created.Session
	alice.send(s, "hi bob")
	alice.send(s, "are you there?")
	// Bob has not accepted: nothing in his inbox, but the session reads.
	if in, err := bob.m.Inbox(ctx, 0, 0); err != nil || len(in.Messages) != 0 {
		t.Fatalf("bob's inbox before accepting: %+v, %v", in, err)
	}
	want := []line{{1, alice.id.SessionID, "hi bob"}, {2, alice.id.SessionID, "are you there?"}}
	if got := bob.read(s); !slices.Equal(got, want) {
		t.Fatalf("bob reads %+v, want %+v", got, want)
	}
	reqs, err := bob.m.Requests(ctx, 0, 0)
	if err != nil || len(reqs.Requests) != 1 || reqs.Requests[0].Session != s {
		t.Fatalf("Requests = %+v, %v", reqs, err)
	}
	if _, err := bob.m.Accept(ctx, s); err != nil {
		t.Fatal(err)
	}
	bob.send(s, "yes, here")
	// Bob restarts mid-conversation: his store keeps the ratchet.
	bob.restart()
	alice.send(s, "good")
	bob.send(s, "and again")
	want = append(want, line{3, bob.id.SessionID, "yes, here"}, line{4, alice.id.SessionID, "good"}, line{5, bob.id.SessionID, "and again"})
	for _, u := range []*user{alice, bob} {
		if got := u.read(s); !slices.Equal(got, want) {
			t.Fatalf("%s reads %+v, want %+v", u.name, got, want)
		}
	}
	// A second read comes from the archive (the keys are gone).
	if got := bob.read(s); !slices.Equal(got, want) {
		t.Fatalf("bob reads again %+v", got)
	}
	in, err := alice.m.Inbox(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, r := range in.Messages {
		texts = append(texts, string(r.Text))
	}
	if !slices.Equal(texts, []string{"yes, here", "and again"}) {
		t.Fatalf("alice's inbox: %q", texts)
	}
	h, err := bob.m.History(ctx, s)
	if err != nil || len(h) != 5 {
		t.Fatalf("History: %d, %v", len(h), err)
	}
	list, err := alice.m.Sessions(ctx, 0, 0)
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].LastSeq != 5 || list.Sessions[0].ReadThrough != 5 {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
}

func TestMessengerGroup(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	users := []*user{newUser(t, n.URL(), "a"), newUser(t, n.URL(), "b"), newUser(t, n.URL(), "c")}
	ctx := testCtx(t)
	created, err := users[0].m.CreateSession(ctx, []string{users[1].id.SessionID, users[2].id.SessionID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := created.Session
	var want []line
	for round := range 2 {
		for _, u := range users {
			text := u.name + " says " + strings.Repeat("!", round+1)
			res := u.send(s, text)
			want = append(want, line{res.Message().Seq, u.id.SessionID, text})
		}
	}
	for _, u := range users {
		if got := u.read(s); !slices.Equal(got, want) {
			t.Fatalf("%s reads %+v, want %+v", u.name, got, want)
		}
	}
}

func TestMessengerRefusesOversize(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	alice := newUser(t, n.URL(), "alice")
	_, err := alice.m.Send(testCtx(t), ids.GenerateTestID(), make([]byte, chat.MaxPlaintextSize+1))
	if !errors.Is(err, chat.ErrPlaintextTooLarge) {
		t.Fatalf("Send of %d bytes: %v", chat.MaxPlaintextSize+1, err)
	}
	_ = tx.ContactTrusted
}

// TestMessengerPinsChain: a Messenger's store keeps the chain it first
// opened on, and a node that names another chain is refused, so that a
// node cannot carry the identity's signed transactions and its sessions'
// state to another chain across restarts.
func TestMessengerPinsChain(t *testing.T) {
	home, other := messengerNode(t), messengerNode(t)
	alice := newUser(t, home.URL(), "alice")
	if err := alice.m.Close(); err != nil {
		t.Fatal(err)
	}
	c := newTestClient(other.URL())
	otherChain, err := c.ChainID(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if otherChain == alice.m.ChainID() {
		t.Fatal("the two nodes serve the same chain")
	}
	_, err = service.OpenMessenger(testCtx(t), c, alice.id, alice.dir, "pass of alice", service.WithStoreWorkFactor(testStoreLogN))
	if !errors.Is(err, service.ErrUntrustedNode) || !strings.Contains(err.Error(), otherChain.String()) {
		t.Fatalf("OpenMessenger on another chain: %v", err)
	}
	alice.open() // its own chain still opens
	if alice.m.ChainID() == otherChain {
		t.Fatal("the store adopted the other chain")
	}
}
