package wsclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// TestHandshake: the request carries what section 3 requires (and the
// caller's Origin), and a call goes through afterwards.
func TestHandshake(t *testing.T) {
	got := make(chan *http.Request, 1)
	_, url := startNodeWith(t, func(sc *serverConn, req *http.Request) bool {
		got <- req
		return accept101(sc, req)
	}, echo)
	c := dial(t, url+"?x=1", Options{Header: http.Header{"Origin": {"http://127.0.0.1:9650"}}})
	req := <-got
	key, _ := base64.StdEncoding.DecodeString(req.Header.Get("Sec-WebSocket-Key"))
	switch {
	case req.Method != "GET" || req.URL.RequestURI() != "/rpc?x=1" || req.Proto != "HTTP/1.1":
		t.Fatalf("request line %s %s %s", req.Method, req.URL.RequestURI(), req.Proto)
	case req.Host != strings.TrimPrefix(strings.TrimSuffix(url, "/rpc"), "ws://"):
		t.Fatalf("Host %q", req.Host)
	case req.Header.Get("Upgrade") != "websocket" || req.Header.Get("Connection") != "Upgrade":
		t.Fatalf("Upgrade %q Connection %q", req.Header.Get("Upgrade"), req.Header.Get("Connection"))
	case len(key) != 16:
		t.Fatalf("key %q", req.Header.Get("Sec-WebSocket-Key"))
	case req.Header.Get("Sec-WebSocket-Version") != "13" || req.Header.Get("Sec-WebSocket-Protocol") != Subprotocol:
		t.Fatalf("version %q protocol %q", req.Header.Get("Sec-WebSocket-Version"), req.Header.Get("Sec-WebSocket-Protocol"))
	case req.Header.Get("Origin") != "http://127.0.0.1:9650":
		t.Fatalf("Origin %q", req.Header.Get("Origin"))
	case req.Header.Get("Sec-WebSocket-Extensions") != "" || req.ContentLength != 0:
		t.Fatal("extensions or a body offered")
	}
	resp, err := c.Call(context.Background(), request(1, "hi"), "1")
	if err != nil || string(resp) != response("1", `"hi"`) {
		t.Fatalf("%s, %v", resp, err)
	}
	// The http:// scheme is ws://.
	c2 := dial(t, "http"+strings.TrimPrefix(url, "ws"), Options{})
	if _, err := c2.Call(context.Background(), request(1, "x"), "1"); err != nil {
		t.Fatal(err)
	}
}

