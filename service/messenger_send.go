package service

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/crashpoint"
	"github.com/luxfi/session/vm/tx"
)

// Sent is one transaction a Send (or CreateSession) submitted.
type Sent struct {
	TxID   ids.ID
	Nonce  uint64
	Status string // TxAccepted, or TxPending without waiting
	Height uint64
	// Seq is the message's sequence number in the session once confirmed
	// (0 if not known yet).
	Seq uint64
	// Control marks a control message: handshakes that did not fit beside
	// the text (sent before it), or a ratchet message (heal).
	Control bool
	// Resent marks an envelope from the outbox of an earlier run (a crash,
	// a node that was unreachable, a transaction that died and whose text
	// went again).
	Resent bool
}

// SendResult is what Send did, in order.
type SendResult struct {
	Session ids.ID
	Sent    []Sent
}

// Message returns the last content message sent (nil if none).
func (r *SendResult) Message() *Sent {
	for i := len(r.Sent) - 1; i >= 0; i-- {
		if !r.Sent[i].Control {
			return &r.Sent[i]
		}
	}
	return nil
}

// maxSendAttempts bounds how often the envelopes of one Send are
// encrypted and sent again after a transaction died (a claimed one-time
// prekey taken first, a transaction dropped from its block).
const maxSendAttempts = 3

// Send encrypts text for every other participant of the session and sends
// it (docs/protocol.md: one SendMessage transaction per envelope, usually
// one). First it reads the session up to its end (so the ratchet steps with
// what the others said, and own envelopes that landed are confirmed) and
// resends what the outbox still holds from earlier runs, as the same
// transactions. It waits for each transaction's block (unless
// WithoutWaiting) and confirms the envelopes at their positions.
//
// A transaction that died (refused for a claim, dropped from its block, its
// nonce taken by another) is reported to the conversation (chat's Dead),
// which encrypts its message, and those of the envelopes after it, again
// with fresh keys; they are sent in its place, at most maxSendAttempts
// times. Errors: ErrInOutbox wrapped
// with the cause when the message waits in the outbox (the node is
// unreachable, busy, rate limited: Resend or the next Send sends it);
// ErrNotSent when the chain refused it for good; chat.ErrPlaintextTooLarge;
// ErrUntrustedNode and ErrIdentityMismatch when the node lied (nothing is
// sent); the node's.
func (m *Messenger) Send(ctx context.Context, session ids.ID, text []byte) (*SendResult, error) {
	if len(text) > chat.MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", chat.ErrPlaintextTooLarge, len(text), chat.MaxPlaintextSize)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	res := &SendResult{Session: session}
	err := m.send(ctx, session, [][]byte{text}, res)
	m.maintainPrekeys(ctx)
	return res, err
}

// Resend sends what the outbox of a session holds (envelopes of earlier
// runs not yet seen on chain) and confirms them, as Send does before
// sending anything new.
func (m *Messenger) Resend(ctx context.Context, session ids.ID) (*SendResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	res := &SendResult{Session: session}
	return res, m.send(ctx, session, nil, res)
}

func (m *Messenger) send(ctx context.Context, session ids.ID, texts [][]byte, res *SendResult) error {
	cv, err := m.participant(ctx, session)
	if err != nil {
		return err
	}
	r := m.newReader(ctx)
	if _, err := r.sync(cv); err != nil {
		return err
	}
	if err := m.usesProtocol(cv.id); err != nil {
		return err
	}
	if err := m.flush(ctx, cv, res); err != nil {
		return err
	}
	for _, t := range texts {
		if err := m.sendText(ctx, cv, t, res); err != nil {
			return err
		}
	}
	if m.noWait || len(res.Sent) == 0 {
		return nil
	}
	// Confirm: the own envelopes come back from the chain.
	s, err := r.sync(cv)
	if err != nil {
		return err
	}
	for i := range res.Sent {
		if seq, ok := s.seqOf[res.Sent[i].TxID]; ok {
			res.Sent[i].Seq = seq
		}
	}
	return nil
}

// sendText encrypts one text and submits its envelopes in order.
func (m *Messenger) sendText(ctx context.Context, cv *conv, text []byte, res *SendResult) error {
	dir := &directory{ctx: ctx, m: m, session: cv.id}
	outs, err := cv.c.Send(m.now(), text, dir)
	if err != nil {
		return err
	}
	return m.submitAll(ctx, cv, outs, dir, res, false)
}

