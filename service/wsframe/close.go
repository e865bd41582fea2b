package wsframe

import "strconv"

// Close codes the node uses (RFC 6455 section 7.4.1; docs/stream.md
// section 4 "Closing").
const (
	CloseNormal          uint16 = 1000 // answering a client's close
	CloseGoingAway       uint16 = 1001 // idle timeout, liveness timer, shutdown
	CloseProtocolError   uint16 = 1002 // a frame the spec refuses
	CloseUnsupportedData uint16 = 1003 // a binary message
	CloseNoStatus        uint16 = 1005 // reported for a close frame without a code; never sent
	CloseInvalidPayload  uint16 = 1007 // invalid UTF-8, or not JSON
	ClosePolicyViolation uint16 = 1008 // not a request, too slow, control frames too fast
	CloseMessageTooBig   uint16 = 1009 // a message over MaxMessageSize
	CloseInternalError   uint16 = 1011 // the node's fault
	CloseTryAgainLater   uint16 = 1013 // eviction, or no budget for a message
)

// CloseError is a reason to close the connection with a close frame
// carrying Code and Reason. Every refusal of a [Reader] is a CloseError;
// the connection loop turns one (its own, too) into a frame with
// [AppendClose]. It is a comparable value: errors.Is matches the
// sentinels below, and errors.As extracts it.
type CloseError struct {
	Code   uint16
	Reason string // UTF-8; AppendClose truncates it to fit a control frame
}

func (e CloseError) Error() string {
	return "websocket: close " + strconv.Itoa(int(e.Code)) + ": " + e.Reason
}

// The refusals of a Reader (docs/stream.md section 4 "Failing the
// connection"), one per rule, each a CloseError. Reasons are fixed text:
// nothing the client sent is echoed. (They are held as error values so
// returning one allocates nothing.)
var (
	ErrUnmasked               error = CloseError{CloseProtocolError, "unmasked frame"}
	ErrReservedBits           error = CloseError{CloseProtocolError, "reserved bit set"}
	ErrBadOpcode              error = CloseError{CloseProtocolError, "unknown opcode"}
	ErrLengthTopBit           error = CloseError{CloseProtocolError, "64-bit length with the top bit set"}
	ErrNonMinimalLength       error = CloseError{CloseProtocolError, "length not in minimal form"}
	ErrControlFragmented      error = CloseError{CloseProtocolError, "fragmented control frame"}
	ErrControlTooLong         error = CloseError{CloseProtocolError, "control frame over 125 bytes"}
	ErrUnexpectedContinuation error = CloseError{CloseProtocolError, "continuation with no message in progress"}
	ErrMessageInProgress      error = CloseError{CloseProtocolError, "new message while one is in progress"}
	ErrTooManyFrames          error = CloseError{CloseProtocolError, "more than 64 frames in one message"}
	ErrCloseTooShort          error = CloseError{CloseProtocolError, "close payload of one byte"}
	ErrBadCloseCode           error = CloseError{CloseProtocolError, "close code that may not be sent"}
	ErrBinary                 error = CloseError{CloseUnsupportedData, "binary message"}
	ErrTooBig                 error = CloseError{CloseMessageTooBig, "message over 1 MiB"}
	ErrInvalidUTF8            error = CloseError{CloseInvalidPayload, "invalid UTF-8"}
	ErrTruncatedUTF8          error = CloseError{CloseInvalidPayload, "message ends inside a UTF-8 sequence"}
	ErrCloseReasonUTF8        error = CloseError{CloseInvalidPayload, "close reason is not UTF-8"}
)

// sendable reports whether a close frame may carry code: 1000–1003,
// 1007–1014 and 3000–4999 (RFC 6455 section 7.4; docs/stream.md section 4
// refuses 1004–1006, 1015 and everything else).
func sendable(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}
