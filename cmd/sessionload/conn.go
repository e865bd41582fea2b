package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// rawConn is one sender's keep-alive HTTP/1.1 connection to the node: a
// request (its head and the pre-encoded body) goes out in one write, and
// the response is read with http.ReadResponse. net/http's Transport
// hands every request and response between the caller and two goroutines
// per connection; without it a one-message request costs the generator
// (on the same cores as the node) markedly less. The node sees the same
// HTTP/1.1 requests a Go client sends (POST, Host, Content-Type,
// Content-Length; no gzip negotiation). Only plain http URLs; others use
// the http.Client.
type rawConn struct {
	addr string // host:port to dial
	head []byte // the request head up to "Content-Length: "
	ctx  context.Context

	c    net.Conn
	br   *bufio.Reader
	stop func() bool // stops closing c when ctx ends
	buf  []byte
}

// newRawConn returns a connection to the node at rawURL for requests
// under ctx, or nil when rawURL is not a plain http URL. It dials on
// first use.
func newRawConn(ctx context.Context, rawURL string) *rawConn {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "http" || u.Host == "" || u.User != nil {
		return nil
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	head := "POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: sessionload\r\nContent-Type: application/json\r\nContent-Length: "
	return &rawConn{addr: addr, head: []byte(head), ctx: ctx}
}

// rawTimeout bounds one request and its response.
const rawTimeout = 30 * time.Second

// post sends body and returns the response's status and body. A request
// on a reused connection that fails before any response byte arrives is
// sent again once on a new connection (the node may have closed it as
// idle).
func (r *rawConn) post(body []byte) (int, []byte, error) {
	for attempt := 0; ; attempt++ {
		reused := r.c != nil
		status, data, err := r.try(body)
		if err == nil {
			return status, data, nil
		}
		r.close()
		var rerr retryable
		if !reused || attempt > 0 || !errors.As(err, &rerr) || r.ctx.Err() != nil {
			return 0, nil, err
		}
	}
}

// retryable marks an error before any byte of the response.
type retryable struct{ error }

func (r *rawConn) try(body []byte) (int, []byte, error) {
	if r.c == nil {
		d := net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
		c, err := d.DialContext(r.ctx, "tcp", r.addr)
		if err != nil {
			return 0, nil, err
		}
		r.c, r.br = c, bufio.NewReaderSize(c, 16<<10)
		r.stop = context.AfterFunc(r.ctx, func() { _ = c.Close() })
	}
	if err := r.c.SetDeadline(time.Now().Add(rawTimeout)); err != nil {
		return 0, nil, err
	}
	r.buf = append(r.buf[:0], r.head...)
	r.buf = strconv.AppendInt(r.buf, int64(len(body)), 10)
	r.buf = append(r.buf, "\r\n\r\n"...)
	r.buf = append(r.buf, body...)
	if _, err := r.c.Write(r.buf); err != nil {
		return 0, nil, retryable{err}
	}
	if _, err := r.br.Peek(1); err != nil {
		return 0, nil, retryable{err}
	}
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		return 0, nil, err
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	resp.Body.Close()
	if err != nil {
		return 0, nil, err
	}
	if resp.Close {
		r.close()
	}
	return resp.StatusCode, data, nil
}

func (r *rawConn) close() {
	if r.c != nil {
		r.stop()
		_ = r.c.Close()
		r.c, r.br = nil, nil
	}
}

// post sends one pre-encoded request body through rc, or the http.Client
// when rc is nil, and returns the response's status and body.
func (p *poster) post(ctx context.Context, rc *rawConn, body []byte) (int, []byte, error) {
	if rc != nil {
		return rc.post(body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the response: %w", err)
	}
	return resp.StatusCode, data, nil
}