// submitAll submits envelopes in order. When a transaction dies, the
// conversation sends its message and those after it again with fresh keys
// (chat's Dead): the new envelopes go in its place. resent marks the first
// envelopes as coming from the outbox of an earlier run.
func (m *Messenger) submitAll(ctx context.Context, cv *conv, outs []chat.Outgoing, dir *directory, res *SendResult, resent bool) error {
	for attempt := 0; len(outs) > 0; attempt++ {
		var dead *deadTx
		var deadID chat.EnvelopeID
		for _, o := range outs {
			var s *Sent
			var err error
			if resent {
				s, err = m.resend(ctx, cv, o)
			} else {
				s, err = m.submit(ctx, cv, o)
			}
			if s != nil {
				s.Resent = resent
				res.Sent = append(res.Sent, *s)
			}
			if err == nil {
				continue
			}
			if !errors.As(err, &dead) {
				return err // it waits in the outbox
			}
			deadID = o.ID
			break
		}
		if dead == nil {
			return nil
		}
		if !dead.again {
			return fmt.Errorf("%w: %w", ErrNotSent, dead.err)
		}
		if attempt+1 >= maxSendAttempts {
			return fmt.Errorf("%w: tried %d times, the last: %w", ErrNotSent, maxSendAttempts, dead.err)
		}
		// A one-time prekey claimed by someone first: the next try
		// fetches new bundles (the node picks one at random).
		var err error
		if outs, err = cv.c.Dead(m.now(), deadID, dir); err != nil {
			return err
		}
		if err := m.side.Delete(txRecordName(cv.id, deadID)); err != nil {
			return err
		}
		resent = false
	}
	return nil
}

// deadTx is a transaction that will never land: refused by the chain, or
// dropped, or its nonce taken by another.
type deadTx struct {
	err   error
	again bool // its message may go again in a new transaction
}

func (d *deadTx) Error() string { return d.err.Error() }
func (d *deadTx) Unwrap() error { return d.err }

// classify sorts an error of submitting or waiting for an envelope's
// transaction: dead (*deadTx), or transient (wrapped in ErrInOutbox: the
// transaction may still land, or may be sent again as it is).
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrTxDropped) {
		return &deadTx{err: err, again: true}
	}
	code, fromNode := CodeOf(err)
	switch {
	case !fromNode, IsRetryable(err), code == CodeBadNonce, errors.Is(err, ErrTxUnknown):
		return fmt.Errorf("%w: %w", ErrInOutbox, err)
	case code == CodePrekeyGone:
		return &deadTx{err: err, again: true}
	}
	return &deadTx{err: err}
}

// submit signs and submits one envelope's transaction, writing it to disk
// first, and waits for its block unless WithoutWaiting.
func (m *Messenger) submit(ctx context.Context, cv *conv, o chat.Outgoing) (*Sent, error) {
	p := &tx.SendMessage{Session: cv.id, Claims: txClaims(o.Claims), Ciphertext: o.Envelope}
	name := txRecordName(cv.id, o.ID)
	r, t, err := m.c.signSubmit(ctx, m.id, p, func(t *tx.Tx) error { return m.side.Put(name, t.Bytes()) })
	if err != nil {
		return nil, classify(err)
	}
	crashpoint.Hit("after submitting")
	s := &Sent{TxID: r.TxID, Nonce: t.Nonce, Status: TxPending, Control: o.Control}
	return s, classify(m.wait(ctx, s))
}

// wait waits for s's block (unless WithoutWaiting) and records it.
func (m *Messenger) wait(ctx context.Context, s *Sent) error {
	if m.noWait {
		return nil
	}
	st, err := m.c.WaitAccepted(ctx, s.TxID)
	if err != nil {
		return err
	}
	s.Status, s.Height = TxAccepted, st.Height
	return nil
}

// txClaims converts chat's claims for a transaction.
func txClaims(in []chat.Claim) []tx.Claim {
	if len(in) == 0 {
		return nil
	}
	out := make([]tx.Claim, len(in))
	for i, c := range in {
		out[i] = tx.Claim(c)
	}
	return out
}

