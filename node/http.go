package node

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/luxfi/session/service"
)

// HTTPConfig is the node's HTTP policy: which hosts and browser origins
// may use it, and how much its clients can make it hold. Zero values take
// the defaults. docs/api.md ("Browsers, hosts and origins", "Memory and
// concurrency") describes both.
type HTTPConfig struct {
	// AllowedHosts are the host names accepted in the Host header, besides
	// those always accepted: IP addresses, "localhost" and the host of the
	// listen address. A DNS rebinding attack makes a browser send the
	// attacker's name, so any other name is refused (403). "*" accepts
	// every name. Names compare without port, case-insensitively.
	AllowedHosts []string
	// AllowedOrigins are the web origins ("https://app.example.com") whose
	// pages may call the node from a browser (CORS); "*" allows every
	// origin. Requests without an Origin (curl, the Go client) and from
	// the node's own origin are always allowed; any other origin is
	// refused (403), preflight included.
	AllowedOrigins []string
	// MaxConns bounds the connections open at once; more wait to be
	// accepted. Default service.DefaultMaxConns; negative: no bound.
	MaxConns int
	// SocketBuffer is each connection's kernel send and receive buffer.
	// Default service.DefaultSocketBuffer; negative: the system's
	// (auto-tuned, up to megabytes per connection).
	SocketBuffer int
	// Service bounds the JSON-RPC handler (bytes in flight, calls
	// executing); used when Config.Handler is nil.
	Service service.Options
	// DisableWebSocket turns the streaming transport (docs/stream.md) off:
	// an upgrade at /rpc is then answered 400. Used when Config.Handler
	// is nil.
	DisableWebSocket bool
	// Stream bounds the streaming transport (its OriginAllowed is set
	// from AllowedOrigins and the listen address: wsOrigins).
	Stream service.StreamOptions
}

// wsOrigins is the Origin check of a WebSocket handshake
// (docs/stream.md section 3). A WebSocket is not subject to CORS, so
// "same origin" cannot be judged from the request's Host, which a DNS
// rebinding page controls once Host checks are off: the node's own
// origins are computed from its listen address (its host, unless
// unspecified, and localhost, 127.0.0.1 and [::1], at its port, over
// http), and otherwise an origin must be listed (or the list be "*").
// Origins compare by scheme, lower-case host and port, the default port
// made explicit; "null" is never allowed (the handler refuses it).
func wsOrigins(cfg HTTPConfig, listenAddr string) func(string) bool {
	allowed := map[string]bool{}
	anyOrigin := false
	for _, o := range cfg.AllowedOrigins {
		o = strings.TrimSpace(o)
		if o == "*" {
			anyOrigin = true
		} else if k, ok := originKey(o); ok {
			allowed[k] = true
		}
	}
	if host, port, err := net.SplitHostPort(listenAddr); err == nil {
		hosts := []string{"localhost", "127.0.0.1", "[::1]"}
		if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
			if strings.Contains(host, ":") {
				host = "[" + host + "]" // IPv6
			}
			hosts = append(hosts, host)
		}
		for _, h := range hosts {
			if k, ok := originKey("http://" + h + ":" + port); ok {
				allowed[k] = true
			}
		}
	}
	return func(origin string) bool {
		if anyOrigin {
			return true
		}
		k, ok := originKey(origin)
		return ok && allowed[k]
	}
}

// originKey normalizes a web origin to scheme://host:port (lower case,
// the scheme's default port made explicit); false if it is not an
// http(s) origin.
func originKey(o string) (string, bool) {
	u, err := url.Parse(strings.TrimSuffix(o, "/"))
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	if scheme != "http" && scheme != "https" {
		return "", false
	}
	h, p := splitPort(strings.ToLower(u.Host), scheme)
	return scheme + "://" + net.JoinHostPort(h, p), true
}

func (c *HTTPConfig) maxConns() int {
	switch {
	case c.MaxConns == 0:
		return service.DefaultMaxConns
	case c.MaxConns < 0:
		return 0
	}
	return c.MaxConns
}

func (c *HTTPConfig) socketBuffer() int {
	switch {
	case c.SocketBuffer == 0:
		return service.DefaultSocketBuffer
	case c.SocketBuffer < 0:
		return 0
	}
	return c.SocketBuffer
}

// policy checks Host and Origin before any handler runs.
type policy struct {
	next      http.Handler
	anyHost   bool
	hosts     map[string]bool // lower case, no port
	anyOrigin bool
	origins   map[string]bool // scheme://host[:port], lower case
	// wsOrigin decides the Origin of a WebSocket handshake (wsOrigins).
	wsOrigin func(string) bool
}

