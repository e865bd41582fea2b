package wsclient

import (
	"errors"
	"strconv"
	"time"
)

// ErrUntrustedNode: the node broke the protocol (docs/stream.md section
// 4, "Correlation"): an unknown, repeated or out-of-order response id, a
// response when nothing is pending, an array answering a request object
// or an object answering a batch, a message that is not one JSON object
// or array, an unexpected notification, a message over the bound, or a
// frame RFC 6455 refuses. The connection is closed and every pending call
// fails with an error wrapping it; the caller resends its unanswered
// requests elsewhere or later.
var ErrUntrustedNode = errors.New("wsclient: untrusted node")

// ErrClosed: Close was called; a pending call it ends was not answered
// within its 2 s.
var ErrClosed = errors.New("wsclient: connection closed")

// ErrAbandoned: a call's context ended before its response, so the
// connection was closed (a pipelined request cannot be cancelled alone)
// and the other pending calls fail with it.
var ErrAbandoned = errors.New("wsclient: connection closed: a call's context ended before its response")

// ErrConnectionLost: the connection ended without a close frame (end of
// stream, reset, or a read or write error, a write deadline included).
// Errors wrap it together with the cause.
var ErrConnectionLost = errors.New("wsclient: connection lost")

// CloseError is the node's close frame: every pending call fails with it.
type CloseError struct {
	Code   uint16 // 1005 (no status) if the frame had no code
	Reason string // at most 123 bytes of UTF-8, as the node sent it
}

func (e *CloseError) Error() string {
	s := "wsclient: the node closed the connection with " + strconv.Itoa(int(e.Code))
	if e.Reason != "" {
		s += ": " + strconv.Quote(e.Reason)
	}
	return s
}

// clientFault reports whether a close code is one docs/stream.md section
// 4 gives for a client's fault, after which the client must not
// reconnect as it was: 1002, 1003, 1007, 1008, 1009.
func clientFault(code uint16) bool {
	switch code {
	case 1002, 1003, 1007, 1008, 1009:
		return true
	}
	return false
}

// Retryable reports whether err means the client should reconnect to the
// same node after the backoff of docs/stream.md section 5
// ("Reconnecting"): a close frame from the node with a code that is not a
// client fault (1013, 1001, 1011, 1000, ...), a connection lost without a
// close frame, or a handshake answered 503 (wait RetryAfter). It is false
// for a client-fault close code (1002, 1003, 1007, 1008, 1009: the
// client's bug, resending would repeat it), ErrUntrustedNode (go
// elsewhere), ErrClosed and ErrAbandoned (the caller's own doing), other
// handshake refusals, and nil.
func Retryable(err error) bool {
	var ce *CloseError
	var he *HandshakeError
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUntrustedNode):
		return false
	case errors.As(err, &ce):
		return !clientFault(ce.Code)
	case errors.As(err, &he):
		return he.Status == 503
	}
	return errors.Is(err, ErrConnectionLost)
}

// HandshakeError: the node did not accept the upgrade. A status other
// than 101 is the node's refusal (503 with Retry-After when its WebSocket
// limit is reached, 403 for a refused Host or Origin, 400 or 426
// otherwise); a 101 with Reason set is an answer the client refuses (a
// wrong Sec-WebSocket-Accept, subprotocol or extension).
type HandshakeError struct {
	Status     int
	RetryAfter time.Duration // from Retry-After, 0 if absent
	Body       string        // the first 1 KiB of the body
	Reason     string        // why a 101 was refused; empty otherwise
}

func (e *HandshakeError) Error() string {
	if e.Reason != "" {
		return "wsclient: handshake: " + e.Reason
	}
	s := "wsclient: handshake refused with " + strconv.Itoa(e.Status)
	if e.RetryAfter > 0 {
		s += " (retry after " + e.RetryAfter.String() + ")"
	}
	if e.Body != "" {
		b := e.Body
		if len(b) > 200 {
			b = b[:200]
		}
		s += ": " + strconv.Quote(b)
	}
	return s
}
