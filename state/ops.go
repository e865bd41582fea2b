package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/luxfi/database"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// ---- identities and nonces ----

// GetIdentity returns the identity registered under id, or ErrNotFound.
func (s *State) GetIdentity(id crypto.SessionID) (*Identity, error) {
	k := SessionIDKey(id)
	b, err := s.identities().Get(k[:])
	if err != nil {
		return nil, err
	}
	return decodeIdentity(id, b)
}

// HasIdentity reports whether id is registered.
func (s *State) HasIdentity(id crypto.SessionID) (bool, error) {
	k := SessionIDKey(id)
	return s.identities().Has(k[:])
}

// PutIdentity stores a new identity and counts it.
func (s *State) PutIdentity(i *Identity) error {
	k := SessionIDKey(i.ID)
	if err := s.identities().Put(k[:], i.encode()); err != nil {
		return err
	}
	return s.AddCount(CountIdentities, 1)
}

// GetAccount returns id's account (the zero account for an identity that
// never sent a transaction).
func (s *State) GetAccount(id crypto.SessionID) (Account, error) {
	k := SessionIDKey(id)
	b, err := s.accounts().Get(k[:])
	if errors.Is(err, database.ErrNotFound) {
		return Account{}, nil
	}
	if err != nil {
		return Account{}, err
	}
	return decodeAccount(b)
}

// PutAccount stores id's account. The value is built in the view's scratch
// (the database copies what it keeps).
func (s *State) PutAccount(id crypto.SessionID, a *Account) error {
	k := SessionIDKey(id)
	s.val = a.appendEncoding(s.val[:0])
	return s.accounts().Put(k[:], s.val)
}

// Nonce returns the next nonce id must use (0 for an unknown author).
func (s *State) Nonce(id crypto.SessionID) (uint64, error) {
	a, err := s.GetAccount(id)
	return a.Nonce, err
}

// SetNonce stores the next nonce of id, keeping the rest of its account.
func (s *State) SetNonce(id crypto.SessionID, next uint64) error {
	a, err := s.GetAccount(id)
	if err != nil {
		return err
	}
	a.Nonce = next
	return s.PutAccount(id, &a)
}

// ---- sessions ----

// GetSession returns a session, or ErrNotFound.
func (s *State) GetSession(id ids.ID) (*Session, error) {
	b, err := s.sessions().Get(id[:])
	if err != nil {
		return nil, err
	}
	return decodeSession(id, b)
}

// PutSession stores a session (new or updated).
func (s *State) PutSession(sess *Session) error {
	return s.sessions().Put(sess.ID[:], sess.encode())
}

// ---- messages ----

// GetCounter returns the message counter of a session or channel (zero
// if nothing was ever posted).
func (s *State) GetCounter(target ids.ID) (Counter, error) {
	b, err := s.counters().Get(target[:])
	if errors.Is(err, database.ErrNotFound) {
		return Counter{}, nil
	}
	if err != nil {
		return Counter{}, err
	}
	return decodeCounter(b)
}

// PutCounter stores the message counter of a session or channel.
func (s *State) PutCounter(target ids.ID, c *Counter) error {
	s.val = c.appendEncoding(s.val[:0])
	return s.counters().Put(target[:], s.val)
}

// LastSeq returns the sequence number of the latest message of a session or
// channel (0 if none was ever posted). Pruning does not lower it.
func (s *State) LastSeq(target ids.ID) (uint64, error) {
	c, err := s.GetCounter(target)
	return c.Last, err
}

func messageKey(target ids.ID, seq uint64) []byte {
	k := make([]byte, ids.IDLen+8)
	copy(k, target[:])
	binary.BigEndian.PutUint64(k[ids.IDLen:], seq)
	return k
}

// Kinds of retention queue items.
const (
	KindSession byte = 's' // a session message
	KindChannel byte = 'c' // a channel post
	KindRequest byte = 'q' // a session's request entries (seq 0)
	KindClaim   byte = 'w' // a claim log entry (the target's digest, the claim's position)
)

// AppendMessage stores m as the next message of its target: it sets m.Seq,
// updates the target's counter, queues m for retention, adds an inbox
// entry for every recipient and, for a channel post, the post's author
// record. It returns the sequence number.
func (s *State) AppendMessage(kind byte, m *Message, recipients []crypto.SessionID) (uint64, error) {
	c, err := s.GetCounter(m.Target)
	if err != nil {
		return 0, err
	}
	return s.AppendMessageAfter(kind, m, recipients, &c)
}

// AppendMessageAfter is AppendMessage for a caller that just read the
// target's counter c on this view; it updates c.
//
// On a TxWriteOnlyDropper view it writes the counter (and a post's author)
// alone: the message, inbox and retention records would be dropped, and
// the retention head and the message counts are read only by pruning and
// queries, never by transaction execution.
func (s *State) AppendMessageAfter(kind byte, m *Message, recipients []crypto.SessionID, c *Counter) (uint64, error) {
	c.Last++
	c.Stored++
	if c.First == 0 {
		c.First = 1
	}
	m.Seq = c.Last
	if err := s.PutCounter(m.Target, c); err != nil {
		return 0, err
	}
	if kind == KindChannel {
		if err := s.postAuths().Put(messageKey(m.Target, m.Seq), sessionIDBytes(m.Author)); err != nil {
			return 0, err
		}
	}
	if s.dropsTxWriteOnly() {
		return m.Seq, nil
	}
	if err := s.putMessageRecords(kind, m, recipients); err != nil {
		return 0, err
	}
	if err := s.AddCount(CountMessagesStored, 1); err != nil {
		return 0, err
	}
	return m.Seq, s.AddCount(CountMessagesTotal, 1)
}

