package service

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"time"

	"github.com/luxfi/session/service/wsclient"
)

// Reconnect backoff of the streaming transport (docs/stream.md section 5,
// "Reconnecting").
const (
	streamBackoffMin = time.Second
	streamBackoffMax = 5 * time.Minute
)

// stream is a Client's WebSocket to the node (a ws:// or wss:// URL):
// calls are pipelined on it, from any number of goroutines. While it
// cannot be had (the node refused it, closed it or is unreachable) calls
// go over POST to the same endpoint, and it is tried again after a random
// 1–5 s, doubling to 5 min while it keeps failing.
type stream struct {
	url  string // ws:// or wss://
	opts wsclient.Options

	mu      sync.Mutex
	conn    *wsclient.Conn
	retryAt time.Time
	backoff time.Duration
	closed  bool
	watches map[*InboxWatch]struct{} // WatchInbox's, for notifications
}

// streamURLs returns, for a ws:// or wss:// endpoint, the URL of its POST
// side (http:// or https://); ok is false for other URLs.
func streamURLs(raw string) (post string, ok bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", false
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", false
	}
	return u.String(), true
}

// get returns an open connection, dialing one if none is open and the
// backoff allows; nil means "use POST now".
func (s *stream) get(ctx context.Context) *wsclient.Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	if s.conn != nil {
		select {
		case <-s.conn.Done():
			s.noteLost(s.conn.Err())
		default:
			return s.conn
		}
	}
	if time.Now().Before(s.retryAt) {
		return nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := wsclient.Dial(dctx, s.url, s.opts)
	if err != nil {
		var he *wsclient.HandshakeError
		s.delay(errors.As(err, &he) && he.RetryAfter > 0, retryAfter(he))
		return nil
	}
	s.conn = conn
	return conn
}

func retryAfter(he *wsclient.HandshakeError) time.Duration {
	if he == nil {
		return 0
	}
	return he.RetryAfter
}

// noteLost records that the open connection ended with err: a close the
// client caused (its context, Close) or a client-fault code redials at
// once; any other end waits the backoff.
func (s *stream) noteLost(err error) {
	s.conn = nil
	if wsclient.Retryable(err) {
		s.delay(false, 0)
	}
}

// delay starts or doubles the backoff (at least floor, if given).
func (s *stream) delay(useFloor bool, floor time.Duration) {
	if s.backoff == 0 {
		s.backoff = streamBackoffMin + rand.N(4*time.Second)
	} else {
		s.backoff = min(2*s.backoff, streamBackoffMax)
	}
	d := s.backoff
	if useFloor && floor > d {
		d = floor
	}
	s.retryAt = time.Now().Add(d)
}

// ok resets the backoff after a call answered over the stream.
func (s *stream) ok() {
	s.mu.Lock()
	s.backoff = 0
	s.mu.Unlock()
}

// failed records that conn failed a call with err.
func (s *stream) failed(conn *wsclient.Conn, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn == conn {
		s.noteLost(err)
	}
}

func (s *stream) close() error {
	s.mu.Lock()
	conn := s.conn
	s.conn, s.closed = nil, true
	s.mu.Unlock()
	if conn != nil {
		return conn.Close()
	}
	return nil
}

// Close closes the Client's WebSocket, if it has one (a ws:// or wss://
// URL); later calls go over POST. It does nothing for an http(s) URL.
func (c *Client) Close() error {
	if c.stream == nil {
		return nil
	}
	return c.stream.close()
}

// exchangeStream sends one request body (an object with the JSON id id,
// or a batch: id "") over the WebSocket. handled is false when the call
// is to go over POST instead: no connection now, or the connection failed
// so that the request may or may not have run (sent again, a transaction
// that was admitted is answered with ErrDuplicateTx).
func (c *Client) exchangeStream(ctx context.Context, body []byte, id string) (data []byte, handled bool, err error) {
	conn := c.stream.get(ctx)
	if conn == nil {
		return nil, false, nil
	}
	data, err = conn.Call(ctx, body, id)
	switch {
	case err == nil:
		c.stream.ok()
		return data, true, nil
	case errors.Is(err, wsclient.ErrUntrustedNode):
		c.stream.failed(conn, err)
		return nil, true, fmt.Errorf("%w: %w", ErrUntrustedNode, err)
	case ctx.Err() != nil:
		c.stream.failed(conn, err)
		return nil, true, err
	}
	c.stream.failed(conn, err)
	return nil, false, nil
}