// TestHandshakeRefused: every answer the client must refuse.
func TestHandshakeRefused(t *testing.T) {
	good := func(req *http.Request) map[string]string {
		accept, _ := wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key"))
		return map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Accept": accept, "Sec-WebSocket-Protocol": Subprotocol}
	}
	cases := []struct {
		name   string
		answer func(req *http.Request) string
		check  func(t *testing.T, err error)
	}{
		{"503 with Retry-After", func(*http.Request) string {
			return "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 2000\r\n\r\n" + strings.Repeat("b", 2000)
		}, func(t *testing.T, err error) {
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != 503 || he.RetryAfter != 7*time.Second || len(he.Body) != 1024 || !Retryable(err) {
				t.Fatalf("%#v", err)
			}
		}},
		{"403", func(*http.Request) string {
			return "HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"
		}, func(t *testing.T, err error) {
			var he *HandshakeError
			if !errors.As(err, &he) || he.Status != 403 || he.Body != "forbidden" || he.RetryAfter != 0 || Retryable(err) {
				t.Fatalf("%#v", err)
			}
		}},
		{"426", func(*http.Request) string {
			return "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
		}, status(426)},
		{"bad accept key", answer101(good, "Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), reason("Accept")},
		{"no subprotocol", answer101(good, "Sec-WebSocket-Protocol", ""), reason("subprotocol")},
		{"other subprotocol", answer101(good, "Sec-WebSocket-Protocol", "session.jsonrpc.v2"), reason("subprotocol")},
		{"subprotocol list", answer101(good, "Sec-WebSocket-Protocol", Subprotocol+", x"), reason("subprotocol")},
		{"extension", func(req *http.Request) string {
			return strings.TrimSuffix(answer101(good, "", "")(req), "\r\n") + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n"
		}, reason("extension")},
		{"no Upgrade", answer101(good, "Upgrade", ""), reason("Upgrade")},
		{"Upgrade other", answer101(good, "Upgrade", "h2c"), reason("Upgrade")},
		{"no Connection", answer101(good, "Connection", ""), reason("Connection")},
		{"header over 16 KiB", func(req *http.Request) string {
			return strings.TrimSuffix(answer101(good, "", "")(req), "\r\n") + "X-Pad: " + strings.Repeat("p", 17<<10) + "\r\n\r\n"
		}, func(t *testing.T, err error) {
			if !errors.Is(err, errResponseTooLarge) {
				t.Fatalf("%v", err)
			}
		}},
		{"not HTTP", func(*http.Request) string { return "SSH-2.0-OpenSSH\r\n\r\n" }, func(t *testing.T, err error) {
			if err == nil {
				t.Fatal("accepted")
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, url := startNodeWith(t, func(sc *serverConn, req *http.Request) bool {
				sc.write([]byte(c.answer(req)))
				return false
			}, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := Dial(ctx, url, Options{})
			if err == nil {
				conn.Close()
				t.Fatal("handshake accepted")
			}
			c.check(t, err)
		})
	}
	t.Run("two accept keys", func(t *testing.T) {
		_, url := startNodeWith(t, func(sc *serverConn, req *http.Request) bool {
			a := answer101(good, "", "")(req)
			sc.write([]byte(strings.TrimSuffix(a, "\r\n") + "Sec-WebSocket-Accept: x\r\n\r\n"))
			return false
		}, nil)
		if _, err := Dial(context.Background(), url, Options{}); err == nil {
			t.Fatal("accepted")
		}
	})
}

func answer101(good func(*http.Request) map[string]string, name, value string) func(*http.Request) string {
	return func(req *http.Request) string {
		h := good(req)
		if name != "" {
			h[name] = value
		}
		s := "HTTP/1.1 101 Switching Protocols\r\n"
		for _, k := range []string{"Upgrade", "Connection", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol"} {
			if h[k] != "" {
				s += k + ": " + h[k] + "\r\n"
			}
		}
		return s + "\r\n"
	}
}

func status(code int) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var he *HandshakeError
		if !errors.As(err, &he) || he.Status != code {
			t.Fatalf("%v", err)
		}
	}
}

func reason(word string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var he *HandshakeError
		if !errors.As(err, &he) || he.Status != 101 || !strings.Contains(he.Reason, word) || Retryable(err) {
			t.Fatalf("%v", err)
		}
	}
}

// TestHandshakeTimeout: a node that never answers is given up on when ctx
// ends.
func TestHandshakeTimeout(t *testing.T) {
	_, url := startNodeWith(t, func(sc *serverConn, req *http.Request) bool {
		time.Sleep(time.Second)
		return false
	}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := Dial(ctx, url, Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v", err)
	}
	if d := time.Since(start); d > 800*time.Millisecond {
		t.Fatalf("took %v", d)
	}
}

// TestFramesRightAfter101: bytes the node sends right after its 101, in
// the same write, are frames.
func TestFramesRightAfter101(t *testing.T) {
	notes := make(chan string, 1)
	_, url := startNodeWith(t, func(sc *serverConn, req *http.Request) bool {
		accept, _ := wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key"))
		sc.write(wsframe.AppendText([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: "+
			accept+"\r\nSec-WebSocket-Protocol: "+Subprotocol+"\r\n\r\n"), []byte(`{"jsonrpc":"2.0","method":"hello"}`)))
		return true
	}, echo)
	dial(t, url, Options{OnNotification: func(m []byte) { notes <- string(m) }})
	select {
	case m := <-notes:
		if m != `{"jsonrpc":"2.0","method":"hello"}` {
			t.Fatalf("%q", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
}

// TestPipelining: 1,000 calls from 8 goroutines, sent without waiting,
// each answered with its own response.
func TestPipelining(t *testing.T) {
	_, url := startNode(t, echo)
	c := dial(t, url, Options{})
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			var calls []*Call
			var want []string
			for range 125 {
				id := int(next.Add(1))
				param := strings.Repeat(strconv.Itoa(id), id%50)
				call, err := c.Go(request(id, param), strconv.Itoa(id))
				if err != nil {
					errs <- err
					return
				}
				calls = append(calls, call)
				want = append(want, response(strconv.Itoa(id), strconv.Quote(param)))
			}
			for i, call := range calls {
				<-call.Done
				if call.Err != nil || string(call.Response) != want[i] {
					errs <- fmt.Errorf("call %d: %q, %v", i, call.Response, call.Err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// A batch is answered by an array; a notification by nothing.
	if err := c.Notify([]byte(`{"jsonrpc":"2.0","method":"session.note"}`)); err != nil {
		t.Fatal(err)
	}
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
}

// TestBatch: a batch call takes an array response.
func TestBatch(t *testing.T) {
	_, url := startNode(t, func(sc *serverConn) {
		for {
			m, err := sc.next()
			if err != nil || m.Op == wsframe.OpClose {
				return
			}
			if m.Payload[0] == '[' {
				sc.text(`[` + response("1", "1") + `,` + response("2", "2") + `]`)
			} else {
				sc.text(response(requestID(m.Payload), "0"))
			}
		}
	})
	c := dial(t, url, Options{})
	resp, err := c.Call(context.Background(), []byte(`[`+string(request(1, ""))+`,`+string(request(2, ""))+`]`), "")
	if err != nil || !bytes.HasPrefix(resp, []byte("[{")) {
		t.Fatalf("%s %v", resp, err)
	}
	if _, err := c.Call(context.Background(), request(3, ""), "3"); err != nil {
		t.Fatal(err)
	}
}

// TestUntrusted: every answer section 4 calls untrusted fails the
// connection and all pending calls with ErrUntrustedNode, and the client
// sends a close frame with the fitting code.
func TestUntrusted(t *testing.T) {
	cases := []struct {
		name  string
		batch bool   // the second call is a batch
		ok    int    // how many calls are answered before the fault
		reply []byte // what the node sends after reading both requests
		code  uint16 // the client's close code
		opts  Options
	}{
		{name: "out of order", reply: txt(response("2", "0") + "|" + response("1", "0")), code: 1008},
		{name: "unknown id", reply: txt(response("7", "0")), code: 1008},
		{name: "repeated id", ok: 1, reply: txt(response("1", "0") + "|" + response("1", "0")), code: 1008},
		{name: "id as a string", reply: txt(response(`"1"`, "0")), code: 1008},
		{name: "id null", reply: txt(response("null", "0")), code: 1008},
		{name: "id 1.0", reply: txt(response("1.0", "0")), code: 1008},
		{name: "response with nothing pending", ok: 2, reply: txt(response("1", "0") + "|" + response("2", "0") + "|" + response("3", "0")), code: 1008},
		{name: "array for an object", reply: txt(`[` + response("1", "0") + `]`), code: 1008},
		{name: "object for a batch", batch: true, ok: 1, reply: txt(response("1", "0") + "|" + response("2", "0")), code: 1008},
		{name: "two ids", reply: txt(`{"id":1,"result":0,"id":2}`), code: 1007},
		{name: "ID in capitals", reply: txt(`{"ID":1,"result":0}`), code: 1007},
		{name: "escaped key", reply: txt(`{"\u0069d":1,"result":0}`), code: 1007},
		{name: "not JSON", reply: txt(`{"id":1,"result":0`), code: 1007},
		{name: "a string", reply: txt(`"hello"`), code: 1007},
		{name: "trailing data", reply: txt(response("1", "0") + " x"), code: 1007},
		{name: "mismatched brackets", reply: txt(`{"result":[1},"id":1}`), code: 1007},
		{name: "notification, none expected", reply: txt(`{"jsonrpc":"2.0","method":"x"}`), code: 1008},
		{name: "masked frame", reply: []byte{0x81, 0x82, 1, 2, 3, 4, '{' ^ 1, '}' ^ 2}, code: 1002},
		{name: "binary", reply: []byte{0x82, 2, '{', '}'}, code: 1003},
		{name: "invalid UTF-8", reply: wsframe.AppendText(nil, []byte("{\"id\":1,\"result\":\"\xff\"}")), code: 1007},
		{name: "over MaxMessage", reply: wsframe.AppendText(nil, []byte(response("1", `"`+strings.Repeat("a", 2000)+`"`))), code: 1009, opts: Options{MaxMessage: 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			gotClose := make(chan uint16, 1)
			_, url := startNode(t, func(sc *serverConn) {
				for range 2 {
					if _, err := sc.next(); err != nil {
						return
					}
				}
				sc.write(tc.reply)
				gotClose <- expectClose(sc)
			})
			c := dial(t, url, tc.opts)
			call1, err1 := c.Go(request(1, ""), "1")
			second, id2 := request(2, ""), "2"
			if tc.batch {
				second, id2 = []byte(`[`+string(second)+`]`), ""
			}
			call2, err2 := c.Go(second, id2)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			wait(t, call1)
			wait(t, call2)
			if !isUntrusted(c.Err()) {
				t.Fatalf("connection: %v", c.Err())
			}
			// Calls answered correctly before the fault keep their response.
			for i, call := range []*Call{call1, call2} {
				if i < tc.ok {
					if call.Err != nil || call.Response == nil {
						t.Fatalf("call %d: %v", i+1, call.Err)
					}
				} else if !isUntrusted(call.Err) || Retryable(call.Err) {
					t.Fatalf("call %d: %v", i+1, call.Err)
				}
			}
			select {
			case code := <-gotClose:
				if code != tc.code {
					t.Fatalf("close code %d, want %d", code, tc.code)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no close frame")
			}
			if _, err := c.Go(request(3, ""), "3"); !isUntrusted(err) {
				t.Fatalf("Go after the failure: %v", err)
			}
		})
	}
}

// txt turns "|"-separated messages into text frames.
func txt(msgs string) []byte {
	var out []byte
	for m := range strings.SplitSeq(msgs, "|") {
		out = wsframe.AppendText(out, []byte(m))
	}
	return out
}

// TestNotification: a notification between responses goes to
// OnNotification, as a copy the callback keeps; the calls are answered.
func TestNotification(t *testing.T) {
	note := `{"jsonrpc":"2.0","method":"session.inboxChanged","params":{"subscription":"3f1c","position":1240}}`
	_, url := startNode(t, func(sc *serverConn) {
		for i := 0; ; i++ {
			m, err := sc.next()
			if err != nil || m.Op == wsframe.OpClose {
				return
			}
			if i == 0 {
				sc.text(note)
			}
			sc.text(response(requestID(m.Payload), "0"))
		}
	})
	var mu sync.Mutex
	var got [][]byte
	c := dial(t, url, Options{OnNotification: func(m []byte) {
		mu.Lock()
		got = append(got, m)
		mu.Unlock()
	}})
	for i := range 3 {
		if _, err := c.Call(context.Background(), request(i, strings.Repeat("x", 100)), strconv.Itoa(i)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || string(got[0]) != note {
		t.Fatalf("notifications: %q", got)
	}
}

// TestNodeClose: the node's close frame fails pending calls with a
// CloseError, which is echoed; Retryable separates the client-fault codes.
func TestNodeClose(t *testing.T) {
	for _, tc := range []struct {
		code      uint16
		retryable bool
	}{{1013, true}, {1001, true}, {1011, true}, {1008, false}, {1002, false}, {1009, false}} {
		t.Run(strconv.Itoa(int(tc.code)), func(t *testing.T) {
			echoed := make(chan uint16, 1)
			_, url := startNode(t, func(sc *serverConn) {
				sc.next()
				sc.close(tc.code, "bye")
				echoed <- expectClose(sc)
			})
			c := dial(t, url, Options{})
			call, _ := c.Go(request(1, ""), "1")
			wait(t, call)
			var ce *CloseError
			if !errors.As(call.Err, &ce) || ce.Code != tc.code || ce.Reason != "bye" || Retryable(call.Err) != tc.retryable {
				t.Fatalf("%v (retryable %v)", call.Err, Retryable(call.Err))
			}
			if err := waitDone(t, c); !errors.As(err, &ce) {
				t.Fatalf("connection: %v", err)
			}
			if code := <-echoed; code != tc.code {
				t.Fatalf("echoed %d", code)
			}
		})
	}
}

// TestConnectionLost: the node goes away without a close frame.
func TestConnectionLost(t *testing.T) {
	_, url := startNode(t, func(sc *serverConn) { sc.next() })
	c := dial(t, url, Options{})
	call, _ := c.Go(request(1, ""), "1")
	wait(t, call)
	if !errors.Is(call.Err, ErrConnectionLost) || !Retryable(call.Err) {
		t.Fatalf("%v", call.Err)
	}
}

// TestCallTimeout: a call whose context ends closes the connection; the
// other pending call fails with ErrAbandoned, and the node sees a close
// frame.
func TestCallTimeout(t *testing.T) {
	gotClose := make(chan uint16, 1)
	_, url := startNode(t, func(sc *serverConn) {
		sc.next()
		sc.next()
		gotClose <- expectClose(sc)
	})
	c := dial(t, url, Options{})
	other, _ := c.Go(request(1, ""), "1")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := c.Call(ctx, request(2, ""), "2"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call: %v", err)
	}
	wait(t, other)
	if !errors.Is(other.Err, ErrAbandoned) || !errors.Is(c.Err(), ErrAbandoned) {
		t.Fatalf("other: %v; conn: %v", other.Err, c.Err())
	}
	if code := <-gotClose; code != wsframe.CloseNormal {
		t.Fatalf("close %d", code)
	}
}

// TestCloseWaitsForResponses: responses that arrive within 2 s of Close
// complete their calls; the node's close frame ends the wait.
func TestCloseWaitsForResponses(t *testing.T) {
	_, url := startNode(t, func(sc *serverConn) {
		var ids []string
		for {
			m, err := sc.next()
			if err != nil {
				return
			}
			if m.Op == wsframe.OpClose {
				break
			}
			ids = append(ids, requestID(m.Payload))
		}
		time.Sleep(300 * time.Millisecond)
		for _, id := range ids {
			sc.text(response(id, "0"))
		}
		sc.close(wsframe.CloseNormal, "")
	})
	c := dial(t, url, Options{})
	var calls []*Call
	for i := range 5 {
		call, err := c.Go(request(i, ""), strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		calls = append(calls, call)
	}
	start := time.Now()
	c.Close()
	if d := time.Since(start); d < 250*time.Millisecond || d > 1500*time.Millisecond {
		t.Fatalf("Close took %v", d)
	}
	for i, call := range calls {
		select {
		case <-call.Done:
		default:
			t.Fatalf("call %d pending after Close", i)
		}
		if call.Err != nil {
			t.Fatalf("call %d: %v", i, call.Err)
		}
	}
	if !errors.Is(c.Err(), ErrClosed) {
		t.Fatalf("%v", c.Err())
	}
	if _, err := c.Go(request(9, ""), "9"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Go after Close: %v", err)
	}
	c.Close() // idempotent
}

// TestCloseGivesUp: a node that never answers is given 2 s; the pending
// call then fails with ErrClosed.
func TestCloseGivesUp(t *testing.T) {
	_, url := startNode(t, func(sc *serverConn) {
		expectClose(sc)
		time.Sleep(2500 * time.Millisecond) // neither answering nor closing
	})
	c := dial(t, url, Options{})
	call, _ := c.Go(request(1, ""), "1")
	start := time.Now()
	c.Close()
	if d := time.Since(start); d < 1900*time.Millisecond || d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
	wait(t, call)
	if !errors.Is(call.Err, ErrClosed) || Retryable(call.Err) {
		t.Fatalf("%v", call.Err)
	}
}

// TestPing: a ping is answered with a pong carrying its payload, and the
// connection goes on.
func TestPing(t *testing.T) {
	pongs := make(chan string, 4)
	_, url := startNode(t, func(sc *serverConn) {
		p, _ := wsframe.AppendPing(nil, []byte("are you there?"))
		sc.write(p)
		for {
			m, err := sc.rd.Next()
			if err != nil {
				return
			}
			switch m.Op {
			case wsframe.OpPong:
				pongs <- string(m.Payload)
			case wsframe.OpText:
				sc.text(response(requestID(m.Payload), "0"))
			case wsframe.OpClose:
				return
			}
		}
	})
	c := dial(t, url, Options{})
	select {
	case p := <-pongs:
		if p != "are you there?" {
			t.Fatalf("pong %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
	if _, err := c.Call(context.Background(), request(1, ""), "1"); err != nil {
		t.Fatal(err)
	}
}

// TestLatestPong: pings that arrive while a write is in progress are
// answered by one pong, with the latest payload.
func TestLatestPong(t *testing.T) {
	c := &Conn{done: make(chan struct{})}
	c.wcond.L = &c.mu
	c.flushing = true // a write in progress
	c.queuePong([]byte("first"))
	c.queuePong([]byte("second"))
	if !c.pongDue || string(c.pong[:c.pongLen]) != "second" {
		t.Fatalf("pong %q due %v", c.pong[:c.pongLen], c.pongDue)
	}
}

// TestHugeFrameNoAllocation: a frame declaring 2^63-1 bytes, or a
// message over MaxMessage, fails the connection without a large
// allocation.
func TestHugeFrameNoAllocation(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"2^63-1", rawHeader(0x81, 1<<63-1)},
		{"top bit", rawHeader(0x81, 1<<63)},
		{"200 MiB", rawHeader(0x81, 200<<20)},
		{"fragments over the bound", append(wsframe.AppendTextHeader(nil, 0)[:0], append(append(rawHeader(0x01, 600<<10), bytes.Repeat([]byte("a"), 600<<10)...), rawHeader(0x80, 600<<10)...)...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := startNode(t, func(sc *serverConn) {
				sc.next()
				sc.write(tc.frame)
				expectClose(sc)
			})
			c := dial(t, url, Options{MaxMessage: 1 << 20})
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			call, _ := c.Go(request(1, ""), "1")
			wait(t, call)
			runtime.ReadMemStats(&after)
			if !isUntrusted(call.Err) {
				t.Fatalf("%v", call.Err)
			}
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Fatalf("allocated %d bytes", got)
			}
		})
	}
}

// TestDialErrors: URLs and headers Dial refuses before connecting.
func TestDialErrors(t *testing.T) {
	for _, tc := range []struct {
		url string
		h   http.Header
	}{
		{"ftp://127.0.0.1:1/", nil},
		{"ws:///rpc", nil},
		{"ws://user:pw@127.0.0.1:1/", nil},
		{"ws://127.0.0.1:1/", http.Header{"Sec-WebSocket-Protocol": {"x"}}},
		{"ws://127.0.0.1:1/", http.Header{"host": {"x"}}},
		{"ws://127.0.0.1:1/", http.Header{"Connection": {"close"}}},
	} {
		if _, err := Dial(context.Background(), tc.url, Options{Header: tc.h}); err == nil || errors.As(err, new(*HandshakeError)) {
			t.Errorf("%s %v: %v", tc.url, tc.h, err)
		}
	}
}

// TestRetryable: the reconnect rule's cases.
func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&CloseError{Code: 1013}, true},
		{&CloseError{Code: 1000}, true},
		{&CloseError{Code: 1005}, true},
		{&CloseError{Code: 1003}, false},
		{&CloseError{Code: 1007}, false},
		{fmt.Errorf("wrapped: %w", &CloseError{Code: 1001}), true},
		{lost(errors.New("reset")), true},
		{ErrClosed, false},
		{ErrAbandoned, false},
		{untrusted("x"), false},
		{&HandshakeError{Status: 503}, true},
		{&HandshakeError{Status: 403}, false},
		{errors.New("other"), false},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v", tc.err, got)
		}
	}
}

// TestBackPressure: against a node that does not read, Go stops
// buffering at 4 MiB of unwritten frames and waits; Close ends the wait
// (after its 2 s) and the waiting Go fails.
func TestBackPressure(t *testing.T) {
	release := make(chan struct{})
	_, url := startNode(t, func(sc *serverConn) { <-release })
	defer close(release)
	c := dial(t, url, Options{})
	msg := request(0, strings.Repeat("x", 64<<10))
	var sent atomic.Int64
	errc := make(chan error, 1)
	go func() {
		for i := 1; ; i++ {
			if _, err := c.Go(msg, strconv.Itoa(i)); err != nil {
				errc <- err
				return
			}
			sent.Add(1)
		}
	}()
	var last int64 = -1
	for range 50 { // wait until Go is blocked
		time.Sleep(100 * time.Millisecond)
		if n := sent.Load(); n == last {
			break
		} else {
			last = n
		}
	}
	c.mu.Lock()
	buffered := len(c.wbuf)
	c.mu.Unlock()
	if buffered > maxBuffered+len(msg)+64 {
		t.Fatalf("%d bytes buffered", buffered)
	}
	if last*int64(len(msg)) > 64<<20 {
		t.Fatalf("Go did not stop: %d messages sent", last)
	}
	go c.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("%v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Go still blocked")
	}
}
