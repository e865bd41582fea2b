package service

// Attacks on push notifications (docs/stream.md section 6) as a hostile
// client, and races an honest subscriber could lose. Each test asserts a
// property of the spec; the comment above it says which and what was
// found.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// bigBatch is a batch whose elements' responses add up to more than the
// output buffer, after first (a call object, already JSON).
func bigBatch(first string, n int) string {
	calls := []string{first}
	for i := range n {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, 100+i))
	}
	return "[" + strings.Join(calls, ",") + "]"
}

// Section 4 ("Push notifications are text messages ... between
// responses") and section 6 (the first notification follows the
// subscribeInbox response): a batch that subscribes to an inbox already
// holding entries, then whose response array outgrows the 16 KiB output
// buffer, must still arrive as one message, the notification after it.
// Found broken: every flush appended the pending notifications, the ones
// inside a batch (output buffer full, a large element, the wait for an
// execution slot) too, so an inboxChanged text frame landed between the
// batch's fragments (a protocol error for any client, RFC 6455 §5.4) and
// named a subscription whose subscribeInbox response had not arrived
// (ErrUntrustedNode by the client rule of section 4).
func TestPushAttackNotificationInsideBatch(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	e.sendAndAccept(t, sess)
	w := dialWS(t, e.srv)
	sub := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"session.subscribeInbox","params":{"sessionId":%q,"after":0}}`, e.bob.SessionID)
	w.send(text(bigBatch(sub, 200)))
	m, err := w.next()
	if err != nil {
		t.Fatalf("the batch's response is not one well-formed message: %v", err)
	}
	var rs []rawResponse
	if err := json.Unmarshal(m.payload, &rs); err != nil {
		t.Fatalf("the batch's response: %v (%.200s)", err, m.payload)
	}
	if len(rs) != 201 || rs[0].Error != nil {
		t.Fatalf("%d responses, first %+v", len(rs), rs[0].Error)
	}
	if len(m.payload) <= outBuffer {
		t.Fatalf("the batch's response (%d bytes) does not outgrow the output buffer: the test tests nothing", len(m.payload))
	}
	var reply SubscribeInboxReply
	if err := json.Unmarshal(rs[0].Result, &reply); err != nil {
		t.Fatal(err)
	}
	if n := w.notification(); n.Params.Subscription != reply.Subscription {
		t.Fatalf("notification for %q, subscribed %q", n.Params.Subscription, reply.Subscription)
	}
}

// wakeCounter is a connection that counts the wake-ups (read deadlines)
// it is given; nothing else of it is used.
type wakeCounter struct {
	net.Conn
	wakes atomic.Int64
}

func (c *wakeCounter) SetReadDeadline(time.Time) error {
	c.wakes.Add(1)
	return nil
}

// Section 6 ("The work per accepted block is one lookup per inbox entry
// plus one signal per matching subscription, whatever the clients do")
// and section 8 ("The chain never waits for a client"): a hostile sender
// fills a block with messages to one identity that many connections
// watch (512 WebSockets may each subscribe to it). Found broken:
// acceptance raised and signalled every matching subscription once per
// entry, waking each waiting connection once per entry (a mutex and a
// deadline change each): 4,096 entries × 512 subscriptions took about
// 0.4 s of the accepting goroutine per block. Each subscription is now
// raised to the block's highest position and signalled once.
func TestPushAttackOneSignalPerBlock(t *testing.T) {
	const subs, entries = 64, 1000
	var x subIndex
	var victim, other [state.SessionIDSize]byte
	victim[0], other[0] = 7, 8
	var ncs []*wakeCounter
	var ss []*subscription
	for range subs {
		nc := &wakeCounter{}
		c := &wsConn{nc: nc}
		c.state.Store(stIdle) // waiting for input: a signal wakes it
		s := &subscription{c: c, key: victim}
		if !x.add(s) {
			t.Fatal("add refused")
		}
		ncs, ss = append(ncs, nc), append(ss, s)
	}
	var block []state.InboxWrite
	for i := range entries {
		block = append(block, state.InboxWrite{Recipient: victim, Position: uint64(100 + i)})
		block = append(block, state.InboxWrite{Recipient: other, Position: uint64(5000 + i)})
	}
	x.accepted(block)
	for i, nc := range ncs {
		if n := nc.wakes.Load(); n != 1 {
			t.Fatalf("connection %d woken %d times by one block", i, n)
		}
		if p := ss[i].pending.Load(); p != 100+entries-1 {
			t.Fatalf("subscription %d pending %d, want the block's highest %d", i, p, 100+entries-1)
		}
	}
	// A later block with a lower position (an older entry written late)
	// never lowers a pending position.
	x.accepted([]state.InboxWrite{{Recipient: victim, Position: 3}})
	if p := ss[0].pending.Load(); p != 100+entries-1 {
		t.Fatalf("pending lowered to %d", p)
	}
}

// Section 8 ("a fixed number of O(1) subscriptions") and section 5 (the
// call rate bounds what one connection makes the node do): a hostile
// client that subscribes and unsubscribes in a loop. Found broken: the
// index was one copy-on-write map, copied whole by every subscribe and
// unsubscribe, so with the node's 4,096 subscriptions held (8 identities
// on 512 connections are enough) each call cost about 1.6 ms of CPU and
// 1.2 MB of garbage, under one lock: two connections at the default call
// rate kept a core busy. A call now copies one part of the index.
func TestPushAttackChurnCostsO1(t *testing.T) {
	var x subIndex
	for i := range MaxSubscriptions - 1 {
		var key [state.SessionIDSize]byte
		key[0], key[1], key[2] = 7, byte(i), byte(i>>8)
		if !x.add(&subscription{key: key}) {
			t.Fatalf("subscription %d refused", i)
		}
	}
	var key [state.SessionIDSize]byte
	key[0] = 9
	const pairs = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range pairs {
		s := &subscription{key: key}
		if !x.add(s) {
			t.Fatal("the node's last subscription refused")
		}
		if x.add(&subscription{key: key}) {
			t.Fatal("a subscription past the node's bound accepted")
		}
		x.remove(s)
	}
	runtime.ReadMemStats(&after)
	// 64 KiB: a few hundred bytes of a part of the index, with margin;
	// copying the whole index is about 2.4 MB a pair.
	if per := (after.TotalAlloc - before.TotalAlloc) / pairs; per > 64<<10 {
		t.Fatalf("a subscribe and an unsubscribe allocate %d bytes with %d subscriptions held", per, MaxSubscriptions-1)
	}
}

// readUntilID reads messages until the response with id, returning the
// notifications read before it.
func (w *wsTest) readUntilID(id int) (before []inboxChanged, resp rawResponse) {
	w.t.Helper()
	for {
		b := w.mustText()
		var r rawResponse
		if err := json.Unmarshal(b, &r); err == nil && string(r.ID) == fmt.Sprint(id) {
			return before, r
		}
		var n inboxChanged
		if err := json.Unmarshal(b, &n); err != nil || n.Method != methodInboxChanged || n.ID != nil {
			w.t.Fatalf("neither response %d nor a notification: %.200s", id, b)
		}
		before = append(before, n)
	}
}

// Section 6: a block accepted while its recipient's subscription is
// being made is never lost: either the subscription is in the index when
// acceptance looks (a notification), or the inbox read that follows the
// registration sees the block's entries (the first notification). The
// VM calls the watcher after the block's writes are visible. Holds.
func TestPushAttackSubscribeRacesAcceptance(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	w := dialWS(t, e.srv)
	for i := range 12 {
		head := inboxHead(t, e)
		st, err := tx.Sign(e.alice, e.vm.ChainID(), mustNonce(t, e, e.alice.SessionID), &tx.SendMessage{Session: sess, Ciphertext: []byte("race")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.IssueTx(context.Background(), st.Bytes()); err != nil {
			t.Fatal(err)
		}
		accepted := make(chan error, 1)
		go func() {
			e.clock.Advance(time.Second)
			_, err := e.vm.BuildAndAccept(context.Background())
			accepted <- err
		}()
		id := 10 * (i + 1)
		w.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.subscribeInbox","params":{"sessionId":%q,"after":%d}}`, id, e.bob.SessionID, head)))
		early, r := w.readUntilID(id)
		if len(early) > 0 || r.Error != nil {
			t.Fatalf("round %d: %d notifications before the subscription's answer, error %+v", i, len(early), r.Error)
		}
		var reply SubscribeInboxReply
		if err := json.Unmarshal(r.Result, &reply); err != nil {
			t.Fatal(err)
		}
		if err := <-accepted; err != nil {
			t.Fatal(err)
		}
		// The block is accepted: a notification above the cursor must
		// come (the read deadline only bounds a failure).
		_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n := w.notification()
		if n.Params.Subscription != reply.Subscription || n.Params.Position <= head {
			t.Fatalf("round %d: notification %+v, cursor %d", i, n.Params, head)
		}
		_ = w.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		w.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.unsubscribe","params":{"subscription":%q}}`, id+1, reply.Subscription)))
		if _, r := w.readUntilID(id + 1); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
}

