package tx

import (
	"fmt"
	"slices"
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
	TypeSetRequestPolicy
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
	TypeSetRequestPolicy: "setRequestPolicy",
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
	case TypeSetRequestPolicy:
		return &SetRequestPolicy{}
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

// RequestPolicy says who may send an identity message requests.
type RequestPolicy uint8

// Request policies. The zero value encodes as RequestsFromAnyone.
const (
	RequestsFromAnyone   RequestPolicy = 1 // any registered identity
	RequestsFromContacts RequestPolicy = 2 // only the identity's contacts
)

// String returns "anyone" or "contacts".
func (p RequestPolicy) String() string {
	switch p {
	case RequestsFromAnyone, 0:
		return "anyone"
	case RequestsFromContacts:
		return "contacts"
	}
	return fmt.Sprintf("policy(%d)", uint8(p))
}

// Wire returns the encoded value (the zero value is RequestsFromAnyone).
func (p RequestPolicy) Wire() uint8 {
	if p == 0 {
		return uint8(RequestsFromAnyone)
	}
	return uint8(p)
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
// it carries, its nonce is 0, and Work is its proof of work (CheckWork)
// bound to the block at AnchorHeight.
type RegisterIdentity struct {
	KEMPublicKey []byte
	DSAPublicKey []byte
	AnchorHeight uint64
	Work         uint64
}

// Claim is the claim entry of one pair handshake: the responder, the
// signed prekey the handshake uses and the one-time prekey it uses (0:
// none; accepted only when none is claimable by the claimer).
type Claim struct {
	Participant     crypto.SessionID
	SignedPrekeyID  uint32
	OneTimePrekeyID uint32
}

// CreateSession opens a session between the author and Participants
// (registered identities, not including the author), with a claim for
// each handshake the creator starts (at most one per participant).
type CreateSession struct {
	Participants []crypto.SessionID
	Claims       []Claim
	Metadata     []byte
}

// SendMessage posts an opaque ciphertext to a session, with a claim for
// each handshake it starts.
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

// PublishPrekeys publishes a signed prekey (replacing the current one),
// retires every unclaimed one-time prekey with an ID at or below
// RetireThrough (0: none), and publishes a batch of one-time prekeys. The
// transaction's signature by the identity authenticates them.
type PublishPrekeys struct {
	Signed        *SignedPrekey
	RetireThrough uint32
	OneTime       []OneTimePrekey
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

// SetChannelPolicy sets a channel's join policy and slow mode (owner
// only): a plain member posts at most once per SlowModeSeconds (0: no
// limit).
type SetChannelPolicy struct {
	Channel         ids.ID
	JoinPolicy      JoinPolicy
	SlowModeSeconds uint32
}

// SetRequestPolicy sets who may send the author message requests.
type SetRequestPolicy struct {
	Policy RequestPolicy
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
func (*SetRequestPolicy) Type() Type { return TypeSetRequestPolicy }

// ---- encoding ----

func (p *RegisterIdentity) encode(w *codec.Writer) {
	w.Fixed(p.KEMPublicKey)
	w.Fixed(p.DSAPublicKey)
	w.U64(p.AnchorHeight)
	w.U64(p.Work)
}

func (p *RegisterIdentity) decode(r *codec.Reader) {
	p.KEMPublicKey = r.Fixed(crypto.KEMPublicKeySize)
	p.DSAPublicKey = r.Fixed(crypto.DSAPublicKeySize)
	p.AnchorHeight = r.U64()
	p.Work = r.U64()
}

// ClaimSize is the encoded size of one claim entry.
const ClaimSize = 33 + 4 + 4

func encodeClaims(w *codec.Writer, claims []Claim) {
	w.U8(uint8(len(claims)))
	for _, c := range claims {
		w.SessionID(c.Participant)
		w.U32(c.SignedPrekeyID)
		w.U32(c.OneTimePrekeyID)
	}
}

func decodeClaims(r *codec.Reader) []Claim {
	n := smallCount(r, config.MaxParticipants-1, 0, "claims")
	if n == 0 {
		return nil
	}
	claims := make([]Claim, n)
	for i := range claims {
		claims[i] = Claim{Participant: r.SessionID(), SignedPrekeyID: r.U32(), OneTimePrekeyID: r.U32()}
	}
	return claims
}

func (p *CreateSession) encode(w *codec.Writer) {
	w.U32(uint32(len(p.Participants)))
	for _, id := range p.Participants {
		w.SessionID(id)
	}
	encodeClaims(w, p.Claims)
	w.Bytes(p.Metadata)
}

func (p *CreateSession) decode(r *codec.Reader) {
	if n := r.Count(config.MaxParticipants-1, "participants"); n > 0 {
		p.Participants = make([]crypto.SessionID, n)
		for i := range p.Participants {
			p.Participants[i] = r.SessionID()
		}
	}
	p.Claims = decodeClaims(r)
	p.Metadata = r.Bytes(config.MaxMetadataSize, "metadata")
}

func (p *SendMessage) encode(w *codec.Writer) {
	w.Fixed(p.Session[:])
	encodeClaims(w, p.Claims)
	w.Bytes(p.Ciphertext)
}

func (p *SendMessage) decode(r *codec.Reader) {
	r.FixedInto(p.Session[:])
	p.Claims = decodeClaims(r)
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
	w.U32(p.RetireThrough)
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
	p.RetireThrough = r.U32()
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
	w.U32(p.SlowModeSeconds)
}

func (p *SetChannelPolicy) decode(r *codec.Reader) {
	r.FixedInto(p.Channel[:])
	p.JoinPolicy = decodePolicy(r)
	p.SlowModeSeconds = r.U32()
}

func (p *SetRequestPolicy) encode(w *codec.Writer) { w.U8(p.Policy.Wire()) }

func (p *SetRequestPolicy) decode(r *codec.Reader) {
	p.Policy = RequestPolicy(r.U8())
	if p.Policy == 0 && r.Err() == nil { // the zero value encodes as anyone
		r.Fail(fmt.Errorf("%w: 0", ErrInvalidRequestPolicy))
	}
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
	// The FIPS 203 encapsulation-key check (microseconds), before any
	// work is verified.
	if !crypto.ValidKEMPublicKey(p.KEMPublicKey) {
		return fmt.Errorf("%w: ML-KEM-768 key", ErrInvalidPublicKey)
	}
	return nil
}

// checkClaims performs the stateless checks of claim entries: at most 31,
// each naming a distinct participant with the post-quantum prefix that is
// not the author, with a signed prekey ID of at least 1.
func checkClaims(author crypto.SessionID, claims []Claim) error {
	if len(claims) > config.MaxParticipants-1 {
		return fmt.Errorf("%w: %d claims", ErrOversize, len(claims))
	}
	for i, c := range claims {
		if !c.Participant.IsPostQuantum() {
			return fmt.Errorf("%w: claim %d names prefix %02x", ErrInvalidSessionID, i, c.Participant.Prefix)
		}
		if c.Participant == author {
			return fmt.Errorf("%w: claim %d names the author", ErrDuplicateParticipant, i)
		}
		if c.SignedPrekeyID == 0 {
			return fmt.Errorf("%w: claim %d names signed prekey 0", ErrInvalidPrekeyID, i)
		}
		for _, prev := range claims[:i] {
			if prev.Participant == c.Participant {
				return fmt.Errorf("%w: claim %d", ErrDuplicateClaim, i)
			}
		}
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
	if len(p.Metadata) > config.MaxMetadataSize {
		return ErrMetadataTooLarge
	}
	if err := checkClaims(author, p.Claims); err != nil {
		return err
	}
	for i, c := range p.Claims {
		if !slices.Contains(p.Participants, c.Participant) {
			return fmt.Errorf("%w: claim %d names %s, who is not listed", ErrNotParticipant, i, c.Participant)
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
	if err := checkClaims(author, p.Claims); err != nil {
		return err
	}
	return checkCiphertext(p.Ciphertext)
}

func (p *CloseSession) check(crypto.SessionID) error { return nil }

// invisibleRanges are the code points a channel name may not hold
// (docs/chain.md section 2): a fixed list, so that implementations with
// different Unicode tables agree. It holds the controls, the line and
// paragraph separators and the format characters of Unicode 15.0 that
// render invisibly or reorder text.
var invisibleRanges = [...][2]rune{
	{0x0000, 0x001F}, {0x007F, 0x009F}, {0x00AD, 0x00AD}, {0x0600, 0x0605}, {0x061C, 0x061C},
	{0x06DD, 0x06DD}, {0x070F, 0x070F}, {0x0890, 0x0891}, {0x08E2, 0x08E2}, {0x180E, 0x180E},
	{0x200B, 0x200F}, {0x2028, 0x202E}, {0x2060, 0x2064}, {0x2066, 0x206F}, {0xFEFF, 0xFEFF},
	{0xFFF9, 0xFFFB}, {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
	{0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001}, {0xE0020, 0xE007F},
}

// ValidChannelName reports whether name is acceptable: 1 to 64 bytes of
// UTF-8 without the code points of invisibleRanges.
func ValidChannelName(name string) bool {
	if len(name) == 0 || len(name) > config.MaxChannelNameSize || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		for _, rg := range invisibleRanges {
			if r >= rg[0] && r <= rg[1] {
				return false
			}
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
	if p.Signed == nil && len(p.OneTime) == 0 && p.RetireThrough == 0 {
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
	if len(p.OneTime) > 0 && p.OneTime[0].ID <= p.RetireThrough {
		return fmt.Errorf("%w: one-time prekey %d is at or below retireThrough %d", ErrPrekeyIDOrder, p.OneTime[0].ID, p.RetireThrough)
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
	if p.SlowModeSeconds > config.MaxSlowModeSeconds {
		return fmt.Errorf("%w: %d", ErrInvalidSlowMode, p.SlowModeSeconds)
	}
	return nil
}

func (p *SetRequestPolicy) check(crypto.SessionID) error {
	switch p.Policy {
	case 0, RequestsFromAnyone, RequestsFromContacts:
		return nil
	}
	return fmt.Errorf("%w: %d", ErrInvalidRequestPolicy, uint8(p.Policy))
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
