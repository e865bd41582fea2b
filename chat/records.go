package chat

import (
	"encoding/binary"
	"fmt"

	"github.com/luxfi/session/chat/internal/codec"
	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
)

// The stored records. Each starts with a version byte; LLM.md describes the
// layouts. They are local to this implementation (docs/protocol.md,
// section 13).
const recordVersion = 2

// deviceRecord holds the prekey secrets and counters of a device.
type deviceRecord struct {
	nextSigned, nextOneTime uint32
	// retireThrough is the highest one-time prekey ID retired: every upload
	// carries it (docs/protocol.md, section 11.3).
	retireThrough uint32
	signed        []signedSecret // oldest first
	oneTime       []oneTimeSecret
}

type signedSecret struct {
	id               uint32
	created, expires int64 // Unix ms
	seed             [suite.KEMSeedSize]byte
}

type oneTimeSecret struct {
	id uint32
	// deadline is 0 for a prekey no claim was noted for; for a claimed
	// one, when its secret is deleted if no handshake used it (Unix ms).
	deadline int64
	seed     [suite.KEMSeedSize]byte
}

func (d *deviceRecord) marshal() []byte {
	w := []byte{recordVersion}
	w = binary.BigEndian.AppendUint32(w, d.nextSigned)
	w = binary.BigEndian.AppendUint32(w, d.nextOneTime)
	w = binary.BigEndian.AppendUint32(w, d.retireThrough)
	w = append(w, byte(len(d.signed)))
	for _, s := range d.signed {
		w = binary.BigEndian.AppendUint32(w, s.id)
		w = binary.BigEndian.AppendUint64(w, uint64(s.created))
		w = binary.BigEndian.AppendUint64(w, uint64(s.expires))
		w = append(w, s.seed[:]...)
	}
	w = binary.BigEndian.AppendUint16(w, uint16(len(d.oneTime)))
	for _, o := range d.oneTime {
		w = binary.BigEndian.AppendUint32(w, o.id)
		w = binary.BigEndian.AppendUint64(w, uint64(o.deadline))
		w = append(w, o.seed[:]...)
	}
	return w
}

func parseDeviceRecord(b []byte) (*deviceRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	d := &deviceRecord{nextSigned: r.U32(), nextOneTime: r.U32(), retireThrough: r.U32()}
	r.Check(d.retireThrough < d.nextOneTime)
	ns := int(r.U8())
	r.Check(ns <= limit.MaxSignedPrekeys)
	for i := 0; i < ns && r.Err() == nil; i++ {
		s := signedSecret{id: r.U32(), created: r.I64(), expires: r.I64()}
		r.Copy(s.seed[:])
		r.Check(s.id != 0 && s.id < d.nextSigned)
		d.signed = append(d.signed, s)
	}
	no := int(r.U16())
	r.Check(no <= limit.MaxOneTimePrekeys+limit.MaxClaimedPrekeys)
	for i := 0; i < no && r.Err() == nil; i++ {
		o := oneTimeSecret{id: r.U32(), deadline: r.I64()}
		r.Copy(o.seed[:])
		r.Check(o.id != 0 && o.id < d.nextOneTime)
		d.oneTime = append(d.oneTime, o)
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: device record", ErrCorruptState)
	}
	return d, nil
}

// conversationRecord is the stored state of a session.
type conversationRecord struct {
	chainID, session [32]byte
	ids              [][suite.IdentityIDSize]byte
	self             uint8
	// claims are the creator's session claims, by participant index.
	claims []sessionClaim
	// pending are the bundles the creator made session claims from, until
	// the handshake that uses each has landed.
	pending       []pendingBundle
	nextOutboxSeq uint64
	// lastSentAt is the sentAt of the last content message sent (they are
	// strictly increasing); lastMessage the ID of the last content message
	// sent or opened, the next message's After.
	lastSentAt  int64
	lastMessage MessageID
	// excluded is the set of participants this device does not address
	// (bit i: participant i).
	excluded uint32
	// protocol: this device sent or opened an envelope of the protocol in
	// the session, so legacy formats are refused (docs/protocol.md,
	// section 16).
	protocol bool
	// healFrom is when the first content message since the last own send
	// was received (0: none), and receivedSince how many were: a ratchet
	// message is due after MaxChainMessages or MaxChainAge.
	healFrom      int64
	receivedSince uint32
	// dead remembers envelopes whose transactions were reported dead, with
	// their messages, in case one lands after all (bounded, oldest first).
	dead  []deadEnvelope
	state *ratchet.State
}

type sessionClaim struct {
	peer     uint8
	spk, opk uint32
}

type pendingBundle struct {
	peer       uint8
	spkID      uint32
	spkExpires int64
	spk        []byte
	opkID      uint32
	opk        []byte
	// used is the envelope whose handshake used the bundle (zero: unused);
	// spent: that envelope died.
	used  ratchet.ID
	spent bool
}

type deadEnvelope struct {
	envelope EnvelopeID
	message  MessageID
}

