package service

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// ErrorCode is the numeric code of a JSON-RPC error. The codes are stable:
// clients may switch on them. docs/api.md has the table.
type ErrorCode int

// JSON-RPC 2.0 codes.
const (
	CodeParseError     ErrorCode = -32700 // the body is not JSON
	CodeInvalidRequest ErrorCode = -32600 // not a single JSON-RPC 2.0 request object
	CodeMethodNotFound ErrorCode = -32601
	CodeInvalidParams  ErrorCode = -32602 // wrong types, unknown fields, malformed IDs, bad limits, wrong tx type
	CodeInternal       ErrorCode = -32603 // a failure of the node (database, panic)
)

// SessionVM codes (the JSON-RPC range reserved for servers).
const (
	CodeUnknownIdentity ErrorCode = -32001 // no identity registered under that Session ID
	CodeUnknownSession  ErrorCode = -32002
	CodeUnknownChannel  ErrorCode = -32003
	CodeNotParticipant  ErrorCode = -32004 // not a participant of the session / member of the channel
	CodeTooLarge        ErrorCode = -32005 // request body, transaction or one of its fields too large
	CodeMempoolFull     ErrorCode = -32006 // mempool full, or too many pending transactions of this author
	CodeBadSignature    ErrorCode = -32007 // signature does not verify, or the tx is for another chain
	CodeBadNonce        ErrorCode = -32008 // nonce replayed or skipping ahead: fetch getNonce and re-sign
	CodeDuplicateTx     ErrorCode = -32009 // the same transaction is already pending or accepted
	CodeSessionClosed   ErrorCode = -32010 // the session is closed or expired
	CodeLimitReached    ErrorCode = -32011 // maxMessages, maxChannels or a channel's member limit
	CodeAlreadyExists   ErrorCode = -32012 // identity already registered, already a member, ...
	CodeInvalidTx       ErrorCode = -32013 // any other refusal of the transaction
	CodeUnavailable     ErrorCode = -32014 // the VM is not initialized or is shutting down
	CodeBusy            ErrorCode = -32015 // the node's bounds on work and bytes in flight are reached: retry later
	CodeRateLimited     ErrorCode = -32016 // the author's rate-limit bucket is empty: retry later
	CodeForbidden       ErrorCode = -32017 // blocked, banned, not invited, not the owner or a moderator
	CodePrekeyGone      ErrorCode = -32018 // the claimed one-time prekey is claimed, unknown or reserved
	CodeUnknownTx       ErrorCode = -32019 // getTx of a transaction that is not accepted
	CodeDiskFull        ErrorCode = -32020 // the node's disk is too full to take transactions: retry later
)

var codeNames = map[ErrorCode]string{
	CodeParseError:      "parse error",
	CodeInvalidRequest:  "invalid request",
	CodeMethodNotFound:  "method not found",
	CodeInvalidParams:   "invalid params",
	CodeInternal:        "internal error",
	CodeUnknownIdentity: "unknown identity",
	CodeUnknownSession:  "unknown session",
	CodeUnknownChannel:  "unknown channel",
	CodeNotParticipant:  "not a participant",
	CodeTooLarge:        "too large",
	CodeMempoolFull:     "mempool full",
	CodeBadSignature:    "bad signature",
	CodeBadNonce:        "bad nonce",
	CodeDuplicateTx:     "duplicate transaction",
	CodeSessionClosed:   "session closed",
	CodeLimitReached:    "limit reached",
	CodeAlreadyExists:   "already exists",
	CodeInvalidTx:       "invalid transaction",
	CodeUnavailable:     "unavailable",
	CodeBusy:            "busy",
	CodeRateLimited:     "rate limited",
	CodeForbidden:       "forbidden",
	CodePrekeyGone:      "prekey unavailable",
	CodeUnknownTx:       "unknown transaction",
	CodeDiskFull:        "disk full",
}

// String returns the short name of the code ("unknown session").
func (c ErrorCode) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return "error " + strconv.Itoa(int(c))
}

