package vm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	smblock "github.com/luxfi/consensus/engine/chain/block"
	"github.com/luxfi/database"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// ErrAlreadyAccepted reports a transaction that is already on chain.
var ErrAlreadyAccepted = errors.New("transaction already accepted")

// rejectedCacheSize bounds the remembered reasons of dropped transactions.
const rejectedCacheSize = 1 << 14

// pool admits transactions into the mempool. Admission executes each
// transaction on an overlay holding the accepted state plus every pending
// transaction in mempool order, so a transaction is refused, with its
// named error, exactly when the next block could not include it; and a
// client may queue dependent transactions (register, then create a
// session, then send) without waiting for blocks.
type pool struct {
	mu sync.Mutex // guards the fields below but inFlight and parked; taken after chain.mu

	db      database.Database
	chain   *chain // read-only use of chainID, cfg, verifier, clock
	mempool *mempool.Mempool
	overlay *versiondb.Database // accepted state + pending transactions
	view    *state.State        // admission's view of overlay (see admissionDB)
	applied int                 // transactions applied to overlay since it was made
	tip     *Block              // the accepted block overlay is based on
	// flightMu guards inFlight and parked, so the per-transaction
	// bookkeeping of a verified or decided block never holds mu, which
	// every admission takes. Taken after mu, before the mempool's lock.
	flightMu sync.Mutex
	inFlight map[ids.ID]int  // tx → number of processing blocks holding it
	parked   map[ids.ID]bool // refused on a processing parent; retried after the next decision
	rejected *fifoCache[ids.ID, string]
	wake     chan struct{} // closed and replaced when work may be pending
	waiters  int           // goroutines in waitForWork
	msgChan  chan<- smblock.Message
}

func newPool(db database.Database, c *chain, mp *mempool.Mempool, msgChan chan<- smblock.Message) *pool {
	overlay := versiondb.New(c.cache)
	return &pool{
		db:       db,
		chain:    c,
		mempool:  mp,
		overlay:  overlay,
		view:     state.New(admissionDB{overlay}),
		inFlight: make(map[ids.ID]int),
		parked:   make(map[ids.ID]bool),
		rejected: newFIFOCache[ids.ID, string](rejectedCacheSize),
		wake:     make(chan struct{}),
		msgChan:  msgChan,
	}
}

// signal wakes WaitForEvent and tells the engine when a channel was given.
// Call with p.mu held.
func (p *pool) signal() {
	if p.waiters > 0 {
		close(p.wake)
		p.wake = make(chan struct{})
	}
	if p.msgChan != nil {
		select {
		case p.msgChan <- smblock.Message{Type: smblock.PendingTxs}:
		default: // the engine already has a pending notification
		}
	}
}

func (p *pool) issueTx(t *tx.Tx) error {
	c := p.chain
	if err := t.Check(c.chainID); err != nil {
		return err
	}
	if err := p.mempool.CheckRoom(t); err != nil {
		return err
	}
	if c.disk != nil {
		if err := c.disk.admit(p.mempool.Bytes(), t.Size()); err != nil {
			return err
		}
	}
	base := state.New(c.cache)
	// The expensive part, outside every lock, so concurrent submissions
	// verify on all cores. The key comes from the cache, the accepted state
	// or, for an author registered by a pending transaction, the overlay.
	err := c.verifier.verifyTx(t, func(id crypto.SessionID) (*state.Identity, error) {
		i, err := base.GetIdentity(id)
		if errors.Is(err, state.ErrNotFound) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.view.GetIdentity(id)
		}
		return i, err
	})
	if err != nil {
		return err
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.mempool.CheckRoom(t); err != nil {
		return err
	}
	tip := p.tip
	ts := max(c.clock().UnixMilli(), tip.Block.Timestamp)
	ctx := c.execContext(tip.Block.Height+1, ts)
	if err := execute.Tx(p.view, ctx, p.position(), t); err != nil {
		if errors.Is(err, tx.ErrReplayedNonce) {
			if _, lerr := base.GetTx(t.ID()); lerr == nil {
				return fmt.Errorf("%w: %w", ErrAlreadyAccepted, err)
			}
		}
		return err
	}
	p.applied++
	if err := p.mempool.Add(t); err != nil {
		// Unreachable (room was checked under the lock), but the overlay
		// now holds t: rebuild it from the pool.
		p.rebuild(ts)
		return err
	}
	p.signal()
	return nil
}

