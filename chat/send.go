package chat

import (
	"fmt"
	"slices"
	"time"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// pairPlan is what one recipient's stanza of the next message needs.
type pairPlan struct {
	r      uint8
	act    ratchet.Action // 0: none
	bundle *ratchet.Bundle
	claim  *Claim // the transaction claim of a handshake (nil: the session claim)
	size   int    // stanza size for this action
}

// draft is a message to put in envelopes: a new one, one sent again after
// a dead transaction (resend), or a ratchet message (KindControl).
type draft struct {
	kind      uint8
	mid       [16]byte
	sentAt    int64
	after     MessageID
	plaintext []byte
	resend    bool
}

// Envelope building modes.
const (
	modeContent = iota
	modeSetup
	modeRatchet
)

// Send encrypts plaintext for every other participant (those excluded with
// SetExcluded get nothing) and returns the envelopes to send, in order, each
// in its own SendMessage transaction with the claims it lists (usually one
// envelope; more when handshakes do not fit beside the content,
// docs/protocol.md section 7.3). dir gives prekey bundles for participants
// that need a handshake; it may be nil when none does.
//
// The advanced state and the envelopes (in the outbox) are committed before
// Send returns, so a crash can never make it reuse a key: after a restart,
// Outbox returns the same envelopes. Submit each as one transaction (keep
// the signed transaction and re-submit exactly it after a crash), then
// report its fate: Confirm when it lands (opening it from the chain does
// the same), Dead when its transaction can never land.
//
// A participant that needs a handshake when the session's
// MaxHandshakesPerPeer claims with it are spent makes Send fail with
// ErrTooManyHandshakes: exclude it (SetExcluded) or move to a new session.
func (c *Conversation) Send(now time.Time, plaintext []byte, dir Directory) ([]Outgoing, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	now = d.monotonic(now)
	if len(plaintext) > limit.MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrPlaintextTooLarge, len(plaintext), limit.MaxPlaintextSize)
	}
	dr := &draft{kind: wire.KindMessage, plaintext: plaintext, after: c.rec.lastMessage}
	if err := suite.Read(d.rand, dr.mid[:]); err != nil {
		return nil, err
	}
	dr.sentAt = max(ms(now), c.rec.lastSentAt+1)
	b := &Batch{}
	outs, err := c.sendDraft(now, dr, dir, b, limit.MaxOutbox)
	if err != nil {
		c.restore()
		return nil, err
	}
	if err := c.commit(b); err != nil {
		return nil, err
	}
	c.sent(outs)
	return outs, nil
}

// HealDue reports whether this device should send a ratchet message (Heal):
// it has received MaxChainMessages messages since it last sent, or
// MaxChainAge has passed since the first of them (docs/protocol.md, section
// 7.6). A participant that only reads heals its peers' direction this way.
func (c *Conversation) HealDue(now time.Time) bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.broken != nil {
		return false
	}
	now = c.d.monotonic(now)
	r := c.rec
	return r.receivedSince >= limit.MaxChainMessages ||
		(r.healFrom != 0 && ms(now)-r.healFrom >= limit.MaxChainAge.Milliseconds())
}

// Heal sends a ratchet message: a control message (no content) that steps
// in every pair that has a current tree, publishing a fresh ratchet key
// that the peers' next messages step against (docs/protocol.md, section
// 7.6). It returns nothing if no pair has a tree yet. Send and report the
// envelope like Send's.
func (c *Conversation) Heal(now time.Time) ([]Outgoing, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	now = d.monotonic(now)
	b := &Batch{}
	outs, err := c.sendDraft(now, &draft{kind: wire.KindControl, sentAt: ms(now)}, nil, b, limit.MaxOutbox)
	if err != nil || len(outs) == 0 {
		c.restore()
		return nil, err
	}
	if err := c.commit(b); err != nil {
		return nil, err
	}
	c.sent(outs)
	return outs, nil
}

// sent updates what follows a committed send.
func (c *Conversation) sent(outs []Outgoing) {
	c.outboxN += len(outs)
	c.stepHint = nil
	for _, r := range c.resolved {
		delete(c.resetHint, r)
	}
}

// SetExcluded sets the participants this device no longer addresses: later
// messages carry no stanza for them, so they get no content key
// (docs/protocol.md, section 7.1). Exclude a participant whose departure
// (leaving or declining the session) was verified from its signed
// transaction. nil addresses everyone again.
func (c *Conversation) SetExcluded(participants []crypto.SessionID) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	var set uint32
	for _, p := range participants {
		i := slices.IndexFunc(c.parts, func(q participant) bool { return q.sid == p })
		if i < 0 || uint8(i) == c.self {
			return fmt.Errorf("%w: not another participant", ErrInvalidSession)
		}
		set |= 1 << i
	}
	if set == c.rec.excluded {
		return nil
	}
	c.rec.excluded = set
	return c.commit(&Batch{})
}

