package wsframe

import (
	"encoding/binary"
	"unicode/utf8"
)

// utf8State validates UTF-8 incrementally, so a code point may span
// frames and chunks (docs/stream.md section 4): it accepts exactly what
// unicode/utf8.Valid accepts (no overlong forms, no surrogates, nothing
// above U+10FFFF) and finds the first byte that cannot begin or continue
// a valid sequence.
type utf8State struct {
	need   uint8 // continuation bytes still to come
	lo, hi byte  // the range of the next byte while need > 0
}

// feed validates p as the continuation of what was fed before. It returns
// the index of the first invalid byte of p, or -1.
func (s *utf8State) feed(p []byte) int {
	// Finish a sequence begun before, then hand the bulk to utf8.Valid
	// (several times faster than a byte loop) up to an incomplete
	// sequence at the end, which the byte loop takes. Only when the bulk
	// is invalid does the byte loop scan it, to find the first bad byte.
	i := 0
	for i < len(p) && s.need > 0 {
		if c := p[i]; c < s.lo || c > s.hi {
			return i
		}
		s.need--
		s.lo, s.hi = 0x80, 0xBF
		i++
	}
	rest := p[i:]
	cut := len(rest)
	for k := 1; k <= 3 && k <= len(rest); k++ {
		c := rest[len(rest)-k]
		if c < 0x80 {
			break
		}
		if c >= 0xC0 { // a lead byte: incomplete if it needs more than k-1
			if c >= 0xF0 && k < 4 || c >= 0xE0 && k < 3 || k < 2 {
				cut = len(rest) - k
			}
			break
		}
	}
	if utf8.Valid(rest[:cut]) {
		i += cut
	}
	return s.scan(p, i)
}

// scan is the byte-by-byte validator, from p[i:].
func (s *utf8State) scan(p []byte, i int) int {
	for i < len(p) {
		if s.need > 0 {
			c := p[i]
			if c < s.lo || c > s.hi {
				return i
			}
			s.need--
			s.lo, s.hi = 0x80, 0xBF
			i++
			continue
		}
		// ASCII, 8 bytes at a time: JSON requests are mostly ASCII.
		for i+8 <= len(p) && binary.LittleEndian.Uint64(p[i:])&0x8080808080808080 == 0 {
			i += 8
		}
		if i == len(p) {
			break
		}
		c := p[i]
		switch {
		case c < 0x80:
		case c < 0xC2: // a continuation byte, or an overlong two-byte lead
			return i
		case c < 0xE0:
			s.need, s.lo, s.hi = 1, 0x80, 0xBF
		case c == 0xE0: // no overlong three-byte form
			s.need, s.lo, s.hi = 2, 0xA0, 0xBF
		case c == 0xED: // no surrogates (U+D800–U+DFFF)
			s.need, s.lo, s.hi = 2, 0x80, 0x9F
		case c < 0xF0:
			s.need, s.lo, s.hi = 2, 0x80, 0xBF
		case c == 0xF0: // no overlong four-byte form
			s.need, s.lo, s.hi = 3, 0x90, 0xBF
		case c < 0xF4:
			s.need, s.lo, s.hi = 3, 0x80, 0xBF
		case c == 0xF4: // nothing above U+10FFFF
			s.need, s.lo, s.hi = 3, 0x80, 0x8F
		default:
			return i
		}
		i++
	}
	return -1
}

// complete reports whether the bytes fed so far end on a code point
// boundary.
func (s *utf8State) complete() bool { return s.need == 0 }