// position gives pending transactions distinct positions in the overlay.
func (p *pool) position() uint32 { return uint32(p.applied % state.MaxTxsPerPosition) }

// rebuild recomputes the overlay from the accepted state, dropping every
// pending transaction that no longer applies in a block at time ts (Unix
// ms; at least the tip's). Call with p.mu held.
func (p *pool) rebuild(ts int64) {
	p.overlay.Abort()
	p.overlay = versiondb.New(p.chain.cache)
	p.view = state.New(admissionDB{p.overlay})
	p.applied = 0
	st := p.view
	ctx := p.chain.execContext(p.tip.Block.Height+1, max(ts, p.tip.Block.Timestamp))
	var drop []ids.ID
	for _, t := range p.mempool.Ordered() {
		if err := execute.Tx(st, ctx, p.position(), t); err != nil {
			drop = append(drop, t.ID())
			p.rejected.Put(t.ID(), err.Error())
			continue
		}
		p.applied++
	}
	p.mempool.Remove(drop...)
}

// blockVerified implements poolHooks. It counts every transaction of the
// block, pending here or not: the counts only ever exclude pending ones
// from building, and accepting or rejecting the block drops them.
func (p *pool) blockVerified(b *Block) {
	p.flightMu.Lock()
	defer p.flightMu.Unlock()
	for _, t := range b.Txs {
		p.inFlight[t.ID()]++
	}
}

// blockRejected implements poolHooks: its transactions may be built again.
func (p *pool) blockRejected(b *Block) {
	p.flightMu.Lock()
	for _, t := range b.Txs {
		if n := p.inFlight[t.ID()]; n <= 1 {
			delete(p.inFlight, t.ID())
		} else {
			p.inFlight[t.ID()] = n - 1
		}
	}
	clear(p.parked)
	p.flightMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.signal()
}

// blockAccepted implements poolHooks. When the block holds exactly the
// oldest pending transactions (the usual case: this node built it), the
// overlay already reflects them and stays; otherwise it is rebuilt. Either
// way the overlay is rebuilt once it has absorbed many more transactions
// than are pending, so its memory stays bounded. The per-transaction work
// is done outside mu, so admissions go on meanwhile: removing the head of
// the mempool leaves the overlay consistent with the rest.
func (p *pool) blockAccepted(b *Block) {
	txIDs := make([]ids.ID, len(b.Txs))
	p.flightMu.Lock()
	for i, t := range b.Txs {
		txIDs[i] = t.ID()
		delete(p.inFlight, t.ID())
	}
	clear(p.parked)
	p.flightMu.Unlock()
	prefix := p.mempool.RemoveBlock(txIDs)

	p.mu.Lock()
	defer p.mu.Unlock()
	p.tip = b
	if !prefix || p.mempool.Len() == 0 || p.applied > 2*p.mempool.Len()+4096 {
		p.rebuild(b.Block.Timestamp)
	}
	p.signal()
}

// skipped is called by the builder for a pending transaction it refused.
// On a processing parent that is expected (the parent may already hold the
// transaction: a replayed nonce). A refusal on the accepted tip means the
// transaction can no longer apply in its place (for example its session
// expired between admission and the block's timestamp): the overlay is
// rebuilt after building, which drops it with its reason.
//
// A refusal on a processing parent is parked: WaitForEvent ignores the
// transaction until the next block is accepted or rejected, so an engine
// waiting for a decision is not asked to build the same refusal again.
func (p *pool) skipped(needRebuild *bool) func(t *tx.Tx, onTip bool, err error) {
	return func(t *tx.Tx, onTip bool, err error) {
		if onTip {
			*needRebuild = true
			return
		}
		p.flightMu.Lock()
		p.parked[t.ID()] = true
		p.flightMu.Unlock()
	}
}

