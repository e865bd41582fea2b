package wsframe

import (
	"bufio"
	"encoding/binary"
	"io"
	"unicode/utf8"
)

// Limits of docs/stream.md sections 4 and 5.
const (
	// MaxMessageSize bounds the payload of one client message, all its
	// frames together (service.MaxBodySize).
	MaxMessageSize = 1 << 20
	// MaxFramesPerMessage bounds the frames of one client message.
	MaxFramesPerMessage = 64
	// MaxControlPayload bounds a control frame's payload (RFC 6455).
	MaxControlPayload = 125
	// RetainedBuffer is the most message buffer a Reader keeps between
	// messages; a larger one is dropped when the next message starts.
	RetainedBuffer = 16 << 10
)

// Opcode is a frame's opcode (RFC 6455 section 5.2).
type Opcode uint8

// The opcodes; every other value is refused.
const (
	OpContinuation Opcode = 0
	OpText         Opcode = 1
	OpBinary       Opcode = 2
	OpClose        Opcode = 8
	OpPing         Opcode = 9
	OpPong         Opcode = 10
)

// Message is what [Reader.Next] returns: a whole text message, or a
// control frame read between messages or between the fragments of one.
type Message struct {
	// Op is OpText, OpPing, OpPong or OpClose.
	Op Opcode
	// Payload is the text message (valid UTF-8, at most MaxMessageSize
	// bytes), a ping's or pong's application data (at most 125 bytes), or
	// a close frame's reason (valid UTF-8, at most 123 bytes). It is only
	// valid until the next call to Next.
	Payload []byte
	// Code is a close frame's status code, CloseNoStatus if it had none.
	Code uint16
}

// A Budget is charged for a text message's bytes as they arrive
// (docs/stream.md section 5, "message in progress": the connection loop
// takes 16 KiB in Start and twice n in Take, and gives it all back when
// the message's response is buffered). Its methods are called from Next,
// on the caller's goroutine, so they may wait (the loop writes its output
// buffer first) or set the socket's read deadline (Start is where a
// message's 30 s begin). An error they return aborts Next with that
// error (for example a CloseError with CloseTryAgainLater), and the
// Reader is then failed.
type Budget interface {
	// Start is called when the first frame header of a message has been
	// read and validated, before any of its payload.
	Start() error
	// Take is called before n > 0 payload bytes of the message, already
	// received and waiting in the read buffer, are copied into the
	// message. The message buffer's capacity stays at most
	// max(2 × the bytes taken, RetainedBuffer).
	Take(n int) error
}

// Reader reads client frames from a byte stream and assembles text
// messages, refusing everything docs/stream.md section 4 refuses. It
// reads only when Next is called, and only as far as the next message or
// control frame. A Reader is not safe for concurrent use.
//
// After Next returns an error, every later call returns it again: a
// failed connection is not read further. After a close frame, Next
// returns io.EOF.
type Reader struct {
	br     *bufio.Reader
	budget Budget
	err    error

	// The message in progress.
	inMessage bool
	frames    int
	msg       []byte
	utf       utf8State

	ctl [MaxControlPayload]byte
}

// NewReader returns a Reader of client frames from r, charging messages
// to budget (nil: no charge). If r is a *bufio.Reader (such as the one an
// HTTP hijack returns, which may already hold frames) it is used as is;
// otherwise the Reader buffers r with 4 KiB.
func NewReader(r io.Reader, budget Budget) *Reader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 16 {
		br = bufio.NewReaderSize(r, 4096)
	}
	return &Reader{br: br, budget: budget}
}

// SetBuffer makes the Reader read from br from now on, keeping its
// state. It may be called only between messages, once the caller has
// consumed everything the previous buffer held (Buffered was 0): a
// connection loop gives its read buffer back to a pool while it waits
// between messages (and then calls no method of the Reader), and takes
// one when input arrives.
func (r *Reader) SetBuffer(br *bufio.Reader) {
	if r.inMessage {
		panic("wsframe: SetBuffer with a message in progress")
	}
	r.br = br
}

// Shrink drops the message buffer if it is larger than RetainedBuffer
// and no message is in progress (the last message's Payload is then
// invalid): a connection loop calls it once it is done with a message,
// so a connection waiting between messages keeps at most RetainedBuffer
// of it, whatever it received before.
func (r *Reader) Shrink() {
	if !r.inMessage && cap(r.msg) > RetainedBuffer {
		r.msg = nil
	}
}