// newPolicy wraps next with the Host and Origin checks for a server
// listening on listenAddr.
func newPolicy(next http.Handler, cfg HTTPConfig, listenAddr string, wsOrigin func(string) bool) *policy {
	p := &policy{next: next, hosts: map[string]bool{"localhost": true}, origins: map[string]bool{}, wsOrigin: wsOrigin}
	if h, _, err := net.SplitHostPort(listenAddr); err == nil && h != "" {
		p.hosts[strings.ToLower(h)] = true
	}
	for _, h := range cfg.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "*" {
			p.anyHost = true
		} else if h != "" {
			p.hosts[hostOnly(h)] = true
		}
	}
	for _, o := range cfg.AllowedOrigins {
		o = strings.TrimSpace(o)
		if o == "*" {
			p.anyOrigin = true
		} else if o != "" {
			p.origins[normalizeOrigin(o)] = true
		}
	}
	return p
}

// hostOnly strips the port (and IPv6 brackets) from a Host value.
func hostOnly(h string) string {
	if host, _, err := net.SplitHostPort(h); err == nil {
		return host
	}
	return strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
}

func normalizeOrigin(o string) string { return strings.TrimSuffix(strings.ToLower(o), "/") }

func (p *policy) hostAllowed(host string) bool {
	if host == "" || p.anyHost {
		return true // HTTP/1.0 without Host: no browser sends that
	}
	h := strings.ToLower(hostOnly(host))
	return net.ParseIP(h) != nil || p.hosts[h]
}

// sameOrigin reports whether origin is the node's own origin as this
// request reached it (its Host).
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	oh, op := splitPort(strings.ToLower(u.Host), u.Scheme)
	hh, hp := splitPort(strings.ToLower(host), u.Scheme)
	return oh == hh && op == hp
}

func splitPort(hostport, scheme string) (host, port string) {
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		h, p = strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]"), ""
	}
	if p == "" {
		switch scheme {
		case "https":
			p = "443"
		case "http":
			p = "80"
		}
	}
	return h, p
}

func (p *policy) originAllowed(origin string) bool {
	return p.anyOrigin || p.origins[normalizeOrigin(origin)]
}

func (p *policy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if n := headerFields(r.Header); n > maxHeaderFields {
		// Refused at once, so the parsed header is not held while the
		// body arrives.
		refuse(w, http.StatusRequestHeaderFieldsTooLarge, fmt.Sprintf("request has %d header fields, at most %d", n, maxHeaderFields))
		return
	}
	if !p.hostAllowed(r.Host) {
		forbid(w, "Host "+quote(r.Host)+" is not allowed (an IP address, localhost, or a name listed with --http-allowed-hosts)")
		return
	}
	origin := r.Header.Get("Origin")
	if len(r.Header["Upgrade"]) > 0 {
		// Any request naming an upgrade, in any of its Upgrade lines,
		// gets the WebSocket rule (an empty first line must not send it
		// down the CORS path).
		// A WebSocket handshake: no CORS, so "own origin" comes from the
		// configuration, not from Host (wsOrigins). The handler checks
		// it again.
		if origin != "" && (origin == "null" || p.wsOrigin == nil || !p.wsOrigin(origin)) {
			forbid(w, "origin "+quote(origin)+" may not open a WebSocket to this node (list it with --http-allowed-origins)")
			return
		}
		p.next.ServeHTTP(w, r)
		return
	}
	if origin == "" || sameOrigin(origin, r.Host) {
		p.next.ServeHTTP(w, r)
		return
	}
	if !p.originAllowed(origin) {
		forbid(w, "origin "+quote(origin)+" is not allowed (list it with --http-allowed-origins)")
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		// The preflight of a cross-origin POST with a JSON body.
		h.Set("Access-Control-Allow-Methods", "POST, GET, OPTIONS")
		h.Set("Access-Control-Allow-Headers", "Content-Type, Accept")
		h.Set("Access-Control-Max-Age", "600")
		if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
			h.Set("Access-Control-Allow-Private-Network", "true")
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	p.next.ServeHTTP(w, r)
}

func quote(s string) string { return fmt.Sprintf("%.100q", s) }

// headerFields counts the fields of a request's header h (each value of
// a repeated name), Host (which net/http takes out of h) included.
func headerFields(h http.Header) int {
	n := 1
	for _, v := range h {
		n += len(v)
	}
	return n
}

// forbid answers 403 with a JSON-RPC error body, as every answer of the
// API is.
func forbid(w http.ResponseWriter, msg string) { refuse(w, http.StatusForbidden, msg) }

// refuse answers status with a JSON-RPC error body and closes the
// connection.
func refuse(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]any{
		"jsonrpc": "2.0",
		"id":      nil,
		"error":   service.Error{Code: service.CodeInvalidRequest, Message: msg},
	})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// And the connection closes at once: net/http would otherwise read
	// what is left of the body (up to 256 KiB, as slowly as it comes, for
	// up to the read timeout) to keep the connection, and keep the
	// request, its parsed header included, meanwhile.
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
