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
func maskBytes(key uint32, pos int, b []byte) {
	k := bits.RotateLeft32(key, -8*(pos&3)) // byte 0 of b takes key byte pos%4
	k64 := uint64(k) | uint64(k)<<32
	for len(b) >= 32 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		binary.LittleEndian.PutUint64(b[8:], binary.LittleEndian.Uint64(b[8:])^k64)
		binary.LittleEndian.PutUint64(b[16:], binary.LittleEndian.Uint64(b[16:])^k64)
		binary.LittleEndian.PutUint64(b[24:], binary.LittleEndian.Uint64(b[24:])^k64)
		b = b[32:]
	}
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k64)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(k >> (8 * (i & 3)))
	}
}
