package service

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// wsTest is a deliberately plain WebSocket client for the tests: it
// writes whatever frames a test builds (valid or not) and reads the
// node's frames without interpreting them, so the tests see exactly what
// the node sends.
type wsTest struct {
	t    testing.TB
	conn net.Conn
	br   *bufio.Reader
	resp *http.Response
}

// streamEnv is an env whose handler serves the streaming transport.
func streamEnv(t testing.TB, so StreamOptions) *env {
	t.Helper()
	return newEnvWith(t, envOpts{handler: Options{Stream: &so}})
}

// upgradeRequest is a valid handshake for host, with extra header lines.
func upgradeRequest(host string, extra ...string) string {
	var b strings.Builder
	b.WriteString("GET /rpc HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	hasProto := false
	for _, e := range extra {
		if strings.HasPrefix(strings.ToLower(e), "sec-websocket-protocol:") {
			hasProto = true
		}
	}
	if !hasProto {
		b.WriteString("Sec-WebSocket-Protocol: " + Subprotocol + "\r\n")
	}
	for _, e := range extra {
		if e != "" {
			b.WriteString(e + "\r\n")
		}
	}
	b.WriteString("\r\n")
	return b.String()
}

// dialRaw connects to srv and sends req (a whole handshake), returning
// the connection and the node's HTTP answer.
func dialRaw(t testing.TB, addr, req string) *wsTest {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the handshake's answer: %v", err)
	}
	return &wsTest{t: t, conn: conn, br: br, resp: resp}
}

// dialWS opens a WebSocket to the env's server and checks the 101.
func dialWS(t testing.TB, srv *httptest.Server, extra ...string) *wsTest {
	t.Helper()
	addr := srv.Listener.Addr().String()
	w := dialRaw(t, addr, upgradeRequest(addr, extra...))
	if w.resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(w.resp.Body, 1024))
		t.Fatalf("handshake: HTTP %d %s", w.resp.StatusCode, body)
	}
	return w
}

// frame builds one masked client frame.
func frame(fin bool, op wsframe.Opcode, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func text(s string) []byte { return frame(true, wsframe.OpText, []byte(s)) }

func (w *wsTest) send(frames ...[]byte) {
	w.t.Helper()
	if _, err := w.conn.Write(bytes.Join(frames, nil)); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

// srvFrame is one frame from the node.
type srvFrame struct {
	fin     bool
	op      wsframe.Opcode
	payload []byte
}

// readFrame reads one frame of the node (unmasked, or the test fails).
func (w *wsTest) readFrame() (srvFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		return srvFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return srvFrame{}, errors.New("the node sent a masked frame")
	}
	if h[0]&0x70 != 0 {
		return srvFrame{}, errors.New("the node set a reserved bit")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return srvFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(w.br, b[:]); err != nil {
			return srvFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 256<<20 {
		return srvFrame{}, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(w.br, p); err != nil {
		return srvFrame{}, err
	}
	return srvFrame{fin: h[0]&0x80 != 0, op: wsframe.Opcode(h[0] & 0x0F), payload: p}, nil
}

// srvMessage is a whole message of the node (fragments joined), or a
// control frame.
type srvMessage struct {
	op      wsframe.Opcode
	payload []byte
	frames  int
	code    uint16 // close frames
	reason  string
}

// next reads the node's next message or control frame.
func (w *wsTest) next() (srvMessage, error) {
	var m srvMessage
	for {
		f, err := w.readFrame()
		if err != nil {
			return m, err
		}
		switch {
		case f.op >= wsframe.OpClose:
			if m.frames > 0 {
				continue // a control frame between fragments: not tested here
			}
			c := srvMessage{op: f.op, payload: f.payload, frames: 1}
			if f.op == wsframe.OpClose && len(f.payload) >= 2 {
				c.code = binary.BigEndian.Uint16(f.payload)
				c.reason = string(f.payload[2:])
			}
			return c, nil
		case m.frames == 0 && f.op != wsframe.OpText:
			return m, fmt.Errorf("message starts with opcode %d", f.op)
		case m.frames > 0 && f.op != wsframe.OpContinuation:
			return m, fmt.Errorf("fragment with opcode %d", f.op)
		}
		m.op = wsframe.OpText
		m.payload = append(m.payload, f.payload...)
		m.frames++
		if f.fin {
			return m, nil
		}
	}
}

// mustText reads a text message.
func (w *wsTest) mustText() []byte {
	w.t.Helper()
	m, err := w.next()
	if err != nil {
		w.t.Fatalf("reading a message: %v", err)
	}
	if m.op != wsframe.OpText {
		w.t.Fatalf("got opcode %d (close %d %q), want a text message", m.op, m.code, m.reason)
	}
	return m.payload
}

// mustClose reads until the node's close frame and checks its code; the
// node then closes the connection.
func (w *wsTest) mustClose(code uint16) srvMessage {
	w.t.Helper()
	for {
		m, err := w.next()
		if err != nil {
			w.t.Fatalf("waiting for close %d: %v", code, err)
		}
		if m.op == wsframe.OpText || m.op == wsframe.OpPing || m.op == wsframe.OpPong {
			continue
		}
		if m.code != code {
			w.t.Fatalf("close %d %q, want %d", m.code, m.reason, code)
		}
		return m
	}
}

// post sends body over HTTP POST to the env's handler and returns the
// response body without its final newline.
func postBody(t testing.TB, e *env, body string) []byte {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, e.srv.URL, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return bytes.TrimSuffix(b, []byte("\n"))
}
