package chat

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// Conversation is this device's end of one session: Send encrypts a message
// for the other participants, Open decrypts one from the chain. It keeps
// its state in the device's store, and commits it atomically with the
// outbox (Send) or the archive (Open). Get one from Device.Conversation or
// Device.CreateConversation; there is one per session and device.
type Conversation struct {
	d       *Device
	id      [32]byte
	chainID [32]byte
	parts   []participant
	self    uint8
	env     ratchet.Env
	// rec is the committed record, parsed once (operations change it in
	// place and undo a failure by parsing committed again).
	rec       *conversationRecord
	committed []byte
	broken    error
	outboxN   int
	// seen is the highest position delivered, opened or not (a hint); it
	// reaches the stored state with the next commit.
	seen uint64
	// stepHint marks peers one of whose messages could not be opened for
	// lack of its chain (a lost chain start, or a key deleted here): the
	// next Send steps with them, so that they step in turn (docs/protocol.md,
	// section 7.2).
	stepHint map[uint8]bool
	// hinted remembers the unknown chains that already gave a hint, so
	// that one lost chain start makes one step, not one per message.
	hinted map[[1 + suite.IDSize]byte]bool
	// resetHint holds, per peer, the trees it sent in that this device does
	// not know, with the position of the first such message: a Send
	// re-initiates with the peer if one is still unknown then and its
	// handshake cannot merely be late (docs/protocol.md, section 10.3).
	resetHint map[uint8][]unknownTree
	// resolved are the peers whose reset hints the last send settled.
	resolved []uint8
	// contig: every position up to contig was delivered here (opened or
	// not) since this object was made; ahead holds the ones above it.
	contig uint64
	ahead  map[uint64]bool
}

// unknownTree is a tree a peer sent in that this device does not know.
type unknownTree struct {
	tag      [wire.TreeTagSize]byte
	position uint64
}

// resetDelay is how many positions after a message of an unknown tree a
// gap before it may still hold the tree's late handshake.
const resetDelay = 16

// see records that position was delivered.
func (c *Conversation) see(position uint64) {
	if position > c.seen {
		c.seen = position
	}
	if position <= c.contig {
		return
	}
	if position != c.contig+1 {
		if c.ahead == nil {
			c.ahead = map[uint64]bool{}
		}
		if len(c.ahead) < 4096 {
			c.ahead[position] = true
		}
		return
	}
	c.contig = position
	for c.ahead[c.contig+1] {
		delete(c.ahead, c.contig+1)
		c.contig++
	}
}

// lostHandshake reports whether a tree first seen at position cannot be
// waiting for a late handshake: every earlier position was delivered, or
// resetDelay later ones were.
func (c *Conversation) lostHandshake(position uint64) bool {
	return c.contig+1 >= position || c.seen >= position+resetDelay
}

type participant struct {
	identity *crypto.Identity
	sid      crypto.SessionID
	id       [suite.IdentityIDSize]byte
	dsa      *suite.Verifier // parsed on first use
}

// ID is the session's on-chain ID.
func (c *Conversation) ID() [32]byte { return c.id }

// Participants are the participants' Session IDs in chain order.
func (c *Conversation) Participants() []crypto.SessionID {
	out := make([]crypto.SessionID, len(c.parts))
	for i, p := range c.parts {
		out[i] = p.sid
	}
	return out
}

// Conversation returns the conversation of a session this device takes part
// in, created empty on first use. s must be verified by the caller (see
// Session); on later calls it must describe the same session. A device
// that replaced a lost one delivers the session's messages to it before it
// sends (docs/protocol.md, section 10.5).
func (d *Device) Conversation(s *Session) (*Conversation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conversation(s, nil)
}