func sessionIDBytes(id crypto.SessionID) []byte {
	k := SessionIDKey(id)
	return k[:]
}

// putMessageRecords writes m, its inbox entries and its retention item
// (the TxWriteOnly records of a message).
//
// The values are built in the view's scratch (s.val): the database copies
// what it keeps.
func (s *State) putMessageRecords(kind byte, m *Message, recipients []crypto.SessionID) error {
	msgs := s.messages()
	s.val = m.appendEncoding(s.val[:0])
	if err := s.put(msgs.keyU64(m.Target[:], m.Seq), s.val); err != nil {
		return err
	}
	// The inbox entries are <target 32><seq 8>.
	ref := binary.BigEndian.AppendUint64(append(s.val[:0], m.Target[:]...), m.Seq)
	s.val = ref
	inbox := s.inbox()
	for _, r := range recipients {
		rk := SessionIDKey(r)
		if err := s.put(inbox.keyU64(rk[:], m.Position), ref); err != nil {
			return err
		}
	}
	return s.queueItem(kind, m.Target, m.Seq, m.Position, m.Timestamp)
}

// AddInboxEntry adds an inbox entry for an existing message (a session's
// first messages, when a participant accepts it). It writes nothing on a
// TxWriteOnlyDropper view.
func (s *State) AddInboxEntry(recipient crypto.SessionID, m *Message) error {
	if s.dropsTxWriteOnly() {
		return nil
	}
	rk := SessionIDKey(recipient)
	ref := binary.BigEndian.AppendUint64(append(s.val[:0], m.Target[:]...), m.Seq)
	s.val = ref
	return s.put(s.inbox().keyU64(rk[:], m.Position), ref)
}

// QueueRequest queues a session's request entries for retention: pruning
// removes those still pointing at the session.
func (s *State) QueueRequest(session ids.ID, pos uint64, ts int64) error {
	if s.dropsTxWriteOnly() {
		return nil
	}
	return s.queueItem(KindRequest, session, 0, pos, ts)
}

// QueueSession queues a session for retention (the session queue): an
// entry <pos> → <createdAt 8><session 32>, pruned once the session's TTL
// and the retention period have passed.
func (s *State) QueueSession(session ids.ID, pos uint64, createdAt int64) error {
	if s.dropsTxWriteOnly() {
		return nil
	}
	v := binary.BigEndian.AppendUint64(s.val[:0], uint64(createdAt))
	v = append(v, session[:]...)
	s.val = v
	if err := s.put(s.sessQueue().keyU64(nil, pos), v); err != nil {
		return err
	}
	queued, err := s.meta().Has(keySessionRetentionHead)
	if err != nil || queued {
		return err
	}
	return s.meta().Put(keySessionRetentionHead, s.u64(uint64(createdAt)))
}

// PruneSessions is PruneSessionsWithin without a bound on the writes.
func (s *State) PruneSessions(cutoff int64, max int) (int, error) {
	return s.PruneSessionsWithin(cutoff, max, math.MaxInt)
}

// PruneSessionsWithin removes, oldest first, at most max sessions created
// before cutoff (Unix ms) that store no message: for each, its request
// entries (those still pointing at it), every participant's listing, its
// counter, its record and its queue entry. It stops at the first session
// that still stores a message (the retention queue lags behind), so
// sessions are removed in creation order, and begins none once maxWrites
// writes were spent (Writes). It returns how many it removed.
func (s *State) PruneSessionsWithin(cutoff int64, max, maxWrites int) (int, error) {
	if max <= 0 || maxWrites <= 0 {
		return 0, nil
	}
	head, err := s.meta().Get(keySessionRetentionHead)
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(head) != 8 {
		return 0, fmt.Errorf("%w: session retention head", ErrCorrupt)
	}
	if int64(binary.BigEndian.Uint64(head)) >= cutoff {
		return 0, nil
	}
	type due struct {
		key     []byte
		ts      int64
		session ids.ID
	}
	var list []due
	newHead := int64(-1)
	it := s.sessQueue().NewIterator()
	for it.Next() {
		v := it.Value()
		if len(v) != 8+ids.IDLen {
			it.Release()
			return 0, fmt.Errorf("%w: session queue entry of %d bytes", ErrCorrupt, len(v))
		}
		ts := int64(binary.BigEndian.Uint64(v))
		if ts >= cutoff || len(list) == max {
			newHead = ts
			break
		}
		list = append(list, due{key: bytes.Clone(it.Key()), ts: ts, session: ids.ID(v[8:])})
	}
	err = it.Error()
	it.Release()
	if err != nil {
		return 0, err
	}
	n := 0
	start := s.writes
	for _, d := range list {
		if s.writes-start >= maxWrites {
			newHead = d.ts // start from this session next time
			break
		}
		sess, err := s.GetSession(d.session)
		if err != nil && !errors.Is(err, database.ErrNotFound) {
			return 0, err
		}
		if sess != nil {
			c, err := s.GetCounter(d.session)
			if err != nil {
				return 0, err
			}
			if c.Stored > 0 {
				// Its messages are still queued for retention: stop here,
				// and start from this session next time.
				newHead = sess.CreatedAt
				break
			}
			if err := s.pruneRequestsOf(sess); err != nil {
				return 0, err
			}
			for _, p := range sess.Participants {
				if err := s.RemoveParticipation(p, sess.Position); err != nil {
					return 0, err
				}
			}
			if err := s.counters().Delete(d.session[:]); err != nil {
				return 0, err
			}
			if err := s.sessions().Delete(d.session[:]); err != nil {
				return 0, err
			}
		}
		if err := s.sessQueue().Delete(d.key); err != nil {
			return 0, err
		}
		n++
	}
	if newHead < 0 {
		err = s.meta().Delete(keySessionRetentionHead)
	} else {
		err = s.meta().Put(keySessionRetentionHead, s.u64(uint64(newHead)))
	}
	return n, err
}

