package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// Received is a message of a session as a Messenger read it: opened and
// verified, taken from the archive (opened before), or with the reason it
// could not be opened.
type Received struct {
	Session   ids.ID
	Seq       uint64 // sequence number in the session
	Position  uint64 // chain position (the inbox cursor)
	TxID      ids.ID
	Height    uint64
	Timestamp int64 // block time, Unix ms (the node's word)
	// Sender is the author, verified: for the protocol, the signed
	// transaction's author and the signature inside the envelope; for
	// Seal, the envelope's signature.
	Sender   string
	FromSelf bool
	// SentAt is the sender's clock as it signed it (zero for Seal).
	SentAt time.Time
	Text   []byte
	// Sealed marks a Seal envelope (from before the protocol): it has no
	// forward secrecy. Read shows them; a Messenger never sends them.
	Sealed bool
	// Err is why the message could not be opened (Text is then empty).
	Err error
}

// MessagePage is a page of Read or Inbox.
type MessagePage struct {
	Messages []Received
	// Next is the cursor of the following page (a sequence number for
	// Read, a chain position for Inbox); More reports that more may follow
	// now (as MessagesReply).
	Next uint64
	More bool
	// Outbox counts messages of the session waiting in the outbox (Read
	// only): Resend sends them.
	Outbox int
}

// Errors a Received may carry besides package chat's.
var (
	// ErrUnknownFormat reports a ciphertext in a session that is neither
	// an envelope of the protocol nor a Seal envelope.
	ErrUnknownFormat = errors.New("service: not a message format this client reads")
	// ErrLegacyRefused reports a Seal envelope in a session that uses the
	// protocol (a message after one this device sent or opened with it):
	// Seal has no forward secrecy, so accepting it would be a downgrade
	// (docs/protocol.md section 16).
	ErrLegacyRefused = errors.New("service: a Seal envelope (no forward secrecy) in a session that uses the protocol: refused")
	// ErrDeletedHistory reports a message this device opened before whose
	// plaintext is no longer in the archive: its keys are gone, so it
	// stays closed (forward secrecy), to this device too.
	ErrDeletedHistory = errors.New("service: opened before and no longer in the archive")
)

// envelope kinds by their first bytes (docs/protocol.md section 16).
func isProtocolEnvelope(b []byte) bool { return len(b) >= 2 && b[0] == 'C' && b[1] == 'H' }
func isSealEnvelope(b []byte) bool {
	return len(b) >= 2 && b[0] == crypto.SealVersion && b[1] == crypto.SealSuite
}

// reader opens messages of sessions for one call, with the archives it
// loaded.
type reader struct {
	m       *Messenger
	ctx     context.Context
	archive map[ids.ID]map[uint64]*chat.Message
	opened  int // envelopes opened (or own ones confirmed)
}

func (m *Messenger) newReader(ctx context.Context) *reader {
	return &reader{m: m, ctx: ctx, archive: map[ids.ID]map[uint64]*chat.Message{}}
}

// archived returns the archived message of the session at seq, loading
// the session's archive on first use.
func (r *reader) archived(cv *conv, seq uint64) (*chat.Message, error) {
	a, ok := r.archive[cv.id]
	if !ok {
		h, err := cv.c.History()
		if err != nil {
			return nil, err
		}
		a = make(map[uint64]*chat.Message, len(h))
		for i := range h {
			if h[i].Position != 0 {
				a[h[i].Position] = &h[i]
			}
		}
		r.archive[cv.id] = a
	}
	return a[seq], nil
}

