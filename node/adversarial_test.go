package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/node/webui"
	"github.com/luxfi/session/service"
)

// The attacks of an anonymous client on the network against the node's
// HTTP side (connections, Host, Origin, the web UI, /metrics, /health):
// each test makes the requests a stranger can make and asserts the bound
// or the refusal. The handler's own bounds are tested in package service.

// rawRequest writes a request on a new connection and returns the
// connection with a reader positioned at the response.
func rawRequest(t *testing.T, n *Node, req string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

func statusPOST(host string) string {
	return "POST /rpc HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody
}

// TestIdleKeepAliveConnsMakeRoom: connections idle between requests
// (keep-alive) hold no slot a new client needs: when all --http-max-conns
// are open, the one idle longest is closed for the newcomer. Before, 1024
// idle connections, each sending a request every two minutes (the idle
// timeout), kept every other client out.
func TestIdleKeepAliveConnsMakeRoom(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{MaxConns: 2}})
	var idle []net.Conn
	for range 2 {
		c, rd := rawRequest(t, n, statusPOST("localhost"))
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		idle = append(idle, c)
	}
	quick := service.NewClient(n.URL(), service.WithTimeout(3*time.Second))
	for i := range 3 {
		if _, err := quick.Status(context.Background()); err != nil {
			t.Fatalf("call %d with the connections held idle: %v", i, err)
		}
	}
	// The idle connections were closed to make room.
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); err == nil {
		t.Fatal("the connection idle longest still open")
	}

	// Connections in the middle of a request are not idle: they keep
	// their slots (until the header and read timeouts end them).
	busy := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{MaxConns: 2}})
	for range 2 {
		rawRequest(t, busy, "POST /rpc HTTP/1.1\r\nHost: localhost\r\n") // headers never end
	}
	time.Sleep(100 * time.Millisecond)
	blocked := service.NewClient(busy.URL(), service.WithTimeout(500*time.Millisecond))
	if _, err := blocked.Status(context.Background()); err == nil {
		t.Fatal("served while both connections were in the middle of a request")
	}
}

