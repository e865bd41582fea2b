// Package codec reads the big-endian binary records of package chat and its
// internal packages. A Reader's error is sticky: after the first short read
// or failed check, every read returns zero values, so a decoder checks once
// at the end.
package codec

import (
	"encoding/binary"
	"errors"
)

// ErrCorrupt is the error of a Reader that failed.
var ErrCorrupt = errors.New("corrupt record")

// Reader reads fields from a byte slice.
type Reader struct {
	b   []byte
	off int
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error, or nil.
func (r *Reader) Err() error { return r.err }

// Fail marks the record corrupt.
func (r *Reader) Fail() {
	if r.err == nil {
		r.err = ErrCorrupt
	}
}

// Check fails the reader if ok is false.
func (r *Reader) Check(ok bool) {
	if !ok {
		r.Fail()
	}
}

// Done fails the reader if bytes are left, and returns its error.
func (r *Reader) Done() error {
	if r.err == nil && r.off != len(r.b) {
		r.Fail()
	}
	return r.err
}

// Bytes returns the next n bytes (aliasing the input), or n zero bytes after
// an error.
func (r *Reader) Bytes(n int) []byte {
	if r.err != nil || n < 0 || len(r.b)-r.off < n {
		r.Fail()
		return make([]byte, max(n, 0))
	}
	out := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return out
}

// Copy copies the next len(dst) bytes into dst.
func (r *Reader) Copy(dst []byte) { copy(dst, r.Bytes(len(dst))) }

// U8 reads a byte.
func (r *Reader) U8() uint8 { return r.Bytes(1)[0] }

// U16 reads a big-endian uint16.
func (r *Reader) U16() uint16 { return binary.BigEndian.Uint16(r.Bytes(2)) }

// U32 reads a big-endian uint32.
func (r *Reader) U32() uint32 { return binary.BigEndian.Uint32(r.Bytes(4)) }

// U64 reads a big-endian uint64.
func (r *Reader) U64() uint64 { return binary.BigEndian.Uint64(r.Bytes(8)) }

// I64 reads a big-endian int64.
func (r *Reader) I64() int64 { return int64(r.U64()) }

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool() bool {
	switch r.U8() {
	case 0:
		return false
	case 1:
		return true
	}
	r.Fail()
	return false
}

// VarBytes reads a u32 length (at most limit) and that many bytes, copied.
func (r *Reader) VarBytes(limit int) []byte {
	n := r.U32()
	if r.err != nil || int64(n) > int64(limit) {
		r.Fail()
		return nil
	}
	return append([]byte{}, r.Bytes(int(n))...)
}

// AppendBool appends 1 or 0.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 1)
	}
	return append(dst, 0)
}

// AppendVarBytes appends u32(len(b)) || b.
func AppendVarBytes(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
