package chat

import (
	"errors"

	"github.com/luxfi/session/chat/internal/errs"
)

// Errors. Every error this package returns matches one of these (or one of
// the limit errors in limits.go, or ErrNotFound and the store's I/O errors)
// with errors.Is. Messages never contain key material or plaintext.
var (
	// ErrMalformed reports bytes that are not a well-formed version 1
	// envelope, or an envelope that does not fit the session (its stanza
	// count is not the number of participants minus one), or a state
	// record that fails to parse (see ErrCorruptState).
	ErrMalformed = errs.ErrMalformed
	// ErrDecryptionFailed reports an envelope whose stanza or body does not
	// decrypt: it was altered, made for another session, or made with keys
	// this participant does not share with the sender.
	ErrDecryptionFailed = errs.ErrDecryptionFailed
	// ErrInvalidSignature reports a body whose ML-DSA-65 signature does not
	// verify under the sender's key.
	ErrInvalidSignature = errs.ErrInvalidSignature
	// ErrWrongSender reports an envelope whose sender is not the author of
	// the transaction that carried it.
	ErrWrongSender = errs.ErrWrongSender
	// ErrReplay reports an envelope, or a key or tree in it, that was
	// already used or deleted: a replayed message.
	ErrReplay = errs.ErrReplay
	// ErrDuplicate reports a message already received in another envelope
	// (its sender sent it again after a transaction that then landed after
	// all). Its ratchet effects were applied; there is nothing new to show.
	ErrDuplicate = errs.ErrDuplicate
	// ErrNotFromThisDevice reports an envelope of this device's identity
	// that this device did not make: the device it replaced (expected while
	// a restored device synchronises), or someone holding the identity's
	// signing key. Once an own envelope of this device has landed in the
	// session, treat it as an alarm: the identity is in use elsewhere.
	ErrNotFromThisDevice = errs.ErrNotFromThisDevice
	// ErrChainNotStarted reports a message of a chain whose first message
	// has not been opened here: deliver earlier messages, then retry. If
	// the first message is lost, so is the message.
	ErrChainNotStarted = errs.ErrChainNotStarted
	// ErrUnknownTree reports a message in a tree (a handshake) this device
	// never received or could not open: the handshake is late, was lost, or
	// was sent to a device this identity no longer has. The next Send
	// re-initiates with the sender once the handshake cannot merely be late
	// (docs/protocol.md, section 10.3).
	ErrUnknownTree = errs.ErrUnknownTree
	// ErrUnknownTarget reports a message started against a ratchet key this
	// device no longer holds (deleted by the bounds of limits.go, or never
	// held: a lost device). Conversation.Reset re-initiates the pair.
	ErrUnknownTarget = errs.ErrUnknownTarget
	// ErrUnknownPrekey reports a handshake to a prekey this device does not
	// hold (used, expired and deleted, or published by a lost device).
	ErrUnknownPrekey = errs.ErrUnknownPrekey
	// ErrUnclaimedPrekey reports a handshake that does not match exactly
	// one claim of its transaction for this participant (or, for the
	// creator's first handshake, its unused session claim): its signed or
	// one-time prekey ID differs from what the chain recorded.
	ErrUnclaimedPrekey = errs.ErrUnclaimedPrekey
	// ErrNotAddressed reports an envelope that carries nothing for this
	// participant (a setup message for others, or a message its sender
	// excluded it from). It is not an attack; skip the envelope.
	ErrNotAddressed = errs.ErrNotAddressed
	// ErrCorruptState reports a stored record that does not parse, or has
	// an unknown version.
	ErrCorruptState = errs.ErrCorruptState

	// ErrInvalidSession reports session information that cannot be right:
	// wrong participant count, an invalid or duplicate identity, this
	// device's identity missing, another chain, claims of the wrong length.
	ErrInvalidSession = errors.New("invalid session")
	// ErrSessionMismatch reports session information that differs from what
	// this device stored for the same session ID.
	ErrSessionMismatch = errors.New("session differs from the stored one")
	// ErrInvalidBundle reports a prekey bundle that does not belong to the
	// participant, has bad keys or IDs, or an expired signed prekey.
	ErrInvalidBundle = errors.New("invalid prekey bundle")
	// ErrNoBundle reports that a handshake is needed with a participant and
	// no directory (or no bundle) was given for it.
	ErrNoBundle = errors.New("no prekey bundle for a participant that needs a handshake")
	// ErrHandshakePending reports a reset asked while this device's last
	// handshake with the participant has not landed yet.
	ErrHandshakePending = errors.New("handshake not yet seen on chain")
	// ErrNotInOutbox reports a message ID that is not in the outbox.
	ErrNotInOutbox = errors.New("message not in the outbox")
	// ErrNotFound reports a record the store does not have.
	ErrNotFound = errors.New("record not found")
	// ErrWrongPassphrase reports a file store that did not open with the
	// passphrase given, or whose key file was modified.
	ErrWrongPassphrase = errors.New("wrong passphrase or corrupted store key file")
	// ErrStoreLocked reports a file store another process has open.
	ErrStoreLocked = errors.New("store is in use by another process")
)
