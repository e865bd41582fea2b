package service

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of BoundListener's bounds (node.Config uses them).
const (
	DefaultMaxConns = 1024
	// DefaultSocketBuffer is the kernel send and receive buffer of each
	// connection. Without it Linux grows a socket's send buffer up to
	// net.ipv4.tcp_wmem's maximum (4 MiB by default): a client that does
	// not read would park responses there, outside every budget of the
	// handler. 64 KiB (Linux accounts twice that) moves a 1.4 MB page in
	// about a second at 50 ms of round trip, and at once on a LAN.
	DefaultSocketBuffer = 64 << 10
)

// BoundListener wraps l so that at most maxConns connections are open at
// once (0: no bound) and each accepted TCP connection has kernel send and
// receive buffers of sockBuf bytes (0: the system's, auto-tuned). With the
// handler's budgets (Options), it bounds what clients can make a node
// hold: docs/api.md, "Memory and concurrency".
//
// A connection that arrives while all maxConns are open is accepted and
// waits for one to close; if the server reports connection states to the
// listener (ConnStateHook), the connection idle longest between requests
// is closed to make room, so idle keep-alive connections cannot keep new
// clients out.
func BoundListener(l net.Listener, maxConns, sockBuf int) net.Listener {
	bl := &boundListener{Listener: l, sockBuf: sockBuf, closed: make(chan struct{}),
		idle: map[*boundConn]time.Time{}, wake: make(chan struct{}, 1)}
	if maxConns > 0 {
		bl.slots = make(chan struct{}, maxConns)
	}
	return bl
}

// ConnStateHook returns the http.Server ConnState hook that tells l (from
// BoundListener) which connections are idle, so that a new connection
// arriving while all slots are taken closes the one idle longest. For
// other listeners it returns nil.
func ConnStateHook(l net.Listener) func(net.Conn, http.ConnState) {
	bl, ok := l.(*boundListener)
	if !ok || bl.slots == nil {
		return nil
	}
	return bl.connState
}

type boundListener struct {
	net.Listener
	slots     chan struct{}
	sockBuf   int
	closed    chan struct{}
	closeOnce sync.Once

	mu   sync.Mutex
	idle map[*boundConn]time.Time // idle between requests, since
	// wake tells an Accept waiting for a slot that a connection became
	// idle.
	wake chan struct{}
}

// Close closes the listener; an Accept waiting for a free slot returns.
func (l *boundListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *boundListener) connState(c net.Conn, s http.ConnState) {
	bc, ok := c.(*boundConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateIdle:
		l.idle[bc] = time.Now()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	case http.StateActive, http.StateClosed, http.StateHijacked:
		delete(l.idle, bc)
	}
}

// closeIdlest closes the connection idle longest, if any.
func (l *boundListener) closeIdlest() {
	l.mu.Lock()
	var oldest *boundConn
	var since time.Time
	for c, t := range l.idle {
		if oldest == nil || t.Before(since) {
			oldest, since = c, t
		}
	}
	delete(l.idle, oldest)
	var evict func() bool
	if oldest != nil {
		evict, oldest.evict = oldest.evict, nil
	}
	l.mu.Unlock()
	switch {
	case evict != nil:
		// A WebSocket between messages: its loop writes the close frame
		// (1013, with a short deadline) and closes it. Its slot is freed
		// now, as closing an HTTP connection frees it, so the waiting
		// Accept takes it and does not evict a second one meanwhile.
		if evict() {
			oldest.once.Do(oldest.release)
		}
	case oldest != nil:
		_ = oldest.Close()
	}
}

// markIdle records that c, hijacked for a WebSocket, is idle between
// messages since since (its last message): closeIdlest may then call evict (once) to make room, instead
// of closing it.
func (l *boundListener) markIdle(c *boundConn, since time.Time, evict func() bool) {
	l.mu.Lock()
	l.idle[c] = since
	c.evict = evict
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// markActive undoes markIdle.
func (l *boundListener) markActive(c *boundConn) {
	l.mu.Lock()
	delete(l.idle, c)
	c.evict = nil
	l.mu.Unlock()
}

func (l *boundListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && l.sockBuf > 0 {
		_ = tc.SetWriteBuffer(l.sockBuf)
		_ = tc.SetReadBuffer(l.sockBuf)
	}
	if l.slots == nil {
		return c, nil
	}
	select {
	case l.slots <- struct{}{}:
	default:
		// All slots taken: make room by closing an idle connection, if
		// the server reports them, then wait for a slot. Only this
		// connection waits: the server accepts one at a time, and the
		// kernel's backlog holds the rest.
	wait:
		for {
			l.closeIdlest()
			// The slot first: a stale wake-up, ready too, would otherwise
			// be taken at random and close a second idle connection.
			select {
			case l.slots <- struct{}{}:
				break wait
			default:
			}
			select {
			case l.slots <- struct{}{}:
				break wait
			case <-l.wake:
			case <-l.closed:
				c.Close()
				return nil, net.ErrClosed
			}
		}
	}
	return &boundConn{Conn: c, l: l, release: func() { <-l.slots }}, nil
}

type boundConn struct {
	net.Conn
	once    sync.Once
	release func()
	l       *boundListener
	evict   func() bool // set while a WebSocket is idle; guarded by l.mu
}

func (c *boundConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
