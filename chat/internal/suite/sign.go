package suite

import (
	"errors"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/chacha20poly1305"
)

// ErrDSAKey reports an ML-DSA key of the wrong length.
var ErrDSAKey = errors.New("suite: invalid ML-DSA-65 key")

// Signer signs with ML-DSA-65 under the protocol's context string.
type Signer struct {
	sk *mldsa65.PrivateKey
	// Deterministic makes signatures use rnd = 0^32 (known-answer tests
	// only); otherwise they are hedged with fresh randomness.
	Deterministic bool
}

// NewSigner parses an ML-DSA-65 secret key, 4032-byte expanded or 32-byte seed.
func NewSigner(b []byte, deterministic bool) (*Signer, error) {
	sk := new(mldsa65.PrivateKey)
	switch len(b) {
	case mldsa65.PrivateKeySize:
		if err := sk.UnmarshalBinary(b); err != nil {
			return nil, ErrDSAKey
		}
	case mldsa65.SeedSize:
		var seed [mldsa65.SeedSize]byte
		copy(seed[:], b)
		_, sk = mldsa65.NewKeyFromSeed(&seed)
	default:
		return nil, ErrDSAKey
	}
	return &Signer{sk: sk, Deterministic: deterministic}, nil
}

// Sign returns the signature of msg with context "luxfi/session/v1/chat".
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	sig := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(s.sk, msg, []byte(SignContext), !s.Deterministic, sig); err != nil {
		return nil, err
	}
	return sig, nil
}

// SignTo writes the signature of msg into sig (SignatureSize bytes), as Sign.
func (s *Signer) SignTo(sig, msg []byte) error {
	if len(sig) != SignatureSize {
		return ErrDSAKey
	}
	return mldsa65.SignTo(s.sk, msg, []byte(SignContext), !s.Deterministic, sig)
}

// Verifier is a parsed ML-DSA-65 public key.
type Verifier struct{ pk mldsa65.PublicKey }

// NewVerifier parses a 1952-byte ML-DSA-65 public key.
func NewVerifier(b []byte) (*Verifier, error) {
	v := new(Verifier)
	if len(b) != DSAPublicKeySize {
		return nil, ErrDSAKey
	}
	if err := v.pk.UnmarshalBinary(b); err != nil {
		return nil, ErrDSAKey
	}
	return v, nil
}

// Verify checks sig over msg with context "luxfi/session/v1/chat".
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	return mldsa65.Verify(&v.pk, msg, []byte(SignContext), sig)
}

var (
	zeroNonce  [chacha20poly1305.NonceSize]byte
	zeroNonceX [chacha20poly1305.NonceSizeX]byte
)

// Wrap encrypts the 32-byte content key under the single-use wrap key with
// ChaCha20-Poly1305 and a zero nonce, appending the 48 bytes to dst.
func Wrap(dst []byte, wk *[KeySize]byte, ck *[KeySize]byte, ad []byte) []byte {
	aead, _ := chacha20poly1305.New(wk[:])
	return aead.Seal(dst, zeroNonce[:], ck[:], ad)
}

// Unwrap reverses Wrap.
func Unwrap(wk *[KeySize]byte, wrapped, ad []byte) (ck [KeySize]byte, err error) {
	if len(wrapped) != WrappedSize {
		return ck, ErrAuth
	}
	aead, _ := chacha20poly1305.New(wk[:])
	if _, err := aead.Open(ck[:0], zeroNonce[:], wrapped, ad); err != nil {
		return [KeySize]byte{}, ErrAuth
	}
	return ck, nil
}

// SealBody encrypts the body under the single-use content key with
// XChaCha20-Poly1305 and a zero nonce, appending to dst. The body may be
// encrypted in place: plaintext = dst[len(dst):len(dst)+n], with room for
// the tag in its capacity.
func SealBody(dst []byte, ck *[KeySize]byte, plaintext, ad []byte) []byte {
	aead, _ := chacha20poly1305.NewX(ck[:])
	return aead.Seal(dst, zeroNonceX[:], plaintext, ad)
}

// OpenBody reverses SealBody.
func OpenBody(ck *[KeySize]byte, body, ad []byte) ([]byte, error) {
	aead, _ := chacha20poly1305.NewX(ck[:])
	out, err := aead.Open(nil, zeroNonceX[:], body, ad)
	if err != nil {
		return nil, ErrAuth
	}
	return out, nil
}
