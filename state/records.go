package state

import (
	"encoding/binary"
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

	Position uint64 // Position of the creating transaction
	TxID     ids.ID // the creating transaction
	// Accepted and Left are bit masks over participant indexes: bit i set
	// in Accepted means participant i accepted (the creator always has);
	// in Left, that it declined or left. Neither: pending (a request).
	Accepted uint32
	Left     uint32
	// Claims counts, per ordered pair (claimer i, target j), the claims i
	// made of j's prekeys in this session (at most
	// config.MaxClaimsPerPair). Nil until a pair claims (no allocation on
	// the message path).
	Claims *[config.MaxParticipants][config.MaxParticipants]uint8
}

// Participant states.
const (
	ParticipantPending ParticipantState = iota
	ParticipantAccepted
	ParticipantLeft
)

// ParticipantState is where a participant stands in a session.
type ParticipantState uint8

// String returns "pending", "accepted" or "left".
func (p ParticipantState) String() string {
	switch p {
	case ParticipantAccepted:
		return "accepted"
	case ParticipantLeft:
		return "left"
	}
	return "pending"
}

// Index returns the index of id among the participants, or -1.
func (s *Session) Index(id crypto.SessionID) int {
	for i, p := range s.Participants {
		if p == id {
			return i
		}
	}
	return -1
}

// State returns the state of participant i.
func (s *Session) State(i int) ParticipantState {
	switch {
	case s.Accepted&(1<<uint(i)) != 0:
		return ParticipantAccepted
	case s.Left&(1<<uint(i)) != 0:
		return ParticipantLeft
	}
	return ParticipantPending
}

// SetState sets participant i's state.
func (s *Session) SetState(i int, st ParticipantState) {
	bit := uint32(1) << uint(i)
	s.Accepted &^= bit
	s.Left &^= bit
	switch st {
	case ParticipantAccepted:
		s.Accepted |= bit
	case ParticipantLeft:
		s.Left |= bit
	}
}

// ClaimCount returns how many claims participant i made of participant
// j's prekeys in this session.
func (s *Session) ClaimCount(i, j int) int {
	if s.Claims == nil {
		return 0
	}
	return int(s.Claims[i][j])
}

// AddClaim counts a claim of participant i of participant j's prekeys.
func (s *Session) AddClaim(i, j int) {
	if s.Claims == nil {
		s.Claims = new([config.MaxParticipants][config.MaxParticipants]uint8)
	}
	s.Claims[i][j]++
}

// AcceptedOthers reports whether a participant other than the creator has
// accepted: until one has, the session is a message request.
func (s *Session) AcceptedOthers() bool { return s.Accepted&^1 != 0 }

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

// IsParticipant reports whether id is listed in the session (whatever its
// state).
func (s *Session) IsParticipant(id crypto.SessionID) bool { return s.Index(id) >= 0 }

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
	ID         ids.ID
	Owner      crypto.SessionID
	Name       string
	Height     uint64
	CreatedAt  int64
	Members    uint32 // owner included
	JoinPolicy uint8  // 1 open, 2 invite-only (tx.JoinPolicy)
	Invites    uint32 // outstanding invites
	Bans       uint32
	SlowMode   uint32 // seconds between a plain member's posts (0: none)
}

// Channel member roles (the value of a member entry).
const (
	RoleMember    uint8 = 1
	RoleModerator uint8 = 2
	RoleOwner     uint8 = 3
)

// RoleName returns "member", "moderator" or "owner".
func RoleName(role uint8) string {
	switch role {
	case RoleMember:
		return "member"
	case RoleModerator:
		return "moderator"
	case RoleOwner:
		return "owner"
	}
	return "none"
}

