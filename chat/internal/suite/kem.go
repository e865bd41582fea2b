package suite

import (
	"errors"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
)

// ErrKEMKey reports an ML-KEM key of the wrong length or failing the FIPS
// 203 checks.
var ErrKEMKey = errors.New("suite: invalid ML-KEM-768 key")

// KEMPrivate is a parsed ML-KEM-768 decapsulation key with its public key.
type KEMPrivate struct {
	sk     *mlkem768.PrivateKey
	Public []byte // the 1184-byte encapsulation key
}

// NewKEMFromSeed is ML-KEM.KeyGen_internal(d, z) on the 64-byte seed d || z.
func NewKEMFromSeed(seed []byte) (*KEMPrivate, error) {
	if len(seed) != KEMSeedSize {
		return nil, ErrKEMKey
	}
	pk, sk := mlkem768.NewKeyFromSeed(seed)
	pub := make([]byte, KEMPublicKeySize)
	pk.Pack(pub)
	return &KEMPrivate{sk: sk, Public: pub}, nil
}

// ParseKEMPrivate parses a decapsulation key in the 64-byte seed form or the
// 2400-byte expanded form (checked against the hash it embeds).
func ParseKEMPrivate(b []byte) (*KEMPrivate, error) {
	switch len(b) {
	case KEMSeedSize:
		return NewKEMFromSeed(b)
	case mlkem768.PrivateKeySize:
		sk := new(mlkem768.PrivateKey)
		if err := sk.Unpack(b); err != nil {
			return nil, ErrKEMKey
		}
		pub := append([]byte(nil), b[1152:1152+KEMPublicKeySize]...)
		if !KEMPublicCanonical(pub) {
			return nil, ErrKEMKey
		}
		return &KEMPrivate{sk: sk, Public: pub}, nil
	default:
		return nil, ErrKEMKey
	}
}

// Decapsulate is ML-KEM.Decaps. A ciphertext not made for this key yields a
// pseudo-random secret (implicit rejection); only a wrong length fails.
func (k *KEMPrivate) Decapsulate(ct []byte) ([SharedSecretSize]byte, error) {
	var ss [SharedSecretSize]byte
	if len(ct) != KEMCiphertextSize {
		return ss, ErrKEMKey
	}
	k.sk.DecapsulateTo(ss[:], ct)
	return ss, nil
}

// KEMPublic is a parsed ML-KEM-768 encapsulation key.
type KEMPublic struct{ pk mlkem768.PublicKey }

// ParseKEMPublic parses an encapsulation key, with the FIPS 203 modulus
// check. Parsing expands the matrix A; callers cache the result.
func ParseKEMPublic(b []byte) (*KEMPublic, error) {
	if len(b) != KEMPublicKeySize {
		return nil, ErrKEMKey
	}
	k := new(KEMPublic)
	if err := k.pk.Unpack(b); err != nil {
		return nil, ErrKEMKey
	}
	return k, nil
}

// Encapsulate is ML-KEM.Encaps_internal(ek, m) with the 32-byte seed m.
func (k *KEMPublic) Encapsulate(m []byte) (ss [SharedSecretSize]byte, ct []byte, err error) {
	if len(m) != EncapsSeedSize {
		return ss, nil, ErrKEMKey
	}
	ct = make([]byte, KEMCiphertextSize)
	k.pk.EncapsulateTo(ct, ss[:], m)
	return ss, ct, nil
}

// KEMPublicCanonical is the FIPS 203 encapsulation key check (every 12-bit
// coefficient of t̂ below q = 3329) without expanding the matrix.
func KEMPublicCanonical(b []byte) bool {
	if len(b) != KEMPublicKeySize {
		return false
	}
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
