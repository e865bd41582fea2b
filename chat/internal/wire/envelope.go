// Package wire parses and marshals the envelope of the messaging protocol
// (docs/protocol.md, section 6). Parsing is canonical: Marshal(Parse(b)) is b
// for every accepted b. It knows nothing of keys; package chat does the
// cryptography on the parsed fields.
package wire

import (
	"encoding/binary"
	"fmt"

	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/suite"
)

// ErrMalformed reports bytes that are not a version 1 envelope or body.
var ErrMalformed = errs.ErrMalformed

// Envelope constants.
const (
	Magic0  = 0x43 // 'C'
	Magic1  = 0x48 // 'H'
	Version = 0x01

	FixedHeaderSize = 2 + 1 + 1 + 1 + 1 + NonceSize // 22
	NonceSize       = 16
	FlagRatchetKey  = 0x01
	MaxStanzas      = limit.MaxParticipants - 1

	KindMessage = 0x01
	KindControl = 0x02

	IDSize        = 16
	BodyFixedSize = 1 + 8 + IDSize + IDSize + suite.SignatureSize // 3350, before the tag
	MinBodySize   = BodyFixedSize + suite.TagSize                 // 3366
)

// StanzaType is the first byte of a stanza.
type StanzaType uint8

// Stanza types.
const (
	None      StanzaType = 0x00
	Continue  StanzaType = 0x01
	Step      StanzaType = 0x02
	Handshake StanzaType = 0x03
)

// Stanza sizes, in bytes.
const (
	NoneSize         = 1
	ContinueSize     = 1 + TreeTagSize + suite.IDSize + 4 + suite.WrappedSize                                   // 73
	StepSize         = 1 + TreeTagSize + suite.IDSize + 4 + 4 + 4 + suite.KEMCiphertextSize + suite.WrappedSize // 1169
	HandshakeSize    = 1 + 4 + 4 + 4 + 2*suite.KEMCiphertextSize + suite.WrappedSize                            // 2237
	HandshakeOPKSize = HandshakeSize + suite.KEMCiphertextSize                                                  // 3325
)

// TreeTagSize is the length of the tree tag of continue and step stanzas:
// the first bytes of the tree ID.
const TreeTagSize = 4

// Stanza is one recipient's part of the header. Which fields are used
// depends on Type.
type Stanza struct {
	Type StanzaType

	// Tree is the tag of the tree the chain belongs to (Continue, Step).
	Tree [TreeTagSize]byte
	// Chain is the sender's chain (Continue) or the recipient's chain the
	// new chain is started against (Step).
	Chain [suite.IDSize]byte
	N     uint32 // Continue: message index, 1..49
	K     uint32 // Step: slot index, >= 1
	Q     uint32 // Step: the sender's chain sequence in the tree, >= 1
	PN    uint32 // Step: messages of the sender's previous chain, <= 50
	CT    []byte // Step: ML-KEM ciphertext

	SPKID uint32 // Handshake: signed prekey ID, >= 1
	OPKID uint32 // Handshake: one-time prekey ID, 0 for none
	Gen   uint32 // Handshake: the tree's generation, >= 1
	C1    []byte // Handshake: to the identity key
	C2    []byte // Handshake: to the signed prekey
	C3    []byte // Handshake: to the one-time prekey (OPKID != 0)

	Wrapped [suite.WrappedSize]byte
}

// Size is the stanza's encoded length.
func (s *Stanza) Size() int {
	switch s.Type {
	case None:
		return NoneSize
	case Continue:
		return ContinueSize
	case Step:
		return StepSize
	case Handshake:
		if s.OPKID != 0 {
			return HandshakeOPKSize
		}
		return HandshakeSize
	}
	return 0
}

// Asymmetric reports whether the stanza starts a chain (step or handshake),
// which requires the header's ratchet key.
func (s *Stanza) Asymmetric() bool { return s.Type == Step || s.Type == Handshake }

// AppendPrefix appends the stanza's bytes before Wrapped: the associated
// data of the wrap.
func (s *Stanza) AppendPrefix(dst []byte) []byte {
	dst = append(dst, byte(s.Type))
	switch s.Type {
	case Continue:
		dst = append(dst, s.Tree[:]...)
		dst = append(dst, s.Chain[:]...)
		dst = binary.BigEndian.AppendUint32(dst, s.N)
	case Step:
		dst = append(dst, s.Tree[:]...)
		dst = append(dst, s.Chain[:]...)
		dst = binary.BigEndian.AppendUint32(dst, s.K)
		dst = binary.BigEndian.AppendUint32(dst, s.Q)
		dst = binary.BigEndian.AppendUint32(dst, s.PN)
		dst = append(dst, s.CT...)
	case Handshake:
		dst = binary.BigEndian.AppendUint32(dst, s.SPKID)
		dst = binary.BigEndian.AppendUint32(dst, s.OPKID)
		dst = binary.BigEndian.AppendUint32(dst, s.Gen)
		dst = append(dst, s.C1...)
		dst = append(dst, s.C2...)
		if s.OPKID != 0 {
			dst = append(dst, s.C3...)
		}
	}
	return dst
}