// sendDraft plans and builds the envelopes of a draft, advancing the state
// and adding their outbox (and, for a new content message, archive) records
// to b. The caller commits b, or restores on error.
func (c *Conversation) sendDraft(now time.Time, dr *draft, dir Directory, b *Batch, maxOutbox int) ([]Outgoing, error) {
	rec := c.rec
	st := rec.state
	nowMs := ms(now)
	for r := range c.stepHint {
		st.ForceStep(r)
	}
	c.resolved = c.resolved[:0]
	for r, trees := range c.resetHint {
		if st.PendingHandshake(r) {
			continue // decide when the handshake in flight has landed
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
		if lost && c.canInitiate(r) == nil {
			st.Reset(r)
		}
		if lost || !waiting {
			c.resolved = append(c.resolved, r)
		}
	}
	// A re-initiation asked for (after a dead one, say) that the pair's
	// claims no longer allow falls back to the current tree, if any.
	for r := range uint8(len(c.parts)) {
		if p := st.Pairs[r]; p != nil && p.Reset && p.Current() != nil && c.canInitiate(r) != nil {
			p.Reset = false
		}
	}
	mode := modeContent
	if dr.kind == wire.KindControl {
		mode = modeRatchet
	}

	// What every pair needs.
	var plans []*pairPlan
	var handshakes []*pairPlan
	asymmetric, addressed := false, 0
	for r := range uint8(len(c.parts)) {
		if r == c.self {
			continue
		}
		p := &pairPlan{r: r, size: wire.NoneSize}
		plans = append(plans, p)
		if rec.excluded&(1<<r) != 0 || (mode == modeRatchet && !st.CanStep(r)) {
			continue
		}
		if mode == modeRatchet {
			st.ForceStep(r)
		}
		addressed++
		p.act = st.Plan(r, nowMs)
		switch p.act {
		case ratchet.ActHandshake:
			if err := c.canInitiate(r); err != nil {
				return nil, err
			}
			var err error
			if p.bundle, p.claim, err = c.bundleFor(r, dir, now); err != nil {
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
	}
	if mode == modeRatchet && addressed == 0 {
		return nil, nil
	}

	// The content message keeps the longest prefix of the handshakes that
	// fits; the others go, in order, into setup messages before it.
	base := wire.FixedHeaderSize + wire.MinBodySize + len(dr.plaintext)
	contentSize := func(h int) int {
		size := base
		if asymmetric || h > 0 {
			size += suite.KEMPublicKeySize
		}
		for _, p := range plans {
			if i := slices.Index(handshakes, p); i >= h {
				size += wire.ContinueSize
			} else {
				size += p.size
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
	if c.outboxN+len(b.Outbox)+len(setups)+1 > maxOutbox {
		return nil, fmt.Errorf("%w: %d envelopes waiting, at most %d", ErrOutboxFull, c.outboxN, maxOutbox)
	}

	var msgID MessageID
	if dr.kind == wire.KindMessage {
		msgID = messageIDOf(c.parts[c.self].id[:], dr.mid)
	}
	var outs []Outgoing
	emit := func(mode int, hs []*pairPlan) error {
		o, env, hasHS, err := c.build(now, mode, dr, msgID, hs)
		if err != nil {
			return err
		}
		kind := uint8(outContent)
		switch mode {
		case modeSetup:
			kind = outSetup
		case modeRatchet:
			kind = outRatchet
		}
		or := &outboxRecord{seq: rec.nextOutboxSeq, created: nowMs, kind: kind, handshakes: hasHS,
			message: o.Message, claims: o.Claims, envelope: env}
		rec.nextOutboxSeq++
		b.Outbox = append(b.Outbox, RecordWrite{Session: c.id, ID: o.ID, Data: or.marshal()})
		marker := &archiveRecord{envelope: true, message: o.Message}
		b.Archive = append(b.Archive, RecordWrite{Session: c.id, ID: o.ID, Data: marker.marshal()})
		outs = append(outs, o)
		return nil
	}
	for _, hs := range setups {
		if err := emit(modeSetup, hs); err != nil {
			return nil, err
		}
	}
	if err := emit(mode, handshakes[:hc]); err != nil {
		return nil, err
	}
	rec.protocol = true
	switch {
	case dr.kind == wire.KindControl:
		rec.healFrom, rec.receivedSince = 0, 0
	case !dr.resend:
		a := &archiveRecord{sender: c.self, fromSelf: true, sentAt: dr.sentAt, mid: dr.mid, after: dr.after, plaintext: dr.plaintext}
		b.Archive = append(b.Archive, RecordWrite{Session: c.id, ID: msgID, Data: a.marshal()})
		rec.lastSentAt, rec.lastMessage = dr.sentAt, msgID
		rec.healFrom, rec.receivedSince = 0, 0
	}
	return outs, nil
}

// canInitiate reports whether a new handshake with participant r stays
// within the chain's claims per pair and the pair's tree bound.
func (c *Conversation) canInitiate(r uint8) error {
	st := c.rec.state
	n := st.OwnHandshakes(r)
	for _, p := range c.rec.pending {
		if p.peer == r && (p.used == (ratchet.ID{}) || p.spent) {
			n++ // a session claim on chain that no live handshake uses
		}
	}
	if n >= limit.MaxHandshakesPerPeer {
		return fmt.Errorf("%w: %d handshakes with participant %d in this session, at most %d",
			ErrTooManyHandshakes, n, r, limit.MaxHandshakesPerPeer)
	}
	return st.CheckInitiate(r)
}

// build makes one envelope, advancing the state: a content message (the
// handshakes hs, then steps and continues as the state plans them), a setup
// message (the handshakes hs, none for the others), or a ratchet message
// (steps where planned). Randomness is drawn in the order of
// docs/protocol.md, section 7.4.
func (c *Conversation) build(now time.Time, mode int, dr *draft, msgID MessageID, hs []*pairPlan) (Outgoing, []byte, bool, error) {
	d, rec, nowMs := c.d, c.rec, ms(now)
	st := rec.state
	e := &wire.Envelope{Sender: c.self, Stanzas: make([]wire.Stanza, len(c.parts)-1)}
	var rnd [32]byte
	if err := suite.Read(d.rand, e.Nonce[:]); err != nil {
		return Outgoing{}, nil, false, err
	}
	if err := suite.Read(d.rand, rnd[:]); err != nil {
		return Outgoing{}, nil, false, err
	}
	body := &wire.Body{Kind: dr.kind, SentAt: dr.sentAt}
	if mode == modeSetup {
		body.Kind = wire.KindControl
	} else if dr.kind == wire.KindMessage {
		body.MID, body.After, body.Plaintext = dr.mid, dr.after, dr.plaintext
	}
	ck := contentKey(rnd[:], body.Kind, body.SentAt, body.MID, body.Plaintext)
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
		case mode == modeSetup, rec.excluded&(1<<r) != 0, mode == modeRatchet && !st.CanStep(r):
			acts[r] = 0 // none
		default:
			acts[r] = st.Plan(r, nowMs)
			switch acts[r] {
			case ratchet.ActStep:
				asym = true
			case ratchet.ActHandshake:
				return Outgoing{}, nil, false, fmt.Errorf("chat: internal error: unplanned handshake")
			}
		}
	}
	in := &ratchet.StepInput{Envelope: e.Nonce}
	if asym {
		var seed [suite.KEMSeedSize]byte
		if err := suite.Read(d.rand, seed[:]); err != nil {
			return Outgoing{}, nil, false, err
		}
		kp, err := suite.NewKEMFromSeed(seed[:])
		if err != nil {
			return Outgoing{}, nil, false, err
		}
		d.keys.put(c.id, &seed, kp)
		e.RatchetKey, in.RatchetKey, in.Seed = kp.Public, kp.Public, &seed
	}
	var claims []Claim
	// The largest stanza prefix this envelope needs (the wrap's associated
	// data), allocated once.
	prefixSize := wire.ContinueSize
	for r, a := range acts {
		switch {
		case a == ratchet.ActHandshake && byPeer[uint8(r)].bundle.OPKID != 0:
			prefixSize = max(prefixSize, wire.HandshakeOPKSize)
		case a == ratchet.ActHandshake:
			prefixSize = max(prefixSize, wire.HandshakeSize)
		case a == ratchet.ActStep:
			prefixSize = max(prefixSize, wire.StepSize)
		}
	}
	prefix := make([]byte, 0, prefixSize)
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
					return Outgoing{}, nil, false, err
				}
			}
			peer, err := c.peer(r)
			if err != nil {
				return Outgoing{}, nil, false, err
			}
			if mk, err = st.Initiate(&c.env, peer, p.bundle, nowMs, in, seeds, s); err != nil {
				return Outgoing{}, nil, false, err
			}
			if p.claim != nil {
				claims = append(claims, *p.claim)
			} else {
				rec.usePending(r, e.Nonce)
			}
		case ratchet.ActStep:
			m := make([]byte, suite.EncapsSeedSize)
			if err := suite.Read(d.rand, m); err != nil {
				return Outgoing{}, nil, false, err
			}
			peer, err := c.peer(r)
			if err != nil {
				return Outgoing{}, nil, false, err
			}
			if mk, err = st.Step(&c.env, peer, nowMs, in, m, s); err != nil {
				return Outgoing{}, nil, false, err
			}
		case ratchet.ActContinue:
			if mk, err = st.Continue(r, nowMs, s); err != nil {
				return Outgoing{}, nil, false, err
			}
		default:
			s.Type = wire.None
			continue
		}
		wk := wrapKey(mk, e.Nonce[:], c.self, r)
		prefix = s.AppendPrefix(prefix[:0])
		copy(s.Wrapped[:], suite.Wrap(s.Wrapped[:0], &wk, &ck, prefix))
	}
	// The envelope is built in one buffer: the header, then the body
	// (signed in place), encrypted in place.
	env := e.AppendHeader(make([]byte, 0, e.HeaderSize()+wire.MinBodySize+len(body.Plaintext)))
	hlen := len(env)
	hh := suite.H32(suite.LabelHeader, env)
	m := transcript(c.env.SC, c.parts[c.self].id[:], hh, body)
	env = body.AppendUnsigned(env)
	sigAt := len(env) - len(body.Plaintext) - suite.SignatureSize
	if err := d.signer.SignTo(env[sigAt:sigAt+suite.SignatureSize], m[:]); err != nil {
		return Outgoing{}, nil, false, err
	}
	env = suite.SealBody(env[:hlen], &ck, env[hlen:], hh[:])
	if len(env) > limit.MaxEnvelopeSize {
		return Outgoing{}, nil, false, fmt.Errorf("%w: chat: internal error: %d bytes", ErrEnvelopeTooLarge, len(env))
	}
	o := Outgoing{ID: envelopeIDOf(hh, env[hlen:]), Message: msgID, Envelope: env, Claims: claims, Control: body.Kind == wire.KindControl}
	return o, env, len(hs) > 0, nil
}

