package node

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// wsHandshake sends a WebSocket handshake to the node with the given Host
// and Origin ("" for none) and returns the answer's status and the
// connection.
func wsHandshake(t *testing.T, n *Node, host, origin string) (int, net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /rpc HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: session.jsonrpc.v1\r\n"
	if origin != "" {
		req += "Origin: " + origin + "\r\n"
	}
	if _, err := io.WriteString(conn, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, conn, br
}

// TestWebSocketOrigins: the node's WebSocket takes its own origins from
// its configuration, never from the request's Host: with every Host
// allowed (a DNS rebinding page then sends a Host and an Origin that
// match each other), a page of another site still gets 403.
func TestWebSocketOrigins(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedHosts: []string{"*"}, AllowedOrigins: []string{"https://app.example"}}})
	_, port, _ := net.SplitHostPort(n.Addr())
	for _, tc := range []struct {
		host, origin string
		want         int
	}{
		{n.Addr(), "", 101},                                          // not a browser
		{n.Addr(), "http://" + n.Addr(), 101},                        // the node's own page
		{n.Addr(), "http://localhost:" + port, 101},                  // the same, by name
		{n.Addr(), "https://app.example", 101},                       // listed
		{n.Addr(), "HTTPS://APP.EXAMPLE:443", 101},                   // the same origin, spelled otherwise
		{n.Addr(), "https://other.example", 403},                     // not listed
		{n.Addr(), "null", 403},                                      // sandboxed or file: pages
		{n.Addr(), "http://127.0.0.1:1", 403},                        // another port of this host
		{"evil.example:" + port, "http://evil.example:" + port, 403}, // rebinding: Host and Origin agree
	} {
		got, _, _ := wsHandshake(t, n, tc.host, tc.origin)
		if got != tc.want {
			t.Errorf("Host %s Origin %q: HTTP %d, want %d", tc.host, tc.origin, got, tc.want)
		}
	}
	// The rebinding page may still POST (its Origin is "its own" for
	// CORS, and Host checks are off): only the WebSocket rule differs.
	if r := do(t, n, http.MethodPost, "/rpc", "evil.example:"+port, map[string]string{"Origin": "http://evil.example:" + port}, statusBody); r.status != 200 {
		t.Fatalf("POST: HTTP %d", r.status)
	}
}

// TestWebSocketOffAndShutdown: --ws=false answers an upgrade 400; with
// the transport on, Shutdown closes an open WebSocket with 1001.
func TestWebSocketOffAndShutdown(t *testing.T) {
	off := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{DisableWebSocket: true}})
	if got, _, _ := wsHandshake(t, off, off.Addr(), ""); got != http.StatusBadRequest {
		t.Fatalf("transport off: HTTP %d, want 400", got)
	}
	n := start(t, Config{DataDir: t.TempDir()})
	got, conn, br := wsHandshake(t, n, n.Addr(), "")
	if got != 101 {
		t.Fatalf("HTTP %d", got)
	}
	done := make(chan struct{})
	go func() {
		stop(t, n)
		close(done)
	}()
	// The node's close frame: FIN + opcode 8, code 1001.
	var h [4]byte
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(br, h[:]); err != nil {
		t.Fatalf("no close frame: %v", err)
	}
	if h[0] != 0x88 || binary.BigEndian.Uint16(h[2:]) != 1001 {
		t.Fatalf("frame % x, want a close frame with 1001", h)
	}
	if rest, _ := io.ReadAll(br); !strings.Contains(string(rest), "shutting down") {
		t.Fatalf("close reason %q", rest)
	}
	<-done
}