func (s *Stanza) appendTo(dst []byte) []byte {
	dst = s.AppendPrefix(dst)
	if s.Type != None {
		dst = append(dst, s.Wrapped[:]...)
	}
	return dst
}

// Envelope is a parsed envelope. Slices alias the parsed input.
type Envelope struct {
	Sender     uint8
	Nonce      [NonceSize]byte
	RatchetKey []byte // nil, or the sender's 1184-byte ratchet key
	Stanzas    []Stanza
	Body       []byte
}

// HeaderSize is the encoded length of the header.
func (e *Envelope) HeaderSize() int {
	n := FixedHeaderSize
	if e.RatchetKey != nil {
		n += suite.KEMPublicKeySize
	}
	for i := range e.Stanzas {
		n += e.Stanzas[i].Size()
	}
	return n
}

// AppendHeader appends the encoded header.
func (e *Envelope) AppendHeader(dst []byte) []byte {
	flags := byte(0)
	if e.RatchetKey != nil {
		flags = FlagRatchetKey
	}
	dst = append(dst, Magic0, Magic1, Version, e.Sender, byte(len(e.Stanzas)), flags)
	dst = append(dst, e.Nonce[:]...)
	dst = append(dst, e.RatchetKey...)
	for i := range e.Stanzas {
		dst = e.Stanzas[i].appendTo(dst)
	}
	return dst
}

// Marshal returns header || body.
func (e *Envelope) Marshal() []byte {
	out := make([]byte, 0, e.HeaderSize()+len(e.Body))
	out = e.AppendHeader(out)
	return append(out, e.Body...)
}

// Check validates the fields of an envelope being built, with the rules
// Parse applies.
func (e *Envelope) Check() error {
	n := len(e.Stanzas)
	if n == 0 || n > MaxStanzas || int(e.Sender) > n {
		return fmt.Errorf("%w: %d stanzas, sender %d", ErrMalformed, n, e.Sender)
	}
	asym := false
	for i := range e.Stanzas {
		if err := e.Stanzas[i].check(); err != nil {
			return err
		}
		asym = asym || e.Stanzas[i].Asymmetric()
	}
	if asym != (e.RatchetKey != nil) || (e.RatchetKey != nil && len(e.RatchetKey) != suite.KEMPublicKeySize) {
		return fmt.Errorf("%w: ratchet key present iff a stanza starts a chain", ErrMalformed)
	}
	if len(e.Body) < MinBodySize {
		return fmt.Errorf("%w: body too short", ErrMalformed)
	}
	if e.HeaderSize()+len(e.Body) > limit.MaxEnvelopeSize {
		return fmt.Errorf("%w: longer than %d bytes", ErrMalformed, limit.MaxEnvelopeSize)
	}
	return nil
}

func (s *Stanza) check() error {
	switch s.Type {
	case None:
	case Continue:
		if s.N == 0 || s.N >= limit.MaxChainMessages {
			return fmt.Errorf("%w: continue index %d", ErrMalformed, s.N)
		}
	case Step:
		if s.K == 0 || s.Q == 0 || s.PN > limit.MaxChainMessages || len(s.CT) != suite.KEMCiphertextSize {
			return fmt.Errorf("%w: step fields", ErrMalformed)
		}
	case Handshake:
		if s.SPKID == 0 || s.Gen == 0 || len(s.C1) != suite.KEMCiphertextSize || len(s.C2) != suite.KEMCiphertextSize ||
			(s.OPKID != 0) != (len(s.C3) == suite.KEMCiphertextSize) || (s.OPKID == 0 && len(s.C3) != 0) {
			return fmt.Errorf("%w: handshake fields", ErrMalformed)
		}
	default:
		return fmt.Errorf("%w: stanza type %d", ErrMalformed, s.Type)
	}
	return nil
}

