package service

import (
	"crypto/sha256"
	"encoding/binary"

	"github.com/luxfi/ids"
)

// appendCB58 appends the string form of id (ids.ID.String) without
// allocating: the name of a native chain ID, or CB58, the base58 (Bitcoin
// alphabet) of the 32 bytes followed by the last 4 bytes of their
// SHA-256. ids.ID.String converts byte by byte (quadratic in the length)
// into a fresh string, about 3 µs per ID here: every write's reply and
// every message of a page carries one or two. This converts 58^5 at a
// time, a few hundred nanoseconds with the hash. TestAppendCB58 and
// FuzzAppendCB58 hold it to ids.ID.String.
func appendCB58(dst []byte, id ids.ID) []byte {
	if s := ids.NativeChainString(id); s != "" {
		return append(dst, s...)
	}
	var in [36]byte
	copy(in[:], id[:])
	sum := sha256.Sum256(id[:])
	copy(in[32:], sum[28:])
	zeros := 0
	for zeros < len(in) && in[zeros] == 0 {
		zeros++
	}
	// The number as nine big-endian 32-bit words, divided by 58^5 until
	// nothing is left; each remainder gives five base58 digits.
	var words [9]uint32
	for i := range words {
		words[i] = binary.BigEndian.Uint32(in[4*i:])
	}
	const radix = 58 * 58 * 58 * 58 * 58 // 656,356,768 < 2^32
	var digits [55]byte                  // little-endian; 36 bytes need at most 50 digits
	n := 0
	for first := 0; first < len(words); {
		var rem uint64
		for i := first; i < len(words); i++ {
			cur := rem<<32 | uint64(words[i])
			words[i] = uint32(cur / radix)
			rem = cur % radix
		}
		for first < len(words) && words[first] == 0 {
			first++
		}
		for range 5 {
			digits[n] = byte(rem % 58)
			rem /= 58
			n++
		}
	}
	for n > 0 && digits[n-1] == 0 {
		n--
	}
	for range zeros {
		dst = append(dst, base58Alphabet[0])
	}
	for i := n - 1; i >= 0; i-- {
		dst = append(dst, base58Alphabet[digits[i]])
	}
	return dst
}

const base58Alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
