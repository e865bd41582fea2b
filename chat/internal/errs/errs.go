// Package errs holds the sentinel errors shared by package chat and its
// internal packages; chat/errors.go re-exports them with their documentation.
package errs

import "errors"

// Sentinels (see chat/errors.go and chat/limits.go).
var (
	ErrMalformed         = errors.New("malformed envelope")
	ErrDecryptionFailed  = errors.New("decryption failed")
	ErrInvalidSignature  = errors.New("invalid signature")
	ErrWrongSender       = errors.New("envelope sender is not the transaction's author")
	ErrReplay            = errors.New("replayed message")
	ErrDuplicate         = errors.New("duplicate of a message already received")
	ErrNotFromThisDevice = errors.New("an envelope of this identity that this device did not make")
	ErrTooManyHandshakes = errors.New("too many handshakes in the pair")
	ErrChainNotStarted   = errors.New("the message's chain has not been started here yet")
	ErrUnknownTree       = errors.New("the message belongs to a handshake this device never received")
	ErrUnknownTarget     = errors.New("the message was started against a ratchet key this device no longer holds")
	ErrUnknownPrekey     = errors.New("the handshake names a prekey this device does not hold")
	ErrUnclaimedPrekey   = errors.New("the handshake uses a one-time prekey not claimed on chain for it")
	ErrNotAddressed      = errors.New("the envelope carries nothing for this participant")
	ErrTooManySkipped    = errors.New("the message skips more keys than allowed")
	ErrPlaintextTooLarge = errors.New("plaintext too large")
	ErrOutboxFull        = errors.New("outbox full")
	ErrTooManyPrekeys    = errors.New("too many prekeys")
	ErrEnvelopeTooLarge  = errors.New("envelope too large")
	ErrCorruptState      = errors.New("corrupt or unsupported state record")
)
