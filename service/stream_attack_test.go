package service

// Attacks on the streaming transport (docs/stream.md) as a hostile client
// and as a reviewer checking service/stream.go against the spec.
//
// TestAttack* tests fail on the code they were written against: each is
// a finding (its severity and spec section in the comment above it) and
// passes once the finding is fixed. TestHolds* tests, at the end, are
// attacks that failed: the property holds, and they keep it held.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// oneConn returns the handler's only WebSocket (the test opened one).
func oneConn(t *testing.T, h *handler) *wsConn {
	t.Helper()
	h.wsMu.Lock()
	defer h.wsMu.Unlock()
	if len(h.conns) != 1 {
		t.Fatalf("%d WebSockets open, want 1", len(h.conns))
	}
	for c := range h.conns {
		return c
	}
	return nil
}

// waitIdle waits until c's loop waits for its next message (the atomic
// state it stores then orders its earlier writes before the test's reads).
func waitIdle(t *testing.T, c *wsConn) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for c.state.Load() != stIdle {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not go back to waiting for input")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// retainedMessageBuffer is the capacity of the message buffer c's frame
// reader keeps (an unexported field of wsframe.Reader, read by
// reflection: Cap needs no access to the value).
func retainedMessageBuffer(c *wsConn) int {
	return reflect.ValueOf(c.rd).Elem().FieldByName("msg").Cap()
}

// paddedRequest is a valid request padded with trailing white space to
// size bytes.
func paddedRequest(id, size int) string {
	r := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, id)
	return r + strings.Repeat(" ", size-len(r))
}

// High, docs/stream.md §9 "Memory per WebSocket" ("the codec keeps up to
// 16 KiB of message buffer between messages ... an idle WebSocket holds
// at most 48 KiB") and §5 (what an upgraded connection can make the node
// hold): after a 1 MiB message has been answered and its body budget
// given back, the connection's frame reader keeps the whole 1 MiB message
// buffer while the connection waits for its next message, outside every
// budget. wsframe.Reader drops it only when the next message starts, so a
// client that sends one large message and then only answers pings keeps
// 1 MiB until the idle timeout: 512 WebSockets hold 512 MiB, against a
// body budget of 64 MiB and the 24 MiB (48 KiB × 512) §9 counts.
func TestAttackRetainsMessageBufferBetweenMessages(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	h := e.h.(*handler)
	w := dialWS(t, e.srv)
	w.send(text(paddedRequest(1, wsframe.MaxMessageSize)))
	if got := w.mustText(); !bytes.Contains(got, []byte(`"id":1`)) {
		t.Fatalf("no answer: %s", got)
	}
	c := oneConn(t, h)
	waitIdle(t, c) // the response was flushed before the wait
	if n := h.body.inUse(); n != 0 {
		t.Fatalf("%d bytes of body budget held between messages", n)
	}
	if n := retainedMessageBuffer(c); n > wsframe.RetainedBuffer {
		t.Fatalf("between messages the connection keeps a message buffer of %d bytes (no budget holds it); at most %d", n, wsframe.RetainedBuffer)
	}
}

