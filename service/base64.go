package service

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"sync"
)

// decodeBase64 is base64.StdEncoding.Decode (same bytes written, same n,
// same error, offsets included), about twice as fast on the 4.9 KB of a
// message's transaction: whole groups of eight characters of the
// alphabet are decoded two characters per table lookup, and whatever
// else (padding, the last group, a character outside the alphabet, and
// all that follows it) is left to base64.StdEncoding. dst must have room
// for base64.StdEncoding.DecodedLen(len(src)) bytes, as for Decode.
// FuzzDecodeBase64 holds it to base64.StdEncoding.Decode.
func decodeBase64(dst, src []byte) (int, error) {
	n, _, err := decodeBase64Split(dst, src)
	return n, err
}

// decodeBase64Split is decodeBase64 that also returns how many leading
// characters of src the table decoded: all of them in the standard
// alphabet. The rest went to base64.StdEncoding, which skips '\r' and
// '\n' where it finds them.
func decodeBase64Split(dst, src []byte) (n, tabled int, err error) {
	si, di := 0, 0
	if len(src) > 8 {
		t := base64Pairs()
		// The last eight characters (the padded quantum) go to the
		// standard decoder; an 8-byte store writes 2 bytes past the 6
		// decoded, which that decoder overwrites or which lie past n.
		for si+16 <= len(src) && di+8 <= len(dst) {
			x := binary.LittleEndian.Uint64(src[si:])
			a, b, c, d := t[uint16(x)], t[uint16(x>>16)], t[uint16(x>>32)], t[uint16(x>>48)]
			if (a|b|c|d)&0xf000 != 0 {
				break // not all of the alphabet
			}
			binary.BigEndian.PutUint64(dst[di:], uint64(a)<<52|uint64(b)<<40|uint64(c)<<28|uint64(d)<<16)
			si += 8
			di += 6
		}
	}
	n, err = base64.StdEncoding.Decode(dst[di:], src[si:])
	var corrupt base64.CorruptInputError
	if errors.As(err, &corrupt) {
		err = corrupt + base64.CorruptInputError(si)
	}
	return di + n, si, err
}

// base64Pairs maps two characters (the first in the low byte) to their
// 12 bits, or to 0xffff when either is outside the standard alphabet. It
// takes 128 KiB, built on first use (only a node decodes requests).
var base64Pairs = sync.OnceValue(func() *[1 << 16]uint16 {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var value [256]int
	for i := range value {
		value[i] = -1
	}
	for i := range len(alphabet) {
		value[alphabet[i]] = i
	}
	t := new([1 << 16]uint16)
	for i := range t {
		hi, lo := value[i&0xff], value[i>>8]
		if hi < 0 || lo < 0 {
			t[i] = 0xffff
		} else {
			t[i] = uint16(hi<<6 | lo)
		}
	}
	return t
})
