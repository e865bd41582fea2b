package crypto

import (
	"sync"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// ML-DSA-65 sizes in bytes (FIPS 204).
const (
	DSAPublicKeySize = mldsa65.PublicKeySize  // 1952
	DSASecretKeySize = mldsa65.PrivateKeySize // 4032, expanded skEncode form
	DSASeedSize      = mldsa65.SeedSize       // 32, the seed ξ
	SignatureSize    = mldsa65.SignatureSize  // 3309

	// MaxContextSize is the longest ML-DSA context string (FIPS 204).
	MaxContextSize = 255
)

// DSAPublicKey is a parsed ML-DSA-65 public key.
type DSAPublicKey struct {
	pk    mldsa65.PublicKey
	bytes []byte
}

// DSASecretKey is a parsed ML-DSA-65 private key.
type DSASecretKey struct {
	sk         *mldsa65.PrivateKey
	publicOnce sync.Once
	public     *DSAPublicKey // computed on first use for keys parsed from skEncode
}

// ParseDSAPublicKey parses a 1952-byte ML-DSA-65 public key.
func ParseDSAPublicKey(b []byte) (*DSAPublicKey, error) {
	if len(b) != DSAPublicKeySize {
		return nil, ErrInvalidPublicKey
	}
	k := &DSAPublicKey{bytes: append([]byte(nil), b...)}
	err := k.pk.UnmarshalBinary(k.bytes)
	afterAVX()
	if err != nil {
		return nil, ErrInvalidPublicKey
	}
	return k, nil
}

// ParseDSASecretKey parses an ML-DSA-65 private key in either of its two
// forms: the 4032-byte expanded FIPS 204 skEncode form or the 32-byte seed ξ.
func ParseDSASecretKey(b []byte) (*DSASecretKey, error) {
	switch len(b) {
	case DSASeedSize:
		pk, sk := mldsa65.NewKeyFromSeed((*[DSASeedSize]byte)(b))
		afterAVX()
		// Keys made from a seed are consistent by construction.
		k := &DSASecretKey{sk: sk}
		k.publicOnce.Do(func() { k.public = &DSAPublicKey{pk: *pk, bytes: pk.Bytes()} })
		return k, nil
	case DSASecretKeySize:
		sk := new(mldsa65.PrivateKey)
		if err := sk.UnmarshalBinary(b); err != nil {
			return nil, ErrInvalidSecretKey
		}
		return &DSASecretKey{sk: sk}, nil
	default:
		return nil, ErrInvalidSecretKey
	}
}

// reparseDSAPublicKey re-parses the encoding of pk, so that every cached
// value (tr in particular) derives from the bytes the key reports. A public
// key computed from an expanded secret key would otherwise carry that
// secret key's tr, which may be corrupt.
func reparseDSAPublicKey(pk *mldsa65.PublicKey) *DSAPublicKey {
	k, err := ParseDSAPublicKey(pk.Bytes())
	if err != nil {
		panic("crypto: ML-DSA public key does not round-trip: " + err.Error()) // unreachable
	}
	return k
}

// Bytes returns the 1952-byte encoding of the key.
func (k *DSAPublicKey) Bytes() []byte { return append([]byte(nil), k.bytes...) }

// Verify reports whether sig is a valid ML-DSA-65 signature of msg with an
// empty context string.
func (k *DSAPublicKey) Verify(msg, sig []byte) bool {
	return k.VerifyContext(nil, msg, sig)
}

// VerifyContext reports whether sig is a valid ML-DSA-65 signature of msg
// under the given context string (at most 255 bytes).
func (k *DSAPublicKey) VerifyContext(context, msg, sig []byte) bool {
	if len(sig) != SignatureSize || len(context) > MaxContextSize {
		return false
	}
	ok := mldsa65.Verify(&k.pk, msg, context, sig)
	afterAVX()
	return ok
}

// Public returns the public key of k. For a key parsed from the expanded
// form the public key is recomputed (t1 from s1, s2 and A) on first use.
func (k *DSASecretKey) Public() *DSAPublicKey {
	k.publicOnce.Do(func() {
		k.public = reparseDSAPublicKey(k.sk.Public().(*mldsa65.PublicKey))
	})
	return k.public
}

// Bytes returns the 4032-byte expanded encoding of the key.
func (k *DSASecretKey) Bytes() []byte { return k.sk.Bytes() }

// Sign returns a hedged (randomized) ML-DSA-65 signature of msg with an
// empty context string: FIPS 204 ML-DSA.Sign, not the pre-hash variant.
func (k *DSASecretKey) Sign(msg []byte) ([]byte, error) {
	return k.SignContext(nil, msg)
}

// SignContext is Sign with a context string of at most 255 bytes, which
// separates the signatures of one protocol from those of another.
func (k *DSASecretKey) SignContext(context, msg []byte) ([]byte, error) {
	return k.sign(context, msg, true)
}

func (k *DSASecretKey) sign(context, msg []byte, randomized bool) ([]byte, error) {
	sig := make([]byte, SignatureSize)
	if err := k.signTo(sig, context, msg, randomized); err != nil {
		return nil, err
	}
	return sig, nil
}

// signTo writes the signature into sig (SignatureSize bytes).
func (k *DSASecretKey) signTo(sig, context, msg []byte, randomized bool) error {
	if len(context) > MaxContextSize {
		return ErrInvalidSignature
	}
	err := mldsa65.SignTo(k.sk, msg, context, randomized, sig)
	afterAVX()
	return err
}

func cachedDSAPublicKey(b []byte) (*DSAPublicKey, error) {
	if k, ok := dsaPublicCache.get(b); ok {
		return k, nil
	}
	k, err := ParseDSAPublicKey(b)
	if err != nil {
		return nil, err
	}
	dsaPublicCache.put(b, k)
	return k, nil
}

func cachedDSASecretKey(b []byte) (*DSASecretKey, error) {
	if k, ok := dsaSecretCache.get(b); ok {
		return k, nil
	}
	k, err := ParseDSASecretKey(b)
	if err != nil {
		return nil, err
	}
	dsaSecretCache.put(b, k)
	return k, nil
}

// Sign signs msg with the ML-DSA-65 secret key sk (4032-byte expanded form
// or 32-byte seed): pure ML-DSA-65, empty context, hedged.
func Sign(sk, msg []byte) ([]byte, error) {
	return SignContext(sk, nil, msg)
}

// SignContext is Sign with a context string of at most 255 bytes.
func SignContext(sk, context, msg []byte) ([]byte, error) {
	k, err := cachedDSASecretKey(sk)
	if err != nil {
		return nil, err
	}
	return k.SignContext(context, msg)
}

// Verify reports whether sig is a valid ML-DSA-65 signature of msg (empty
// context) under the 1952-byte public key pk. Malformed inputs give false.
func Verify(pk, msg, sig []byte) bool {
	return VerifyContext(pk, nil, msg, sig)
}

// VerifyContext is Verify with a context string.
func VerifyContext(pk, context, msg, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	k, err := cachedDSAPublicKey(pk)
	if err != nil {
		return false
	}
	return k.VerifyContext(context, msg, sig)
}
