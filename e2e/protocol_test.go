package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// goUser is a person using an app built on the Go client: a
// service.Messenger over a file store.
type goUser struct {
	t    *testing.T
	name string
	id   *crypto.Identity
	dir  string
	url  string
	m    *service.Messenger
}

// newGoUser makes an identity and registers it (with its prekeys)
// through the Messenger.
func newGoUser(t *testing.T, url, name string) *goUser {
	t.Helper()
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	u := &goUser{t: t, name: name, id: id, dir: filepath.Join(t.TempDir(), name+".chat"), url: url}
	u.open()
	reg, err := u.m.Register(ctx(t, time.Minute))
	if err != nil {
		t.Fatalf("%s: Register: %v", name, err)
	}
	if reg.Prekeys == nil || reg.Prekeys.PublishedSigned == 0 {
		t.Fatalf("%s: Register published no prekeys: %+v", name, reg)
	}
	return u
}

func (u *goUser) open() {
	u.t.Helper()
	m, err := service.OpenMessenger(ctx(u.t, time.Minute), newClient(u.url), u.id, u.dir, "passphrase of "+u.name)
	if err != nil {
		u.t.Fatalf("%s: OpenMessenger: %v", u.name, err)
	}
	u.m = m
	u.t.Cleanup(func() { m.Close() })
}

// restart closes the Messenger and opens it again on the same store (and
// the node at url), as an app that exits and starts again.
func (u *goUser) restart(url string) {
	u.t.Helper()
	if err := u.m.Close(); err != nil {
		u.t.Fatal(err)
	}
	u.url = url
	u.open()
}

func (u *goUser) send(session ids.ID, text string) uint64 {
	u.t.Helper()
	res, err := u.m.Send(ctx(u.t, time.Minute), session, []byte(text))
	if err != nil {
		u.t.Fatalf("%s: Send %q: %v", u.name, text, err)
	}
	msg := res.Message()
	if msg == nil || msg.Status != service.TxAccepted || msg.Seq == 0 {
		u.t.Fatalf("%s: Send %q: %+v", u.name, text, res.Sent)
	}
	return msg.Seq
}

// read reads the whole session and fails on any message that did not open.
func (u *goUser) read(session ids.ID) []plain {
	u.t.Helper()
	var out []plain
	var after uint64
	for {
		page, err := u.m.Read(ctx(u.t, time.Minute), session, after, 0)
		if err != nil {
			u.t.Fatalf("%s: Read: %v", u.name, err)
		}
		for _, r := range page.Messages {
			if r.Err != nil {
				u.t.Fatalf("%s: message %d of %s: %v", u.name, r.Seq, session, r.Err)
			}
			out = append(out, plain{r.Seq, r.Sender, string(r.Text)})
		}
		if !page.More {
			return out
		}
		after = page.Next
	}
}

// app is the user's app on the Go client: a Messenger over the same
// identity file and store as the user's sessionctl (one device; one of
// them at a time holds the store, so the app closes at the end of each of
// its calls).
func (u *cliUser) app(url string) *cliApp { return &cliApp{u: u, url: url} }

type cliApp struct {
	u   *cliUser
	url string
}

func (a *cliApp) with(f func(*goUser)) {
	a.u.t.Helper()
	m, err := service.OpenMessenger(ctx(a.u.t, time.Minute), newClient(a.url), a.u.identity(), chat.StoreDir(a.u.Identity), a.u.Passphrase)
	if err != nil {
		a.u.t.Fatalf("%s: OpenMessenger: %v", a.u.SessionID, err)
	}
	defer m.Close()
	f(&goUser{t: a.u.t, name: a.u.SessionID, id: m.Identity(), url: a.url, m: m})
}

func (a *cliApp) send(session ids.ID, text string) (seq uint64) {
	a.u.t.Helper()
	a.with(func(g *goUser) { seq = g.send(session, text) })
	return seq
}

func (a *cliApp) read(session ids.ID) (out []plain) {
	a.u.t.Helper()
	a.with(func(g *goUser) { out = g.read(session) })
	return out
}

