package crypto

import (
	"crypto/rand"

	"golang.org/x/crypto/chacha20poly1305"
)

// XChaCha20-Poly1305 sizes in bytes.
const (
	KeySize   = chacha20poly1305.KeySize    // 32
	NonceSize = chacha20poly1305.NonceSizeX // 24
	TagSize   = chacha20poly1305.Overhead   // 16

	// RecipientOverhead is how much EncryptToRecipient adds to a plaintext.
	RecipientOverhead = KEMCiphertextSize + NonceSize + TagSize // 1128
)

// Encrypt seals plaintext with XChaCha20-Poly1305 under a 32-byte key and a
// random 24-byte nonce, with no associated data. The result is
// nonce || ciphertext || tag.
func Encrypt(key, plaintext []byte) ([]byte, error) {
	return EncryptAppend(nil, key, plaintext)
}

// EncryptAppend is Encrypt that appends nonce || ciphertext || tag to dst
// and returns the extended slice, as cipher.AEAD.Seal does: a caller that
// passes a buffer with enough capacity (len(plaintext) + NonceSize +
// TagSize spare) encrypts without allocating. dst must not overlap
// plaintext.
func EncryptAppend(dst, key, plaintext []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, ErrInvalidSecretKey
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, ErrInvalidSecretKey
	}
	n := len(dst)
	out := grow(dst, NonceSize+len(plaintext)+TagSize)
	nonce := out[n : n+NonceSize]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out[:n+NonceSize], nonce, plaintext, nil), nil
}

// grow returns dst with room for n more bytes, reusing its array when the
// capacity allows.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	out := make([]byte, len(dst), len(dst)+n)
	copy(out, dst)
	return out
}

// Decrypt opens the output of Encrypt. A ciphertext shorter than the nonce
// gives ErrInvalidCiphertext; any other failure gives ErrDecryptionFailed.
func Decrypt(key, ciphertext []byte) ([]byte, error) {
	return DecryptAppend(nil, key, ciphertext)
}

// DecryptAppend is Decrypt that appends the plaintext to dst and returns
// the extended slice, as cipher.AEAD.Open does. On error it returns nil, and
// the spare capacity of dst may have been overwritten. dst must not overlap
// ciphertext.
func DecryptAppend(dst, key, ciphertext []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, ErrInvalidSecretKey
	}
	if len(ciphertext) < NonceSize {
		return nil, ErrInvalidCiphertext
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, ErrInvalidSecretKey
	}
	out, err := aead.Open(dst, ciphertext[:NonceSize], ciphertext[NonceSize:], nil)
	if err != nil {
		return nil, ErrDecryptionFailed
	}
	return out, nil
}

// EncryptToRecipient encrypts plaintext to the holder of the ML-KEM-768
// secret key that belongs to pk, in the reference wire format:
//
//	KEM ciphertext (1088) || nonce (24) || XChaCha20-Poly1305 ciphertext || tag (16)
//
// The AEAD key is the ML-KEM shared secret and there is no associated data.
// This format is kept for interoperability with the reference
// implementation. It is anonymous: nothing authenticates the sender, and
// anyone who knows pk can produce a valid envelope. New protocol messages
// use Seal, which authenticates the sender and binds the key to its context.
func EncryptToRecipient(pk, plaintext []byte) ([]byte, error) {
	k, err := cachedKEMPublicKey(pk)
	if err != nil {
		return nil, err
	}
	return k.encryptToRecipient(plaintext)
}

func (k *KEMPublicKey) encryptToRecipient(plaintext []byte) ([]byte, error) {
	// One allocation: the ciphertext, nonce and sealed plaintext are written
	// in place; the shared secret stays on the stack.
	out := make([]byte, KEMCiphertextSize+NonceSize, RecipientOverhead+len(plaintext))
	var ss [KEMSharedSecretSize]byte
	k.pk.EncapsulateTo(out[:KEMCiphertextSize], ss[:], nil)
	afterAVX()
	nonce := out[KEMCiphertextSize:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	aead, _ := chacha20poly1305.NewX(ss[:])
	clear(ss[:])
	return aead.Seal(out, nonce, plaintext, nil), nil
}

// DecryptFromSender opens an envelope made by EncryptToRecipient with the
// recipient's ML-KEM-768 secret key (2400-byte expanded form or 64-byte
// seed). Inputs shorter than a KEM ciphertext plus a nonce give
// ErrInvalidCiphertext; a wrong key or any modification gives
// ErrDecryptionFailed.
func DecryptFromSender(sk, envelope []byte) ([]byte, error) {
	k, err := cachedKEMSecretKey(sk)
	if err != nil {
		return nil, err
	}
	return k.decryptFromSender(envelope)
}

func (k *KEMSecretKey) decryptFromSender(envelope []byte) ([]byte, error) {
	if len(envelope) < KEMCiphertextSize {
		return nil, ErrInvalidCiphertext
	}
	var ss [KEMSharedSecretSize]byte
	k.sk.DecapsulateTo(ss[:], envelope[:KEMCiphertextSize])
	afterAVX()
	pt, err := Decrypt(ss[:], envelope[KEMCiphertextSize:])
	clear(ss[:])
	return pt, err
}