// Buffered returns the number of bytes read from the stream and not yet
// consumed: when it is 0, no frame is pending in the Reader's buffer.
func (r *Reader) Buffered() int { return r.br.Buffered() }

// InMessage reports whether a text message is in progress: its first
// frame has been read and its last not yet.
func (r *Reader) InMessage() bool { return r.inMessage }

// Ready reports whether the read buffer already holds the whole of what
// the next call to Next returns (a control frame, or every frame of the
// next text message), or a header Next refuses: when it is true, Next
// does not read from the stream (it still charges the budget). The
// connection loop writes its output buffer when Ready is false
// (docs/stream.md section 4, "Writing"); a message larger than the read
// buffer is never Ready. Ready does not consume anything.
func (r *Reader) Ready() bool {
	if r.err != nil {
		return true
	}
	b, _ := r.br.Peek(r.br.Buffered())
	for {
		if len(b) < 2 {
			return false
		}
		fin, op, len7 := b[0]&0x80 != 0, Opcode(b[0]&0x0F), b[1]&0x7F
		if b[0]&0x70 != 0 || b[1]&0x80 == 0 || op >= OpClose && (!fin || len7 > MaxControlPayload) {
			return true // refused
		}
		n, length := 2, uint64(len7)
		switch len7 {
		case 126:
			if len(b) < 4 {
				return false
			}
			n, length = 4, uint64(binary.BigEndian.Uint16(b[2:]))
		case 127:
			if len(b) < 10 {
				return false
			}
			n, length = 10, binary.BigEndian.Uint64(b[2:])
		}
		if length > MaxMessageSize { // refused, or more than a buffer holds
			return true
		}
		n += 4
		if len(b) < n || uint64(len(b)-n) < length {
			return false
		}
		if fin || op >= OpClose {
			return true
		}
		b = b[n+int(length):]
	}
}

// header is a validated frame header.
type header struct {
	fin    bool
	op     Opcode
	length uint64
	key    uint32 // the masking key, little-endian
}

// Next reads frames until it has a whole text message or a control frame,
// and returns it. Control frames are returned as they are read, also
// between the fragments of a message, which stays in progress across the
// calls. At the end of the stream Next returns io.EOF between messages
// and io.ErrUnexpectedEOF inside one; other read errors are returned as
// they are. A refusal is a CloseError.
func (r *Reader) Next() (Message, error) {
	if r.err != nil {
		return Message{}, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
		r.msg = nil
		return Message{}, err
	}
	if m.Op == OpClose {
		r.err = io.EOF
	}
	return m, nil
}

func (r *Reader) next() (Message, error) {
	if !r.inMessage { // the previous message, if any, is given back
		if cap(r.msg) > RetainedBuffer {
			r.msg = nil
		}
		r.msg = r.msg[:0]
	}
	for {
		h, err := r.readHeader()
		if err != nil {
			return Message{}, err
		}
		if h.op >= OpClose {
			return r.readControl(h)
		}
		if !r.inMessage {
			r.inMessage, r.frames = true, 0
			r.utf = utf8State{}
			if r.budget != nil {
				if err := r.budget.Start(); err != nil {
					return Message{}, err
				}
			}
		}
		r.frames++
		if err := r.readData(h); err != nil {
			return Message{}, err
		}
		if h.fin {
			if !r.utf.complete() {
				return Message{}, ErrTruncatedUTF8
			}
			r.inMessage = false
			return Message{Op: OpText, Payload: r.msg}, nil
		}
	}
}

