package service

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/session/service/wsframe"
)

// Subprotocol is the WebSocket subprotocol of the streaming transport:
// JSON-RPC 2.0, one request object or batch per text message
// (docs/stream.md).
const Subprotocol = "session.jsonrpc.v1"

// The streaming transport's fixed bounds (docs/stream.md section 5).
const (
	// readBuffer is each connection's read buffer: messages up to about
	// this size are read whole in one system call when pipelined.
	readBuffer = 64 << 10
	// outBuffer is the output buffer: small responses are gathered up
	// to this size and written together.
	outBuffer = 16 << 10
	// msgFloor is the body budget a message takes when its first frame
	// header arrives; it takes twice its bytes once they exceed half of
	// it.
	msgFloor = 16 << 10
	// ctlRate and ctlBurst bound control frames per connection.
	ctlRate, ctlBurst = 10, 20
	// drainTime bounds reading (and discarding) a client's input after
	// the node's close frame.
	drainTime = 2 * time.Second
	// evictWrite bounds writing an evicted connection's close frame: its
	// place in the connection limit was given away when it was evicted.
	evictWrite = time.Second
)

// hasToken reports whether a comma-separated token list header (each of
// its lines) holds token, compared case-insensitively.
func hasToken(lines []string, token string) bool {
	for _, line := range lines {
		for t := range strings.SplitSeq(line, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// hasExactToken is hasToken comparing case-sensitively (subprotocols).
func hasExactToken(lines []string, token string) bool {
	for _, line := range lines {
		for t := range strings.SplitSeq(line, ",") {
			if strings.TrimSpace(t) == token {
				return true
			}
		}
	}
	return false
}

// refuseUpgrade answers a handshake the node does not accept.
func refuseUpgrade(w http.ResponseWriter, status int, format string, args ...any) {
	// The connection closes with the answer: net/http would otherwise
	// wait to read a body the request declared (up to its read timeout).
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	writeResponse(w, status, nullID, nil, errorf(CodeInvalidRequest, format, args...))
}

// serveUpgrade checks a WebSocket handshake (docs/stream.md section 3)
// and, if it is accepted, serves the connection until it closes.
func (h *handler) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	so := h.opts.Stream
	switch {
	case so == nil:
		refuseUpgrade(w, http.StatusBadRequest, "this node does not serve WebSocket: POST JSON-RPC requests")
		return
	case r.ProtoMajor != 1 || r.ProtoMinor < 1:
		refuseUpgrade(w, http.StatusBadRequest, "a WebSocket needs HTTP/1.1")
		return
	case !hasToken(r.Header["Connection"], "upgrade"):
		refuseUpgrade(w, http.StatusBadRequest, "Connection must include upgrade")
		return
	case r.ContentLength != 0 || len(r.TransferEncoding) > 0:
		refuseUpgrade(w, http.StatusBadRequest, "an upgrade request must not have a body")
		return
	}
	if v := r.Header["Sec-Websocket-Version"]; len(v) != 1 || v[0] != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		refuseUpgrade(w, http.StatusUpgradeRequired, "Sec-WebSocket-Version must be 13")
		return
	}
	keys := r.Header["Sec-Websocket-Key"]
	if len(keys) != 1 {
		refuseUpgrade(w, http.StatusBadRequest, "Sec-WebSocket-Key must be given once")
		return
	}
	accept, err := wsframe.AcceptKey(keys[0])
	if err != nil {
		refuseUpgrade(w, http.StatusBadRequest, "Sec-WebSocket-Key must be the base64 of 16 bytes")
		return
	}
	if !hasExactToken(r.Header["Sec-Websocket-Protocol"], Subprotocol) {
		refuseUpgrade(w, http.StatusBadRequest, "Sec-WebSocket-Protocol must offer %s", Subprotocol)
		return
	}
	if origins := r.Header["Origin"]; len(origins) > 0 {
		if len(origins) != 1 || origins[0] == "null" || so.OriginAllowed == nil || !so.OriginAllowed(origins[0]) {
			refuseUpgrade(w, http.StatusForbidden, "origin %.100q may not open a WebSocket to this node (list it with --http-allowed-origins)", strings.Join(origins, ", "))
			return
		}
	}
	c := &wsConn{h: h, so: so, stopCh: make(chan struct{})}
	if !h.addConn(c) {
		w.Header().Set("Retry-After", "5")
		refuseUpgrade(w, http.StatusServiceUnavailable, "busy: %d WebSocket connections are open; retry later or POST requests", so.MaxConns)
		return
	}
	defer h.removeConn(c)
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		refuseUpgrade(w, http.StatusBadRequest, "this server cannot upgrade connections: POST JSON-RPC requests")
		return
	}
	c.serve(nc, brw.Reader, accept)
}

