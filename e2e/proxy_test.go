package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// rpcProxy stands between clients (sessionctl, the Go client) and a node:
// it forwards JSON-RPC requests, single or batched, and can rewrite the
// result of any call, or hold a call (forwarded or not) until released.
// It plays the untrusted node.
type rpcProxy struct {
	t      *testing.T
	target string
	srv    *httptest.Server

	mu sync.Mutex
	// rewrite, if set, may replace a call's result: it gets the method
	// (without the namespace), the params and the node's result, and
	// returns the result to send, or nil to keep the node's.
	rewrite func(method string, params, result json.RawMessage) json.RawMessage
	// hold, if set, decides per call: forward it to the node or not; and
	// block its response until release is closed.
	hold func(method string) (forward, block bool)
	// held is signalled (non-blocking) each time a call is held.
	held    chan string
	release chan struct{}
	calls   map[string]int // calls seen per method
	asked   []string       // every call: method and params
}

func newRPCProxy(t *testing.T, target string) *rpcProxy {
	p := &rpcProxy{t: t, target: target, held: make(chan string, 16), release: make(chan struct{}), calls: map[string]int{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.mu.Lock()
		select {
		case <-p.release:
		default:
			close(p.release)
		}
		p.mu.Unlock()
		p.srv.Close()
	})
	return p
}

// URL is the proxy's JSON-RPC endpoint.
func (p *rpcProxy) URL() string { return p.srv.URL + "/rpc" }

func (p *rpcProxy) set(rewrite func(method string, params, result json.RawMessage) json.RawMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite = rewrite
}

func (p *rpcProxy) count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls[method]
}

// askedAbout reports whether a call of method had params containing s.
func (p *rpcProxy) askedAbout(method, s string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, a := range p.asked {
		if strings.HasPrefix(a, method+" ") && strings.Contains(a, s) {
			return true
		}
	}
	return false
}

type proxyCall struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
	ID      json.RawMessage `json:"id,omitempty"`
}

type proxyReply struct {
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   json.RawMessage `json:"error,omitempty"`
	ID      json.RawMessage `json:"id"`
}

func (p *rpcProxy) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	batch := len(bytes.TrimSpace(body)) > 0 && bytes.TrimSpace(body)[0] == '['
	var calls []proxyCall
	if batch {
		err = json.Unmarshal(body, &calls)
	} else {
		var c proxyCall
		err = json.Unmarshal(body, &c)
		calls = []proxyCall{c}
	}
	if err != nil {
		http.Error(w, "proxy: "+err.Error(), http.StatusBadRequest)
		return
	}
	methods := map[string]string{} // id -> method
	forward, block := true, false
	p.mu.Lock()
	hold, rewrite := p.hold, p.rewrite
	for _, c := range calls {
		m := c.Method
		if len(m) > len("session.") {
			m = m[len("session."):]
		}
		methods[string(c.ID)] = m
		p.calls[m]++
		p.asked = append(p.asked, m+" "+string(c.Params))
		if hold != nil {
			f, b := hold(m)
			forward, block = forward && f, block || b
		}
	}
	p.mu.Unlock()
	if block {
		for _, m := range methods {
			select {
			case p.held <- m:
			default:
			}
			break
		}
	}
	var resp []byte
	if forward {
		res, err := http.Post(p.target, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
		resp, err = io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
			return
		}
	}
	if block {
		select {
		case <-p.release:
		case <-r.Context().Done():
			return
		}
	}
	if !forward {
		http.Error(w, "proxy: not forwarded", http.StatusBadGateway)
		return
	}
	if rewrite != nil {
		resp = p.rewriteAll(resp, batch, calls, methods, rewrite)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(resp)
}

func (p *rpcProxy) rewriteAll(resp []byte, batch bool, calls []proxyCall, methods map[string]string,
	rewrite func(method string, params, result json.RawMessage) json.RawMessage) []byte {
	params := map[string]json.RawMessage{}
	for _, c := range calls {
		params[string(c.ID)] = c.Params
	}
	var replies []proxyReply
	if batch {
		if json.Unmarshal(resp, &replies) != nil {
			return resp
		}
	} else {
		var r proxyReply
		if json.Unmarshal(resp, &r) != nil {
			return resp
		}
		replies = []proxyReply{r}
	}
	for i := range replies {
		if replies[i].Result == nil {
			continue
		}
		if nr := rewrite(methods[string(replies[i].ID)], params[string(replies[i].ID)], replies[i].Result); nr != nil {
			replies[i].Result = nr
		}
	}
	var out []byte
	var err error
	if batch {
		out, err = json.Marshal(replies)
	} else {
		out, err = json.Marshal(replies[0])
	}
	if err != nil {
		p.t.Errorf("proxy: %v", err)
		return resp
	}
	return out
}

