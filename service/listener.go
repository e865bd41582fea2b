package service

import (
	"net"
	"sync"
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
// once (Accept waits until one closes; 0: no bound) and each accepted TCP
// connection has kernel send and receive buffers of sockBuf bytes (0: the
// system's, auto-tuned). With the handler's budgets (Options), it bounds
// what clients can make a node hold: docs/api.md, "Memory and
// concurrency".
func BoundListener(l net.Listener, maxConns, sockBuf int) net.Listener {
	bl := &boundListener{Listener: l, sockBuf: sockBuf, closed: make(chan struct{})}
	if maxConns > 0 {
		bl.slots = make(chan struct{}, maxConns)
	}
	return bl
}

type boundListener struct {
	net.Listener
	slots     chan struct{}
	sockBuf   int
	closed    chan struct{}
	closeOnce sync.Once
}

// Close closes the listener; an Accept waiting for a free slot returns.
func (l *boundListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return l.Listener.Close()
}

func (l *boundListener) Accept() (net.Conn, error) {
	if l.slots != nil {
		select {
		case l.slots <- struct{}{}:
		case <-l.closed:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		if l.slots != nil {
			<-l.slots
		}
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && l.sockBuf > 0 {
		_ = tc.SetWriteBuffer(l.sockBuf)
		_ = tc.SetReadBuffer(l.sockBuf)
	}
	if l.slots == nil {
		return c, nil
	}
	return &boundConn{Conn: c, release: func() { <-l.slots }}, nil
}

type boundConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *boundConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
