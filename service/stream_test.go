package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
	"github.com/luxfi/session/vm/tx"
)

// TestStreamHandshake checks docs/stream.md section 3: what is refused
// before the upgrade, with which status, and the 101's headers.
func TestStreamHandshake(t *testing.T) {
	allowed := "https://app.example"
	e := streamEnv(t, StreamOptions{OriginAllowed: func(o string) bool { return o == allowed || o == "null" }})
	off := newEnv(t) // no Stream options: the transport is off
	addr := e.srv.Listener.Addr().String()
	const key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
	base := func(lines ...string) string {
		var b strings.Builder
		b.WriteString("GET /rpc HTTP/1.1\r\nHost: " + addr + "\r\n")
		for _, l := range lines {
			b.WriteString(l + "\r\n")
		}
		b.WriteString("\r\n")
		return b.String()
	}
	std := []string{"Upgrade: websocket", "Connection: Upgrade", key, "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: " + Subprotocol}
	without := func(drop string, add ...string) string {
		var ls []string
		for _, l := range std {
			if !strings.HasPrefix(l, drop) {
				ls = append(ls, l)
			}
		}
		return base(append(ls, add...)...)
	}
	for _, tc := range []struct {
		name   string
		addr   string
		req    string
		status int
		header string // a header the answer must carry
	}{
		{"transport off", off.srv.Listener.Addr().String(), base(std...), 400, ""},
		{"no Connection upgrade", addr, without("Connection", "Connection: keep-alive"), 400, ""},
		{"version 12", addr, without("Sec-WebSocket-Version", "Sec-WebSocket-Version: 12"), 426, "Sec-Websocket-Version: 13"},
		{"no version", addr, without("Sec-WebSocket-Version"), 426, "Sec-Websocket-Version: 13"},
		{"key of 15 bytes", addr, without("Sec-WebSocket-Key", "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"), 400, ""},
		{"two keys", addr, base(append(std, key)...), 400, ""},
		{"no subprotocol", addr, without("Sec-WebSocket-Protocol"), 400, ""},
		{"other case of the subprotocol", addr, without("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: Session.JSONRPC.v1"), 400, ""},
		{"v2 only", addr, without("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: session.jsonrpc.v2"), 400, ""},
		{"a body", addr, without("Upgrade", "Upgrade: websocket", "Content-Length: 2"), 400, ""},
		{"origin not allowed", addr, base(append(std, "Origin: https://evil.example")...), 403, ""},
		{"origin null, even if the hook allows it", addr, base(append(std, "Origin: null")...), 403, ""},
		{"two origins", addr, base(append(std, "Origin: "+allowed, "Origin: "+allowed)...), 403, ""},
		{"allowed origin", addr, base(append(std, "Origin: "+allowed)...), 101, "Sec-Websocket-Protocol: " + Subprotocol},
		{"protocol among others, case-insensitive tokens", addr, without("Sec-WebSocket-Protocol", "Sec-WebSocket-Protocol: x, "+Subprotocol, "Upgrade: WebSocket"), 101, "Sec-Websocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dialRaw(t, tc.addr, tc.req)
			if w.resp.StatusCode != tc.status {
				body, _ := io.ReadAll(io.LimitReader(w.resp.Body, 512))
				t.Fatalf("HTTP %d %s, want %d", w.resp.StatusCode, body, tc.status)
			}
			if tc.header != "" {
				name, value, _ := strings.Cut(tc.header, ": ")
				if got := w.resp.Header.Get(name); got != value {
					t.Fatalf("%s: %q, want %q", name, got, value)
				}
			}
			if tc.status != 101 {
				var r rawResponse
				if err := json.NewDecoder(w.resp.Body).Decode(&r); err != nil || r.Error == nil {
					t.Fatalf("a refusal must carry a JSON-RPC error: %v", err)
				}
				return
			}
			if w.resp.Header.Get("Sec-Websocket-Extensions") != "" {
				t.Fatal("the node negotiated an extension")
			}
			// The connection works.
			w.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`))
			if !bytes.Contains(w.mustText(), []byte(`"id":1`)) {
				t.Fatal("no response")
			}
		})
	}
}

// TestStreamMatchesPOST sends the same requests over POST and over one
// WebSocket (pipelined, in one write) and requires the same answers, in
// order, for every request that has one: the transports differ in
// framing only (docs/stream.md section 2).
func TestStreamMatchesPOST(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	nonce, err := e.client.Nonce(context.Background(), e.alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	sess := e.session(e.alice, e.bob)
	_ = nonce
	sign := func(n uint64) string {
		nonce, _ := e.client.Nonce(context.Background(), e.alice.SessionID)
		p := &tx.SendMessage{Session: sess, Ciphertext: bytes.Repeat([]byte{7}, 64)}
		st, err := tx.Sign(e.alice, e.vm.ChainID(), nonce+n, p)
		if err != nil {
			t.Fatal(err)
		}
		return b64(st.Bytes())
	}
	tx1, tx2 := sign(0), sign(1)
	requests := []string{
		`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`,
		`{"jsonrpc":"2.0","id":"two","method":"session.getNonce","params":{"sessionId":"` + e.alice.SessionID + `"}}`,
		`{"jsonrpc":"2.0","id":3,"method":"session.noSuchMethod"}`,
		`{"jsonrpc":"2.0","id":4,"method":"session.getSession","params":{"session":"not an id"}}`,
		`{"jsonrpc":"2.0","id":5,"method":"session.getInbox","params":{"sessionId":"` + e.bob.SessionID + `","limit":5}}`,
		`[{"jsonrpc":"2.0","id":6,"method":"session.getConfig"},{"bad":1},{"jsonrpc":"2.0","method":"session.getConfig"},{"jsonrpc":"2.0","id":7,"method":"session.getNonce","params":{"sessionId":"x"}}]`,
	}
	// The writes, which change state, are compared against themselves:
	// over POST a duplicate is refused, so each runs once, the first over
	// the WebSocket and its duplicate over POST.
	writes := []string{
		`{"jsonrpc":"2.0","id":8,"method":"session.sendMessage","params":{"tx":"` + tx1 + `"}}`,
		`[{"jsonrpc":"2.0","id":9,"method":"session.issueTx","params":{"tx":"` + tx2 + `"}}]`,
	}
	var want [][]byte
	for _, r := range requests {
		want = append(want, postBody(t, e, r))
	}
	w := dialWS(t, e.srv)
	var frames [][]byte
	for _, r := range append(requests, writes...) {
		frames = append(frames, text(r))
	}
	w.send(frames...)
	for i, r := range requests {
		got := w.mustText()
		if !bytes.Equal(got, want[i]) {
			t.Fatalf("request %d %s:\nWebSocket %s\nPOST      %s", i, r, got, want[i])
		}
	}
	for i, r := range writes {
		got := w.mustText()
		if !bytes.Contains(got, []byte(`"txID"`)) {
			t.Fatalf("write %d not admitted: %s", i, got)
		}
		if dup := postBody(t, e, r); !bytes.Contains(dup, []byte(fmt.Sprint(int(CodeDuplicateTx)))) {
			t.Fatalf("write %d over POST after the WebSocket: %s, want a duplicate", i, dup)
		}
	}
}

// TestStreamNotifications: a notification that reads is not run and gets
// no answer; one that writes runs (its transaction is admitted) and gets
// no answer; a batch of only notifications gets no message.
func TestStreamNotifications(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	st, err := tx.Sign(e.alice, e.vm.ChainID(), mustNonce(t, e, e.alice.SessionID), &tx.SendMessage{Session: sess, Ciphertext: []byte("hello")})
	if err != nil {
		t.Fatal(err)
	}
	w := dialWS(t, e.srv)
	w.send(
		text(`{"jsonrpc":"2.0","method":"session.getConfig"}`),
		text(`[{"jsonrpc":"2.0","method":"session.status"},{"jsonrpc":"2.0","method":"session.getNonce","params":{"sessionId":"x"}}]`),
		text(`{"jsonrpc":"2.0","method":"session.sendMessage","params":{"tx":"`+b64(st.Bytes())+`"}}`),
		text(`{"jsonrpc":"2.0","id":"last","method":"session.getTxStatus","params":{"txID":"`+st.ID().String()+`"}}`),
	)
	got := w.mustText()
	if !bytes.Contains(got, []byte(`"id":"last"`)) || !bytes.Contains(got, []byte(`"pending"`)) {
		t.Fatalf("the first answer must be the last request's, with the notified transaction pending: %s", got)
	}
}

func mustNonce(t testing.TB, e *env, sessionID string) uint64 {
	t.Helper()
	n, err := e.client.Nonce(context.Background(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStreamBatchFragments: a batch's response is one message in
// fragments, one element per fragment, equal to the POST answer.
func TestStreamBatchFragments(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	var calls []string
	for i := range 40 {
		calls = append(calls, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getNonce","params":{"sessionId":"%s"}}`, i, e.alice.SessionID))
	}
	body := "[" + strings.Join(calls, ",") + "]"
	w := dialWS(t, e.srv)
	w.send(text(body))
	m, err := w.next()
	if err != nil {
		t.Fatal(err)
	}
	if m.frames != 41 {
		t.Fatalf("%d fragments, want 41 (one per element and the closing bracket)", m.frames)
	}
	want := postBody(t, e, body)
	if !bytes.Equal(m.payload, want) {
		t.Fatalf("WebSocket %s\nPOST %s", m.payload, want)
	}
}

