package crypto

import "errors"

// Sentinel errors. Every error returned by this package matches one of these
// with errors.Is (except I/O errors from Save and LoadIdentity, which wrap
// the underlying *fs.PathError). Error messages never contain key material.
var (
	ErrInvalidPublicKey  = errors.New("invalid public key")
	ErrInvalidSecretKey  = errors.New("invalid secret key")
	ErrInvalidSignature  = errors.New("invalid signature")
	ErrInvalidCiphertext = errors.New("invalid ciphertext")
	ErrDecryptionFailed  = errors.New("decryption failed")

	// ErrInvalidSessionID reports a Session ID that is not "07" or "05"
	// followed by 64 lowercase hexadecimal characters.
	ErrInvalidSessionID = errors.New("invalid session ID")
	// ErrInvalidEnvelope reports a Seal envelope that cannot be parsed.
	ErrInvalidEnvelope = errors.New("invalid envelope")
	// ErrNotRecipient reports that no stanza of an envelope opens with the
	// given identity's key.
	ErrNotRecipient = errors.New("not a recipient of this envelope")
	// ErrWrongPassphrase reports that an identity file did not open with the
	// passphrase given (or was modified).
	ErrWrongPassphrase = errors.New("wrong passphrase or corrupted identity file")
	// ErrInvalidIdentityFile reports an identity file that cannot be parsed.
	ErrInvalidIdentityFile = errors.New("invalid identity file")
)
