package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/service/wsframe"
	"github.com/luxfi/session/vm/tx"
)

// inboxChanged is a decoded session.inboxChanged notification.
type inboxChanged struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	ID      *json.RawMessage
	Params  struct {
		Subscription string `json:"subscription"`
		Position     uint64 `json:"position"`
	} `json:"params"`
}

// call sends one request and returns its response's result or error.
func (w *wsTest) call(id int, method, params string) rawResponse {
	w.t.Helper()
	w.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.%s","params":%s}`, id, method, params)))
	var r rawResponse
	if err := json.Unmarshal(w.mustText(), &r); err != nil {
		w.t.Fatal(err)
	}
	if string(r.ID) != fmt.Sprint(id) {
		w.t.Fatalf("response id %s, want %d", r.ID, id)
	}
	return r
}

// notification reads the next message and requires an inboxChanged.
func (w *wsTest) notification() inboxChanged {
	w.t.Helper()
	var n inboxChanged
	if err := json.Unmarshal(w.mustText(), &n); err != nil || n.Method != "session.inboxChanged" || n.ID != nil {
		w.t.Fatalf("want an inboxChanged notification: %v %+v", err, n)
	}
	return n
}

// sendAndAccept sends one message from alice in sess and accepts its
// block.
func (e *env) sendAndAccept(t *testing.T, sess ids.ID) {
	t.Helper()
	st, err := tx.Sign(e.alice, e.vm.ChainID(), mustNonce(t, e, e.alice.SessionID), &tx.SendMessage{Session: sess, Ciphertext: []byte("push")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.IssueTx(context.Background(), st.Bytes()); err != nil {
		t.Fatal(err)
	}
	e.accept()
}

func inboxHead(t *testing.T, e *env) uint64 {
	t.Helper()
	var after uint64
	for {
		page, err := e.client.Inbox(context.Background(), e.bob.SessionID, after, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) > 0 {
			after = page.Messages[len(page.Messages)-1].Position
		}
		if !page.More {
			return after
		}
	}
}

// TestStreamPush: subscribeInbox answers a subscription; each accepted
// block that adds to the inbox raises one notification carrying a
// position the client then reads from with its own cursor; after
// unsubscribe none follows; entries already above the cursor notify at
// once.
func TestStreamPush(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	head := inboxHead(t, e)
	w := dialWS(t, e.srv)
	r := w.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q,"after":%d}`, e.bob.SessionID, head))
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	var sub SubscribeInboxReply
	if err := json.Unmarshal(r.Result, &sub); err != nil || len(sub.Subscription) != 32 {
		t.Fatalf("subscription %q: %v", sub.Subscription, err)
	}
	for i := range 3 {
		e.sendAndAccept(t, sess)
		n := w.notification()
		if n.Params.Subscription != sub.Subscription || n.Params.Position <= head {
			t.Fatalf("notification %d: %+v (cursor %d)", i, n.Params, head)
		}
		if got := inboxHead(t, e); n.Params.Position != got {
			t.Fatalf("notified position %d, inbox head %d", n.Params.Position, got)
		}
		head = n.Params.Position
	}
	// Alice's inbox is not bob's: her messages to the session do not
	// notify her... and a block without inbox entries notifies nobody.
	if r := w.call(2, "unsubscribe", fmt.Sprintf(`{"subscription":%q}`, sub.Subscription)); r.Error != nil || string(r.Result) != "{}" {
		t.Fatalf("unsubscribe: %s %v", r.Result, r.Error)
	}
	e.sendAndAccept(t, sess)
	if r := w.call(3, "getConfig", "{}"); r.Error != nil {
		t.Fatal(r.Error) // the next message is this answer, not a notification
	}
	// Subscribing behind the head notifies at once, after the answer.
	r = w.call(4, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q,"after":%d}`, e.bob.SessionID, head))
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	if n := w.notification(); n.Params.Position <= head {
		t.Fatalf("immediate notification at %d, cursor %d", n.Params.Position, head)
	}
}

