package chat

import (
	"fmt"
	"time"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
)

// pairPlan is what one recipient's stanza of the next message needs.
type pairPlan struct {
	r      uint8
	act    ratchet.Action
	bundle *ratchet.Bundle
	claim  *Claim // for the transaction that carries the handshake
	size   int    // stanza size for this action
}

// Send encrypts plaintext for every other participant and returns the
// envelopes to send, in order, each in its own SendMessage transaction with
// the claims it lists (usually one envelope; more when handshakes do not fit
// beside the content, docs/protocol.md section 7.3). dir gives prekey
// bundles for participants that need a handshake; it may be nil when none
// does.
//
// The advanced state and the envelopes (in the outbox) are committed before
// Send returns, so a crash can never make it reuse a key: after a restart,
// Outbox returns the same envelopes, to send as they are. Confirm each one
// when it is on chain (Open of the own envelope does it too).
func (c *Conversation) Send(now time.Time, plaintext []byte, dir Directory) ([]Outgoing, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(plaintext) > limit.MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrPlaintextTooLarge, len(plaintext), limit.MaxPlaintextSize)
	}
	rec, err := c.record()
	if err != nil {
		return nil, err
	}
	st := rec.state
	nowMs := ms(now)
	for r := range c.stepHint {
		st.ForceStep(r)
	}
	var resets []uint8
	for r, trees := range c.resetHint {
		if st.PendingHandshake(r) {
			continue // decide when the handshake in flight is on chain
		}
		lost, waiting := false, false
		for _, u := range trees {
			switch {
			case st.KnowsTree(r, u.tag):
			case c.lostHandshake(u.position):
				lost = true
			default:
				waiting = true
			}
		}
		if lost {
			st.Reset(r)
		}
		if lost || !waiting {
			resets = append(resets, r)
		}
	}

	// What every pair needs.
	var plans []*pairPlan
	var handshakes []*pairPlan
	asymmetric := false
	for r := range uint8(len(c.parts)) {
		if r == c.self {
			continue
		}
		p := &pairPlan{r: r, act: st.Plan(r, nowMs)}
		switch p.act {
		case ratchet.ActHandshake:
			if p.bundle, p.claim, err = c.bundleFor(rec, r, dir, now); err != nil {
				return nil, err
			}
			p.size = wire.HandshakeSize
			if p.bundle.OPKID != 0 {
				p.size = wire.HandshakeOPKSize
			}
			handshakes = append(handshakes, p)
		case ratchet.ActStep:
			p.size, asymmetric = wire.StepSize, true
		default:
			p.size = wire.ContinueSize
		}
		plans = append(plans, p)
	}

	// The content message keeps the longest prefix of the handshakes that
	// fits; the others go, in order, into setup messages before it.
	base := wire.FixedHeaderSize + wire.MinBodySize + len(plaintext)
	contentSize := func(h int) int {
		size := base
		if asymmetric || h > 0 {
			size += suite.KEMPublicKeySize
		}
		for _, p := range plans {
			switch {
			case p.act != ratchet.ActHandshake:
				size += p.size
			case indexOf(handshakes, p) < h:
				size += p.size
			default:
				size += wire.ContinueSize
			}
		}
		return size
	}
	hc := len(handshakes)
	for hc > 0 && contentSize(hc) > limit.MaxEnvelopeSize {
		hc--
	}
	var setups [][]*pairPlan
	rest := handshakes[hc:]
	for len(rest) > 0 {
		m, size := 0, wire.FixedHeaderSize+suite.KEMPublicKeySize+wire.MinBodySize+len(plans)*wire.NoneSize
		for m < len(rest) && size+rest[m].size-wire.NoneSize <= limit.MaxEnvelopeSize {
			size += rest[m].size - wire.NoneSize
			m++
		}
		setups = append(setups, rest[:m])
		rest = rest[m:]
	}
	if c.outboxN+len(setups)+1 > limit.MaxOutbox {
		return nil, fmt.Errorf("%w: %d envelopes waiting, at most %d", ErrOutboxFull, c.outboxN, limit.MaxOutbox)
	}

	b := &Batch{}
	var outs []Outgoing
	emit := func(kind uint8, pt []byte, hs []*pairPlan) error {
		o, env, err := c.build(rec, now, kind, pt, hs)
		if err != nil {
			return err
		}
		or := &outboxRecord{seq: rec.nextOutboxSeq, created: nowMs, setup: kind == wire.KindSetup, handshakes: kind == wire.KindSetup || len(hs) > 0,
			claims: o.Claims, envelope: env}
		rec.nextOutboxSeq++
		b.Outbox = append(b.Outbox, RecordWrite{Session: c.id, ID: o.ID, Data: or.marshal()})
		if kind == wire.KindMessage {
			a := &archiveRecord{sender: c.self, fromSelf: true, sentAt: nowMs, plaintext: pt}
			b.Archive = append(b.Archive, RecordWrite{Session: c.id, ID: o.ID, Data: a.marshal()})
		}
		outs = append(outs, o)
		return nil
	}
	for _, hs := range setups {
		if err := emit(wire.KindSetup, nil, hs); err != nil {
			return nil, err
		}
	}
	if err := emit(wire.KindMessage, plaintext, handshakes[:hc]); err != nil {
		return nil, err
	}
	data, err := rec.marshalHint(len(c.committed))
	if err != nil {
		return nil, err
	}
	b.Conversations = []ConversationWrite{{Session: c.id, Data: data}}
	if err := d.store.Commit(b); err != nil {
		return nil, err
	}
	c.committed = data
	c.outboxN += len(outs)
	c.stepHint = nil
	for _, r := range resets {
		delete(c.resetHint, r)
	}
	return outs, nil
}