// flush resends the outbox of earlier runs, in order, each envelope as the
// transaction recorded for it (or, if none was, in a new one: it never
// left the device); one whose transaction died goes again with fresh keys.
func (m *Messenger) flush(ctx context.Context, cv *conv, res *SendResult) error {
	outs, err := cv.c.Outbox()
	if err != nil {
		return err
	}
	return m.submitAll(ctx, cv, outs, &directory{ctx: ctx, m: m, session: cv.id}, res, true)
}

// resend sends one outbox envelope again.
func (m *Messenger) resend(ctx context.Context, cv *conv, o chat.Outgoing) (*Sent, error) {
	raw, err := m.side.Get(txRecordName(cv.id, o.ID))
	if errors.Is(err, errNoRecord) {
		return m.submit(ctx, cv, o) // never signed: it never left the device
	}
	if err != nil {
		return nil, err
	}
	t, err := tx.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("service: the recorded transaction of an outbox envelope: %w", err)
	}
	s := &Sent{TxID: t.ID(), Nonce: t.Nonce, Status: TxPending, Control: o.Control}
	st, err := m.c.TxStatus(ctx, t.ID())
	if err != nil {
		return nil, classify(err)
	}
	switch st.Status {
	case TxAccepted:
		s.Status, s.Height = TxAccepted, st.Height
		return s, nil
	case TxPending:
		return s, classify(m.wait(ctx, s))
	case TxDropped:
		return s, &deadTx{err: fmt.Errorf("%w: %s: %s", ErrTxDropped, t.ID(), st.Reason), again: true}
	}
	// The node does not know it: it was never submitted (a crash), or the
	// node forgot it. The same bytes again.
	_, err = m.c.reissue(ctx, t)
	switch {
	case err == nil, errors.Is(err, ErrDuplicateTx):
		return s, classify(m.wait(ctx, s))
	case errors.Is(err, ErrBadNonce):
		// Accepted meanwhile, or its nonce is taken by another transaction
		// (it is dead), or an earlier nonce is still free (a transaction
		// before it died): then it goes in a new transaction.
		if g, gerr := m.c.Tx(ctx, t.ID()); gerr == nil {
			s.Status, s.Height = TxAccepted, g.Height
			return s, nil
		} else if code, ok := CodeOf(gerr); !ok || code != CodeUnknownTx {
			return nil, classify(gerr)
		}
		next, nerr := m.c.Nonce(ctx, m.id.SessionID)
		if nerr != nil {
			return nil, classify(nerr)
		}
		if next > t.Nonce {
			return s, &deadTx{err: fmt.Errorf("service: transaction %s: its nonce %d was taken by another transaction", t.ID(), t.Nonce), again: true}
		}
		s2, err := m.submit(ctx, cv, o)
		if s2 != nil {
			s = s2
		}
		return s, err
	}
	return s, classify(err)
}

// usesProtocol records that the session uses the protocol from what was
// read of it on: a Seal envelope after that is refused.
func (m *Messenger) usesProtocol(session ids.ID) error {
	ss := m.st.session(session)
	if ss.Protocol != nil && *ss.Protocol <= ss.Read {
		return nil
	}
	ss.useProtocol(ss.Read)
	return m.st.save(m.side)
}

