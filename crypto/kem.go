package crypto

import (
	"crypto/sha3"
	"crypto/subtle"
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
	err := k.pk.Unpack(k.bytes)
	afterAVX()
	if err != nil {
		return nil, ErrInvalidPublicKey
	}
	return k, nil
}

// Layout of the expanded ML-KEM-768 decapsulation key (FIPS 203,
// Algorithm 16 with k = 3): dk = dk_PKE (ŝ, 384k) ‖ ek (384k + 32) ‖ H(ek)
// (32) ‖ z (32).
const (
	kemDKPKEEnd = 384 * 3
	kemEKEnd    = kemDKPKEEnd + KEMPublicKeySize
	kemHashEnd  = kemEKEnd + 32
)

// ParseKEMSecretKey parses an ML-KEM-768 decapsulation key in either of its
// two forms: the 64-byte seed d || z, or the 2400-byte expanded FIPS 203
// encoding, which must pass the input checks of FIPS 203 before it is used:
//
//   - the decapsulation key checks of §7.3: the length, and the hash check
//     (the embedded H(ek) is SHA3-256 of the embedded ek);
//   - the encapsulation key check of §7.2 on the embedded ek (every
//     coefficient of t̂ below q = 3329), which the hash check alone does
//     not give: a non-canonical ek hashes as well as a canonical one;
//   - every coefficient of ŝ below q. FIPS 203's ByteDecode₁₂ would reduce
//     a larger one modulo q, so the key would still work, but then two
//     encodings mean one key and parse → Bytes is not the identity;
//     canonical keys only, as for ek.
//
// The checks run on the bytes before circl sees them (circl reduces ŝ
// silently). Nothing here can check z, or that ŝ matches ek: Validate runs
// the pairwise consistency test for that.
func ParseKEMSecretKey(b []byte) (*KEMSecretKey, error) {
	switch len(b) {
	case KEMSeedSize:
		pk, sk := mlkem768.NewKeyFromSeed(b)
		afterAVX()
		return newKEMSecretKey(pk, sk), nil
	case KEMSecretKeySize:
		ek := b[kemDKPKEEnd:kemEKEnd]
		if h := sha3.Sum256(ek); subtle.ConstantTimeCompare(h[:], b[kemEKEnd:kemHashEnd]) != 1 {
			return nil, ErrInvalidSecretKey
		}
		if !kemCoefficientsCanonical(b[:kemDKPKEEnd]) {
			return nil, ErrInvalidSecretKey
		}
		pub, err := ParseKEMPublicKey(ek) // the §7.2 modulus check
		if err != nil {
			return nil, ErrInvalidSecretKey
		}
		sk := new(mlkem768.PrivateKey)
		if err := sk.Unpack(b); err != nil {
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
		afterAVX()
		return nil
	}
	var seed [mlkem768.EncapsulationSeedSize]byte
	if _, err := io.ReadFull(r, seed[:]); err != nil {
		return err
	}
	k.pk.EncapsulateTo(ct, ss, seed[:])
	afterAVX()
	return nil
}

// kemPublicKeyCanonical is the FIPS 203 encapsulation key check (every
// 12-bit coefficient of t̂ below q = 3329) without parsing the key, which
// would expand the matrix A. b must be KEMPublicKeySize bytes.
func kemPublicKeyCanonical(b []byte) bool {
	return kemCoefficientsCanonical(b[:KEMPublicKeySize-32])
}

// kemCoefficientsCanonical reports whether every 12-bit coefficient packed
// in b (ByteEncode₁₂, two per three bytes) is below q = 3329. It runs in
// time independent of the values (ŝ is secret).
func kemCoefficientsCanonical(b []byte) bool {
	const q = 3329
	var bad uint32
	for i := 0; i+3 <= len(b); i += 3 {
		c0 := uint32(b[i]) | uint32(b[i+1]&0x0f)<<8
		c1 := uint32(b[i+1])>>4 | uint32(b[i+2])<<4
		// c - q underflows (sets bit 31) exactly when c < q.
		bad |= ^(c0 - q) | ^(c1 - q)
	}
	return bad>>31 == 0
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
	afterAVX()
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
