package wsclient

import (
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// Subprotocol is the Sec-WebSocket-Protocol the client asks for and
// requires (docs/stream.md section 3).
const Subprotocol = "session.jsonrpc.v1"

// Defaults of Options.
const (
	// DefaultMaxMessage bounds a message of the node: 128 MiB, as the HTTP
	// client bounds a response body.
	DefaultMaxMessage = wsframe.DefaultClientMaxMessage
	// DefaultWriteTimeout bounds each write (plus the time to send its
	// bytes at 64 KiB/s).
	DefaultWriteTimeout = 10 * time.Second
)

const (
	closeWait       = 2 * time.Second  // Close waits this long for the node's close frame
	failWriteWait   = time.Second      // the close frame written when the connection fails
	readBufferSize  = 64 << 10         // many pipelined responses per read
	keepWriteBuffer = 256 << 10        // a larger write buffer is not kept
	maxBuffered     = 4 << 20          // Go waits while this much is unwritten
	handshakeWait   = 10 * time.Second // the handshake's bound without a ctx deadline
)

// Options configure Dial. The zero value is usable.
type Options struct {
	// Header is added to the handshake request (for example Origin). It
	// may not set Host, Upgrade, Connection, Content-Length,
	// Transfer-Encoding or any Sec-WebSocket-* field.
	Header http.Header
	// MaxMessage bounds a message of the node (0: DefaultMaxMessage). A
	// larger one fails the connection with ErrUntrustedNode, refused from
	// its frame header, before it is read.
	MaxMessage int
	// OnNotification receives each message that is a JSON-RPC
	// notification (a JSON object with no top-level "id"); the slice is
	// its own to keep. It is called on the connection's reader goroutine:
	// no response is read while it runs, so it must not block long, and it
	// must not call Close or Call on the connection. If nil, a
	// notification fails the connection with ErrUntrustedNode.
	OnNotification func(msg []byte)
	// Dialer dials the TCP connection (nil: a zero net.Dialer).
	Dialer *net.Dialer
	// TLSConfig is used for wss:// and https:// (nil: the defaults; the
	// ServerName is the URL's host if not set). Its NextProtos is set to
	// http/1.1.
	TLSConfig *tls.Config
	// WriteTimeout bounds each write of the client's frames, plus the
	// time to send them at 64 KiB/s (0: DefaultWriteTimeout). A write
	// that misses it fails the connection.
	WriteTimeout time.Duration
}

// Call is a request sent with Go. After Done is closed, exactly one of
// Response and Err is set.
type Call struct {
	// Done is closed when the call is answered or has failed.
	Done <-chan struct{}
	// Response is the node's response: for a request object, a JSON
	// object whose top-level "id" is the call's id; for a batch, a JSON
	// array (its elements' ids are the caller's to check). Only its top
	// level has been read: the caller decodes and validates it.
	Response []byte
	// Err is why the call failed: an error wrapping ErrUntrustedNode,
	// ErrConnectionLost, ErrClosed or ErrAbandoned, or a *CloseError.
	Err error

	id   string
	done chan struct{}
}

// Conn is a JSON-RPC connection over one WebSocket to a node, with
// requests pipelined. Its methods are safe for concurrent use.
type Conn struct {
	nc           net.Conn
	rd           *wsframe.ClientReader // the reader goroutine's only
	onNote       func([]byte)
	writeTimeout time.Duration

	mu       sync.Mutex
	wcond    sync.Cond // signalled when the write buffer is taken, or the conn fails
	waiters  int       // goroutines waiting on wcond
	wbuf     []byte    // frames not yet written, in wire order
	spare    []byte    // the other write buffer
	flushing bool      // a goroutine is writing: others only append
	pong     [wsframe.MaxControlPayload]byte
	pongLen  int
	pongDue  bool // a pong with pong[:pongLen] is to be written
	closing  bool // Close was called, its close frame is queued
	err      error
	pending  ring
	// The masking keys come from ChaCha8 seeded from crypto/rand per
	// connection: RFC 6455 section 5.3 asks that a key be unpredictable
	// to the application that supplies the payload (a script in a
	// browser could otherwise steer the bytes on the wire to fool a
	// proxy), not secret; a CSPRNG stream nobody else sees is that, at a
	// few nanoseconds per frame.
	rng *rand.ChaCha8

	done       chan struct{} // closed when the connection has failed or closed
	readerDone chan struct{}
	closeOnce  sync.Once
}

func newConn(nc net.Conn, rd *wsframe.ClientReader, opts *Options) (*Conn, error) {
	var seed [32]byte
	if _, err := crand.Read(seed[:]); err != nil {
		return nil, err
	}
	c := &Conn{
		nc:           nc,
		rd:           rd,
		onNote:       opts.OnNotification,
		writeTimeout: opts.WriteTimeout,
		rng:          rand.NewChaCha8(seed),
		done:         make(chan struct{}),
		readerDone:   make(chan struct{}),
	}
	if c.writeTimeout <= 0 {
		c.writeTimeout = DefaultWriteTimeout
	}
	c.wcond.L = &c.mu
	go c.readLoop()
	return c, nil
}

// Go sends msg, one complete JSON-RPC request object or batch encoded by
// the caller (valid UTF-8, as encoding/json writes), as one text message,
// and returns without waiting for the response. id is the request's id as
// the node echoes it, byte for byte (17, or "abc" with its quotes), unique
// among the connection's pending calls (use a counter); "" means msg is a
// batch, answered by one JSON array. A message that gets no response (a
// notification, or a batch of notifications only) must be sent with
// Notify instead.
//
// Responses are matched in the order the requests were written, which is
// the order of the Go calls' returns when they do not overlap. A lone
// request is written at once, on the calling goroutine; requests sent
// while another goroutine is writing are written together after it. Go
// waits only while 4 MiB are already waiting to be written (the node is
// not reading). It fails if the connection has failed or is closing.
func (c *Conn) Go(msg []byte, id string) (*Call, error) {
	if id == "null" {
		return nil, errors.New("wsclient: a request's id may not be null")
	}
	done := make(chan struct{})
	call := &Call{Done: done, id: id, done: done}
	if err := c.write(msg, call); err != nil {
		return nil, err
	}
	return call, nil
}

// Notify sends msg, a JSON-RPC notification or a batch of notifications
// only, as one text message. It expects no response: a response to it
// fails the connection with ErrUntrustedNode.
func (c *Conn) Notify(msg []byte) error { return c.write(msg, nil) }

func (c *Conn) write(msg []byte, call *Call) error {
	c.mu.Lock()
	for c.flushing && len(c.wbuf) >= maxBuffered && c.err == nil && !c.closing {
		c.waiters++
		c.wcond.Wait()
		c.waiters--
	}
	if err := c.refuseLocked(); err != nil {
		c.mu.Unlock()
		return err
	}
	c.wbuf = wsframe.AppendMaskedText(c.wbuf, msg, c.keyLocked())
	if call != nil {
		c.pending.push(call)
	}
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		c.fail(lost(err), 0, "")
	}
	return nil
}

