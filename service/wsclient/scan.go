package wsclient

import "bytes"

// topKind is what a message of the node is at its top level.
type topKind uint8

const (
	topInvalid topKind = iota // not one JSON object or array
	topObject
	topArray
)

// scanTop reads the top level of msg without decoding it: whether msg is
// one JSON object or array (with only white space around it) and, for an
// object, the raw bytes of its "id" member's value (hasID false without
// one). Nested values are skipped, not validated: brackets are matched
// and strings skipped whole, so a member inside a nested value is never
// taken for a top-level one; the caller's decoder validates the rest. At
// the top level it refuses (topInvalid) what would make "the id" of the
// message ambiguous: a repeated "id", a key equal to "id" in another case
// (encoding/json matches field names without regard to case), and a key
// with an escape (which could spell "id").
//
// Its cost is a pass over the message, strings skipped by
// bytes.IndexByte: responses can be megabytes, and the node writes the id
// last.
func scanTop(msg []byte) (kind topKind, id []byte, hasID bool) {
	i := skipSpace(msg, 0)
	if i == len(msg) {
		return topInvalid, nil, false
	}
	switch msg[i] {
	case '[':
		end, ok := skipValue(msg, i)
		if !ok || skipSpace(msg, end) != len(msg) {
			return topInvalid, nil, false
		}
		return topArray, nil, false
	case '{':
	default:
		return topInvalid, nil, false
	}
	i = skipSpace(msg, i+1)
	if i < len(msg) && msg[i] == '}' {
		if skipSpace(msg, i+1) != len(msg) {
			return topInvalid, nil, false
		}
		return topObject, nil, false
	}
	for {
		if i == len(msg) || msg[i] != '"' {
			return topInvalid, nil, false
		}
		end, ok := skipString(msg, i)
		if !ok {
			return topInvalid, nil, false
		}
		key := msg[i+1 : end-1]
		i = skipSpace(msg, end)
		if i == len(msg) || msg[i] != ':' {
			return topInvalid, nil, false
		}
		i = skipSpace(msg, i+1)
		v := i
		if i, ok = skipValue(msg, i); !ok {
			return topInvalid, nil, false
		}
		if len(key) == 2 && key[0]|0x20 == 'i' && key[1]|0x20 == 'd' {
			if hasID || key[0] != 'i' || key[1] != 'd' {
				return topInvalid, nil, false
			}
			id, hasID = msg[v:i], true
		} else if bytes.IndexByte(key, '\\') >= 0 {
			return topInvalid, nil, false
		}
		i = skipSpace(msg, i)
		if i == len(msg) {
			return topInvalid, nil, false
		}
		switch msg[i] {
		case ',':
			i = skipSpace(msg, i+1)
		case '}':
			if skipSpace(msg, i+1) != len(msg) {
				return topInvalid, nil, false
			}
			return topObject, id, hasID
		default:
			return topInvalid, nil, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
// It checks that no control character is in it only for short strings
// (keys and ids); longer ones are the decoder's to validate.
func skipString(b []byte, i int) (int, bool) {
	start := i + 1
	j := start
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, false
		}
		j += k
		// The quote is escaped if an odd number of backslashes precede it.
		n := 0
		for j-1-n >= start && b[j-1-n] == '\\' {
			n++
		}
		j++
		if n%2 == 0 {
			break
		}
	}
	if j-start <= 64 {
		for _, c := range b[start : j-1] {
			if c < 0x20 {
				return 0, false
			}
		}
	}
	return j, true
}

// skipValue returns the index after the value starting at b[i]: a string,
// an object or array (brackets matched, nested strings skipped), or a
// literal (a number, true, false or null, checked exactly).
func skipValue(b []byte, i int) (int, bool) {
	if i == len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{' || c == '[':
		return skipNested(b, i)
	default:
		return skipLiteral(b, i)
	}
}

// skipNested skips an object or array, matching its brackets.
func skipNested(b []byte, i int) (int, bool) {
	var stackArray [64]byte
	stack := stackArray[:0]
	for i < len(b) {
		switch c := b[i]; c {
		case '"':
			end, ok := skipString(b, i)
			if !ok {
				return 0, false
			}
			i = end
			continue
		case '{':
			stack = append(stack, '}')
		case '[':
			stack = append(stack, ']')
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return 0, false
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return i + 1, true
			}
		}
		i++
	}
	return 0, false
}

// skipLiteral skips a number (RFC 8259 grammar), true, false or null.
func skipLiteral(b []byte, i int) (int, bool) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if bytes.HasPrefix(b[i:], []byte(lit)) {
			return i + len(lit), true
		}
	}
	if b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false
		}
	}
	return i, true
}