// raiser raises sub's pending position and signals it, as acceptance
// does, as fast as it can until stop is closed.
func raiser(h *handler, key [state.SessionIDSize]byte, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		for p := uint64(1); ; p++ {
			select {
			case <-stop:
				return
			default:
			}
			h.subs.accepted([]state.InboxWrite{{Recipient: key, Position: p}})
		}
	}()
	return done
}

func sessionKey(t *testing.T, s string) [state.SessionIDSize]byte {
	t.Helper()
	id, err := parseSessionID("sessionId", s)
	if err != nil {
		t.Fatal(err)
	}
	return state.SessionIDKey(id)
}

// Section 6 ("No notification of a subscription follows the response to
// its unsubscribe"), with notifications raised as fast as acceptance can
// while the client unsubscribes, alone and inside batches. Holds.
func TestPushAttackNothingAfterUnsubscribe(t *testing.T) {
	e := streamEnv(t, StreamOptions{CallRate: 1e6, CallBurst: 1 << 20})
	h := e.h.(*handler)
	w := dialWS(t, e.srv)
	stop := make(chan struct{})
	done := raiser(h, sessionKey(t, e.bob.SessionID), stop)
	defer func() { close(stop); <-done }()
	for i := range 200 {
		id := 10 * (i + 1)
		_, r := w.readUntilID(func() int {
			w.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.subscribeInbox","params":{"sessionId":%q}}`, id, e.bob.SessionID)))
			return id
		}())
		var reply SubscribeInboxReply
		if r.Error != nil || json.Unmarshal(r.Result, &reply) != nil {
			t.Fatalf("round %d: %+v", i, r.Error)
		}
		unsub := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.unsubscribe","params":{"subscription":%q}}`, id+1, reply.Subscription)
		cfg := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, id+2)
		if i%2 == 0 {
			w.send(text(unsub), text(cfg))
			w.readUntilID(id + 1)
		} else {
			// Inside a batch: notifications due before it may precede its
			// array; after the array, none of this subscription.
			w.send(text("["+unsub+","+cfg+"]"), text(cfg))
			for !bytes.HasPrefix(w.mustText(), []byte("[")) {
			}
		}
		after, _ := w.readUntilID(id + 2)
		for _, n := range after {
			if n.Params.Subscription == reply.Subscription {
				t.Fatalf("round %d: a notification of %s after its unsubscribe's answer", i, reply.Subscription)
			}
		}
	}
}

