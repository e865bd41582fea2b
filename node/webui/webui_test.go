package webui

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func TestServesTheApp(t *testing.T) {
	h := Handler()
	res := get(t, h, "GET", "/")
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(string(body), `<div id="app">`) {
		t.Fatalf("GET /: %d %.100q", res.StatusCode, body)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("no nosniff")
	}
	// Every script and stylesheet the page names is served with its type,
	// and the page has no inline script (the CSP would block it).
	refs := regexp.MustCompile(`(?:src|href)="([^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(refs) < 2 {
		t.Fatalf("index.html references %d files", len(refs))
	}
	for _, m := range refs {
		if strings.HasPrefix(m[1], "data:") {
			// The empty icon: inline, nothing to fetch (the CSP's img-src
			// allows data:).
			continue
		}
		r := get(t, h, "GET", "/"+m[1])
		if r.StatusCode != 200 {
			t.Errorf("%s: %d", m[1], r.StatusCode)
		}
		if strings.HasSuffix(m[1], ".js") && r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("%s: %s", m[1], r.Header.Get("Content-Type"))
		}
	}
	if regexp.MustCompile(`<script>[^<]`).Match(body) {
		t.Error("inline script in index.html")
	}
	if r := get(t, h, "GET", "/worker.js"); r.StatusCode != 200 {
		t.Errorf("worker.js: %d", r.StatusCode)
	}
}

func TestRefusesTheRest(t *testing.T) {
	h := Handler()
	if r := get(t, h, "POST", "/"); r.StatusCode != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %q", r.StatusCode, r.Header.Get("Allow"))
	}
	for _, p := range []string{"/nope", "/dist/app.js", "/../go.mod", "/index.html/"} {
		if r := get(t, h, "GET", p); r.StatusCode != 404 {
			t.Errorf("GET %s: %d", p, r.StatusCode)
		}
	}
}

func TestRevalidation(t *testing.T) {
	h := Handler()
	r := get(t, h, "GET", "/app.js")
	etag := r.Header.Get("ETag")
	if etag == "" || r.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("ETag %q, Cache-Control %q", etag, r.Header.Get("Cache-Control"))
	}
	if r := get(t, h, "GET", "/app.js", "If-None-Match", etag); r.StatusCode != 304 {
		t.Errorf("conditional GET: %d", r.StatusCode)
	}
	if r := get(t, h, "HEAD", "/app.js"); r.StatusCode != 200 {
		t.Errorf("HEAD: %d", r.StatusCode)
	}
}

func TestFiles(t *testing.T) {
	got := strings.Join(Files(), " ")
	for _, want := range []string{"/index.html", "/app.js", "/app.css", "/worker.js"} {
		if !strings.Contains(got, want) {
			t.Errorf("%s not embedded (have %s)", want, got)
		}
	}
}

// TestContentSecurityPolicy: every directive that keeps script, plugins,
// framing, form posts and connections to this origin, and nothing that
// loosens them. The app works under it (the browser tests run it).
func TestContentSecurityPolicy(t *testing.T) {
	res := get(t, Handler(), "GET", "/")
	csp := res.Header.Get("Content-Security-Policy")
	got := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		f := strings.Fields(d)
		if len(f) == 0 {
			continue
		}
		if _, dup := got[f[0]]; dup {
			t.Errorf("directive %s twice", f[0])
		}
		got[f[0]] = strings.Join(f[1:], " ")
	}
	want := map[string]string{
		"default-src":     "'none'", // object-src, frame-src, font-src, media-src, manifest-src fall back to it
		"script-src":      "'self'",
		"style-src":       "'self'",
		"img-src":         "'self' data:", // the QR code of the Session ID
		"connect-src":     "'self'",
		"worker-src":      "'self'",
		"base-uri":        "'none'",
		"form-action":     "'none'",
		"frame-ancestors": "'none'",
	}
	for d, v := range want {
		if got[d] != v {
			t.Errorf("%s = %q, want %q (CSP %q)", d, got[d], v, csp)
		}
	}
	for d, v := range got {
		if _, ok := want[d]; !ok {
			t.Errorf("unexpected directive %s %s", d, v)
		}
		for _, loose := range []string{"unsafe", "*", "http:", "https:", "blob:", "wasm"} {
			if strings.Contains(v, loose) {
				t.Errorf("%s allows %s", d, loose)
			}
		}
	}
	for _, p := range []string{"/app.js", "/nope"} {
		if r := get(t, Handler(), "GET", p); r.Header.Get("Content-Security-Policy") != csp {
			t.Errorf("%s served without the policy", p)
		}
	}
}
