// Package mempool is the bounded, deduplicating pool of transactions
// waiting for a block.
//
// Admission order is kept in a slice (never a map), so a block builder
// reading Ordered gets the same sequence on every run. Because the VM
// admits an author's transactions only with consecutive nonces, admission
// order is also nonce order per author. Fair gives the order a builder
// uses when more is pending than a block takes: rounds of one transaction
// per author, least recently served authors first (docs/chain.md section
// 15). The pool bounds the number of transactions, their total size, and
// each author's share in count and in bytes. The defaults
// (config.DefaultMempoolTxs and the others) are sized so that each bound
// matters: see package config.
//
// The pool does no validation of its own; package vm checks every
// transaction before Add. It is safe for concurrent use.
package mempool

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// Admission errors.
var (
	ErrDuplicate   = errors.New("transaction already in the mempool")
	ErrFull        = errors.New("mempool full")
	ErrAuthorLimit = errors.New("too many pending transactions from this author")
)

// Limits bound a pool.
type Limits struct {
	MaxTxs       int // transactions pending at once
	MaxBytes     int // their total size
	MaxPerAuthor int // transactions of one author
	// MaxBytesPerAuthor bounds the total size of one author's pending
	// transactions, so that no author holds more than this share of
	// MaxBytes; 0 means MaxBytes.
	MaxBytesPerAuthor int
}

type entry struct {
	t       *tx.Tx
	seq     uint64 // admission order
	removed bool
}

// Mempool is a transaction pool.
type Mempool struct {
	mu        sync.Mutex
	limits    Limits
	order     []*entry // admission order; removed entries are compacted away
	dead      int      // removed entries still in order
	byID      map[ids.ID]*entry
	perAuthor map[crypto.SessionID]*authorQueue // lookups only; Fair sorts what it collects
	bytes     int
	seq       uint64 // the next admission's sequence number
	blocks    uint64 // blocks removed so far (RemoveBlock): the served stamp
}

// authorQueue is what one author has pending, in nonce order.
type authorQueue struct {
	entries []*entry // removed entries before head are skipped and compacted
	head    int
	txs     int
	bytes   int
	served  uint64 // the RemoveBlock count when one of its transactions was last in a block
}

// front returns the queue's oldest live entry (nil if none), advancing
// head past removed ones.
func (q *authorQueue) front() *entry {
	for q.head < len(q.entries) && q.entries[q.head].removed {
		q.head++
	}
	if q.head == len(q.entries) {
		return nil
	}
	return q.entries[q.head]
}

// New returns an empty pool.
func New(l Limits) *Mempool {
	return &Mempool{
		limits:    l,
		byID:      make(map[ids.ID]*entry),
		perAuthor: make(map[crypto.SessionID]*authorQueue),
	}
}

// Limits returns the pool's limits.
func (m *Mempool) Limits() Limits { return m.limits }

// CheckRoom reports whether t could be added now (ignoring validity).
func (m *Mempool) CheckRoom(t *tx.Tx) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.checkRoom(t)
}

func (m *Mempool) checkRoom(t *tx.Tx) error {
	if _, dup := m.byID[t.ID()]; dup {
		return ErrDuplicate
	}
	if len(m.byID) >= m.limits.MaxTxs || m.bytes+t.Size() > m.limits.MaxBytes {
		return fmt.Errorf("%w: %d transactions, %d bytes", ErrFull, len(m.byID), m.bytes)
	}
	var txs, bytes int
	if q := m.perAuthor[t.Author]; q != nil {
		txs, bytes = q.txs, q.bytes
	}
	if txs >= m.limits.MaxPerAuthor {
		return fmt.Errorf("%w: %d pending, at most %d", ErrAuthorLimit, txs, m.limits.MaxPerAuthor)
	}
	if maxBytes := m.limits.MaxBytesPerAuthor; maxBytes > 0 && bytes+t.Size() > maxBytes {
		return fmt.Errorf("%w: %d bytes pending, at most %d", ErrAuthorLimit, bytes, maxBytes)
	}
	return nil
}

// Add appends t.
func (m *Mempool) Add(t *tx.Tx) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkRoom(t); err != nil {
		return err
	}
	e := &entry{t: t, seq: m.seq}
	m.seq++
	m.order = append(m.order, e)
	m.byID[t.ID()] = e
	q := m.perAuthor[t.Author]
	if q == nil {
		q = &authorQueue{}
		m.perAuthor[t.Author] = q
	}
	q.entries = append(q.entries, e)
	q.txs++
	q.bytes += t.Size()
	m.bytes += t.Size()
	return nil
}

// Has reports whether id is pending.
func (m *Mempool) Has(id ids.ID) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.byID[id]
	return ok
}

// Len returns the number of pending transactions.
func (m *Mempool) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byID)
}

// Bytes returns the total size of pending transactions.
func (m *Mempool) Bytes() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.bytes
}