// editJSON decodes a JSON object, lets f change it and encodes it again.
func editJSON(t *testing.T, raw json.RawMessage, f func(map[string]any)) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Errorf("proxy: %v", err)
		return nil
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Errorf("proxy: %v", err)
		return nil
	}
	return b
}

// via returns the user as seen through another node URL (the same files).
func (u *cliUser) via(node string) *cliUser {
	v := *u
	v.Node = node
	return &v
}

// in returns the user bound to t (a subtest's).
func (u *cliUser) in(t *testing.T) *cliUser {
	v := *u
	v.t = t
	return &v
}

// readAny runs `read --json` and returns what it shows, errors included.
func (u *cliUser) readAny(args ...string) []shown {
	u.t.Helper()
	var out struct {
		Messages []shown `json:"messages"`
	}
	u.runJSON(&out, append([]string{"read"}, args...)...)
	return out.Messages
}

// wantAll checks that s contains every one of want.
func wantAll(t *testing.T, what, s string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(s, w) {
			t.Fatalf("%s: %q does not say %q", what, s, w)
		}
	}
}

// nothingSent returns a check that who's nonce (so: no transaction of
// theirs landed) and the message count of each session are what they are
// now.
func nothingSent(t *testing.T, c *service.Client, who string, sessions ...ids.ID) func() {
	t.Helper()
	nonce, err := c.Nonce(ctx(t, 10*time.Second), who)
	if err != nil {
		t.Fatal(err)
	}
	count := func() []int {
		var n []int
		for _, s := range sessions {
			page, err := c.Messages(ctx(t, 10*time.Second), s, 0, service.MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			n = append(n, len(page.Messages))
		}
		return n
	}
	before := count()
	return func() {
		t.Helper()
		if n, err := c.Nonce(ctx(t, 10*time.Second), who); err != nil || n != nonce {
			t.Fatalf("%s's nonce went from %d to %d (%v): something was sent", who, nonce, n, err)
		}
		if after := count(); !reflect.DeepEqual(after, before) {
			t.Fatalf("message counts went from %v to %v", before, after)
		}
	}
}

// texts lists the texts of messages shown, failing on any that did not
// open.
func texts(t *testing.T, in []shown) []string {
	t.Helper()
	var out []string
	for _, m := range in {
		if m.Error != "" {
			t.Fatalf("message %d did not open: %s", m.Seq, m.Error)
		}
		out = append(out, m.Text)
	}
	return out
}

// TestUntrustedNode is the untrusted-node scenario with the real binaries:
// a proxy between the clients (sessionctl, and the Go Messenger) and
// sessiond lies in every way a node can, and the clients refuse each lie
// with a clear error and send nothing; Eve, a registered identity the node
// works with, is never sealed to and opens nothing.
//
//   - participants: Eve added to getSession's list; another session's real
//     CreateSession (one that lists Eve, signed by the same creator) served
//     for this session; Eve's keys served for a participant's identity;
//   - prekeys: another identity's keys under a Session ID, Eve's signed or
//     one-time prekey transaction in a bundle, a tampered transaction, and
//     an old bundle replayed after a newer signed prekey was seen;
//   - deliveries: a message withheld (the handshake itself), one replayed
//     at a later position, two swapped, a ciphertext or an author replaced.
func TestUntrustedNode(t *testing.T) {
	t.Parallel()
	proc := StartProcess(t, sessiondBin, t.TempDir())
	c := newClient(proc.URL)
	proxy := newRPCProxy(t, proc.URL)
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	alice.register()
	bob.register()
	eve := newGoUser(t, proc.URL, "eve")
	aliceP, bobP := alice.via(proxy.URL()), bob.via(proxy.URL())

	s := mustID(t, alice.write("session", "create", "--with", bob.SessionID).Session)
	alice.send(s, "hello bob")
	// A group of Alice's with Eve in it: a real CreateSession signed by
	// Alice that lists Eve, which a node could serve for s. Eve opens
	// what is addressed to her (the check at the end is not blind).
	g := mustID(t, alice.write("session", "create", "--with", bob.SessionID, "--with", eve.id.SessionID).Session)
	alice.send(g, "to the group, eve included")
	if got := eve.read(g); len(got) != 1 || got[0].Text != "to the group, eve included" {
		t.Fatalf("eve reads her group: %+v", got)
	}
	group, err := c.Session(ctx(t, 10*time.Second), g)
	if err != nil {
		t.Fatal(err)
	}
	eveBundle, err := c.RawPrekeyBundle(ctx(t, 10*time.Second), eve.id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if eveBundle.SignedPrekey == nil || eveBundle.OneTimePrekey == nil {
		t.Fatalf("eve's bundle: %+v", eveBundle)
	}
	eveKeys := func(m map[string]any) {
		m["kemPublicKey"] = eve.id.KEMPublicKey
		m["dsaPublicKey"] = eve.id.DSAPublicKey
	}
	reencode := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	rewriteFor := func(method, who string, f func(map[string]any)) {
		proxy.set(func(m string, params, result json.RawMessage) json.RawMessage {
			if m != method || (who != "" && !bytes.Contains(params, []byte(who))) {
				return nil
			}
			return editJSON(t, result, f)
		})
	}
	honest := func() { proxy.set(nil) }

	t.Run("participants", func(t *testing.T) {
		defer honest()
		bob, bobP := bob.in(t), bobP.in(t)
		unchanged := nothingSent(t, c, bob.SessionID, s, g)
		lies := []struct {
			name string
			edit func(map[string]any)
			says string
		}{
			{"eve added to the list", func(m map[string]any) {
				m["participants"] = append(m["participants"].([]any), eve.id.SessionID)
			}, "the signed transaction"},
			{"another session's creation, which lists eve", func(m map[string]any) {
				m["createTx"] = reencode(group.CreateTx)
				m["participants"] = reencode(group.Participants)
			}, "creates " + g.String() + ", not " + s.String()},
		}
		for _, lie := range lies {
			rewriteFor("getSession", "", lie.edit)
			for _, args := range [][]string{{"send", s.String(), "for bob's eyes only"}, {"read", s.String()}} {
				wantAll(t, lie.name+": sessionctl "+args[0], bobP.fails(args...), "not trustworthy", lie.says)
			}
			// The Go Messenger over the same store refuses the same way.
			m, err := service.OpenMessenger(ctx(t, time.Minute), newClient(proxy.URL()), bob.identity(), chat.StoreDir(bob.Identity), bob.Passphrase)
			if err != nil {
				t.Fatal(err)
			}
			_, err = m.Send(ctx(t, time.Minute), s, []byte("for bob's eyes only"))
			m.Close()
			if !errors.Is(err, service.ErrUntrustedNode) {
				t.Fatalf("%s: Messenger.Send: %v, want ErrUntrustedNode", lie.name, err)
			}
		}
		// Eve's keys for Alice's identity.
		rewriteFor("getIdentity", alice.SessionID, eveKeys)
		wantAll(t, "eve's keys for alice", bobP.fails("send", s.String(), "for bob's eyes only"),
			"not trustworthy", "keys derive "+eve.id.SessionID)
		unchanged()
		if proxy.count("sendMessage") != 0 {
			t.Fatalf("%d sendMessage calls reached the proxy", proxy.count("sendMessage"))
		}
	})

	t.Run("prekeys", func(t *testing.T) {
		defer honest()
		alice, aliceP := alice.in(t), aliceP.in(t)
		unchanged := nothingSent(t, c, alice.SessionID)
		tamper := func(m map[string]any) {
			sp := m["signedPrekey"].(map[string]any)
			raw, err := base64.StdEncoding.DecodeString(sp["tx"].(string))
			if err != nil {
				t.Fatal(err)
			}
			raw[len(raw)/2] ^= 1 // inside the signed prekey
			sp["tx"] = base64.StdEncoding.EncodeToString(raw)
		}
		lies := []struct {
			name string
			edit func(map[string]any)
			says string
		}{
			{"eve's identity and prekeys under bob's Session ID", func(m map[string]any) {
				eveKeys(m)
				m["signedPrekey"] = reencode(eveBundle.SignedPrekey)
				m["oneTimePrekey"] = reencode(eveBundle.OneTimePrekey)
			}, "keys derive " + eve.id.SessionID},
			{"eve's signed prekey", func(m map[string]any) { m["signedPrekey"] = reencode(eveBundle.SignedPrekey) },
				"by " + eve.id.SessionID + ", not " + bob.SessionID},
			{"eve's one-time prekey", func(m map[string]any) { m["oneTimePrekey"] = reencode(eveBundle.OneTimePrekey) },
				"by " + eve.id.SessionID + ", not " + bob.SessionID},
			{"a tampered prekey transaction", tamper, "signature does not verify"},
		}
		for _, lie := range lies {
			rewriteFor("getPrekeyBundle", bob.SessionID, lie.edit)
			wantAll(t, lie.name, aliceP.fails("session", "create", "--with", bob.SessionID), "not trustworthy", lie.says)
		}
		// The Go Messenger too.
		rewriteFor("getPrekeyBundle", bob.SessionID, lies[1].edit)
		m, err := service.NewMessenger(ctx(t, time.Minute), newClient(proxy.URL()), alice.identity(), chat.NewMemoryStore())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.CreateSession(ctx(t, time.Minute), []string{bob.SessionID}, nil); !errors.Is(err, service.ErrUntrustedNode) {
			t.Fatalf("Messenger.CreateSession with eve's prekey in bob's bundle: %v", err)
		}
		unchanged()

		// An old bundle replayed: Alice saw Bob's newer signed prekey, then
		// the node serves the bundle from before it (genuine, signed, not
		// expired).
		honest()
		old, err := c.RawPrekeyBundle(ctx(t, 10*time.Second), bob.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		rotateSignedPrekey(t, c, bob)
		aliceP.write("session", "create", "--with", bob.SessionID)
		unchanged = nothingSent(t, c, alice.SessionID)
		proxy.set(func(m string, params, result json.RawMessage) json.RawMessage {
			if m != "getPrekeyBundle" || !bytes.Contains(params, []byte(bob.SessionID)) {
				return nil
			}
			b, _ := json.Marshal(old)
			return b
		})
		wantAll(t, "an old bundle", aliceP.fails("session", "create", "--with", bob.SessionID),
			"not trustworthy", fmt.Sprintf("signed prekey %d of %s", old.SignedPrekey.ID, bob.SessionID), "verified prekey")
		unchanged()
	})

	t.Run("deliveries", func(t *testing.T) {
		defer honest()
		alice, bob, bobP := alice.in(t), bob.in(t), bobP.in(t)
		pageOf := func(result json.RawMessage) *service.MessagesReply {
			var p service.MessagesReply
			if err := json.Unmarshal(result, &p); err != nil {
				t.Fatal(err)
			}
			return &p
		}
		rewritePages := func(f func(*service.MessagesReply)) {
			proxy.set(func(m string, params, result json.RawMessage) json.RawMessage {
				if m != "getMessages" || !bytes.Contains(params, []byte(s.String())) {
					return nil
				}
				p := pageOf(result)
				f(p)
				b, err := json.Marshal(p)
				if err != nil {
					t.Fatal(err)
				}
				return b
			})
		}
		var all []*service.Message // every message of s, by seq - 1
		record := func() {
			page, err := c.Messages(ctx(t, 10*time.Second), s, 0, service.MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			all = nil
			for i := range page.Messages {
				all = append(all, &page.Messages[i])
			}
		}

		// Withheld: the first message (it carries Alice's handshake) and
		// the third. Bob sees the second only once its handshake is
		// there: nothing opens wrongly, nothing is lost.
		alice.send(s, "two")
		alice.send(s, "three")
		rewritePages(func(p *service.MessagesReply) {
			p.Messages = slices.DeleteFunc(p.Messages, func(m service.Message) bool { return m.Seq == 1 || m.Seq == 3 })
		})
		for _, m := range bobP.readAny(s.String()) {
			if m.Text != "" && m.Text != "two" {
				t.Fatalf("with messages withheld bob reads %+v", m)
			}
		}
		honest()
		if got := texts(t, bob.read("read", s.String())); !reflect.DeepEqual(got, []string{"hello bob", "two", "three"}) {
			t.Fatalf("after the withheld messages came: %q", got)
		}

		// Replayed: the second message again, at a later position.
		alice.send(s, "four")
		record()
		rewritePages(func(p *service.MessagesReply) {
			r := *all[1]
			r.Seq = all[len(all)-1].Seq + 1
			p.Messages = append(p.Messages, r)
		})
		got := bobP.readAny(s.String())
		last := got[len(got)-1]
		if last.Seq != all[len(all)-1].Seq+1 || last.Text != "" || !strings.Contains(last.Error, "replay") {
			t.Fatalf("the replayed message shows as %+v", last)
		}
		if tx := texts(t, got[:len(got)-1]); !reflect.DeepEqual(tx, []string{"hello bob", "two", "three", "four"}) {
			t.Fatalf("around the replay bob reads %q", tx)
		}

		// Swapped: two new messages in each other's place. Each opens as
		// what its sender signed.
		alice.send(s, "five")
		alice.send(s, "six")
		record()
		n := len(all)
		rewritePages(func(p *service.MessagesReply) {
			for i := range p.Messages {
				switch p.Messages[i].Seq {
				case uint64(n - 1):
					p.Messages[i] = *all[n-1]
					p.Messages[i].Seq = uint64(n - 1)
				case uint64(n):
					p.Messages[i] = *all[n-2]
					p.Messages[i].Seq = uint64(n)
				}
			}
		})
		got = bobP.readAny(s.String(), "--after", fmt.Sprint(n-2))
		if tx := texts(t, got); !reflect.DeepEqual(tx, []string{"six", "five"}) {
			t.Fatalf("swapped, bob reads %q", tx)
		}
		for _, m := range got {
			if m.Sender != alice.SessionID {
				t.Fatalf("swapped, %+v", m)
			}
		}

		// A ciphertext or an author replaced: refused, and the message
		// opens from an honest node.
		alice.send(s, "seven")
		record()
		n = len(all)
		for _, lie := range []struct {
			name string
			edit func(*service.Message)
			says string
		}{
			{"another message's ciphertext", func(m *service.Message) { m.Ciphertext = all[n-2].Ciphertext }, "is not its transaction's"},
			{"eve as the author", func(m *service.Message) { m.Author = eve.id.SessionID }, "the node says " + eve.id.SessionID},
		} {
			rewritePages(func(p *service.MessagesReply) {
				for i := range p.Messages {
					if p.Messages[i].Seq == uint64(n) {
						lie.edit(&p.Messages[i])
					}
				}
			})
			got := bobP.readAny(s.String(), "--after", fmt.Sprint(n-1))
			if len(got) != 1 || got[0].Text != "" {
				t.Fatalf("%s: bob reads %+v", lie.name, got)
			}
			wantAll(t, lie.name, got[0].Error, "not trustworthy", lie.says)
		}
		honest()
		if tx := texts(t, bob.read("read", s.String(), "--after", fmt.Sprint(n-1))); !reflect.DeepEqual(tx, []string{"seven"}) {
			t.Fatalf("from an honest node: %q", tx)
		}
	})

	// Eve opens nothing of s: with her keys and store, in a conversation
	// that lists her as the node claimed, every envelope on chain stays
	// closed; and no client asked for her prekeys.
	if proxy.askedAbout("getPrekeyBundle", eve.id.SessionID) {
		t.Fatal("a client asked the node for eve's prekey bundle")
	}
	if err := eve.m.Close(); err != nil {
		t.Fatal(err)
	}
	store, err := chat.OpenFileStore(eve.dir, "passphrase of eve")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	recorded := recordDeliveries(t, c, s, "")
	if len(recorded) != 7 {
		t.Fatalf("%d envelopes in the session", len(recorded))
	}
	if n, _ := openRecorded(t, c, eve.id, store, s, []string{alice.SessionID, bob.SessionID, eve.id.SessionID}, recorded); len(n) != 0 {
		t.Fatalf("eve opened %q of the session's %d envelopes", n, len(recorded))
	}
}

// rotateSignedPrekey publishes a new signed prekey of u's (its device
// generates it in its store, as a renewal would).
func rotateSignedPrekey(t *testing.T, c *service.Client, u *cliUser) {
	t.Helper()
	id := u.identity()
	chainID, err := c.ChainID(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	store, err := chat.OpenFileStore(chat.StoreDir(u.Identity), u.Passphrase)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	dev, err := chat.NewDevice(id, chainID, store)
	if err != nil {
		t.Fatal(err)
	}
	up, err := dev.GeneratePrekeys(time.Now(), true, 0)
	if err != nil {
		t.Fatal(err)
	}
	sp := up.SignedPrekey
	r, err := c.PublishPrekeys(ctx(t, 30*time.Second), id, &tx.SignedPrekey{ID: sp.ID, ExpiresAt: sp.ExpiresAt.UnixMilli(), KEMPublicKey: sp.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, c, r)
}