// subCount is the node's subscription count.
func subCount(h *handler) int {
	h.subs.mu.Lock()
	defer h.subs.mu.Unlock()
	return h.subs.count
}

// waitSubs waits until the node holds want subscriptions.
func waitSubs(t *testing.T, h *handler, want int) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for subCount(h) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions held, want %d", subCount(h), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Sections 5 and 6 (4,096 subscriptions per node, -32011 past them; a
// connection's end ends its subscriptions): a client takes the node's
// last subscriptions, then leaves in every abrupt way (a reset in the
// middle of a batch that subscribes, a close while notifications fire
// and it reads nothing, a subscribe sent as a notification); every
// subscription comes back, and one never made is never counted. Holds.
func TestPushAttackNodeBoundAndRelease(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	h := e.h.(*handler)
	// The node's other subscriptions, of identities nobody registered.
	base := MaxSubscriptions - 2
	for i := range base {
		var key [state.SessionIDSize]byte
		key[0], key[1], key[2] = 0xEE, byte(i), byte(i>>8)
		if !h.subs.add(&subscription{key: key}) {
			t.Fatal("add refused")
		}
	}
	sub := func(w *wsTest, id int, sid string) rawResponse {
		return w.call(id, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, sid))
	}
	w1 := dialWS(t, e.srv)
	for i, sid := range []string{e.alice.SessionID, e.bob.SessionID} {
		if r := sub(w1, i+1, sid); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
	w2 := dialWS(t, e.srv)
	if r := sub(w2, 1, e.carol.SessionID); r.Error == nil || r.Error.Code != CodeLimitReached {
		t.Fatalf("past the node's bound: %+v, want -32011", r.Error)
	}
	if n := subCount(h); n != MaxSubscriptions {
		t.Fatalf("%d subscriptions counted, want %d", n, MaxSubscriptions)
	}
	// A reset in the middle of a batch that subscribes (w1 already holds
	// two: the batch's three are refused, then the batch's big pages).
	var calls []string
	for i, sid := range []string{e.carol.SessionID, e.alice.SessionID, e.bob.SessionID} {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.subscribeInbox","params":{"sessionId":%q}}`, 10+i, sid))
	}
	for i := range 100 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getInbox","params":{"sessionId":%q,"limit":1000}}`, 20+i, e.bob.SessionID))
	}
	w1.send(text("[" + strings.Join(calls, ",") + "]"))
	_ = w1.conn.(*net.TCPConn).SetLinger(0)
	w1.conn.Close()
	waitSubs(t, h, base)

	// A subscriber that reads nothing while notifications fire, then
	// closes mid-stream.
	if r := sub(w2, 2, e.carol.SessionID); r.Error != nil {
		t.Fatal(r.Error)
	}
	stop := make(chan struct{})
	done := raiser(h, sessionKey(t, e.carol.SessionID), stop)
	w2.conn.Close()
	waitSubs(t, h, base)
	close(stop)
	<-done

	// subscribeInbox without an id is not run (section 4): it would make
	// a subscription the client cannot name.
	w3 := dialWS(t, e.srv)
	w3.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","method":"session.subscribeInbox","params":{"sessionId":%q}}`, e.alice.SessionID)))
	if r := w3.call(1, "getConfig", "{}"); r.Error != nil {
		t.Fatal(r.Error)
	}
	if n := subCount(h); n != base {
		t.Fatalf("a subscribeInbox notification made a subscription (%d held, want %d)", n, base)
	}
	// Both subscriptions are free again.
	for i, sid := range []string{e.alice.SessionID, e.bob.SessionID} {
		if r := sub(w3, 2+i, sid); r.Error != nil {
			t.Fatal(r.Error)
		}
	}
}