// Pending returns how many transactions of author are pending.
func (m *Mempool) Pending(author crypto.SessionID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q := m.perAuthor[author]; q != nil {
		return q.txs
	}
	return 0
}

// PendingBytes returns the total size of author's pending transactions.
func (m *Mempool) PendingBytes(author crypto.SessionID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if q := m.perAuthor[author]; q != nil {
		return q.bytes
	}
	return 0
}

// Ordered returns the pending transactions in admission order.
func (m *Mempool) Ordered() []*tx.Tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*tx.Tx, 0, len(m.byID))
	for _, e := range m.order {
		if !e.removed {
			out = append(out, e.t)
		}
	}
	return out
}

// BuildOrder returns the pending transactions in the order a builder
// takes them: admission order when all of them fit in maxTxs transactions
// and maxBytes bytes, Fair order otherwise.
func (m *Mempool) BuildOrder(maxTxs, maxBytes int) []*tx.Tx {
	m.mu.Lock()
	fits := len(m.byID) <= maxTxs && m.bytes <= maxBytes
	m.mu.Unlock()
	if fits {
		return m.Ordered()
	}
	return m.Fair()
}

// Fair returns the pending transactions in rounds: each round holds the
// next transaction of every author that has one left, authors ordered by
// when one of their transactions was last in a block (never, or longest
// ago, first), then by the admission of their oldest pending transaction.
// Each author's transactions keep their (nonce) order. A block built from
// the start of this order serves every author with a pending transaction
// before any author's second, and the authors it served go last in the
// next block's order.
func (m *Mempool) Fair() []*tx.Tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	type cursor struct {
		q      *authorQueue
		at     int
		served uint64
		first  uint64
	}
	cs := make([]cursor, 0, len(m.perAuthor))
	for _, q := range m.perAuthor {
		if f := q.front(); f != nil {
			cs = append(cs, cursor{q: q, at: q.head, served: q.served, first: f.seq})
		}
	}
	slices.SortFunc(cs, func(a, b cursor) int {
		if c := cmp.Compare(a.served, b.served); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	out := make([]*tx.Tx, 0, len(m.byID))
	active := make([]int, len(cs))
	for i := range active {
		active[i] = i
	}
	for len(active) > 0 {
		next := active[:0]
		for _, i := range active {
			c := &cs[i]
			for c.at < len(c.q.entries) && c.q.entries[c.at].removed {
				c.at++
			}
			if c.at == len(c.q.entries) {
				continue
			}
			out = append(out, c.q.entries[c.at].t)
			c.at++
			next = append(next, i)
		}
		active = next
	}
	return out
}

// Remove drops the given transactions (absent ones are ignored) and returns
// how many it dropped.
func (m *Mempool) Remove(txIDs ...ids.ID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remove(txIDs)
}

// RemoveBlock drops the transactions of a block and reports whether the
// block took, for each of its authors, that author's oldest pending
// transactions in order (an author-prefix of the pool: what a block built
// from Ordered or Fair holds), checked and removed in one step so no
// transaction is added in between. Only then does a pool's state overlay,
// which applied every pending transaction in admission order, stay a
// valid view. The block's authors are marked served for Fair.
func (m *Mempool) RemoveBlock(txIDs []ids.ID) (prefix bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocks++
	prefix = true
	for _, id := range txIDs {
		e, ok := m.byID[id]
		if !ok {
			prefix = false
			continue
		}
		q := m.perAuthor[e.t.Author]
		if q.front() != e {
			prefix = false
		}
		q.served = m.blocks
		m.remove([]ids.ID{id})
	}
	return prefix
}

func (m *Mempool) remove(txIDs []ids.ID) int {
	n := 0
	for _, id := range txIDs {
		e, ok := m.byID[id]
		if !ok {
			continue
		}
		e.removed = true
		delete(m.byID, id)
		q := m.perAuthor[e.t.Author]
		q.txs--
		q.bytes -= e.t.Size()
		if q.txs == 0 {
			delete(m.perAuthor, e.t.Author)
		} else if q.front(); q.head > 32 && q.head > len(q.entries)/2 {
			q.entries = append([]*entry(nil), q.entries[q.head:]...)
			q.head = 0
		}
		m.bytes -= e.t.Size()
		m.dead++
		n++
	}
	if m.dead > 64 && m.dead > len(m.order)/2 {
		live := make([]*entry, 0, len(m.byID))
		for _, e := range m.order {
			if !e.removed {
				live = append(live, e)
			}
		}
		m.order = live
		m.dead = 0
	}
	return n
}

// Any reports whether f holds for a pending transaction, visiting them in
// order and stopping at the first match. f must not call the pool.
func (m *Mempool) Any(f func(*tx.Tx) bool) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.order {
		if !e.removed && f(e.t) {
			return true
		}
	}
	return false
}
