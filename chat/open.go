package chat

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// Open decrypts a message delivered from the chain and verifies its sender
// (docs/protocol.md, section 8). Build m only from the verified SendMessage
// transaction (see Delivery). Open works on the parsed state and commits
// the advanced state together with the plaintext in the archive, so a crash
// either keeps both or neither (then the message opens again when
// re-delivered). An envelope this device sent is recognised and confirmed
// (see Confirm); the message is returned from the archive.
//
// Errors: ErrMalformed, ErrWrongSender, ErrReplay, ErrDuplicate,
// ErrChainNotStarted (retry after earlier messages), ErrUnknownTree,
// ErrUnknownTarget, ErrUnknownPrekey, ErrUnclaimedPrekey, ErrNotAddressed
// (nothing for this participant: skip), ErrNotFromThisDevice,
// ErrDecryptionFailed, ErrInvalidSignature, ErrTooManySkipped,
// ErrTooManyHandshakes, or a store error. A failed Open changes nothing
// but the position hint and, for a handshake whose claim checked, the
// pair's highest generation seen.
func (c *Conversation) Open(now time.Time, m *Delivery) (*Message, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	now = d.monotonic(now)
	if m == nil || m.Position == 0 {
		return nil, fmt.Errorf("%w: a delivery needs a position >= 1", ErrMalformed)
	}
	e, err := wire.Parse(m.Envelope)
	if err != nil {
		return nil, err
	}
	if len(e.Stanzas) != len(c.parts)-1 {
		return nil, fmt.Errorf("%w: %d stanzas for a session of %d participants", ErrMalformed, len(e.Stanzas), len(c.parts))
	}
	x := e.Sender
	if c.parts[x].sid != m.Sender {
		return nil, ErrWrongSender
	}
	c.see(m.Position)
	header := m.Envelope[:len(m.Envelope)-len(e.Body)]
	hh := suite.H32(suite.LabelHeader, header)
	if x == c.self {
		return c.openOwn(e, envelopeIDOf(hh, e.Body), m)
	}
	s := &e.Stanzas[stanzaIndex(c.self, x)]
	if s.Type == wire.None {
		return nil, ErrNotAddressed
	}
	rec := c.rec
	st := rec.state
	nowMs := ms(now)
	// Receiving needs no peer key: its identity KEM key is only encapsulated to.
	peer := &ratchet.Peer{Party: ratchet.Party{Index: x, ID: c.parts[x].id}}
	var sessionClaim, observed bool
	if s.Type == wire.Handshake {
		if _, err := st.HandshakeTree(&c.env, peer, s); err != nil {
			return nil, err
		}
		var ok bool
		used := st.Pairs[x] != nil && st.Pairs[x].SessionClaimUsed
		if ok, sessionClaim = c.claimMatches(x, c.self, m.Claims, s.SPKID, s.OPKID, used); !ok {
			return nil, ErrUnclaimedPrekey
		}
		observed = st.ObserveGen(x, s.Gen)
	}
	fail := func(err error) (*Message, error) {
		c.restore()
		if observed && c.broken == nil && c.rec.state.ObserveGen(x, s.Gen) {
			if cerr := c.commit(&Batch{}); cerr != nil {
				return nil, cerr
			}
		}
		return nil, err
	}
	got, err := st.Receive(&c.env, peer, s, e.RatchetKey, devicePrekeys{d, d.rec, nowMs},
		&ratchet.Delivery{Position: m.Position, Now: nowMs, SessionClaim: sessionClaim})
	switch {
	case errors.Is(err, ErrChainNotStarted), errors.Is(err, ErrUnknownTarget):
		c.hint(x, s.Chain, 0)
	case errors.Is(err, ErrUnknownTree):
		var key [suite.IDSize]byte
		copy(key[:], s.Tree[:])
		c.hint(x, key, m.Position)
	}
	if err != nil {
		return fail(err)
	}
	wk := wrapKey(got.MK, e.Nonce[:], x, c.self)
	ck, err := suite.Unwrap(&wk, s.Wrapped[:], s.AppendPrefix(make([]byte, 0, s.Size())))
	if err != nil {
		return fail(ErrDecryptionFailed)
	}
	pt, err := suite.OpenBody(&ck, e.Body, hh[:])
	if err != nil {
		return fail(ErrDecryptionFailed)
	}
	body, err := wire.ParseBody(pt)
	if err != nil {
		return fail(err)
	}
	v, err := c.verifier(x)
	if err != nil {
		return fail(err)
	}
	tr := transcript(c.env.SC, c.parts[x].id[:], hh, body)
	if !v.Verify(tr[:], body.Signature) {
		return fail(ErrInvalidSignature)
	}

	rec.protocol = true
	b := &Batch{}
	var devRec *deviceRecord
	if got.UsedOneTimePrekey != 0 {
		devRec = d.rec.clone()
		devRec.oneTime = slices.DeleteFunc(devRec.oneTime, func(o oneTimeSecret) bool { return o.id == got.UsedOneTimePrekey })
		b.Device = devRec.marshal()
	}
	msg := &Message{Control: true, Position: m.Position, Sender: m.Sender, SentAt: time.UnixMilli(body.SentAt)}
	var dup error
	if body.Kind == wire.KindMessage {
		id := messageIDOf(c.parts[x].id[:], body.MID)
		switch _, err := d.store.LoadArchiveRecord(c.id, id); {
		case err == nil:
			dup = ErrDuplicate // its ratchet effects are committed, nothing is archived
		case !errors.Is(err, ErrNotFound):
			return fail(err)
		default:
			a := &archiveRecord{position: m.Position, sender: x, sentAt: body.SentAt, mid: body.MID, after: body.After, plaintext: body.Plaintext}
			b.Archive = []RecordWrite{{Session: c.id, ID: id, Data: a.marshal()}}
			rec.lastMessage = id
			rec.receivedSince++
			if rec.healFrom == 0 {
				rec.healFrom = max(nowMs, 1)
			}
			msg = c.message(id, a)
		}
	}
	if err := c.commit(b); err != nil {
		return nil, err
	}
	if devRec != nil {
		d.rec = devRec
	}
	if dup != nil {
		return nil, dup
	}
	return msg, nil
}

