package service

import (
	"math/rand/v2"
	"testing"

	"github.com/luxfi/ids"
)

// cb58Cases are IDs whose encodings stress the conversion: zero bytes in
// front (leading '1's), all ones, the native chain IDs (named, not CB58).
func cb58Cases() []ids.ID {
	cases := []ids.ID{ids.Empty, {1}, {0xff}}
	var ones ids.ID
	for i := range ones {
		ones[i] = 0xff
	}
	cases = append(cases, ones)
	for k := 1; k < 32; k++ {
		var id ids.ID
		id[k] = 1
		cases = append(cases, id)
		var tail ids.ID
		tail[31] = byte(k)
		cases = append(cases, tail)
	}
	for _, c := range "PCXQAZBKIMTGHNV" {
		var id ids.ID
		id[31] = byte(c)
		cases = append(cases, id)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		var id ids.ID
		for i := range id {
			id[i] = byte(r.Uint32())
		}
		for z := r.IntN(40); z > 0 && z <= 32; z-- {
			id[z-1] = 0
		}
		cases = append(cases, id)
	}
	return cases
}

func TestAppendCB58(t *testing.T) {
	for _, id := range cb58Cases() {
		if got, want := string(appendCB58([]byte("x"), id)), "x"+id.String(); got != want {
			t.Fatalf("%x: appendCB58 %q, ids.ID.String %q", id[:], got, want)
		}
	}
}

func FuzzAppendCB58(f *testing.F) {
	for _, id := range cb58Cases()[:60] {
		f.Add(id[:])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var id ids.ID
		copy(id[:], b)
		if got, want := string(appendCB58(nil, id)), id.String(); got != want {
			t.Fatalf("%x: appendCB58 %q, ids.ID.String %q", id[:], got, want)
		}
	})
}

func BenchmarkAppendCB58(b *testing.B) {
	id := ids.ID{0x12, 0x34, 0x56, 0x78, 0x9a}
	b.Run("service", func(b *testing.B) {
		buf := make([]byte, 0, 64)
		for b.Loop() {
			buf = appendCB58(buf[:0], id)
		}
	})
	b.Run("ids.String", func(b *testing.B) {
		for b.Loop() {
			_ = id.String()
		}
	})
}