// Section 6, any params: a malformed or hostile subscribeInbox or
// unsubscribe is an error answer and the connection goes on (a panic
// would close it 1011); a cursor at the top of uint64 is valid and
// notifies nothing. Holds.
func TestPushAttackHostileParams(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w := dialWS(t, e.srv)
	bob := e.bob.SessionID
	for i, tc := range []struct {
		method, params string
		code           ErrorCode // 0: a result
	}{
		{"subscribeInbox", `null`, CodeInvalidParams},
		{"subscribeInbox", `[]`, CodeInvalidParams},
		{"subscribeInbox", `{}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":null}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":7}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + strings.Repeat("07", 5000) + `"}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + bob + `","after":-1}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + bob + `","after":1.5}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + bob + `","after":"1"}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + bob + `","after":18446744073709551616}`, CodeInvalidParams},
		{"subscribeInbox", `{"sessionId":"` + bob + `","after":18446744073709551615}`, 0},
		{"unsubscribe", `null`, CodeInvalidParams},
		{"unsubscribe", `{"subscription":null}`, CodeInvalidParams},
		{"unsubscribe", `{"subscription":{"a":1}}`, CodeInvalidParams},
		{"unsubscribe", `{"subscription":"` + strings.Repeat("f", 100000) + `"}`, CodeInvalidParams},
	} {
		r := w.call(i+1, tc.method, tc.params)
		switch {
		case tc.code == 0 && r.Error != nil:
			t.Fatalf("%s %.80s: %+v", tc.method, tc.params, r.Error)
		case tc.code != 0 && (r.Error == nil || r.Error.Code != tc.code):
			t.Fatalf("%s %.80s: %+v (%s), want %d", tc.method, tc.params, r.Error, r.Result, tc.code)
		case r.Error != nil && len(r.Error.Message) > 500:
			t.Fatalf("%s: an error message of %d bytes echoes the request", tc.method, len(r.Error.Message))
		}
	}
	// The subscription behind the top cursor holds, notifies nothing
	// (the next message is this answer).
	sess := e.session(e.alice, e.bob)
	e.sendAndAccept(t, sess)
	if before, r := w.readUntilID(func() int { w.send(text(`{"jsonrpc":"2.0","id":99,"method":"session.getConfig"}`)); return 99 }()); r.Error != nil || len(before) != 0 {
		t.Fatalf("%d notifications for a cursor above every position, %+v", len(before), r.Error)
	}
}

// Section 6 ("A pending notification is a position, not bytes in the
// buffer: a newer block raises it"): while the connection cannot write
// (here it waits for an execution slot the test holds), a thousand
// blocks raise one subscription; what follows is one notification
// carrying the highest position, not a thousand. Holds.
func TestPushAttackNotificationsCoalesce(t *testing.T) {
	so := StreamOptions{}
	e := newEnvWith(t, envOpts{handler: Options{Stream: &so, BusyWait: 20 * time.Second}})
	h := e.h.(*handler)
	w := dialWS(t, e.srv)
	release := holdSlots(h)
	defer release()
	// bob's inbox is empty: no notification is due at subscribing.
	w.send(
		text(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"session.subscribeInbox","params":{"sessionId":%q}}`, e.bob.SessionID)),
		text(fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":"session.getNonce","params":{"sessionId":%q}}`, e.alice.SessionID)))
	// The subscription's answer is written before the wait for a slot.
	if before, r := w.readUntilID(1); r.Error != nil || len(before) > 0 {
		t.Fatalf("subscribe: %+v, %d notifications", r.Error, len(before))
	}
	key := sessionKey(t, e.bob.SessionID)
	const blocks = 1000
	for p := uint64(1); p <= blocks; p++ {
		h.subs.accepted([]state.InboxWrite{{Recipient: key, Position: p}})
	}
	release()
	if before, r := w.readUntilID(2); r.Error != nil || len(before) > 0 {
		t.Fatalf("getNonce: %+v, %d notifications before it", r.Error, len(before))
	}
	w.send(text(`{"jsonrpc":"2.0","id":3,"method":"session.getConfig"}`))
	ns, _ := w.readUntilID(3)
	if len(ns) != 1 || ns[0].Params.Position != blocks {
		t.Fatalf("%d notifications after %d raises (%+v), want one at %d", len(ns), blocks, ns, blocks)
	}
}