// claimMatches checks a handshake from participant x to participant r
// against its claim (docs/protocol.md, section 11.2): exactly one claim of
// the transaction for r, or else, for the creator's handshakes, the
// creator's session claim for r if not used yet (session reports that).
func (c *Conversation) claimMatches(x, r uint8, claims []Claim, spk, opk uint32, sessionUsed bool) (ok, session bool) {
	var found *Claim
	for i := range claims {
		if claims[i].Participant == c.parts[r].sid {
			if found != nil {
				return false, false
			}
			found = &claims[i]
		}
	}
	if found != nil {
		return found.SignedPrekeyID == spk && found.OneTimePrekeyID == opk, false
	}
	if x != 0 || sessionUsed {
		return false, false
	}
	sc := c.rec.sessionClaim(r)
	if sc == nil {
		return false, false
	}
	return sc.spk == spk && sc.opk == opk, true
}

// hint asks the next Send to step with peer x (or, for a tree first seen at
// position treeAt, to re-initiate with it), once per unknown chain or tree.
func (c *Conversation) hint(x uint8, chain [suite.IDSize]byte, treeAt uint64) {
	key := [1 + suite.IDSize]byte{x}
	copy(key[1:], chain[:])
	if c.hinted[key] {
		return
	}
	if c.hinted == nil || len(c.hinted) > 1024 {
		c.hinted = map[[1 + suite.IDSize]byte]bool{}
	}
	c.hinted[key] = true
	if treeAt != 0 {
		if c.resetHint == nil {
			c.resetHint = map[uint8][]unknownTree{}
		}
		if len(c.resetHint[x]) < limit.MaxHandshakes {
			c.resetHint[x] = append(c.resetHint[x], unknownTree{[wire.TreeTagSize]byte(chain[:wire.TreeTagSize]), treeAt})
		}
		return
	}
	if c.stepHint == nil {
		c.stepHint = map[uint8]bool{}
	}
	c.stepHint[x] = true
}

func (c *Conversation) message(id MessageID, a *archiveRecord) *Message {
	return &Message{
		ID: id, After: a.after, Position: a.position, Sender: c.parts[a.sender].sid, FromSelf: a.fromSelf,
		SentAt: time.UnixMilli(a.sentAt), Plaintext: a.plaintext,
	}
}

