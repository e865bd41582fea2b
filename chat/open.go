package chat

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// Open decrypts a message delivered from the chain and verifies its sender
// (docs/protocol.md, section 8). It works on a copy of the state and commits
// the advanced state together with the plaintext in the archive, so a crash
// either keeps both or neither (then the message opens again when
// re-delivered). A message sent by this device is recognised, confirmed at
// its position and returned from the archive.
//
// Errors: ErrMalformed, ErrWrongSender, ErrReplay, ErrChainNotStarted (retry
// after earlier messages), ErrUnknownTarget, ErrUnknownPrekey,
// ErrUnclaimedPrekey, ErrNotAddressed (nothing for this participant: skip),
// ErrDecryptionFailed, ErrInvalidSignature, ErrTooManySkipped, or a store
// error. A failed Open changes nothing but the highest position seen.
func (c *Conversation) Open(now time.Time, m *Delivery) (*Message, error) {
	d := c.d
	d.mu.Lock()
	defer d.mu.Unlock()
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
	id := messageIDOf(hh, e.Body)
	if x == c.self {
		return c.openOwn(id, m.Position)
	}
	if _, err := d.store.LoadArchiveRecord(c.id, id); err == nil {
		return nil, ErrReplay
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	s := &e.Stanzas[stanzaIndex(c.self, x)]
	if s.Type == wire.None {
		return nil, ErrNotAddressed
	}
	rec, err := c.record()
	if err != nil {
		return nil, err
	}
	nowMs := ms(now)
	// Receiving needs no peer key: its identity KEM key is only encapsulated to.
	peer := &ratchet.Peer{Party: ratchet.Party{Index: x, ID: c.parts[x].id}}
	selfSID := c.parts[c.self].sid
	claimed := func(opk uint32) bool {
		if x == 0 && c.self > 0 && c.claims[c.self-1] == opk {
			return true
		}
		return slices.Contains(m.Claims, Claim{Participant: selfSID, PrekeyID: opk})
	}
	got, err := rec.state.Receive(&c.env, peer, s, e.RatchetKey, devicePrekeys{d, d.rec, nowMs},
		&ratchet.Delivery{Position: m.Position, Now: nowMs, Claimed: claimed})
	switch {
	case errors.Is(err, ErrChainNotStarted), errors.Is(err, ErrUnknownTarget):
		c.hint(x, s.Chain, 0)
	case errors.Is(err, ErrUnknownTree):
		var key [suite.IDSize]byte
		copy(key[:], s.Tree[:])
		c.hint(x, key, m.Position)
	}
	if err != nil {
		return nil, err
	}
	wk := wrapKey(got.MK, e.Nonce[:], x, c.self)
	ck, err := suite.Unwrap(&wk, s.Wrapped[:], s.AppendPrefix(nil))
	if err != nil {
		return nil, ErrDecryptionFailed
	}
	pt, err := suite.OpenBody(&ck, e.Body, hh[:])
	if err != nil {
		return nil, ErrDecryptionFailed
	}
	body, err := wire.ParseBody(pt)
	if err != nil {
		return nil, err
	}
	if body.Kind == wire.KindMessage {
		for i := range e.Stanzas {
			if e.Stanzas[i].Type == wire.None {
				return nil, fmt.Errorf("%w: a content message must address every participant", ErrMalformed)
			}
		}
	}
	v, err := c.verifier(x)
	if err != nil {
		return nil, err
	}
	tr := transcript(c.env.SC, c.parts[x].id[:], hh, body.Kind, body.SentAt, body.Plaintext)
	if !v.Verify(tr[:], body.Signature) {
		return nil, ErrInvalidSignature
	}

	data, err := rec.marshalHint(len(c.committed))
	if err != nil {
		return nil, err
	}
	a := &archiveRecord{position: m.Position, sender: x, setup: body.Kind == wire.KindSetup, sentAt: body.SentAt, plaintext: body.Plaintext}
	b := &Batch{
		Conversations: []ConversationWrite{{Session: c.id, Data: data}},
		Archive:       []RecordWrite{{Session: c.id, ID: id, Data: a.marshal()}},
	}
	var devRec *deviceRecord
	if got.UsedOneTimePrekey != 0 {
		devRec = d.rec.clone()
		devRec.oneTime = slices.DeleteFunc(devRec.oneTime, func(o oneTimeSecret) bool { return o.id == got.UsedOneTimePrekey })
		b.Device = devRec.marshal()
	}
	if err := d.store.Commit(b); err != nil {
		return nil, err
	}
	c.committed = data
	if devRec != nil {
		d.rec = devRec
	}
	return c.message(id, a), nil
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
		c.resetHint[x] = append(c.resetHint[x], unknownTree{[wire.TreeTagSize]byte(chain[:wire.TreeTagSize]), treeAt})
		return
	}
	if c.stepHint == nil {
		c.stepHint = map[uint8]bool{}
	}
	c.stepHint[x] = true
}

