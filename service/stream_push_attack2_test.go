package service

// Attacks on push notifications (docs/stream.md section 6) as a hostile
// client, and races an honest subscriber could lose. Each test asserts a
// property of the spec; the comment above it says which and what was
// found.

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
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
