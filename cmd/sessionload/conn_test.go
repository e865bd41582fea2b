package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestRawConn: rawConn reads responses of every framing the node uses
// (a length, chunked), reuses its connection, dials again when the
// server closes it (asked to, or idle between requests), and sends what
// a Go client sends (method, path, Host, Content-Type, Content-Length,
// the body).
func TestRawConn(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.Method != http.MethodPost || r.URL.Path != "/rpc" ||
			r.Header.Get("Content-Type") != "application/json" || r.ContentLength != int64(len(body)) || r.Host == "" {
			http.Error(w, fmt.Sprintf("bad request %s %s %q %d %v", r.Method, r.URL, r.Header, r.ContentLength, err), http.StatusBadRequest)
			return
		}
		switch string(body) {
		case "chunked":
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush() // the rest goes chunked
			_, _ = io.WriteString(w, "part two")
		case "close":
			w.Header().Set("Connection", "close")
			_, _ = io.WriteString(w, "closing")
		default:
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write(body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Config.IdleTimeout = 100 * time.Millisecond
	srv.Start()
	defer srv.Close()

	rc := newRawConn(context.Background(), srv.URL+"/rpc")
	if rc == nil {
		t.Fatal("no rawConn for a plain http URL")
	}
	defer rc.close()
	post := func(body string, wantStatus int, want string) {
		t.Helper()
		status, data, err := rc.post([]byte(body))
		if err != nil || status != wantStatus || string(data) != want {
			t.Fatalf("post %q: %d %q %v; want %d %q", body, status, data, err, wantStatus, want)
		}
	}
	big := strings.Repeat("x", 200<<10)
	post("hello", http.StatusTeapot, "hello")
	post("chunked", http.StatusOK, "part one, part two")
	post(big, http.StatusTeapot, big)
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections for three requests; want one, kept alive", n)
	}
	post("close", http.StatusOK, "closing")
	post("again", http.StatusTeapot, "again")
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections; want a second one after the server closed the first", n)
	}
	time.Sleep(300 * time.Millisecond) // the server closes the idle connection
	post("after idle", http.StatusTeapot, "after idle")
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections; want a third one after the idle one closed", n)
	}
	for _, u := range []string{"https://example.com/rpc", "unix:///tmp/x", "http://user:pw@127.0.0.1:1/rpc"} {
		if newRawConn(context.Background(), u) != nil {
			t.Errorf("rawConn for %s; want the http.Client", u)
		}
	}
}