func indexOf(ps []*pairPlan, p *pairPlan) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// build makes one envelope, advancing rec's state: a content message
// (handshakes hs, then steps and continues as the state plans them) or a
// setup message (handshakes hs, none for the others). Randomness is drawn in
// the order of docs/protocol.md, section 7.4.
func (c *Conversation) build(rec *conversationRecord, now time.Time, kind uint8, plaintext []byte, hs []*pairPlan) (Outgoing, []byte, error) {
	d, st, nowMs := c.d, rec.state, ms(now)
	e := &wire.Envelope{Sender: c.self, Stanzas: make([]wire.Stanza, len(c.parts)-1)}
	var ck [32]byte
	if err := suite.Read(d.rand, e.Nonce[:]); err != nil {
		return Outgoing{}, nil, err
	}
	if err := suite.Read(d.rand, ck[:]); err != nil {
		return Outgoing{}, nil, err
	}
	acts := make([]ratchet.Action, len(c.parts))
	byPeer := make(map[uint8]*pairPlan, len(hs))
	asym := false
	for _, p := range hs {
		byPeer[p.r] = p
	}
	for r := range uint8(len(c.parts)) {
		switch {
		case r == c.self:
		case byPeer[r] != nil:
			acts[r], asym = ratchet.ActHandshake, true
		case kind == wire.KindSetup:
			acts[r] = 0 // none
		default:
			acts[r] = st.Plan(r, nowMs)
			switch acts[r] {
			case ratchet.ActStep:
				asym = true
			case ratchet.ActHandshake:
				return Outgoing{}, nil, fmt.Errorf("chat: internal error: unplanned handshake")
			}
		}
	}
	in := &ratchet.StepInput{Envelope: e.Nonce}
	if asym {
		var seed [suite.KEMSeedSize]byte
		if err := suite.Read(d.rand, seed[:]); err != nil {
			return Outgoing{}, nil, err
		}
		kp, err := suite.NewKEMFromSeed(seed[:])
		if err != nil {
			return Outgoing{}, nil, err
		}
		d.keys.put(&seed, kp)
		e.RatchetKey, in.RatchetKey, in.Seed = kp.Public, kp.Public, &seed
	}
	var claims []Claim
	for r := range uint8(len(c.parts)) {
		if r == c.self {
			continue
		}
		s := &e.Stanzas[stanzaIndex(r, c.self)]
		var mk ratchet.Key
		var err error
		switch acts[r] {
		case ratchet.ActHandshake:
			p := byPeer[r]
			seeds := make([][]byte, 2, 3)
			if p.bundle.OPKID != 0 {
				seeds = seeds[:3]
			}
			for i := range seeds {
				seeds[i] = make([]byte, suite.EncapsSeedSize)
				if err := suite.Read(d.rand, seeds[i]); err != nil {
					return Outgoing{}, nil, err
				}
			}
			peer, err := c.peer(r)
			if err != nil {
				return Outgoing{}, nil, err
			}
			if mk, err = st.Initiate(&c.env, peer, p.bundle, nowMs, in, seeds, s); err != nil {
				return Outgoing{}, nil, err
			}
			if p.claim != nil {
				claims = append(claims, *p.claim)
			}
			rec.usePending(r)
		case ratchet.ActStep:
			m := make([]byte, suite.EncapsSeedSize)
			if err := suite.Read(d.rand, m); err != nil {
				return Outgoing{}, nil, err
			}
			peer, err := c.peer(r)
			if err != nil {
				return Outgoing{}, nil, err
			}
			if mk, err = st.Step(&c.env, peer, nowMs, in, m, s); err != nil {
				return Outgoing{}, nil, err
			}
		case ratchet.ActContinue:
			if mk, err = st.Continue(r, nowMs, s); err != nil {
				return Outgoing{}, nil, err
			}
		default:
			s.Type = wire.None
			continue
		}
		wk := wrapKey(mk, e.Nonce[:], c.self, r)
		var wrapped []byte
		wrapped = suite.Wrap(wrapped, &wk, &ck, s.AppendPrefix(nil))
		copy(s.Wrapped[:], wrapped)
	}
	header := e.AppendHeader(make([]byte, 0, e.HeaderSize()+wire.MinBodySize+len(plaintext)))
	hh := suite.H32(suite.LabelHeader, header)
	sentAt := nowMs
	m := transcript(c.env.SC, c.parts[c.self].id[:], hh, kind, sentAt, plaintext)
	sig, err := d.signer.Sign(m[:])
	if err != nil {
		return Outgoing{}, nil, err
	}
	body := (&wire.Body{Kind: kind, SentAt: sentAt, Signature: sig, Plaintext: plaintext}).Append(nil)
	env := suite.SealBody(header, &ck, body, hh[:])
	if len(env) > limit.MaxEnvelopeSize {
		return Outgoing{}, nil, fmt.Errorf("%w: chat: internal error: %d bytes", ErrEnvelopeTooLarge, len(env))
	}
	return Outgoing{ID: messageIDOf(hh, env[len(header):]), Envelope: env, Claims: claims, Setup: kind == wire.KindSetup}, env, nil
}