// openOwn handles an envelope of this device's identity: one of its own
// (it landed), one it declared dead (it landed after all), or one it did
// not make.
func (c *Conversation) openOwn(e *wire.Envelope, id EnvelopeID, m *Delivery) (*Message, error) {
	o, err := c.outboxRecord(id)
	if err == nil {
		return c.confirm(id, o, m.Position)
	}
	if !errors.Is(err, ErrNotInOutbox) {
		return nil, err
	}
	rec := c.rec
	for _, dd := range rec.dead {
		if dd.envelope != id {
			continue
		}
		// A dead envelope landed after all: its trees exist on chain, and a
		// session claim it used is used.
		rec.state.Landed(e.Nonce)
		rec.pendingLanded(e.Nonce, true)
		rec.protocol = true
		if err := c.commit(&Batch{}); err != nil {
			return nil, err
		}
		c.see(m.Position)
		if dd.message == (MessageID{}) {
			return &Message{Control: true, FromSelf: true, Position: m.Position, Sender: m.Sender}, nil
		}
		return c.ownMessage(dd.message, m.Position)
	}
	switch _, err := c.d.store.LoadArchiveRecord(c.id, MessageID(id)); {
	case err == nil:
		return nil, ErrReplay // made here, and it landed before
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	// Not made here: learn the generations of its handshakes, so that this
	// device's own handshakes outrank them (docs/protocol.md, section 10.5).
	observed := false
	for j := range e.Stanzas {
		s := &e.Stanzas[j]
		r := uint8(j)
		if r >= c.self {
			r++
		}
		if s.Type != wire.Handshake {
			continue
		}
		if ok, _ := c.claimMatches(c.self, r, m.Claims, s.SPKID, s.OPKID, false); ok && rec.state.ObserveGen(r, s.Gen) {
			observed = true
		}
	}
	if observed {
		if err := c.commit(&Batch{}); err != nil {
			return nil, err
		}
	}
	return nil, ErrNotFromThisDevice
}

// ownMessage returns an own content message from the archive.
func (c *Conversation) ownMessage(id MessageID, position uint64) (*Message, error) {
	ab, err := c.d.store.LoadArchiveRecord(c.id, id)
	if errors.Is(err, ErrNotFound) {
		return &Message{ID: id, FromSelf: true, Position: position, Sender: c.parts[c.self].sid}, nil
	}
	if err != nil {
		return nil, err
	}
	a, err := parseArchiveRecord(ab)
	if err != nil {
		return nil, err
	}
	if a.position == 0 {
		a.position = position
	}
	return c.message(id, a), nil
}

func (c *Conversation) outboxRecord(id EnvelopeID) (*outboxRecord, error) {
	b, err := c.d.store.LoadOutboxRecord(c.id, id)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrNotInOutbox
	}
	if err != nil {
		return nil, err
	}
	return parseOutboxRecord(b)
}

func envelopeNonce(env []byte) (n ratchet.ID) {
	if len(env) >= wire.FixedHeaderSize {
		copy(n[:], env[wire.FixedHeaderSize-wire.NonceSize:wire.FixedHeaderSize])
	}
	return n
}

// confirm moves an envelope that landed out of the outbox (a content
// message's archive record gets its position). The ratchet state changes
// only if the envelope carried handshakes (their trees landed); the
// position hint reaches it with the next commit.
func (c *Conversation) confirm(id EnvelopeID, o *outboxRecord, position uint64) (*Message, error) {
	rec := c.rec
	b := &Batch{Outbox: []RecordWrite{{Session: c.id, ID: id}}}
	changed := !rec.protocol
	rec.protocol = true
	if o.handshakes {
		n := envelopeNonce(o.envelope)
		rec.state.Landed(n)
		rec.pendingLanded(n, true)
		changed = true
	}
	msg := &Message{Control: true, FromSelf: true, Position: position, Sender: c.parts[c.self].sid}
	if o.kind == outContent {
		ab, err := c.d.store.LoadArchiveRecord(c.id, o.message)
		switch {
		case err == nil:
			a, err := parseArchiveRecord(ab)
			if err != nil {
				c.restore()
				return nil, err
			}
			if a.position == 0 {
				a.position = position
				b.Archive = []RecordWrite{{Session: c.id, ID: o.message, Data: a.marshal()}}
			}
			msg = c.message(o.message, a)
		case errors.Is(err, ErrNotFound): // its history was deleted
			msg = &Message{ID: o.message, FromSelf: true, Position: position, Sender: c.parts[c.self].sid}
		default:
			c.restore()
			return nil, err
		}
	}
	if changed {
		if err := c.commit(b); err != nil {
			return nil, err
		}
	} else if err := c.d.store.Commit(b); err != nil {
		return nil, err
	}
	c.outboxN--
	c.see(position)
	return msg, nil
}