// queueItem queues one retention item <kind><target><seq> at pos, time ts.
func (s *State) queueItem(kind byte, target ids.ID, seq, pos uint64, ts int64) error {
	// A retention entry is <time 8> then items <kind 1><ref 40>.
	q := binary.BigEndian.AppendUint64(s.val[:0], uint64(ts))
	q = append(q, kind)
	q = append(q, target[:]...)
	q = binary.BigEndian.AppendUint64(q, seq)
	s.val = q
	if !s.deferred {
		if err := s.put(s.retention().keyU64(nil, pos), q); err != nil {
			return err
		}
		return s.queueHead(ts)
	}
	// Deferred: the items of the block share one entry, keyed by the
	// position of the first (Flush writes it).
	if len(s.queued) > 0 && s.queuedTime != ts {
		if err := s.flushRetention(); err != nil {
			return err
		}
	}
	if len(s.queued) == 0 {
		s.queuedPos, s.queuedTime = pos, ts
	}
	s.queued = append(s.queued, q[8:]...)
	return nil
}

// flushRetention writes the deferred retention entry, if any.
func (s *State) flushRetention() error {
	if len(s.queued) == 0 {
		return nil
	}
	s.val = append(binary.BigEndian.AppendUint64(s.val[:0], uint64(s.queuedTime)), s.queued...)
	if err := s.put(s.retention().keyU64(nil, s.queuedPos), s.val); err != nil {
		return err
	}
	s.queued = s.queued[:0]
	return s.queueHead(s.queuedTime)
}

// queueHead records ts as the time of the oldest queued item unless an
// older one is queued (entries are queued in time order).
func (s *State) queueHead(ts int64) error {
	queued, err := s.db.Has(rootRetentionHead)
	if err != nil || queued {
		return err
	}
	return s.put(rootRetentionHead, s.u64(uint64(ts)))
}

// GetMessage returns one message, or ErrNotFound (never posted or pruned).
func (s *State) GetMessage(target ids.ID, seq uint64) (*Message, error) {
	b, err := s.messages().Get(messageKey(target, seq))
	if err != nil {
		return nil, err
	}
	return decodeMessage(target, seq, b)
}

// Messages returns up to limit messages of target with a sequence number
// greater than after, in order.
func (s *State) Messages(target ids.ID, after uint64, limit int) ([]*Message, error) {
	return s.MessagesBounded(target, after, limit, 0)
}

// MessagesBounded is Messages that also stops once the ciphertexts read
// exceed maxBytes (0: no bound). The message that crosses the bound is
// included, so a caller applying the same bound can tell a cut page.
func (s *State) MessagesBounded(target ids.ID, after uint64, limit, maxBytes int) ([]*Message, error) {
	if limit <= 0 {
		return nil, nil
	}
	it := s.messages().NewIteratorWithStartAndPrefix(messageKey(target, after+1), target[:])
	defer it.Release()
	var out []*Message
	total := 0
	for len(out) < limit && (maxBytes <= 0 || total <= maxBytes) && it.Next() {
		k := it.Key()
		if len(k) != ids.IDLen+8 {
			return nil, fmt.Errorf("%w: message key of %d bytes", ErrCorrupt, len(k))
		}
		m, err := decodeMessage(target, binary.BigEndian.Uint64(k[ids.IDLen:]), it.Value())
		if err != nil {
			return nil, err
		}
		total += len(m.Ciphertext)
		out = append(out, m)
	}
	return out, it.Error()
}

// Inbox returns up to limit inbox entries of recipient with a position
// greater than after, in chain order. Pass the Position of the last entry
// as the next cursor. Pruned messages have no entries; a cursor stays valid
// after the entries before or at it are pruned.
func (s *State) Inbox(recipient crypto.SessionID, after uint64, limit int) ([]InboxEntry, error) {
	if limit <= 0 || after == ^uint64(0) {
		return nil, nil
	}
	rk := SessionIDKey(recipient)
	start := binary.BigEndian.AppendUint64(cat(rk[:]), after+1)
	it := s.inbox().NewIteratorWithStartAndPrefix(start, rk[:])
	defer it.Release()
	var out []InboxEntry
	for len(out) < limit && it.Next() {
		k, v := it.Key(), it.Value()
		if len(k) != SessionIDSize+8 || len(v) != ids.IDLen+8 {
			return nil, fmt.Errorf("%w: inbox entry", ErrCorrupt)
		}
		out = append(out, InboxEntry{
			Position: binary.BigEndian.Uint64(k[SessionIDSize:]),
			Session:  ids.ID(v[:ids.IDLen]),
			Seq:      binary.BigEndian.Uint64(v[ids.IDLen:]),
		})
	}
	return out, it.Error()
}

// ---- retention ----

// PruneMessages is PruneMessagesWithin without a bound on the writes.
func (s *State) PruneMessages(cutoff int64, max int) (int, error) {
	return s.PruneMessagesWithin(cutoff, max, math.MaxInt)
}

