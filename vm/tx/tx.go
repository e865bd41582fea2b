// Package tx defines SessionVM transactions: their canonical binary
// encoding, their signatures and their stateless checks.
//
// # Wire format
//
// All integers are big-endian; "bytes" is a uint32 length then the bytes.
//
//	unsigned  = version u8 (1) | chainID [32] | type u8 | author [33] | nonce u64 | payload
//	signed    = unsigned | signature [3309]
//
// The author is a Session ID: prefix byte (0x07) then the 32-byte digest.
// The signature is ML-DSA-65 (FIPS 204, hedged) by the author's key over the
// unsigned bytes with the context string "luxfi/session/v1/tx", so it binds
// the chain ID (no cross-chain replay), the type, the author, the nonce (no
// replay: it must be exactly the author's next nonce) and the payload.
//
// Payloads, by type (docs/chain.md section 2 is the specification):
//
//	claim = participant [33] | signedPrekeyID u32 | oneTimePrekeyID u32 (0: none)
//
//	1  RegisterIdentity  kemPublicKey [1184] | dsaPublicKey [1952] | anchorHeight u64 | work u64  (nonce 0)
//	2  CreateSession     count u32 (1..31) | participant [33] × count | claimCount u8 (0..31) | claim × claimCount
//	                     | metadata bytes(≤1 KiB)
//	3  SendMessage       session [32] | claimCount u8 (0..31) | claim × claimCount | ciphertext bytes(≤64 KiB)
//	4  CloseSession      session [32]
//	5  CreateChannel     name bytes(≤64, UTF-8, no invisible code points) | joinPolicy u8 (1 open, 2 invite-only)
//	6  JoinChannel       channel [32]
//	7  LeaveChannel      channel [32]
//	8  PostChannel       channel [32] | ciphertext bytes(≤64 KiB)
//	9  PublishPrekeys    hasSigned u8 | [signedPrekeyID u32 | expiresAt i64 | kemPublicKey [1184]]
//	                     | retireThrough u32 | count u8 (0..32) | (prekeyID u32 | kemPublicKey [1184]) × count
//	10 AcceptSession     session [32] | decision u8 (1 accept, 2 decline)
//	11 SetContact        peer [33] | status u8 (0 none, 1 contact, 2 blocked)
//	12 SetChannelPolicy  channel [32] | joinPolicy u8 | slowModeSeconds u32 (≤ 86400)
//	13 ModerateChannel   channel [32] | action u8 (1..7) | count u8 (1..64) | member [33] × count
//	14 DeletePosts       channel [32] | count u8 (1..64) | seq u64 × count
//	15 SetRequestPolicy  policy u8 (1 anyone, 2 contacts only)
//
// A transaction is at most config.MaxTxSize bytes. Parse refuses any other
// form: unknown version or type, oversize fields, truncation, trailing
// bytes. Parse(t.Bytes()) gives back t, and every accepted input re-encodes
// to itself.
//
// The transaction ID is SHA-256 of the signed bytes (signature included),
// so a signature verified once for an ID stays verified.
package tx

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state/codec"
)

// Version is the only transaction version.
const Version = 1

// SignatureContext is the ML-DSA-65 context string of transaction
// signatures.
const SignatureContext = "luxfi/session/v1/tx"

// HeaderSize is the size of the unsigned header before the payload.
const HeaderSize = 1 + ids.IDLen + 1 + 33 + 8

// Unsigned is a transaction before signing.
type Unsigned struct {
	ChainID ids.ID
	Author  crypto.SessionID
	Nonce   uint64
	Payload Payload
}

// Bytes returns the canonical unsigned encoding: the signed message.
func (u *Unsigned) Bytes() []byte {
	w := codec.NewWriter(HeaderSize + 256 + crypto.SignatureSize)
	u.encode(w)
	return w.B
}

func (u *Unsigned) encode(w *codec.Writer) {
	w.U8(Version)
	w.Fixed(u.ChainID[:])
	w.U8(uint8(u.Payload.Type()))
	w.SessionID(u.Author)
	w.U64(u.Nonce)
	u.Payload.encode(w)
}

// Sign signs u with signer's ML-DSA-65 key. It does not check that signer
// is u.Author (tests build such forgeries on purpose).
func (u *Unsigned) Sign(signer *crypto.Identity) (*Tx, error) {
	w := codec.NewWriter(HeaderSize + 4096 + crypto.SignatureSize)
	u.encode(w)
	unsignedLen := len(w.B)
	sig, err := signer.SignContext([]byte(SignatureContext), w.B)
	if err != nil {
		return nil, err
	}
	w.Fixed(sig)
	return newTx(*u, w.B, unsignedLen)
}

// Sign builds and signs a transaction of id (the author) with the given
// nonce.
func Sign(id *crypto.Identity, chainID ids.ID, nonce uint64, p Payload) (*Tx, error) {
	author, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		return nil, err
	}
	u := Unsigned{ChainID: chainID, Author: author, Nonce: nonce, Payload: p}
	return u.Sign(id)
}