// readStatus reads one response from rd and returns its status (0 when
// the connection ended without one).
func readStatus(t *testing.T, rd *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(rd, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestHostPolicyEdgeCases: the Host forms a DNS-rebinding page or a
// crafted request can take are refused unless they name the node; the
// malformed ones net/http refuses itself.
func TestHostPolicyEdgeCases(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTP: HTTPConfig{AllowedHosts: []string{"node.example"}}})
	_, port, _ := net.SplitHostPort(n.Addr())
	for _, tc := range []struct {
		host string
		want int
	}{
		{"LOCALHOST:" + port, 200},
		{"Node.Example:" + port, 200},
		{"[::1]:" + port, 200},
		{"[::ffff:127.0.0.1]:" + port, 200},
		{"evil.example.:" + port, 403},     // trailing dot: another name
		{"node.example.evil:" + port, 403}, // a suffix
		{"localhost.:" + port, 403},
		{"[fe80::1%25eth0]:" + port, 403}, // a zone: not an IP address to net.ParseIP
		{"2130706433:" + port, 403},       // 127.0.0.1 as a number: a name here
		{"0x7f.1:" + port, 403},
		{"127.0.0.1.nip.io:" + port, 403},
		{"user@localhost:" + port, 400}, // net/http refuses it
	} {
		_, rd := rawRequest(t, n, statusPOST(tc.host))
		if got := readStatus(t, rd); got != tc.want {
			t.Errorf("Host %q: HTTP %d, want %d", tc.host, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name, req string
		want      int
	}{
		// The request target's host is the request's host (RFC 9112
		// 3.2.2): absolute form cannot smuggle a name past the check.
		{"absolute form", "POST http://evil.example:" + port + "/rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody, 403},
		{"two Host headers", "POST /rpc HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody, 400},
		{"HTTP/1.1 without Host", "POST /rpc HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody, 400},
		// No browser sends HTTP/1.0 without Host: served.
		{"HTTP/1.0 without Host", "POST /rpc HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(statusBody)) + "\r\n\r\n" + statusBody, 200},
		{"header over MaxHeaderBytes", "GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + strings.Repeat("a", maxHeaderBytes+8192) + "\r\n\r\n", 431},
	} {
		_, rd := rawRequest(t, n, tc.req)
		if got := readStatus(t, rd); got != tc.want {
			t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestCrossSiteRequestsRefused: what a page of another site can make a
// browser send, with or without a preflight, runs nothing: another
// origin (null, the node's host on another port or scheme, a look-alike)
// gets 403 on every path; the content types of simple requests (text/
// plain, forms, none) get 415 even without an Origin; OPTIONS without
// an Origin is not a preflight (405).
func TestCrossSiteRequestsRefused(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	host, port, _ := net.SplitHostPort(n.Addr())
	own := "http://" + n.Addr()
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
	for _, origin := range []string{"null", "https://evil.example", "http://" + host + ":1", "http://localhost:" + port,
		"http://" + host + ":" + port + ".evil.example", "http://" + host, "file://"} {
		for _, path := range []string{"/rpc", "/ext/bc/session/rpc", "/health", "/metrics", "/", "/app.js"} {
			h := map[string]string{"Origin": origin}
			if r := do(t, n, http.MethodPost, path, "", h, statusBody); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("POST %s from %q: HTTP %d, ACAO %q", path, origin, r.status, r.header.Get("Access-Control-Allow-Origin"))
			}
			for k, v := range preflight {
				h[k] = v
			}
			if r := do(t, n, http.MethodOptions, path, "", h, ""); r.status != http.StatusForbidden || r.header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("preflight of %s from %q: HTTP %d, ACAO %q", path, origin, r.status, r.header.Get("Access-Control-Allow-Origin"))
			}
		}
	}
	// The node's own origin, however it is cased, is the node's.
	if r := do(t, n, http.MethodPost, "/rpc", "", map[string]string{"Origin": strings.ToUpper(own)}, statusBody); r.status != http.StatusOK {
		t.Errorf("own origin in upper case: HTTP %d", r.status)
	}
	for _, ct := range []string{"text/plain", "text/plain; charset=utf-8", "text/plain;application/json", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "", "application/json, text/plain", "application/jsonx", "application/json-seq"} {
		h := map[string]string{"Content-Type": ct}
		if r := do(t, n, http.MethodPost, "/rpc", "", h, statusBody); r.status != http.StatusUnsupportedMediaType || r.code != service.CodeInvalidRequest {
			t.Errorf("Content-Type %q: HTTP %d, code %d; want 415", ct, r.status, r.code)
		}
	}
	if r := do(t, n, http.MethodOptions, "/rpc", "", preflight, ""); r.status != http.StatusMethodNotAllowed || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("OPTIONS without Origin: HTTP %d, ACAO %q", r.status, r.header.Get("Access-Control-Allow-Origin"))
	}
}

// TestRPCMethodsOtherThanPOST: every other HTTP method on the API's paths
// gets 405 with Allow: POST and a JSON-RPC error, and runs nothing.
func TestRPCMethodsOtherThanPOST(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	for _, path := range []string{"/rpc", "/ext/bc/session/rpc"} {
		for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace, "PROPFIND"} {
			r := do(t, n, m, path, "", nil, "")
			if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != http.MethodPost {
				t.Errorf("%s %s: HTTP %d, Allow %q", m, path, r.status, r.header.Get("Allow"))
			}
			if m != http.MethodHead && r.code != service.CodeInvalidRequest {
				t.Errorf("%s %s: code %d, want a JSON-RPC -32600", m, path, r.code)
			}
		}
	}
}

// TestWebUIServesOnlyItsFiles: traversal and encoded paths against the
// web UI's static files reach nothing but the embedded build: the
// handler looks paths up in a map of the build (no filesystem behind
// it), and net/http redirects or refuses unclean paths.
func TestWebUIServesOnlyItsFiles(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{DataDir: dir})
	known := map[string]bool{}
	for _, p := range webui.Files() {
		_, rd := rawRequest(t, n, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(rd, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %v %v", p, err, resp)
		}
		b, _ := io.ReadAll(resp.Body)
		known[string(b)] = true
	}
	for _, p := range []string{
		"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd", "/%2e%2e%5c%2e%2e%5cetc%5cpasswd",
		"/..\\..\\etc\\passwd", "//etc/passwd", "/dist/index.html", "/webui.go", "/embed.go", "/index.html%00", "/index.html%00.js",
		"/index.html/", "/.git/config", "/app.js/..", "/APP.JS", "/app.js?x=../../etc/passwd", "/..;/etc/passwd",
		"/%252e%252e/etc/passwd", "/" + dir + "/genesis.json", "/../" + GenesisFile, "/debug/pprof/", "/debug/pprof/cmdline",
	} {
		_, rd := rawRequest(t, n, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\n\r\n")
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			continue // the connection was refused outright
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK && !known[string(b)]:
			t.Errorf("GET %s: 200 with %d bytes that are not a file of the build", p, len(b))
		case resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusBadRequest &&
			resp.StatusCode != http.StatusMovedPermanently && resp.StatusCode != http.StatusTemporaryRedirect:
			t.Errorf("GET %s: HTTP %d", p, resp.StatusCode)
		}
	}
}

// TestMetricsShowNoPaths: /metrics, served to anyone the Host and Origin
// checks pass, shows figures, not the node's data directory or command
// line.
func TestMetricsShowNoPaths(t *testing.T) {
	dir := t.TempDir()
	n := start(t, Config{DataDir: dir})
	_, rd := rawRequest(t, n, "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(rd, nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v", err, resp)
	}
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), "sessiond_height") {
		t.Fatal("/metrics without sessiond_height")
	}
	if strings.Contains(string(b), dir) || strings.Contains(string(b), os.Args[0]) {
		t.Error("/metrics shows the data directory or the command line")
	}
}

// TestSlowClientsAreCutOff: a client that sends its headers or its body a
// byte at a time, or sends nothing, holds its connection for at most the
// server's header and read timeouts (10 s and 30 s), after which the
// node closes it and its slot is free. The timeouts are checked here; the
// long run sends the bytes for real.
func TestSlowClientsAreCutOff(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	if s := n.srv; s.ReadHeaderTimeout <= 0 || s.ReadHeaderTimeout > 10*time.Second || s.ReadTimeout <= 0 || s.ReadTimeout > 30*time.Second ||
		s.WriteTimeout <= 0 || s.IdleTimeout <= 0 || s.MaxHeaderBytes <= 0 || s.MaxHeaderBytes > 1<<20 {
		t.Fatalf("HTTP server bounds: header %v, read %v, write %v, idle %v, header bytes %d",
			s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	testenv.Long(t)
	drip := func(prefix, rest string, every time.Duration) time.Duration {
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			t.Error(err)
			return 0
		}
		defer c.Close()
		start := time.Now()
		if _, err := c.Write([]byte(prefix)); err != nil {
			t.Error(err)
			return 0
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			_, _ = io.Copy(io.Discard, c) // until the node closes it
		}()
		for i := 0; ; i++ {
			select {
			case <-closed:
				return time.Since(start)
			case <-time.After(every):
			}
			if _, err := c.Write([]byte{rest[i%len(rest)]}); err != nil {
				<-closed
				return time.Since(start)
			}
			if time.Since(start) > time.Minute {
				return time.Since(start)
			}
		}
	}
	type result struct {
		name  string
		d     time.Duration
		bound time.Duration
	}
	results := make(chan result, 3)
	go func() {
		results <- result{"slow headers", drip("POST /rpc HTTP/1.1\r\nHost: localhost\r\n", "X-A: b\r\n", 500*time.Millisecond), n.srv.ReadHeaderTimeout}
	}()
	go func() {
		results <- result{"slow body", drip("POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n", " ", 500*time.Millisecond), n.srv.ReadTimeout}
	}()
	go func() {
		results <- result{"nothing sent", drip("", "", time.Hour), n.srv.ReadHeaderTimeout}
	}()
	for range 3 {
		r := <-results
		t.Logf("%s: closed after %v", r.name, r.d.Round(100*time.Millisecond))
		if r.d > r.bound+3*time.Second {
			t.Errorf("%s: connection held %v, bound %v", r.name, r.d, r.bound)
		}
	}
}

// TestNoCleartextHTTP2: the node speaks HTTP/1.1 only. HTTP/2 would
// multiplex up to 250 streams (handlers) on one connection, and the
// connection bound would no longer bound the requests in progress.
func TestNoCleartextHTTP2(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	c, rd := rawRequest(t, n, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 9)
	k, _ := io.ReadFull(rd, b)
	// An HTTP/2 server's first frame is SETTINGS (type 4 at byte 3).
	if k == len(b) && b[3] == 0x4 && !strings.HasPrefix(string(b), "HTTP/1") {
		t.Fatalf("the node answered the HTTP/2 preface with a frame: %x", b)
	}
	if n.srv.Protocols != nil && n.srv.Protocols.UnencryptedHTTP2() {
		t.Fatal("unencrypted HTTP/2 enabled")
	}
}

// TestHeaderFieldsBounded: net/http keeps a request's parsed header for
// as long as the request lasts (a slow body: 30 s) at about 15 times its
// bytes when they are many tiny fields; 64 KiB of them held about 1 MB
// per connection, 1 GB at 1024. A request of more than 100 fields is
// refused at once (431) and its connection closed without waiting for
// its body; headers are at most 16 KiB; a browser's (a 12 KiB cookie
// included) pass.
func TestHeaderFieldsBounded(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir()})
	head := func(fields int, extra string) string {
		var b strings.Builder
		b.WriteString("POST /rpc HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(statusBody)) + "\r\n")
		for i := 3; i < fields; i++ {
			fmt.Fprintf(&b, "%x:\r\n", i)
		}
		return b.String() + extra + "\r\n"
	}
	// At the bound, and a large cookie: served.
	for _, h := range []string{head(maxHeaderFields, ""), head(10, "Cookie: "+strings.Repeat("c", 12<<10)+"\r\n")} {
		_, rd := rawRequest(t, n, h+statusBody)
		if got := readStatus(t, rd); got != http.StatusOK {
			t.Errorf("a request of %d header bytes: HTTP %d", len(h), got)
		}
	}
	// Over it, the body never sent: 431 and the connection closed at once.
	for _, fields := range []int{maxHeaderFields + 1, 2000} {
		c, rd := rawRequest(t, n, head(fields, ""))
		start := time.Now()
		if got := readStatus(t, rd); got != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%d header fields: HTTP %d", fields, got)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := rd.ReadByte(); err != io.EOF || time.Since(start) > 3*time.Second {
			t.Errorf("%d header fields: connection still open after %v (%v)", fields, time.Since(start), err)
		}
	}
	// Over 16 KiB: net/http's own 431.
	_, rd := rawRequest(t, n, head(10, "Cookie: "+strings.Repeat("c", maxHeaderBytes+4096)+"\r\n"))
	if got := readStatus(t, rd); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a header over %d bytes: HTTP %d", maxHeaderBytes, got)
	}
}