// deliver opens msgs, messages of the session of cv in chain order, and
// returns per message its Received, or nil for one that carries nothing
// for this identity (a setup message, a message addressed to others).
// Messages at or below seen were processed before: they come from the
// archive when they are there.
func (r *reader) deliver(cv *conv, msgs []Message, seen uint64) []*Received {
	out := make([]*Received, len(msgs))
	var verify []int // indexes of envelopes to check against their transactions
	var sealed []int // indexes of Seal envelopes, opened in order below
	for i := range msgs {
		msg := &msgs[i]
		rc := &Received{
			Session: cv.id, Seq: msg.Seq, Position: msg.Position, TxID: msg.TxID, Height: msg.Height,
			Timestamp: msg.Timestamp, Sender: msg.Author, FromSelf: msg.Author == r.m.id.SessionID,
		}
		out[i] = rc
		switch {
		case msg.Target != cv.id:
			rc.Err = untrusted("a message of session %s in a page of %s", msg.Target, cv.id)
		case cv.c == nil:
			rc.Err = fmt.Errorf("%w: you are not a participant of session %s", ErrNotParticipant, cv.id)
		case isSealEnvelope(msg.Ciphertext) && cv.index(msg.Author) < 0:
			// OpenMessage checks the signer against the author the node
			// names; the author must also be a participant the creator
			// signed, or a node could show anyone's envelope (sealed to
			// this session's readers) as one of its messages.
			rc.Sealed = true
			rc.Err = untrusted("message %d is by %s, who is not a participant", msg.Seq, msg.Author)
		case isSealEnvelope(msg.Ciphertext):
			rc.Sealed = true
			sealed = append(sealed, i)
		case !isProtocolEnvelope(msg.Ciphertext):
			rc.Err = ErrUnknownFormat
		default:
			if msg.Seq <= seen {
				a, err := r.archived(cv, msg.Seq)
				if err != nil {
					rc.Err = err
					continue
				}
				if a != nil && a.Sender.String() == msg.Author {
					rc.fromArchive(a)
					r.m.st.session(cv.id).useProtocol(msg.Seq)
					continue
				}
			}
			verify = append(verify, i)
		}
	}
	// The signed transactions of the envelopes to open, in one batch.
	calls := make([]BatchCall, len(verify))
	replies := make([]GetTxReply, len(verify))
	for k, i := range verify {
		calls[k] = BatchCall{Method: "getTx", Params: GetTxArgs{TxID: msgs[i].TxID.String()}, Result: &replies[k]}
	}
	var batchErr error
	if len(calls) > 0 {
		batchErr = r.m.c.Batch(r.ctx, calls)
	}
	// Open in chain order: whether a Seal envelope is refused depends on
	// the protocol envelopes before it.
	now := r.m.now()
	k, j := 0, 0
	for i := range msgs {
		switch {
		case k < len(verify) && verify[k] == i:
			r.open(cv, &msgs[i], out, i, &calls[k], replies[k].Tx, batchErr, seen, now)
			k++
		case j < len(sealed) && sealed[j] == i:
			rc := out[i]
			if r.m.st.Sessions[cv.id.String()].sealRefused(msgs[i].Seq) {
				rc.Err = ErrLegacyRefused
			} else if pt, err := OpenMessage(r.m.id, &msgs[i]); err != nil {
				rc.Err = err
			} else if prev := r.m.st.session(cv.id).noteSeal(msgs[i].Ciphertext, msgs[i].Seq); prev != 0 {
				// A signed envelope is the same wherever the node lists it.
				rc.Err = untrusted("message %d repeats the Seal envelope of message %d (a replay)", msgs[i].Seq, prev)
			} else {
				rc.Text = pt
			}
			j++
		}
	}
	return out
}

// open verifies one envelope against its transaction (call, raw) and opens
// it, setting out[i].
func (r *reader) open(cv *conv, msg *Message, out []*Received, i int, call *BatchCall, raw []byte, batchErr error, seen uint64, now time.Time) {
	rc := out[i]
	switch {
	case batchErr != nil:
		rc.Err = batchErr
		return
	case call.Err != nil:
		rc.Err = call.Err
		return
	}
	d, err := r.m.verifyDelivery(cv, msg, raw)
	if err != nil {
		rc.Err = err
		return
	}
	got, err := cv.c.Open(now, d)
	if err == nil {
		r.opened++
		r.m.st.session(cv.id).useProtocol(msg.Seq)
	}
	switch {
	case err == nil && got.Control:
		out[i] = nil
	case err == nil:
		rc.fromArchive(got)
		if a, ok := r.archive[cv.id]; ok {
			a[msg.Seq] = got // the loaded archive stays current
		}
	case errors.Is(err, chat.ErrNotAddressed), errors.Is(err, chat.ErrDuplicate):
		// Nothing for this identity, or a message shown already from
		// another envelope (sent again after a transaction that landed
		// after all).
		out[i] = nil
	case errors.Is(err, chat.ErrReplay):
		// Opened before (or sent from here): the archive has it, unless
		// it was deleted from there.
		a, aerr := r.archived(cv, msg.Seq)
		switch {
		case aerr != nil:
			rc.Err = aerr
		case a != nil && a.Sender.String() == msg.Author:
			rc.fromArchive(a)
		case a == nil && msg.Seq <= seen:
			rc.Err = ErrDeletedHistory
		default:
			rc.Err = err
		}
	default:
		rc.Err = err
	}
}