// TestStreamFailing: each fault of the client closes the connection with
// its code, after the answers to every message before it.
func TestStreamFailing(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	ok := text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)
	unmasked := []byte{0x81, 0x02, '{', '}'}
	for _, tc := range []struct {
		name string
		bad  []byte
		code uint16
	}{
		{"unmasked", unmasked, wsframe.CloseProtocolError},
		{"binary", frame(true, wsframe.OpBinary, []byte("{}")), wsframe.CloseUnsupportedData},
		{"not JSON", text(`{"jsonrpc":`), wsframe.CloseInvalidPayload},
		{"empty", text(``), wsframe.CloseInvalidPayload},
		{"not a request", text(`42`), wsframe.ClosePolicyViolation},
		{"request without method", text(`{"jsonrpc":"2.0","id":2}`), wsframe.ClosePolicyViolation},
		{"empty batch", text(`[]`), wsframe.ClosePolicyViolation},
		{"invalid UTF-8", text("{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"x\"}"), wsframe.CloseInvalidPayload},
		{"over 1 MiB", frame(true, wsframe.OpText, make([]byte, MaxBodySize+1)), wsframe.CloseMessageTooBig},
		{"257 calls", text("[" + strings.Repeat(`{"jsonrpc":"2.0","method":"session.status"},`, 256) + `{"jsonrpc":"2.0","method":"session.status"}]`), wsframe.ClosePolicyViolation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dialWS(t, e.srv)
			w.send(ok, tc.bad, ok)
			if got := w.mustText(); !bytes.Contains(got, []byte(`"id":1`)) {
				t.Fatalf("the message before the fault must be answered: %s", got)
			}
			w.mustClose(tc.code)
			// Then the node closes: nothing more (the message after the
			// fault did not run).
			_ = w.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if f, err := w.readFrame(); err == nil {
				t.Fatalf("a frame after the close: %d %q", f.op, f.payload)
			}
		})
	}
}