// PruneMessagesWithin removes, oldest first, queued items (messages,
// posts, request entries, claim log entries) whose block time is before
// cutoff (Unix milliseconds): a message with its inbox entries, a post with
// its author record, a request's entries. It returns how many items it
// took.
//
// Two bounds keep one block's retention work and its write batch small:
// at most max items, and no item begins once maxWrites writes were spent
// (Writes), so the writes are at most maxWrites plus one item's (a session
// message: its inbox entries, the message and its counter, at most
// config.MaxParticipants + 1) plus two (its queue entry and the head). An
// entry of the retention queue that holds more due items than are taken is
// cut, and the rest stays queued under the same key.
func (s *State) PruneMessagesWithin(cutoff int64, max, maxWrites int) (int, error) {
	if max <= 0 || maxWrites <= 0 {
		return 0, nil
	}
	// One retention entry: the messages of one block (or one message),
	// all with the same time.
	type entry struct {
		key   []byte
		ts    int64
		items []byte // n × retentionItemSize
		take  int    // how many of them may be removed now
	}
	// The head records the time of the oldest queued message, so a block
	// with nothing due reads one key instead of opening an iterator.
	head, err := s.meta().Get(keyRetentionHead)
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(head) != 8 {
		return 0, fmt.Errorf("%w: retention head", ErrCorrupt)
	}
	if int64(binary.BigEndian.Uint64(head)) >= cutoff {
		return 0, nil
	}
	var list []entry
	n := 0
	next := int64(-1) // time of the first entry after list; -1: none
	it := s.retention().NewIterator()
	for it.Next() {
		v := it.Value()
		if len(v) < 8+retentionItemSize || (len(v)-8)%retentionItemSize != 0 {
			it.Release()
			return 0, fmt.Errorf("%w: retention entry of %d bytes", ErrCorrupt, len(v))
		}
		ts := int64(binary.BigEndian.Uint64(v))
		if ts >= cutoff || n == max {
			next = ts
			break
		}
		items := (len(v) - 8) / retentionItemSize
		take := min(items, max-n)
		list = append(list, entry{key: bytes.Clone(it.Key()), ts: ts, items: bytes.Clone(v[8:]), take: take})
		n += take
		if take < items {
			break
		}
	}
	err = it.Error()
	it.Release()
	if err != nil {
		return 0, err
	}
	// Remove item by item until the items or the writes run out; each
	// entry is deleted (all taken) or rewritten with the rest right after
	// its items, so its write counts too.
	start := s.writes
	took := 0
	removed := 0 // messages and posts actually removed (not deleted before)
	newHead := next
	for _, e := range list {
		done := 0
		for done < e.take && s.writes-start < maxWrites {
			item := e.items[done*retentionItemSize : (done+1)*retentionItemSize]
			gone, err := s.pruneItem(item[0], ids.ID(item[1:1+ids.IDLen]), binary.BigEndian.Uint64(item[1+ids.IDLen:]))
			if err != nil {
				return 0, err
			}
			if gone {
				removed++
			}
			done++
		}
		took += done
		rest := e.items[done*retentionItemSize:]
		switch {
		case len(rest) == 0:
			err = s.retention().Delete(e.key)
		case done > 0:
			v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(rest)), uint64(e.ts))
			err = s.retention().Put(e.key, append(v, rest...))
		}
		if err != nil {
			return 0, err
		}
		if len(rest) > 0 {
			newHead = e.ts // the oldest left
			break
		}
	}
	if newHead < 0 {
		err = s.meta().Delete(keyRetentionHead)
	} else {
		err = s.meta().Put(keyRetentionHead, s.u64(uint64(newHead)))
	}
	if err != nil {
		return 0, err
	}
	if removed > 0 {
		if err := s.AddCount(CountMessagesStored, -int64(removed)); err != nil {
			return 0, err
		}
		if err := s.AddCount(CountMessagesPruned, int64(removed)); err != nil {
			return 0, err
		}
	}
	return took, nil
}

// retentionItemSize is the size of one message in a retention entry:
// kind 1 | target 32 | seq 8.
const retentionItemSize = 1 + ids.IDLen + 8

// pruneItem removes one retention item and reports whether it removed a
// stored message or post (false: a request item, or a post deleted or
// evicted before).
func (s *State) pruneItem(kind byte, target ids.ID, seq uint64) (bool, error) {
	switch kind {
	case KindRequest:
		return false, s.pruneRequests(target)
	case KindClaim:
		return false, s.claimLog().Delete(claimLogKey(crypto.SessionID{Prefix: 0x07, Digest: target}, seq))
	}
	// Retention removes a target's messages in sequence order: everything
	// below seq is gone.
	return s.RemoveMessage(kind, target, seq, true)
}

