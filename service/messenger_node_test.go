package service_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// hookTransport lets a test see, and change, the result of each JSON-RPC
// call a client makes (single or batched): a node between the client and
// the real one.
type hookTransport struct {
	mu   sync.Mutex
	hook func(method string, params, result json.RawMessage) json.RawMessage // nil result: keep
}

type rpcCall struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
	ID     json.RawMessage `json:"id"`
}

type rpcReply struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

func (h *hookTransport) set(f func(method string, params, result json.RawMessage) json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hook = f
}

func (h *hookTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(r)
	h.mu.Lock()
	hook := h.hook
	h.mu.Unlock()
	if err != nil || hook == nil {
		return resp, err
	}
	out, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	batch := len(body) > 0 && bytes.TrimSpace(body)[0] == '['
	var calls []rpcCall
	var replies []rpcReply
	if batch {
		_ = json.Unmarshal(body, &calls)
		_ = json.Unmarshal(out, &replies)
	} else {
		var c rpcCall
		var rp rpcReply
		_ = json.Unmarshal(body, &c)
		_ = json.Unmarshal(out, &rp)
		calls, replies = []rpcCall{c}, []rpcReply{rp}
	}
	byID := map[string]rpcCall{}
	for _, c := range calls {
		byID[string(c.ID)] = c
	}
	for i := range replies {
		c := byID[string(replies[i].ID)]
		if replies[i].Result != nil {
			if nr := hook(c.Method[len("session."):], c.Params, replies[i].Result); nr != nil {
				replies[i].Result = nr
			}
		}
	}
	if batch {
		out, err = json.Marshal(replies)
	} else {
		out, err = json.Marshal(replies[0])
	}
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// openVia opens u's Messenger with a client whose calls go through h.
func (u *user) openVia(h *hookTransport, opts ...service.ClientOption) {
	u.t.Helper()
	c := service.NewClient(u.url, append([]service.ClientOption{service.WithTimeout(30 * time.Second),
		service.WithPollInterval(2 * time.Millisecond), service.WithHTTPClient(&http.Client{Transport: h})}, opts...)...)
	if u.m != nil {
		if err := u.m.Close(); err != nil {
			u.t.Fatal(err)
		}
	}
	m, err := service.OpenMessenger(testCtx(u.t), c, u.id, u.dir, "pass of "+u.name, service.WithStoreWorkFactor(testStoreLogN))
	if err != nil {
		u.t.Fatal(err)
	}
	u.m = m
	u.t.Cleanup(func() { m.Close() })
}

// TestMessengerDeadClaim: the one-time prekey Bob's handshake with Carol
// claims is taken by Dave between Bob's bundle and Bob's transaction. The
// chain refuses Bob's transaction; the Messenger reports it dead, the
// conversation plans the message again with a new bundle, and it lands
// once: Carol reads it, and no key of the dead envelope served twice.
func TestMessengerDeadClaim(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	url := n.URL()
	alice, bob, carol := newUser(t, url, "alice"), newUser(t, url, "bob"), newUser(t, url, "carol")
	created, err := alice.m.CreateSession(testCtx(t), []string{bob.id.SessionID, carol.id.SessionID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := created.Session
	alice.send(s, "welcome")
	bob.read(s)
	carol.read(s)
	// Bob is Carol's contact: the chain serves him her one-time prekeys.
	if _, err := carol.m.SetContact(testCtx(t), bob.id.SessionID, tx.ContactTrusted); err != nil {
		t.Fatal(err)
	}

	dave, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	c := newTestClient(url)
	r, err := c.Register(testCtx(t), dave)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAccepted(testCtx(t), r.TxID); err != nil {
		t.Fatal(err)
	}

	var taken atomic.Uint32
	var bundles atomic.Int32
	h := &hookTransport{}
	h.set(func(method string, params, result json.RawMessage) json.RawMessage {
		if method != "getPrekeyBundle" || !bytes.Contains(params, []byte(carol.id.SessionID)) {
			return nil
		}
		bundles.Add(1)
		if taken.Load() != 0 {
			return nil
		}
		var b service.PrekeyBundleReply
		if err := json.Unmarshal(result, &b); err != nil || b.OneTimePrekey == nil || b.SignedPrekey == nil {
			t.Errorf("carol's bundle for bob has no one-time prekey (%v)", err)
			return nil
		}
		// Dave claims it first.
		sid, _ := crypto.ParseSessionID(carol.id.SessionID)
		r, err := c.CreateSessionWithClaims(testCtx(t), dave, nil, []string{carol.id.SessionID},
			[]tx.Claim{{Participant: sid, SignedPrekeyID: b.SignedPrekey.ID, OneTimePrekeyID: b.OneTimePrekey.ID}})
		if err == nil {
			_, err = c.WaitAccepted(testCtx(t), r.TxID)
		}
		if err != nil {
			t.Errorf("dave's claim: %v", err)
		}
		taken.Store(b.OneTimePrekey.ID)
		return nil
	})
	bob.openVia(h)
	res := bob.send(s, "hi carol, hi alice")
	if taken.Load() == 0 || bundles.Load() != 2 {
		t.Fatalf("dave took prekey %d; bob fetched %d bundles of carol", taken.Load(), bundles.Load())
	}
	if len(res.Sent) != 1 {
		t.Fatalf("bob's send: %+v", res.Sent)
	}
	for _, u := range []*user{carol, alice} {
		got := u.read(s)
		if len(got) != 2 || got[1].Text != "hi carol, hi alice" || got[1].Sender != bob.id.SessionID {
			t.Fatalf("%s reads %+v", u.name, got)
		}
	}
	page, err := c.Messages(testCtx(t), s, 0, 0)
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("the session holds %d messages (%v), want 2: the dead transaction never landed", len(page.Messages), err)
	}
}

// TestMessengerClaimLog: a replenishment reads the claim log of the
// identity's prekeys, so claimed one-time secrets are counted apart (and
// go with their sessions); a log entry that its signed transaction does
// not back is refused as a lie.
func TestMessengerClaimLog(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	url := n.URL()
	alice, bob := newUser(t, url, "alice"), newUser(t, url, "bob")
	if _, err := alice.m.CreateSession(testCtx(t), []string{bob.id.SessionID}, nil); err != nil {
		t.Fatal(err)
	}
	h := &hookTransport{}
	bob.openVia(h)
	h.set(func(method string, params, result json.RawMessage) json.RawMessage {
		if method != "getClaims" {
			return nil
		}
		var r service.ClaimsReply
		if err := json.Unmarshal(result, &r); err != nil || len(r.Claims) != 1 {
			t.Errorf("claims: %s (%v)", result, err)
			return nil
		}
		r.Claims[0].OneTimePrekeyID++ // another of bob's prekeys than the one claimed
		b, _ := json.Marshal(r)
		return b
	})
	if _, err := bob.m.ReplenishPrekeys(testCtx(t)); !errors.Is(err, service.ErrUntrustedNode) {
		t.Fatalf("a claim log entry its transaction does not back: %v", err)
	}
	h.set(nil)
	rep, err := bob.m.ReplenishPrekeys(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if rep.HeldClaimed != 1 || rep.Held != service.PrekeyTarget-1 || rep.Unclaimed != service.PrekeyTarget-1 {
		t.Fatalf("bob's prekeys after alice's claim: %+v", rep)
	}
}

// TestMessengerReaderHeals: Bob only reads; once a day has passed since
// the first message he read, his Read sends a ratchet message (no content)
// so that Alice's next messages step against a fresh key of his.
func TestMessengerReaderHeals(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	url := n.URL()
	alice, bob := newUser(t, url, "alice"), newUser(t, url, "bob")
	created, err := alice.m.CreateSession(testCtx(t), []string{bob.id.SessionID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := created.Session
	alice.send(s, "one")
	bob.read(s)
	bobOnChain := func() int {
		page, err := newTestClient(url).Messages(testCtx(t), s, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, m := range page.Messages {
			if m.Author == bob.id.SessionID {
				k++
			}
		}
		return k
	}
	if k := bobOnChain(); k != 0 {
		t.Fatalf("bob sent %d messages before a heal was due", k)
	}
	later := time.Now().Add(chat.MaxChainAge + time.Hour)
	bob.openVia(&hookTransport{}, service.WithClock(func() time.Time { return later }))
	alice.send(s, "two")
	if got := bob.read(s); len(got) != 2 {
		t.Fatalf("bob reads %+v", got)
	}
	if k := bobOnChain(); k != 1 {
		t.Fatalf("bob's read sent %d messages, want one ratchet message", k)
	}
	alice.send(s, "three, against bob's fresh key")
	if got := bob.read(s); len(got) != 3 || got[2].Text != "three, against bob's fresh key" {
		t.Fatalf("bob reads %+v", got)
	}
	if h, err := bob.m.History(testCtx(t), s); err != nil || len(h) != 3 {
		t.Fatalf("bob's history lists %d messages (%v): the ratchet message is not one", len(h), err)
	}
}

// TestMessengerLostDevice: Bob loses his store and starts again with his
// identity alone. His new device publishes prekeys above the chain's IDs
// and retires the lost device's one-time prekeys (whose secrets are gone),
// so a new session with him works: Alice's handshake uses the new
// device's prekeys and Bob reads her.
func TestMessengerLostDevice(t *testing.T) {
	t.Parallel()
	n := messengerNode(t)
	url := n.URL()
	alice, bob := newUser(t, url, "alice"), newUser(t, url, "bob")
	old, err := bob.m.Prekeys(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := bob.m.Close(); err != nil {
		t.Fatal(err)
	}
	bob.m = nil
	bob.dir = filepath.Join(t.TempDir(), "bob-new.chat")
	bob.open()
	rep, err := bob.m.ReplenishPrekeys(testCtx(t))
	if err != nil {
		t.Fatalf("the new device's prekeys: %v", err)
	}
	if rep.PublishedSigned <= old.SignedPrekeyID || rep.PublishedOneTime != service.PrekeyTarget || rep.Unclaimed != service.PrekeyTarget {
		t.Fatalf("the new device published %+v (the lost one had %+v)", rep, old)
	}
	raw, err := newTestClient(url).RawPrekeyBundle(testCtx(t), bob.id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Unclaimed != service.PrekeyTarget || raw.LastOneTimeID != 2*service.PrekeyTarget {
		t.Fatalf("on chain: %d unclaimed, last one-time ID %d: the lost device's are not retired", raw.Unclaimed, raw.LastOneTimeID)
	}
	created, err := alice.m.CreateSession(testCtx(t), []string{bob.id.SessionID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	alice.send(created.Session, "hello, new device")
	if got := bob.read(created.Session); len(got) != 1 || got[0].Text != "hello, new device" {
		t.Fatalf("bob's new device reads %+v", got)
	}
}

// TestMessengerSealFromOutsider: a node lists, in Alice's session with
// Bob, a Seal envelope by Eve (sealed to both with the session's
// associated data; the chain would refuse her SendMessage). Bob's
// Messenger refuses it as the node's lie instead of showing Eve's text.
func TestMessengerSealFromOutsider(t *testing.T) {
	n := messengerNode(t)
	alice, bob := newUser(t, n.URL(), "alice"), newUser(t, n.URL(), "bob")
	eve, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := alice.m.CreateSession(testCtx(t), []string{bob.id.SessionID}, nil)
	if err != nil {
		t.Fatal(err)
	}
	env, err := crypto.Seal(eve, []*crypto.Identity{alice.id.PublicIdentity(), bob.id.PublicIdentity()}, []byte("eve, in your session"), service.MessageAD(cs.Session))
	if err != nil {
		t.Fatal(err)
	}
	h := &hookTransport{}
	h.set(func(method string, params, result json.RawMessage) json.RawMessage {
		var args service.MessagesArgs
		if method != "getMessages" || json.Unmarshal(params, &args) != nil || args.After != 0 {
			return nil
		}
		var p service.MessagesReply
		if err := json.Unmarshal(result, &p); err != nil || len(p.Messages) > 0 {
			return nil
		}
		p.Messages = []service.Message{{Target: cs.Session, Seq: 1, Position: 1 << 40, TxID: cs.TxID, Author: eve.SessionID, Height: 1, Timestamp: 1, Ciphertext: env}}
		p.Next = 1
		out, _ := json.Marshal(p)
		return out
	})
	bob.openVia(h)
	page, err := bob.m.Read(testCtx(t), cs.Session, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 || page.Messages[0].Text != nil || !errors.Is(page.Messages[0].Err, service.ErrUntrustedNode) {
		t.Fatalf("bob reads %+v", page.Messages)
	}
}

// TestMessengerSealReplay: Seal has no replay protection of its own, so
// the Messenger remembers the Seal envelopes it opened in a session: a
// node that lists one again at another position is refused, in the same
// read and after a restart.
func TestMessengerSealReplay(t *testing.T) {
	n := messengerNode(t)
	alice, bob := newUser(t, n.URL(), "alice"), newUser(t, n.URL(), "bob")
	// A session from before the protocol: created by a bare transaction.
	r, err := alice.m.Client().CreateSession(testCtx(t), alice.id, bob.id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.m.Client().WaitAccepted(testCtx(t), r.TxID); err != nil {
		t.Fatal(err)
	}
	session := r.Session
	env, err := crypto.Seal(alice.id, []*crypto.Identity{alice.id.PublicIdentity(), bob.id.PublicIdentity()}, []byte("yes, do it"), service.MessageAD(session))
	if err != nil {
		t.Fatal(err)
	}
	listed := func(seqs ...uint64) []service.Message {
		var out []service.Message
		for _, s := range seqs {
			out = append(out, service.Message{Target: session, Seq: s, Position: s, TxID: ids.ID{byte(s)}, Author: alice.id.SessionID, Height: 1, Timestamp: 1, Ciphertext: env})
		}
		return out
	}
	h := &hookTransport{}
	h.set(func(method string, params, result json.RawMessage) json.RawMessage {
		var args service.MessagesArgs
		if method != "getMessages" || json.Unmarshal(params, &args) != nil {
			return nil
		}
		var p service.MessagesReply
		switch args.After {
		case 0:
			p.Messages, p.Next = listed(1, 2), 2
		case 2:
			p.Messages, p.Next = listed(3), 3
		default:
			p.Next = args.After
		}
		out, _ := json.Marshal(p)
		return out
	})
	bob.openVia(h)
	page, err := bob.m.Read(testCtx(t), session, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 2 || string(page.Messages[0].Text) != "yes, do it" ||
		page.Messages[1].Text != nil || !errors.Is(page.Messages[1].Err, service.ErrUntrustedNode) {
		t.Fatalf("bob reads %+v", page.Messages)
	}
	bob.openVia(h) // a restart
	page, err = bob.m.Read(testCtx(t), session, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 1 || page.Messages[0].Text != nil || !errors.Is(page.Messages[0].Err, service.ErrUntrustedNode) {
		t.Fatalf("bob reads after a restart %+v", page.Messages)
	}
}