// Tx is a parsed, signed transaction. Its fields must not be modified.
type Tx struct {
	Unsigned
	Signature []byte

	bytes       []byte
	unsignedLen int
	id          ids.ID
}

func newTx(u Unsigned, b []byte, unsignedLen int) (*Tx, error) {
	if len(b) > config.MaxTxSize {
		return nil, fmt.Errorf("%w: transaction is %d bytes, at most %d", ErrOversize, len(b), config.MaxTxSize)
	}
	return &Tx{
		Unsigned:    u,
		Signature:   b[unsignedLen:],
		bytes:       b,
		unsignedLen: unsignedLen,
		id:          sha256.Sum256(b),
	}, nil
}

// ID returns SHA-256 of the signed bytes.
func (t *Tx) ID() ids.ID { return t.id }

// Bytes returns the signed encoding. Do not modify it.
func (t *Tx) Bytes() []byte { return t.bytes }

// UnsignedBytes returns the bytes the signature covers.
func (t *Tx) UnsignedBytes() []byte { return t.bytes[:t.unsignedLen] }

// Type returns the payload type.
func (t *Tx) Type() Type { return t.Payload.Type() }

// Size returns the encoded size.
func (t *Tx) Size() int { return len(t.bytes) }

// Parse decodes a signed transaction, refusing every non-canonical form. It
// copies b.
// It does not verify the signature or anything that needs the chain ID or
// state; see Check and VerifySignature.
func Parse(b []byte) (*Tx, error) {
	if len(b) > config.MaxTxSize {
		return nil, fmt.Errorf("%w: transaction is %d bytes, at most %d", ErrOversize, len(b), config.MaxTxSize)
	}
	return ParseOwned(bytes.Clone(b))
}

// ParseOwned is Parse without the copy: the transaction keeps b, which the
// caller must not modify afterwards. It suits a buffer made for the
// purpose, such as a freshly decoded request body.
func ParseOwned(b []byte) (*Tx, error) {
	if len(b) > config.MaxTxSize {
		return nil, fmt.Errorf("%w: transaction is %d bytes, at most %d", ErrOversize, len(b), config.MaxTxSize)
	}
	r := codec.NewReader(b)
	t, err := parseFrom(r)
	if err != nil {
		return nil, err
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	return t, nil
}

// ParseFrom decodes one transaction from r, which may hold more data after
// it (a block). The transaction aliases r's input.
func ParseFrom(r *codec.Reader) (*Tx, error) { return parseFrom(r) }

func parseFrom(r *codec.Reader) (*Tx, error) {
	start := r.Offset()
	if v := r.U8(); r.Err() == nil && v != Version {
		return nil, fmt.Errorf("%w: %d", ErrUnsupportedVersion, v)
	}
	var u Unsigned
	r.FixedInto(u.ChainID[:])
	typ := Type(r.U8())
	u.Author = r.SessionID()
	u.Nonce = r.U64()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	p := newPayload(typ)
	if p == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(typ))
	}
	p.decode(r)
	u.Payload = p
	unsignedLen := r.Offset() - start
	r.Fixed(crypto.SignatureSize)
	if err := r.Err(); err != nil {
		if errors.Is(err, codec.ErrOversize) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	end := r.Offset()
	return newTx(u, r.Slice(start, end), unsignedLen)
}

// Check performs every stateless check: the chain ID, the author's prefix
// and the payload rules.
func (t *Tx) Check(chainID ids.ID) error {
	if t.ChainID != chainID {
		return ErrWrongChainID
	}
	if !t.Author.IsPostQuantum() {
		return fmt.Errorf("%w: author prefix %02x", ErrInvalidSessionID, t.Author.Prefix)
	}
	if t.Type() == TypeRegisterIdentity && t.Nonce != 0 {
		return fmt.Errorf("%w: got %d", ErrRegistrationNonce, t.Nonce)
	}
	return t.Payload.check(t.Author)
}

// VerifySignature reports whether the signature verifies under pk, which
// must be the author's key.
func (t *Tx) VerifySignature(pk *crypto.DSAPublicKey) bool {
	return pk.VerifyContext([]byte(SignatureContext), t.UnsignedBytes(), t.Signature)
}

// SessionIDFor returns the deterministic ID of the session created by
// creator's transaction with the given nonce on chainID.
func SessionIDFor(chainID ids.ID, creator crypto.SessionID, nonce uint64) ids.ID {
	return derive("luxfi/session/v1/session", chainID, creator, nonce)
}

// ChannelIDFor returns the deterministic ID of the channel created by
// creator's transaction with the given nonce on chainID.
func ChannelIDFor(chainID ids.ID, creator crypto.SessionID, nonce uint64) ids.ID {
	return derive("luxfi/session/v1/channel", chainID, creator, nonce)
}

func derive(label string, chainID ids.ID, creator crypto.SessionID, nonce uint64) ids.ID {
	w := codec.NewWriter(len(label) + 80)
	w.String(label)
	w.Fixed(chainID[:])
	w.SessionID(creator)
	w.U64(nonce)
	return sha256.Sum256(w.B)
}
