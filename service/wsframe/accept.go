package wsframe

import (
	"crypto/sha1"
	"encoding/base64"
	"errors"
)

// rfcGUID is appended to the client's key (RFC 6455 section 1.3).
const rfcGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ErrBadKey: the Sec-WebSocket-Key is not the standard base64 of exactly
// 16 bytes; the handshake answers 400 (docs/stream.md section 3).
var ErrBadKey = errors.New("websocket: Sec-WebSocket-Key is not base64 of 16 bytes")

// AcceptKey checks a Sec-WebSocket-Key header value and returns the
// Sec-WebSocket-Accept value for it: base64(SHA-1(key || GUID)). The key
// must be padded standard base64 (24 characters, no surrounding space)
// decoding to exactly 16 bytes; as in Go's decoder, unused trailing bits
// need not be zero (the spec asks only that it decode to 16 bytes).
func AcceptKey(clientKey string) (string, error) {
	if len(clientKey) != 24 { // base64 of 16 bytes, padded
		return "", ErrBadKey
	}
	var raw [18]byte
	n, err := base64.StdEncoding.Decode(raw[:], []byte(clientKey))
	if err != nil || n != 16 {
		return "", ErrBadKey
	}
	h := sha1.New()
	h.Write([]byte(clientKey))
	h.Write([]byte(rfcGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}
