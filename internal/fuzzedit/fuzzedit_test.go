package fuzzedit

import (
	"bytes"
	"testing"
)

func TestApply(t *testing.T) {
	base := []byte("abcdef")
	for _, c := range []struct {
		edits  []byte
		resize int16
		want   string
	}{
		{nil, 0, "abcdef"},
		{[]byte{0, 0, 1, 0x20}, 0, "aBcdef"},            // xor
		{[]byte{1, 0, 7, 'X'}, 0, "aXcdef"},             // set, position modulo 6
		{[]byte{2, 0, 6, 'Z'}, 0, "abcdefZ"},            // insert at the end
		{[]byte{2, 0, 0, 'Z'}, 0, "Zabcdef"},            // insert at the start
		{[]byte{3, 0, 2, 0}, 0, "abdef"},                // delete
		{[]byte{3, 0, 0, 0, 3, 0, 0, 0}, 0, "cdef"},     // two deletes
		{[]byte{0, 0, 1, 0x20, 9}, 0, "aBcdef"},         // a short tail is ignored
		{nil, -2, "abcd"},                               // cut
		{nil, -100, ""},                                 // cut to nothing
		{nil, 2, "abcdef\x00\x00"},                      // extend
		{[]byte{1, 0, 0, 'q'}, -5, "q"},                 // edit, then cut
		{[]byte{3, 0, 0, 0, 1, 0, 0, 'y'}, 0, "ycdef"},  // positions follow the current length
		{bytes.Repeat([]byte{3, 0, 0, 0}, 10), 0, ""},   // delete past empty
		{[]byte{3, 0, 0, 0, 2, 0, 0, 'n'}, -1, "nbcde"}, // delete, insert, then cut
	} {
		if got := Apply(base, c.edits, c.resize); string(got) != c.want {
			t.Errorf("Apply(%q, %v, %d) = %q, want %q", base, c.edits, c.resize, got, c.want)
		}
	}
	if string(base) != "abcdef" {
		t.Fatal("Apply changed its base")
	}
	many := bytes.Repeat([]byte{2, 0, 0, 'x'}, 2*MaxEdits)
	if got := Apply(nil, many, 0); len(got) != MaxEdits {
		t.Fatalf("%d edits applied, want at most %d", len(got), MaxEdits)
	}
}

func FuzzApply(f *testing.F) {
	f.Add([]byte("base"), []byte{2, 0, 1, 'x'}, int16(-1))
	f.Fuzz(func(t *testing.T, base, edits []byte, resize int16) {
		orig := bytes.Clone(base)
		got := Apply(base, edits, resize)
		if !bytes.Equal(base, orig) {
			t.Fatal("base changed")
		}
		if n := min(len(edits)/4, MaxEdits); len(got) > len(base)+n+max(int(resize), 0) {
			t.Fatalf("length %d from %d bytes, %d edits, resize %d", len(got), len(base), n, resize)
		}
	})
}