// sessionClaim returns the creator's session claim for participant r.
func (c *conversationRecord) sessionClaim(r uint8) *sessionClaim {
	for i := range c.claims {
		if c.claims[i].peer == r {
			return &c.claims[i]
		}
	}
	return nil
}

func (c *conversationRecord) marshal() ([]byte, error) { return c.marshalHint(0) }

// marshalHint is marshal into a buffer of capacity hint (the size of the
// previous encoding, which the new one is close to).
func (c *conversationRecord) marshalHint(hint int) ([]byte, error) {
	w := make([]byte, 0, max(hint+512, 1024))
	w = append(w, recordVersion)
	w = append(w, c.chainID[:]...)
	w = append(w, c.session[:]...)
	w = append(w, byte(len(c.ids)))
	for _, id := range c.ids {
		w = append(w, id[:]...)
	}
	w = append(w, c.self, byte(len(c.claims)))
	for _, cl := range c.claims {
		w = append(w, cl.peer)
		w = binary.BigEndian.AppendUint32(w, cl.spk)
		w = binary.BigEndian.AppendUint32(w, cl.opk)
	}
	w = append(w, byte(len(c.pending)))
	for _, p := range c.pending {
		w = append(w, p.peer)
		w = binary.BigEndian.AppendUint32(w, p.spkID)
		w = binary.BigEndian.AppendUint64(w, uint64(p.spkExpires))
		w = append(w, p.spk...)
		w = binary.BigEndian.AppendUint32(w, p.opkID)
		if p.opkID != 0 {
			w = append(w, p.opk...)
		}
		w = append(w, p.used[:]...)
		w = codec.AppendBool(w, p.spent)
	}
	w = binary.BigEndian.AppendUint64(w, c.nextOutboxSeq)
	w = binary.BigEndian.AppendUint64(w, uint64(c.lastSentAt))
	w = append(w, c.lastMessage[:]...)
	w = binary.BigEndian.AppendUint32(w, c.excluded)
	w = codec.AppendBool(w, c.protocol)
	w = binary.BigEndian.AppendUint64(w, uint64(c.healFrom))
	w = binary.BigEndian.AppendUint32(w, c.receivedSince)
	w = append(w, byte(len(c.dead)))
	for _, d := range c.dead {
		w = append(w, d.envelope[:]...)
		w = append(w, d.message[:]...)
	}
	// The state, length-prefixed: its length is patched in after.
	at := len(w)
	w = append(w, 0, 0, 0, 0)
	w, err := c.state.AppendBinary(w)
	if err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(w[at:], uint32(len(w)-at-4))
	return w, nil
}

// maxStateSize bounds a stored ratchet state.
const maxStateSize = 16 << 20

func parseConversationRecord(b []byte) (*conversationRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	c := &conversationRecord{}
	r.Copy(c.chainID[:])
	r.Copy(c.session[:])
	n := int(r.U8())
	r.Check(n >= 2 && n <= limit.MaxParticipants)
	if r.Err() == nil {
		c.ids = make([][suite.IdentityIDSize]byte, n)
		for i := range c.ids {
			r.Copy(c.ids[i][:])
		}
	}
	c.self = r.U8()
	r.Check(int(c.self) < n)
	nc := int(r.U8())
	r.Check(nc < n)
	for i := 0; i < nc && r.Err() == nil; i++ {
		cl := sessionClaim{peer: r.U8(), spk: r.U32(), opk: r.U32()}
		r.Check(cl.peer >= 1 && int(cl.peer) < n && cl.spk != 0 && c.sessionClaim(cl.peer) == nil)
		c.claims = append(c.claims, cl)
	}
	np := int(r.U8())
	r.Check(np < n)
	for i := 0; i < np && r.Err() == nil; i++ {
		p := pendingBundle{peer: r.U8(), spkID: r.U32(), spkExpires: r.I64()}
		p.spk = append([]byte(nil), r.Bytes(suite.KEMPublicKeySize)...)
		p.opkID = r.U32()
		if p.opkID != 0 {
			p.opk = append([]byte(nil), r.Bytes(suite.KEMPublicKeySize)...)
		}
		r.Copy(p.used[:])
		p.spent = r.Bool()
		r.Check(int(p.peer) < n && p.peer != c.self && (!p.spent || p.used != ratchet.ID{}))
		c.pending = append(c.pending, p)
	}
	c.nextOutboxSeq = r.U64()
	c.lastSentAt = r.I64()
	r.Copy(c.lastMessage[:])
	c.excluded = r.U32()
	r.Check(c.excluded>>n == 0 && c.excluded&(1<<c.self) == 0)
	c.protocol = r.Bool()
	c.healFrom = r.I64()
	c.receivedSince = r.U32()
	nd := int(r.U8())
	r.Check(nd <= limit.MaxDeadEnvelopes)
	for i := 0; i < nd && r.Err() == nil; i++ {
		var d deadEnvelope
		r.Copy(d.envelope[:])
		r.Copy(d.message[:])
		c.dead = append(c.dead, d)
	}
	n32 := r.U32()
	r.Check(n32 <= maxStateSize)
	st := r.Bytes(int(min(n32, maxStateSize)))
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: conversation record", ErrCorruptState)
	}
	c.state = new(ratchet.State)
	if err := c.state.UnmarshalBinary(st); err != nil {
		return nil, err
	}
	if len(c.state.Pairs) != n {
		return nil, fmt.Errorf("%w: conversation record: pairs", ErrCorruptState)
	}
	return c, nil
}