// Confirm records that an envelope from the outbox landed on chain, at
// position as the node reports it (a hint for display), and removes it from
// the outbox. Opening the envelope when it comes back from the chain does
// the same.
func (c *Conversation) Confirm(id EnvelopeID, position uint64) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	if position == 0 {
		return fmt.Errorf("%w: position must be at least 1", ErrMalformed)
	}
	o, err := c.outboxRecord(id)
	if err != nil {
		return err
	}
	_, err = c.confirm(id, o, position)
	return err
}

// Dead records that the transaction of an envelope from the outbox can
// never land: admission refused it for good (a claimed one-time prekey, a
// spent budget, a closed session), or its nonce was used by another
// transaction that was accepted (docs/protocol.md, section 10.4). Its
// message, and the message of every later envelope still in the outbox
// (they may build on it), are sent again with fresh keys: Dead returns the
// new envelopes, to submit in order from the dead transaction's nonce on.
// The later envelopes stay in the outbox, superseded: if one lands after
// all, Confirm it (its copy is a duplicate the recipients refuse); if one
// dies, report it with Dead too (nothing is sent again for it). No key is
// ever used twice. dir gives new bundles for handshakes that died.
//
// Report the fates of the account's transactions in nonce order: a dead
// one before any later one that landed.
func (c *Conversation) Dead(now time.Time, id EnvelopeID, dir Directory) ([]Outgoing, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.broken != nil {
		return nil, c.broken
	}
	now = d.monotonic(now)
	entries, err := c.outbox()
	if err != nil {
		return nil, err
	}
	at := slices.IndexFunc(entries, func(e outboxEntry) bool { return e.id == id })
	if at < 0 {
		return nil, ErrNotInOutbox
	}
	rec := c.rec
	b := &Batch{Outbox: []RecordWrite{{Session: c.id, ID: id}}}
	kill := func(o *outboxRecord) {
		n := envelopeNonce(o.envelope)
		rec.state.Kill(n)
		rec.pendingLanded(n, false)
	}
	dead := entries[at].o
	kill(dead)
	rec.dead = append(rec.dead, deadEnvelope{envelope: id, message: dead.message})
	if n := len(rec.dead) - limit.MaxDeadEnvelopes; n > 0 {
		rec.dead = rec.dead[n:]
	}
	var redo []*outboxRecord
	if !dead.superseded {
		redo = append(redo, dead)
		for _, l := range entries[at+1:] {
			if l.o.superseded {
				continue
			}
			kill(l.o)
			l.o.superseded = true
			b.Outbox = append(b.Outbox, RecordWrite{Session: c.id, ID: l.id, Data: l.o.marshal()})
			redo = append(redo, l.o)
		}
	}
	var outs []Outgoing
	again := map[MessageID]bool{}
	for _, o := range redo {
		dr := &draft{kind: wire.KindControl, sentAt: ms(now)}
		if o.kind != outRatchet {
			if again[o.message] {
				continue
			}
			again[o.message] = true
			ab, err := d.store.LoadArchiveRecord(c.id, o.message)
			if err != nil {
				c.restore()
				return nil, err
			}
			a, err := parseArchiveRecord(ab)
			if err != nil {
				c.restore()
				return nil, err
			}
			dr = &draft{kind: wire.KindMessage, mid: a.mid, sentAt: a.sentAt, after: a.after, plaintext: a.plaintext, resend: true}
		}
		got, err := c.sendDraft(now, dr, dir, b, 2*limit.MaxOutbox)
		if err != nil {
			c.restore()
			return nil, err
		}
		outs = append(outs, got...)
	}
	if err := c.commit(b); err != nil {
		return nil, err
	}
	c.outboxN--
	c.sent(outs)
	return outs, nil
}

type outboxEntry struct {
	id EnvelopeID
	o  *outboxRecord
}

// outbox returns the outbox in creation order.
func (c *Conversation) outbox() ([]outboxEntry, error) {
	recs, err := c.d.store.LoadOutbox(c.id)
	if err != nil {
		return nil, err
	}
	es := make([]outboxEntry, 0, len(recs))
	for _, r := range recs {
		o, err := parseOutboxRecord(r.Data)
		if err != nil {
			return nil, err
		}
		es = append(es, outboxEntry{EnvelopeID(r.ID), o})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].o.seq < es[j].o.seq })
	return es, nil
}

// Outbox returns the envelopes that must still land, in the order they must
// be sent (superseded ones, whose messages were sent again, are left out).
func (c *Conversation) Outbox() ([]Outgoing, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	es, err := c.outbox()
	if err != nil {
		return nil, err
	}
	var out []Outgoing
	for _, e := range es {
		if !e.o.superseded {
			out = append(out, Outgoing{ID: e.id, Message: e.o.message, Envelope: e.o.envelope, Claims: e.o.claims, Control: e.o.kind != outContent})
		}
	}
	return out, nil
}