func (rc *Received) fromArchive(a *chat.Message) {
	rc.Sender, rc.FromSelf, rc.SentAt, rc.Text = a.Sender.String(), a.FromSelf, a.SentAt, a.Plaintext
}

// verifyDelivery checks a message of a session against its signed
// SendMessage transaction raw (getTx) and returns what the protocol needs
// from it: the author (a participant, whose key signed the transaction),
// the ciphertext (the one delivered) and the claims.
func (m *Messenger) verifyDelivery(cv *conv, msg *Message, raw []byte) (*chat.Delivery, error) {
	t, err := tx.Parse(raw)
	if err != nil {
		return nil, untrusted("the transaction of message %d does not parse: %v", msg.Seq, err)
	}
	p, ok := t.Payload.(*tx.SendMessage)
	switch {
	case t.ID() != msg.TxID:
		return nil, untrusted("getTx %s returned transaction %s", msg.TxID, t.ID())
	case t.ChainID != m.chainID:
		return nil, untrusted("the transaction of message %d is for chain %s", msg.Seq, t.ChainID)
	case !ok:
		return nil, untrusted("message %d comes from a %s transaction", msg.Seq, t.Type())
	case p.Session != cv.id:
		return nil, untrusted("the transaction of message %d is for session %s, not %s", msg.Seq, p.Session, cv.id)
	case t.Author.String() != msg.Author:
		return nil, untrusted("message %d is by %s, and the node says %s", msg.Seq, t.Author, msg.Author)
	case !bytes.Equal(p.Ciphertext, msg.Ciphertext):
		return nil, untrusted("the ciphertext of message %d is not its transaction's", msg.Seq)
	}
	x := cv.index(msg.Author)
	if x < 0 {
		return nil, untrusted("message %d is by %s, who is not a participant", msg.Seq, msg.Author)
	}
	if !t.VerifySignature(cv.dsa[x]) {
		return nil, untrusted("the transaction of message %d is not signed by %s", msg.Seq, msg.Author)
	}
	d := &chat.Delivery{Envelope: p.Ciphertext, Position: msg.Seq, Sender: t.Author}
	d.Claims = chatClaims(p.Claims)
	return d, nil
}

// synced is what sync processed: per sequence number its Received (nil for
// a message that carried nothing for this identity), and the sequence
// number of each transaction.
type synced struct {
	bySeq map[uint64]*Received
	seqOf map[ids.ID]uint64
	own   int // own messages processed (confirmations)
}

// sync reads the session of cv from its cursor to the end, opening every
// message in chain order (so the ratchet sees them in order and own
// envelopes are confirmed), and moves the cursor. Messages whose chain had
// not started go to the session's retry set, retried once later messages
// open.
func (r *reader) sync(cv *conv) (*synced, error) {
	m := r.m
	s := &synced{bySeq: map[uint64]*Received{}, seqOf: map[ids.ID]uint64{}}
	ss := m.st.session(cv.id)
	opened := r.opened
	for {
		cursor := ss.Read
		page, err := m.c.Messages(r.ctx, cv.id, cursor, DefaultPageSize)
		if err != nil {
			return s, err
		}
		last := cursor
		for _, msg := range page.Messages {
			if msg.Seq <= last {
				return s, untrusted("getMessages after %d returned message %d out of order", cursor, msg.Seq)
			}
			last = msg.Seq
			s.seqOf[msg.TxID] = msg.Seq
			if msg.Author == m.id.SessionID {
				s.own++
			}
		}
		for i, rc := range r.deliver(cv, page.Messages, cursor) {
			seq := page.Messages[i].Seq
			s.bySeq[seq] = rc
			if rc != nil && waitsForEarlier(rc.Err) {
				ss.Retry = append(ss.Retry, seq)
				if len(ss.Retry) > maxRetry {
					ss.Retry = ss.Retry[len(ss.Retry)-maxRetry:]
				}
			}
		}
		if last == cursor {
			break
		}
		ss.Read = last
		if err := m.st.save(m.side); err != nil {
			return s, err
		}
		if !page.More {
			break
		}
	}
	if r.opened > opened && len(ss.Retry) > 0 {
		if err := r.retry(cv, ss, s); err != nil {
			return s, err
		}
	}
	if s.own > 0 {
		if err := m.dropSentRecords(cv); err != nil {
			return s, err
		}
	}
	return s, nil
}

