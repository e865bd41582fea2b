package wsframe

import (
	"bufio"
	"encoding/binary"
	"io"
	"unicode/utf8"
)

// DefaultClientMaxMessage bounds a message of the node when the caller
// gives no bound: 128 MiB, the bound of the HTTP client on a response
// body (docs/stream.md section 4, "Correlation").
const DefaultClientMaxMessage = 128 << 20

// The refusals of a ClientReader that have no server-side mirror. The
// other refusals are the server's sentinels: ErrReservedBits,
// ErrBadOpcode, ErrLengthTopBit, ErrNonMinimalLength,
// ErrControlFragmented, ErrControlTooLong, ErrUnexpectedContinuation,
// ErrMessageInProgress, ErrCloseTooShort, ErrBadCloseCode, ErrBinary,
// ErrInvalidUTF8, ErrTruncatedUTF8 and ErrCloseReasonUTF8.
var (
	// ErrMasked: a frame from the node with the mask bit set (RFC 6455
	// section 5.1: a client closes on it).
	ErrMasked error = CloseError{CloseProtocolError, "masked frame from the server"}
	// ErrClientTooBig: a message over the ClientReader's bound.
	ErrClientTooBig error = CloseError{CloseMessageTooBig, "message over the client's bound"}
)

// ClientReader reads the node's frames from a byte stream and assembles
// text messages: the mirror of [Reader] for a client. It refuses a masked
// frame, any RSV bit, an unknown opcode, a 64-bit length with the top bit
// set, a length not in minimal form, a fragmented or over-125-byte control
// frame, a continuation with no message in progress, a new data frame
// while one is in progress, a binary message (1003), invalid UTF-8 (1007)
// and a message over its bound (1009), each as a [CloseError], from the
// frame header alone whenever the header decides. It accepts fragmented
// text messages (with control frames between the fragments), of any
// number of frames: only their bytes are bounded. It never allocates from
// a declared length: a message's buffer grows with the bytes received, to
// at most twice them.
//
// It reads only when Next is called. It is not safe for concurrent use.
// After Next returns an error every later call returns it again; after a
// close frame, Next returns io.EOF.
type ClientReader struct {
	br  *bufio.Reader
	max int
	err error

	inMessage bool
	msg       []byte
	utf       utf8State

	ctl [MaxControlPayload]byte
}

// NewClientReader returns a ClientReader of the node's frames from r,
// bounding a message to maxMessage bytes (0 or less:
// DefaultClientMaxMessage). If r is a *bufio.Reader (such as the one that
// read the handshake's response, which may already hold frames) it is
// used as is; otherwise the ClientReader buffers r with 4 KiB.
func NewClientReader(r io.Reader, maxMessage int) *ClientReader {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 16 {
		br = bufio.NewReaderSize(r, 4096)
	}
	if maxMessage <= 0 {
		maxMessage = DefaultClientMaxMessage
	}
	return &ClientReader{br: br, max: maxMessage}
}

// Buffered returns the number of bytes read from the stream and not yet
// consumed.
func (r *ClientReader) Buffered() int { return r.br.Buffered() }

// Detach gives the payload of the text message Next last returned to the
// caller: the ClientReader will not write to its memory again (the next
// message gets a new buffer). Without Detach, a payload is valid only
// until the next call to Next. A detached payload's capacity is at most
// twice its length (or 512 bytes).
func (r *ClientReader) Detach() {
	if !r.inMessage {
		r.msg = nil
	}
}

// Next reads frames until it has a whole text message or a control frame,
// and returns it, as [Reader.Next] does: control frames are returned as
// they are read, also between the fragments of a message. A text
// message's payload is valid UTF-8 of at most the bound; a close frame's
// Code is CloseNoStatus if it had none. At the end of the stream Next
// returns io.EOF between messages and io.ErrUnexpectedEOF inside one;
// other read errors are returned as they are. A refusal is a CloseError.
func (r *ClientReader) Next() (Message, error) {
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

func (r *ClientReader) next() (Message, error) {
	if !r.inMessage {
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
			r.inMessage = true
			r.utf = utf8State{}
		}
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

// readHeader reads and validates one frame header of the node, refusing
// before any payload byte is read.
func (r *ClientReader) readHeader() (header, error) {
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
	if b1&0x80 != 0 {
		return header{}, ErrMasked
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
	// len(r.msg) ≤ r.max always, so the subtraction cannot wrap; nothing
	// is added to the declared length.
	if h.op < OpClose && h.length > uint64(r.max-len(r.msg)) {
		return header{}, ErrClientTooBig
	}
	r.br.Discard(n)
	return h, nil
}

// readData appends a data frame's payload to the message as it arrives,
// validating UTF-8 chunk by chunk.
func (r *ClientReader) readData(h header) error {
	remaining := int(h.length) // ≤ r.max
	for remaining > 0 {
		avail := r.br.Buffered()
		if avail == 0 {
			if _, err := r.br.Peek(1); err != nil {
				return unexpected(err)
			}
			avail = r.br.Buffered()
		}
		n := min(avail, remaining)
		src, _ := r.br.Peek(n) // buffered: cannot fail
		dst := r.grow(n)
		copy(dst, src)
		r.br.Discard(n)
		if r.utf.feed(dst) >= 0 {
			return ErrInvalidUTF8
		}
		remaining -= n
	}
	return nil
}

// grow extends the message by n bytes and returns them, keeping the
// capacity at most twice the length (or 512 bytes).
func (r *ClientReader) grow(n int) []byte {
	l := len(r.msg)
	if l+n > cap(r.msg) {
		c := max(2*cap(r.msg), l+n, 512)
		c = min(c, 2*(l+n), r.max)
		c = max(c, l+n)
		m := make([]byte, l, c)
		copy(m, r.msg)
		r.msg = m
	}
	r.msg = r.msg[:l+n]
	return r.msg[l:]
}

// readControl reads a control frame's payload (at most 125 bytes, checked
// by readHeader) into the ClientReader's own array and validates a close
// frame.
func (r *ClientReader) readControl(h header) (Message, error) {
	p := r.ctl[:h.length]
	if _, err := io.ReadFull(r.br, p); err != nil {
		return Message{}, unexpected(err)
	}
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
