package chat

import (
	"errors"

	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/limit"
)

// The bounds of the protocol (docs/protocol.md, section 9). Each bound that
// a caller can reach has its own error below.
const (
	// MaxParticipants is the most participants of a session (the chain's
	// bound): a message has at most MaxParticipants-1 stanzas.
	MaxParticipants = limit.MaxParticipants
	// MaxEnvelopeSize is the most bytes of an envelope: the chain's bound on
	// a SendMessage ciphertext. Every envelope Send makes fits.
	MaxEnvelopeSize = limit.MaxEnvelopeSize
	// MaxPlaintextSize is the most bytes of a message's plaintext
	// (ErrPlaintextTooLarge). With it, a message that steps every pair of a
	// 32-participant session still fits MaxEnvelopeSize.
	MaxPlaintextSize = limit.MaxPlaintextSize
	// MaxChainMessages is the most messages of one sending chain: a sender
	// starts a new chain (an asymmetric step) at least every
	// MaxChainMessages messages, even if its peer never answers.
	MaxChainMessages = limit.MaxChainMessages
	// MaxChainAge bounds the age of a sending chain: the first message sent
	// MaxChainAge or more after a chain started starts a new one.
	MaxChainAge = limit.MaxChainAge
	// MaxSkip is the most message keys (or slots) one message may skip
	// (ErrTooManySkipped).
	MaxSkip = limit.MaxSkip
	// MaxSkippedKeys bounds the skipped keys kept per pair; the pair's
	// oldest go first, and other pairs are not touched.
	MaxSkippedKeys = limit.MaxSkippedKeys
	// MaxSkipAge is how long skipped keys, superseded ratchet keys and idle
	// trees are kept.
	MaxSkipAge = limit.MaxSkipAge
	// MaxOwnChains bounds the ratchet keys a participant keeps per pair for
	// its peer to answer to; an answer to an older one fails with
	// ErrUnknownTarget.
	MaxOwnChains = limit.MaxOwnChains
	// MaxPeerChains bounds the peer's chains kept per pair.
	MaxPeerChains = limit.MaxPeerChains
	// MaxTrees bounds the trees (handshakes) whose state is kept per pair:
	// as many as the chain allows a pair in a session (two directions of
	// MaxHandshakesPerPeer), so only a misbehaving pair loses a tree to it.
	MaxTrees = limit.MaxTrees
	// MaxHandshakes bounds the trees a pair knows over the session's life,
	// their tombstones included (ErrTooManyHandshakes).
	MaxHandshakes = limit.MaxHandshakes
	// MaxHandshakesPerPeer is the most handshakes this device makes with
	// one participant in one session: the chain's bound on claims per pair
	// (ErrTooManyHandshakes). A pair that needs more needs a new session.
	MaxHandshakesPerPeer = limit.MaxHandshakesPerPeer
	// MaxOutbox bounds the envelopes waiting in a session's outbox
	// (ErrOutboxFull): confirm (or abandon) sent ones.
	MaxOutbox = limit.MaxOutbox
	// MaxOneTimePrekeys bounds the one-time prekey secrets a device holds
	// that no claim was noted for (ErrTooManyPrekeys).
	MaxOneTimePrekeys = limit.MaxOneTimePrekeys
	// MaxClaimedPrekeys bounds the claimed one-time prekey secrets held
	// until their handshake or deadline; the earliest deadlines go first.
	MaxClaimedPrekeys = limit.MaxClaimedPrekeys
	// MaxPrekeysPerUpload is the most one-time prekeys of one
	// PublishPrekeys transaction (the chain's bound, ErrTooManyPrekeys).
	MaxPrekeysPerUpload = limit.MaxPrekeysPerUpload
	// SignedPrekeyLifetime is how long after generation a signed prekey
	// expires.
	SignedPrekeyLifetime = limit.SignedPrekeyLifetime
	// SignedPrekeyGrace is how long after its expiry a signed prekey's
	// secret is kept for handshakes still in flight; then it is deleted.
	SignedPrekeyGrace = limit.SignedPrekeyGrace
)

// Limit errors.
var (
	// ErrTooManyParticipants reports a session of more than MaxParticipants.
	ErrTooManyParticipants = errors.New("too many participants")
	// ErrPlaintextTooLarge reports a plaintext over MaxPlaintextSize.
	ErrPlaintextTooLarge = errs.ErrPlaintextTooLarge
	// ErrTooManySkipped reports a message that would skip more than MaxSkip
	// keys.
	ErrTooManySkipped = errs.ErrTooManySkipped
	// ErrOutboxFull reports a Send that would put more than MaxOutbox
	// envelopes in the outbox.
	ErrOutboxFull = errs.ErrOutboxFull
	// ErrTooManyPrekeys reports a request for more one-time prekeys than
	// MaxPrekeysPerUpload, or more than MaxOneTimePrekeys held.
	ErrTooManyPrekeys = errs.ErrTooManyPrekeys
	// ErrEnvelopeTooLarge reports an envelope over MaxEnvelopeSize.
	ErrEnvelopeTooLarge = errs.ErrEnvelopeTooLarge
	// ErrTooManyHandshakes reports a pair beyond MaxHandshakes trees, or a
	// Send that would make more than MaxHandshakesPerPeer handshakes with a
	// participant in the session (exclude it, or create a new session).
	ErrTooManyHandshakes = errs.ErrTooManyHandshakes
)
