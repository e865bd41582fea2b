package service

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"unicode/utf8"
)

// The fast path of request decoding: one pass over the body, no
// allocation but the decoded transaction. It recognizes the shapes real
// clients send (a request object whose members are jsonrpc, id, method and
// params, with plain strings) and declines everything else by returning
// false, never an error: a declined request goes through the general path
// (encoding/json), which gives the precise error. So the fast path only
// has to be right about what it accepts, which the tests check against
// the general path (TestFastCallMatchesGeneral, FuzzFastCall).

// maxScanDepth bounds the nesting the fast scanner follows (encoding/json
// allows 10000; deeper bodies go to the general path).
const maxScanDepth = 64

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

const (
	lo8 = 0x0101010101010101
	hi8 = 0x8080808080808080
)

// hasControl reports whether s holds a byte below 0x20 (invalid raw in a
// JSON string), eight bytes at a time.
func hasControl(s []byte) bool {
	for len(s) >= 8 {
		x := binary.LittleEndian.Uint64(s)
		// A byte below 0x20 borrows in x - 0x20…20 with its high bit
		// clear in x (Hacker's Delight, "hasless").
		if (x-0x20*lo8)&^x&hi8 != 0 {
			return true
		}
		s = s[8:]
	}
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return false
}

// scanString scans the JSON string starting at b[i] == '"' and returns
// the index after its closing quote and whether it holds escapes. ok is
// false when the string is invalid or unterminated.
func scanString(b []byte, i int) (end int, escaped, ok bool) {
	i++ // the opening quote
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, false, false
		}
		span := b[i : i+j]
		k := bytes.IndexByte(span, '\\')
		if k < 0 {
			if hasControl(span) {
				return 0, false, false
			}
			return i + j + 1, escaped, true
		}
		// An escape before the quote: check what precedes it, then the
		// escape itself, and go on after it (the quote found may be
		// escaped).
		if hasControl(span[:k]) {
			return 0, false, false
		}
		escaped = true
		p := i + k + 1
		if p >= len(b) {
			return 0, false, false
		}
		switch b[p] {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			p++
		case 'u':
			if p+5 > len(b) {
				return 0, false, false
			}
			for _, h := range b[p+1 : p+5] {
				if !isHex(h) {
					return 0, false, false
				}
			}
			p += 5
		default:
			return 0, false, false
		}
		i = p
	}
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// scanNumber scans a JSON number starting at b[i].
func scanNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	return i, true
}

// skipValue scans the JSON value starting at b[i] (no leading white
// space) and returns the index after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		end, _, ok := scanString(b, i)
		return end, ok
	case c == '{' || c == '[':
		if depth >= maxScanDepth {
			return 0, false
		}
		closer := byte('}')
		if c == '[' {
			closer = ']'
		}
		i = skipWS(b, i+1)
		if i < len(b) && b[i] == closer {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return 0, false
				}
				if i, _, ok = scanString(b, i); !ok {
					return 0, false
				}
				if i = skipWS(b, i); i >= len(b) || b[i] != ':' {
					return 0, false
				}
				i = skipWS(b, i+1)
			}
			if i, ok = skipValue(b, i, depth+1); !ok {
				return 0, false
			}
			i = skipWS(b, i)
			if i >= len(b) {
				return 0, false
			}
			if b[i] == closer {
				return i + 1, true
			}
			if b[i] != ',' {
				return 0, false
			}
			i = skipWS(b, i+1)
		}
	case c == '-' || '0' <= c && c <= '9':
		return scanNumber(b, i)
	case bytes.HasPrefix(b[i:], []byte("true")):
		return i + 4, true
	case bytes.HasPrefix(b[i:], []byte("false")):
		return i + 5, true
	case bytes.HasPrefix(b[i:], []byte("null")):
		return i + 4, true
	}
	return 0, false
}

// fastTx decodes params of exactly the form {"tx":"<standard base64>"}
// (white space allowed between tokens) starting at b[i] == '{', and
// returns the index after the closing brace. The string ends at the
// first quote and is decoded once: base64.StdEncoding.Decode, the
// decoder encoding/json uses for []byte, refuses every byte outside the
// alphabet (an escape's backslash, control characters) except '\r' and
// '\n', which are invalid raw in JSON: the part of the string the
// standard decoder saw (decodeBase64Split decodes the rest by a table of
// the alphabet alone) is checked for control characters. decodeBase64
// is that decoder, faster.
func fastTx(b []byte, i int) (tx []byte, next int, ok bool) {
	i = skipWS(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(`"tx"`)) {
		return nil, 0, false
	}
	i = skipWS(b, i+4)
	if i >= len(b) || b[i] != ':' {
		return nil, 0, false
	}
	i = skipWS(b, i+1)
	if i >= len(b) || b[i] != '"' {
		return nil, 0, false
	}
	i++
	end := bytes.IndexByte(b[i:], '"')
	if end < 0 {
		return nil, 0, false
	}
	enc := b[i : i+end]
	i = skipWS(b, i+end+1)
	if i >= len(b) || b[i] != '}' {
		return nil, 0, false
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(enc)))
	n, tabled, err := decodeBase64Split(out, enc)
	if err != nil || hasControl(enc[tabled:]) {
		return nil, 0, false
	}
	return out[:n], i + 1, true
}