// register registers a CLI user (identity and prekeys).
func (u *cliUser) register() {
	u.t.Helper()
	var out struct {
		Status  string         `json:"status"`
		Prekeys map[string]any `json:"prekeys"`
	}
	u.runJSON(&out, "register")
	if out.Status != service.TxAccepted || out.Prekeys == nil || out.Prekeys["publishedSigned"].(float64) == 0 {
		u.t.Fatalf("register: %+v", out)
	}
}

// send sends through the CLI and returns the message's sequence number.
func (u *cliUser) send(session ids.ID, text string) uint64 {
	u.t.Helper()
	var out struct {
		Status string `json:"status"`
		Seq    uint64 `json:"seq"`
	}
	u.runJSON(&out, "send", session.String(), text)
	if out.Status != service.TxAccepted || out.Seq == 0 {
		u.t.Fatalf("send %q: %+v", text, out)
	}
	return out.Seq
}

// TestProtocolConversation: two sessionctl users and an app on the Go
// client talk over a real sessiond with the forward-secret protocol: a
// two-party session both ways (CLI and Go), a group of three, a restart of
// the Go client mid-conversation and a restart of the node, each side's
// view of every session identical.
func TestProtocolConversation(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	proc := StartProcess(t, sessiondBin, dataDir)
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	alice.register()
	bob.register()
	carol := newGoUser(t, proc.URL, "carol")

	// Bob (CLI) and Carol (Go), both ways.
	pair := mustID(t, bob.write("session", "create", "--with", carol.id.SessionID).Session)
	var want []plain
	add := func(seq uint64, sender, text string) { want = append(want, plain{seq, sender, text}) }
	add(bob.send(pair, "hi carol, from the CLI"), bob.SessionID, "hi carol, from the CLI")
	add(carol.send(pair, "hi bob, from Go"), carol.id.SessionID, "hi bob, from Go")
	add(bob.send(pair, "how are you?"), bob.SessionID, "how are you?")
	carol.restart(proc.URL)
	add(carol.send(pair, "fine, after a restart"), carol.id.SessionID, "fine, after a restart")
	add(carol.send(pair, "and once more"), carol.id.SessionID, "and once more")
	add(bob.send(pair, "good"), bob.SessionID, "good")
	checkBoth(t, pair, want, []*cliUser{bob}, []*goUser{carol})

	// A group: Alice (CLI) with Bob (CLI) and Carol (Go).
	group := mustID(t, alice.write("session", "create", "--with", bob.SessionID, "--with", carol.id.SessionID).Session)
	var gwant []plain
	gadd := func(seq uint64, sender, text string) { gwant = append(gwant, plain{seq, sender, text}) }
	gadd(alice.send(group, "welcome, both"), alice.SessionID, "welcome, both")
	gadd(carol.send(group, "thanks (go)"), carol.id.SessionID, "thanks (go)")
	gadd(bob.send(group, "thanks (cli)"), bob.SessionID, "thanks (cli)")
	gadd(alice.send(group, "agenda: none"), alice.SessionID, "agenda: none")
	checkBoth(t, group, gwant, []*cliUser{alice, bob}, []*goUser{carol})

	// The node restarts mid-conversation; everyone goes on.
	if code, err := proc.Signal(syscall.SIGTERM, 30*time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	proc = StartProcess(t, sessiondBin, dataDir)
	alice.Node, bob.Node = proc.URL, proc.URL
	carol.restart(proc.URL)
	gadd(bob.send(group, "after the node restarted"), bob.SessionID, "after the node restarted")
	gadd(carol.send(group, "still here"), carol.id.SessionID, "still here")
	add(carol.send(pair, "and here"), carol.id.SessionID, "and here")
	checkBoth(t, group, gwant, []*cliUser{alice, bob}, []*goUser{carol})
	checkBoth(t, pair, want, []*cliUser{bob}, []*goUser{carol})

	// Bob's inbox: what the others sent him, in chain order, opened.
	inbox := bob.read("inbox")
	var texts []string
	for _, m := range inbox {
		if m.Sender == bob.SessionID {
			t.Fatalf("bob's own message in his inbox: %+v", m)
		}
		texts = append(texts, m.Text)
	}
	wantInbox := []string{"hi bob, from Go", "fine, after a restart", "and once more", "welcome, both", "thanks (go)", "agenda: none", "still here", "and here"}
	if !reflect.DeepEqual(texts, wantInbox) {
		t.Fatalf("bob's inbox:\n got %q\nwant %q", texts, wantInbox)
	}
	// The chain holds no Seal envelope and no plaintext.
	c := newClient(proc.URL)
	for _, s := range []ids.ID{pair, group} {
		page, err := c.Messages(ctx(t, 10*time.Second), s, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if !bytes.HasPrefix(m.Ciphertext, []byte("CH")) || bytes.Contains(m.Ciphertext, []byte("after the node")) {
				t.Fatalf("message %d of %s is not an envelope of the protocol", m.Seq, s)
			}
		}
	}
}

func mustID(t *testing.T, s string) ids.ID {
	t.Helper()
	id, err := ids.FromString(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return id
}

// checkBoth reads a session as every CLI and Go user and compares.
func checkBoth(t *testing.T, session ids.ID, want []plain, clis []*cliUser, gos []*goUser) {
	t.Helper()
	for _, u := range clis {
		if got := toPlain(u.read("read", session.String(), "--limit", "1000")); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads %s with the CLI:\n got %+v\nwant %+v", u.SessionID, session, got, want)
		}
	}
	for _, u := range gos {
		if got := u.read(session); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads %s with the Go client:\n got %+v\nwant %+v", u.name, session, got, want)
		}
	}
}

