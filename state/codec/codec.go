// Package codec is the canonical, bounded binary encoding shared by the
// SessionVM wire formats (transactions, blocks) and the state records.
//
// Integers are fixed-width big-endian. Variable-length fields are a
// big-endian uint32 length followed by the bytes, and every read states the
// largest length it accepts, so a decoder never allocates more than its
// caller allowed. A Reader's error is sticky: after the first failure every
// read returns zero values, and Err (or Done) reports the failure. Done also
// refuses trailing bytes, so decode(encode(x)) is the only accepted form of x.
package codec

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/luxfi/session/crypto"
)

// Decoding errors.
var (
	ErrTruncated     = errors.New("codec: truncated input")
	ErrTrailingBytes = errors.New("codec: trailing bytes")
	ErrOversize      = errors.New("codec: field too large")
	ErrInvalidBool   = errors.New("codec: invalid boolean")
)

// Writer appends encodings to a byte slice.
type Writer struct{ B []byte }

// NewWriter returns a Writer with capacity hint n.
func NewWriter(n int) *Writer { return &Writer{B: make([]byte, 0, n)} }

func (w *Writer) U8(v uint8)   { w.B = append(w.B, v) }
func (w *Writer) U16(v uint16) { w.B = binary.BigEndian.AppendUint16(w.B, v) }
func (w *Writer) U32(v uint32) { w.B = binary.BigEndian.AppendUint32(w.B, v) }
func (w *Writer) U64(v uint64) { w.B = binary.BigEndian.AppendUint64(w.B, v) }
func (w *Writer) I64(v int64)  { w.U64(uint64(v)) }

// Bool writes 1 or 0.
func (w *Writer) Bool(v bool) {
	if v {
		w.U8(1)
	} else {
		w.U8(0)
	}
}

// Fixed appends b without a length (the reader knows the size).
func (w *Writer) Fixed(b []byte) { w.B = append(w.B, b...) }

// Bytes appends a uint32 length and b.
func (w *Writer) Bytes(b []byte) {
	w.U32(uint32(len(b)))
	w.B = append(w.B, b...)
}

// String appends a uint32 length and s.
func (w *Writer) String(s string) {
	w.U32(uint32(len(s)))
	w.B = append(w.B, s...)
}

// Reader decodes from a byte slice; see the package comment.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader returns a Reader over b. Slices returned by Fixed and Bytes
// alias b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err returns the first error.
func (r *Reader) Err() error { return r.err }

// Offset returns the number of bytes consumed.
func (r *Reader) Offset() int { return r.off }

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Fail records err (if no error was recorded yet).
func (r *Reader) Fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Done returns the first error, or ErrTrailingBytes if input is left.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.b) {
		return fmt.Errorf("%w: %d unread", ErrTrailingBytes, len(r.b)-r.off)
	}
	return nil
}

func (r *Reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = ErrTruncated
		return nil
	}
	s := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return s
}

func (r *Reader) U8() uint8 {
	if s := r.take(1); s != nil {
		return s[0]
	}
	return 0
}

func (r *Reader) U16() uint16 {
	if s := r.take(2); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (r *Reader) U32() uint32 {
	if s := r.take(4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (r *Reader) U64() uint64 {
	if s := r.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

func (r *Reader) I64() int64 { return int64(r.U64()) }

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	v := r.U8()
	if v > 1 {
		r.Fail(ErrInvalidBool)
		return false
	}
	return v == 1
}

// Fixed reads exactly n bytes.
func (r *Reader) Fixed(n int) []byte { return r.take(n) }

// FixedInto fills dst.
func (r *Reader) FixedInto(dst []byte) {
	if s := r.take(len(dst)); s != nil {
		copy(dst, s)
	}
}

// Bytes reads a length-prefixed field of at most max bytes. The field name
// is used in the oversize error.
func (r *Reader) Bytes(max int, field string) []byte {
	n := r.U32()
	if r.err != nil {
		return nil
	}
	if uint64(n) > uint64(max) {
		r.Fail(fmt.Errorf("%w: %s is %d bytes, at most %d", ErrOversize, field, n, max))
		return nil
	}
	return r.take(int(n))
}

// String reads a length-prefixed string of at most max bytes.
func (r *Reader) String(max int, field string) string {
	return string(r.Bytes(max, field))
}

// Count reads a uint32 element count of at most max.
func (r *Reader) Count(max int, field string) int {
	n := r.U32()
	if r.err != nil {
		return 0
	}
	if uint64(n) > uint64(max) {
		r.Fail(fmt.Errorf("%w: %s has %d elements, at most %d", ErrOversize, field, n, max))
		return 0
	}
	return int(n)
}

// Slice returns input bytes [start, end) (aliasing the input).
func (r *Reader) Slice(start, end int) []byte { return r.b[start:end:end] }

// SessionID appends a Session ID as its prefix byte and 32-byte digest
// (33 bytes), the form every SessionVM encoding uses.
func (w *Writer) SessionID(id crypto.SessionID) {
	w.U8(id.Prefix)
	w.Fixed(id.Digest[:])
}

// SessionID reads a Session ID written by Writer.SessionID.
func (r *Reader) SessionID() crypto.SessionID {
	var id crypto.SessionID
	id.Prefix = r.U8()
	r.FixedInto(id.Digest[:])
	return id
}