// Call sends msg as Go does and waits for its response. If ctx ends
// first, the connection is closed (a pipelined request cannot be
// cancelled alone: docs/stream.md section 4, "Correlation"): Call returns
// ctx's error and every other pending call fails with ErrAbandoned.
func (c *Conn) Call(ctx context.Context, msg []byte, id string) ([]byte, error) {
	call, err := c.Go(msg, id)
	if err != nil {
		return nil, err
	}
	select {
	case <-call.done:
	case <-ctx.Done():
		c.fail(ErrAbandoned, wsframe.CloseNormal, "call abandoned")
		<-call.done
		if call.Err != nil {
			return nil, ctx.Err()
		}
	}
	return call.Response, call.Err
}

// Close sends a close frame (1000) and waits up to 2 s for the node's
// (reading meanwhile, so responses already on their way complete their
// calls), then closes the socket. Calls still pending fail with
// ErrClosed, and Go fails from the start of Close. Close is idempotent;
// it returns nil.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		t := time.AfterFunc(closeWait, func() { c.fail(ErrClosed, 0, "") })
		defer t.Stop()
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		c.closing = true
		c.wbuf, _ = wsframe.AppendMaskedClose(c.wbuf, wsframe.CloseNormal, "", c.keyLocked())
		c.wcond.Broadcast()
		err := c.flushLocked()
		c.mu.Unlock()
		if err != nil {
			c.fail(ErrClosed, 0, "")
		}
		<-c.readerDone
		c.fail(ErrClosed, 0, "")
	})
	<-c.done
	return nil
}