// TestStreamClientClose: the node answers a client's close with 1000
// after the answers to everything sent before it.
func TestStreamClientClose(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w := dialWS(t, e.srv)
	var frames [][]byte
	for i := range 20 {
		frames = append(frames, text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, i)))
	}
	frames = append(frames, frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
	w.send(frames...)
	for i := range 20 {
		if got := w.mustText(); !bytes.Contains(got, fmt.Appendf(nil, `"id":%d}`, i)) {
			t.Fatalf("answer %d: %s", i, got)
		}
	}
	w.mustClose(wsframe.CloseNormal)
}

// TestStreamPings: a client's pings are answered in stream order, and
// pings read together get one pong, the last one's; the liveness ping
// comes when the client is silent, and a client that does not answer
// it is closed (1001).
func TestStreamPings(t *testing.T) {
	e := streamEnv(t, StreamOptions{PingInterval: 150 * time.Millisecond})
	w := dialWS(t, e.srv)
	w.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`),
		frame(true, wsframe.OpPing, []byte("a")), frame(true, wsframe.OpPing, []byte("b")), frame(true, wsframe.OpPing, []byte("c")))
	if got := w.mustText(); !bytes.Contains(got, []byte(`"id":1`)) {
		t.Fatal(string(got))
	}
	m, err := w.next()
	if err != nil || m.op != wsframe.OpPong || string(m.payload) != "c" {
		t.Fatalf("got %d %q %v, want one pong \"c\"", m.op, m.payload, err)
	}
	// Silent now: the node pings, then closes.
	m, err = w.next()
	if err != nil || m.op != wsframe.OpPing {
		t.Fatalf("got %d %v, want the liveness ping", m.op, err)
	}
	w.mustClose(wsframe.CloseGoingAway)
}

// TestStreamIdle: a client that answers pings but sends no message is
// closed after IdleTimeout (1001).
func TestStreamIdle(t *testing.T) {
	e := streamEnv(t, StreamOptions{PingInterval: 50 * time.Millisecond, IdleTimeout: 400 * time.Millisecond})
	start := time.Now() // before the node's idle clock starts
	w := dialWS(t, e.srv)
	pings := 0
	for {
		m, err := w.next()
		if err != nil {
			t.Fatal(err)
		}
		if m.op == wsframe.OpPing {
			pings++
			w.send(frame(true, wsframe.OpPong, m.payload))
			continue
		}
		if m.op != wsframe.OpClose || m.code != wsframe.CloseGoingAway || m.reason != "idle" {
			t.Fatalf("got %d %d %q, want close 1001 idle", m.op, m.code, m.reason)
		}
		break
	}
	if pings < 2 || time.Since(start) < 400*time.Millisecond {
		t.Fatalf("closed after %s and %d pings answered", time.Since(start), pings)
	}
}

// TestStreamMessageTimeout: a message that does not arrive whole within
// MessageTimeout of its first byte closes the connection (1008).
func TestStreamMessageTimeout(t *testing.T) {
	e := streamEnv(t, StreamOptions{MessageTimeout: 200 * time.Millisecond})
	w := dialWS(t, e.srv)
	f := text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)
	w.send(f[:10])
	w.mustClose(wsframe.ClosePolicyViolation)
}

// TestStreamControlFlood: more control frames than the bucket allows
// close the connection (1008).
func TestStreamControlFlood(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w := dialWS(t, e.srv)
	var frames [][]byte
	for range ctlBurst + 5 {
		frames = append(frames, frame(true, wsframe.OpPong, nil))
	}
	w.send(frames...)
	w.mustClose(wsframe.ClosePolicyViolation)
}

// TestStreamEarlyFrames: frames sent with the handshake, before the 101,
// close the connection (1002) after the 101.
func TestStreamEarlyFrames(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	addr := e.srv.Listener.Addr().String()
	w := dialRaw(t, addr, upgradeRequest(addr)+string(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)))
	if w.resp.StatusCode != 101 {
		t.Fatalf("HTTP %d", w.resp.StatusCode)
	}
	w.mustClose(wsframe.CloseProtocolError)
}

// TestStreamMaxConns: an upgrade beyond MaxConns is answered 503 with
// Retry-After; a closed connection frees its place.
func TestStreamMaxConns(t *testing.T) {
	e := streamEnv(t, StreamOptions{MaxConns: 1})
	w := dialWS(t, e.srv)
	addr := e.srv.Listener.Addr().String()
	second := dialRaw(t, addr, upgradeRequest(addr))
	if second.resp.StatusCode != http.StatusServiceUnavailable || second.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("HTTP %d, Retry-After %q; want 503 with Retry-After", second.resp.StatusCode, second.resp.Header.Get("Retry-After"))
	}
	w.send(frame(true, wsframe.OpClose, []byte{0x03, 0xE8}))
	w.mustClose(wsframe.CloseNormal)
	deadline := time.Now().Add(5 * time.Second)
	for {
		third := dialRaw(t, addr, upgradeRequest(addr))
		if third.resp.StatusCode == 101 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HTTP %d after the first closed", third.resp.StatusCode)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamCallRate: the call bucket paces a connection: it stops being
// read, nothing is refused.
func TestStreamCallRate(t *testing.T) {
	e := streamEnv(t, StreamOptions{CallRate: 50, CallBurst: 5})
	w := dialWS(t, e.srv)
	var frames [][]byte
	for i := range 25 {
		frames = append(frames, text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getConfig"}`, i)))
	}
	start := time.Now()
	w.send(frames...)
	for i := range 25 {
		if got := w.mustText(); !bytes.Contains(got, fmt.Appendf(nil, `"id":%d}`, i)) || bytes.Contains(got, []byte(`"error"`)) {
			t.Fatalf("answer %d: %s", i, got)
		}
	}
	// 25 calls, 5 at once, then 50/s: at least 20/50 s.
	if d := time.Since(start); d < 380*time.Millisecond {
		t.Fatalf("25 calls answered in %s: the bucket did not pace them", d)
	}
}

