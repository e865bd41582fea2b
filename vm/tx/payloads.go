package tx

import (
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state/codec"
)

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
	TypePublishPrekeys
	TypeAcceptSession
	TypeSetContact
	TypeSetChannelPolicy
	TypeModerateChannel
	TypeDeletePosts
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
	TypePublishPrekeys:   "publishPrekeys",
	TypeAcceptSession:    "acceptSession",
	TypeSetContact:       "setContact",
	TypeSetChannelPolicy: "setChannelPolicy",
	TypeModerateChannel:  "moderateChannel",
	TypeDeletePosts:      "deletePosts",
}

// Types lists every transaction type in order.
func Types() []Type {
	out := make([]Type, 0, len(typeNames)-1)
	for t := TypeRegisterIdentity; int(t) < len(typeNames); t++ {
		out = append(out, t)
	}
	return out
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
	decode(r *codec.Reader)
	// check performs the stateless checks of the payload.
	check(author crypto.SessionID) error
}

// newPayload returns an empty payload of type t, or nil for an unknown
// type.
func newPayload(t Type) Payload {
	switch t {
	case TypeRegisterIdentity:
		return &RegisterIdentity{}
	case TypeCreateSession:
		return &CreateSession{}
	case TypeSendMessage:
		return &SendMessage{}
	case TypeCloseSession:
		return &CloseSession{}
	case TypeCreateChannel:
		return &CreateChannel{}
	case TypeJoinChannel:
		return &JoinChannel{}
	case TypeLeaveChannel:
		return &LeaveChannel{}
	case TypePostChannel:
		return &PostChannel{}
	case TypePublishPrekeys:
		return &PublishPrekeys{}
	case TypeAcceptSession:
		return &AcceptSession{}
	case TypeSetContact:
		return &SetContact{}
	case TypeSetChannelPolicy:
		return &SetChannelPolicy{}
	case TypeModerateChannel:
		return &ModerateChannel{}
	case TypeDeletePosts:
		return &DeletePosts{}
	}
	return nil
}

// JoinPolicy says who may join a channel.
type JoinPolicy uint8

// Join policies. The zero value encodes as PolicyOpen.
const (
	PolicyOpen       JoinPolicy = 1 // any registered identity that is not banned
	PolicyInviteOnly JoinPolicy = 2 // holders of an invite
)

