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
const recordVersion = 1

// deviceRecord holds the prekey secrets and counters of a device.
type deviceRecord struct {
	nextSigned, nextOneTime uint32
	signed                  []signedSecret // oldest first
	oneTime                 []oneTimeSecret
}

type signedSecret struct {
	id               uint32
	created, expires int64 // Unix ms
	seed             [suite.KEMSeedSize]byte
}

type oneTimeSecret struct {
	id   uint32
	seed [suite.KEMSeedSize]byte
}

func (d *deviceRecord) marshal() []byte {
	w := []byte{recordVersion}
	w = binary.BigEndian.AppendUint32(w, d.nextSigned)
	w = binary.BigEndian.AppendUint32(w, d.nextOneTime)
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
		w = append(w, o.seed[:]...)
	}
	return w
}

func parseDeviceRecord(b []byte) (*deviceRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	d := &deviceRecord{nextSigned: r.U32(), nextOneTime: r.U32()}
	ns := int(r.U8())
	r.Check(ns <= limit.MaxSignedPrekeys)
	for i := 0; i < ns && r.Err() == nil; i++ {
		s := signedSecret{id: r.U32(), created: r.I64(), expires: r.I64()}
		r.Copy(s.seed[:])
		r.Check(s.id != 0 && s.id < d.nextSigned)
		d.signed = append(d.signed, s)
	}
	no := int(r.U16())
	r.Check(no <= limit.MaxOneTimePrekeys)
	for i := 0; i < no && r.Err() == nil; i++ {
		o := oneTimeSecret{id: r.U32()}
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
	claims           []uint32
	// pending are the bundles the creator claimed one-time prekeys from,
	// until its first handshake with each participant.
	pending       []pendingBundle
	nextOutboxSeq uint64
	state         *ratchet.State
}

type pendingBundle struct {
	peer       uint8
	spkID      uint32
	spkExpires int64
	spk        []byte
	opkID      uint32
	opk        []byte
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
	w = append(w, c.self)
	for _, cl := range c.claims {
		w = binary.BigEndian.AppendUint32(w, cl)
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
	}
	w = binary.BigEndian.AppendUint64(w, c.nextOutboxSeq)
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
		c.self = r.U8()
		r.Check(int(c.self) < n)
		c.claims = make([]uint32, n-1)
		for i := range c.claims {
			c.claims[i] = r.U32()
		}
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
		r.Check(int(p.peer) < n && p.peer != c.self)
		c.pending = append(c.pending, p)
	}
	c.nextOutboxSeq = r.U64()
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

// outboxRecord is an envelope waiting to be confirmed on chain.
type outboxRecord struct {
	seq     uint64 // creation order
	created int64
	setup   bool
	// handshakes: the envelope carries handshakes, whose trees learn their
	// position when it is confirmed.
	handshakes bool
	claims     []Claim
	envelope   []byte
}

func (o *outboxRecord) marshal() []byte {
	w := []byte{recordVersion}
	w = binary.BigEndian.AppendUint64(w, o.seq)
	w = binary.BigEndian.AppendUint64(w, uint64(o.created))
	w = codec.AppendBool(w, o.setup)
	w = codec.AppendBool(w, o.handshakes)
	w = append(w, byte(len(o.claims)))
	for _, c := range o.claims {
		w = append(w, c.Participant.Prefix)
		w = append(w, c.Participant.Digest[:]...)
		w = binary.BigEndian.AppendUint32(w, c.PrekeyID)
	}
	return codec.AppendVarBytes(w, o.envelope)
}

func parseOutboxRecord(b []byte) (*outboxRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	o := &outboxRecord{seq: r.U64(), created: r.I64(), setup: r.Bool(), handshakes: r.Bool()}
	nc := int(r.U8())
	r.Check(nc < limit.MaxParticipants)
	for i := 0; i < nc && r.Err() == nil; i++ {
		var c Claim
		c.Participant.Prefix = r.U8()
		r.Copy(c.Participant.Digest[:])
		c.PrekeyID = r.U32()
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

// archiveRecord is a message in the history.
type archiveRecord struct {
	position  uint64
	sender    uint8
	fromSelf  bool
	setup     bool
	sentAt    int64
	plaintext []byte
}

func (a *archiveRecord) marshal() []byte {
	w := []byte{recordVersion}
	w = binary.BigEndian.AppendUint64(w, a.position)
	w = append(w, a.sender)
	w = codec.AppendBool(w, a.fromSelf)
	w = codec.AppendBool(w, a.setup)
	w = binary.BigEndian.AppendUint64(w, uint64(a.sentAt))
	return codec.AppendVarBytes(w, a.plaintext)
}

func parseArchiveRecord(b []byte) (*archiveRecord, error) {
	r := codec.NewReader(b)
	r.Check(r.U8() == recordVersion)
	a := &archiveRecord{position: r.U64(), sender: r.U8(), fromSelf: r.Bool(), setup: r.Bool(), sentAt: r.I64()}
	a.plaintext = r.VarBytes(limit.MaxPlaintextSize)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: archive record", ErrCorruptState)
	}
	return a, nil
}