// bundleFor returns the bundle of the handshake with participant r: the one
// the creator kept from session creation (its one-time prekey is already
// claimed), else the directory's (whose one-time prekey the transaction
// claims).
func (c *Conversation) bundleFor(rec *conversationRecord, r uint8, dir Directory, now time.Time) (*ratchet.Bundle, *Claim, error) {
	for _, p := range rec.pending {
		if p.peer == r && now.Before(time.UnixMilli(p.spkExpires)) {
			return c.parseBundle(p.spkID, p.spk, p.opkID, p.opk)
		}
	}
	if dir == nil {
		return nil, nil, fmt.Errorf("%w: participant %d", ErrNoBundle, r)
	}
	b, err := dir.PrekeyBundle(c.parts[r].sid)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: participant %d: %w", ErrNoBundle, r, err)
	}
	spk, opk, err := c.d.checkBundle(b, &c.parts[r], now)
	if err != nil {
		return nil, nil, err
	}
	var opkID uint32
	if b.OneTimePrekey != nil {
		opkID = b.OneTimePrekey.ID
	}
	rb, _, err := c.parseBundle(b.SignedPrekey.ID, spk, opkID, opk)
	if err != nil {
		return nil, nil, err
	}
	var claim *Claim
	if opkID != 0 {
		claim = &Claim{Participant: c.parts[r].sid, PrekeyID: opkID}
	}
	return rb, claim, nil
}

func (c *Conversation) parseBundle(spkID uint32, spk []byte, opkID uint32, opk []byte) (*ratchet.Bundle, *Claim, error) {
	b := &ratchet.Bundle{SPKID: spkID, SPKRaw: spk, OPKID: opkID, OPKRaw: opk}
	var err error
	if b.SPK, err = c.d.keys.Public(spk); err != nil {
		return nil, nil, fmt.Errorf("%w: signed prekey", ErrInvalidBundle)
	}
	if opkID != 0 {
		if b.OPK, err = c.d.keys.Public(opk); err != nil {
			return nil, nil, fmt.Errorf("%w: one-time prekey", ErrInvalidBundle)
		}
	}
	return b, nil, nil
}

// usePending drops the creator's kept bundle for r once used.
func (rec *conversationRecord) usePending(r uint8) {
	for i, p := range rec.pending {
		if p.peer == r {
			rec.pending = append(rec.pending[:i], rec.pending[i+1:]...)
			return
		}
	}
}