// waitsForEarlier reports the errors of a message that may open once an
// earlier one comes: its chain or its handshake was not seen yet (lost,
// or withheld by the node).
func waitsForEarlier(err error) bool {
	return errors.Is(err, chat.ErrChainNotStarted) || errors.Is(err, chat.ErrUnknownTree)
}

// retry delivers the session's retry set again, as long as that opens
// something; what opens, or fails for another reason, leaves the set.
func (r *reader) retry(cv *conv, ss *sessionState, s *synced) error {
	for len(ss.Retry) > 0 {
		calls := make([]BatchCall, len(ss.Retry))
		pages := make([]MessagesReply, len(ss.Retry))
		for i, seq := range ss.Retry {
			calls[i] = BatchCall{Method: "getMessages", Params: MessagesArgs{Session: cv.id.String(), After: seq - 1, Limit: 1}, Result: &pages[i]}
		}
		if err := r.m.c.Batch(r.ctx, calls); err != nil {
			return err
		}
		var msgs []Message
		for i, seq := range ss.Retry {
			if calls[i].Err == nil && len(pages[i].Messages) == 1 && pages[i].Messages[0].Seq == seq {
				msgs = append(msgs, pages[i].Messages[0])
			}
		}
		opened := r.opened
		var keep []uint64
		for i, rc := range r.deliver(cv, msgs, 0) {
			s.bySeq[msgs[i].Seq] = rc
			if rc != nil && waitsForEarlier(rc.Err) {
				keep = append(keep, msgs[i].Seq)
			}
		}
		ss.Retry = keep
		if err := r.m.st.save(r.m.side); err != nil {
			return err
		}
		if r.opened == opened {
			return nil
		}
	}
	return nil
}

// Read returns a page of the messages of a session after sequence number
// after (limit 0: DefaultPageSize), each opened and verified, or from the
// archive when opened before. Messages the identity had not read yet are
// read first in chain order, up to the end of the session, as the protocol
// needs. In a session the identity does not take part in, every message
// carries an error wrapping ErrNotParticipant.
func (m *Messenger) Read(ctx context.Context, session ids.ID, after uint64, limit int) (*MessagePage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cv, err := m.conversation(ctx, session)
	if err != nil {
		return nil, err
	}
	page, err := m.c.Messages(ctx, session, after, limit)
	if err != nil {
		return nil, err
	}
	r := m.newReader(ctx)
	out := &MessagePage{Next: page.Next, More: page.More}
	seen := m.st.read(session)
	var s *synced
	if cv.c != nil && len(page.Messages) > 0 && page.Messages[len(page.Messages)-1].Seq > seen {
		if s, err = r.sync(cv); err != nil {
			return nil, err
		}
	}
	if out.Messages, err = r.collect(cv, page.Messages, seen, s); err != nil {
		return nil, err
	}
	if cv.c != nil {
		m.heal(ctx, cv)
		ob, err := cv.c.Outbox()
		if err != nil {
			return nil, err
		}
		out.Outbox = len(ob)
	}
	m.maintainPrekeys(ctx)
	return out, nil
}

// heal (run by Read and Inbox) sends a ratchet message (chat's Heal) when
// this identity has read MaxChainMessages messages of the session since
// it last sent, or MaxChainAge passed since the first of them: a
// participant that only reads still refreshes its ratchet keys, so its
// peers' direction heals after a compromise (docs/protocol.md section
// 7.6). It waits in the outbox if it cannot go now (the next Send or
// Resend sends it); a failure never fails the read.
func (m *Messenger) heal(ctx context.Context, cv *conv) {
	now := m.now()
	if !cv.c.HealDue(now) {
		return
	}
	outs, err := cv.c.Heal(now)
	if err != nil || len(outs) == 0 {
		return
	}
	_ = m.submitAll(ctx, cv, outs, &directory{ctx: ctx, m: m, session: cv.id}, &SendResult{Session: cv.id}, false)
}

// collect returns the Received of msgs, leaving out those that carry
// nothing for this identity.
func (r *reader) collect(cv *conv, msgs []Message, seen uint64, s *synced) ([]Received, error) {
	rs, err := r.collectAll(cv, msgs, seen, s)
	var out []Received
	for _, rc := range rs {
		if rc != nil {
			out = append(out, *rc)
		}
	}
	return out, err
}

