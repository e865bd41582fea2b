package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/luxfi/session/crypto/internal/hook"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
)

// Seal envelope constants. The byte format is documented in LLM.md.
const (
	// SealVersion is the first byte of every Seal envelope.
	SealVersion = 0x01
	// SealSuite names the algorithms: ML-KEM-768, ML-DSA-65,
	// XChaCha20-Poly1305 and BLAKE2b.
	SealSuite = 0x01
	// MaxRecipients bounds the recipients of one envelope.
	MaxRecipients = 1024

	sealHeaderSize  = 4                                                         // version, suite, recipient count
	sealWrappedSize = KeySize + TagSize                                         // content key under the stanza key
	sealStanzaSize  = KEMCiphertextSize + sealWrappedSize                       // 1136
	sealSenderSize  = KEMPublicKeySize + DSAPublicKeySize                       // 3136
	sealBodyFixed   = sealSenderSize + SignatureSize                            // without recipient digests
	sealDigestSize  = blake2b.Size256                                           // a Session ID without its prefix
	sealMinSize     = sealHeaderSize + sealStanzaSize + TagSize + sealBodyFixed // one recipient, empty message
)

// Protocol labels. Each derivation and the signature carry their own, so no
// value computed for one purpose is valid for another.
const (
	sealLabelStanza     = "luxfi/session/v1/seal/stanza"
	sealLabelHeader     = "luxfi/session/v1/seal/header"
	sealLabelTranscript = "luxfi/session/v1/seal/transcript"
	sealSignContext     = "luxfi/session/v1/seal"
)

// SealOverhead returns how many bytes Seal adds to a plaintext for n
// recipients.
func SealOverhead(n int) int {
	return sealHeaderSize + n*(sealStanzaSize+sealDigestSize) + TagSize + sealBodyFixed
}

// Seal encrypts plaintext from sender to every recipient and authenticates
// the sender to them.
//
// A random content key encrypts the body once with XChaCha20-Poly1305. For
// each recipient a fresh ML-KEM-768 encapsulation yields a shared secret,
// from which BLAKE2b derives a stanza key bound to the KEM ciphertext, the
// recipient's Session ID, a protocol label and the version; the stanza key
// wraps the content key. The body carries the sender's public keys, the
// recipient set and an ML-DSA-65 signature (context "luxfi/session/v1/seal")
// over a transcript of the header, the sender, the recipient set, ad and the
// plaintext. Only recipients learn who sent the envelope; an observer sees
// the version, the number of recipients and the sizes.
//
// ad is associated data that is authenticated but not carried: Open must be
// given the same ad. recipients need only their public keys; the sender
// needs its ML-DSA secret key.
func Seal(sender *Identity, recipients []*Identity, plaintext, ad []byte) ([]byte, error) {
	return seal(nil, true, sender, recipients, plaintext, ad)
}

func init() {
	hook.DeterministicSeal = func(r io.Reader, sender any, recipients []any, plaintext, ad []byte) ([]byte, error) {
		s, ok := sender.(*Identity)
		if !ok {
			return nil, fmt.Errorf("sealtest: sender is %T, want *crypto.Identity", sender)
		}
		rs := make([]*Identity, len(recipients))
		for i, x := range recipients {
			if rs[i], ok = x.(*Identity); !ok {
				return nil, fmt.Errorf("sealtest: recipient %d is %T, want *crypto.Identity", i, x)
			}
		}
		if r == nil {
			return nil, errors.New("sealtest: nil random source")
		}
		return seal(r, false, s, rs, plaintext, ad)
	}
}

