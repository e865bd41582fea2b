package codec

import (
	"bytes"
	"errors"
	"testing"
)

func TestRoundTripAndBounds(t *testing.T) {
	w := NewWriter(0)
	w.U8(7)
	w.U32(1 << 20)
	w.U64(1<<63 + 5)
	w.I64(-3)
	w.Bool(true)
	w.Fixed([]byte{1, 2, 3})
	w.Bytes([]byte("hello"))
	w.String("s")
	r := NewReader(w.B)
	if r.U8() != 7 || r.U32() != 1<<20 || r.U64() != 1<<63+5 || r.I64() != -3 || !r.Bool() {
		t.Fatal("integers")
	}
	if !bytes.Equal(r.Fixed(3), []byte{1, 2, 3}) || string(r.Bytes(5, "b")) != "hello" || r.String(1, "s") != "s" {
		t.Fatal("bytes")
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}

	// Oversize field.
	w2 := NewWriter(0)
	w2.Bytes([]byte("hello"))
	r = NewReader(w2.B)
	if r.Bytes(4, "b"); !errors.Is(r.Err(), ErrOversize) {
		t.Fatalf("oversize: %v", r.Err())
	}
	// Truncated.
	r = NewReader(w2.B[:6])
	if r.Bytes(5, "b"); !errors.Is(r.Done(), ErrTruncated) {
		t.Fatalf("truncated: %v", r.Done())
	}
	// Trailing.
	r = NewReader(append(append([]byte(nil), w2.B...), 0))
	r.Bytes(5, "b")
	if !errors.Is(r.Done(), ErrTrailingBytes) {
		t.Fatal("trailing")
	}
	// Bad boolean.
	r = NewReader([]byte{2})
	r.Bool()
	if !errors.Is(r.Err(), ErrInvalidBool) {
		t.Fatal("bool")
	}
	// Huge counts never allocate.
	r = NewReader([]byte{0xff, 0xff, 0xff, 0xff})
	if r.Count(10, "c"); !errors.Is(r.Err(), ErrOversize) {
		t.Fatal("count")
	}
}
