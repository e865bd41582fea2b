package service

// TestHolds*: attacks on the streaming transport that failed (the
// property holds), kept as regression tests. The findings are in
// stream_attack_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
	"github.com/luxfi/session/vm/tx"
)

// settled waits until h holds nothing for WebSockets: no connection
// registered (its goroutine has returned), no body or response budget,
// no execution slot.
func settled(t *testing.T, h *handler, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		h.wsMu.Lock()
		conns := len(h.conns)
		h.wsMu.Unlock()
		body, resp, slots := h.body.inUse(), h.resp.inUse(), len(h.slots)
		if conns == 0 && body == 0 && resp == 0 && slots == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %d WebSockets, %d body bytes, %d response bytes, %d slots still held", within, conns, body, resp, slots)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestHoldsEveryCloseReleases: whatever ends a connection (the client's
// close, each kind of fault, a timeout, the socket's end mid-message or
// mid-batch, a half-close), the connection's goroutine returns and it
// gives back every byte of budget and every slot (docs/stream.md §4
// "Closing", §5).
func TestHoldsEveryCloseReleases(t *testing.T) {
	e := streamEnv(t, StreamOptions{MessageTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	h := e.h.(*handler)
	req := text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)
	half := frame(false, wsframe.OpText, bytes.Repeat([]byte{' '}, 600<<10))
	var pages []string
	for i := range MaxBatchCalls {
		pages = append(pages, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getInbox","params":{"sessionId":"%s","limit":1000}}`, i, e.bob.SessionID))
	}
	bigBatch := text("[" + strings.Join(pages, ",") + "]")
	for _, tc := range []struct {
		name string
		run  func(w *wsTest)
	}{
		{"client close", func(w *wsTest) {
			w.send(req, frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
			w.mustClose(wsframe.CloseNormal)
		}},
		{"invalid UTF-8 after 600 KB", func(w *wsTest) {
			w.send(half, frame(true, wsframe.OpContinuation, []byte{0xff}))
			w.mustClose(wsframe.CloseInvalidPayload)
		}},
		{"over 1 MiB in two fragments", func(w *wsTest) {
			w.send(half, frame(true, wsframe.OpContinuation, bytes.Repeat([]byte{' '}, 500<<10)))
			w.mustClose(wsframe.CloseMessageTooBig)
		}},
		{"65 frames", func(w *wsTest) {
			f := [][]byte{frame(false, wsframe.OpText, []byte("["))}
			for range 63 {
				f = append(f, frame(false, wsframe.OpContinuation, nil))
			}
			w.send(append(f, frame(true, wsframe.OpContinuation, []byte("]")))...)
			w.mustClose(wsframe.CloseProtocolError)
		}},
		{"message timeout mid-message", func(w *wsTest) {
			w.send(half)
			w.mustClose(wsframe.ClosePolicyViolation)
		}},
		{"idle", func(w *wsTest) {
			w.mustClose(wsframe.CloseGoingAway)
		}},
		{"socket closed mid-message", func(w *wsTest) {
			w.send(half)
			time.Sleep(50 * time.Millisecond)
			w.conn.Close()
		}},
		{"socket closed mid-batch", func(w *wsTest) {
			w.send(bigBatch)
			w.conn.(*net.TCPConn).SetLinger(0) // a reset, unread answers discarded
			w.conn.Close()
		}},
		{"half-close after a pipeline", func(w *wsTest) {
			w.send(req, req, req)
			w.conn.(*net.TCPConn).CloseWrite()
			for range 3 {
				w.mustText()
			}
			if _, err := w.next(); err == nil {
				t.Fatal("a frame after the client's end of input")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dialWS(t, e.srv)
			tc.run(w)
			w.conn.Close()
			settled(t, h, 3*time.Second)
		})
	}
}

// dialSmallWindow opens a WebSocket to addr from a socket whose receive
// buffer is 4 KiB, so a client that does not read fills it quickly.
func dialSmallWindow(t *testing.T, addr string) *wsTest {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, upgradeRequest(addr)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	return &wsTest{t: t, conn: conn, br: br, resp: resp}
}

// TestHoldsNonReadingClientReleased: a client that pipelines requests and
// never reads (small responses coalesced, then a large page held against
// the response budget) has its connection closed within the write
// deadline, and everything it held is given back (docs/stream.md §5
// "writes": every write has a deadline; a writing connection keeps its
// slot at most that long).
func TestHoldsNonReadingClientReleased(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{Stream: &StreamOptions{CallRate: 1e6}, WriteGrace: 300 * time.Millisecond}})
	h := e.h.(*handler)
	sess := e.session(e.alice, e.bob)
	st, err := tx.Sign(e.alice, e.vm.ChainID(), mustNonce(t, e, e.alice.SessionID), &tx.SendMessage{Session: sess, Ciphertext: bytes.Repeat([]byte{1}, 30<<10)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SendMessageTx(context.Background(), st.Bytes()); err != nil {
		t.Fatal(err)
	}
	e.accept()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: e.h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(BoundListener(ln, 0, 4096)) }()
	t.Cleanup(func() { _ = srv.Close() })
	w := dialSmallWindow(t, ln.Addr().String())
	page := text(`{"jsonrpc":"2.0","id":"page","method":"session.getInbox","params":{"sessionId":"` + e.bob.SessionID + `","limit":10}}`)
	var frames [][]byte
	for i := range 3000 {
		frames = append(frames, text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getNonce","params":{"sessionId":"%s"}}`, i, e.alice.SessionID)))
		if i%500 == 0 {
			frames = append(frames, page)
		}
	}
	go func() {
		_ = w.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = w.conn.Write(bytes.Join(frames, nil))
	}()
	start := time.Now()
	settled(t, h, 4*time.Second)
	t.Logf("the non-reading client's connection ended after %s", time.Since(start).Round(time.Millisecond))
}

// TestHoldsOddRequestsMatchPOST: requests whose parsing takes the less
// common paths (escapes, duplicate members, params as an array, odd ids,
// batches mixing invalid elements and notifications) are answered over
// the WebSocket exactly as over POST (docs/stream.md §2), and read-only
// notifications get nothing.
func TestHoldsOddRequestsMatchPOST(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	alice := e.alice.SessionID
	requests := []string{
		`{"jsonrpc":"2.0","id":1,"method":"session\u002egetConfig"}`,
		`{"jsonrpc":"2\u002e0","id":2,"method":"session.getConfig"}`,
		`{"id":3,"id":"three","jsonrpc":"2.0","method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":4,"method":"session.getNonce","method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":5,"method":"session.getNonce","params":[{"sessionId":"` + alice + `"}]}`,
		`{"jsonrpc":"2.0","id":6,"method":"session.getNonce","params":[]}`,
		`{"jsonrpc":"2.0","id":-7.5e3,"method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":"\u00e9\ud83d\ude00","method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":null,"method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":9,"method":"session.issueTx","params":{"tx":"AAAA"}}`,
		`{"jsonrpc":"2.0","id":10,"method":"session.issueTx","params":{"tx":"` + strings.Repeat("A", 4000) + `"}}`,
		`{"jsonrpc":"2.0","id":11,"method":"session.getNonce","params":{"sessionId":"` + alice + `","extra":1}}`,
		"\t\r\n " + `{"jsonrpc":"2.0","id":12,"method":"session.getConfig"}` + " \n",
		`[{"jsonrpc":"2.0","method":"session.getConfig"},1,{"jsonrpc":"2.0","id":13,"method":"session.status"},{"method":"x"},{"jsonrpc":"2.0","method":5},{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"AA"}}]`,
		`[{"jsonrpc":"2.0","id":14,"method":"session.getConfig"},[],{}]`,
		`[{"jsonrpc":"2.0","id":15,"method":"session.noSuchMethod"},{"jsonrpc":"2.0","id":15,"method":"session.getConfig"}]`,
	}
	w := dialWS(t, e.srv)
	for _, r := range requests {
		// A read-only notification first: it must get no message.
		w.send(text(`{"jsonrpc":"2.0","method":"session.getConfig"}`), text(r))
		got := w.mustText()
		if want := postBody(t, e, r); !bytes.Equal(got, want) {
			t.Errorf("%s:\nWebSocket %s\nPOST      %s", r, got, want)
		}
	}
}

// TestHoldsBudgetBalancedAroundBusyBatches: a batch mixing
// notifications (writes that run, reads that do not), invalid elements,
// large pages and busy refusals leaves both budgets at zero and never
// panics (a release of more than was acquired would), also when an
// execution slot cannot be had (-32015).
func TestHoldsBudgetBalancedAroundBusyBatches(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{Stream: &StreamOptions{}, MaxConcurrent: 1, BusyWait: 100 * time.Millisecond}})
	h := e.h.(*handler)
	var elems []string
	for i := range 40 {
		switch i % 4 {
		case 0:
			elems = append(elems, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getInbox","params":{"sessionId":"%s","limit":1000}}`, i, e.bob.SessionID))
		case 1:
			elems = append(elems, `{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"AAAA"}}`)
		case 2:
			elems = append(elems, `{"jsonrpc":"2.0","method":"session.getInbox","params":{"sessionId":"x","limit":1000}}`, `{"bad":1}`)
		case 3:
			elems = append(elems, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.issueTx","params":{"tx":"AAAA"}}`, i))
		}
	}
	batch := text("[" + strings.Join(elems, ",") + "]")
	// The only execution slot is taken for 250 ms: the first calls of
	// both connections' batches are refused busy after BusyWait, the
	// rest contend for the slot.
	h.slots <- struct{}{}
	a, b := dialWS(t, e.srv), dialWS(t, e.srv)
	a.send(batch, batch, batch)
	b.send(batch, batch, batch)
	time.Sleep(250 * time.Millisecond)
	<-h.slots
	busy := 0
	for _, w := range []*wsTest{a, b} {
		for range 3 {
			m := w.mustText()
			if !bytes.HasPrefix(m, []byte("[")) {
				t.Fatalf("not an array: %.200s", m)
			}
			busy += bytes.Count(m, []byte(`"code":-32015`))
		}
		w.send(frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
		w.mustClose(wsframe.CloseNormal)
	}
	if busy == 0 {
		t.Fatal("no call was refused busy: the test did not test that path")
	}
	settled(t, h, 3*time.Second)
}