// hasBuildable reports whether a pending transaction is in no processing
// block. Call with p.mu held.
func (p *pool) hasBuildable() bool {
	p.flightMu.Lock()
	defer p.flightMu.Unlock()
	return p.mempool.Any(func(t *tx.Tx) bool { return p.inFlight[t.ID()] == 0 && !p.parked[t.ID()] })
}

// diskRecheck is how often waitForWork looks at the free space again while
// pending transactions wait for it.
const diskRecheck = time.Second

// waitForWork blocks until a transaction could go into a new block: one is
// pending in no processing block, and the disk has room for a block.
func (p *pool) waitForWork(ctx context.Context, done <-chan struct{}) error {
	for {
		p.mu.Lock()
		if p.hasBuildable() {
			p.mu.Unlock()
			if p.chain.disk == nil || p.chain.disk.commit() == nil {
				return nil
			}
			t := time.NewTimer(diskRecheck)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-done:
				t.Stop()
				return ErrShutdown
			}
		}
		wake := p.wake
		p.waiters++
		p.mu.Unlock()
		var err error
		select {
		case <-wake:
		case <-ctx.Done():
			err = ctx.Err()
		case <-done:
			err = ErrShutdown
		}
		p.mu.Lock()
		p.waiters--
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// status reports on a transaction that is not accepted.
func (p *pool) status(id ids.ID) (TxStatus, bool) {
	if p.mempool.Has(id) {
		return TxStatus{Status: TxPending}, true
	}
	if reason, ok := p.rejected.Get(id); ok {
		return TxStatus{Status: TxDropped, Reason: reason}, true
	}
	return TxStatus{}, false
}

// nextNonce returns the nonce the author's next transaction must carry,
// counting pending transactions.
func (p *pool) nextNonce(author crypto.SessionID) (uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.view.Nonce(author)
	if err != nil {
		return 0, fmt.Errorf("nonce: %w", err)
	}
	return n, nil
}

// errNotKept is returned by admissionDB for a read it cannot serve.
var errNotKept = errors.New("vm: the admission overlay does not keep this namespace")

// admissionDB is the database admission executes on: the pool's overlay
// without the records that executing a transaction writes but never reads
// (messages, inbox entries, the retention queue: state.TxWriteOnly). Those
// writes are dropped, which saves copying every pending message into the
// overlay; admission's verdicts are unchanged because execute.Tx never
// reads them. Reading or iterating them fails loudly instead of answering
// from the accepted state alone; iterating the namespaces it keeps (a
// channel's post authors, which eviction walks) reads the overlay.
type admissionDB struct{ *versiondb.Database }

// DropsTxWriteOnly implements state.TxWriteOnlyDropper: state does not
// even encode the records this view would drop.
func (admissionDB) DropsTxWriteOnly() {}

func (a admissionDB) Put(k, v []byte) error {
	if state.TxWriteOnly(k) {
		return nil
	}
	return a.Database.Put(k, v)
}

func (a admissionDB) Delete(k []byte) error {
	if state.TxWriteOnly(k) {
		return nil
	}
	return a.Database.Delete(k)
}

func (a admissionDB) Get(k []byte) ([]byte, error) {
	if state.TxWriteOnly(k) {
		return nil, errNotKept
	}
	return a.Database.Get(k)
}

func (a admissionDB) Has(k []byte) (bool, error) {
	if state.TxWriteOnly(k) {
		return false, errNotKept
	}
	return a.Database.Has(k)
}

// Iterators over namespaces admission keeps (a channel's post authors, for
// eviction) read the overlay; over the dropped ones they fail.

func (a admissionDB) NewIterator() database.Iterator {
	return &database.IteratorError{Err: errNotKept}
}

func (a admissionDB) NewIteratorWithStart(start []byte) database.Iterator {
	return a.NewIteratorWithStartAndPrefix(start, nil)
}

func (a admissionDB) NewIteratorWithPrefix(prefix []byte) database.Iterator {
	return a.NewIteratorWithStartAndPrefix(nil, prefix)
}

func (a admissionDB) NewIteratorWithStartAndPrefix(start, prefix []byte) database.Iterator {
	if len(prefix) == 0 || state.TxWriteOnly(prefix) {
		return &database.IteratorError{Err: errNotKept}
	}
	return a.Database.NewIteratorWithStartAndPrefix(start, prefix)
}
