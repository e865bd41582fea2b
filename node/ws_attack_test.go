package node

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawUpgrade sends a WebSocket handshake for path with the given header
// lines (Host included) and returns the answer's status.
func rawUpgrade(t *testing.T, n *Node, path string, lines ...string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET " + path + " HTTP/1.1\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: session.jsonrpc.v1\r\n" +
		strings.Join(lines, "\r\n") + "\r\n\r\n"
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// TestHoldsWebSocketOriginEdgeCases (docs/stream.md §3, §8 "Cross-site
// pages"): with Host checks off (a DNS rebinding page's Host and Origin
// then agree), handshakes that spell Upgrade or Origin so that the policy
// and the handler could read them differently, or that reach the handler
// by its other path, are still refused unless the Origin is the node's
// own (from its listen address) or listed.
func TestHoldsWebSocketOriginEdgeCases(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedHosts: []string{"*"}, AllowedOrigins: []string{"https://app.example"}}})
	_, port, _ := net.SplitHostPort(n.Addr())
	evilHost := "Host: evil.example:" + port
	evil := "Origin: http://evil.example:" + port
	for _, tc := range []struct {
		name  string
		path  string
		lines []string
		want  int
	}{
		// The policy reads the first Upgrade line (empty: not an upgrade,
		// so its CORS rule, where the rebinding Origin equals Host, would
		// let it through); the handler reads every line.
		{"empty first Upgrade line", "/rpc", []string{evilHost, "Upgrade:", "Upgrade: websocket", evil}, 403},
		{"Upgrade among other tokens", "/rpc", []string{evilHost, "Upgrade: h2c, websocket", evil}, 403},
		{"the other path", "/ext/bc/session/rpc", []string{evilHost, "Upgrade: websocket", evil}, 403},
		{"listed origin first, another second", "/rpc", []string{evilHost, "Upgrade: websocket", "Origin: https://app.example", evil}, 403},
		{"own origin with a path", "/rpc", []string{"Host: " + n.Addr(), "Upgrade: websocket", "Origin: http://" + n.Addr() + "/x"}, 403},
		{"own origin with user info", "/rpc", []string{"Host: " + n.Addr(), "Upgrade: websocket", "Origin: http://u@" + n.Addr()}, 403},
		{"own host with a trailing dot", "/rpc", []string{"Host: " + n.Addr(), "Upgrade: websocket", "Origin: http://localhost.:" + port}, 403},
		{"own origin over https", "/rpc", []string{"Host: " + n.Addr(), "Upgrade: websocket", "Origin: https://127.0.0.1:" + port}, 403},
		{"empty Origin", "/rpc", []string{"Host: " + n.Addr(), "Upgrade: websocket", "Origin:"}, 403},
		{"own origin, other case", "/rpc", []string{evilHost, "Upgrade: websocket", "Origin: HTTP://LOCALHOST:" + port}, 101},
	} {
		if got := rawUpgrade(t, n, tc.path, tc.lines...); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
}