// bundleFor returns the bundle of the handshake with participant r: the one
// the creator kept from session creation while its signed prekey is valid
// (its session claim covers the handshake: no transaction claim), else the
// directory's, with the transaction claim it needs.
func (c *Conversation) bundleFor(r uint8, dir Directory, now time.Time) (*ratchet.Bundle, *Claim, error) {
	for _, p := range c.rec.pending {
		if p.peer == r && p.used == (ratchet.ID{}) && now.Before(time.UnixMilli(p.spkExpires)) {
			b, err := c.parseBundle(p.spkID, p.spk, p.opkID, p.opk)
			return b, nil, err
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
	claim := &Claim{Participant: c.parts[r].sid, SignedPrekeyID: b.SignedPrekey.ID}
	if b.OneTimePrekey != nil {
		claim.OneTimePrekeyID = b.OneTimePrekey.ID
	}
	rb, err := c.parseBundle(claim.SignedPrekeyID, spk, claim.OneTimePrekeyID, opk)
	if err != nil {
		return nil, nil, err
	}
	return rb, claim, nil
}

func (c *Conversation) parseBundle(spkID uint32, spk []byte, opkID uint32, opk []byte) (*ratchet.Bundle, error) {
	b := &ratchet.Bundle{SPKID: spkID, SPKRaw: spk, OPKID: opkID, OPKRaw: opk}
	var err error
	if b.SPK, err = c.d.keys.Public(spk); err != nil {
		return nil, fmt.Errorf("%w: signed prekey", ErrInvalidBundle)
	}
	if opkID != 0 {
		if b.OPK, err = c.d.keys.Public(opk); err != nil {
			return nil, fmt.Errorf("%w: one-time prekey", ErrInvalidBundle)
		}
	}
	return b, nil
}

// usePending marks the creator's kept bundle for r as used by envelope.
func (rec *conversationRecord) usePending(r uint8, envelope ratchet.ID) {
	for i := range rec.pending {
		if p := &rec.pending[i]; p.peer == r && p.used == (ratchet.ID{}) {
			p.used = envelope
			return
		}
	}
}

// pendingLanded drops the kept bundles an envelope that landed used. Those
// of a dead envelope are spent: not used again (the envelope may have
// landed after all, using the claim at the responder), the next handshake
// makes a transaction claim (docs/protocol.md, section 11.2); they still
// count against the claims per pair.
func (rec *conversationRecord) pendingLanded(envelope ratchet.ID, landed bool) {
	rec.pending = slices.DeleteFunc(rec.pending, func(p pendingBundle) bool { return landed && p.used == envelope })
	if !landed {
		for i := range rec.pending {
			if rec.pending[i].used == envelope {
				rec.pending[i].spent = true
			}
		}
	}
}
