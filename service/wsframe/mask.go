package wsframe

import (
	"encoding/binary"
	"math/bits"
)

// maskBytes XORs b with the masking key (RFC 6455 section 5.3), b starting
// at offset pos of the frame's payload; masking and unmasking are the
// same. key is the 4 key bytes read as a little-endian uint32. It works
// 8 bytes at a time: the per-message cost matters (docs/stream.md
// section 10).
func maskBytes(key uint32, pos int, b []byte) { maskCopy(b, b, key, pos) }

// maskCopy sets dst to src masked (dst and src of equal length, the same
// or not overlapping): one pass for the copy and the unmasking.
func maskCopy(dst, src []byte, key uint32, pos int) {
	k := bits.RotateLeft32(key, -8*(pos&3)) // byte 0 of b takes key byte pos%4
	k64 := uint64(k) | uint64(k)<<32
	dst = dst[:len(src)]
	for len(src) >= 32 {
		d, s := dst[:32], src[:32]
		binary.LittleEndian.PutUint64(d, binary.LittleEndian.Uint64(s)^k64)
		binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:])^k64)
		binary.LittleEndian.PutUint64(d[16:], binary.LittleEndian.Uint64(s[16:])^k64)
		binary.LittleEndian.PutUint64(d[24:], binary.LittleEndian.Uint64(s[24:])^k64)
		dst, src = dst[32:], src[32:]
	}
	for len(src) >= 8 {
		binary.LittleEndian.PutUint64(dst, binary.LittleEndian.Uint64(src)^k64)
		dst, src = dst[8:], src[8:]
	}
	for i := range src {
		dst[i] = src[i] ^ byte(k>>(8*(i&3)))
	}
}