// History returns the messages this device sent and opened in the session.
// It reads the archive: the chain's copies of older messages are
// unreadable by design once their keys are deleted. Messages are in the
// node's order (positions; own messages not yet confirmed last), except
// that each sender's messages are in the order of their signed SentAt:
// that order is authenticated, the interleaving of different senders is
// not (docs/protocol.md, section 14.6).
func (c *Conversation) History() ([]Message, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	recs, err := c.d.store.LoadArchive(c.id)
	if err != nil {
		return nil, err
	}
	out := make([]Message, 0, len(recs))
	for _, r := range recs {
		a, err := parseArchiveRecord(r.Data)
		if err != nil {
			return nil, err
		}
		if !a.envelope {
			out = append(out, *c.message(MessageID(r.ID), a))
		}
	}
	key := func(m *Message) uint64 {
		if m.Position == 0 {
			return ^uint64(0)
		}
		return m.Position
	}
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := key(&out[i]), key(&out[j])
		if ki != kj {
			return ki < kj
		}
		return out[i].SentAt.Before(out[j].SentAt)
	})
	// Each sender's messages take the places its messages have, in SentAt
	// order.
	bySender := map[crypto.SessionID][]int{}
	for i := range out {
		bySender[out[i].Sender] = append(bySender[out[i].Sender], i)
	}
	sorted := make([]Message, len(out))
	for _, idx := range bySender {
		ms := make([]Message, len(idx))
		for k, i := range idx {
			ms[k] = out[i]
		}
		sort.SliceStable(ms, func(a, b int) bool {
			if !ms[a].SentAt.Equal(ms[b].SentAt) {
				return ms[a].SentAt.Before(ms[b].SentAt)
			}
			return string(ms[a].ID[:]) < string(ms[b].ID[:])
		})
		for k, i := range idx {
			sorted[i] = ms[k]
		}
	}
	return sorted, nil
}

// DeleteHistory removes from the archive the messages at positions 1 to
// upTo (own messages not yet confirmed stay). Their chain copies are then
// unreadable to everyone, this device included: forward secrecy covers
// them even against a thief with the passphrase. Replays of them are still
// refused (their keys are gone and their trees' tombstones stay); a copy
// of one sent again after a dead transaction would no longer be recognised
// as a duplicate.
func (c *Conversation) DeleteHistory(upTo uint64) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	recs, err := c.d.store.LoadArchive(c.id)
	if err != nil {
		return err
	}
	b := &Batch{}
	for _, r := range recs {
		a, err := parseArchiveRecord(r.Data)
		if err != nil {
			return err
		}
		if !a.envelope && a.position != 0 && a.position <= upTo {
			b.Archive = append(b.Archive, RecordWrite{Session: c.id, ID: r.ID})
		}
	}
	if len(b.Archive) == 0 {
		return nil
	}
	return c.d.store.Commit(b)
}

// Reset makes the next Send start a new handshake with peer, which
// replaces the pair's current one at both ends (docs/protocol.md, section
// 10.3). Use it when messages with that participant keep failing with
// ErrUnknownTarget or ErrChainNotStarted, and after a suspected compromise.
// Each handshake uses one of the session's MaxHandshakesPerPeer claims:
// when they are spent, Reset returns ErrTooManyHandshakes.
func (c *Conversation) Reset(peer crypto.SessionID) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	if c.broken != nil {
		return c.broken
	}
	r := slices.IndexFunc(c.parts, func(p participant) bool { return p.sid == peer })
	if r < 0 || uint8(r) == c.self {
		return fmt.Errorf("%w: not another participant", ErrInvalidSession)
	}
	st := c.rec.state
	if st.PendingHandshake(uint8(r)) {
		return ErrHandshakePending
	}
	if err := c.canInitiate(uint8(r)); err != nil {
		return err
	}
	st.Reset(uint8(r))
	return c.commit(&Batch{})
}

// AllowsLegacy reports whether the caller may still accept legacy envelopes
// (Seal, the reference format) in this session: only while this device has
// neither sent nor opened an envelope of this protocol in it and did not
// create it (docs/protocol.md, section 16). IsEnvelope tells the formats
// apart.
func (c *Conversation) AllowsLegacy() bool {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	return c.broken == nil && !c.rec.protocol
}