// Medium, docs/stream.md §4 "Control frames" ("control frames reset only
// this timer, never the idle timeout nor a connection's place in the
// eviction order, which only data messages move") and §5 "connections":
// every pass of the wait for input marks the connection idle anew
// (markIdle with time.Now), so a ping or pong read between messages, and
// the node's own liveness ping, move the connection to the back of the
// eviction order. A client that pings every few seconds (or any client
// that answers the node's liveness pings) is never the one evicted: the
// node evicts connections that were idle for less time instead.
func TestAttackControlFramesMoveEvictionOrder(t *testing.T) {
	for _, tc := range []struct {
		name string
		ping time.Duration
		// touch makes the older connection's place in the eviction
		// order move without a data message; it returns when it has.
		touch func(older *wsTest)
	}{
		{"client ping", DefaultPingInterval, func(older *wsTest) {
			older.send(frame(true, wsframe.OpPing, []byte("x")))
			if m, err := older.next(); err != nil || m.op != wsframe.OpPong {
				t.Fatalf("pong: %d %v", m.op, err)
			}
		}},
		{"the node's liveness ping", time.Second, func(older *wsTest) {
			// The older connection's data message was at t0, the newer's
			// at t0+400 ms; the node pings the older at t0+1 s (and the
			// newer at t0+1.4 s). Nothing is sent by the client.
			if m, err := older.next(); err != nil || m.op != wsframe.OpPing {
				t.Fatalf("liveness ping: %d %v", m.op, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := streamEnv(t, StreamOptions{PingInterval: tc.ping})
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			bl := BoundListener(ln, 2, 0)
			srv := &http.Server{Handler: e.h, ConnState: ConnStateHook(bl), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = srv.Serve(bl) }()
			t.Cleanup(func() { _ = srv.Close() })
			addr := ln.Addr().String()
			open := func(id int) *wsTest {
				w := dialRaw(t, addr, upgradeRequest(addr))
				if w.resp.StatusCode != 101 {
					t.Fatalf("HTTP %d", w.resp.StatusCode)
				}
				w.send(text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, id)))
				w.mustText()
				return w
			}
			older := open(1)
			time.Sleep(400 * time.Millisecond)
			newer := open(2)
			tc.touch(older)
			time.Sleep(100 * time.Millisecond) // back in its wait for input
			// A newcomer: the connection idle longest (by data messages,
			// the older one) must make room.
			if body := postTo(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":3,"method":"session.getConfig"}`); !bytes.Contains(body, []byte(`"result"`)) {
				t.Fatalf("the newcomer was not served: %s", body)
			}
			_ = newer.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			if m, err := newer.next(); err == nil && m.op == wsframe.OpClose {
				t.Errorf("the newer connection (idle %s less by data) was evicted: close %d %q", 400*time.Millisecond, m.code, m.reason)
			}
			_ = older.conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			for {
				m, err := older.next()
				if err != nil {
					t.Fatalf("the older connection, idle longest by data, was not evicted: %v", err)
				}
				if m.op == wsframe.OpClose {
					if m.code != wsframe.CloseTryAgainLater {
						t.Fatalf("older closed with %d %q, want 1013", m.code, m.reason)
					}
					break
				}
			}
		})
	}
}

// Medium, docs/stream.md §5 "calls per connection" ("one token per call (a
// batch takes one per element before it runs)") and §9's High finding
// "frames and read notifications cost nothing": a read notification, alone
// or as elements of a batch, takes no token. It is parsed (up to 1 MiB,
// json.Valid and the element walk) and dropped, so a client can make the
// node parse at the speed of its socket, unpaced by --ws-call-rate.
func TestAttackReadNotificationsSkipCallBucket(t *testing.T) {
	const rate, notes = 10, 8
	note := `{"jsonrpc":"2.0","method":"session.getConfig"}`
	batch := "[" + strings.TrimSuffix(strings.Repeat(note+",", notes), ",") + "]"
	for _, tc := range []struct {
		name string
		mid  [][]byte
	}{
		{"single notifications", func() (f [][]byte) {
			for range notes {
				f = append(f, text(note))
			}
			return f
		}()},
		{"a batch of notifications", [][]byte{text(batch)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := streamEnv(t, StreamOptions{CallRate: rate, CallBurst: 1})
			w := dialWS(t, e.srv)
			frames := [][]byte{text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)}
			frames = append(frames, tc.mid...)
			frames = append(frames, text(`{"jsonrpc":"2.0","id":2,"method":"session.getConfig"}`))
			start := time.Now()
			w.send(frames...)
			w.mustText()
			if got := w.mustText(); !bytes.Contains(got, []byte(`"id":2`)) {
				t.Fatalf("second answer: %s", got)
			}
			// 1 + 8 + 1 calls, burst 1, 10/s: at least 0.9 s if every call
			// takes its token; 0.1 s if the notifications take none.
			if d := time.Since(start); d < (notes*time.Second)/rate {
				t.Fatalf("%d notifications and 2 requests answered in %s at %d calls/s: the notifications took no token", notes, d.Round(time.Millisecond), rate)
			}
		})
	}
}