// Inbox returns a page of the messages others sent to this identity
// across its sessions (getInbox) after the chain position after, each
// opened and verified as Read does (the sessions they belong to are read
// up to their end first).
func (m *Messenger) Inbox(ctx context.Context, after uint64, limit int) (*MessagePage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	page, err := m.c.Inbox(ctx, m.id.SessionID, after, limit)
	if err != nil {
		return nil, err
	}
	r := m.newReader(ctx)
	out := &MessagePage{Next: page.Next, More: page.More}
	// The page's messages by session, in order.
	var order []ids.ID
	bySession := map[ids.ID][]int{}
	for i := range page.Messages {
		t := page.Messages[i].Target
		if _, ok := bySession[t]; !ok {
			order = append(order, t)
		}
		bySession[t] = append(bySession[t], i)
	}
	results := make([]*Received, len(page.Messages))
	for _, session := range order {
		idx := bySession[session]
		msgs := make([]Message, len(idx))
		for k, i := range idx {
			msgs[k] = page.Messages[i]
		}
		fail := func(err error) {
			for k, i := range idx {
				m := msgs[k]
				results[i] = &Received{Session: session, Seq: m.Seq, Position: m.Position, TxID: m.TxID, Height: m.Height,
					Timestamp: m.Timestamp, Sender: m.Author, Err: err}
			}
		}
		cv, err := m.conversation(ctx, session)
		if err != nil {
			fail(err)
			continue
		}
		seen := m.st.read(session)
		var s *synced
		if cv.c != nil && msgs[len(msgs)-1].Seq > seen {
			if s, err = r.sync(cv); err != nil {
				fail(err)
				continue
			}
		}
		rs, err := r.collectAll(cv, msgs, seen, s)
		if err != nil {
			return nil, err
		}
		for k, i := range idx {
			results[i] = rs[k]
		}
		if cv.c != nil {
			m.heal(ctx, cv)
		}
	}
	for _, rc := range results {
		if rc != nil {
			out.Messages = append(out.Messages, *rc)
		}
	}
	m.maintainPrekeys(ctx)
	return out, nil
}

// collectAll is collect that keeps one entry (possibly nil) per message.
// Messages read before the cursor (seen) are opened here when the archive
// does not have them: a message a node withheld (a handshake, say) opens
// when it finally comes, and the messages that waited for it in the retry
// set are retried then.
func (r *reader) collectAll(cv *conv, msgs []Message, seen uint64, s *synced) ([]*Received, error) {
	opened := r.opened
	results := make([]*Received, len(msgs))
	var rest []Message
	var restAt []int
	for i := range msgs {
		if s != nil {
			if rc, ok := s.bySeq[msgs[i].Seq]; ok {
				results[i] = rc
				continue
			}
		}
		rest, restAt = append(rest, msgs[i]), append(restAt, i)
	}
	if len(rest) > 0 {
		for k, rc := range r.deliver(cv, rest, max(seen, r.m.st.read(cv.id))) {
			results[restAt[k]] = rc
		}
	}
	if cv.c == nil || r.opened == opened {
		return results, nil
	}
	ss := r.m.st.session(cv.id)
	if len(ss.Retry) == 0 {
		return results, nil
	}
	retried := &synced{bySeq: map[uint64]*Received{}, seqOf: map[ids.ID]uint64{}}
	if err := r.retry(cv, ss, retried); err != nil {
		return nil, err
	}
	for i := range msgs {
		if rc, ok := retried.bySeq[msgs[i].Seq]; ok && results[i] != nil && waitsForEarlier(results[i].Err) {
			results[i] = rc
		}
	}
	return results, nil
}

// History returns the messages this identity sent and read in a session,
// in chain order (own messages not yet on chain last), from the archive
// (the node is asked only for the session's participants, once per
// Messenger, to verify them). The chain's copies of these messages are unreadable by
// design once their keys are deleted; the archive is what keeps them.
func (m *Messenger) History(ctx context.Context, session ids.ID) ([]Received, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cv, err := m.participant(ctx, session)
	if err != nil {
		return nil, err
	}
	h, err := cv.c.History()
	if err != nil {
		return nil, err
	}
	out := make([]Received, len(h))
	for i := range h {
		out[i] = Received{Session: session, Seq: h[i].Position}
		out[i].fromArchive(&h[i])
	}
	return out, nil
}