// Account is an identity's per-transaction state: its next nonce, the
// counts bounded per identity, its request policy and its rate-limit
// buckets (the theoretical arrival time of each, see docs/chain.md
// section 8). It is read and written once per transaction; a few rules
// also update another identity's (a channel owner's records, a removed
// member's memberships).
type Account struct {
	Nonce        uint64
	Channels     uint32 // channels owned
	Contacts     uint32 // contacts (status 1)
	Blocked      uint32 // blocked peers (status 2)
	Memberships  uint32 // channels the identity belongs to without owning them
	Records      uint32 // invites and bans held in the channels it owns
	ContactsOnly uint8  // 1: message requests from contacts only (SetRequestPolicy); 0: from anyone
	Buckets      [config.NumBuckets]int64
}

// accountSize is the encoded size of an Account.
const accountSize = 8 + 5*4 + 1 + 8*int(config.NumBuckets)

func (a *Account) appendEncoding(b []byte) []byte {
	w := codec.Writer{B: b}
	w.U64(a.Nonce)
	w.U32(a.Channels)
	w.U32(a.Contacts)
	w.U32(a.Blocked)
	w.U32(a.Memberships)
	w.U32(a.Records)
	w.U8(a.ContactsOnly)
	for _, t := range a.Buckets {
		w.I64(t)
	}
	return w.B
}

func decodeAccount(b []byte) (Account, error) {
	var a Account
	if len(b) != accountSize {
		return Account{}, fmt.Errorf("%w: account of %d bytes", ErrCorrupt, len(b))
	}
	r := codec.NewReader(b)
	a.Nonce = r.U64()
	a.Channels = r.U32()
	a.Contacts = r.U32()
	a.Blocked = r.U32()
	a.Memberships = r.U32()
	a.Records = r.U32()
	a.ContactsOnly = r.U8()
	for i := range a.Buckets {
		a.Buckets[i] = r.I64()
	}
	if err := r.Done(); err != nil || a.ContactsOnly > 1 {
		return Account{}, fmt.Errorf("%w: account: %v", ErrCorrupt, err)
	}
	return a, nil
}

// PrekeyRecord is what the chain keeps of an identity's prekeys: the
// current signed prekey (its key is in the transaction SignedTx) and the
// one it replaced (kept for claims until it expires), the highest IDs
// published, the unclaimed one-time prekeys, and the bucket of claims by
// strangers.
type PrekeyRecord struct {
	HasSigned       bool
	SignedID        uint32 // the current (and highest) signed prekey ID
	SignedExpiresAt int64  // Unix milliseconds
	SignedTx        ids.ID
	HasPrevious     bool
	PreviousID      uint32 // the signed prekey SignedID replaced
	PreviousExpires int64
	PreviousTx      ids.ID
	LastOneTimeID   uint32 // the highest one-time prekey ID published
	Unclaimed       uint32
	StrangerTAT     int64 // the strangerClaims bucket
}

// SignedValid reports whether id names the current signed prekey or the
// previous one, unexpired at time now (Unix ms): what a claim may name.
func (p *PrekeyRecord) SignedValid(id uint32, now int64) bool {
	switch {
	case p.HasSigned && id == p.SignedID:
		return now < p.SignedExpiresAt
	case p.HasPrevious && id == p.PreviousID:
		return now < p.PreviousExpires
	}
	return false
}

func (p *PrekeyRecord) encode() []byte {
	w := codec.NewWriter(2*(1+4+8+32) + 4 + 4 + 8)
	w.Bool(p.HasSigned)
	w.U32(p.SignedID)
	w.I64(p.SignedExpiresAt)
	w.Fixed(p.SignedTx[:])
	w.Bool(p.HasPrevious)
	w.U32(p.PreviousID)
	w.I64(p.PreviousExpires)
	w.Fixed(p.PreviousTx[:])
	w.U32(p.LastOneTimeID)
	w.U32(p.Unclaimed)
	w.I64(p.StrangerTAT)
	return w.B
}