// Err returns why the connection ended, nil while it is open.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the connection has ended (Err is then set).
func (c *Conn) Done() <-chan struct{} { return c.done }

func (c *Conn) refuseLocked() error {
	switch {
	case c.err != nil:
		return c.err
	case c.closing:
		return ErrClosed
	}
	return nil
}

func (c *Conn) keyLocked() [4]byte {
	v := c.rng.Uint64()
	return [4]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
}

// flushLocked writes the buffered frames unless another goroutine is
// writing them; c.mu is held, and released while writing. Frames
// appended while it writes are written after, in the same call.
func (c *Conn) flushLocked() error {
	if c.flushing {
		return nil
	}
	c.flushing = true
	err := c.flushLoop()
	c.flushing = false
	return err
}

func (c *Conn) flushLoop() error {
	for {
		if c.pongDue && !c.closing {
			c.wbuf, _ = wsframe.AppendMaskedPong(c.wbuf, c.pong[:c.pongLen], c.keyLocked())
		}
		c.pongDue = false
		if len(c.wbuf) == 0 || c.err != nil {
			return nil
		}
		buf := c.wbuf
		c.wbuf, c.spare = c.spare[:0], nil
		if c.waiters > 0 {
			c.wcond.Broadcast()
		}
		c.mu.Unlock()
		c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout + time.Duration(len(buf))*time.Second/(64<<10)))
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		if cap(buf) <= keepWriteBuffer {
			c.spare = buf[:0]
		}
		if err != nil {
			return err
		}
	}
}

// queuePong has the latest ping answered: a pong not yet written takes the
// new payload (RFC 6455 section 5.5.3). The reader goroutine never writes
// itself: if it blocked on a write while the node blocks on writing to
// it, neither would read.
func (c *Conn) queuePong(payload []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pongLen = copy(c.pong[:], payload)
	c.pongDue = true
	if !c.flushing && c.err == nil {
		c.flushing = true
		go func() {
			c.mu.Lock()
			err := c.flushLoop()
			c.flushing = false
			c.mu.Unlock()
			if err != nil {
				c.fail(lost(err), 0, "")
			}
		}()
	}
}

// fail ends the connection with err, once: it fails every pending call,
// writes a close frame with code (0: none) unless Close queued one, and
// closes the socket. The close frame may be written while a flush is in
// progress: a net.Conn (and a tls.Conn) writes each buffer whole under
// its own lock, so frames do not interleave, and the 1 s deadline set
// here also ends a flush that is blocked.
func (c *Conn) fail(err error, code uint16, reason string) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	calls := c.pending.drain()
	var frame []byte
	if code != 0 && !c.closing {
		frame, _ = wsframe.AppendMaskedClose(nil, code, reason, c.keyLocked())
	}
	c.flushing = true // no more writes
	c.wbuf = nil
	c.wcond.Broadcast()
	c.mu.Unlock()
	if frame != nil {
		c.nc.SetWriteDeadline(time.Now().Add(failWriteWait))
		c.nc.Write(frame)
	}
	c.nc.Close()
	for _, call := range calls {
		call.Err = err
		close(call.done)
	}
	close(c.done)
}

func lost(err error) error { return fmt.Errorf("%w: %w", ErrConnectionLost, err) }