// start runs the CLI in the background; the returned function kills it
// (SIGKILL) and waits for it.
func (c *CLI) start(t *testing.T, args ...string) (kill func()) {
	t.Helper()
	cmd := exec.Command(c.Bin, args...)
	cmd.Env = []string{
		"SESSION_NODE=" + c.Node, "SESSION_IDENTITY=" + c.Identity, "SESSION_PASSPHRASE=" + c.Passphrase,
		"HOME=" + c.Home, "PATH=" + os.Getenv("PATH"),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("sessionctl %v still running 10s after SIGKILL", args)
		}
	}
}

// TestKillDuringSend: sessionctl is killed while its message is on its way
// (after the node took it, and before), and the user goes on: the message
// arrives exactly once, resent as the same transaction when the node never
// had it.
func TestKillDuringSend(t *testing.T) {
	t.Parallel()
	proc := StartProcess(t, sessiondBin, t.TempDir())
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	alice.register()
	bob.register()
	s := mustID(t, alice.write("session", "create", "--with", bob.SessionID).Session)
	alice.send(s, "first")

	proxy := newRPCProxy(t, proc.URL)
	viaProxy := alice.CLI
	viaProxy.Node = proxy.URL()
	killAt := func(forward bool, text string) {
		t.Helper()
		proxy.mu.Lock()
		proxy.hold = func(m string) (bool, bool) {
			if m == "sendMessage" {
				return forward, true
			}
			return true, false
		}
		proxy.mu.Unlock()
		kill := viaProxy.start(t, "send", s.String(), text)
		select {
		case <-proxy.held:
		case <-time.After(time.Minute):
			t.Fatal("sessionctl never sent its transaction")
		}
		kill()
		proxy.mu.Lock()
		proxy.hold = nil
		proxy.mu.Unlock()
	}

	// Killed after the node admitted the transaction, before the reply: the
	// next send finds it on chain and sends only the new message.
	killAt(true, "second, killed after the node had it")
	var out struct {
		Transactions []struct{ Resent bool } `json:"transactions"`
	}
	alice.runJSON(&out, "send", s.String(), "third")
	if len(out.Transactions) != 1 || out.Transactions[0].Resent {
		t.Fatalf("send after the kill sent %+v; want only the new message", out.Transactions)
	}

	// Killed before the node saw it: resend sends the same transaction.
	killAt(false, "fourth, killed before the node had it")
	nonceBefore, err := newClient(proc.URL).Nonce(ctx(t, 10*time.Second), alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	alice.runJSON(&out, "resend", s.String())
	if len(out.Transactions) != 1 || !out.Transactions[0].Resent {
		t.Fatalf("resend: %+v", out.Transactions)
	}
	if n, _ := newClient(proc.URL).Nonce(ctx(t, 10*time.Second), alice.SessionID); n != nonceBefore+1 {
		t.Fatalf("resend used %d transactions", n-nonceBefore)
	}
	var texts []string
	for _, m := range bob.read("read", s.String()) {
		texts = append(texts, m.Text)
	}
	if want := []string{"first", "second, killed after the node had it", "third", "fourth, killed before the node had it"}; !reflect.DeepEqual(texts, want) {
		t.Fatalf("bob reads %q\nwant %q", texts, want)
	}
}

// TestForwardSecrecyEndToEnd: every ciphertext of a session is recorded from
// the chain; after Bob (sessionctl) has read them, an attacker gets Bob's
// identity file, passphrase and message store, and opens none of the
// chain's copies. A copy taken before Bob read them opens them all (the
// test is not vacuous). Only Bob's archive still holds the history, as the
// README says.
func TestForwardSecrecyEndToEnd(t *testing.T) {
	t.Parallel()
	proc := StartProcess(t, sessiondBin, t.TempDir())
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	alice.register()
	bob.register()
	s := mustID(t, alice.write("session", "create", "--with", bob.SessionID).Session)
	texts := []string{"one", "two", "three"}
	for _, x := range texts {
		alice.send(s, x)
	}
	before := stealBob(t, bob) // before Bob read anything
	bob.read("read", s.String())
	bob.send(s, "a reply")
	texts = append(texts, "four", "five")
	alice.send(s, "four")
	alice.send(s, "five")
	bob.read("read", s.String())
	after := stealBob(t, bob)

	c := newClient(proc.URL)
	recorded := recordDeliveries(t, c, s, alice.SessionID)
	if len(recorded) != 5 {
		t.Fatalf("%d of alice's envelopes on chain, want 5", len(recorded))
	}
	if n := before.open(t, c, s, recorded[:3]); n != 3 {
		t.Fatalf("a copy of bob's state taken before he read opens %d of the 3 messages it had not read", n)
	}
	if n := after.open(t, c, s, recorded); n != 0 {
		t.Fatalf("an attacker with bob's keys, passphrase and store opened %d recorded messages", n)
	}
	// The archive is what keeps the history: Bob's, and the thief's copy.
	var archived []string
	for _, m := range bob.read("history", s.String()) {
		if m.Sender == alice.SessionID {
			archived = append(archived, m.Text)
		}
	}
	if !reflect.DeepEqual(archived, texts) {
		t.Fatalf("bob's history %q, want %q", archived, texts)
	}
	h, err := after.conv.History()
	if err != nil || len(h) != 6 {
		t.Fatalf("the stolen archive: %d messages, %v", len(h), err)
	}
}

// TestPostCompromiseEndToEnd: a thief copies Bob's identity file, store and
// passphrase mid-conversation and follows the chain from then on. What
// Alice sends before Bob speaks again opens with the copy (the test is not
// vacuous); once Bob has replied with fresh keys and Alice has answered
// him, nothing she sends opens with it, while Bob reads everything.
func TestPostCompromiseEndToEnd(t *testing.T) {
	t.Parallel()
	proc := StartProcess(t, sessiondBin, t.TempDir())
	c := newClient(proc.URL)
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	alice.register()
	bob.register()
	s := mustID(t, alice.write("session", "create", "--with", bob.SessionID).Session)
	alice.send(s, "one")
	bob.read("read", s.String())
	bob.send(s, "bob's first reply")
	alice.read("read", s.String())

	theft := len(recordDeliveries(t, c, s, ""))
	copyOfBob := stealBob(t, bob)
	alice.send(s, "two, before bob speaks again")
	bob.read("read", s.String())
	bob.send(s, "bob speaks, with a fresh ratchet key")
	alice.read("read", s.String())
	healed := []string{"three, after healing", "four", "five"}
	for _, x := range healed {
		alice.send(s, x)
	}
	var read []string
	for _, m := range bob.read("read", s.String()) {
		if m.Sender == alice.SessionID {
			read = append(read, m.Text)
		}
	}
	if want := append([]string{"one", "two, before bob speaks again"}, healed...); !reflect.DeepEqual(read, want) {
		t.Fatalf("bob reads %q, want %q", read, want)
	}

	recorded := recordDeliveries(t, c, s, "")
	opened, _ := openRecorded(t, c, copyOfBob.id, copyOfBob.store, s, nil, recorded[theft:])
	if want := []string{"two, before bob speaks again"}; !reflect.DeepEqual(opened, want) {
		t.Fatalf("the thief's copy of bob's state opened %q of what was sent after the theft, want only %q", opened, want)
	}
}

// stolen is what a thief takes from Bob's machine: copies of his identity
// file and message store, and his passphrase.
type stolen struct {
	id    *crypto.Identity
	store *chat.FileStore
	conv  *chat.Conversation
}

func stealBob(t *testing.T, bob *cliUser) *stolen {
	t.Helper()
	dir := t.TempDir()
	idPath := filepath.Join(dir, "bob.json")
	copyFile(t, bob.Identity, idPath)
	copyDir(t, chat.StoreDir(bob.Identity), chat.StoreDir(idPath))
	id, err := crypto.LoadIdentity(idPath, bob.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	store, err := chat.OpenFileStore(chat.StoreDir(idPath), bob.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return &stolen{id: id, store: store}
}

// open tries every recorded delivery with the stolen state and returns
// how many opened.
func (st *stolen) open(t *testing.T, c *service.Client, s ids.ID, recorded []*chat.Delivery) int {
	t.Helper()
	opened, conv := openRecorded(t, c, st.id, st.store, s, nil, recorded)
	st.conv = conv
	return len(opened)
}

// openRecorded opens recorded deliveries of session s as id with the chat
// store, in a conversation over participants (nil: the session's, as its
// creator signed them), in order, and returns the texts of those that
// opened (own envelopes left out) and the conversation.
func openRecorded(t *testing.T, c *service.Client, id *crypto.Identity, store chat.Store, s ids.ID, participants []string, recorded []*chat.Delivery) ([]string, *chat.Conversation) {
	t.Helper()
	chainID, err := c.ChainID(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifiedSession(ctx(t, 10*time.Second), s)
	if err != nil {
		t.Fatal(err)
	}
	sess := &chat.Session{ChainID: chainID, ID: s}
	if participants == nil {
		participants = v.Participants
		for _, c := range v.Claims {
			sess.Claims = append(sess.Claims, chat.Claim(c))
		}
	}
	for _, p := range participants {
		pub, err := c.PublicIdentity(ctx(t, 10*time.Second), p)
		if err != nil {
			t.Fatal(err)
		}
		sess.Participants = append(sess.Participants, pub)
	}
	dev, err := chat.NewDevice(id, chainID, store)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := dev.Conversation(sess)
	if err != nil {
		t.Fatal(err)
	}
	var opened []string
	for _, d := range recorded {
		m, err := conv.Open(time.Now(), d)
		if err == nil && !m.FromSelf {
			opened = append(opened, string(m.Plaintext))
		} else if err == nil || !isClosed(err) {
			t.Logf("delivery %d: %v", d.Position, err)
		}
	}
	return opened, conv
}

// isClosed reports the errors of an envelope whose keys are gone.
func isClosed(err error) bool {
	return errors.Is(err, chat.ErrReplay) || errors.Is(err, chat.ErrDecryptionFailed) || errors.Is(err, chat.ErrUnknownTarget) ||
		errors.Is(err, chat.ErrUnknownPrekey) || errors.Is(err, chat.ErrChainNotStarted)
}

// recordDeliveries records every envelope author (any author if empty)
// sent to a session, as the chain holds it: the ciphertext, position,
// author and claims of its signed transaction.
func recordDeliveries(t *testing.T, c *service.Client, s ids.ID, author string) []*chat.Delivery {
	t.Helper()
	page, err := c.Messages(ctx(t, 10*time.Second), s, 0, service.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	var out []*chat.Delivery
	for _, m := range page.Messages {
		if author != "" && m.Author != author {
			continue
		}
		g, err := c.Tx(ctx(t, 10*time.Second), m.TxID)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := tx.Parse(g.Tx)
		if err != nil {
			t.Fatal(err)
		}
		p := parsed.Payload.(*tx.SendMessage)
		d := &chat.Delivery{Envelope: p.Ciphertext, Position: m.Seq, Sender: parsed.Author}
		for _, c := range p.Claims {
			d.Claims = append(d.Claims, chat.Claim(c))
		}
		out = append(out, d)
	}
	return out
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		if info.Name() == "lock" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