// TestStreamPushRefusals: the errors and bounds of section 6.
func TestStreamPushRefusals(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w := dialWS(t, e.srv)
	sub := func(id int, sid string) rawResponse {
		return w.call(id, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, sid))
	}
	if r := sub(1, identity(t, 5).SessionID); r.Error == nil || r.Error.Code != CodeUnknownIdentity {
		t.Fatalf("unregistered identity: %+v", r.Error)
	}
	if r := sub(2, "07zz"); r.Error == nil || r.Error.Code != CodeInvalidParams {
		t.Fatalf("malformed Session ID: %+v", r.Error)
	}
	if r := sub(3, e.alice.SessionID); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := sub(4, e.alice.SessionID); r.Error == nil || r.Error.Code != CodeAlreadyExists {
		t.Fatalf("second subscription to one identity: %+v", r.Error)
	}
	if r := w.call(5, "unsubscribe", `{"subscription":"00"}`); r.Error == nil || r.Error.Code != CodeInvalidParams {
		t.Fatalf("unknown subscription: %+v", r.Error)
	}
	// Over POST the methods do not exist.
	body := postBody(t, e, `{"jsonrpc":"2.0","id":1,"method":"session.subscribeInbox","params":{"sessionId":"`+e.alice.SessionID+`"}}`)
	if !bytes.Contains(body, []byte(fmt.Sprint(int(CodeMethodNotFound)))) {
		t.Fatalf("over POST: %s", body)
	}
	// At most MaxSubscriptionsPerConn per connection (registered
	// identities: the three of the genesis and five more).
	for i := 3; i < 8; i++ {
		if _, err := e.client.Register(context.Background(), identity(t, i)); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	ids := []string{e.bob.SessionID, e.carol.SessionID}
	for i := 3; i < 8; i++ {
		ids = append(ids, identity(t, i).SessionID)
	}
	for i, sid := range ids {
		r := sub(10+i, sid)
		switch {
		case i < MaxSubscriptionsPerConn-1 && r.Error != nil:
			t.Fatalf("subscription %d: %v", i+2, r.Error)
		case i == MaxSubscriptionsPerConn-1 && (r.Error == nil || r.Error.Code != CodeTooLarge):
			t.Fatalf("subscription %d: %+v, want -32005", i+2, r.Error)
		}
	}
	// Closing the connection ends its subscriptions.
	h := e.h.(*handler)
	w.send(frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
	w.mustClose(wsframe.CloseNormal)
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.subs.mu.Lock()
		n := h.subs.count
		h.subs.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions left after the connection closed", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamPushNeverBlocksAcceptance: a subscriber whose connection is
// stuck writing (it never reads) does not hold up block acceptance.
func TestStreamPushNeverBlocksAcceptance(t *testing.T) {
	e := streamEnv(t, StreamOptions{CallRate: 1e6, CallBurst: 1 << 20})
	sess := e.session(e.alice, e.bob)
	stuck := dialWS(t, e.srv)
	if r := stuck.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, e.bob.SessionID)); r.Error != nil {
		t.Fatal(r.Error)
	}
	// More answers than the socket buffers hold (about 10 MB), never
	// read: the node's loop blocks in a write, up to its deadline.
	req := text(`{"jsonrpc":"2.0","id":9,"method":"session.getConfig"}`)
	go func() { _, _ = stuck.conn.Write(bytes.Repeat(req, 20000)) }()
	time.Sleep(time.Second)
	start := time.Now()
	for range 5 {
		e.sendAndAccept(t, sess)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("5 blocks took %s with a stuck subscriber", d)
	}
}

// TestStreamPushKeepsConnection: a connection with a subscription is not
// closed by the idle timeout while it answers the liveness pings; without
// one it is.
func TestStreamPushKeepsConnection(t *testing.T) {
	e := streamEnv(t, StreamOptions{PingInterval: 100 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	w := dialWS(t, e.srv)
	if r := w.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, e.bob.SessionID)); r.Error != nil {
		t.Fatal(r.Error)
	}
	until := time.Now().Add(time.Second)
	for time.Now().Before(until) {
		_ = w.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		m, err := w.next()
		if err != nil {
			continue // no ping within the interval: read on
		}
		if m.op != wsframe.OpPing {
			t.Fatalf("got opcode %d (close %d %q) while subscribed", m.op, m.code, m.reason)
		}
		w.send(frame(true, wsframe.OpPong, m.payload))
	}
	_ = w.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if r := w.call(2, "unsubscribe", `{"subscription":"x"}`); r.Error == nil {
		t.Fatal("unsubscribe of an unknown subscription succeeded")
	}
}

// TestStreamPushWakeRace: notifications that arrive while a subscribed
// connection goes from waiting to reading a message never cut that
// message short (a late wake-up used to land on the message's deadline:
// close 1008 "a message must arrive within 30s").
func TestStreamPushWakeRace(t *testing.T) {
	e := streamEnv(t, StreamOptions{CallRate: 1e6, CallBurst: 1 << 20})
	w := dialWS(t, e.srv)
	if r := w.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, e.bob.SessionID)); r.Error != nil {
		t.Fatal(r.Error)
	}
	// Notifications as fast as acceptance could raise them.
	h := e.h.(*handler)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var sub *subscription
		for i := range h.subs.shards {
			if m := h.subs.shards[i].m.Load(); m != nil {
				for _, v := range *m {
					sub = v[0]
				}
			}
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			sub.pending.Add(1)
			sub.c.signal()
		}
	}()
	req := text(`{"jsonrpc":"2.0","id":7,"method":"session.getNonce","params":{"sessionId":"` + e.alice.SessionID + `","x":"` + strings.Repeat("y", 3000) + `"}}`)
	for i := range 2000 {
		// Sent in two writes, so the message's first byte arrives first.
		w.send(req[:100])
		w.send(req[100:])
		for {
			m, err := w.next()
			if err != nil {
				t.Fatalf("request %d: %v", i, err)
			}
			if m.op == wsframe.OpClose {
				t.Fatalf("request %d: closed %d %q", i, m.code, m.reason)
			}
			if m.op == wsframe.OpText && bytes.Contains(m.payload, []byte(`"id":7`)) {
				break
			}
		}
	}
	close(stop)
	<-done
}