// Error is a JSON-RPC error object. The server sends it; the Client returns
// it (as *Error, usable with errors.As) for every error the node reported.
//
// errors.Is(err, target) holds when target is an *Error with the same Code,
// so the package-level values below work as sentinels:
//
//	if errors.Is(err, service.ErrUnknownSession) { ... }
type Error struct {
	Code    ErrorCode `json:"code"`
	Message string    `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("rpc error %d: %s", int(e.Code), e.Message)
}

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t != nil && t.Code == e.Code
}

// Sentinels for errors.Is, one per code.
var (
	ErrParse           = &Error{Code: CodeParseError, Message: "parse error"}
	ErrInvalidRequest  = &Error{Code: CodeInvalidRequest, Message: "invalid request"}
	ErrMethodNotFound  = &Error{Code: CodeMethodNotFound, Message: "method not found"}
	ErrInvalidParams   = &Error{Code: CodeInvalidParams, Message: "invalid params"}
	ErrInternal        = &Error{Code: CodeInternal, Message: "internal error"}
	ErrUnknownIdentity = &Error{Code: CodeUnknownIdentity, Message: "unknown identity"}
	ErrUnknownSession  = &Error{Code: CodeUnknownSession, Message: "unknown session"}
	ErrUnknownChannel  = &Error{Code: CodeUnknownChannel, Message: "unknown channel"}
	ErrNotParticipant  = &Error{Code: CodeNotParticipant, Message: "not a participant"}
	ErrTooLarge        = &Error{Code: CodeTooLarge, Message: "too large"}
	ErrMempoolFull     = &Error{Code: CodeMempoolFull, Message: "mempool full"}
	ErrBadSignature    = &Error{Code: CodeBadSignature, Message: "bad signature"}
	ErrBadNonce        = &Error{Code: CodeBadNonce, Message: "bad nonce"}
	ErrDuplicateTx     = &Error{Code: CodeDuplicateTx, Message: "duplicate transaction"}
	ErrSessionClosed   = &Error{Code: CodeSessionClosed, Message: "session closed"}
	ErrLimitReached    = &Error{Code: CodeLimitReached, Message: "limit reached"}
	ErrAlreadyExists   = &Error{Code: CodeAlreadyExists, Message: "already exists"}
	ErrInvalidTx       = &Error{Code: CodeInvalidTx, Message: "invalid transaction"}
	ErrUnavailable     = &Error{Code: CodeUnavailable, Message: "unavailable"}
	ErrBusy            = &Error{Code: CodeBusy, Message: "busy"}
	ErrRateLimited     = &Error{Code: CodeRateLimited, Message: "rate limited"}
	ErrForbidden       = &Error{Code: CodeForbidden, Message: "forbidden"}
	ErrPrekeyGone      = &Error{Code: CodePrekeyGone, Message: "prekey unavailable"}
	ErrUnknownTx       = &Error{Code: CodeUnknownTx, Message: "unknown transaction"}
	ErrDiskFull        = &Error{Code: CodeDiskFull, Message: "disk full"}
)

// CodeOf returns the code of an *Error in err's chain, and false when there
// is none (a transport failure, a timeout).
func CodeOf(err error) (ErrorCode, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, true
	}
	return 0, false
}

func hasCode(err error, codes ...ErrorCode) bool {
	c, ok := CodeOf(err)
	if !ok {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// IsNotFound reports whether the node said the identity, session, channel
// or transaction does not exist.
func IsNotFound(err error) bool {
	return hasCode(err, CodeUnknownIdentity, CodeUnknownSession, CodeUnknownChannel, CodeUnknownTx)
}

// IsInvalidParams reports a request the node could not accept as given.
func IsInvalidParams(err error) bool { return hasCode(err, CodeInvalidParams) }

// IsRetryable reports an error after which the same request may succeed
// later: a full mempool, an unavailable or busy node, a node whose disk
// is too full, or an empty rate-limit bucket. (A bad nonce needs a
// re-signed transaction; the Client's signing helpers do that themselves.)
func IsRetryable(err error) bool {
	return hasCode(err, CodeMempoolFull, CodeUnavailable, CodeBusy, CodeDiskFull, CodeRateLimited)
}

// IsRefused reports that the chain refused a transaction (any code from
// unknown identity to invalid transaction, rate limited, forbidden,
// prekey unavailable).
func IsRefused(err error) bool {
	c, ok := CodeOf(err)
	if !ok {
		return false
	}
	switch c {
	case CodeRateLimited, CodeForbidden, CodePrekeyGone:
		return true
	}
	return c <= CodeUnknownIdentity && c >= CodeInvalidTx && c != CodeMempoolFull && c != CodeDuplicateTx
}

func errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// toError maps an error of vm.API (the sentinels of packages tx, mempool,
// state and vm) to its JSON-RPC error. The order matters where sentinels
// wrap others (ErrCiphertextTooLarge wraps ErrOversize, ErrReplayedNonce
// wraps ErrBadNonce, ErrAlreadyAccepted is reported with ErrReplayedNonce).
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	msg := err.Error()
	code := CodeInternal
	switch {
	case errors.Is(err, vm.ErrNotInitialized), errors.Is(err, vm.ErrShutdown):
		code = CodeUnavailable
	case errors.Is(err, vm.ErrDiskFull):
		code = CodeDiskFull
	case errors.Is(err, vm.ErrWorkBusy):
		code = CodeBusy
	case errors.Is(err, mempool.ErrFull), errors.Is(err, mempool.ErrAuthorLimit):
		code = CodeMempoolFull
	case errors.Is(err, mempool.ErrDuplicate), errors.Is(err, vm.ErrAlreadyAccepted):
		code = CodeDuplicateTx
	case errors.Is(err, tx.ErrOversize):
		code = CodeTooLarge
	case errors.Is(err, tx.ErrBadSignature), errors.Is(err, tx.ErrWrongChainID):
		code = CodeBadSignature
	case errors.Is(err, tx.ErrBadNonce):
		code = CodeBadNonce
	case errors.Is(err, tx.ErrRateLimited):
		code = CodeRateLimited
	case errors.Is(err, tx.ErrBlocked), errors.Is(err, tx.ErrBanned), errors.Is(err, tx.ErrNotInvited),
		errors.Is(err, tx.ErrNotOwner), errors.Is(err, tx.ErrNotModerator), errors.Is(err, tx.ErrNotPostAuthor),
		errors.Is(err, tx.ErrTargetIsOwner), errors.Is(err, tx.ErrTargetIsModerator),
		errors.Is(err, tx.ErrNotCreator), errors.Is(err, tx.ErrRequestsClosed):
		code = CodeForbidden
	case errors.Is(err, tx.ErrUnknownPrekey), errors.Is(err, tx.ErrPrekeyClaimed), errors.Is(err, tx.ErrPrekeyReserved),
		errors.Is(err, tx.ErrSignedPrekey), errors.Is(err, tx.ErrPrekeyAvailable), errors.Is(err, tx.ErrStrangerClaim):
		code = CodePrekeyGone
	case errors.Is(err, tx.ErrUnregisteredAuthor), errors.Is(err, tx.ErrUnknownParticipant), errors.Is(err, tx.ErrUnknownMember):
		code = CodeUnknownIdentity
	case errors.Is(err, tx.ErrUnknownSession):
		code = CodeUnknownSession
	case errors.Is(err, tx.ErrUnknownChannel):
		code = CodeUnknownChannel
	case errors.Is(err, tx.ErrNotParticipant), errors.Is(err, tx.ErrNotMember),
		errors.Is(err, tx.ErrParticipantLeft), errors.Is(err, tx.ErrSessionNotAccepted):
		code = CodeNotParticipant
	case errors.Is(err, tx.ErrSessionClosed), errors.Is(err, tx.ErrSessionExpired):
		code = CodeSessionClosed
	case errors.Is(err, tx.ErrMaxMessages), errors.Is(err, tx.ErrMaxChannels), errors.Is(err, tx.ErrChannelFull),
		errors.Is(err, tx.ErrMaxContacts), errors.Is(err, tx.ErrTooManyInvites), errors.Is(err, tx.ErrTooManyPrekeys),
		errors.Is(err, tx.ErrMaxBlocked), errors.Is(err, tx.ErrMaxMemberships), errors.Is(err, tx.ErrTooManyRecords),
		errors.Is(err, tx.ErrClaimLimit), errors.Is(err, tx.ErrRequestFull):
		code = CodeLimitReached
	case errors.Is(err, tx.ErrDuplicateRegistration), errors.Is(err, tx.ErrSessionAlreadyExisting),
		errors.Is(err, tx.ErrChannelAlreadyExist), errors.Is(err, tx.ErrAlreadyMember),
		errors.Is(err, tx.ErrSessionAlreadyAccepted), errors.Is(err, tx.ErrAlreadyInvited),
		errors.Is(err, tx.ErrAlreadyBanned), errors.Is(err, tx.ErrAlreadyModerator), errors.Is(err, tx.ErrUnchanged):
		code = CodeAlreadyExists
	case tx.IsRefusal(err):
		code = CodeInvalidTx
	}
	return &Error{Code: code, Message: msg}
}