// addConn registers c, unless MaxConns are open or the handler is
// shutting down.
func (h *handler) addConn(c *wsConn) bool {
	h.wsMu.Lock()
	defer h.wsMu.Unlock()
	if h.wsClosing || len(h.conns) >= h.opts.Stream.MaxConns {
		return false
	}
	h.conns[c] = struct{}{}
	h.wsDone.Add(1)
	return true
}

func (h *handler) removeConn(c *wsConn) {
	h.wsMu.Lock()
	delete(h.conns, c)
	h.wsMu.Unlock()
	h.wsDone.Done()
}

// ShutdownStreams closes every WebSocket of the handler as docs/stream.md
// section 4 "Closing" says (its output written, close 1001, the client's
// input drained) and refuses new ones; it returns when all are closed or
// ctx ends. http.Server.Shutdown does not see hijacked connections: a
// server that serves the transport calls both.
func (h *handler) ShutdownStreams(ctx context.Context) error {
	h.wsMu.Lock()
	h.wsClosing = true
	for c := range h.conns {
		if !c.stop.Swap(true) {
			close(c.stopCh)
		}
		c.wake()
	}
	h.wsMu.Unlock()
	done := make(chan struct{})
	go func() {
		h.wsDone.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		h.wsMu.Lock()
		for c := range h.conns {
			c.abort()
		}
		h.wsMu.Unlock()
		return ctx.Err()
	}
}

// StreamShutdowner is implemented by the handlers of NewHandlerWith:
// a server that hijacks connections for the streaming transport calls
// ShutdownStreams when it shuts down.
type StreamShutdowner interface {
	ShutdownStreams(ctx context.Context) error
}

var _ StreamShutdowner = (*handler)(nil)

// The states of a connection for idle eviction.
const (
	stActive int32 = iota
	stIdle
	stEvicted
)

// wsConn is one WebSocket: a single goroutine reads a message, runs it,
// buffers its response, and reads the next (docs/stream.md section 4).
type wsConn struct {
	h  *handler
	so *StreamOptions

	nc  net.Conn
	bc  *boundConn // nil unless from a BoundListener (no eviction)
	rd  *wsframe.Reader
	br  *bufio.Reader // nil while waiting for input (readBuffers)
	src firstByte
	ctx context.Context
	req *http.Request // the request handed to gorilla/rpc
	rw  nopWriter

	out      []byte
	pong     [wsframe.MaxControlPayload]byte
	pongLen  int
	pongWant bool
	werr     error // a write failed: the connection is dead

	held     int64 // body budget held for the message in progress
	received int   // its bytes taken so far

	lastData, lastFrame time.Time
	pinged              bool

	tokens   float64
	tokensAt time.Time
	ctl      float64
	ctlAt    time.Time

	state atomic.Int32 // stActive, stIdle, stEvicted
	stop  atomic.Bool  // the handler is shutting down
	// stopCh is closed with stop set, waking a wait on the call bucket.
	stopCh chan struct{}
	// aborted: ShutdownStreams gave up waiting; close without ceremony.
	aborted atomic.Bool
	evicted bool

	subs     []*subscription // its subscriptions (the loop's goroutine only)
	notified atomic.Bool     // a subscription's pending position rose
	// inBatch: the output holds part of a batch's fragmented response,
	// which no notification may interrupt (the loop's goroutine only).
	inBatch bool
	// wakeMu orders signal's wake-up with the loop leaving the idle
	// state (never held across I/O).
	wakeMu sync.Mutex
}