// TestStreamShutdown: ShutdownStreams closes every WebSocket with 1001
// after the answers to what it read, and refuses new upgrades.
func TestStreamShutdown(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	w1, w2 := dialWS(t, e.srv), dialWS(t, e.srv)
	w1.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`))
	if got := w1.mustText(); !bytes.Contains(got, []byte(`"id":1`)) {
		t.Fatal(string(got))
	}
	sd := e.h.(StreamShutdowner)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sd.ShutdownStreams(ctx); err != nil {
		t.Fatal(err)
	}
	w1.mustClose(wsframe.CloseGoingAway)
	w2.mustClose(wsframe.CloseGoingAway)
	addr := e.srv.Listener.Addr().String()
	if r := dialRaw(t, addr, upgradeRequest(addr)); r.resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("upgrade after shutdown: HTTP %d, want 503", r.resp.StatusCode)
	}
}

// countingListener counts the writes to its connections.
type countingListener struct {
	net.Listener
	writes *atomic.Int64
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.writes}, nil
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestStreamCoalesces: pipelined requests that arrive together are
// answered in far fewer writes than responses (docs/stream.md section 4,
// "Writing"), while a lone request is answered at once.
func TestStreamCoalesces(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	var writes atomic.Int64
	srv := httptest.NewUnstartedServer(e.h)
	srv.Listener = countingListener{srv.Listener, &writes}
	srv.Start()
	t.Cleanup(srv.Close)
	w := dialWS(t, srv)
	w.send(text(`{"jsonrpc":"2.0","id":0,"method":"session.getConfig"}`))
	w.mustText() // a lone request: answered without waiting for more
	before := writes.Load()
	var frames [][]byte
	for i := range 50 {
		frames = append(frames, text(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"session.getNonce","params":{"sessionId":"%s"}}`, i, e.alice.SessionID)))
	}
	w.send(frames...)
	for range 50 {
		w.mustText()
	}
	if n := writes.Load() - before; n > 10 {
		t.Fatalf("50 pipelined answers took %d writes", n)
	}
}

