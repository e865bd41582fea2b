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
// Payloads, by type:
//
//	1 RegisterIdentity  kemPublicKey [1184] | dsaPublicKey [1952]
//	2 CreateSession     count u32 | participants [33]... | metadata bytes(≤1 KiB)
//	3 SendMessage       session [32] | ciphertext bytes(≤64 KiB)
//	4 CloseSession      session [32]
//	5 CreateChannel     name bytes(≤64, UTF-8, no control characters)
//	6 JoinChannel       channel [32]
//	7 LeaveChannel      channel [32]
//	8 PostChannel       channel [32] | ciphertext bytes(≤64 KiB)
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
	"unicode"
	"unicode/utf8"

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

// Type identifies a transaction kind.
type Type uint8

// Transaction types.
const (
	TypeRegisterIdentity Type = iota + 1
	TypeCreateSession
	TypeSendMessage
	TypeCloseSession
	TypeCreateChannel
	TypeJoinChannel
	TypeLeaveChannel
	TypePostChannel
)

var typeNames = [...]string{
	TypeRegisterIdentity: "registerIdentity",
	TypeCreateSession:    "createSession",
	TypeSendMessage:      "sendMessage",
	TypeCloseSession:     "closeSession",
	TypeCreateChannel:    "createChannel",
	TypeJoinChannel:      "joinChannel",
	TypeLeaveChannel:     "leaveChannel",
	TypePostChannel:      "postChannel",
}

