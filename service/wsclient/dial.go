package wsclient

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// maxHandshakeResponse bounds what the handshake reads: the status line,
// the header and (for a refusal) the first KiB of the body.
const maxHandshakeResponse = 16 << 10

// errResponseTooLarge: the handshake response did not fit 16 KiB.
var errResponseTooLarge = errors.New("wsclient: handshake response over 16 KiB")

// limitedReader reads the socket, at most n bytes while n ≥ 0 (during the
// handshake), without bound once n < 0.
type limitedReader struct {
	r io.Reader
	n int
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n < 0 {
		return l.r.Read(p)
	}
	if l.n == 0 {
		return 0, errResponseTooLarge
	}
	p = p[:min(len(p), l.n)]
	k, err := l.r.Read(p)
	l.n -= k
	return k, err
}

// reservedHeaders may not be set through Options.Header.
var reservedHeaders = []string{"Host", "Upgrade", "Connection", "Content-Length", "Transfer-Encoding"}

// Dial opens a WebSocket to rawURL (ws://host[:port]/path, or http://,
// the same; wss:// or https:// over TLS) and performs the RFC 6455
// handshake of docs/stream.md section 3, asking for the subprotocol
// session.jsonrpc.v1 and no extension. It requires a 101 answer with
// "Upgrade: websocket", a Connection containing "upgrade", the right
// Sec-WebSocket-Accept, exactly that subprotocol and no extension. Any
// other answer is a *HandshakeError. The handshake (dialing included) is
// bounded by ctx and by 10 s, and its response by 16 KiB; the connection
// then lives until it fails or Close is called, whatever becomes of ctx.
func Dial(ctx context.Context, rawURL string, opts Options) (*Conn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	useTLS := false
	switch strings.ToLower(u.Scheme) {
	case "ws", "http":
	case "wss", "https":
		useTLS = true
	default:
		return nil, fmt.Errorf("wsclient: URL scheme %q is not ws, wss, http or https", u.Scheme)
	}
	if u.Host == "" || u.User != nil {
		return nil, errors.New("wsclient: the URL needs a host and no user information")
	}
	for name := range opts.Header {
		name = http.CanonicalHeaderKey(name)
		for _, r := range reservedHeaders {
			if name == r {
				return nil, fmt.Errorf("wsclient: Options.Header may not set %s", name)
			}
		}
		if strings.HasPrefix(name, "Sec-Websocket-") {
			return nil, fmt.Errorf("wsclient: Options.Header may not set %s", name)
		}
	}
	port := u.Port()
	if port == "" {
		port = "80"
		if useTLS {
			port = "443"
		}
	}
	deadline := time.Now().Add(handshakeWait)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	dialer := opts.Dialer
	if dialer == nil {
		dialer = &net.Dialer{}
	}
	nc, err := dialer.DialContext(hctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return nil, fmt.Errorf("wsclient: %w", err)
	}
	nc.SetDeadline(deadline)
	stop := context.AfterFunc(hctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	if useTLS {
		cfg := &tls.Config{}
		if opts.TLSConfig != nil {
			cfg = opts.TLSConfig.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(hctx); err != nil {
			stop()
			nc.Close()
			return nil, fmt.Errorf("wsclient: %w", err)
		}
		nc = tc
	}
	br, err := handshake(nc, u, opts.Header)
	if !stop() || hctx.Err() != nil || err != nil && !time.Now().Before(deadline) {
		// ctx ended, or the deadline passed (the socket's may fire just
		// before ctx's timer), during the handshake.
		nc.Close()
		cause := ctx.Err()
		if cause == nil {
			cause = context.DeadlineExceeded
		}
		return nil, fmt.Errorf("wsclient: handshake: %w", cause)
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	c, err := newConn(nc, wsframe.NewClientReader(br, opts.MaxMessage), &opts)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// handshake writes the upgrade request and checks the response, returning
// the buffered reader that holds any frame read after it.
func handshake(nc net.Conn, u *url.URL, extra http.Header) (*bufio.Reader, error) {
	var raw [16]byte
	if _, err := crand.Read(raw[:]); err != nil {
		return nil, err
	}
	key := base64.StdEncoding.EncodeToString(raw[:])
	accept, err := wsframe.AcceptKey(key)
	if err != nil {
		return nil, err
	}
	h := extra.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set("Upgrade", "websocket")
	h.Set("Connection", "Upgrade")
	h.Set("Sec-WebSocket-Key", key)
	h.Set("Sec-WebSocket-Version", "13")
	h.Set("Sec-WebSocket-Protocol", Subprotocol)
	req := &http.Request{
		Method:     http.MethodGet,
		URL:        &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: u.RawQuery},
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}
	if err := req.Write(nc); err != nil {
		return nil, fmt.Errorf("wsclient: handshake: %w", err)
	}
	lr := &limitedReader{r: nc, n: maxHandshakeResponse}
	br := bufio.NewReaderSize(lr, readBufferSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, fmt.Errorf("wsclient: handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, &HandshakeError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After")), Body: string(body)}
	}
	refuse := func(reason string) (*bufio.Reader, error) {
		return nil, &HandshakeError{Status: resp.StatusCode, Reason: reason}
	}
	switch {
	case !hasToken(resp.Header["Upgrade"], "websocket"):
		return refuse("101 without Upgrade: websocket")
	case !hasToken(resp.Header["Connection"], "upgrade"):
		return refuse("101 without Connection: upgrade")
	case len(resp.Header["Sec-Websocket-Accept"]) != 1 || resp.Header.Get("Sec-WebSocket-Accept") != accept:
		return refuse("wrong Sec-WebSocket-Accept")
	case len(resp.Header["Sec-Websocket-Protocol"]) != 1 || resp.Header.Get("Sec-WebSocket-Protocol") != Subprotocol:
		return refuse("subprotocol not " + Subprotocol)
	case len(resp.Header["Sec-Websocket-Extensions"]) != 0:
		return refuse("an extension was not asked for")
	}
	lr.n = -1
	return br, nil
}

// hasToken reports whether the comma-separated token lists of a header
// contain token, compared without regard to case.
func hasToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// retryAfter reads a Retry-After value: delay-seconds or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseUint(v, 10, 32); err == nil {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
