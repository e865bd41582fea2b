package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/blake2b"
)

// Session ID prefixes.
const (
	// PrefixPostQuantum marks an ML-KEM-768 + ML-DSA-65 identity.
	PrefixPostQuantum = "07"
	// PrefixLegacy marks a legacy X25519/Ed25519 identity. Legacy IDs parse
	// but this package creates no legacy identities.
	PrefixLegacy = "05"

	// SessionIDLength is the length of a Session ID string: a two-character
	// prefix and 64 lowercase hexadecimal characters.
	SessionIDLength = 66
	// SeedSize is the size of the master seed of IdentityFromSeed.
	SeedSize = 32
)

// Identity is a post-quantum messaging identity: an ML-KEM-768 key pair to
// receive messages and an ML-DSA-65 key pair to sign them.
//
// Secret keys are held in their expanded FIPS encodings (2400 and 4032
// bytes), the form the reference implementation reads and writes. The seed
// forms (64 and 32 bytes) are accepted wherever a secret key is read.
//
// An Identity made by this package (GenerateIdentity, IdentityFromSeed,
// NewPublicIdentity, LoadIdentity, ...) parses its keys once and keeps them.
// One built by hand, or decoded from JSON, parses them on first use through
// the package's bounded key cache. Do not modify the key slices in place;
// assign new slices instead.
//
// String and GoString print only the Session ID, so formatting an Identity
// with fmt never reveals secret keys. Its JSON form does include them; use
// PublicIdentity before publishing it.
type Identity struct {
	SessionID    string `json:"sessionId"`
	KEMPublicKey []byte `json:"kemPublicKey"`
	KEMSecretKey []byte `json:"kemSecretKey,omitempty"`
	DSAPublicKey []byte `json:"dsaPublicKey"`
	DSASecretKey []byte `json:"dsaSecretKey,omitempty"`

	parsed *parsedKeys
	seed   *[SeedSize]byte
}