// fastTxParams is fastTx over exactly the params (white space around
// allowed).
func fastTxParams(raw []byte) ([]byte, bool) {
	i := skipWS(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return nil, false
	}
	tx, next, ok := fastTx(raw, i)
	if !ok || skipWS(raw, next) != len(raw) {
		return nil, false
	}
	return tx, true
}

// Members of a request object the fast path tracks.
const (
	seenJSONRPC = 1 << iota
	seenID
	seenMethod
	seenParams
)

// parseFast parses the request object starting at b[i] == '{' into c and
// returns the index after it. It accepts only what the general path
// (parseGeneral) accepts, with the same result; anything else (escapes in
// keys, method or id, duplicate members, a missing or invalid member,
// deep nesting) returns false.
func (c *call) parseFast(b []byte, i int) (next int, ok bool) {
	i = skipWS(b, i+1)
	seen := 0
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		kEnd, esc, ok := scanString(b, i)
		if !ok || esc {
			return 0, false
		}
		key := b[i+1 : kEnd-1]
		if i = skipWS(b, kEnd); i >= len(b) || b[i] != ':' {
			return 0, false
		}
		i = skipWS(b, i+1)
		if i >= len(b) {
			return 0, false
		}
		var bit int
		switch string(key) {
		case "jsonrpc":
			bit = seenJSONRPC
			if !bytes.HasPrefix(b[i:], []byte(`"2.0"`)) {
				return 0, false
			}
			i += 5
		case "id":
			bit = seenID
			start := i
			switch ch := b[i]; {
			case ch == '"':
				end, esc, ok := scanString(b, i)
				if !ok || esc || !utf8.Valid(b[i+1:end-1]) {
					return 0, false
				}
				i = end
			case ch == '-' || '0' <= ch && ch <= '9':
				if i, ok = scanNumber(b, i); !ok {
					return 0, false
				}
			case bytes.HasPrefix(b[i:], []byte("null")):
				i += 4
			default:
				return 0, false
			}
			c.id = b[start:i]
		case "method":
			bit = seenMethod
			if b[i] != '"' {
				return 0, false
			}
			end, esc, ok := scanString(b, i)
			if !ok || esc || end-i == 2 || !utf8.Valid(b[i+1:end-1]) {
				return 0, false
			}
			c.method = string(b[i+1 : end-1])
			i = end
		case "params":
			bit = seenParams
			start := i
			switch b[i] {
			case '{':
				if tx, end, ok := fastTx(b, i); ok {
					c.tx, c.haveTx = tx, true
					i = end
				} else if i, ok = skipValue(b, i, 1); !ok {
					return 0, false
				}
				c.params = b[start:i]
			case '[':
				if i, ok = skipValue(b, i, 1); !ok {
					return 0, false
				}
				c.params = b[start:i]
			default:
				if !bytes.HasPrefix(b[i:], []byte("null")) {
					return 0, false
				}
				i += 4
			}
		default:
			// Other members are ignored, as by the general path.
			if i, ok = skipValue(b, i, 1); !ok {
				return 0, false
			}
		}
		if seen&bit != 0 {
			return 0, false // duplicate: the general path keeps the last
		}
		seen |= bit
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, false
		}
		if b[i] == '}' {
			i++
			break
		}
		if b[i] != ',' {
			return 0, false
		}
		i = skipWS(b, i+1)
	}
	if seen&(seenJSONRPC|seenMethod) != seenJSONRPC|seenMethod {
		return 0, false
	}
	c.hasID = seen&seenID != 0
	return i, true
}

// skipValid returns the index after the JSON value starting at b[i] (no
// leading white space) of a body json.Valid accepted. It follows nesting
// of any depth without recursion and allocates nothing: the general path
// walks the members of an object and the elements of an array with it
// (eachMember, eachElement) instead of decoding them into a map or a
// slice, whose entries cost 20 to 70 times the bytes that make them.
func skipValid(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipValidString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = skipValidString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number, true, false or null.
	for i < len(b) {
		switch b[i] {
		case ',', ']', '}', ':', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// skipValidString returns the index after the valid JSON string at b[i].
func skipValidString(b []byte, i int) int {
	for i++; i < len(b); {
		switch b[i] {
		case '\\':
			i += 2
		case '"':
			return i + 1
		default:
			i++
		}
	}
	return len(b)
}

// eachMember calls f with the key (unescaped) and the raw value of each
// member of the object b (json.Valid, b[0] == '{'), in order, until f
// returns false.
func eachMember(b []byte, f func(key, value []byte) bool) {
	i := skipWS(b, 1)
	for i < len(b) && b[i] == '"' {
		end := skipValidString(b, i)
		key := b[i+1 : end-1]
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			var s string
			_ = json.Unmarshal(b[i:end], &s) // valid: it unescapes, as for a map key
			key = []byte(s)
		}
		i = skipWS(b, skipWS(b, end)+1) // the colon
		vEnd := skipValid(b, i)
		if !f(key, b[i:vEnd]) {
			return
		}
		if i = skipWS(b, vEnd); i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
}

// eachElement calls f with each element of the array b (json.Valid,
// b[0] == '['), in order, until f returns false.
func eachElement(b []byte, f func(elem []byte) bool) {
	i := skipWS(b, 1)
	for i < len(b) && b[i] != ']' {
		end := skipValid(b, i)
		if !f(b[i:end]) {
			return
		}
		if i = skipWS(b, end); i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
}