// Section 6 ("subscription is 16 random bytes, meaningful only on its
// connection"): a hostile connection that knows (or guesses) another's
// subscription id cannot end it, and the victim keeps its notifications.
// Holds.
func TestPushAttackForeignUnsubscribe(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	head := inboxHead(t, e)
	victim, attacker := dialWS(t, e.srv), dialWS(t, e.srv)
	r := victim.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q,"after":%d}`, e.bob.SessionID, head))
	var reply SubscribeInboxReply
	if r.Error != nil || json.Unmarshal(r.Result, &reply) != nil {
		t.Fatalf("%+v", r.Error)
	}
	if r := attacker.call(1, "unsubscribe", fmt.Sprintf(`{"subscription":%q}`, reply.Subscription)); r.Error == nil || r.Error.Code != CodeInvalidParams {
		t.Fatalf("another connection's unsubscribe: %s %+v, want -32602", r.Result, r.Error)
	}
	// The attacker's own subscription to the same inbox gets another id.
	r = attacker.call(2, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q,"after":%d}`, e.bob.SessionID, head))
	var own SubscribeInboxReply
	if r.Error != nil || json.Unmarshal(r.Result, &own) != nil || own.Subscription == reply.Subscription {
		t.Fatalf("%+v %q", r.Error, own.Subscription)
	}
	e.sendAndAccept(t, sess)
	if n := victim.notification(); n.Params.Subscription != reply.Subscription || n.Params.Position <= head {
		t.Fatalf("victim: %+v", n.Params)
	}
	if n := attacker.notification(); n.Params.Subscription != own.Subscription {
		t.Fatalf("attacker notified for %q, holds %q", n.Params.Subscription, own.Subscription)
	}
}

