package state

import (
	"fmt"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state/codec"
)

// Identity is a registered identity: the public keys a sender needs.
type Identity struct {
	ID           crypto.SessionID
	KEMPublicKey []byte // crypto.KEMPublicKeySize bytes
	DSAPublicKey []byte // crypto.DSAPublicKeySize bytes
	Height       uint64 // height of the registering block (0: genesis)
	Timestamp    int64  // its timestamp, Unix milliseconds
}

// Session is a conversation between registered identities.
type Session struct {
	ID           ids.ID
	Creator      crypto.SessionID
	Participants []crypto.SessionID // creator first, then in the order given
	Metadata     []byte
	Height       uint64 // height of the creating block
	CreatedAt    int64  // Unix milliseconds
	ExpiresAt    int64  // Unix milliseconds; messages need block time < ExpiresAt
	Closed       bool
	ClosedBy     crypto.SessionID // zero unless Closed
	ClosedAt     int64            // Unix milliseconds; zero unless Closed
}

// SessionStatus is the derived status of a session at a point in time.
type SessionStatus uint8

// Session statuses.
const (
	SessionActive SessionStatus = iota + 1
	SessionClosed
	SessionExpired
)

// String returns "active", "closed" or "expired".
func (s SessionStatus) String() string {
	switch s {
	case SessionActive:
		return "active"
	case SessionClosed:
		return "closed"
	case SessionExpired:
		return "expired"
	default:
		return "unknown"
	}
}

// StatusAt returns the status of the session at block time now (Unix
// milliseconds).
func (s *Session) StatusAt(now int64) SessionStatus {
	switch {
	case s.Closed:
		return SessionClosed
	case now >= s.ExpiresAt:
		return SessionExpired
	default:
		return SessionActive
	}
}

// IsParticipant reports whether id takes part in the session.
func (s *Session) IsParticipant(id crypto.SessionID) bool {
	for _, p := range s.Participants {
		if p == id {
			return true
		}
	}
	return false
}

// Message is a message of a session or a post of a channel.
type Message struct {
	Target     ids.ID // session or channel
	Seq        uint64 // 1, 2, ... within Target
	Author     crypto.SessionID
	TxID       ids.ID
	Height     uint64
	Position   uint64 // Position(height, tx index)
	Timestamp  int64  // block time, Unix milliseconds
	Ciphertext []byte
}

// InboxEntry points at a message addressed to a recipient.
type InboxEntry struct {
	Position uint64 // the cursor: pass it back to fetch what follows
	Session  ids.ID
	Seq      uint64
}

// Channel is a multi-party channel.
type Channel struct {
	ID        ids.ID
	Owner     crypto.SessionID
	Name      string
	Height    uint64
	CreatedAt int64
	Members   uint32
}

func (i *Identity) encode() []byte {
	w := codec.NewWriter(crypto.KEMPublicKeySize + crypto.DSAPublicKeySize + 24)
	w.Fixed(i.KEMPublicKey)
	w.Fixed(i.DSAPublicKey)
	w.U64(i.Height)
	w.I64(i.Timestamp)
	return w.B
}

func decodeIdentity(id crypto.SessionID, b []byte) (*Identity, error) {
	r := codec.NewReader(b)
	i := &Identity{ID: id}
	i.KEMPublicKey = append([]byte(nil), r.Fixed(crypto.KEMPublicKeySize)...)
	i.DSAPublicKey = append([]byte(nil), r.Fixed(crypto.DSAPublicKeySize)...)
	i.Height = r.U64()
	i.Timestamp = r.I64()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: identity: %v", ErrCorrupt, err)
	}
	return i, nil
}

func (s *Session) encode() []byte {
	w := codec.NewWriter(128 + len(s.Participants)*SessionIDSize + len(s.Metadata))
	w.SessionID(s.Creator)
	w.U32(uint32(len(s.Participants)))
	for _, p := range s.Participants {
		w.SessionID(p)
	}
	w.Bytes(s.Metadata)
	w.U64(s.Height)
	w.I64(s.CreatedAt)
	w.I64(s.ExpiresAt)
	w.Bool(s.Closed)
	w.SessionID(s.ClosedBy)
	w.I64(s.ClosedAt)
	return w.B
}

func decodeSession(id ids.ID, b []byte) (*Session, error) {
	r := codec.NewReader(b)
	s := &Session{ID: id}
	s.Creator = r.SessionID()
	n := r.Count(config.MaxParticipants, "participants")
	s.Participants = make([]crypto.SessionID, n)
	for i := range s.Participants {
		s.Participants[i] = r.SessionID()
	}
	s.Metadata = append([]byte(nil), r.Bytes(config.MaxMetadataSize, "metadata")...)
	s.Height = r.U64()
	s.CreatedAt = r.I64()
	s.ExpiresAt = r.I64()
	s.Closed = r.Bool()
	s.ClosedBy = r.SessionID()
	s.ClosedAt = r.I64()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: session: %v", ErrCorrupt, err)
	}
	return s, nil
}

// appendEncoding appends the encoding of m to b.
func (m *Message) appendEncoding(b []byte) []byte {
	w := codec.Writer{B: b}
	w.SessionID(m.Author)
	w.Fixed(m.TxID[:])
	w.U64(m.Height)
	w.U64(m.Position)
	w.I64(m.Timestamp)
	w.Bytes(m.Ciphertext)
	return w.B
}

func decodeMessage(target ids.ID, seq uint64, b []byte) (*Message, error) {
	r := codec.NewReader(b)
	m := &Message{Target: target, Seq: seq}
	m.Author = r.SessionID()
	r.FixedInto(m.TxID[:])
	m.Height = r.U64()
	m.Position = r.U64()
	m.Timestamp = r.I64()
	m.Ciphertext = append([]byte(nil), r.Bytes(config.MaxCiphertextSize, "ciphertext")...)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: message: %v", ErrCorrupt, err)
	}
	return m, nil
}

func (c *Channel) encode() []byte {
	w := codec.NewWriter(96 + len(c.Name))
	w.SessionID(c.Owner)
	w.String(c.Name)
	w.U64(c.Height)
	w.I64(c.CreatedAt)
	w.U32(c.Members)
	return w.B
}

func decodeChannel(id ids.ID, b []byte) (*Channel, error) {
	r := codec.NewReader(b)
	c := &Channel{ID: id}
	c.Owner = r.SessionID()
	c.Name = r.String(config.MaxChannelNameSize, "name")
	c.Height = r.U64()
	c.CreatedAt = r.I64()
	c.Members = r.U32()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: channel: %v", ErrCorrupt, err)
	}
	return c, nil
}