// seal builds the envelope in one buffer: stanzas are encapsulated and
// wrapped in place, the body is assembled where it will be encrypted, the
// signature is written into its slot and the body is sealed in place.
// Randomness comes from r, or from crypto/rand when r is nil.
func seal(r io.Reader, hedged bool, sender *Identity, recipients []*Identity, plaintext, ad []byte) ([]byte, error) {
	if sender == nil {
		return nil, fmt.Errorf("%w: nil sender", ErrInvalidSecretKey)
	}
	n := len(recipients)
	if n == 0 || n > MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients, want 1 to %d", ErrInvalidPublicKey, n, MaxRecipients)
	}
	senderSK, err := sender.dsaSecret()
	if err != nil {
		return nil, err
	}
	senderKEM, err := sender.kemPublic()
	if err != nil {
		return nil, err
	}
	senderDSA, err := sender.dsaPublic()
	if err != nil {
		return nil, err
	}
	senderID, err := sender.derivedSessionID()
	if err != nil {
		return nil, err
	}

	headerLen := sealHeaderSize + n*sealStanzaSize
	sigAt := sealSenderSize + n*sealDigestSize
	bodyLen := sigAt + SignatureSize + len(plaintext)
	out := make([]byte, headerLen+bodyLen+TagSize)
	header, body := out[:headerLen], out[headerLen:headerLen+bodyLen]
	header[0], header[1] = SealVersion, SealSuite
	binary.BigEndian.PutUint16(header[2:4], uint16(n))

	var contentKey [KeySize]byte
	if r == nil {
		_, err = rand.Read(contentKey[:])
	} else {
		_, err = io.ReadFull(r, contentKey[:])
	}
	if err != nil {
		return nil, err
	}
	defer clear(contentKey[:])

	digests := body[sealSenderSize:sigAt]
	var ss [KEMSharedSecretSize]byte
	defer clear(ss[:])
	for i, rc := range recipients {
		if rc == nil {
			return nil, fmt.Errorf("%w: recipient %d is nil", ErrInvalidPublicKey, i)
		}
		sid, err := ParseSessionID(rc.SessionID)
		if err != nil || !sid.IsPostQuantum() {
			return nil, fmt.Errorf("%w: recipient %d has no post-quantum Session ID", ErrInvalidPublicKey, i)
		}
		copy(digests[i*sealDigestSize:], sid.Digest[:])
		pk, err := rc.kemPublic()
		if err != nil {
			return nil, fmt.Errorf("recipient %d: %w", i, err)
		}
		stanza := header[sealHeaderSize+i*sealStanzaSize : sealHeaderSize+(i+1)*sealStanzaSize]
		ct := stanza[:KEMCiphertextSize]
		if err := pk.encapsulateTo(ct, ss[:], r); err != nil {
			return nil, err
		}
		wrap := stanzaAEAD(ss[:], ct, rc.SessionID)
		wrap.Seal(stanza[KEMCiphertextSize:KEMCiphertextSize], zeroNonce[:wrap.NonceSize()], contentKey[:], nil)
	}
	headerHash := hashHeader(header)

	copy(body, senderKEM.bytes)
	copy(body[KEMPublicKeySize:], senderDSA.bytes)
	copy(body[sigAt+SignatureSize:], plaintext)
	tr := transcript(&headerHash, senderID, digests, ad, plaintext)
	if err := senderSK.signTo(body[sigAt:sigAt+SignatureSize], []byte(sealSignContext), tr[:], hedged); err != nil {
		return nil, err
	}

	aead, _ := chacha20poly1305.NewX(contentKey[:])
	aead.Seal(body[:0], zeroNonce[:], body, bodyAD(&headerHash, ad)) // in place; the tag fills the rest of out
	return out, nil
}

// zeroNonce is the nonce of every AEAD in Seal. Each key it is used with is
// used exactly once: the content key is fresh random per envelope, and each
// stanza key derives from a fresh ML-KEM shared secret.
var zeroNonce [chacha20poly1305.NonceSizeX]byte

// stanzaAEAD returns ChaCha20-Poly1305 under the stanza key
// BLAKE2b-256(key = ss, label || version || suite || kemCiphertext || recipientSessionID).
func stanzaAEAD(ss, kemCiphertext []byte, recipientSessionID string) cipherAEAD {
	h, _ := blake2b.New256(ss)
	h.Write([]byte(sealLabelStanza))
	h.Write([]byte{SealVersion, SealSuite})
	h.Write(kemCiphertext)
	h.Write([]byte(recipientSessionID))
	var k [KeySize]byte
	h.Sum(k[:0])
	aead, _ := chacha20poly1305.New(k[:])
	clear(k[:])
	return aead
}