// RemoveMessage deletes one stored message or post with what refers to it
// (inbox entries, a post's author record) and lowers its target's stored
// count. It reports false, writing nothing, when the message is already
// gone. Used by retention and eviction (oldest: seq is the target's oldest
// stored message, so the counter's First moves past it) and by
// DeletePosts (any post).
func (s *State) RemoveMessage(kind byte, target ids.ID, seq uint64, oldest bool) (bool, error) {
	mk := messageKey(target, seq)
	author := -1 // a session message's author index, for its share
	if kind == KindChannel {
		// The author record is kept in every view (execution reads it);
		// it tells whether the post is still there.
		if ok, err := s.postAuths().Has(mk); err != nil || !ok {
			return false, err
		}
		if err := s.postAuths().Delete(mk); err != nil {
			return false, err
		}
	} else {
		raw, err := s.messages().Get(mk)
		if errors.Is(err, database.ErrNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		m, err := decodeMessage(target, seq, raw)
		if err != nil {
			return false, err
		}
		sess, err := s.GetSession(target)
		if err != nil {
			return false, fmt.Errorf("removing message %d of session %s: %w", seq, target, err)
		}
		for _, p := range sess.Participants {
			if p == m.Author {
				continue
			}
			rk := SessionIDKey(p)
			if err := s.inbox().Delete(binary.BigEndian.AppendUint64(cat(rk[:]), m.Position)); err != nil {
				return false, err
			}
		}
		author = sess.Index(m.Author)
	}
	if !s.dropsTxWriteOnly() {
		if err := s.messages().Delete(mk); err != nil {
			return false, err
		}
	}
	c, err := s.GetCounter(target)
	if err != nil {
		return false, err
	}
	if c.Stored == 0 {
		return false, fmt.Errorf("%w: stored count of %s would go negative", ErrCorrupt, target)
	}
	c.Stored--
	if author >= 0 && author < c.NShares {
		if c.Shares[author] == 0 {
			return false, fmt.Errorf("%w: share %d of %s would go negative", ErrCorrupt, author, target)
		}
		c.Shares[author]--
	}
	if (oldest || seq == c.First) && seq >= c.First {
		c.First = seq + 1
	}
	return true, s.PutCounter(target, &c)
}

// PostAuthor returns the author of a stored channel post, or false if the
// post is gone (or was never posted).
func (s *State) PostAuthor(channel ids.ID, seq uint64) (crypto.SessionID, bool, error) {
	b, err := s.postAuths().Get(messageKey(channel, seq))
	if errors.Is(err, database.ErrNotFound) {
		return crypto.SessionID{}, false, nil
	}
	if err != nil {
		return crypto.SessionID{}, false, err
	}
	id, err := SessionIDFromKey(b)
	return id, err == nil, err
}

// ---- channels ----

// GetChannel returns a channel, or ErrNotFound.
func (s *State) GetChannel(id ids.ID) (*Channel, error) {
	b, err := s.channels().Get(id[:])
	if err != nil {
		return nil, err
	}
	return decodeChannel(id, b)
}

// PutChannel stores a channel (new or updated).
func (s *State) PutChannel(c *Channel) error {
	return s.channels().Put(c.ID[:], c.encode())
}

func memberKey(channel ids.ID, member crypto.SessionID) []byte {
	k := SessionIDKey(member)
	return cat(channel[:], k[:])
}

// IsMember reports whether member belongs to channel.
func (s *State) IsMember(channel ids.ID, member crypto.SessionID) (bool, error) {
	return s.members().Has(memberKey(channel, member))
}

// MemberRole returns member's role in channel (RoleMember, RoleModerator,
// RoleOwner), or 0 for a non-member.
func (s *State) MemberRole(channel ids.ID, member crypto.SessionID) (uint8, error) {
	role, _, err := s.MemberRecord(channel, member)
	return role, err
}

// MemberRecord returns member's role in channel (0: not a member) and the
// block time of its last post there that a slow mode counted (0: none).
func (s *State) MemberRecord(channel ids.ID, member crypto.SessionID) (uint8, int64, error) {
	b, err := s.members().Get(memberKey(channel, member))
	if errors.Is(err, database.ErrNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	return decodeMember(b)
}

func decodeMember(b []byte) (uint8, int64, error) {
	if len(b) != 9 || b[0] < RoleMember || b[0] > RoleOwner {
		return 0, 0, fmt.Errorf("%w: member record %x", ErrCorrupt, b)
	}
	return b[0], int64(binary.BigEndian.Uint64(b[1:])), nil
}

// AddMember records membership with a role and no counted post (the
// caller keeps Channel.Members); it also sets a member's role, keeping
// lastPost.
func (s *State) AddMember(channel ids.ID, member crypto.SessionID, role uint8) error {
	_, last, err := s.MemberRecord(channel, member)
	if err != nil {
		return err
	}
	return s.PutMember(channel, member, role, last)
}

// PutMember writes a member record: role | lastPost i64.
func (s *State) PutMember(channel ids.ID, member crypto.SessionID, role uint8, lastPost int64) error {
	v := binary.BigEndian.AppendUint64(append(s.val[:0], role), uint64(lastPost))
	s.val = v
	return s.members().Put(memberKey(channel, member), v)
}

// RemoveMember deletes membership (the caller keeps Channel.Members).
func (s *State) RemoveMember(channel ids.ID, member crypto.SessionID) error {
	return s.members().Delete(memberKey(channel, member))
}

// Member is a channel member with its role.
type Member struct {
	ID   crypto.SessionID
	Role uint8
}

// Members returns up to limit members of channel with their roles, in
// Session ID order, starting after the given member (nil: from the first).
func (s *State) Members(channel ids.ID, after *crypto.SessionID, limit int) ([]Member, error) {
	if limit <= 0 {
		return nil, nil
	}
	start := channel[:]
	if after != nil {
		start = append(memberKey(channel, *after), 0)
	}
	it := s.members().NewIteratorWithStartAndPrefix(start, channel[:])
	defer it.Release()
	var out []Member
	for len(out) < limit && it.Next() {
		id, err := SessionIDFromKey(it.Key()[ids.IDLen:])
		if err != nil {
			return nil, err
		}
		role, _, err := decodeMember(it.Value())
		if err != nil {
			return nil, err
		}
		out = append(out, Member{ID: id, Role: role})
	}
	return out, it.Error()
}

// IsInvited reports whether id holds an invite to channel.
func (s *State) IsInvited(channel ids.ID, id crypto.SessionID) (bool, error) {
	return s.invites().Has(memberKey(channel, id))
}

// SetInvited records or removes an invite (the caller keeps
// Channel.Invites).
func (s *State) SetInvited(channel ids.ID, id crypto.SessionID, invited bool) error {
	if invited {
		return s.invites().Put(memberKey(channel, id), nil)
	}
	return s.invites().Delete(memberKey(channel, id))
}

// IsBanned reports whether id is banned from channel.
func (s *State) IsBanned(channel ids.ID, id crypto.SessionID) (bool, error) {
	return s.bans().Has(memberKey(channel, id))
}

// BanRole returns the role of whoever banned id from channel
// (RoleModerator or RoleOwner), or 0 if id is not banned.
func (s *State) BanRole(channel ids.ID, id crypto.SessionID) (uint8, error) {
	b, err := s.bans().Get(memberKey(channel, id))
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 1 || (b[0] != RoleModerator && b[0] != RoleOwner) {
		return 0, fmt.Errorf("%w: ban record %x", ErrCorrupt, b)
	}
	return b[0], nil
}

// SetBanned records a ban made by someone of role by (RoleModerator or
// RoleOwner), or removes it when by is 0 (the caller keeps Channel.Bans).
func (s *State) SetBanned(channel ids.ID, id crypto.SessionID, by uint8) error {
	if by != 0 {
		return s.bans().Put(memberKey(channel, id), []byte{by})
	}
	return s.bans().Delete(memberKey(channel, id))
}

// ---- blocks, transactions, metadata ----

// BlockChunkSize is the most bytes of a block stored under one key. Stored
// whole, a block of megabytes made every commit handle one huge value:
// the batch copy and BadgerDB's value-log encoding buffer both grew to the
// block's size and were zeroed for it. Chunks keep those buffers small and
// reused; measured in BenchmarkVMSendMessage, the builder spends about
// 1.4 µs less CPU per message (12 alternating runs, medians 47.2 → 45.8).
const BlockChunkSize = 32 << 10

// blockKey is the key of chunk i of block id.
func blockKey(id ids.ID, i int) []byte {
	k := make([]byte, 0, 1+ids.IDLen+2)
	k = append(k, prefixBlock)
	k = append(k, id[:]...)
	return binary.BigEndian.AppendUint16(k, uint16(i))
}

// IsBlockKey reports whether key (of the root database) holds a chunk of
// an accepted block. Such a key is written once, at the block's
// acceptance, and never overwritten or deleted: a database may store its
// values apart from the rest (package storage does).
func IsBlockKey(key []byte) bool {
	return len(key) == 1+ids.IDLen+2 && key[0] == prefixBlock
}

// putBlockBytes writes the chunks of a block.
func putBlockBytes(w database.KeyValueWriter, id ids.ID, b []byte) error {
	for i := 0; i == 0 || i*BlockChunkSize < len(b); i++ {
		if err := w.Put(blockKey(id, i), b[i*BlockChunkSize:min(len(b), (i+1)*BlockChunkSize)]); err != nil {
			return err
		}
	}
	return nil
}

// PutBlock stores an accepted block and indexes it by height.
func (s *State) PutBlock(id ids.ID, height uint64, bytes []byte) error {
	if err := putBlockBytes(s.db, id, bytes); err != nil {
		return err
	}
	return s.heights().Put(u64(height), id[:])
}

// GetBlock returns the bytes of an accepted block, or ErrNotFound.
func (s *State) GetBlock(id ids.ID) ([]byte, error) {
	it := s.db.NewIteratorWithPrefix(append([]byte{prefixBlock}, id[:]...))
	defer it.Release()
	var out []byte
	n := 0
	for it.Next() {
		if k := it.Key(); len(k) != 1+ids.IDLen+2 || int(binary.BigEndian.Uint16(k[1+ids.IDLen:])) != n {
			return nil, fmt.Errorf("%w: block %s: chunk key %x", ErrCorrupt, id, k)
		}
		if len(out)+len(it.Value()) > config.MaxBlockSize {
			return nil, fmt.Errorf("%w: block %s is over %d bytes", ErrCorrupt, id, config.MaxBlockSize)
		}
		out = append(out, it.Value()...)
		n++
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	return out, nil
}

// HasBlock reports whether an accepted block is stored.
func (s *State) HasBlock(id ids.ID) (bool, error) { return s.db.Has(blockKey(id, 0)) }

// BlockIDAtHeight returns the ID of the accepted block at height, or
// ErrNotFound.
func (s *State) BlockIDAtHeight(height uint64) (ids.ID, error) {
	return getID(s.db, s.heights().key(u64(height)))
}

// SetLastAccepted records the last accepted block.
func (s *State) SetLastAccepted(id ids.ID) error { return s.meta().Put(keyLastAccepted, id[:]) }

// LastAccepted returns the last accepted block ID, or ErrNotFound before
// genesis was applied.
func (s *State) LastAccepted() (ids.ID, error) {
	return getID(s.db, s.meta().key(keyLastAccepted))
}

// TxLocation is where an accepted transaction sits: its block's height,
// its index, and its byte range in the block's bytes.
type TxLocation struct {
	Height uint64
	Index  uint32
	Offset uint32
	Length uint32
}

const txLocationSize = 8 + 4 + 4 + 4

func (l TxLocation) appendEncoding(b []byte) []byte {
	b = binary.BigEndian.AppendUint64(b, l.Height)
	b = binary.BigEndian.AppendUint32(b, l.Index)
	b = binary.BigEndian.AppendUint32(b, l.Offset)
	return binary.BigEndian.AppendUint32(b, l.Length)
}

// PutTx indexes an accepted transaction.
func (s *State) PutTx(txID ids.ID, loc TxLocation) error {
	return s.txs().Put(txID[:], loc.appendEncoding(nil))
}

// GetTx returns where an accepted transaction sits, or ErrNotFound.
func (s *State) GetTx(txID ids.ID) (TxLocation, error) {
	v, err := s.txs().Get(txID[:])
	if err != nil {
		return TxLocation{}, err
	}
	if len(v) != txLocationSize {
		return TxLocation{}, fmt.Errorf("%w: tx location", ErrCorrupt)
	}
	return TxLocation{
		Height: binary.BigEndian.Uint64(v),
		Index:  binary.BigEndian.Uint32(v[8:]),
		Offset: binary.BigEndian.Uint32(v[12:]),
		Length: binary.BigEndian.Uint32(v[16:]),
	}, nil
}

// TxBytes returns the signed bytes of an accepted transaction, reading
// only the block chunks that hold them, or ErrNotFound.
func (s *State) TxBytes(txID ids.ID) ([]byte, TxLocation, error) {
	loc, err := s.GetTx(txID)
	if err != nil {
		return nil, loc, err
	}
	if loc.Length == 0 || uint64(loc.Offset)+uint64(loc.Length) > config.MaxBlockSize {
		return nil, loc, fmt.Errorf("%w: tx %s location %+v", ErrCorrupt, txID, loc)
	}
	blockID, err := s.BlockIDAtHeight(loc.Height)
	if err != nil {
		return nil, loc, fmt.Errorf("tx %s: block at height %d: %w", txID, loc.Height, err)
	}
	out := make([]byte, 0, loc.Length)
	end := int(loc.Offset) + int(loc.Length)
	for i := int(loc.Offset) / BlockChunkSize; i*BlockChunkSize < end; i++ {
		chunk, err := s.db.Get(blockKey(blockID, i))
		if errors.Is(err, database.ErrNotFound) {
			return nil, loc, fmt.Errorf("%w: tx %s: chunk %d of block %s is missing", ErrCorrupt, txID, i, blockID)
		}
		if err != nil {
			return nil, loc, fmt.Errorf("tx %s: chunk %d of block %s: %w", txID, i, blockID, err)
		}
		lo := max(int(loc.Offset)-i*BlockChunkSize, 0)
		hi := min(end-i*BlockChunkSize, len(chunk))
		if lo > hi {
			return nil, loc, fmt.Errorf("%w: tx %s: chunk %d of block %s is short", ErrCorrupt, txID, i, blockID)
		}
		out = append(out, chunk[lo:hi]...)
	}
	if len(out) != int(loc.Length) {
		return nil, loc, fmt.Errorf("%w: tx %s: %d of %d bytes", ErrCorrupt, txID, len(out), loc.Length)
	}
	return out, loc, nil
}

// FormatVersion is the version of the key layout and record formats this
// build writes and reads. A database written in another format is refused
// (there is no migration): version 1 stored blocks whole and one retention
// entry per message, and hashed blocks whole for their IDs; version 2
// stored blocks without a state commitment (block version 1), no
// transaction count, no accounts, consent, prekey or moderation records
// and a smaller transaction index; version 3 had no claim log, anchors,
// session retention, request time index, shares or previous signed
// prekeys, and smaller accounts (docs/chain.md section 14 is version 4).
const FormatVersion = 4

// SetFormatVersion records FormatVersion (with the genesis).
func (s *State) SetFormatVersion() error { return s.meta().Put(keyFormat, s.u64(FormatVersion)) }

// StoredFormatVersion returns the recorded format version; a database that
// holds a chain but no version was written in format 1.
func (s *State) StoredFormatVersion() (uint64, error) {
	v, err := getU64(s.db, s.meta().key(keyFormat))
	if err == nil && v == 0 {
		return 1, nil
	}
	return v, err
}

// SetGenesis records the hash of the genesis bytes and the chain config.
func (s *State) SetGenesis(hash [32]byte, configJSON []byte) error {
	if err := s.meta().Put(keyGenesis, hash[:]); err != nil {
		return err
	}
	return s.meta().Put(keyConfig, configJSON)
}

// Genesis returns the recorded genesis hash and chain config JSON, or
// ErrNotFound.
func (s *State) Genesis() (hash [32]byte, configJSON []byte, err error) {
	h, err := s.meta().Get(keyGenesis)
	if err != nil {
		return hash, nil, err
	}
	if len(h) != 32 {
		return hash, nil, fmt.Errorf("%w: genesis hash", ErrCorrupt)
	}
	copy(hash[:], h)
	configJSON, err = s.meta().Get(keyConfig)
	return hash, configJSON, err
}

// Counter names.
const (
	CountIdentities     = "identities"
	CountSessions       = "sessions"
	CountChannels       = "channels"
	CountMessagesStored = "messagesStored"
	CountMessagesTotal  = "messagesTotal"
	CountMessagesPruned = "messagesPruned"
	// CountTxsAccepted is the number of transactions in accepted blocks
	// (package vm adds each block's count).
	CountTxsAccepted = "txsAccepted"
	// CountMessagesDeleted counts posts removed by DeletePosts or evicted
	// from a full channel.
	CountMessagesDeleted = "messagesDeleted"
)

// Counts are chain-wide figures.
type Counts struct {
	Identities     uint64 `json:"identities"`
	Sessions       uint64 `json:"sessions"`
	Channels       uint64 `json:"channels"` // channels existing now
	MessagesStored uint64 `json:"messagesStored"`
	MessagesTotal  uint64 `json:"messagesTotal"` // ever accepted
	MessagesPruned uint64 `json:"messagesPruned"`
	TxsAccepted    uint64 `json:"txsAccepted"` // transactions ever accepted
	// MessagesDeleted counts posts deleted by moderators or authors, or
	// evicted from a full channel.
	MessagesDeleted uint64 `json:"messagesDeleted"`
}

// countKeys maps counter names to their keys in the root database (meta
// namespace byte included). Written only by init; read-only after.
var countKeys = map[string][]byte{}

func init() {
	for _, name := range countNames {
		countKeys[name] = append([]byte{prefixMeta}, "count/"+name...)
	}
}

func countKey(name string) []byte {
	if k, ok := countKeys[name]; ok {
		return k
	}
	return append([]byte{prefixMeta}, "count/"+name...)
}

// countNames are the counters in a fixed order: the order of the deferred
// deltas and of FlushCounts.
var countNames = [...]string{CountIdentities, CountSessions, CountChannels, CountMessagesStored, CountMessagesTotal, CountMessagesPruned, CountTxsAccepted, CountMessagesDeleted}

func countIndex(name string) int {
	for i, n := range countNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Count returns one counter, with the view's deferred changes.
func (s *State) Count(name string) (uint64, error) {
	v, err := getU64(s.db, countKey(name))
	if err != nil {
		return 0, err
	}
	if i := countIndex(name); i >= 0 {
		v = uint64(int64(v) + s.deltas[i])
	}
	return v, nil
}

// AddCount adds delta to a counter. It refuses to go below zero.
func (s *State) AddCount(name string, delta int64) error {
	v, err := s.Count(name)
	if err != nil {
		return err
	}
	if delta < 0 && uint64(-delta) > v {
		return fmt.Errorf("%w: counter %s would go negative", ErrCorrupt, name)
	}
	if i := countIndex(name); i >= 0 && s.deferred {
		s.deltas[i] += delta
		return nil
	}
	return s.put(countKey(name), s.u64(uint64(int64(v)+delta)))
}

// Defer makes the view keep the chain-wide aggregates a block changes many
// times in memory until Flush: the counters (AddCount; Count includes the
// changes), and the retention queue, where the messages of a block share
// one entry instead of one each. A block that stores a thousand messages
// then writes each counter once and one queue entry, instead of reading
// and writing two counters and writing an entry per message. Execute a
// block's transactions on a deferred view and Flush before using its
// database.
func (s *State) Defer() { s.deferred = true }

// Flush writes what Defer kept: the counter changes, in a fixed order, and
// the retention entry.
func (s *State) Flush() error {
	if err := s.flushCounts(); err != nil {
		return err
	}
	return s.flushRetention()
}

func (s *State) flushCounts() error {
	for i, d := range s.deltas {
		if d == 0 {
			continue
		}
		name := countNames[i]
		v, err := getU64(s.db, countKey(name))
		if err != nil {
			return err
		}
		if d < 0 && uint64(-d) > v {
			return fmt.Errorf("%w: counter %s would go negative", ErrCorrupt, name)
		}
		if err := s.put(countKey(name), s.u64(uint64(int64(v)+d))); err != nil {
			return err
		}
		s.deltas[i] = 0
	}
	return nil
}

// DeferredCost returns an upper bound on what Flush would write now: its
// calls and their bytes as config.WriteCost counts them
// (the counters with a change, the block's retention entry and head). The builder
// counts it against a block's write bounds before each transaction.
func (s *State) DeferredCost() (ops, bytes int) {
	for i, d := range s.deltas {
		if d != 0 {
			ops++
			bytes += config.WriteCost(len(countKey(countNames[i])), 8)
		}
	}
	if len(s.queued) > 0 {
		// The entry, and the head if none was queued before.
		ops += 2
		bytes += config.WriteCost(1+8, 8+len(s.queued)) + config.WriteCost(len(rootRetentionHead), 8)
	}
	return ops, bytes
}

// Counts returns every counter.
func (s *State) Counts() (Counts, error) {
	var c Counts
	var err error
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{CountIdentities, &c.Identities},
		{CountSessions, &c.Sessions},
		{CountChannels, &c.Channels},
		{CountMessagesStored, &c.MessagesStored},
		{CountMessagesTotal, &c.MessagesTotal},
		{CountMessagesPruned, &c.MessagesPruned},
		{CountTxsAccepted, &c.TxsAccepted},
		{CountMessagesDeleted, &c.MessagesDeleted},
	} {
		if *f.dst, err = s.Count(f.name); err != nil {
			return c, err
		}
	}
	return c, nil
}

// WriteAccepted writes what accepting a block adds besides its execution:
// the block bytes, its height index entry, the index of its transactions
// and the last-accepted pointer. It writes straight into w (the commit
// batch of the block's overlay), so the block bytes are not copied into the
// overlay first. The keys are those of PutBlock, PutTx and SetLastAccepted.
func WriteAccepted(w database.KeyValueWriter, id ids.ID, height uint64, blockBytes []byte, txIDs []ids.ID, txSizes []int) error {
	if len(txSizes) != len(txIDs) {
		return fmt.Errorf("state: %d transaction sizes for %d transactions", len(txSizes), len(txIDs))
	}
	if err := putBlockBytes(w, id, blockBytes); err != nil {
		return err
	}
	if err := w.Put(binary.BigEndian.AppendUint64([]byte{prefixHeight}, height), id[:]); err != nil {
		return err
	}
	// The transactions are the tail of the block's bytes, in order.
	total := 0
	for _, n := range txSizes {
		total += n
	}
	off := len(blockBytes) - total
	if off < 0 {
		return fmt.Errorf("state: transactions of %d bytes in a block of %d", total, len(blockBytes))
	}
	loc := make([]byte, 0, txLocationSize)
	key := make([]byte, 1+ids.IDLen)
	key[0] = prefixTx
	for i, txID := range txIDs {
		copy(key[1:], txID[:])
		loc = TxLocation{Height: height, Index: uint32(i), Offset: uint32(off), Length: uint32(txSizes[i])}.appendEncoding(loc[:0])
		if err := w.Put(key, loc); err != nil {
			return err
		}
		off += txSizes[i]
	}
	return w.Put(append([]byte{prefixMeta}, keyLastAccepted...), id[:])
}
