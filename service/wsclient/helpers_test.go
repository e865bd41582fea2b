package wsclient

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// fakeNode is an in-test server: it accepts connections on 127.0.0.1,
// hands each to handshake (which answers the upgrade by hand) and then to
// serve, which reads the client's frames with wsframe.NewReader (so every
// test also proves the client masks and frames correctly).
type fakeNode struct {
	t  testing.TB
	ln net.Listener
	wg sync.WaitGroup
	// handshake answers the request; nil: accept101.
	handshake func(sc *serverConn, req *http.Request) bool
	serve     func(sc *serverConn)
}

// serverConn is the node's side of one connection.
type serverConn struct {
	nc  net.Conn
	br  *bufio.Reader
	rd  *wsframe.Reader
	req *http.Request
	mu  sync.Mutex // serializes writes
}

func startNode(t testing.TB, serve func(sc *serverConn)) (*fakeNode, string) {
	return startNodeWith(t, nil, serve)
}

func startNodeWith(t testing.TB, handshake func(sc *serverConn, req *http.Request) bool, serve func(sc *serverConn)) (*fakeNode, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, ln, handshake, serve), "ws://" + ln.Addr().String() + "/rpc"
}

// serveOn runs a fakeNode on ln until the test ends.
func serveOn(t testing.TB, ln net.Listener, handshake func(sc *serverConn, req *http.Request) bool, serve func(sc *serverConn)) *fakeNode {
	n := &fakeNode{t: t, ln: ln, handshake: handshake, serve: serve}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				defer nc.Close()
				n.handle(nc)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		n.wg.Wait()
	})
	return n
}

func (n *fakeNode) handle(nc net.Conn) {
	br := bufio.NewReaderSize(nc, 64<<10)
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	sc := &serverConn{nc: nc, br: br, req: req}
	hs := n.handshake
	if hs == nil {
		hs = accept101
	}
	if !hs(sc, req) {
		return
	}
	sc.rd = wsframe.NewReader(br, nil)
	if n.serve != nil {
		n.serve(sc)
	}
}

// accept101 answers a valid upgrade as the node does.
func accept101(sc *serverConn, req *http.Request) bool {
	accept, err := wsframe.AcceptKey(req.Header.Get("Sec-WebSocket-Key"))
	if err != nil {
		sc.write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		return false
	}
	sc.write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		accept + "\r\nSec-WebSocket-Protocol: " + Subprotocol + "\r\n\r\n"))
	return true
}

func (sc *serverConn) write(b []byte) error {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	_, err := sc.nc.Write(b)
	return err
}

func (sc *serverConn) text(s string) error { return sc.write(wsframe.AppendText(nil, []byte(s))) }

func (sc *serverConn) close(code uint16, reason string) error {
	f, err := wsframe.AppendClose(nil, code, reason)
	if err != nil {
		panic(err)
	}
	return sc.write(f)
}

// next reads the client's next text message (pings and pongs skipped);
// a close frame is returned as it is.
func (sc *serverConn) next() (wsframe.Message, error) {
	for {
		m, err := sc.rd.Next()
		if err != nil || m.Op == wsframe.OpText || m.Op == wsframe.OpClose {
			return m, err
		}
	}
}

// requestID returns the top-level id of a request.
func requestID(msg []byte) string {
	_, id, _ := scanTop(msg)
	return string(id)
}

// response is the node's response to a request with id, carrying result.
func response(id, result string) string {
	return `{"jsonrpc":"2.0","result":` + result + `,"id":` + id + `}`
}

// echo answers every request with its id and its params as the result,
// until the client's close frame, which it answers with 1000.
func echo(sc *serverConn) {
	for {
		m, err := sc.next()
		if err != nil {
			return
		}
		if m.Op == wsframe.OpClose {
			sc.close(wsframe.CloseNormal, "")
			return
		}
		sc.text(response(requestID(m.Payload), paramsOf(m.Payload)))
	}
}

// request encodes a request with a numeric id and a string param.
func request(id int, param string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"method":"session.test","params":` + strconv.Quote(param) + `}`)
}

// paramsOf extracts the params member the tests' requests end with.
func paramsOf(msg []byte) string {
	const key = `"params":`
	for i := 0; i+len(key) <= len(msg); i++ {
		if string(msg[i:i+len(key)]) == key {
			return string(msg[i+len(key) : len(msg)-1])
		}
	}
	return "null"
}

func dial(t testing.TB, url string, opts Options) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wait waits for a call, failing the test after 5 s.
func wait(t testing.TB, call *Call) {
	t.Helper()
	select {
	case <-call.Done:
	case <-time.After(5 * time.Second):
		t.Fatal("call not completed")
	}
}

// waitDone waits for the connection to end.
func waitDone(t testing.TB, c *Conn) error {
	t.Helper()
	select {
	case <-c.Done():
		return c.Err()
	case <-time.After(5 * time.Second):
		t.Fatal("connection not ended")
		return nil
	}
}

// expectClose reads the client's frames until its close frame and
// returns its code (0 if the stream ended without one).
func expectClose(sc *serverConn) uint16 {
	for {
		m, err := sc.rd.Next()
		if err != nil {
			return 0
		}
		if m.Op == wsframe.OpClose {
			return m.Code
		}
	}
}

// rawHeader is a server frame header with any length field.
func rawHeader(b0 byte, length uint64) []byte {
	switch {
	case length <= 125:
		return []byte{b0, byte(length)}
	case length <= 0xFFFF:
		return binary.BigEndian.AppendUint16([]byte{b0, 126}, uint16(length))
	}
	return binary.BigEndian.AppendUint64([]byte{b0, 127}, length)
}

func isUntrusted(err error) bool { return errors.Is(err, ErrUntrustedNode) }