// Low, docs/stream.md §3 ("on shutdown the node closes every WebSocket as
// in Closing with 1001") and §4 ("every ... wait has a deadline"): a
// connection waiting for its call bucket sleeps on a timer that shutdown
// does not interrupt (takeCalls selects on the connection's own context,
// cancelled only when the connection ends). ShutdownStreams waits the
// bucket out (at --ws-call-rate 1 and a batch of 256, over 4 minutes),
// and when its context expires first the goroutine outlives it and then
// runs the message on an aborted connection, after the node has moved on
// to closing the VM.
func TestAttackShutdownWaitsForCallBucket(t *testing.T) {
	e := streamEnv(t, StreamOptions{CallRate: 0.5, CallBurst: 1})
	w := dialWS(t, e.srv)
	w.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`), text(`{"jsonrpc":"2.0","id":2,"method":"session.getConfig"}`))
	w.mustText()
	time.Sleep(100 * time.Millisecond) // the second request waits 2 s for its token
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- e.h.(StreamShutdowner).ShutdownStreams(ctx) }()
	// The client answers the node's close at once (no drain wait).
	w.mustClose(wsframe.CloseGoingAway)
	took := time.Since(start)
	w.conn.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if took > 700*time.Millisecond {
		t.Fatalf("the close frame of shutdown came %s after ShutdownStreams began: it waited for the connection's call bucket", took.Round(time.Millisecond))
	}
}

// Low, docs/stream.md §4 "Closing" ("it first writes its output buffer
// ..., then its close frame") and RFC 6455 §5.5.1 (nothing follows a
// Close frame): a ping read together with the client's close frame leaves
// a pong pending, and finish appends the close frame to the output
// buffer before flush appends the pong, so the node sends a pong after
// its close frame.
func TestAttackPongAfterCloseFrame(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w := dialWS(t, e.srv)
	w.send(frame(true, wsframe.OpPing, []byte("p")), frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
	w.mustClose(wsframe.CloseNormal)
	_ = w.conn.SetReadDeadline(time.Now().Add(time.Second))
	if f, err := w.readFrame(); err == nil {
		t.Fatalf("the node sent a frame after its close frame: opcode %d %q", f.op, f.payload)
	}
}

// slowConn is a net.Conn whose writes take delay each; it records the
// write deadline in force at each write.
type slowConn struct {
	net.Conn
	delay    time.Duration
	deadline time.Time
	writes   []slowWrite
}

type slowWrite struct {
	at, deadline time.Time
	n            int
}

func (c *slowConn) SetWriteDeadline(t time.Time) error { c.deadline = t; return nil }
func (c *slowConn) Write(b []byte) (int, error) {
	c.writes = append(c.writes, slowWrite{at: time.Now(), deadline: c.deadline, n: len(b)})
	time.Sleep(c.delay)
	return len(b), nil
}

// Low, docs/stream.md §5 "writes" ("a large response ... must complete
// within 10 s plus its size at 64 KiB/s") and "large responses" ("as over
// HTTP", where extendWrite sets one deadline for the whole response):
// respond writes a large response's frame header and its payload in two
// writes, each with a deadline of its own, so a client that reads just
// fast enough stretches one large response (holding the response budget
// for it) to twice the grace, after the grace of the flush before it.
func TestAttackLargeResponseWriteDeadlines(t *testing.T) {
	const grace = 200 * time.Millisecond
	e := newEnvWith(t, envOpts{handler: Options{Stream: &StreamOptions{}, WriteGrace: grace, MinWriteRate: 1 << 30}})
	sc := &slowConn{delay: 150 * time.Millisecond} // each write within its own grace
	c := &wsConn{h: e.h.(*handler), so: e.h.(*handler).opts.Stream, nc: sc}
	body := bytes.Repeat([]byte{'x'}, 40<<10)
	c.respond(0, body, 0, true, true)
	if c.werr != nil {
		t.Fatal(c.werr)
	}
	var first time.Time
	total := 0
	for _, w := range sc.writes {
		if first.IsZero() {
			first = w.at
		}
		total += w.n
		// Every write of the response must end by the deadline of the
		// response as a whole: its first byte's write plus the grace and
		// its size at MinWriteRate.
		if limit := first.Add(e.h.(*handler).writeAllowance(int64(len(body))) + 20*time.Millisecond); w.deadline.After(limit) {
			t.Fatalf("a write of %d bytes of one %d-byte response had until %s after its first write; the response's allowance is %s",
				w.n, len(body), w.deadline.Sub(first).Round(time.Millisecond), e.h.(*handler).writeAllowance(int64(len(body))).Round(time.Millisecond))
		}
	}
	if total < len(body) {
		t.Fatalf("wrote %d bytes of %d", total, len(body))
	}
}