// Parse parses an envelope. The returned envelope's slices alias b.
func Parse(b []byte) (*Envelope, error) {
	if len(b) > limit.MaxEnvelopeSize {
		return nil, fmt.Errorf("%w: %w: longer than %d bytes", ErrMalformed, errs.ErrEnvelopeTooLarge, limit.MaxEnvelopeSize)
	}
	if len(b) < FixedHeaderSize {
		return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return nil, fmt.Errorf("%w: not a chat envelope", ErrMalformed)
	}
	if b[2] != Version {
		return nil, fmt.Errorf("%w: unsupported version %d", ErrMalformed, b[2])
	}
	e := &Envelope{Sender: b[3]}
	count, flags := int(b[4]), b[5]
	if count == 0 || count > MaxStanzas || int(e.Sender) > count {
		return nil, fmt.Errorf("%w: %d stanzas, sender %d", ErrMalformed, count, e.Sender)
	}
	if flags&^FlagRatchetKey != 0 {
		return nil, fmt.Errorf("%w: unknown flags", ErrMalformed)
	}
	copy(e.Nonce[:], b[6:FixedHeaderSize])
	r := reader{b: b, off: FixedHeaderSize}
	if flags&FlagRatchetKey != 0 {
		e.RatchetKey = r.bytes(suite.KEMPublicKeySize)
	}
	e.Stanzas = make([]Stanza, count)
	for i := range e.Stanzas {
		s := &e.Stanzas[i]
		s.Type = StanzaType(r.u8())
		switch s.Type {
		case None:
		case Continue:
			copy(s.Tree[:], r.bytes(TreeTagSize))
			copy(s.Chain[:], r.bytes(suite.IDSize))
			s.N = r.u32()
		case Step:
			copy(s.Tree[:], r.bytes(TreeTagSize))
			copy(s.Chain[:], r.bytes(suite.IDSize))
			s.K, s.Q, s.PN = r.u32(), r.u32(), r.u32()
			s.CT = r.bytes(suite.KEMCiphertextSize)
		case Handshake:
			s.SPKID, s.OPKID, s.Gen = r.u32(), r.u32(), r.u32()
			s.C1 = r.bytes(suite.KEMCiphertextSize)
			s.C2 = r.bytes(suite.KEMCiphertextSize)
			if s.OPKID != 0 {
				s.C3 = r.bytes(suite.KEMCiphertextSize)
			}
		default:
			if r.err == nil {
				return nil, fmt.Errorf("%w: stanza type %d", ErrMalformed, s.Type)
			}
		}
		if s.Type != None {
			copy(s.Wrapped[:], r.bytes(suite.WrappedSize))
		}
		if r.err != nil {
			return nil, fmt.Errorf("%w: truncated header", ErrMalformed)
		}
	}
	e.Body = b[r.off:]
	if err := e.Check(); err != nil {
		return nil, err
	}
	return e, nil
}

// reader reads big-endian fields; after the first short read every read
// returns zero values and err is set.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil || len(r.b)-r.off < n {
		r.err = ErrMalformed
		return nil
	}
	out := r.b[r.off : r.off+n : r.off+n]
	r.off += n
	return out
}

func (r *reader) u8() uint8 {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u32() uint32 {
	b := r.bytes(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

// Body is the decrypted body.
type Body struct {
	Kind   uint8
	SentAt int64 // Unix milliseconds
	// MID is the message ID seed of a content message (zero in a control
	// message); After is the ID of the last message the sender had seen.
	MID       [IDSize]byte
	After     [IDSize]byte
	Signature []byte
	Plaintext []byte
}

// Append appends kind || sentAt || mid || after || signature || plaintext.
func (b *Body) Append(dst []byte) []byte {
	dst = append(dst, b.Kind)
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.SentAt))
	dst = append(dst, b.MID[:]...)
	dst = append(dst, b.After[:]...)
	dst = append(dst, b.Signature...)
	return append(dst, b.Plaintext...)
}

// AppendUnsigned appends the body with room for the signature: kind ||
// sentAt || mid || after || SignatureSize bytes (left as dst's capacity
// holds them) || plaintext. The caller signs into that room.
func (b *Body) AppendUnsigned(dst []byte) []byte {
	dst = append(dst, b.Kind)
	dst = binary.BigEndian.AppendUint64(dst, uint64(b.SentAt))
	dst = append(dst, b.MID[:]...)
	dst = append(dst, b.After[:]...)
	n := len(dst) + suite.SignatureSize
	if n <= cap(dst) {
		dst = dst[:n]
	} else {
		dst = append(dst, make([]byte, suite.SignatureSize)...)
	}
	return append(dst, b.Plaintext...)
}

// ParseBody parses a decrypted body; its slices alias p.
func ParseBody(p []byte) (*Body, error) {
	if len(p) < BodyFixedSize {
		return nil, fmt.Errorf("%w: body too short", ErrMalformed)
	}
	b := &Body{
		Kind:      p[0],
		SentAt:    int64(binary.BigEndian.Uint64(p[1:9])),
		Signature: p[9+2*IDSize : BodyFixedSize : BodyFixedSize],
		Plaintext: p[BodyFixedSize:],
	}
	copy(b.MID[:], p[9:9+IDSize])
	copy(b.After[:], p[9+IDSize:9+2*IDSize])
	switch {
	case b.Kind != KindMessage && b.Kind != KindControl:
		return nil, fmt.Errorf("%w: body kind %d", ErrMalformed, b.Kind)
	case b.Kind == KindControl && (len(b.Plaintext) != 0 || b.MID != [IDSize]byte{} || b.After != [IDSize]byte{}):
		return nil, fmt.Errorf("%w: control message with content", ErrMalformed)
	case len(b.Plaintext) > limit.MaxPlaintextSize:
		return nil, fmt.Errorf("%w: plaintext longer than %d bytes", ErrMalformed, limit.MaxPlaintextSize)
	}
	return b, nil
}
