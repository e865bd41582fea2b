package crypto

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
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
	return seal(rand.Reader, true, sender, recipients, plaintext, ad)
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
		return seal(r, false, s, rs, plaintext, ad)
	}
}

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

	bodyLen := sealBodyFixed + n*sealDigestSize + len(plaintext)
	out := make([]byte, sealHeaderSize+n*sealStanzaSize, sealHeaderSize+n*sealStanzaSize+bodyLen+TagSize)
	out[0], out[1] = SealVersion, SealSuite
	binary.BigEndian.PutUint16(out[2:4], uint16(n))

	var contentKey [KeySize]byte
	if _, err := io.ReadFull(r, contentKey[:]); err != nil {
		return nil, err
	}
	defer clear(contentKey[:])

	digests := make([]byte, n*sealDigestSize)
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
		ct, ss, err := pk.encapsulate(r)
		if err != nil {
			return nil, err
		}
		stanza := out[sealHeaderSize+i*sealStanzaSize : sealHeaderSize+(i+1)*sealStanzaSize]
		copy(stanza, ct)
		wrap := stanzaAEAD(ss, ct, rc.SessionID)
		clear(ss)
		wrap.Seal(stanza[KEMCiphertextSize:KEMCiphertextSize], zeroNonce[:wrap.NonceSize()], contentKey[:], nil)
	}
	header := out[:sealHeaderSize+n*sealStanzaSize]
	headerHash := hashHeader(header)

	tr := transcript(&headerHash, senderID, digests, ad, plaintext)
	sig, err := senderSK.sign([]byte(sealSignContext), tr[:], hedged)
	if err != nil {
		return nil, err
	}

	body := make([]byte, 0, bodyLen)
	body = append(body, senderKEM.bytes...)
	body = append(body, senderDSA.bytes...)
	body = append(body, digests...)
	body = append(body, sig...)
	body = append(body, plaintext...)

	aead, _ := chacha20poly1305.NewX(contentKey[:])
	out = aead.Seal(out, zeroNonce[:], body, bodyAD(&headerHash, ad))
	clear(body)
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
	m, err := OpenDetailed(recipient, envelope, ad)
	if err != nil {
		return nil, "", err
	}
	return m.Plaintext, m.Sender.SessionID, nil
}

// OpenDetailed is Open that also returns the sender's public identity and
// the recipient set.
func OpenDetailed(recipient *Identity, envelope, ad []byte) (*SealedMessage, error) {
	if recipient == nil {
		return nil, fmt.Errorf("%w: nil recipient", ErrInvalidSecretKey)
	}
	if len(envelope) < sealHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrInvalidEnvelope, len(envelope))
	}
	if envelope[0] != SealVersion || envelope[1] != SealSuite {
		return nil, fmt.Errorf("%w: unsupported version %d suite %d", ErrInvalidEnvelope, envelope[0], envelope[1])
	}
	n := int(binary.BigEndian.Uint16(envelope[2:4]))
	if n == 0 || n > MaxRecipients {
		return nil, fmt.Errorf("%w: %d recipients", ErrInvalidEnvelope, n)
	}
	if len(envelope) < SealOverhead(n) {
		return nil, fmt.Errorf("%w: %d bytes is too short for %d recipients", ErrInvalidEnvelope, len(envelope), n)
	}
	sk, err := recipient.kemSecret()
	if err != nil {
		return nil, err
	}
	headerLen := sealHeaderSize + n*sealStanzaSize
	header := envelope[:headerLen]

	var contentKey [KeySize]byte
	found := false
	ss := make([]byte, KEMSharedSecretSize)
	for i := 0; i < n && !found; i++ {
		stanza := header[sealHeaderSize+i*sealStanzaSize : sealHeaderSize+(i+1)*sealStanzaSize]
		ct := stanza[:KEMCiphertextSize]
		sk.sk.DecapsulateTo(ss, ct)
		wrap := stanzaAEAD(ss, ct, recipient.SessionID)
		if _, err := wrap.Open(contentKey[:0], zeroNonce[:wrap.NonceSize()], stanza[KEMCiphertextSize:], nil); err == nil {
			found = true
		}
	}
	clear(ss)
	if !found {
		return nil, ErrNotRecipient
	}
	defer clear(contentKey[:])

	headerHash := hashHeader(header)
	aead, _ := chacha20poly1305.NewX(contentKey[:])
	body, err := aead.Open(nil, zeroNonce[:], envelope[headerLen:], bodyAD(&headerHash, ad))
	if err != nil {
		return nil, ErrDecryptionFailed
	}

	// The body length was checked through SealOverhead; slice it up.
	digests := body[sealSenderSize : sealSenderSize+n*sealDigestSize]
	sig := body[sealSenderSize+n*sealDigestSize : sealSenderSize+n*sealDigestSize+SignatureSize]
	plaintext := body[sealSenderSize+n*sealDigestSize+SignatureSize:]

	own, err := ParseSessionID(recipient.SessionID)
	if err != nil {
		return nil, fmt.Errorf("%w: recipient identity has a malformed Session ID", ErrInvalidSecretKey)
	}
	listed := 0
	recipients := make([]string, n)
	for i := range n {
		d := digests[i*sealDigestSize : (i+1)*sealDigestSize]
		listed |= subtle.ConstantTimeCompare(d, own.Digest[:])
		recipients[i] = PrefixPostQuantum + hex.EncodeToString(d)
	}
	if listed != 1 {
		return nil, fmt.Errorf("%w: recipient missing from the signed recipient set", ErrInvalidSignature)
	}

	sender, err := cachedSender(body[:sealSenderSize])
	if err != nil {
		return nil, err
	}
	tr := transcript(&headerHash, sender.parsed.sessionID, digests, ad, plaintext)
	if !sender.parsed.dsaPub.VerifyContext([]byte(sealSignContext), tr[:], sig) {
		return nil, ErrInvalidSignature
	}
	return &SealedMessage{
		Plaintext:  bytes.Clone(plaintext),
		Sender:     sender.PublicIdentity(), // a copy: the cached value stays immutable
		Recipients: recipients,
	}, nil
}

// senderCache maps the sender keys carried in a body (KEM pk ‖ DSA pk) to a
// public identity with parsed keys and its derived Session ID: a recipient
// mostly hears from the same few contacts.
var senderCache = newKeyCache[*Identity](publicKeyCacheSize)

func cachedSender(keys []byte) (*Identity, error) {
	if id, ok := senderCache.get(keys); ok {
		return id, nil
	}
	kem, err := ParseKEMPublicKey(keys[:KEMPublicKeySize])
	if err != nil {
		return nil, fmt.Errorf("%w: sender ML-KEM key", ErrInvalidSignature)
	}
	dsa, err := ParseDSAPublicKey(keys[KEMPublicKeySize:])
	if err != nil {
		return nil, fmt.Errorf("%w: sender ML-DSA key", ErrInvalidSignature)
	}
	id := newIdentity(kem, nil, dsa, nil)
	senderCache.put(keys, id)
	return id, nil
}