func decodePrekeyRecord(b []byte) (PrekeyRecord, error) {
	var p PrekeyRecord
	r := codec.NewReader(b)
	p.HasSigned = r.Bool()
	p.SignedID = r.U32()
	p.SignedExpiresAt = r.I64()
	r.FixedInto(p.SignedTx[:])
	p.HasPrevious = r.Bool()
	p.PreviousID = r.U32()
	p.PreviousExpires = r.I64()
	r.FixedInto(p.PreviousTx[:])
	p.LastOneTimeID = r.U32()
	p.Unclaimed = r.U32()
	p.StrangerTAT = r.I64()
	if err := r.Done(); err != nil {
		return PrekeyRecord{}, fmt.Errorf("%w: prekey record: %v", ErrCorrupt, err)
	}
	return p, nil
}

// Counter is the message bookkeeping of a session or channel.
type Counter struct {
	Last   uint64 // sequence number of the latest message ever (0: none)
	Stored uint64 // messages stored now (retention and deletion lower it)
	First  uint64 // every sequence number below First is gone
	// Shares[i] is how many messages participant i of a session stores
	// (NShares is the participant count; 0 for a channel, whose counter
	// has no shares).
	Shares  [config.MaxParticipants]uint32
	NShares int
}

func (c *Counter) appendEncoding(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, c.Last)
	b = binary.BigEndian.AppendUint64(b, c.Stored)
	b = binary.BigEndian.AppendUint64(b, c.First)
	for _, v := range c.Shares[:c.NShares] {
		b = binary.BigEndian.AppendUint32(b, v)
	}
	return b
}

func decodeCounter(b []byte) (Counter, error) {
	n := (len(b) - 24) / 4
	if len(b) < 24 || (len(b)-24)%4 != 0 || n > config.MaxParticipants {
		return Counter{}, fmt.Errorf("%w: counter of %d bytes", ErrCorrupt, len(b))
	}
	c := Counter{
		Last:    binary.BigEndian.Uint64(b),
		Stored:  binary.BigEndian.Uint64(b[8:]),
		First:   binary.BigEndian.Uint64(b[16:]),
		NShares: n,
	}
	for i := range n {
		c.Shares[i] = binary.BigEndian.Uint32(b[24+4*i:])
	}
	return c, nil
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
	w := codec.NewWriter(192 + len(s.Participants)*(SessionIDSize+4) + len(s.Metadata))
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
	w.U64(s.Position)
	w.Fixed(s.TxID[:])
	w.U32(s.Accepted)
	w.U32(s.Left)
	// Claim counts: pairs u16 | (claimer u8 | target u8 | count u8) ×
	// pairs, by claimer then target, nonzero counts only.
	at := len(w.B)
	w.U16(0)
	if s.Claims != nil {
		pairs := 0
		for i := range s.Participants {
			for j := range s.Participants {
				if c := s.Claims[i][j]; c != 0 {
					w.U8(uint8(i))
					w.U8(uint8(j))
					w.U8(c)
					pairs++
				}
			}
		}
		binary.BigEndian.PutUint16(w.B[at:], uint16(pairs))
	}
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
	s.Position = r.U64()
	r.FixedInto(s.TxID[:])
	s.Accepted = r.U32()
	s.Left = r.U32()
	// Claims stay nil when no pair claimed (the common case: no
	// allocation on the message path).
	pairs := int(r.U16())
	if pairs > n*n {
		return nil, fmt.Errorf("%w: session: %d claim pairs for %d participants", ErrCorrupt, pairs, n)
	}
	for k := 0; k < pairs && r.Err() == nil; k++ {
		i, j, c := int(r.U8()), int(r.U8()), r.U8()
		if i >= n || j >= n || c == 0 {
			return nil, fmt.Errorf("%w: session: claim pair (%d, %d, %d)", ErrCorrupt, i, j, c)
		}
		if s.Claims == nil {
			s.Claims = new([config.MaxParticipants][config.MaxParticipants]uint8)
		}
		s.Claims[i][j] = c
	}
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
	w.U8(c.JoinPolicy)
	w.U32(c.Invites)
	w.U32(c.Bans)
	w.U32(c.SlowMode)
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
	c.JoinPolicy = r.U8()
	c.Invites = r.U32()
	c.Bans = r.U32()
	c.SlowMode = r.U32()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: channel: %v", ErrCorrupt, err)
	}
	return c, nil
}