type cipherAEAD interface {
	NonceSize() int
	Seal(dst, nonce, plaintext, ad []byte) []byte
	Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
}

func hashHeader(header []byte) [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write([]byte(sealLabelHeader))
	h.Write(header)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func bodyAD(headerHash *[32]byte, ad []byte) []byte {
	out := make([]byte, 0, len(headerHash)+len(ad))
	return append(append(out, headerHash[:]...), ad...)
}

func transcript(headerHash *[32]byte, senderID string, digests, ad, plaintext []byte) [32]byte {
	h, _ := blake2b.New256(nil)
	h.Write([]byte(sealLabelTranscript))
	h.Write(headerHash[:])
	h.Write([]byte(senderID))
	h.Write(digests)
	var l [8]byte
	binary.BigEndian.PutUint64(l[:], uint64(len(ad)))
	h.Write(l[:])
	h.Write(ad)
	h.Write(plaintext)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// SealedMessage is what OpenDetailed returns.
type SealedMessage struct {
	Plaintext []byte
	// Sender is the public identity of the verified sender.
	Sender *Identity
	// Recipients are the Session IDs of every recipient, in stanza order.
	Recipients []string
}

// Open decrypts an envelope made by Seal with the recipient's identity,
// verifies the sender's signature and returns the plaintext and the
// sender's Session ID.
//
// Errors: ErrInvalidEnvelope (malformed or unsupported), ErrNotRecipient
// (no stanza opens with this identity's key), ErrDecryptionFailed (the body
// or ad was changed), ErrInvalidSignature (the signature does not verify
// under the sender keys carried in the body).
func Open(recipient *Identity, envelope, ad []byte) (plaintext []byte, senderSessionID string, err error) {
	o, err := open(recipient, envelope, ad)
	if err != nil {
		return nil, "", err
	}
	return o.plaintext, o.sender.parsed.sessionID, nil
}

// OpenDetailed is Open that also returns the sender's public identity and
// the recipient set.
func OpenDetailed(recipient *Identity, envelope, ad []byte) (*SealedMessage, error) {
	o, err := open(recipient, envelope, ad)
	if err != nil {
		return nil, err
	}
	n := len(o.digests) / sealDigestSize
	recipients := make([]string, n)
	for i := range n {
		recipients[i] = PrefixPostQuantum + hex.EncodeToString(o.digests[i*sealDigestSize:(i+1)*sealDigestSize])
	}
	return &SealedMessage{
		Plaintext:  o.plaintext,
		Sender:     o.sender.PublicIdentity(), // a copy: the cached value stays immutable
		Recipients: recipients,
	}, nil
}

// opened is what open finds in an envelope. plaintext and digests are
// subslices of the freshly decrypted body, owned by the caller.
type opened struct {
	plaintext []byte
	digests   []byte
	sender    *Identity // cached: never modify
}

func open(recipient *Identity, envelope, ad []byte) (opened, error) {
	if recipient == nil {
		return opened{}, fmt.Errorf("%w: nil recipient", ErrInvalidSecretKey)
	}
	if len(envelope) < sealHeaderSize {
		return opened{}, fmt.Errorf("%w: %d bytes", ErrInvalidEnvelope, len(envelope))
	}
	if envelope[0] != SealVersion || envelope[1] != SealSuite {
		return opened{}, fmt.Errorf("%w: unsupported version %d suite %d", ErrInvalidEnvelope, envelope[0], envelope[1])
	}
	n := int(binary.BigEndian.Uint16(envelope[2:4]))
	if n == 0 || n > MaxRecipients {
		return opened{}, fmt.Errorf("%w: %d recipients", ErrInvalidEnvelope, n)
	}
	if len(envelope) < SealOverhead(n) {
		return opened{}, fmt.Errorf("%w: %d bytes is too short for %d recipients", ErrInvalidEnvelope, len(envelope), n)
	}
	sk, err := recipient.kemSecret()
	if err != nil {
		return opened{}, err
	}
	own, err := ParseSessionID(recipient.SessionID)
	if err != nil {
		return opened{}, fmt.Errorf("%w: recipient identity has a malformed Session ID", ErrInvalidSecretKey)
	}
	headerLen := sealHeaderSize + n*sealStanzaSize
	header := envelope[:headerLen]

	var contentKey [KeySize]byte
	var ss [KEMSharedSecretSize]byte
	found := false
	for i := 0; i < n && !found; i++ {
		stanza := header[sealHeaderSize+i*sealStanzaSize : sealHeaderSize+(i+1)*sealStanzaSize]
		ct := stanza[:KEMCiphertextSize]
		sk.sk.DecapsulateTo(ss[:], ct)
		afterAVX()
		wrap := stanzaAEAD(ss[:], ct, recipient.SessionID)
		_, err := wrap.Open(contentKey[:0], zeroNonce[:wrap.NonceSize()], stanza[KEMCiphertextSize:], nil)
		found = err == nil
	}
	clear(ss[:])
	if !found {
		return opened{}, ErrNotRecipient
	}

	headerHash := hashHeader(header)
	aead, _ := chacha20poly1305.NewX(contentKey[:])
	clear(contentKey[:])
	body, err := aead.Open(nil, zeroNonce[:], envelope[headerLen:], bodyAD(&headerHash, ad))
	if err != nil {
		return opened{}, ErrDecryptionFailed
	}

	// SealOverhead checked the length, so the fixed parts are all there.
	sigAt := sealSenderSize + n*sealDigestSize
	digests := body[sealSenderSize:sigAt]
	sig := body[sigAt : sigAt+SignatureSize]
	plaintext := body[sigAt+SignatureSize:]

	listed := 0
	for i := range n {
		listed |= subtle.ConstantTimeCompare(digests[i*sealDigestSize:(i+1)*sealDigestSize], own.Digest[:])
	}
	if listed != 1 {
		return opened{}, fmt.Errorf("%w: recipient missing from the signed recipient set", ErrInvalidSignature)
	}

	sender, err := cachedSender(body[:sealSenderSize])
	if err != nil {
		return opened{}, err
	}
	tr := transcript(&headerHash, sender.parsed.sessionID, digests, ad, plaintext)
	if !sender.parsed.dsaPub.VerifyContext([]byte(sealSignContext), tr[:], sig) {
		return opened{}, ErrInvalidSignature
	}
	return opened{plaintext: plaintext, digests: digests, sender: sender}, nil
}

// senderCache maps the sender keys carried in a body (KEM pk ‖ DSA pk) to a
// public identity with parsed keys and its derived Session ID: a recipient
// mostly hears from the same few contacts.
var senderCache = newKeyCache[*Identity](publicKeyCacheSize)

// Opening needs the sender's ML-DSA key parsed, but only the encoding of its
// ML-KEM key (for the Session ID): that key gets the FIPS 203 modulus check
// and is parsed later only if someone encrypts to it.
func cachedSender(keys []byte) (*Identity, error) {
	if id, ok := senderCache.get(keys); ok {
		return id, nil
	}
	kemPK := keys[:KEMPublicKeySize]
	if !kemPublicKeyCanonical(kemPK) {
		return nil, fmt.Errorf("%w: sender ML-KEM key", ErrInvalidSignature)
	}
	dsa, err := ParseDSAPublicKey(keys[KEMPublicKeySize:])
	if err != nil {
		return nil, fmt.Errorf("%w: sender ML-DSA key", ErrInvalidSignature)
	}
	id := &Identity{
		SessionID:    sessionID(kemPK, dsa.bytes),
		KEMPublicKey: bytes.Clone(kemPK),
		DSAPublicKey: dsa.Bytes(),
	}
	id.parsed = &parsedKeys{dsaPub: dsa, kemPubSrc: id.KEMPublicKey, dsaPubSrc: id.DSAPublicKey, sessionID: id.SessionID}
	senderCache.put(keys, id)
	return id, nil
}
