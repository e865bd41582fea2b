package wsframe

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestMaskRoundTrip: maskBytes equals the RFC's byte-by-byte definition
// at every offset and length, chunked anywhere, and is an involution.
func TestMaskRoundTrip(t *testing.T) {
	key := [4]byte{0xa1, 0x02, 0xf3, 0x44}
	k := binary.LittleEndian.Uint32(key[:])
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 80 {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(rng.Uint32())
		}
		want := make([]byte, n)
		for i := range data {
			want[i] = data[i] ^ key[i%4]
		}
		for split := 0; split <= n; split++ {
			got := append([]byte(nil), data...)
			maskBytes(k, 0, got[:split])
			maskBytes(k, split, got[split:])
			if !bytes.Equal(got, want) {
				t.Fatalf("n=%d split=%d: %x, want %x", n, split, got, want)
			}
			maskBytes(k, 0, got)
			if !bytes.Equal(got, data) {
				t.Fatalf("n=%d: not an involution", n)
			}
		}
	}
}

// validPrefix reports whether b is a prefix of some valid UTF-8 text,
// using only unicode/utf8: the incomplete tail is completed with the
// lowest continuation byte each lead allows (0x80, 0x90 or 0xA0).
func validPrefix(b []byte) bool {
	if utf8.Valid(b) {
		return true
	}
	for tail := 1; tail <= 3 && tail <= len(b); tail++ {
		if !utf8.Valid(b[:len(b)-tail]) {
			continue
		}
		for _, c := range []byte{0x80, 0x90, 0xA0} {
			try := append(append([]byte(nil), b...), c, 0x80, 0x80)
			for end := len(b) + 1; end <= len(try); end++ {
				if utf8.Valid(try[:end]) {
					return true
				}
			}
		}
	}
	return false
}

// firstInvalid is the index of the first byte at which b stops being a
// valid prefix, or -1: it decodes with unicode/utf8 and, at the first
// sequence that does not decode, extends the valid prefix byte by byte.
func firstInvalid(b []byte) int {
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || size > 1 {
			i += size
			continue
		}
		k := 1
		for i+k <= len(b) && validPrefix(b[i:i+k]) {
			k++
		}
		if i+k > len(b) {
			return -1 // an incomplete sequence at the end
		}
		return i + k - 1
	}
	return -1
}

func checkUTF8(t *testing.T, b []byte, splits []int) {
	t.Helper()
	var s utf8State
	got, off := -1, 0
	for _, end := range append(splits, len(b)) {
		end = min(max(end, off), len(b))
		if i := s.feed(b[off:end]); i >= 0 {
			got = off + i
			break
		}
		off = end
	}
	want := firstInvalid(b)
	if got != want {
		t.Fatalf("%x split %v: first invalid %d, want %d", b, splits, got, want)
	}
	if got < 0 && s.complete() != utf8.Valid(b) {
		t.Fatalf("%x: complete=%v, utf8.Valid=%v", b, s.complete(), utf8.Valid(b))
	}
}

// TestUTF8StateExhaustive checks every sequence of up to 4 bytes drawn
// from the bytes where the rules change, against unicode/utf8.
func TestUTF8StateExhaustive(t *testing.T) {
	edges := []byte{0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF}
	var b []byte
	var walk func(depth int)
	walk = func(depth int) {
		for i := 0; i <= len(b); i++ {
			checkUTF8(t, b, []int{i})
		}
		if depth == 4 {
			return
		}
		for _, c := range edges {
			b = append(b, c)
			walk(depth + 1)
			b = b[:len(b)-1]
		}
	}
	walk(0)
}