// TestPushAttackNotificationInsideBatch's other path: a batch element
// that waits for an execution slot writes the array's fragments so far
// first; the notification its subscribeInbox element made due must not
// go with them.
func TestPushAttackNotificationInsideBatchSlotWait(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	e.sendAndAccept(t, sess)
	h := e.h.(*handler)
	w := dialWS(t, e.srv)
	release := holdSlots(h)
	defer release()
	w.send(text(fmt.Sprintf(`[{"jsonrpc":"2.0","id":1,"method":"session.subscribeInbox","params":{"sessionId":%q,"after":0}},`+
		`{"jsonrpc":"2.0","id":2,"method":"session.getNonce","params":{"sessionId":%q}}]`, e.bob.SessionID, e.alice.SessionID)))
	// The array's first fragment is written before the wait.
	f, err := w.readFrame()
	if err != nil || f.op != wsframe.OpText || f.fin || !bytes.HasPrefix(f.payload, []byte(`[`)) {
		t.Fatalf("first frame %+v %v", f, err)
	}
	release()
	for !f.fin {
		if f, err = w.readFrame(); err != nil {
			t.Fatal(err)
		}
		if f.op != wsframe.OpContinuation {
			t.Fatalf("a frame of opcode %d (%.100s) inside the batch's response", f.op, f.payload)
		}
	}
	w.notification()
}

// Section 3 (shutdown closes every WebSocket with 1001) with
// subscriptions whose notifications fire throughout: shutdown completes
// and the node holds no subscription after it. Holds.
func TestPushAttackShutdownWhileNotifying(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	h := e.h.(*handler)
	var ws []*wsTest
	for i, sid := range []string{e.alice.SessionID, e.bob.SessionID, e.carol.SessionID} {
		w := dialWS(t, e.srv)
		if r := w.call(1, "subscribeInbox", fmt.Sprintf(`{"sessionId":%q}`, sid)); r.Error != nil {
			t.Fatalf("%d: %+v", i, r.Error)
		}
		ws = append(ws, w)
	}
	stop := make(chan struct{})
	var dones []<-chan struct{}
	for _, sid := range []string{e.alice.SessionID, e.bob.SessionID, e.carol.SessionID} {
		dones = append(dones, raiser(h, sessionKey(t, sid), stop))
	}
	defer func() {
		close(stop)
		for _, d := range dones {
			<-d
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res := make(chan error, 1)
	go func() { res <- h.ShutdownStreams(ctx) }()
	for _, w := range ws {
		w.mustClose(wsframe.CloseGoingAway) // notifications before it are skipped
		w.conn.Close()
	}
	if err := <-res; err != nil {
		t.Fatalf("ShutdownStreams: %v", err)
	}
	if n := subCount(h); n != 0 {
		t.Fatalf("%d subscriptions held after shutdown", n)
	}
}

// holdSlots takes every execution slot of h; the function it returns
// gives them back, once however often it is called.
func holdSlots(h *handler) (release func()) {
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	return sync.OnceFunc(func() {
		for range cap(h.slots) {
			<-h.slots
		}
	})
}