func (c *Conversation) message(id MessageID, a *archiveRecord) *Message {
	return &Message{
		ID: id, Position: a.position, Sender: c.parts[a.sender].sid, FromSelf: a.fromSelf,
		Setup: a.setup, SentAt: time.UnixMilli(a.sentAt), Plaintext: a.plaintext,
	}
}

// openOwn handles an envelope this device sent: it confirms it.
func (c *Conversation) openOwn(id MessageID, position uint64) (*Message, error) {
	o, err := c.outboxRecord(id)
	if errors.Is(err, ErrNotInOutbox) {
		if _, err := c.d.store.LoadArchiveRecord(c.id, id); err == nil {
			return nil, ErrReplay
		}
		return nil, ErrNotAddressed // sent by this identity from another device
	}
	if err != nil {
		return nil, err
	}
	return c.confirm(id, o, position)
}

func (c *Conversation) outboxRecord(id MessageID) (*outboxRecord, error) {
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

// confirm moves an envelope from the outbox to the archive at position.
// The ratchet state changes only if the envelope carried handshakes (their
// trees get their position); the highest position seen reaches it with the
// next commit.
func (c *Conversation) confirm(id MessageID, o *outboxRecord, position uint64) (*Message, error) {
	b := &Batch{Outbox: []RecordWrite{{Session: c.id, ID: id}}}
	var data []byte
	if o.handshakes {
		rec, err := c.record()
		if err != nil {
			return nil, err
		}
		rec.state.Confirm(envelopeNonce(o.envelope), position)
		if data, err = rec.marshalHint(len(c.committed)); err != nil {
			return nil, err
		}
		b.Conversations = []ConversationWrite{{Session: c.id, Data: data}}
	}
	a := &archiveRecord{position: position, sender: c.self, fromSelf: true, setup: o.setup}
	if !o.setup {
		ab, err := c.d.store.LoadArchiveRecord(c.id, id)
		if err != nil {
			return nil, err
		}
		if a, err = parseArchiveRecord(ab); err != nil {
			return nil, err
		}
		a.position = position
		b.Archive = []RecordWrite{{Session: c.id, ID: id, Data: a.marshal()}}
	}
	if err := c.d.store.Commit(b); err != nil {
		return nil, err
	}
	if data != nil {
		c.committed = data
	}
	c.outboxN--
	c.see(position)
	return c.message(id, a), nil
}

// Confirm records that an envelope from the outbox is on chain at position
// (its sequence number in the session), and removes it from the outbox.
// Opening the envelope when it comes back from the chain does the same.
func (c *Conversation) Confirm(id MessageID, position uint64) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
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

// Abandon drops an envelope from the outbox that will never reach the chain
// (its transaction was refused for good, for example because a one-time
// prekey it claims was claimed first) and returns its plaintext, to send
// again. The keys it used stay used; the next Send starts new chains (and
// handshakes) where the abandoned envelope started some. Never abandon an
// envelope that may still land.
func (c *Conversation) Abandon(id MessageID) ([]byte, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	o, err := c.outboxRecord(id)
	if err != nil {
		return nil, err
	}
	rec, err := c.record()
	if err != nil {
		return nil, err
	}
	rec.state.Abandon(envelopeNonce(o.envelope))
	data, err := rec.marshalHint(len(c.committed))
	if err != nil {
		return nil, err
	}
	var plaintext []byte
	b := &Batch{
		Conversations: []ConversationWrite{{Session: c.id, Data: data}},
		Outbox:        []RecordWrite{{Session: c.id, ID: id}},
	}
	if !o.setup {
		ab, err := c.d.store.LoadArchiveRecord(c.id, id)
		if err != nil {
			return nil, err
		}
		a, err := parseArchiveRecord(ab)
		if err != nil {
			return nil, err
		}
		plaintext = a.plaintext
		b.Archive = []RecordWrite{{Session: c.id, ID: id}}
	}
	if err := c.d.store.Commit(b); err != nil {
		return nil, err
	}
	c.committed = data
	c.outboxN--
	return plaintext, nil
}

// Outbox returns the envelopes sent but not yet confirmed, in the order they
// must be sent.
func (c *Conversation) Outbox() ([]Outgoing, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	recs, err := c.d.store.LoadOutbox(c.id)
	if err != nil {
		return nil, err
	}
	type entry struct {
		o  *outboxRecord
		id MessageID
	}
	var es []entry
	for _, r := range recs {
		o, err := parseOutboxRecord(r.Data)
		if err != nil {
			return nil, err
		}
		es = append(es, entry{o, r.ID})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].o.seq < es[j].o.seq })
	out := make([]Outgoing, len(es))
	for i, e := range es {
		out[i] = Outgoing{ID: e.id, Envelope: e.o.envelope, Claims: e.o.claims, Setup: e.o.setup}
	}
	return out, nil
}

