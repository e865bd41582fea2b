package wsframe

import (
	"encoding/binary"
	"slices"
	"strings"
)

// The client side of the framing: a client masks every frame it sends
// (RFC 6455 section 5.3) and reads the node's unmasked frames with a
// [ClientReader]. The writers take the 4-byte masking key from the
// caller, who draws a fresh one per frame from a source the page (a
// script in a browser) cannot predict.

// appendMaskedHeader appends a masked frame header with FIN set and the
// masking key.
func appendMaskedHeader(dst []byte, op Opcode, n int, key [4]byte) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n <= 125:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xFFFF:
		dst = append(dst, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, key[:]...)
}

// appendMasked appends a whole masked frame: the header, the key, and the
// payload masked in one pass (the cost of a copy).
func appendMasked(dst []byte, op Opcode, payload []byte, key [4]byte) []byte {
	dst = appendMaskedHeader(dst, op, len(payload), key)
	l := len(dst)
	dst = slices.Grow(dst, len(payload))[:l+len(payload)]
	maskCopy(dst[l:], payload, binary.LittleEndian.Uint32(key[:]), 0)
	return dst
}

// AppendMaskedText appends payload as one unfragmented text message
// masked with key, as a client sends it. The payload must be valid UTF-8
// (JSON from encoding/json is): the node closes with 1007 otherwise.
func AppendMaskedText(dst, payload []byte, key [4]byte) []byte {
	return appendMasked(dst, OpText, payload, key)
}

// AppendMaskedPing appends a masked ping frame carrying payload (at most
// 125 bytes).
func AppendMaskedPing(dst, payload []byte, key [4]byte) ([]byte, error) {
	if len(payload) > MaxControlPayload {
		return dst, ErrControlPayload
	}
	return appendMasked(dst, OpPing, payload, key), nil
}

// AppendMaskedPong appends a masked pong frame carrying payload (at most
// 125 bytes): a ping's payload, as ClientReader.Next returned it.
func AppendMaskedPong(dst, payload []byte, key [4]byte) ([]byte, error) {
	if len(payload) > MaxControlPayload {
		return dst, ErrControlPayload
	}
	return appendMasked(dst, OpPong, payload, key), nil
}

// AppendMaskedClose appends a masked close frame with code and reason, as
// AppendClose does (invalid UTF-8 in reason replaced by U+FFFD, the
// reason cut at a code point boundary to fit 123 bytes; a code that may
// not be sent refused).
func AppendMaskedClose(dst []byte, code uint16, reason string, key [4]byte) ([]byte, error) {
	if !sendable(code) {
		return dst, ErrCloseCode
	}
	reason = truncateUTF8(strings.ToValidUTF8(reason, "\uFFFD"), MaxControlPayload-2)
	var p [MaxControlPayload]byte
	binary.BigEndian.PutUint16(p[:], code)
	n := 2 + copy(p[2:], reason)
	return appendMasked(dst, OpClose, p[:n], key), nil
}