// CreateConversation prepares the conversation of a session this device is
// about to create with a CreateSession transaction. bundles are the
// verified prekey bundles of the other participants, in order (nil for a
// participant the transaction makes no claim for); s.Claims must be
// ClaimsOf(bundles), the claims the transaction carries. The bundles are
// kept for the first handshakes (they use the session claims), so call
// this before issuing the transaction.
func (d *Device) CreateConversation(now time.Time, s *Session, bundles []*PrekeyBundle) (*Conversation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now = d.monotonic(now)
	parts, self, claims, err := d.checkSession(s)
	if err != nil {
		return nil, err
	}
	if self != 0 {
		return nil, fmt.Errorf("%w: the creator must be the first participant", ErrInvalidSession)
	}
	if len(bundles) != len(parts)-1 {
		return nil, fmt.Errorf("%w: %d bundles for %d participants", ErrInvalidBundle, len(bundles), len(parts)-1)
	}
	var pending []pendingBundle
	var want []sessionClaim
	for i, b := range bundles {
		if b == nil {
			continue
		}
		r := uint8(i + 1)
		spk, opk, err := d.checkBundle(b, &parts[r], now)
		if err != nil {
			return nil, err
		}
		p := pendingBundle{peer: r, spkID: b.SignedPrekey.ID, spkExpires: ms(b.SignedPrekey.ExpiresAt), spk: spk}
		if b.OneTimePrekey != nil {
			p.opkID, p.opk = b.OneTimePrekey.ID, opk
		}
		pending = append(pending, p)
		want = append(want, sessionClaim{peer: r, spk: p.spkID, opk: p.opkID})
	}
	if !slices.Equal(claims, want) {
		return nil, fmt.Errorf("%w: claims are not ClaimsOf(bundles)", ErrInvalidSession)
	}
	return d.conversation(s, pending)
}

func (d *Device) conversation(s *Session, pending []pendingBundle) (*Conversation, error) {
	parts, self, claims, err := d.checkSession(s)
	if err != nil {
		return nil, err
	}
	if c := d.convs[s.ID]; c != nil {
		if err := c.sameSession(parts, claims); err != nil {
			return nil, err
		}
		return c, nil
	}
	c := &Conversation{d: d, id: s.ID, chainID: s.ChainID, parts: parts, self: self}
	ids := make([][]byte, 0, len(parts)+1)
	ids = append(ids, suite.U8(uint8(len(parts))))
	for i := range parts {
		ids = append(ids, parts[i].id[:])
	}
	pd := suite.H32(suite.LabelParticipants, ids...)
	c.env = ratchet.Env{
		SC:          suite.H32(suite.LabelSession, suite.U8(1), s.ChainID[:], s.ID[:], pd[:]),
		Self:        ratchet.Party{Index: self, ID: parts[self].id},
		IdentityKEM: d.ikem,
		Keys:        d.keys,
	}
	b, err := d.store.LoadConversation(s.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		rec := &conversationRecord{
			chainID: s.ChainID, session: s.ID, self: self, claims: claims,
			pending: pending, protocol: pending != nil, state: ratchet.NewState(len(parts)),
		}
		for i := range parts {
			rec.ids = append(rec.ids, parts[i].id)
		}
		data, err := rec.marshal()
		if err != nil {
			return nil, err
		}
		if err := d.store.Commit(&Batch{Conversations: []ConversationWrite{{Session: s.ID, Data: data}}}); err != nil {
			return nil, err
		}
		c.rec, c.committed = rec, data
	case err != nil:
		return nil, err
	default:
		rec, err := parseConversationRecord(b)
		if err != nil {
			return nil, err
		}
		if rec.chainID != s.ChainID || rec.session != s.ID || rec.self != self || !slices.Equal(rec.claims, claims) ||
			len(rec.ids) != len(parts) {
			return nil, ErrSessionMismatch
		}
		for i := range parts {
			if rec.ids[i] != parts[i].id {
				return nil, ErrSessionMismatch
			}
		}
		c.rec, c.committed = rec, b
		c.seen = rec.state.Seen
		d.clock = max(d.clock, rec.lastSentAt)
	}
	out, err := d.store.LoadOutbox(s.ID)
	if err != nil {
		return nil, err
	}
	c.outboxN = len(out)
	d.convs[s.ID] = c
	return c, nil
}

func (c *Conversation) sameSession(parts []participant, claims []sessionClaim) error {
	if len(parts) != len(c.parts) || !slices.Equal(claims, c.rec.claims) {
		return ErrSessionMismatch
	}
	for i := range parts {
		if parts[i].id != c.parts[i].id {
			return ErrSessionMismatch
		}
	}
	return nil
}