// TestStreamEviction: when every connection is taken, a WebSocket idle
// between messages is closed (1013) to make room, the one idle longest
// first, like an idle keep-alive connection.
func TestStreamEviction(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bl := BoundListener(ln, 2, 0)
	srv := &http.Server{Handler: e.h, ConnState: ConnStateHook(bl), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(bl) }()
	t.Cleanup(func() { _ = srv.Close() })
	addr := ln.Addr().String()
	open := func() *wsTest {
		w := dialRaw(t, addr, upgradeRequest(addr))
		if w.resp.StatusCode != 101 {
			t.Fatalf("HTTP %d", w.resp.StatusCode)
		}
		w.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`))
		w.mustText()
		return w
	}
	older := open()
	time.Sleep(20 * time.Millisecond)
	newer := open()
	time.Sleep(20 * time.Millisecond)
	// A third client: the older WebSocket makes room.
	body := postTo(t, "http://"+addr+"/", `{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`)
	if !bytes.Contains(body, []byte(`"result"`)) {
		t.Fatalf("the newcomer was not served: %s", body)
	}
	older.mustClose(wsframe.CloseTryAgainLater)
	// The newer one still works.
	newer.send(text(`{"jsonrpc":"2.0","id":2,"method":"session.getConfig"}`))
	if got := newer.mustText(); !bytes.Contains(got, []byte(`"id":2`)) {
		t.Fatal(string(got))
	}
}

func postTo(t testing.TB, url, body string) []byte {
	t.Helper()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b
}

// TestStreamBodyBudget: a message the body budget cannot hold within
// BusyWait closes its connection (1013) after the answers before it; the
// message that holds the budget is unaffected.
func TestStreamBodyBudget(t *testing.T) {
	e := newEnvWith(t, envOpts{handler: Options{Stream: &StreamOptions{}, BodyBudget: 2 * (MaxBodySize + 1), BusyWait: 200 * time.Millisecond}})
	a, b := dialWS(t, e.srv), dialWS(t, e.srv)
	// a sends 600 KB of a 1 MiB frame and stops: it holds 1.2 MB.
	big := frame(true, wsframe.OpText, bytes.Repeat([]byte{' '}, MaxBodySize))
	a.send(big[:600<<10])
	time.Sleep(100 * time.Millisecond)
	// b's message of 600 KB needs 1.2 MB more: refused after BusyWait.
	b.send(text(`{"jsonrpc":"2.0","id":1,"method":"session.getConfig"}`), frame(true, wsframe.OpText, bytes.Repeat([]byte{' '}, 600<<10)))
	if got := b.mustText(); !bytes.Contains(got, []byte(`"id":1`)) {
		t.Fatal(string(got))
	}
	b.mustClose(wsframe.CloseTryAgainLater)
	// a completes its message (spaces only: not JSON, 1007) and the
	// budget is whole again.
	a.send(big[600<<10:])
	a.mustClose(wsframe.CloseInvalidPayload)
	deadline := time.Now().Add(5 * time.Second)
	for e.h.(*handler).body.inUse() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of body budget still held", e.h.(*handler).body.inUse())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStreamManyConns: connections that wait and wake at once share the
// pooled read buffers; every answer reaches its own connection, in
// order.
func TestStreamManyConns(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	const conns, rounds, per = 12, 20, 8
	errs := make(chan error, conns)
	for c := range conns {
		go func() {
			w := dialWS(t, e.srv)
			for r := range rounds {
				var frames [][]byte
				for i := range per {
					// Every message larger than a small read, some larger
					// than the read buffer's share.
					pad := strings.Repeat(" ", 100+(c*977+r*131+i*53)%9000)
					frames = append(frames, text(fmt.Sprintf(`{"jsonrpc":"2.0","id":"%d-%d-%d","method":"session.getConfig"}%s`, c, r, i, pad)))
				}
				if _, err := w.conn.Write(bytes.Join(frames, nil)); err != nil {
					errs <- err
					return
				}
				for i := range per {
					m, err := w.next()
					if err != nil {
						errs <- err
						return
					}
					if want := fmt.Sprintf(`"id":"%d-%d-%d"}`, c, r, i); !bytes.Contains(m.payload, []byte(want)) {
						errs <- fmt.Errorf("connection %d: got %.120s, want id %s", c, m.payload, want)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range conns {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