// String returns "open" or "invite-only".
func (p JoinPolicy) String() string {
	switch p {
	case PolicyOpen:
		return "open"
	case PolicyInviteOnly:
		return "invite-only"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

func (p JoinPolicy) wire() uint8 {
	if p == 0 {
		return uint8(PolicyOpen)
	}
	return uint8(p)
}

func (p JoinPolicy) valid() bool { return p == 0 || p == PolicyOpen || p == PolicyInviteOnly }

// Decision is a participant's answer in AcceptSession.
type Decision uint8

// Decisions. The zero value encodes as DecisionAccept.
const (
	DecisionAccept  Decision = 1 // take part: messages reach the inbox
	DecisionDecline Decision = 2 // decline a request, or leave the session
)

// ContactStatus is an identity's status for a peer (SetContact).
type ContactStatus uint8

// Contact statuses.
const (
	ContactNone    ContactStatus = 0
	ContactTrusted ContactStatus = 1 // sessions from the peer skip the request step
	ContactBlocked ContactStatus = 2 // the peer may not include the identity in sessions
)

// String returns "none", "contact" or "blocked".
func (s ContactStatus) String() string {
	switch s {
	case ContactNone:
		return "none"
	case ContactTrusted:
		return "contact"
	case ContactBlocked:
		return "blocked"
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// ModerationAction is what a ModerateChannel does to its members.
type ModerationAction uint8

// Moderation actions.
const (
	ActionInvite ModerationAction = iota + 1
	ActionRevokeInvite
	ActionRemove
	ActionBan
	ActionUnban
	ActionMakeModerator
	ActionRevokeModerator
)

var actionNames = [...]string{"", "invite", "revokeInvite", "remove", "ban", "unban", "makeModerator", "revokeModerator"}

// String returns the camel-case name of a ("ban").
func (a ModerationAction) String() string {
	if a >= ActionInvite && a <= ActionRevokeModerator {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// RegisterIdentity publishes an identity's public keys. The author must be
// the Session ID derived from them; the transaction is signed by the DSA key
// it carries, and Work is its proof of work (CheckWork).
type RegisterIdentity struct {
	KEMPublicKey []byte
	DSAPublicKey []byte
	Work         uint64
}

// CreateSession opens a session between the author and Participants
// (registered identities, not including the author). Claims, if not nil,
// holds one one-time prekey ID per participant, in order (0: no claim);
// Parse gives nil when no participant is claimed from.
type CreateSession struct {
	Participants []crypto.SessionID
	Claims       []uint32
	Metadata     []byte
}

// Claim names one unclaimed one-time prekey of a session participant.
type Claim struct {
	Participant crypto.SessionID
	PrekeyID    uint32
}

// SendMessage posts an opaque ciphertext to a session, claiming one-time
// prekeys for the pairs its author starts.
type SendMessage struct {
	Session    ids.ID
	Claims     []Claim
	Ciphertext []byte
}

// CloseSession closes a session; later messages are refused.
type CloseSession struct {
	Session ids.ID
}

// CreateChannel creates a channel owned by the author.
type CreateChannel struct {
	Name       string
	JoinPolicy JoinPolicy
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

// SignedPrekey is a medium-term ML-KEM-768 prekey with an expiry (Unix
// milliseconds).
type SignedPrekey struct {
	ID           uint32
	ExpiresAt    int64
	KEMPublicKey []byte
}

// OneTimePrekey is an ML-KEM-768 prekey used by at most one session.
type OneTimePrekey struct {
	ID           uint32
	KEMPublicKey []byte
}

// PublishPrekeys publishes a signed prekey (replacing the current one)
// and/or a batch of one-time prekeys. The transaction's signature by the
// identity authenticates them.
type PublishPrekeys struct {
	Signed  *SignedPrekey
	OneTime []OneTimePrekey
}

// AcceptSession answers a session: accept (take part) or decline (leave).
type AcceptSession struct {
	Session  ids.ID
	Decision Decision
}

// SetContact sets the author's status for a peer.
type SetContact struct {
	Peer   crypto.SessionID
	Status ContactStatus
}

// SetChannelPolicy sets a channel's join policy (owner only).
type SetChannelPolicy struct {
	Channel    ids.ID
	JoinPolicy JoinPolicy
}

// ModerateChannel applies one action to up to config.MaxModerationItems
// members of a channel.
type ModerateChannel struct {
	Channel ids.ID
	Action  ModerationAction
	Members []crypto.SessionID
}

// DeletePosts deletes up to config.MaxDeleteItems posts of a channel.
type DeletePosts struct {
	Channel ids.ID
	Seqs    []uint64
}

func (*RegisterIdentity) Type() Type { return TypeRegisterIdentity }
func (*CreateSession) Type() Type    { return TypeCreateSession }
func (*SendMessage) Type() Type      { return TypeSendMessage }
func (*CloseSession) Type() Type     { return TypeCloseSession }
func (*CreateChannel) Type() Type    { return TypeCreateChannel }
func (*JoinChannel) Type() Type      { return TypeJoinChannel }
func (*LeaveChannel) Type() Type     { return TypeLeaveChannel }
func (*PostChannel) Type() Type      { return TypePostChannel }
func (*PublishPrekeys) Type() Type   { return TypePublishPrekeys }
func (*AcceptSession) Type() Type    { return TypeAcceptSession }
func (*SetContact) Type() Type       { return TypeSetContact }
func (*SetChannelPolicy) Type() Type { return TypeSetChannelPolicy }
func (*ModerateChannel) Type() Type  { return TypeModerateChannel }
func (*DeletePosts) Type() Type      { return TypeDeletePosts }

// ---- encoding ----

func (p *RegisterIdentity) encode(w *codec.Writer) {
	w.Fixed(p.KEMPublicKey)
	w.Fixed(p.DSAPublicKey)
	w.U64(p.Work)
}

func (p *RegisterIdentity) decode(r *codec.Reader) {
	p.KEMPublicKey = r.Fixed(crypto.KEMPublicKeySize)
	p.DSAPublicKey = r.Fixed(crypto.DSAPublicKeySize)
	p.Work = r.U64()
}

func (p *CreateSession) encode(w *codec.Writer) {
	w.U32(uint32(len(p.Participants)))
	for _, id := range p.Participants {
		w.SessionID(id)
	}
	for i := range p.Participants {
		var c uint32
		if i < len(p.Claims) {
			c = p.Claims[i]
		}
		w.U32(c)
	}
	w.Bytes(p.Metadata)
}

func (p *CreateSession) decode(r *codec.Reader) {
	n := r.Count(config.MaxParticipants-1, "participants")
	if n > 0 {
		p.Participants = make([]crypto.SessionID, n)
		for i := range p.Participants {
			p.Participants[i] = r.SessionID()
		}
		claims := make([]uint32, n)
		claimed := false
		for i := range claims {
			claims[i] = r.U32()
			claimed = claimed || claims[i] != 0
		}
		if claimed {
			p.Claims = claims
		}
	}
	p.Metadata = r.Bytes(config.MaxMetadataSize, "metadata")
}

func (p *SendMessage) encode(w *codec.Writer) {
	w.Fixed(p.Session[:])
	w.U8(uint8(len(p.Claims)))
	for _, c := range p.Claims {
		w.SessionID(c.Participant)
		w.U32(c.PrekeyID)
	}
	w.Bytes(p.Ciphertext)
}

func (p *SendMessage) decode(r *codec.Reader) {
	r.FixedInto(p.Session[:])
	if n := smallCount(r, config.MaxParticipants-1, 0, "claims"); n > 0 {
		p.Claims = make([]Claim, n)
		for i := range p.Claims {
			p.Claims[i] = Claim{Participant: r.SessionID(), PrekeyID: r.U32()}
		}
	}
	p.Ciphertext = r.Bytes(config.MaxCiphertextSize, "ciphertext")
}

func (p *CloseSession) encode(w *codec.Writer) { w.Fixed(p.Session[:]) }
func (p *CloseSession) decode(r *codec.Reader) { r.FixedInto(p.Session[:]) }

func (p *CreateChannel) encode(w *codec.Writer) {
	w.String(p.Name)
	w.U8(p.JoinPolicy.wire())
}

func (p *CreateChannel) decode(r *codec.Reader) {
	p.Name = r.String(config.MaxChannelNameSize, "channel name")
	p.JoinPolicy = decodePolicy(r)
}

// decodePolicy reads a join policy. 0 is refused: the zero value encodes
// as PolicyOpen, so a 0 on the wire would not re-encode to itself.
func decodePolicy(r *codec.Reader) JoinPolicy {
	v := r.U8()
	if v == 0 && r.Err() == nil {
		r.Fail(fmt.Errorf("%w: 0", ErrInvalidJoinPolicy))
	}
	return JoinPolicy(v)
}

func (p *JoinChannel) encode(w *codec.Writer)  { w.Fixed(p.Channel[:]) }
func (p *JoinChannel) decode(r *codec.Reader)  { r.FixedInto(p.Channel[:]) }
func (p *LeaveChannel) encode(w *codec.Writer) { w.Fixed(p.Channel[:]) }
func (p *LeaveChannel) decode(r *codec.Reader) { r.FixedInto(p.Channel[:]) }

func (p *PostChannel) encode(w *codec.Writer) {
	w.Fixed(p.Channel[:])
	w.Bytes(p.Ciphertext)
}

func (p *PostChannel) decode(r *codec.Reader) {
	r.FixedInto(p.Channel[:])
	p.Ciphertext = r.Bytes(config.MaxCiphertextSize, "ciphertext")
}

func (p *PublishPrekeys) encode(w *codec.Writer) {
	w.Bool(p.Signed != nil)
	if p.Signed != nil {
		w.U32(p.Signed.ID)
		w.I64(p.Signed.ExpiresAt)
		w.Fixed(p.Signed.KEMPublicKey)
	}
	w.U8(uint8(len(p.OneTime)))
	for _, k := range p.OneTime {
		w.U32(k.ID)
		w.Fixed(k.KEMPublicKey)
	}
}

func (p *PublishPrekeys) decode(r *codec.Reader) {
	if r.Bool() {
		p.Signed = &SignedPrekey{ID: r.U32(), ExpiresAt: r.I64(), KEMPublicKey: r.Fixed(crypto.KEMPublicKeySize)}
	}
	if n := smallCount(r, config.MaxPrekeysPerTx, 0, "one-time prekeys"); n > 0 {
		p.OneTime = make([]OneTimePrekey, n)
		for i := range p.OneTime {
			p.OneTime[i] = OneTimePrekey{ID: r.U32(), KEMPublicKey: r.Fixed(crypto.KEMPublicKeySize)}
		}
	}
}

func (p *AcceptSession) encode(w *codec.Writer) {
	w.Fixed(p.Session[:])
	d := p.Decision
	if d == 0 {
		d = DecisionAccept
	}
	w.U8(uint8(d))
}

func (p *AcceptSession) decode(r *codec.Reader) {
	r.FixedInto(p.Session[:])
	p.Decision = Decision(r.U8())
	if p.Decision == 0 && r.Err() == nil { // the zero value encodes as accept
		r.Fail(fmt.Errorf("%w: 0", ErrInvalidDecision))
	}
}

func (p *SetContact) encode(w *codec.Writer) {
	w.SessionID(p.Peer)
	w.U8(uint8(p.Status))
}

func (p *SetContact) decode(r *codec.Reader) {
	p.Peer = r.SessionID()
	p.Status = ContactStatus(r.U8())
}

func (p *SetChannelPolicy) encode(w *codec.Writer) {
	w.Fixed(p.Channel[:])
	w.U8(p.JoinPolicy.wire())
}

func (p *SetChannelPolicy) decode(r *codec.Reader) {
	r.FixedInto(p.Channel[:])
	p.JoinPolicy = decodePolicy(r)
}

func (p *ModerateChannel) encode(w *codec.Writer) {
	w.Fixed(p.Channel[:])
	w.U8(uint8(p.Action))
	w.U8(uint8(len(p.Members)))
	for _, m := range p.Members {
		w.SessionID(m)
	}
}

func (p *ModerateChannel) decode(r *codec.Reader) {
	r.FixedInto(p.Channel[:])
	p.Action = ModerationAction(r.U8())
	if n := smallCount(r, config.MaxModerationItems, 1, "members"); n > 0 {
		p.Members = make([]crypto.SessionID, n)
		for i := range p.Members {
			p.Members[i] = r.SessionID()
		}
	}
}

func (p *DeletePosts) encode(w *codec.Writer) {
	w.Fixed(p.Channel[:])
	w.U8(uint8(len(p.Seqs)))
	for _, s := range p.Seqs {
		w.U64(s)
	}
}

func (p *DeletePosts) decode(r *codec.Reader) {
	r.FixedInto(p.Channel[:])
	if n := smallCount(r, config.MaxDeleteItems, 1, "posts"); n > 0 {
		p.Seqs = make([]uint64, n)
		for i := range p.Seqs {
			p.Seqs[i] = r.U64()
		}
	}
}

// smallCount reads a u8 count in [min, max].
func smallCount(r *codec.Reader, max, min int, field string) int {
	n := int(r.U8())
	if r.Err() != nil {
		return 0
	}
	if n > max {
		r.Fail(fmt.Errorf("%w: %s has %d elements, at most %d", codec.ErrOversize, field, n, max))
		return 0
	}
	if n < min {
		r.Fail(fmt.Errorf("%w: %s has %d elements, at least %d", ErrMalformed, field, n, min))
		return 0
	}
	return n
}

// ---- stateless checks ----

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
	if p.Claims != nil && len(p.Claims) != len(p.Participants) {
		return fmt.Errorf("%w: %d claims for %d participants", ErrClaimCount, len(p.Claims), len(p.Participants))
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

func (p *SendMessage) check(author crypto.SessionID) error {
	if len(p.Claims) > config.MaxParticipants-1 {
		return fmt.Errorf("%w: %d claims", ErrOversize, len(p.Claims))
	}
	for i, c := range p.Claims {
		if !c.Participant.IsPostQuantum() {
			return fmt.Errorf("%w: claim %d names prefix %02x", ErrInvalidSessionID, i, c.Participant.Prefix)
		}
		if c.Participant == author {
			return fmt.Errorf("%w: claim %d names the author", ErrDuplicateParticipant, i)
		}
		if c.PrekeyID == 0 {
			return fmt.Errorf("%w: claim %d", ErrInvalidPrekeyID, i)
		}
		for _, prev := range p.Claims[:i] {
			if prev.Participant == c.Participant {
				return fmt.Errorf("%w: claim %d", ErrDuplicateClaim, i)
			}
		}
	}
	return checkCiphertext(p.Ciphertext)
}

func (p *CloseSession) check(crypto.SessionID) error { return nil }

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
	if !p.JoinPolicy.valid() {
		return fmt.Errorf("%w: %d", ErrInvalidJoinPolicy, uint8(p.JoinPolicy))
	}
	return nil
}

func (p *JoinChannel) check(crypto.SessionID) error  { return nil }
func (p *LeaveChannel) check(crypto.SessionID) error { return nil }
func (p *PostChannel) check(crypto.SessionID) error  { return checkCiphertext(p.Ciphertext) }

func (p *PublishPrekeys) check(crypto.SessionID) error {
	if p.Signed == nil && len(p.OneTime) == 0 {
		return ErrNoPrekeys
	}
	if len(p.OneTime) > config.MaxPrekeysPerTx {
		return fmt.Errorf("%w: %d one-time prekeys, at most %d", ErrTooManyPrekeys, len(p.OneTime), config.MaxPrekeysPerTx)
	}
	if s := p.Signed; s != nil {
		if s.ID == 0 {
			return fmt.Errorf("%w: signed prekey", ErrInvalidPrekeyID)
		}
		if !crypto.ValidKEMPublicKey(s.KEMPublicKey) {
			return fmt.Errorf("%w: signed prekey %d", ErrInvalidPrekey, s.ID)
		}
	}
	for i, k := range p.OneTime {
		if k.ID == 0 {
			return fmt.Errorf("%w: one-time prekey %d", ErrInvalidPrekeyID, i)
		}
		if i > 0 && k.ID <= p.OneTime[i-1].ID {
			return fmt.Errorf("%w: one-time prekey %d has ID %d after %d", ErrPrekeyIDOrder, i, k.ID, p.OneTime[i-1].ID)
		}
		if !crypto.ValidKEMPublicKey(k.KEMPublicKey) {
			return fmt.Errorf("%w: one-time prekey %d", ErrInvalidPrekey, k.ID)
		}
	}
	return nil
}

func (p *AcceptSession) check(crypto.SessionID) error {
	switch p.Decision {
	case 0, DecisionAccept, DecisionDecline:
		return nil
	}
	return fmt.Errorf("%w: %d", ErrInvalidDecision, uint8(p.Decision))
}

func (p *SetContact) check(author crypto.SessionID) error {
	if !p.Peer.IsPostQuantum() {
		return fmt.Errorf("%w: peer prefix %02x", ErrInvalidSessionID, p.Peer.Prefix)
	}
	if p.Peer == author {
		return ErrSelfContact
	}
	if p.Status > ContactBlocked {
		return fmt.Errorf("%w: %d", ErrInvalidContactStatus, uint8(p.Status))
	}
	return nil
}

func (p *SetChannelPolicy) check(crypto.SessionID) error {
	if !p.JoinPolicy.valid() {
		return fmt.Errorf("%w: %d", ErrInvalidJoinPolicy, uint8(p.JoinPolicy))
	}
	return nil
}

func (p *ModerateChannel) check(crypto.SessionID) error {
	if p.Action < ActionInvite || p.Action > ActionRevokeModerator {
		return fmt.Errorf("%w: %d", ErrInvalidModerationAction, uint8(p.Action))
	}
	if len(p.Members) == 0 || len(p.Members) > config.MaxModerationItems {
		return fmt.Errorf("%w: %d members, want 1 to %d", ErrMalformed, len(p.Members), config.MaxModerationItems)
	}
	for i, m := range p.Members {
		if !m.IsPostQuantum() {
			return fmt.Errorf("%w: member %d has prefix %02x", ErrInvalidSessionID, i, m.Prefix)
		}
		for _, prev := range p.Members[:i] {
			if prev == m {
				return fmt.Errorf("%w: member %d", ErrDuplicateItem, i)
			}
		}
	}
	return nil
}

func (p *DeletePosts) check(crypto.SessionID) error {
	if len(p.Seqs) == 0 || len(p.Seqs) > config.MaxDeleteItems {
		return fmt.Errorf("%w: %d posts, want 1 to %d", ErrMalformed, len(p.Seqs), config.MaxDeleteItems)
	}
	for i, s := range p.Seqs {
		if s == 0 {
			return fmt.Errorf("%w: sequence number 0", ErrUnknownPost)
		}
		for _, prev := range p.Seqs[:i] {
			if prev == s {
				return fmt.Errorf("%w: post %d", ErrDuplicateItem, s)
			}
		}
	}
	return nil
}