// parsedKeys remembers the slices the keys were parsed from, so that an
// Identity whose fields were reassigned is parsed again instead of using
// stale keys.
type parsedKeys struct {
	kemPubSrc, kemSecSrc, dsaPubSrc, dsaSecSrc []byte
	sessionID                                  string // derived from kemPub and dsaPub

	kemPub *KEMPublicKey
	kemSec *KEMSecretKey
	dsaPub *DSAPublicKey
	dsaSec *DSASecretKey
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// GenerateIdentity creates a new identity from a fresh random master seed
// (see IdentityFromSeed; the seed is available from Identity.Seed for
// backup).
func GenerateIdentity() (*Identity, error) {
	var seed [SeedSize]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	return IdentityFromSeed(seed)
}

// Domain separation labels for IdentityFromSeed (see LLM.md).
const (
	seedLabelKEM = "luxfi/session/v1/identity/ml-kem-768"
	seedLabelDSA = "luxfi/session/v1/identity/ml-dsa-65"
)

// IdentityFromSeed derives an identity deterministically from a 32-byte
// master seed, the one secret a user has to back up:
//
//	d || z = BLAKE2b-512(key = seed, "luxfi/session/v1/identity/ml-kem-768")
//	ξ      = BLAKE2b-256(key = seed, "luxfi/session/v1/identity/ml-dsa-65")
//
// and then ML-KEM-768.KeyGen(d, z) and ML-DSA-65.KeyGen(ξ).
func IdentityFromSeed(seed [SeedSize]byte) (*Identity, error) {
	kemSeed := keyedBLAKE2b(blake2b.Size, seed[:], seedLabelKEM)
	dsaSeed := keyedBLAKE2b(blake2b.Size256, seed[:], seedLabelDSA)
	kemSec, err := ParseKEMSecretKey(kemSeed)
	if err != nil {
		return nil, err
	}
	dsaSec, err := ParseDSASecretKey(dsaSeed)
	if err != nil {
		return nil, err
	}
	clear(kemSeed)
	clear(dsaSeed)
	id := newIdentity(kemSec.Public(), kemSec, dsaSec.Public(), dsaSec)
	s := seed
	id.seed = &s
	return id, nil
}

func keyedBLAKE2b(size int, key []byte, label string) []byte {
	h, err := blake2b.New(size, key)
	if err != nil {
		panic(err) // unreachable: size and key length are constants in range
	}
	h.Write([]byte(label))
	return h.Sum(nil)
}

// newIdentity assembles an identity from parsed keys; the secret keys may be
// nil for a public identity.
func newIdentity(kemPub *KEMPublicKey, kemSec *KEMSecretKey, dsaPub *DSAPublicKey, dsaSec *DSASecretKey) *Identity {
	id := &Identity{
		SessionID:    sessionID(kemPub.bytes, dsaPub.bytes),
		KEMPublicKey: kemPub.Bytes(),
		DSAPublicKey: dsaPub.Bytes(),
	}
	p := &parsedKeys{kemPub: kemPub, dsaPub: dsaPub, kemPubSrc: id.KEMPublicKey, dsaPubSrc: id.DSAPublicKey, sessionID: id.SessionID}
	if kemSec != nil {
		id.KEMSecretKey = kemSec.Bytes()
		p.kemSec, p.kemSecSrc = kemSec, id.KEMSecretKey
	}
	if dsaSec != nil {
		id.DSASecretKey = dsaSec.Bytes()
		p.dsaSec, p.dsaSecSrc = dsaSec, id.DSASecretKey
	}
	id.parsed = p
	return id
}

// NewPublicIdentity builds the public identity of the holder of the given
// public keys, checking both and deriving the Session ID.
func NewPublicIdentity(kemPK, dsaPK []byte) (*Identity, error) {
	kemPub, err := ParseKEMPublicKey(kemPK)
	if err != nil {
		return nil, err
	}
	dsaPub, err := ParseDSAPublicKey(dsaPK)
	if err != nil {
		return nil, err
	}
	return newIdentity(kemPub, nil, dsaPub, nil), nil
}

// NewIdentity builds an identity from secret keys in expanded or seed form,
// deriving the public keys and Session ID from them.
func NewIdentity(kemSK, dsaSK []byte) (*Identity, error) {
	kemSec, err := ParseKEMSecretKey(kemSK)
	if err != nil {
		return nil, err
	}
	dsaSec, err := ParseDSASecretKey(dsaSK)
	if err != nil {
		return nil, err
	}
	return newIdentity(kemSec.Public(), kemSec, dsaSec.Public(), dsaSec), nil
}

// Seed returns the master seed the identity was derived from, if it was
// made by GenerateIdentity or IdentityFromSeed (or loaded from a file that
// kept the seed).
func (id *Identity) Seed() (seed [SeedSize]byte, ok bool) {
	if id.seed == nil {
		return seed, false
	}
	return *id.seed, true
}

// PublicIdentity returns a copy of the identity without its secret keys.
func (id *Identity) PublicIdentity() *Identity {
	pub := &Identity{
		SessionID:    id.SessionID,
		KEMPublicKey: bytes.Clone(id.KEMPublicKey),
		DSAPublicKey: bytes.Clone(id.DSAPublicKey),
	}
	if p := id.parsed; p != nil && sameSlice(p.kemPubSrc, id.KEMPublicKey) && sameSlice(p.dsaPubSrc, id.DSAPublicKey) {
		pub.parsed = &parsedKeys{kemPub: p.kemPub, dsaPub: p.dsaPub, kemPubSrc: pub.KEMPublicKey, dsaPubSrc: pub.DSAPublicKey, sessionID: p.sessionID}
	}
	return pub
}

// derivedSessionID returns the Session ID derived from the identity's
// public keys (not the SessionID field, which a caller may have set to
// anything), computed once for identities made by this package.
func (id *Identity) derivedSessionID() (string, error) {
	if p := id.parsed; p != nil && p.sessionID != "" && sameSlice(p.kemPubSrc, id.KEMPublicKey) && sameSlice(p.dsaPubSrc, id.DSAPublicKey) {
		return p.sessionID, nil
	}
	kem, err := id.kemPublic()
	if err != nil {
		return "", err
	}
	dsa, err := id.dsaPublic()
	if err != nil {
		return "", err
	}
	return sessionID(kem.bytes, dsa.bytes), nil
}

// Validate checks that the public keys parse, that the Session ID derives
// from them, and that any secret keys present belong to the public keys.
func (id *Identity) Validate() error {
	kemPub, err := id.kemPublic()
	if err != nil {
		return err
	}
	dsaPub, err := id.dsaPublic()
	if err != nil {
		return err
	}
	if id.SessionID != sessionID(kemPub.bytes, dsaPub.bytes) {
		return fmt.Errorf("%w: does not derive from the public keys", ErrInvalidSessionID)
	}
	if id.KEMSecretKey != nil {
		sk, err := id.kemSecret()
		if err != nil {
			return err
		}
		if !bytes.Equal(sk.public.bytes, kemPub.bytes) || !kemPairwiseConsistent(kemPub, sk) {
			return fmt.Errorf("%w: ML-KEM secret key does not match the public key", ErrInvalidSecretKey)
		}
	}
	if id.DSASecretKey != nil {
		sk, err := id.dsaSecret()
		if err != nil {
			return err
		}
		if !bytes.Equal(sk.Public().bytes, dsaPub.bytes) || !dsaPairwiseConsistent(dsaPub, sk) {
			return fmt.Errorf("%w: ML-DSA secret key does not match the public key", ErrInvalidSecretKey)
		}
	}
	return nil
}

// kemPairwiseConsistent encapsulates to pk and decapsulates with sk, the
// pairwise consistency test of FIPS 140-3. Comparing encodings is not
// enough: an expanded secret key embeds a copy of the public key, and a
// corrupted ŝ leaves that copy intact.
func kemPairwiseConsistent(pk *KEMPublicKey, sk *KEMSecretKey) bool {
	ct, ss, err := pk.Encapsulate()
	if err != nil {
		return false
	}
	got, err := sk.Decapsulate(ct)
	return err == nil && bytes.Equal(got, ss)
}

// dsaPairwiseConsistent signs with sk and verifies with pk. The public key
// recomputed from s1 and s2 does not cover tr, K or t0 of an expanded key.
func dsaPairwiseConsistent(pk *DSAPublicKey, sk *DSASecretKey) bool {
	msg := []byte("luxfi/session/v1/pairwise-consistency")
	sig, err := sk.Sign(msg)
	return err == nil && pk.Verify(msg, sig)
}

// String returns "Identity(<Session ID>)"; it never prints keys.
func (id Identity) String() string { return "Identity(" + id.SessionID + ")" }

// GoString is String, so that %#v never prints keys either.
func (id Identity) GoString() string { return id.String() }

// Format prints String for every verb (%d, %x, %c, ... included), so that
// no fmt verb can walk into the key fields.
func (id Identity) Format(f fmt.State, _ rune) { io.WriteString(f, id.String()) }

// LogValue makes log/slog print the Session ID only, with every handler
// (the JSON handler would otherwise marshal the secret keys).
func (id Identity) LogValue() slog.Value {
	return slog.GroupValue(slog.String("sessionId", id.SessionID))
}

// The parsed keys of an identity, from its own parse when still current and
// from the package cache otherwise.

func (id *Identity) kemPublic() (*KEMPublicKey, error) {
	if p := id.parsed; p != nil && p.kemPub != nil && sameSlice(p.kemPubSrc, id.KEMPublicKey) {
		return p.kemPub, nil
	}
	return cachedKEMPublicKey(id.KEMPublicKey)
}

func (id *Identity) kemSecret() (*KEMSecretKey, error) {
	if p := id.parsed; p != nil && p.kemSec != nil && sameSlice(p.kemSecSrc, id.KEMSecretKey) {
		return p.kemSec, nil
	}
	return cachedKEMSecretKey(id.KEMSecretKey)
}

func (id *Identity) dsaPublic() (*DSAPublicKey, error) {
	if p := id.parsed; p != nil && p.dsaPub != nil && sameSlice(p.dsaPubSrc, id.DSAPublicKey) {
		return p.dsaPub, nil
	}
	return cachedDSAPublicKey(id.DSAPublicKey)
}

func (id *Identity) dsaSecret() (*DSASecretKey, error) {
	if p := id.parsed; p != nil && p.dsaSec != nil && sameSlice(p.dsaSecSrc, id.DSASecretKey) {
		return p.dsaSec, nil
	}
	return cachedDSASecretKey(id.DSASecretKey)
}

// Sign signs msg with the identity's ML-DSA-65 key (empty context).
func (id *Identity) Sign(msg []byte) ([]byte, error) { return id.SignContext(nil, msg) }

// SignContext signs msg with the identity's ML-DSA-65 key under a context
// string of at most 255 bytes.
func (id *Identity) SignContext(context, msg []byte) ([]byte, error) {
	sk, err := id.dsaSecret()
	if err != nil {
		return nil, err
	}
	return sk.SignContext(context, msg)
}

// Verify reports whether sig is the identity's signature of msg (empty
// context).
func (id *Identity) Verify(msg, sig []byte) bool { return id.VerifyContext(nil, msg, sig) }

// VerifyContext reports whether sig is the identity's signature of msg
// under the given context string.
func (id *Identity) VerifyContext(context, msg, sig []byte) bool {
	pk, err := id.dsaPublic()
	if err != nil {
		return false
	}
	return pk.VerifyContext(context, msg, sig)
}

// SignMessage returns signature || msg, where the signature is a plain
// ML-DSA-65 signature of msg with an empty context (the reference format).
func (id *Identity) SignMessage(msg []byte) ([]byte, error) {
	sig, err := id.Sign(msg)
	if err != nil {
		return nil, err
	}
	return append(sig, msg...), nil
}

// VerifySignedMessage checks a signed message made by SignMessage
// (signature ‖ message) and returns a copy of the message. Only the
// identity's public key is needed. A message that does not verify (or is
// shorter than a signature) gives ErrInvalidSignature; an identity whose
// public key does not parse gives ErrInvalidPublicKey. VerifyMessage is the
// reference's form of this check, which reports a bool.
func (id *Identity) VerifySignedMessage(signed []byte) ([]byte, error) {
	if len(signed) < SignatureSize {
		return nil, ErrInvalidSignature
	}
	pk, err := id.dsaPublic()
	if err != nil {
		return nil, err
	}
	msg := signed[SignatureSize:]
	if !pk.Verify(msg, signed[:SignatureSize]) {
		return nil, ErrInvalidSignature
	}
	return bytes.Clone(msg), nil
}

// EncryptTo encrypts plaintext to recipient with EncryptToRecipient (the
// anonymous reference format). Only the recipient's public key is used.
func (id *Identity) EncryptTo(recipient *Identity, plaintext []byte) ([]byte, error) {
	pk, err := recipient.kemPublic()
	if err != nil {
		return nil, err
	}
	return pk.encryptToRecipient(plaintext)
}

// DecryptFrom opens an envelope made by EncryptToRecipient or EncryptTo
// with the identity's ML-KEM secret key.
func (id *Identity) DecryptFrom(envelope []byte) ([]byte, error) {
	sk, err := id.kemSecret()
	if err != nil {
		return nil, err
	}
	return sk.decryptFromSender(envelope)
}

// DeriveSessionID returns "07" followed by the lowercase hex of
// BLAKE2b-256(kemPK || dsaPK). It checks the key lengths only.
func DeriveSessionID(kemPK, dsaPK []byte) (string, error) {
	if len(kemPK) != KEMPublicKeySize || len(dsaPK) != DSAPublicKeySize {
		return "", ErrInvalidPublicKey
	}
	return sessionID(kemPK, dsaPK), nil
}

func sessionID(kemPK, dsaPK []byte) string {
	h, _ := blake2b.New256(nil)
	h.Write(kemPK)
	h.Write(dsaPK)
	var sum [blake2b.Size256]byte
	return PrefixPostQuantum + hex.EncodeToString(h.Sum(sum[:0]))
}

// SessionID is a parsed Session ID: a one-byte kind (0x07 post-quantum,
// 0x05 legacy) and a 32-byte digest.
type SessionID struct {
	Prefix byte
	Digest [32]byte
}

// ParseSessionID parses "07" or "05" followed by 64 lowercase hexadecimal
// characters.
//
// On error the returned SessionID is the zero value.
func ParseSessionID(s string) (SessionID, error) {
	var id SessionID
	if len(s) != SessionIDLength {
		return SessionID{}, fmt.Errorf("%w: length %d, want %d", ErrInvalidSessionID, len(s), SessionIDLength)
	}
	switch s[:2] {
	case PrefixPostQuantum:
		id.Prefix = 0x07
	case PrefixLegacy:
		id.Prefix = 0x05
	default:
		return SessionID{}, fmt.Errorf("%w: prefix must be %q or %q", ErrInvalidSessionID, PrefixPostQuantum, PrefixLegacy)
	}
	for i := 2; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return SessionID{}, fmt.Errorf("%w: character %d is not lowercase hexadecimal", ErrInvalidSessionID, i)
		}
	}
	hex.Decode(id.Digest[:], []byte(s[2:]))
	return id, nil
}

// String returns the 66-character form.
func (s SessionID) String() string {
	return fmt.Sprintf("%02x%s", s.Prefix, hex.EncodeToString(s.Digest[:]))
}

// IsPostQuantum reports whether the ID has the "07" prefix.
func (s SessionID) IsPostQuantum() bool { return s.Prefix == 0x07 }
