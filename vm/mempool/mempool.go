// Package mempool is the bounded, deduplicating, first-in first-out pool
// of transactions waiting for a block.
//
// Order is admission order, kept in a slice (never a map), so a block
// builder reading Ordered gets the same sequence on every run. Because the
// VM admits an author's transactions only with consecutive nonces, FIFO
// order is also nonce order per author. The pool bounds the number of
// transactions, their total size, and each author's share in count and in
// bytes. The defaults (config.DefaultMempoolTxs and the others) are sized
// so that each bound matters: see package config.
//
// The pool does no validation of its own; package vm checks every
// transaction before Add. It is safe for concurrent use.
package mempool

import (
	"errors"
	"fmt"
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
	removed bool
}

// Mempool is a FIFO transaction pool.
type Mempool struct {
	mu        sync.Mutex
	limits    Limits
	order     []*entry // admission order; removed entries are compacted away
	dead      int      // removed entries still in order
	byID      map[ids.ID]*entry
	perAuthor map[crypto.SessionID]authorShare
	bytes     int
}

// authorShare is what one author has pending.
type authorShare struct{ txs, bytes int }

// New returns an empty pool.
func New(l Limits) *Mempool {
	return &Mempool{
		limits:    l,
		byID:      make(map[ids.ID]*entry),
		perAuthor: make(map[crypto.SessionID]authorShare),
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
	share := m.perAuthor[t.Author]
	if share.txs >= m.limits.MaxPerAuthor {
		return fmt.Errorf("%w: %d pending, at most %d", ErrAuthorLimit, share.txs, m.limits.MaxPerAuthor)
	}
	if maxBytes := m.limits.MaxBytesPerAuthor; maxBytes > 0 && share.bytes+t.Size() > maxBytes {
		return fmt.Errorf("%w: %d bytes pending, at most %d", ErrAuthorLimit, share.bytes, maxBytes)
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
	e := &entry{t: t}
	m.order = append(m.order, e)
	m.byID[t.ID()] = e
	share := m.perAuthor[t.Author]
	m.perAuthor[t.Author] = authorShare{txs: share.txs + 1, bytes: share.bytes + t.Size()}
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
	return m.perAuthor[author].txs
}

// PendingBytes returns the total size of author's pending transactions.
func (m *Mempool) PendingBytes(author crypto.SessionID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.perAuthor[author].bytes
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

// isPrefix reports whether ids are exactly the first len(ids) pending
// transactions, in order. Call with m.mu held.
func (m *Mempool) isPrefix(txIDs []ids.ID) bool {
	i := 0
	for _, e := range m.order {
		if i == len(txIDs) {
			return true
		}
		if e.removed {
			continue
		}
		if e.t.ID() != txIDs[i] {
			return false
		}
		i++
	}
	return i == len(txIDs)
}

// Remove drops the given transactions (absent ones are ignored) and returns
// how many it dropped.
func (m *Mempool) Remove(txIDs ...ids.ID) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.remove(txIDs)
}

// RemoveBlock checks the prefix and removes in one step, so no transaction is
// added in between: it drops the transactions of a block and reports
// whether they were the oldest pending ones, in order (the block was built
// from the head of this mempool).
func (m *Mempool) RemoveBlock(txIDs []ids.ID) (prefix bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix = m.isPrefix(txIDs)
	m.remove(txIDs)
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
		if share := m.perAuthor[e.t.Author]; share.txs == 1 {
			delete(m.perAuthor, e.t.Author)
		} else {
			m.perAuthor[e.t.Author] = authorShare{txs: share.txs - 1, bytes: share.bytes - e.t.Size()}
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