// readBuffers holds the connections' read buffers: a connection holds
// one only while it has input, so idle WebSockets hold none.
var readBuffers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBuffer) }}

// firstByte is the source of a connection's read buffer: the byte that
// ended its wait, then the socket.
type firstByte struct {
	first [1]byte
	used  bool
	r     io.Reader
}

func (f *firstByte) Read(p []byte) (int, error) {
	if !f.used {
		if len(p) == 0 {
			return 0, nil
		}
		f.used = true
		p[0] = f.first[0]
		return 1, nil
	}
	return f.r.Read(p)
}

// takeBuffer gives the connection a read buffer holding the byte just
// read into c.src.first.
func (c *wsConn) takeBuffer() {
	c.src.used = false
	c.br = readBuffers.Get().(*bufio.Reader)
	c.br.Reset(&c.src)
	if c.rd == nil {
		c.rd = wsframe.NewReader(c.br, c)
	} else {
		c.rd.SetBuffer(c.br)
	}
}

// releaseBuffer gives the (empty) read buffer back to the pool.
func (c *wsConn) releaseBuffer() {
	if c.br == nil {
		return
	}
	c.br.Reset(nil)
	readBuffers.Put(c.br)
	c.br = nil
}

// nopWriter is the http.ResponseWriter handed to gorilla/rpc: the codec
// writes responses into the call, never to the writer.
type nopWriter struct{ hdr http.Header }

func (w *nopWriter) Header() http.Header {
	if w.hdr == nil {
		w.hdr = make(http.Header)
	}
	return w.hdr
}
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// wake makes a read the loop is blocked in return now.
func (c *wsConn) wake() {
	if c.nc != nil {
		_ = c.nc.SetReadDeadline(aLongTimeAgo)
	}
}

func (c *wsConn) abort() {
	c.aborted.Store(true)
	if c.nc != nil {
		_ = c.nc.Close()
	}
}

var aLongTimeAgo = time.Unix(1, 0)

// closeWith is why the loop ended: the close frame to send, or none.
type closeWith struct {
	code   uint16
	reason string
	frame  bool // send a close frame (else the socket just closes)
	drain  bool // half-close and read the client's input for drainTime
}

func closeFor(code uint16, reason string) closeWith {
	return closeWith{code: code, reason: reason, frame: true, drain: true}
}

