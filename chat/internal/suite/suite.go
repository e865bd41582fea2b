// Package suite holds the primitives of the messaging protocol
// (docs/protocol.md, section 2): the labelled BLAKE2b derivation H, ML-KEM-768
// with explicit randomness, ML-DSA-65 signing (hedged, or deterministic for
// known-answer tests), and the single-use AEADs.
//
// Every function checks lengths before it reaches circl, which panics on
// wrong lengths.
package suite

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
)

// Sizes in bytes.
const (
	KEMPublicKeySize  = mlkem768.PublicKeySize  // 1184
	KEMCiphertextSize = mlkem768.CiphertextSize // 1088
	KEMSeedSize       = mlkem768.KeySeedSize    // 64
	EncapsSeedSize    = mlkem768.EncapsulationSeedSize
	SharedSecretSize  = mlkem768.SharedKeySize // 32
	DSAPublicKeySize  = mldsa65.PublicKeySize  // 1952
	SignatureSize     = mldsa65.SignatureSize  // 3309
	KeySize           = 32
	TagSize           = chacha20poly1305.Overhead // 16
	WrappedSize       = KeySize + TagSize         // 48
	IDSize            = 16
	IdentityIDSize    = 33
)

// Labels of docs/protocol.md, section 2.
const (
	LabelParticipants = "luxfi/session/v1/chat/participants"
	LabelSession      = "luxfi/session/v1/chat/session"
	LabelKey          = "luxfi/session/v1/chat/key"
	LabelTranscriptHS = "luxfi/session/v1/chat/handshake-transcript"
	LabelHandshake    = "luxfi/session/v1/chat/handshake"
	LabelTreeID       = "luxfi/session/v1/chat/tree-id"
	LabelChainID      = "luxfi/session/v1/chat/chain-id"
	LabelStepContext  = "luxfi/session/v1/chat/step-context"
	LabelStep         = "luxfi/session/v1/chat/step"
	LabelSlot         = "luxfi/session/v1/chat/slot"
	LabelMessage      = "luxfi/session/v1/chat/message"
	LabelWrap         = "luxfi/session/v1/chat/wrap"
	LabelContentKey   = "luxfi/session/v1/chat/content-key"
	LabelMessageID    = "luxfi/session/v1/chat/message-id"
	LabelEnvelopeID   = "luxfi/session/v1/chat/envelope-id"
	LabelHeader       = "luxfi/session/v1/chat/header"
	LabelTranscript   = "luxfi/session/v1/chat/transcript"
	SignContext       = "luxfi/session/v1/chat"
)

// ErrAuth reports an AEAD that did not open.
var ErrAuth = errors.New("suite: message authentication failed")

// hashBuf holds H's input while it is encoded: the lp-encoded parts are
// copied into one buffer and hashed with one call to blake2b.Sum512, so that
// H allocates nothing and no caller's array escapes to the heap (a hash.Hash
// is an interface: every slice written to it escapes).
var hashBuf = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// maxPooledHashInput bounds the buffers kept in hashBuf.
const maxPooledHashInput = 1 << 17

// H is H(label, parts...) = BLAKE2b-512(lp(label) || lp(part1) || ...), with
// lp(x) = u32(len(x)) || x.
func H(label string, parts ...[]byte) [64]byte {
	bp := hashBuf.Get().(*[]byte)
	b := binary.BigEndian.AppendUint32((*bp)[:0], uint32(len(label)))
	b = append(b, label...)
	for _, p := range parts {
		b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
		b = append(b, p...)
	}
	out := blake2b.Sum512(b)
	if cap(b) <= maxPooledHashInput {
		*bp = b[:0]
		hashBuf.Put(bp)
	}
	return out
}

// H32 is the first 32 bytes of H.
func H32(label string, parts ...[]byte) (out [32]byte) {
	full := H(label, parts...)
	copy(out[:], full[:32])
	return out
}

// H16 is the first 16 bytes of H.
func H16(label string, parts ...[]byte) (out [16]byte) {
	full := H(label, parts...)
	copy(out[:], full[:16])
	return out
}

// Split is H's two 32-byte halves.
func Split(label string, parts ...[]byte) (left, right [32]byte) {
	full := H(label, parts...)
	copy(left[:], full[:32])
	copy(right[:], full[32:])
	return left, right
}

// U32, U64 and U8 encode integers big-endian.
func U32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// U64 encodes v as 8 bytes, big-endian.
func U64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// U8 encodes v as one byte.
func U8(v uint8) []byte { return []byte{v} }

// KeyHash is KH(ek) = H32("…/key", ek); the hash of an absent key is empty.
func KeyHash(ek []byte) []byte {
	if len(ek) == 0 {
		return nil
	}
	h := H32(LabelKey, ek)
	return h[:]
}

// Read fills b from r.
func Read(r io.Reader, b []byte) error {
	_, err := io.ReadFull(r, b)
	return err
}