// Outbox record kinds.
const (
	outContent = 1 // a content message
	outSetup   = 2 // a setup message (control: handshakes before a content message)
	outRatchet = 3 // a ratchet message (control: steps)
)

// outboxRecord is an envelope waiting to land or die.
type outboxRecord struct {
	seq     uint64 // creation order
	created int64
	kind    uint8
	// handshakes: the envelope carries handshakes, whose trees learn that
	// they landed when it is confirmed.
	handshakes bool
	// superseded: its message was sent again because an earlier envelope
	// died (docs/protocol.md, section 10.4).
	superseded bool
	message    MessageID
	claims     []Claim
	envelope   []byte
}

func (o *outboxRecord) marshal() []byte {
	w := []byte{recordVersion}
	w = binary.BigEndian.AppendUint64(w, o.seq)
	w = binary.BigEndian.AppendUint64(w, uint64(o.created))
	w = append(w, o.kind)
	w = codec.AppendBool(w, o.handshakes)
	w = codec.AppendBool(w, o.superseded)
	w = append(w, o.message[:]...)
	w = append(w, byte(len(o.claims)))
	for _, c := range o.claims {
		w = append(w, c.Participant.Prefix)
		w = append(w, c.Participant.Digest[:]...)
		w = binary.BigEndian.AppendUint32(w, c.SignedPrekeyID)
		w = binary.BigEndian.AppendUint32(w, c.OneTimePrekeyID)
	}
	return codec.AppendVarBytes(w, o.envelope)
}

func parseOutboxRecord(b []byte) (*outboxRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	o := &outboxRecord{seq: r.U64(), created: r.I64(), kind: r.U8(), handshakes: r.Bool(), superseded: r.Bool()}
	r.Check(o.kind >= outContent && o.kind <= outRatchet)
	r.Copy(o.message[:])
	nc := int(r.U8())
	r.Check(nc < limit.MaxParticipants)
	for i := 0; i < nc && r.Err() == nil; i++ {
		var c Claim
		c.Participant.Prefix = r.U8()
		r.Copy(c.Participant.Digest[:])
		c.SignedPrekeyID = r.U32()
		c.OneTimePrekeyID = r.U32()
		o.claims = append(o.claims, c)
	}
	n := r.U32()
	r.Check(n <= limit.MaxEnvelopeSize)
	o.envelope = r.Bytes(int(min(n, limit.MaxEnvelopeSize))) // aliases b
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: outbox record", ErrCorruptState)
	}
	return o, nil
}

// Archive record kinds.
const (
	archiveMessage  = 1 // a content message, keyed by its MessageID
	archiveEnvelope = 2 // an envelope this device made, keyed by its EnvelopeID
)

// archiveRecord is a content message in the history, or (envelope) the
// marker of an envelope this device made, with the message it carries: a
// replay of an own envelope is recognised by it (docs/protocol.md, section
// 8, step 2).
type archiveRecord struct {
	envelope bool
	position uint64
	sender   uint8
	fromSelf bool
	sentAt   int64
	mid      [16]byte
	after    MessageID
	message  MessageID // envelope markers
	// plaintext aliases the record's bytes when parsed.
	plaintext []byte
}

func (a *archiveRecord) marshal() []byte {
	w := make([]byte, 0, 80+len(a.plaintext))
	w = append(w, recordVersion)
	if a.envelope {
		w = append(w, archiveEnvelope)
		return append(w, a.message[:]...)
	}
	w = append(w, archiveMessage)
	w = binary.BigEndian.AppendUint64(w, a.position)
	w = append(w, a.sender)
	w = codec.AppendBool(w, a.fromSelf)
	w = binary.BigEndian.AppendUint64(w, uint64(a.sentAt))
	w = append(w, a.mid[:]...)
	w = append(w, a.after[:]...)
	return codec.AppendVarBytes(w, a.plaintext)
}

func parseArchiveRecord(b []byte) (*archiveRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	a := &archiveRecord{}
	switch r.U8() {
	case archiveEnvelope:
		a.envelope = true
		r.Copy(a.message[:])
	case archiveMessage:
		a.position, a.sender, a.fromSelf, a.sentAt = r.U64(), r.U8(), r.Bool(), r.I64()
		r.Copy(a.mid[:])
		r.Copy(a.after[:])
		a.plaintext = r.VarBytes(limit.MaxPlaintextSize)
	default:
		r.Fail()
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: archive record", ErrCorruptState)
	}
	return a, nil
}
