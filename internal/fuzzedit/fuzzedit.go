// Package fuzzedit lets the fuzz targets of large encodings take small
// inputs. A target builds a few valid encodings once (keys, signed
// messages, envelopes, transactions: kilobytes each) and fuzzes an edit
// script applied to one of them. The fuzzer then mutates and minimizes a
// few dozen bytes, and the code under test still sees full-size, nearly
// valid inputs, which is where its interesting checks are. Fuzzing the
// kilobytes directly is what made some targets run a few dozen inputs in
// minutes: Go's fuzzer minimizes every new interesting input, and
// minimizing 10 KB through an ML-DSA verification takes minutes.
package fuzzedit

// MaxEdits bounds the operations applied, so an input cannot make Apply
// itself slow.
const MaxEdits = 64

// Apply returns a copy of base changed by edits and resized by resize.
//
// edits is read four bytes at a time (a shorter tail is ignored), at most
// MaxEdits operations: op, position (two bytes, big-endian, taken modulo
// the current length), value. By op modulo 4: 0 XORs value into the byte
// at the position, 1 sets it to value, 2 inserts value before it (or
// appends, at the end), 3 deletes it. Then resize, if not zero, cuts the
// result or extends it with zero bytes by that many bytes.
func Apply(base, edits []byte, resize int16) []byte {
	b := append(make([]byte, 0, len(base)+len(edits)/4+max(int(resize), 0)), base...)
	for n := 0; len(edits) >= 4 && n < MaxEdits; n, edits = n+1, edits[4:] {
		op, pos, v := edits[0]%4, int(edits[1])<<8|int(edits[2]), edits[3]
		switch {
		case op == 2:
			pos %= len(b) + 1
			b = append(b, 0)
			copy(b[pos+1:], b[pos:])
			b[pos] = v
		case len(b) == 0:
		case op == 0:
			b[pos%len(b)] ^= v
		case op == 1:
			b[pos%len(b)] = v
		default:
			pos %= len(b)
			b = append(b[:pos], b[pos+1:]...)
		}
	}
	switch {
	case resize < 0:
		b = b[:max(len(b)+int(resize), 0)]
	case resize > 0:
		b = append(b, make([]byte, resize)...)
	}
	return b
}

// Pick returns bases[i modulo len(bases)].
func Pick(bases [][]byte, i uint8) []byte { return bases[int(i)%len(bases)] }
