package node

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/service"
)

const statusBody = `{"jsonrpc":"2.0","id":1,"method":"session.status"}`

type httpResult struct {
	status int
	header http.Header
	code   service.ErrorCode // of a JSON-RPC error body; 0: none
}

// do sends a request to the node with the given Host and headers.
func do(t *testing.T, n *Node, method, path, host string, header map[string]string, body string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+n.Addr()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	res := httpResult{status: resp.StatusCode, header: resp.Header}
	var r struct {
		Error *service.Error `json:"error"`
	}
	if json.Unmarshal(data, &r) == nil && r.Error != nil {
		res.code = r.Error.Code
	}
	return res
}

// TestHostCheck: a request whose Host is a name the node does not know is
// refused (403) on every path: a DNS rebinding attack, where a page of
// evil.example makes evil.example resolve to 127.0.0.1, cannot use the
// node. IP addresses, localhost and the allowed names pass.
func TestHostCheck(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedHosts: []string{"Node.Example"}}})
	_, port, _ := net.SplitHostPort(n.Addr())
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"", true}, // the real address
		{"localhost:" + port, true},
		{"LOCALHOST", true},
		{"127.0.0.1:" + port, true},
		{"[::1]:" + port, true},
		{"10.1.2.3", true},
		{"node.example:" + port, true},
		{"node.example", true},
		{"evil.example:" + port, false},
		{"evil.example", false},
		{"localhost.evil.example", false},
		{"node.example.evil.example", false},
	} {
		for _, path := range []string{"/rpc", "/ext/bc/session/rpc", "/health", "/metrics"} {
			method, body := http.MethodPost, statusBody
			if path == "/health" || path == "/metrics" {
				method, body = http.MethodGet, ""
			}
			r := do(t, n, method, path, tc.host, nil, body)
			if tc.ok && r.status != http.StatusOK {
				t.Errorf("Host %q %s: HTTP %d, want 200", tc.host, path, r.status)
			}
			if !tc.ok && (r.status != http.StatusForbidden || r.code != service.CodeInvalidRequest) {
				t.Errorf("Host %q %s: HTTP %d (code %d), want 403 with a JSON-RPC error", tc.host, path, r.status, r.code)
			}
		}
	}

	any := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedHosts: []string{"*"}}})
	if r := do(t, any, http.MethodPost, "/rpc", "evil.example", nil, statusBody); r.status != http.StatusOK {
		t.Errorf("AllowedHosts *: HTTP %d", r.status)
	}
}

// TestOriginPolicy: browsers on other origins are refused unless allowed;
// allowed ones get CORS answers, preflight included; requests without an
// Origin and from the node's own origin always pass.
func TestOriginPolicy(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedOrigins: []string{"https://app.example/"}}})
	own := "http://" + n.Addr()
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	with := func(origin string, extra map[string]string) map[string]string {
		h := map[string]string{"Origin": origin}
		for k, v := range extra {
			h[k] = v
		}
		return h
	}

	// No Origin, and the node's own origin (its web app): allowed, no
	// CORS headers needed.
	for _, h := range []map[string]string{nil, with(own, nil)} {
		r := do(t, n, http.MethodPost, "/rpc", "", h, statusBody)
		if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("Origin %q: HTTP %d, ACAO %q", h["Origin"], r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
	}
	// Another origin: refused, preflight and request alike.
	for _, origin := range []string{"https://evil.example", "null", "http://app.example", "https://app.example:8443"} {
		if r := do(t, n, http.MethodOptions, "/rpc", "", with(origin, preflight), ""); r.status != http.StatusForbidden ||
			r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight from %s: HTTP %d, ACAO %q", origin, r.status, r.header.Get("Access-Control-Allow-Origin"))
		}
		if r := do(t, n, http.MethodPost, "/rpc", "", with(origin, nil), statusBody); r.status != http.StatusForbidden || r.code != service.CodeInvalidRequest {
			t.Errorf("POST from %s: HTTP %d, code %d", origin, r.status, r.code)
		}
	}
	// The allowed origin: preflight answered, request served, with CORS
	// headers (Chrome's Private Network Access included).
	app := "https://app.example"
	r := do(t, n, http.MethodOptions, "/rpc", "", with(app, map[string]string{
		"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type",
		"Access-Control-Request-Private-Network": "true"}), "")
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != app ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Content-Type") ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") ||
		r.header.Get("Access-Control-Allow-Private-Network") != "true" {
		t.Errorf("preflight from %s: HTTP %d, headers %v", app, r.status, r.header)
	}
	r = do(t, n, http.MethodPost, "/rpc", "", with(app, nil), statusBody)
	if r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != app || !strings.Contains(r.header.Get("Vary"), "Origin") {
		t.Errorf("POST from %s: HTTP %d, headers %v", app, r.status, r.header)
	}

	// "*" allows every origin.
	anyNode := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedOrigins: []string{"*"}}})
	if r := do(t, anyNode, http.MethodPost, "/rpc", "", with("https://evil.example", nil), statusBody); r.status != http.StatusOK ||
		r.header.Get("Access-Control-Allow-Origin") != "https://evil.example" {
		t.Errorf("AllowedOrigins *: HTTP %d, headers %v", r.status, r.header)
	}
}

// TestMaxConns: connections beyond the bound wait until one closes.
func TestMaxConns(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{MaxConns: 2}})
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	quick := service.NewClient(n.URL(), service.WithTimeout(500*time.Millisecond))
	if _, err := quick.Status(context.Background()); err == nil {
		t.Fatal("a third connection was served while two were open")
	}
	held[0].Close()
	if _, err := client(n).Status(context.Background()); err != nil {
		t.Fatalf("after a connection closed: %v", err)
	}
	held[1].Close() // or Shutdown waits 5 s for a connection that sent nothing (net/http)
}
