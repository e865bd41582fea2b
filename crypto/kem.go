package crypto

import (
	"io"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
)

// ML-KEM-768 sizes in bytes (FIPS 203).
const (
	KEMPublicKeySize    = mlkem768.PublicKeySize  // 1184, encapsulation key ek
	KEMSecretKeySize    = mlkem768.PrivateKeySize // 2400, expanded decapsulation key dk
	KEMSeedSize         = mlkem768.KeySeedSize    // 64, the seed d || z
	KEMCiphertextSize   = mlkem768.CiphertextSize // 1088
	KEMSharedSecretSize = mlkem768.SharedKeySize  // 32
)

// KEMPublicKey is a parsed ML-KEM-768 encapsulation key.
type KEMPublicKey struct {
	pk    mlkem768.PublicKey
	bytes []byte
}

// KEMSecretKey is a parsed ML-KEM-768 decapsulation key.
type KEMSecretKey struct {
	sk     *mlkem768.PrivateKey
	public *KEMPublicKey
}

// ParseKEMPublicKey parses a 1184-byte ML-KEM-768 encapsulation key,
// including the FIPS 203 modulus check.
func ParseKEMPublicKey(b []byte) (*KEMPublicKey, error) {
	if len(b) != KEMPublicKeySize {
		return nil, ErrInvalidPublicKey
	}
	k := &KEMPublicKey{bytes: append([]byte(nil), b...)}
	if err := k.pk.Unpack(k.bytes); err != nil {
		return nil, ErrInvalidPublicKey
	}
	return k, nil
}

// ParseKEMSecretKey parses an ML-KEM-768 decapsulation key in either of its
// two forms: the 2400-byte expanded FIPS 203 encoding (checked against the
// hash of the encapsulation key it embeds) or the 64-byte seed d || z.
func ParseKEMSecretKey(b []byte) (*KEMSecretKey, error) {
	switch len(b) {
	case KEMSeedSize:
		pk, sk := mlkem768.NewKeyFromSeed(b)
		return newKEMSecretKey(pk, sk), nil
	case KEMSecretKeySize:
		sk := new(mlkem768.PrivateKey)
		if err := sk.Unpack(b); err != nil {
			return nil, ErrInvalidSecretKey
		}
		// The embedded encapsulation key must itself be valid.
		pub, err := ParseKEMPublicKey(b[1152 : 1152+KEMPublicKeySize])
		if err != nil {
			return nil, ErrInvalidSecretKey
		}
		return &KEMSecretKey{sk: sk, public: pub}, nil
	default:
		return nil, ErrInvalidSecretKey
	}
}

func newKEMSecretKey(pk *mlkem768.PublicKey, sk *mlkem768.PrivateKey) *KEMSecretKey {
	pub := &KEMPublicKey{pk: *pk, bytes: make([]byte, KEMPublicKeySize)}
	pk.Pack(pub.bytes)
	return &KEMSecretKey{sk: sk, public: pub}
}

// Bytes returns the 1184-byte encoding of the key.
func (k *KEMPublicKey) Bytes() []byte { return append([]byte(nil), k.bytes...) }

// Encapsulate returns a fresh 32-byte shared secret and the 1088-byte
// ciphertext that carries it to the holder of the secret key.
func (k *KEMPublicKey) Encapsulate() (ciphertext, sharedSecret []byte, err error) {
	return k.encapsulate(nil)
}

// encapsulate is Encapsulate with the encapsulation seed read from r, or
// drawn by circl from crypto/rand when r is nil.
func (k *KEMPublicKey) encapsulate(r io.Reader) (ciphertext, sharedSecret []byte, err error) {
	buf := make([]byte, KEMCiphertextSize+KEMSharedSecretSize)
	ciphertext, sharedSecret = buf[:KEMCiphertextSize:KEMCiphertextSize], buf[KEMCiphertextSize:]
	if err := k.encapsulateTo(ciphertext, sharedSecret, r); err != nil {
		return nil, nil, err
	}
	return ciphertext, sharedSecret, nil
}

// encapsulateTo writes a ciphertext to ct (KEMCiphertextSize bytes) and the
// shared secret to ss (KEMSharedSecretSize bytes). With r nil, circl reads
// the seed from crypto/rand; otherwise it is read from r (test vectors).
func (k *KEMPublicKey) encapsulateTo(ct, ss []byte, r io.Reader) error {
	if r == nil {
		k.pk.EncapsulateTo(ct, ss, nil)
		return nil
	}
	var seed [mlkem768.EncapsulationSeedSize]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return err
	}
	k.pk.EncapsulateTo(ct, ss, seed[:])
	return nil
}

// kemPublicKeyCanonical is the FIPS 203 encapsulation key check (every
// 12-bit coefficient of t̂ below q = 3329) without parsing the key, which
// would expand the matrix A. b must be KEMPublicKeySize bytes.
func kemPublicKeyCanonical(b []byte) bool {
	const q = 3329
	t := b[:KEMPublicKeySize-32]
	for i := 0; i+3 <= len(t); i += 3 {
		c0 := uint16(t[i]) | uint16(t[i+1]&0x0f)<<8
		c1 := uint16(t[i+1])>>4 | uint16(t[i+2])<<4
		if c0 >= q || c1 >= q {
			return false
		}
	}
	return true
}

// Public returns the encapsulation key that belongs to k.
func (k *KEMSecretKey) Public() *KEMPublicKey { return k.public }

// Bytes returns the 2400-byte expanded encoding of the key.
func (k *KEMSecretKey) Bytes() []byte {
	b := make([]byte, KEMSecretKeySize)
	k.sk.Pack(b)
	return b
}

// Decapsulate recovers the shared secret from a 1088-byte ciphertext. As
// FIPS 203 requires, a ciphertext that was not made for this key does not
// fail: it yields a pseudo-random secret (implicit rejection), so the error
// comes from the AEAD that uses the secret. Only a wrong length fails here.
func (k *KEMSecretKey) Decapsulate(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) != KEMCiphertextSize {
		return nil, ErrInvalidCiphertext
	}
	ss := make([]byte, KEMSharedSecretSize)
	k.sk.DecapsulateTo(ss, ciphertext)
	return ss, nil
}

func cachedKEMPublicKey(b []byte) (*KEMPublicKey, error) {
	if k, ok := kemPublicCache.get(b); ok {
		return k, nil
	}
	k, err := ParseKEMPublicKey(b)
	if err != nil {
		return nil, err
	}
	kemPublicCache.put(b, k)
	return k, nil
}

func cachedKEMSecretKey(b []byte) (*KEMSecretKey, error) {
	if k, ok := kemSecretCache.get(b); ok {
		return k, nil
	}
	k, err := ParseKEMSecretKey(b)
	if err != nil {
		return nil, err
	}
	kemSecretCache.put(b, k)
	return k, nil
}

// Encapsulate generates a shared secret for the 1184-byte ML-KEM-768 public
// key pk and returns the ciphertext that carries it and the secret.
func Encapsulate(pk []byte) (ciphertext, sharedSecret []byte, err error) {
	k, err := cachedKEMPublicKey(pk)
	if err != nil {
		return nil, nil, err
	}
	return k.Encapsulate()
}

// Decapsulate recovers the shared secret carried by ciphertext, using the
// ML-KEM-768 secret key sk (2400-byte expanded form or 64-byte seed).
func Decapsulate(sk, ciphertext []byte) ([]byte, error) {
	k, err := cachedKEMSecretKey(sk)
	if err != nil {
		return nil, err
	}
	return k.Decapsulate(ciphertext)
}