// dropSentRecords deletes the transaction records of envelopes no longer
// in the outbox (confirmed, or abandoned before the record was deleted).
func (m *Messenger) dropSentRecords(cv *conv) error {
	names, err := m.side.List(txRecordPrefix(cv.id))
	if err != nil || len(names) == 0 {
		return err
	}
	outs, err := cv.c.Outbox()
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, o := range outs {
		keep[txRecordName(cv.id, o.ID)] = true
	}
	for _, n := range names {
		if !keep[n] {
			if err := m.side.Delete(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreatedSession is what CreateSession did.
type CreatedSession struct {
	Session ids.ID
	TxID    ids.ID
	Nonce   uint64
	Status  string // TxAccepted, or TxPending without waiting
	Height  uint64
	// Claimed holds, per participant given, the one-time prekey claimed
	// from it (0: none was left for this identity to claim: the first
	// messages to that participant rest on its signed prekey only, as
	// docs/protocol.md section 11 states). The transaction also claims
	// each participant's signed prekey.
	Claimed []uint32
}

// CreateSession creates a session of this identity with participants
// (Session IDs, at most config.MaxParticipants-1): it fetches each one's
// prekey bundle, verifies it (keys against the Session ID, prekeys against
// the identity's signed transactions, never older than one verified
// before), claims their one-time prekeys in the CreateSession transaction
// and prepares the conversation, then submits the transaction and waits for
// its block (unless WithoutWaiting). Participants who do not have this
// identity as a contact receive it as a message request. metadata is
// public. A claim refused (taken first) makes it try again with new bundles.
func (m *Messenger) CreateSession(ctx context.Context, participants []string, metadata []byte) (*CreatedSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var last error
	for attempt := 0; attempt < maxSendAttempts; attempt++ {
		var out *CreatedSession
		p, keep, err := m.prepareSession(ctx, participants, metadata, func(c *CreatedSession) { out = c })
		if err != nil {
			return nil, err
		}
		r, t, err := m.c.signSubmit(ctx, m.id, p, keep)
		if err != nil && t == nil {
			return nil, err
		}
		if err == nil {
			out.TxID, out.Nonce, out.Status = r.TxID, t.Nonce, TxPending
			s := &Sent{TxID: r.TxID}
			err = m.wait(ctx, s)
			out.Status, out.Height = s.Status, s.Height
		}
		var dead *deadTx
		switch err = classifyCreate(err); {
		case err == nil:
			return out, nil
		case !errors.As(err, &dead) || !dead.again:
			return nil, err
		}
		last = dead.err
	}
	return nil, fmt.Errorf("%w: tried %d times, the last: %w", ErrNotSent, maxSendAttempts, last)
}

// classifyCreate is classify for a CreateSession: nothing waits in an
// outbox, so a transient failure is returned as it is.
func classifyCreate(err error) error {
	c := classify(err)
	if errors.Is(c, ErrInOutbox) {
		return err
	}
	return c
}

// TxSigner signs a payload as the Messenger's identity for its chain, with
// a nonce of the caller's choice (sessionctl tx --nonce).
type TxSigner func(ctx context.Context, p tx.Payload) (*tx.Tx, error)

// PrepareSession is CreateSession without submitting: it returns the
// CreateSession transaction sign made (the conversation is prepared for the
// session it creates) for the caller to submit.
func (m *Messenger) PrepareSession(ctx context.Context, participants []string, metadata []byte, sign TxSigner) (*tx.Tx, *CreatedSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out *CreatedSession
	p, keep, err := m.prepareSession(ctx, participants, metadata, func(c *CreatedSession) { out = c })
	if err != nil {
		return nil, nil, err
	}
	t, err := m.signWith(ctx, sign, p)
	if err != nil {
		return nil, nil, err
	}
	if err := keep(t); err != nil {
		return nil, nil, err
	}
	out.TxID, out.Nonce, out.Status = t.ID(), t.Nonce, TxUnknown
	return t, out, nil
}

// prepareSession fetches and verifies the bundles and returns the payload
// and the function that prepares the conversation once the transaction is
// signed (its nonce names the session).
func (m *Messenger) prepareSession(ctx context.Context, participants []string, metadata []byte, done func(*CreatedSession)) (*tx.CreateSession, func(*tx.Tx) error, error) {
	if len(participants) == 0 {
		return nil, nil, errors.New("service: a session needs at least one other participant")
	}
	if len(participants) > config.MaxParticipants-1 {
		return nil, nil, fmt.Errorf("service: %d participants, at most %d besides you", len(participants), config.MaxParticipants-1)
	}
	if len(metadata) > config.MaxMetadataSize {
		return nil, nil, fmt.Errorf("service: metadata is %d bytes, at most %d", len(metadata), config.MaxMetadataSize)
	}
	p := &tx.CreateSession{Metadata: metadata}
	parts := []*crypto.Identity{m.id.PublicIdentity()}
	var bundles []*chat.PrekeyBundle
	for i, s := range participants {
		sid, err := crypto.ParseSessionID(s)
		if err != nil {
			return nil, nil, fmt.Errorf("service: participant %q: %w", s, err)
		}
		if s == m.id.SessionID {
			return nil, nil, errors.New("service: you are a participant of your sessions already: name the others")
		}
		if slices.Contains(participants[:i], s) {
			return nil, nil, fmt.Errorf("service: participant %s named twice", s)
		}
		b, err := m.bundle(ctx, s, "")
		if err != nil {
			return nil, nil, err
		}
		p.Participants = append(p.Participants, sid)
		parts = append(parts, b.Identity)
		bundles = append(bundles, b)
	}
	claims, err := chat.ClaimsOf(bundles)
	if err != nil {
		return nil, nil, fmt.Errorf("service: %w", err)
	}
	p.Claims = txClaims(claims)
	claimed := make([]uint32, len(participants))
	for _, c := range claims {
		claimed[slices.Index(p.Participants, c.Participant)] = c.OneTimePrekeyID
	}
	keep := func(t *tx.Tx) error {
		sid := tx.SessionIDFor(m.chainID, t.Author, t.Nonce)
		// A conversation stored for this ID was prepared for a
		// transaction with the same nonce that never landed (refused, or
		// its process killed before it left): the session does not exist,
		// so that preparation is discarded.
		if _, err := m.c.Session(ctx, sid); err == nil {
			return fmt.Errorf("service: session %s exists already: its creator's nonce %d was used", sid, t.Nonce)
		} else if code, ok := CodeOf(err); !ok || code != CodeUnknownSession {
			return err
		}
		if _, err := m.store.LoadConversation(sid); err == nil {
			if err := m.dev.DeleteConversation(sid); err != nil {
				return err
			}
		} else if !errors.Is(err, chat.ErrNotFound) {
			return err
		}
		s := &chat.Session{ChainID: m.chainID, ID: sid, Participants: parts, Claims: claims}
		if _, err := m.dev.CreateConversation(m.now(), s, bundles); err != nil {
			return fmt.Errorf("service: preparing the conversation: %w", err)
		}
		m.st.session(sid).useProtocol(0)
		if err := m.st.save(m.side); err != nil {
			return err
		}
		done(&CreatedSession{Session: sid, Claimed: claimed})
		return nil
	}
	return p, keep, nil
}

// signWith signs p with sign, or with the node's next nonce, and checks
// that the transaction is this identity's, for this chain.
func (m *Messenger) signWith(ctx context.Context, sign TxSigner, p tx.Payload) (*tx.Tx, error) {
	var t *tx.Tx
	var err error
	if sign != nil {
		t, err = sign(ctx, p)
	} else {
		var n uint64
		if n, err = m.c.Nonce(ctx, m.id.SessionID); err == nil {
			t, err = tx.Sign(m.id, m.chainID, n, p)
		}
	}
	if err != nil {
		return nil, err
	}
	if t.ChainID != m.chainID || t.Author.String() != m.id.SessionID {
		return nil, fmt.Errorf("service: the transaction is for chain %s by %s; this Messenger is %s on %s", t.ChainID, t.Author, m.id.SessionID, m.chainID)
	}
	return t, nil
}

// PrepareSend is Send without submitting: it reads the session up to its
// end, encrypts text and returns the transactions sign made for its
// envelopes, in the order they must be submitted. The envelopes stay in
// the outbox, with these transactions, until seen on chain: a later Send
// or Resend submits them if the caller did not.
func (m *Messenger) PrepareSend(ctx context.Context, session ids.ID, text []byte, sign TxSigner) ([]*tx.Tx, error) {
	if len(text) > chat.MaxPlaintextSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", chat.ErrPlaintextTooLarge, len(text), chat.MaxPlaintextSize)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cv, err := m.participant(ctx, session)
	if err != nil {
		return nil, err
	}
	if _, err := m.newReader(ctx).sync(cv); err != nil {
		return nil, err
	}
	if err := m.usesProtocol(cv.id); err != nil {
		return nil, err
	}
	outs, err := cv.c.Send(m.now(), text, &directory{ctx: ctx, m: m, session: cv.id})
	if err != nil {
		return nil, err
	}
	var txs []*tx.Tx
	for _, o := range outs {
		p := &tx.SendMessage{Session: cv.id, Claims: txClaims(o.Claims), Ciphertext: o.Envelope}
		t, err := m.signWith(ctx, sign, p)
		if err != nil {
			return nil, err
		}
		if err := m.side.Put(txRecordName(cv.id, o.ID), t.Bytes()); err != nil {
			return nil, err
		}
		txs = append(txs, t)
	}
	return txs, nil
}
