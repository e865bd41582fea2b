package tx

import (
	"errors"

	"github.com/luxfi/session/state/codec"
)

// Every refusal of a transaction, at decoding, at mempool admission or in a
// block, matches one of these sentinels with errors.Is. Messages never
// contain key material.
var (
	// Encoding.
	ErrMalformed          = errors.New("malformed transaction")
	ErrOversize           = codec.ErrOversize // a field or the transaction is too large
	ErrUnsupportedVersion = errors.New("unsupported transaction version")
	ErrUnknownType        = errors.New("unknown transaction type")

	// Authentication and replay protection.
	ErrWrongChainID = errors.New("transaction is for another chain")
	ErrBadSignature = errors.New("invalid transaction signature")
	ErrBadNonce     = errors.New("wrong nonce")
	// ErrReplayedNonce and ErrSkippedNonce wrap ErrBadNonce.
	ErrReplayedNonce = wrap(ErrBadNonce, "nonce already used")
	ErrSkippedNonce  = wrap(ErrBadNonce, "nonce skips ahead")

	// Identities.
	ErrInvalidSessionID      = errors.New("invalid Session ID")
	ErrInvalidPublicKey      = errors.New("invalid public key")
	ErrSessionIDMismatch     = errors.New("the Session ID does not derive from the public keys")
	ErrUnregisteredAuthor    = errors.New("author is not a registered identity")
	ErrDuplicateRegistration = errors.New("identity already registered")

	// Sessions.
	ErrUnknownSession         = errors.New("unknown session")
	ErrUnknownParticipant     = errors.New("participant is not a registered identity")
	ErrNoParticipants         = errors.New("session needs at least one participant besides the creator")
	ErrTooManyParticipants    = errors.New("too many participants")
	ErrDuplicateParticipant   = errors.New("participant listed twice (or the creator listed)")
	ErrMetadataTooLarge       = wrap(ErrOversize, "metadata too large")
	ErrNotParticipant         = errors.New("author is not a participant of the session")
	ErrSessionClosed          = errors.New("session is closed")
	ErrSessionExpired         = errors.New("session has expired")
	ErrMaxMessages            = errors.New("session or channel reached maxMessages")
	ErrEmptyCiphertext        = errors.New("empty ciphertext")
	ErrCiphertextTooLarge     = wrap(ErrOversize, "ciphertext too large")
	ErrSessionAlreadyExisting = errors.New("session already exists")

	// Channels.
	ErrUnknownChannel      = errors.New("unknown channel")
	ErrInvalidChannelName  = errors.New("invalid channel name")
	ErrMaxChannels         = errors.New("chain reached maxChannels")
	ErrChannelFull         = errors.New("channel reached its member limit")
	ErrAlreadyMember       = errors.New("already a member of the channel")
	ErrNotMember           = errors.New("author is not a member of the channel")
	ErrOwnerCannotLeave    = errors.New("the owner cannot leave its channel")
	ErrChannelAlreadyExist = errors.New("channel already exists")
)

type wrapped struct {
	parent error
	msg    string
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.parent }

func wrap(parent error, msg string) error { return &wrapped{parent: parent, msg: msg} }

var refusals = []error{
	ErrMalformed, ErrOversize, ErrUnsupportedVersion, ErrUnknownType,
	ErrWrongChainID, ErrBadSignature, ErrBadNonce,
	ErrInvalidSessionID, ErrInvalidPublicKey, ErrSessionIDMismatch, ErrUnregisteredAuthor, ErrDuplicateRegistration,
	ErrUnknownSession, ErrUnknownParticipant, ErrNoParticipants, ErrTooManyParticipants, ErrDuplicateParticipant,
	ErrNotParticipant, ErrSessionClosed, ErrSessionExpired, ErrMaxMessages, ErrEmptyCiphertext, ErrSessionAlreadyExisting,
	ErrUnknownChannel, ErrInvalidChannelName, ErrMaxChannels, ErrChannelFull, ErrAlreadyMember, ErrNotMember,
	ErrOwnerCannotLeave, ErrChannelAlreadyExist,
}

// IsRefusal reports whether err is a refusal of a transaction (one of the
// sentinels above) rather than, say, a database failure.
func IsRefusal(err error) bool {
	for _, r := range refusals {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}
