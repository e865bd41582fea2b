// Package webui serves the SessionVM web messenger: the build of
// sdk/js/app, committed under dist/ and embedded in the binary, so a node
// serves it with no npm on the machine. sessiond mounts it at / beside the
// JSON-RPC API at /rpc (same origin, so the app needs no CORS).
//
// The build is reproducible: `npm ci && npm run build:app` in sdk/js
// rewrites dist/, and .ci/run fails if the result differs from what is
// committed.
//
// The app holds the user's keys in the browser, so the pages are served
// with a strict Content-Security-Policy (scripts, styles, workers and
// connections only from this origin, no inline code, no framing) and no
// other content is served on this origin's paths.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed dist
var dist embed.FS

// ContentSecurityPolicy is sent with every file.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; worker-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

type file struct {
	body        []byte
	contentType string
	etag        string
}

// Handler serves the embedded app: GET and HEAD of / (index.html) and of
// the files in dist; anything else is 404 (unknown path) or 405 (method).
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := dist.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) { // independent of the machine's mime tables
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		}
		files["/"+strings.TrimPrefix(p, "dist/")] = &file{body: b, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("webui: reading the embedded build: " + err.Error()) // unreachable: the files are compiled in
	}
	if idx, ok := files["/index.html"]; ok {
		files["/"] = idx
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.contentType)
		// Not content-addressed names: revalidate each time (cheap, 304).
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}

// Files lists the served paths (for tests and diagnostics).
func Files() []string {
	var out []string
	fs.WalkDir(dist, "dist", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, "/"+strings.TrimPrefix(p, "dist/"))
		}
		return nil
	})
	return out
}
