package node

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The node serves the web messenger at / beside the API, and not when
// DisableWebUI is set.
func TestWebUI(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0"})
	defer stop(t, n)
	resp, err := http.Get("http://" + n.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "app.js") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("GET /: %d %.80q", resp.StatusCode, body)
	}
	// The API is unchanged beside it.
	if _, err := client(n).Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, err := http.Get("http://" + n.Addr() + "/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/health: %v", err)
	}

	off := start(t, Config{DataDir: t.TempDir(), HTTPAddr: "127.0.0.1:0", DisableWebUI: true})
	defer stop(t, off)
	resp, err = http.Get("http://" + off.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("GET / with the web UI off: %d", resp.StatusCode)
	}
}