// readHeader reads and validates one frame header, refusing before any
// payload byte is read. Each check is made as soon as the bytes it needs
// have been read.
func (r *Reader) readHeader() (header, error) {
	p, err := r.br.Peek(2)
	if err != nil {
		if err == io.EOF && (len(p) > 0 || r.inMessage) {
			err = io.ErrUnexpectedEOF
		}
		return header{}, err
	}
	b0, b1 := p[0], p[1]
	h := header{fin: b0&0x80 != 0, op: Opcode(b0 & 0x0F)}
	if b0&0x70 != 0 {
		return header{}, ErrReservedBits
	}
	switch h.op {
	case OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong:
	default:
		return header{}, ErrBadOpcode
	}
	if b1&0x80 == 0 {
		return header{}, ErrUnmasked
	}
	len7 := b1 & 0x7F
	if h.op >= OpClose {
		if !h.fin {
			return header{}, ErrControlFragmented
		}
		if len7 > MaxControlPayload {
			return header{}, ErrControlTooLong
		}
	} else {
		switch {
		case h.op == OpContinuation && !r.inMessage:
			return header{}, ErrUnexpectedContinuation
		case h.op != OpContinuation && r.inMessage:
			return header{}, ErrMessageInProgress
		case h.op == OpBinary:
			return header{}, ErrBinary
		case r.frames >= MaxFramesPerMessage && r.inMessage:
			return header{}, ErrTooManyFrames
		}
	}
	n := 2
	switch len7 {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if p, err = r.br.Peek(n); err != nil {
		return header{}, unexpected(err)
	}
	switch len7 {
	case 126:
		h.length = uint64(binary.BigEndian.Uint16(p[2:]))
		if h.length < 126 {
			return header{}, ErrNonMinimalLength
		}
	case 127:
		h.length = binary.BigEndian.Uint64(p[2:])
		if h.length>>63 != 0 {
			return header{}, ErrLengthTopBit
		}
		if h.length <= 0xFFFF {
			return header{}, ErrNonMinimalLength
		}
	default:
		h.length = uint64(len7)
	}
	// received ≤ MaxMessageSize always, so the subtraction cannot wrap;
	// nothing is added to the declared length.
	if h.op < OpClose && h.length > uint64(MaxMessageSize-len(r.msg)) {
		return header{}, ErrTooBig
	}
	if p, err = r.br.Peek(n + 4); err != nil {
		return header{}, unexpected(err)
	}
	h.key = binary.LittleEndian.Uint32(p[n:])
	r.br.Discard(n + 4)
	return h, nil
}

// readData appends a data frame's payload to the message as it arrives,
// charging the budget, unmasking and validating UTF-8 chunk by chunk, so
// invalid input is refused at the chunk holding its first invalid byte.
func (r *Reader) readData(h header) error {
	remaining := int(h.length) // ≤ MaxMessageSize
	pos := 0
	for remaining > 0 {
		avail := r.br.Buffered()
		if avail == 0 {
			if _, err := r.br.Peek(1); err != nil {
				return unexpected(err)
			}
			avail = r.br.Buffered()
		}
		n := min(avail, remaining)
		if r.budget != nil {
			if err := r.budget.Take(n); err != nil {
				return err
			}
		}
		src, _ := r.br.Peek(n) // buffered: cannot fail
		dst := r.grow(n)
		maskCopy(dst, src, h.key, pos)
		r.br.Discard(n)
		if r.utf.feed(dst) >= 0 {
			return ErrInvalidUTF8
		}
		pos += n
		remaining -= n
	}
	return nil
}

// grow extends the message by n bytes and returns them, keeping the
// capacity at most twice the length (or RetainedBuffer).
func (r *Reader) grow(n int) []byte {
	l := len(r.msg)
	if l+n > cap(r.msg) {
		c := max(2*cap(r.msg), l+n, 512)
		c = min(c, 2*(l+n), MaxMessageSize)
		c = max(c, l+n)
		m := make([]byte, l, c)
		copy(m, r.msg)
		r.msg = m
	}
	r.msg = r.msg[:l+n]
	return r.msg[l:]
}

// readControl reads a control frame's payload (at most 125 bytes, checked
// by readHeader) into the Reader's own array and validates a close frame.
func (r *Reader) readControl(h header) (Message, error) {
	p := r.ctl[:h.length]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return Message{}, unexpected(err)
	}
	maskBytes(h.key, 0, p)
	if h.op != OpClose {
		return Message{Op: h.op, Payload: p}, nil
	}
	switch {
	case len(p) == 0:
		return Message{Op: OpClose, Payload: p, Code: CloseNoStatus}, nil
	case len(p) == 1:
		return Message{}, ErrCloseTooShort
	}
	code := binary.BigEndian.Uint16(p)
	if !sendable(code) {
		return Message{}, ErrBadCloseCode
	}
	if !utf8.Valid(p[2:]) {
		return Message{}, ErrCloseReasonUTF8
	}
	return Message{Op: OpClose, Payload: p[2:], Code: code}, nil
}

// unexpected turns the end of the stream inside a frame into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
