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
	// ErrRegistrationNonce refuses a registration whose nonce is not 0
	// (it wraps ErrBadNonce).
	ErrRegistrationNonce = wrap(ErrBadNonce, "a registration's nonce must be 0")

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
	ErrNotCreator             = errors.New("only the creator may close a group session (the others leave it)")
	ErrRequestFull            = errors.New("a message request takes at most 8 messages until a participant accepts it")

	// Channels.
	ErrUnknownChannel      = errors.New("unknown channel")
	ErrInvalidChannelName  = errors.New("invalid channel name")
	ErrMaxChannels         = errors.New("identity owns maxChannels channels")
	ErrChannelFull         = errors.New("channel reached its member limit")
	ErrAlreadyMember       = errors.New("already a member of the channel")
	ErrNotMember           = errors.New("author is not a member of the channel")
	ErrOwnerCannotLeave    = errors.New("the owner cannot leave its channel")
	ErrChannelAlreadyExist = errors.New("channel already exists")
	ErrMaxMemberships      = errors.New("identity belongs to the most channels it may join")

	// Registration work and rate limits.
	ErrInsufficientWork = errors.New("registration proof of work does not meet the chain's difficulty")
	ErrAnchor           = errors.New("registration anchor is not a block of the last anchorWindow blocks (solve the work again on a recent block)")
	ErrRateLimited      = errors.New("rate limit reached")
	// ErrSlowMode refuses a post inside the channel's slow mode (it wraps
	// ErrRateLimited).
	ErrSlowMode = wrap(ErrRateLimited, "the channel's slow mode allows one post per interval")

	// Consent.
	ErrBlocked                = errors.New("a participant has blocked the author")
	ErrSessionAlreadyAccepted = errors.New("session already accepted by the author")
	ErrSessionNotAccepted     = errors.New("the author has not accepted the session (accept it, or decline it)")
	ErrParticipantLeft        = errors.New("the participant has left the session")
	ErrInvalidDecision        = errors.New("invalid session decision")
	ErrSelfContact            = errors.New("an identity cannot set a contact status for itself")
	ErrInvalidContactStatus   = errors.New("invalid contact status")
	ErrMaxContacts            = errors.New("identity reached its contact limit")
	ErrMaxBlocked             = errors.New("identity reached its block limit (SetRequestPolicy closes requests to every stranger)")
	ErrUnchanged              = errors.New("the status or policy is already the one given")
	ErrRequestsClosed         = errors.New("a participant accepts message requests from its contacts only")
	ErrInvalidRequestPolicy   = errors.New("invalid request policy")

	// Channel roles and moderation.
	ErrInvalidJoinPolicy       = errors.New("invalid join policy")
	ErrInvalidModerationAction = errors.New("invalid moderation action")
	ErrNotOwner                = errors.New("only the channel's owner may do this")
	ErrNotModerator            = errors.New("only the channel's owner or a moderator may do this")
	ErrBanned                  = errors.New("identity is banned from the channel")
	ErrNotInvited              = errors.New("identity holds no invite to the channel")
	ErrAlreadyInvited          = errors.New("identity already holds an invite to the channel")
	ErrTooManyInvites          = errors.New("channel reached its invite limit")
	ErrAlreadyBanned           = errors.New("identity is already banned from the channel")
	ErrNotBanned               = errors.New("identity is not banned from the channel")
	ErrAlreadyModerator        = errors.New("member is already a moderator")
	ErrNotAModerator           = errors.New("member is not a moderator")
	ErrTargetIsOwner           = errors.New("the channel's owner cannot be moderated")
	ErrTargetIsModerator       = errors.New("only the owner may act on a moderator")
	ErrUnknownMember           = errors.New("member is not a registered identity")
	ErrUnknownPost             = errors.New("no such post")
	ErrNotPostAuthor           = errors.New("only the post's author, a moderator or the owner may delete it")
	ErrDuplicateItem           = errors.New("an item is listed twice")
	ErrTooManyRecords          = errors.New("the channel's owner holds the most invites and bans it may")
	ErrInvalidSlowMode         = errors.New("invalid slow mode (at most 86400 seconds)")

	// Prekeys and claims.
	ErrNoPrekeys       = errors.New("publishPrekeys carries no prekey")
	ErrTooManyPrekeys  = errors.New("too many one-time prekeys")
	ErrInvalidPrekey   = errors.New("invalid prekey (not an ML-KEM-768 encapsulation key)")
	ErrInvalidPrekeyID = errors.New("invalid prekey ID (must be at least 1)")
	ErrPrekeyIDOrder   = errors.New("prekey IDs must increase (an ID is never reused)")
	ErrPrekeyExpiry    = errors.New("signed prekey expiry must lie after the block time and at most 30 days after it")
	ErrUnknownPrekey   = errors.New("no such one-time prekey (above the highest published)")
	ErrPrekeyClaimed   = errors.New("one-time prekey not available (claimed, retired or never published)")
	ErrPrekeyReserved  = errors.New("the remaining one-time prekeys are reserved for the identity's contacts")
	ErrDuplicateClaim  = errors.New("a participant is claimed from twice in one transaction")
	ErrClaimLimit      = errors.New("this pair made the most claims it may in the session")
	ErrSignedPrekey    = errors.New("the claim does not name the participant's current signed prekey or its unexpired predecessor")
	ErrPrekeyAvailable = errors.New("a one-time prekey of the participant is claimable by this claimer: claim it (fetch the prekey bundle again)")
	ErrStrangerClaim   = errors.New("a stranger claims a one-time prekey only in its first request to the identity, or in a session the identity accepted")
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
	ErrInsufficientWork, ErrRateLimited,
	ErrBlocked, ErrSessionAlreadyAccepted, ErrSessionNotAccepted, ErrParticipantLeft, ErrInvalidDecision,
	ErrSelfContact, ErrInvalidContactStatus, ErrMaxContacts, ErrMaxBlocked, ErrUnchanged, ErrRequestsClosed,
	ErrInvalidRequestPolicy, ErrNotCreator, ErrRequestFull, ErrMaxMemberships, ErrAnchor,
	ErrTooManyRecords, ErrInvalidSlowMode,
	ErrInvalidJoinPolicy, ErrInvalidModerationAction, ErrNotOwner, ErrNotModerator, ErrBanned, ErrNotInvited,
	ErrAlreadyInvited, ErrTooManyInvites, ErrAlreadyBanned, ErrNotBanned, ErrAlreadyModerator, ErrNotAModerator,
	ErrTargetIsOwner, ErrTargetIsModerator, ErrUnknownMember, ErrUnknownPost, ErrNotPostAuthor, ErrDuplicateItem,
	ErrNoPrekeys, ErrTooManyPrekeys, ErrInvalidPrekey, ErrInvalidPrekeyID, ErrPrekeyIDOrder, ErrPrekeyExpiry,
	ErrUnknownPrekey, ErrPrekeyClaimed, ErrPrekeyReserved, ErrDuplicateClaim, ErrClaimLimit,
	ErrSignedPrekey, ErrPrekeyAvailable, ErrStrangerClaim,
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