// String returns the camel-case name of t.
func (t Type) String() string {
	if int(t) < len(typeNames) && t != 0 {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Payload is the type-specific part of a transaction. The concrete types
// are the exported structs of this package.
type Payload interface {
	Type() Type
	encode(w *codec.Writer)
	// check performs the stateless checks of the payload.
	check(author crypto.SessionID) error
}

// RegisterIdentity publishes an identity's public keys. The author must be
// the Session ID derived from them; the transaction is signed by the DSA key
// it carries.
type RegisterIdentity struct {
	KEMPublicKey []byte
	DSAPublicKey []byte
}

// CreateSession opens a session between the author and Participants
// (registered identities, not including the author).
type CreateSession struct {
	Participants []crypto.SessionID
	Metadata     []byte
}

// SendMessage posts an opaque ciphertext to a session.
type SendMessage struct {
	Session    ids.ID
	Ciphertext []byte
}

// CloseSession closes a session; later messages are refused.
type CloseSession struct {
	Session ids.ID
}

// CreateChannel creates a channel owned by the author.
type CreateChannel struct {
	Name string
}

// JoinChannel adds the author to a channel.
type JoinChannel struct {
	Channel ids.ID
}

// LeaveChannel removes the author from a channel.
type LeaveChannel struct {
	Channel ids.ID
}

// PostChannel posts an opaque ciphertext to a channel.
type PostChannel struct {
	Channel    ids.ID
	Ciphertext []byte
}

func (*RegisterIdentity) Type() Type { return TypeRegisterIdentity }
func (*CreateSession) Type() Type    { return TypeCreateSession }
func (*SendMessage) Type() Type      { return TypeSendMessage }
func (*CloseSession) Type() Type     { return TypeCloseSession }
func (*CreateChannel) Type() Type    { return TypeCreateChannel }
func (*JoinChannel) Type() Type      { return TypeJoinChannel }
func (*LeaveChannel) Type() Type     { return TypeLeaveChannel }
func (*PostChannel) Type() Type      { return TypePostChannel }

func (p *RegisterIdentity) encode(w *codec.Writer) {
	w.Fixed(p.KEMPublicKey)
	w.Fixed(p.DSAPublicKey)
}

func (p *CreateSession) encode(w *codec.Writer) {
	w.U32(uint32(len(p.Participants)))
	for _, id := range p.Participants {
		w.SessionID(id)
	}
	w.Bytes(p.Metadata)
}

func (p *SendMessage) encode(w *codec.Writer) {
	w.Fixed(p.Session[:])
	w.Bytes(p.Ciphertext)
}

func (p *CloseSession) encode(w *codec.Writer)  { w.Fixed(p.Session[:]) }
func (p *CreateChannel) encode(w *codec.Writer) { w.String(p.Name) }
func (p *JoinChannel) encode(w *codec.Writer)   { w.Fixed(p.Channel[:]) }
func (p *LeaveChannel) encode(w *codec.Writer)  { w.Fixed(p.Channel[:]) }

func (p *PostChannel) encode(w *codec.Writer) {
	w.Fixed(p.Channel[:])
	w.Bytes(p.Ciphertext)
}

func (p *RegisterIdentity) check(author crypto.SessionID) error {
	if len(p.KEMPublicKey) != crypto.KEMPublicKeySize || len(p.DSAPublicKey) != crypto.DSAPublicKeySize {
		return ErrInvalidPublicKey
	}
	derived, err := crypto.DeriveSessionID(p.KEMPublicKey, p.DSAPublicKey)
	if err != nil {
		return ErrInvalidPublicKey
	}
	if derived != author.String() {
		return ErrSessionIDMismatch
	}
	return nil
}

func (p *CreateSession) check(author crypto.SessionID) error {
	if len(p.Participants) == 0 {
		return ErrNoParticipants
	}
	if len(p.Participants)+1 > config.MaxParticipants {
		return ErrTooManyParticipants
	}
	if len(p.Metadata) > config.MaxMetadataSize {
		return ErrMetadataTooLarge
	}
	// Quadratic in at most MaxParticipants (32): no map needed.
	for i, id := range p.Participants {
		if !id.IsPostQuantum() {
			return fmt.Errorf("%w: participant %d has prefix %02x", ErrInvalidSessionID, i, id.Prefix)
		}
		if id == author {
			return ErrDuplicateParticipant
		}
		for _, prev := range p.Participants[:i] {
			if prev == id {
				return ErrDuplicateParticipant
			}
		}
	}
	return nil
}

func checkCiphertext(c []byte) error {
	if len(c) == 0 {
		return ErrEmptyCiphertext
	}
	if len(c) > config.MaxCiphertextSize {
		return ErrCiphertextTooLarge
	}
	return nil
}

func (p *SendMessage) check(crypto.SessionID) error { return checkCiphertext(p.Ciphertext) }
func (p *CloseSession) check(crypto.SessionID) error {
	return nil
}

// ValidChannelName reports whether name is acceptable: 1 to 64 bytes of
// UTF-8 without control characters.
func ValidChannelName(name string) bool {
	if len(name) == 0 || len(name) > config.MaxChannelNameSize || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

func (p *CreateChannel) check(crypto.SessionID) error {
	if !ValidChannelName(p.Name) {
		return ErrInvalidChannelName
	}
	return nil
}
func (p *JoinChannel) check(crypto.SessionID) error  { return nil }
func (p *LeaveChannel) check(crypto.SessionID) error { return nil }
func (p *PostChannel) check(crypto.SessionID) error  { return checkCiphertext(p.Ciphertext) }

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
	switch typ {
	case TypeRegisterIdentity:
		p := &RegisterIdentity{}
		p.KEMPublicKey = r.Fixed(crypto.KEMPublicKeySize)
		p.DSAPublicKey = r.Fixed(crypto.DSAPublicKeySize)
		u.Payload = p
	case TypeCreateSession:
		p := &CreateSession{}
		n := r.Count(config.MaxParticipants-1, "participants")
		if n > 0 {
			p.Participants = make([]crypto.SessionID, n)
			for i := range p.Participants {
				p.Participants[i] = r.SessionID()
			}
		}
		p.Metadata = r.Bytes(config.MaxMetadataSize, "metadata")
		u.Payload = p
	case TypeSendMessage:
		p := &SendMessage{}
		r.FixedInto(p.Session[:])
		p.Ciphertext = r.Bytes(config.MaxCiphertextSize, "ciphertext")
		u.Payload = p
	case TypeCloseSession:
		p := &CloseSession{}
		r.FixedInto(p.Session[:])
		u.Payload = p
	case TypeCreateChannel:
		p := &CreateChannel{}
		p.Name = r.String(config.MaxChannelNameSize, "channel name")
		u.Payload = p
	case TypeJoinChannel:
		p := &JoinChannel{}
		r.FixedInto(p.Channel[:])
		u.Payload = p
	case TypeLeaveChannel:
		p := &LeaveChannel{}
		r.FixedInto(p.Channel[:])
		u.Payload = p
	case TypePostChannel:
		p := &PostChannel{}
		r.FixedInto(p.Channel[:])
		p.Ciphertext = r.Bytes(config.MaxCiphertextSize, "ciphertext")
		u.Payload = p
	default:
		return nil, fmt.Errorf("%w: %d", ErrUnknownType, uint8(typ))
	}
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