// checkSession validates s and finds this device in it.
func (d *Device) checkSession(s *Session) ([]participant, uint8, []sessionClaim, error) {
	if s == nil {
		return nil, 0, nil, fmt.Errorf("%w: nil", ErrInvalidSession)
	}
	n := len(s.Participants)
	if n > limit.MaxParticipants {
		return nil, 0, nil, fmt.Errorf("%w: %w: %d", ErrInvalidSession, ErrTooManyParticipants, n)
	}
	if n < 2 {
		return nil, 0, nil, fmt.Errorf("%w: %d participants", ErrInvalidSession, n)
	}
	if s.ChainID != d.chainID {
		return nil, 0, nil, fmt.Errorf("%w: another chain", ErrInvalidSession)
	}
	parts := make([]participant, n)
	self := -1
	for i, id := range s.Participants {
		p, err := checkIdentity(id)
		if err != nil {
			return nil, 0, nil, fmt.Errorf("%w: participant %d: %w", ErrInvalidSession, i, err)
		}
		for j := range i {
			if parts[j].id == p.id {
				return nil, 0, nil, fmt.Errorf("%w: participant %d twice", ErrInvalidSession, i)
			}
		}
		if p.id == d.selfID {
			self = i
		}
		parts[i] = p
	}
	if self < 0 {
		return nil, 0, nil, fmt.Errorf("%w: this device's identity is not a participant", ErrInvalidSession)
	}
	if len(s.Claims) > n-1 {
		return nil, 0, nil, fmt.Errorf("%w: %d claims for %d participants", ErrInvalidSession, len(s.Claims), n)
	}
	var claims []sessionClaim
	for _, cl := range s.Claims {
		r := -1
		for i := 1; i < n; i++ {
			if parts[i].sid == cl.Participant {
				r = i
			}
		}
		if r < 0 || cl.SignedPrekeyID == 0 {
			return nil, 0, nil, fmt.Errorf("%w: a claim names no listed participant, or no signed prekey", ErrInvalidSession)
		}
		for _, o := range claims {
			if o.peer == uint8(r) {
				return nil, 0, nil, fmt.Errorf("%w: two claims for participant %d", ErrInvalidSession, r)
			}
		}
		claims = append(claims, sessionClaim{peer: uint8(r), spk: cl.SignedPrekeyID, opk: cl.OneTimePrekeyID})
	}
	return parts, uint8(self), claims, nil
}

func checkIdentity(id *crypto.Identity) (participant, error) {
	if id == nil {
		return participant{}, crypto.ErrInvalidPublicKey
	}
	derived, err := crypto.DeriveSessionID(id.KEMPublicKey, id.DSAPublicKey)
	if err != nil {
		return participant{}, err
	}
	if derived != id.SessionID {
		return participant{}, crypto.ErrInvalidSessionID
	}
	sid, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		return participant{}, err
	}
	if !suite.KEMPublicCanonical(id.KEMPublicKey) {
		return participant{}, crypto.ErrInvalidPublicKey
	}
	return participant{identity: id, sid: sid, id: idBytes(sid)}, nil
}

// checkBundle validates a participant's bundle and returns its prekeys.
func (d *Device) checkBundle(b *PrekeyBundle, p *participant, now time.Time) (spk, opk []byte, err error) {
	switch {
	case b == nil || b.Identity == nil:
		return nil, nil, fmt.Errorf("%w: missing", ErrInvalidBundle)
	case b.Identity.SessionID != p.identity.SessionID || !bytes.Equal(b.Identity.KEMPublicKey, p.identity.KEMPublicKey) ||
		!bytes.Equal(b.Identity.DSAPublicKey, p.identity.DSAPublicKey):
		return nil, nil, fmt.Errorf("%w: not the participant's identity", ErrInvalidBundle)
	case b.SignedPrekey.ID == 0 || !suite.KEMPublicCanonical(b.SignedPrekey.PublicKey):
		return nil, nil, fmt.Errorf("%w: signed prekey", ErrInvalidBundle)
	case !now.Before(b.SignedPrekey.ExpiresAt):
		return nil, nil, fmt.Errorf("%w: signed prekey expired", ErrInvalidBundle)
	case b.OneTimePrekey != nil && (b.OneTimePrekey.ID == 0 || !suite.KEMPublicCanonical(b.OneTimePrekey.PublicKey)):
		return nil, nil, fmt.Errorf("%w: one-time prekey", ErrInvalidBundle)
	}
	spk = bytes.Clone(b.SignedPrekey.PublicKey)
	if b.OneTimePrekey != nil {
		opk = bytes.Clone(b.OneTimePrekey.PublicKey)
	}
	return spk, opk, nil
}