// serve runs the connection: the 101 response, then messages until the
// connection ends.
func (c *wsConn) serve(nc net.Conn, hbr *bufio.Reader, accept string) {
	// Bytes in net/http's reader arrived before the 101: refused below.
	// Its 4 KiB buffer is not used: a 5 KB message would never be whole
	// in it, so every pipelined message would cost a flush and two reads
	// (c.br, readBuffer).
	early := hbr.Buffered() > 0
	c.h.wsMu.Lock() // ShutdownStreams reads nc under it
	c.nc = nc
	c.h.wsMu.Unlock()
	c.bc, _ = nc.(*boundConn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c.ctx = ctx
	c.req = (&http.Request{Method: http.MethodPost, Header: codecHeader, Body: http.NoBody}).WithContext(ctx)
	now := time.Now()
	c.lastData, c.lastFrame, c.tokensAt, c.ctlAt = now, now, now, now
	c.tokens, c.ctl = float64(c.so.CallBurst), ctlBurst
	c.src.r = nc
	_ = nc.SetDeadline(time.Time{}) // net/http's deadlines no longer apply

	c.out = append(c.out, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	c.out = append(c.out, accept...)
	c.out = append(c.out, "\r\nSec-WebSocket-Protocol: "+Subprotocol+"\r\n\r\n"...)
	var end closeWith
	if early {
		end = closeFor(wsframe.CloseProtocolError, "frames sent before the handshake's response")
	} else {
		end = c.loop()
	}
	c.finish(end)
}

// loop reads and runs messages until the connection is to close.
func (c *wsConn) loop() (end closeWith) {
	defer func() {
		if p := recover(); p != nil {
			end = closeFor(wsframe.CloseInternalError, "internal error")
		}
	}()
	for {
		if c.werr != nil {
			return closeWith{}
		}
		if c.stop.Load() {
			return closeFor(wsframe.CloseGoingAway, "the node is shutting down")
		}
		if c.br == nil || !c.rd.Ready() {
			// The next message is not all here: what is buffered goes now.
			if c.flush(); c.werr != nil {
				return closeWith{}
			}
		}
		if c.br == nil || !c.rd.InMessage() {
			if c.br == nil || c.br.Buffered() == 0 {
				if end, ok := c.waitInput(); !ok {
					return end
				}
			}
			// Its first byte is here: the message has MessageTimeout to
			// arrive whole.
			_ = c.nc.SetReadDeadline(time.Now().Add(c.so.MessageTimeout))
			if c.stop.Load() {
				return closeFor(wsframe.CloseGoingAway, "the node is shutting down")
			}
		}
		m, err := c.rd.Next()
		if err != nil {
			return c.readFailed(err)
		}
		now := time.Now()
		c.lastFrame, c.pinged = now, false
		switch m.Op {
		case wsframe.OpPing, wsframe.OpPong:
			if !c.allowControl(now) {
				return closeFor(wsframe.ClosePolicyViolation, "control frames too fast")
			}
			if m.Op == wsframe.OpPing {
				// At most one pong pending: a later ping replaces it.
				c.pongLen = copy(c.pong[:], m.Payload)
				c.pongWant = true
			}
		case wsframe.OpClose:
			return closeWith{code: wsframe.CloseNormal, frame: true}
		case wsframe.OpText:
			c.lastData = now
			end, ok := c.handle(m.Payload)
			c.rd.Shrink() // a large message's buffer is not kept while idle
			if !ok {
				return end
			}
		}
	}
}

// waitInput waits, between messages and with nothing buffered, for the
// first byte of the next frame: the connection is idle (eviction may
// take it), the liveness pings run, and the idle timeout ends it.
func (c *wsConn) waitInput() (closeWith, bool) {
	for {
		if c.notified.Load() {
			if c.flush(); c.werr != nil {
				return closeWith{}, false
			}
		}
		now := time.Now()
		idleAt := c.lastData.Add(c.so.IdleTimeout)
		if len(c.subs) > 0 {
			// Subscribed: kept while it answers the liveness pings.
			idleAt = now.Add(c.so.IdleTimeout)
		}
		liveAt := c.lastFrame.Add(c.so.PingInterval)
		if c.pinged {
			liveAt = liveAt.Add(c.so.PingInterval)
		}
		if !now.Before(idleAt) {
			return closeFor(wsframe.CloseGoingAway, "idle"), false
		}
		if !now.Before(liveAt) {
			if c.pinged {
				return closeFor(wsframe.CloseGoingAway, "no answer to ping"), false
			}
			c.pinged = true
			c.out, _ = wsframe.AppendPing(c.out, nil)
			if c.flush(); c.werr != nil {
				return closeWith{}, false
			}
			continue
		}
		_ = c.nc.SetReadDeadline(earliest(idleAt, liveAt))
		// The deadline before the state, so an eviction's wake-up
		// (after it sees stIdle) comes after it.
		c.wakeMu.Lock()
		c.state.Store(stIdle)
		c.wakeMu.Unlock()
		if c.bc != nil {
			// Idle since its last message: control frames do not move
			// its place in the eviction order.
			c.bc.l.markIdle(c.bc, c.lastData, c.evict)
		}
		if c.stop.Load() {
			c.setActive()
			return closeFor(wsframe.CloseGoingAway, "the node is shutting down"), false
		}
		if c.notified.Load() {
			// A block raised a subscription after the check above: write
			// it first (signal saw the connection busy, or will wake it).
			if !c.setActive() {
				c.evicted = true
				return closeWith{code: wsframe.CloseTryAgainLater, reason: "evicted: the node needs the connection", frame: true}, false
			}
			continue
		}
		c.releaseBuffer()
		n, err := c.nc.Read(c.src.first[:])
		if n == 1 {
			c.takeBuffer()
			err = nil
		}
		if !c.setActive() {
			// Its slot is already given to the newcomer; the close frame
			// gets a short deadline.
			c.evicted = true
			return closeWith{code: wsframe.CloseTryAgainLater, reason: "evicted: the node needs the connection", frame: true}, false
		}
		if c.stop.Load() {
			return closeFor(wsframe.CloseGoingAway, "the node is shutting down"), false
		}
		if n == 1 {
			return closeWith{}, true
		}
		if err == nil {
			continue // a read of 0 bytes
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return closeWith{}, false // EOF or a broken connection
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// evict is what the listener calls to close this idle connection; false
// if it is no longer idle.
func (c *wsConn) evict() bool {
	if !c.state.CompareAndSwap(stIdle, stEvicted) {
		return false
	}
	c.wake()
	return true
}

// setActive leaves the idle state; false if the connection was evicted.
func (c *wsConn) setActive() bool {
	if c.bc != nil {
		c.bc.l.markActive(c.bc)
	}
	// Under wakeMu: a notification's wake-up (signal) lands before this,
	// while the connection still waits, and the message deadline the loop
	// sets next replaces it; never after, where it would cut a message
	// short.
	c.wakeMu.Lock()
	defer c.wakeMu.Unlock()
	return c.state.CompareAndSwap(stIdle, stActive) || c.state.Load() == stActive
}

// readFailed maps an error of Next to the connection's end.
func (c *wsConn) readFailed(err error) closeWith {
	var ce wsframe.CloseError
	switch {
	case c.stop.Load():
		return closeFor(wsframe.CloseGoingAway, "the node is shutting down")
	case errors.As(err, &ce):
		return closeFor(ce.Code, ce.Reason)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return closeFor(wsframe.ClosePolicyViolation, fmt.Sprintf("a message must arrive within %s of its first byte", c.so.MessageTimeout))
	}
	return closeWith{} // EOF or a broken connection: nothing can be said
}

// allowControl charges a control frame to the connection's bucket.
func (c *wsConn) allowControl(now time.Time) bool {
	c.ctl = min(ctlBurst, c.ctl+now.Sub(c.ctlAt).Seconds()*ctlRate)
	c.ctlAt = now
	if c.ctl < 1 {
		return false
	}
	c.ctl--
	return true
}

// stopped is the end of a connection whose wait was cut short: by
// shutdown (1001), or by a failed write (no close frame).
func (c *wsConn) stopped() closeWith {
	if c.stop.Load() {
		return closeFor(wsframe.CloseGoingAway, "the node is shutting down")
	}
	return closeWith{}
}

// takeCalls charges n calls to the call bucket, first waiting (reading
// nothing, the output written) until it holds min(n, CallBurst) tokens;
// a batch larger than the burst leaves the bucket in debt.
func (c *wsConn) takeCalls(n int) bool {
	now := time.Now()
	c.tokens = min(float64(c.so.CallBurst), c.tokens+now.Sub(c.tokensAt).Seconds()*c.so.CallRate)
	c.tokensAt = now
	need := float64(min(n, c.so.CallBurst))
	if c.tokens < need {
		if c.flush(); c.werr != nil {
			return false
		}
		d := time.Duration((need - c.tokens) / c.so.CallRate * float64(time.Second))
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-c.stopCh:
			t.Stop()
			return false
		}
		now = time.Now()
		c.tokens = min(float64(c.so.CallBurst), c.tokens+now.Sub(c.tokensAt).Seconds()*c.so.CallRate)
		c.tokensAt = now
	}
	c.tokens -= float64(n)
	return true
}

// Start and Take are the message budget (wsframe.Budget): twice a
// message's bytes, at least msgFloor, from the node's body budget.
func (c *wsConn) Start() error { return c.hold(msgFloor) }

func (c *wsConn) Take(n int) error {
	c.received += n
	return c.hold(max(msgFloor, 2*int64(c.received)))
}

var errNoBudget error = wsframe.CloseError{Code: wsframe.CloseTryAgainLater, Reason: "busy: request bodies in flight exceed the node's budget; retry later"}

// hold raises what the message in progress holds to want bytes.
func (c *wsConn) hold(want int64) error {
	n := want - c.held
	if n <= 0 {
		return nil
	}
	if !c.h.body.tryAcquire(n) {
		// Before waiting, the responses to every earlier message go out.
		if c.flush(); c.werr != nil {
			return c.werr
		}
		if !c.h.body.acquire(c.ctx, n, c.h.opts.BusyWait) {
			return errNoBudget
		}
	}
	c.held += n
	return nil
}

// release gives back the message's budget once its response is buffered.
func (c *wsConn) release() {
	c.h.body.release(c.held)
	c.held, c.received = 0, 0
}

// flush writes the output buffer (and a pending pong) under the write
// deadline. A failed write leaves c.werr set: the connection is dead.
func (c *wsConn) flush() {
	if c.werr != nil {
		return
	}
	if c.pongWant {
		c.out, _ = wsframe.AppendPong(c.out, c.pong[:c.pongLen])
		c.pongWant = false
	}
	c.appendNotifications()
	if len(c.out) == 0 {
		return
	}
	c.write(c.out)
	if cap(c.out) > 2*outBuffer {
		c.out = nil // the 101 or a ping does not keep a large buffer
	} else {
		c.out = c.out[:0]
	}
}

// write writes bufs, in order, within WriteGrace plus their size at
// MinWriteRate (an evicted connection's close frame: evictWrite).
func (c *wsConn) write(bufs ...[]byte) {
	if c.werr != nil {
		return
	}
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	d := c.h.writeAllowance(int64(n))
	if c.evicted {
		d = evictWrite
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(d))
	for _, b := range bufs {
		if _, err := c.nc.Write(b); err != nil {
			c.werr = err
			return
		}
	}
}

// handle parses and runs one message and buffers its response.
func (c *wsConn) handle(payload []byte) (closeWith, bool) {
	defer c.release()
	b := payload[skipWS(payload, 0):]
	if len(b) > 0 && b[0] == '[' {
		calls, e := parseBatch(b)
		if e != nil {
			return messageRefused(e), false
		}
		// Every element is charged, the notifications that are not run
		// too: parsing them was work.
		if !c.takeCalls(len(calls)) {
			return c.stopped(), false
		}
		c.runBatch(calls)
	} else {
		k := &call{}
		if e := k.parse(b); e != nil {
			return messageRefused(e), false
		}
		if !c.takeCalls(1) {
			return c.stopped(), false
		}
		if !runs(k) {
			return closeWith{}, true
		}
		c.run(k)
		if k.hasID {
			c.respond(0, k.out, k.held, true, true)
		} else {
			c.h.resp.release(k.held)
		}
	}
	if c.werr != nil {
		return closeWith{}, false
	}
	return closeWith{}, true
}

// messageRefused is the close for a message that is not a request object
// or a non-empty batch: over this transport there is no response with id
// null for a whole message (docs/stream.md section 4).
func messageRefused(e *Error) closeWith {
	if e.Code == CodeParseError {
		return closeFor(wsframe.CloseInvalidPayload, "not JSON: "+e.Message)
	}
	return closeFor(wsframe.ClosePolicyViolation, "not a JSON-RPC request: "+e.Message)
}

// runs reports whether a call is run (or, invalid, answered): a valid
// notification (no id) only if it writes, since the result of a read
// would be thrown away. An invalid element of a batch is answered in
// place, id or not, as over HTTP.
func runs(k *call) bool {
	if k.hasID || k.err != nil {
		return true
	}
	_, write := txMethods[k.method]
	return write
}

// run runs one call, its waits preceded by writing the output buffer.
func (c *wsConn) run(k *call) {
	if k.err == nil && isPushMethod(k.method) {
		c.runPush(k)
		return
	}
	k.wait = c.flush
	c.h.run(c.req, &c.rw, k)
}

// respond buffers (or, over outBuffer, writes) one frame of a response:
// a whole message, or a fragment of a batch's array (sep, if not 0, is
// the '[' or ',' before its element). held is the response budget it
// holds, given back once it is written.
func (c *wsConn) respond(sep byte, b []byte, held int64, first, fin bool) {
	n := len(b)
	if sep != 0 {
		n++
	}
	if n+14 > outBuffer {
		c.flush()
		hdr := wsframe.AppendFragmentHeader(make([]byte, 0, 15), first, fin, n)
		if sep != 0 {
			hdr = append(hdr, sep)
		}
		c.write(hdr, b) // one deadline for the whole response
		c.h.resp.release(held)
		return
	}
	c.out = wsframe.AppendFragmentHeader(c.out, first, fin, n)
	if sep != 0 {
		c.out = append(c.out, sep)
	}
	c.out = append(c.out, b...)
	c.h.resp.release(held)
	if len(c.out) >= outBuffer {
		c.flush()
	}
}

// runBatch runs a batch's calls in order and sends its response array as
// one text message in fragments, one per element ("[" or "," before each,
// "]" alone in the last), so a large batch streams as over HTTP and each
// element's budget is given back once it is written.
func (c *wsConn) runBatch(calls []*call) {
	defer func() { c.inBatch = false }() // also when a write fails mid-batch
	started := false
	for _, k := range calls {
		if c.werr != nil {
			return
		}
		if !runs(k) {
			continue
		}
		c.run(k)
		if !k.hasID && k.err == nil {
			c.h.resp.release(k.held)
			continue
		}
		sep := byte(',')
		if !started {
			sep = '['
		}
		// From its first fragment to its last the array is one message:
		// no notification goes between its fragments.
		c.inBatch = true
		c.respond(sep, k.out, k.held, !started, false)
		started = true
		k.out = nil
	}
	c.inBatch = false
	if started {
		c.respond(0, closeBracket, 0, false, true)
	}
}

var closeBracket = []byte{']'}

// finish closes the connection: the output buffer, the close frame,
// half-close and a bounded drain (docs/stream.md section 4 "Closing").
func (c *wsConn) finish(end closeWith) {
	// A message that will not run holds nothing while the close drains.
	c.release()
	c.dropSubscriptions()
	defer func() {
		_ = c.nc.Close()
		c.releaseBuffer()
	}()
	if c.aborted.Load() {
		return
	}
	if end.frame {
		// A pong owed goes before the close frame (nothing may follow it).
		if c.pongWant {
			c.out, _ = wsframe.AppendPong(c.out, c.pong[:c.pongLen])
			c.pongWant = false
		}
		c.out, _ = wsframe.AppendClose(c.out, end.code, end.reason)
	}
	c.flush()
	if c.werr != nil || !end.frame {
		return
	}
	if !end.drain {
		return
	}
	if cw, ok := c.bareConn().(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(drainTime))
	var in io.Reader = c.nc
	if c.br != nil {
		in = c.br
	}
	_, _ = io.Copy(io.Discard, in)
}

// bareConn is the connection under the listener's wrapper.
func (c *wsConn) bareConn() net.Conn {
	if c.bc != nil {
		return c.bc.Conn
	}
	return c.nc
}

var _ wsframe.Budget = (*wsConn)(nil)