// History returns the messages this device sent and opened in the session,
// in chain order (own messages not yet confirmed last, in sending order).
// It reads the archive: the chain's copies of older messages are
// unreadable by design once their keys are deleted.
func (c *Conversation) History() ([]Message, error) {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	recs, err := c.d.store.LoadArchive(c.id)
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, r := range recs {
		a, err := parseArchiveRecord(r.Data)
		if err != nil {
			return nil, err
		}
		if !a.setup {
			out = append(out, *c.message(r.ID, a))
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
	return out, nil
}

// DeleteHistory removes from the archive the messages at positions 1 to
// upTo (own messages not yet confirmed stay). Their chain copies are then
// unreadable to everyone, this device included: forward secrecy covers
// them even against a thief with the passphrase. Replays of them are still
// refused (their keys are gone).
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
		if a.position != 0 && a.position <= upTo {
			b.Archive = append(b.Archive, RecordWrite{Session: c.id, ID: r.ID})
		}
	}
	if len(b.Archive) == 0 {
		return nil
	}
	return c.d.store.Commit(b)
}

// Reset makes the next Send start a new handshake with participant, which
// replaces the pair's current one at both ends (docs/protocol.md, section
// 10.3). Use it when messages with that participant keep failing with
// ErrUnknownTarget or ErrChainNotStarted.
func (c *Conversation) Reset(participant crypto.SessionID) error {
	c.d.mu.Lock()
	defer c.d.mu.Unlock()
	r := -1
	for i := range c.parts {
		if c.parts[i].sid == participant && uint8(i) != c.self {
			r = i
		}
	}
	if r < 0 {
		return fmt.Errorf("%w: not a participant", ErrInvalidSession)
	}
	rec, err := c.record()
	if err != nil {
		return err
	}
	if rec.state.PendingHandshake(uint8(r)) {
		return ErrHandshakePending
	}
	rec.state.Reset(uint8(r))
	data, err := rec.marshalHint(len(c.committed))
	if err != nil {
		return err
	}
	if err := c.d.store.Commit(&Batch{Conversations: []ConversationWrite{{Session: c.id, Data: data}}}); err != nil {
		return err
	}
	c.committed = data
	return nil
}
