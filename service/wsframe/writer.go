package wsframe

import (
	"encoding/binary"
	"errors"
	"strings"
	"unicode/utf8"
)

// ErrControlPayload: a ping or pong payload over 125 bytes.
var ErrControlPayload = errors.New("websocket: control frame payload over 125 bytes")

// ErrCloseCode: a close code that may not be sent (1004–1006, 1015, or
// outside 1000–1014 and 3000–4999).
var ErrCloseCode = errors.New("websocket: close code that may not be sent")

// appendHeader appends an unmasked server frame header with FIN set.
func appendHeader(dst []byte, op Opcode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n <= 125:
		return append(dst, b0, byte(n))
	case n <= 0xFFFF:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

// AppendTextHeader appends the header of an unfragmented, unmasked text
// frame of n payload bytes (n ≥ 0), for a large response written after it
// without a copy. The payload must be valid UTF-8 (JSON from
// encoding/json is).
func AppendTextHeader(dst []byte, n int) []byte {
	if n < 0 {
		panic("wsframe: negative length")
	}
	return appendHeader(dst, OpText, n)
}

// AppendText appends payload as one unfragmented, unmasked text message
// (FIN set; the node never fragments, docs/stream.md section 4). The
// payload must be valid UTF-8.
func AppendText(dst, payload []byte) []byte {
	return append(appendHeader(dst, OpText, len(payload)), payload...)
}

// AppendPing appends a ping frame carrying payload (at most 125 bytes).
func AppendPing(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxControlPayload {
		return dst, ErrControlPayload
	}
	return append(appendHeader(dst, OpPing, len(payload)), payload...), nil
}

// AppendPong appends a pong frame carrying payload (at most 125 bytes): a
// ping's payload, as Next returned it.
func AppendPong(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxControlPayload {
		return dst, ErrControlPayload
	}
	return append(appendHeader(dst, OpPong, len(payload)), payload...), nil
}

// AppendClose appends a close frame with code and reason. Invalid UTF-8
// in reason is replaced by U+FFFD, and the reason is cut at a code point
// boundary so the payload fits 125 bytes. A code that may not be sent is
// refused.
func AppendClose(dst []byte, code uint16, reason string) ([]byte, error) {
	if !sendable(code) {
		return dst, ErrCloseCode
	}
	reason = truncateUTF8(strings.ToValidUTF8(reason, "\uFFFD"), MaxControlPayload-2)
	dst = appendHeader(dst, OpClose, 2+len(reason))
	dst = binary.BigEndian.AppendUint16(dst, code)
	return append(dst, reason...), nil
}

// truncateUTF8 cuts the valid UTF-8 string s to at most max bytes at a
// code point boundary.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	i := max
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// AppendFragmentHeader appends the header of one unmasked frame of a text
// message sent in fragments: the first frame (first true) is a text
// frame, the others continuation frames, and the last (fin true) ends the
// message. The node sends a batch's response array this way, one element
// per frame, so a large batch streams (docs/stream.md section 4). Control
// frames may be written between the fragments; no other message may.
func AppendFragmentHeader(dst []byte, first, fin bool, n int) []byte {
	if n < 0 {
		panic("wsframe: negative length")
	}
	op := OpContinuation
	if first {
		op = OpText
	}
	start := len(dst)
	dst = appendHeader(dst, op, n)
	if !fin {
		dst[start] &^= 0x80
	}
	return dst
}