// restore undoes the changes of a failed operation to the parsed record. If
// the committed record no longer parses (a bug), the conversation refuses
// every later call.
func (c *Conversation) restore() {
	rec, err := parseConversationRecord(c.committed)
	if err != nil {
		c.broken = fmt.Errorf("chat: internal error: the committed conversation record does not parse: %w", err)
		return
	}
	c.rec = rec
}

// commit writes the record, with the writes of b, atomically. On failure the
// record is restored.
func (c *Conversation) commit(b *Batch) error {
	c.rec.state.See(c.seen)
	data, err := c.rec.marshalHint(len(c.committed))
	if err != nil {
		c.restore()
		return err
	}
	b.Conversations = append(b.Conversations, ConversationWrite{Session: c.id, Data: data})
	if err := c.d.store.Commit(b); err != nil {
		c.restore()
		return err
	}
	c.committed = data
	c.d.keys.forget(c.id, c.rec.state)
	return nil
}

func (c *Conversation) peer(r uint8) (*ratchet.Peer, error) {
	p := &c.parts[r]
	return &ratchet.Peer{Party: ratchet.Party{Index: r, ID: p.id}, IK: p.identity.KEMPublicKey}, nil
}

func (c *Conversation) verifier(x uint8) (*suite.Verifier, error) {
	p := &c.parts[x]
	if p.dsa == nil {
		v, err := suite.NewVerifier(p.identity.DSAPublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: participant signing key", ErrInvalidSession)
		}
		p.dsa = v
	}
	return p.dsa, nil
}

// stanzaIndex is the position of recipient r's stanza in an envelope from x.
func stanzaIndex(r, x uint8) int {
	if r < x {
		return int(r)
	}
	return int(r) - 1
}

// envelopeIDOf identifies an envelope by its header hash and its body's
// authentication tag (docs/protocol.md, section 5.5): two valid envelopes
// that agree on both are the same envelope (the body is bound to the
// header by its AEAD, under a content key used once).
func envelopeIDOf(hh [32]byte, body []byte) EnvelopeID {
	return suite.H16(suite.LabelEnvelopeID, hh[:], body[len(body)-suite.TagSize:])
}

// messageIDOf is a content message's ID: its sender and the random seed mid
// it drew (docs/protocol.md, section 5.5).
func messageIDOf(sender []byte, mid [16]byte) MessageID {
	return suite.H16(suite.LabelMessageID, sender, mid[:])
}

// contentKey is ck = H32("…/content-key", r, kind, sentAt, mid, plaintext).
func contentKey(r []byte, kind uint8, sentAt int64, mid [16]byte, plaintext []byte) [32]byte {
	return suite.H32(suite.LabelContentKey, r, suite.U8(kind), suite.U64(uint64(sentAt)), mid[:], plaintext)
}

func wrapKey(mk ratchet.Key, nonce []byte, x, r uint8) [32]byte {
	return suite.H32(suite.LabelWrap, mk[:], nonce, suite.U8(x), suite.U8(r))
}

func transcript(sc ratchet.Key, sender []byte, hh [32]byte, b *wire.Body) [64]byte {
	return suite.H(suite.LabelTranscript, sc[:], sender, hh[:], suite.U8(b.Kind), suite.U64(uint64(b.SentAt)),
		b.MID[:], b.After[:], b.Plaintext)
}