func untrusted(what string) error { return fmt.Errorf("%w: %s", ErrUntrustedNode, what) }

// readLoop is the reader goroutine: it matches each text message to the
// oldest pending call, answers pings, and ends the connection on the
// node's close frame or any failure.
func (c *Conn) readLoop() {
	defer close(c.readerDone)
	for {
		m, err := c.rd.Next()
		if err != nil {
			c.readFailed(err)
			return
		}
		switch m.Op {
		case wsframe.OpText:
			if code, err := c.dispatch(m.Payload); err != nil {
				c.fail(err, code, "untrusted response")
				return
			}
		case wsframe.OpPing:
			c.queuePong(m.Payload)
		case wsframe.OpClose:
			c.mu.Lock()
			closing := c.closing
			c.mu.Unlock()
			if closing {
				c.fail(ErrClosed, 0, "")
				return
			}
			code := m.Code
			if code == wsframe.CloseNoStatus {
				code = wsframe.CloseNormal
			}
			c.fail(&CloseError{Code: m.Code, Reason: string(m.Payload)}, code, "")
			return
		}
	}
}

func (c *Conn) readFailed(err error) {
	var ce wsframe.CloseError
	if errors.As(err, &ce) {
		c.fail(fmt.Errorf("%w: %w", ErrUntrustedNode, err), ce.Code, ce.Reason)
		return
	}
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		c.fail(ErrClosed, 0, "")
		return
	}
	c.fail(lost(err), 0, "")
}

// dispatch hands a text message to its call or to OnNotification, or
// returns why it is untrusted and the close code to send.
func (c *Conn) dispatch(msg []byte) (uint16, error) {
	kind, id, hasID := scanTop(msg)
	switch {
	case kind == topInvalid:
		return wsframe.CloseInvalidPayload, untrusted("a message that is not one JSON object or array")
	case kind == topObject && !hasID:
		if c.onNote == nil {
			return wsframe.ClosePolicyViolation, untrusted("a notification, and none is expected")
		}
		c.rd.Detach()
		c.onNote(msg)
		return 0, nil
	}
	c.mu.Lock()
	call := c.pending.peek()
	var bad error
	switch {
	case call == nil:
		bad = untrusted("a response with no request pending")
	case call.id == "" && kind != topArray:
		bad = untrusted("an object answering a batch")
	case call.id != "" && kind != topObject:
		bad = untrusted("an array answering a request object, expected id " + call.id)
	case call.id != "" && string(id) != call.id:
		bad = untrusted("response id " + quoteBounded(id) + ", expected " + call.id)
	default:
		c.pending.pop()
	}
	c.mu.Unlock()
	if bad != nil {
		return wsframe.ClosePolicyViolation, bad
	}
	c.rd.Detach()
	call.Response = msg
	close(call.done)
	return 0, nil
}

// quoteBounded quotes at most 50 bytes of b, the node's bytes, for an
// error message.
func quoteBounded(b []byte) string {
	if len(b) > 50 {
		return strconv.Quote(string(b[:50])) + "..."
	}
	return strconv.Quote(string(b))
}

// ring is the FIFO of pending calls, in wire order.
type ring struct {
	buf  []*Call // its length is 0 or a power of two
	head int
	n    int
}

func (r *ring) push(c *Call) {
	if r.n == len(r.buf) {
		nb := make([]*Call, max(16, 2*len(r.buf)))
		for i := range r.n {
			nb[i] = r.buf[(r.head+i)&(len(r.buf)-1)]
		}
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)&(len(r.buf)-1)] = c
	r.n++
}

func (r *ring) peek() *Call {
	if r.n == 0 {
		return nil
	}
	return r.buf[r.head]
}

func (r *ring) pop() {
	r.buf[r.head] = nil
	r.head = (r.head + 1) & (len(r.buf) - 1)
	r.n--
}

func (r *ring) drain() []*Call {
	out := make([]*Call, 0, r.n)
	for r.n > 0 {
		out = append(out, r.peek())
		r.pop()
	}
	return out
}
