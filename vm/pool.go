package vm

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	rejected *fifoCache[ids.ID, droppedTx]
	// regs are the pending registrations (at most maxRegs, apart from the
	// mempool's other bounds: docs/chain.md section 3). Lookups and a scan
	// for the lowest; never iterated for anything order-dependent.
	regs    map[ids.ID]pendingReg
	maxRegs int
	regSeq  uint64
	wake    chan struct{} // closed and replaced when work may be pending
	waiters int           // goroutines in waitForWork
	msgChan chan<- smblock.Message
}

// droppedTx is what the pool remembers of a transaction it refused or
// dropped: the reason, and the author's nonce it used (to tell when it is
// dead: another transaction consumed that nonce).
type droppedTx struct {
	reason string
	author crypto.SessionID
	nonce  uint64
}

// pendingReg is a pending registration's priority.
type pendingReg struct {
	t      *tx.Tx
	excess int
	seq    uint64
}

// before reports whether a goes before b (more excess, then older).
func (a pendingReg) before(b pendingReg) bool {
	return a.excess > b.excess || (a.excess == b.excess && a.seq < b.seq)
}

func newPool(db database.Database, c *chain, mp *mempool.Mempool, maxRegs int, msgChan chan<- smblock.Message) *pool {
	overlay := versiondb.New(c.cache)
	return &pool{
		db:       db,
		chain:    c,
		mempool:  mp,
		overlay:  overlay,
		view:     state.New(admissionDB{overlay}),
		inFlight: make(map[ids.ID]int),
		parked:   make(map[ids.ID]bool),
		rejected: newFIFOCache[ids.ID, droppedTx](rejectedCacheSize),
		regs:     make(map[ids.ID]pendingReg),
		maxRegs:  maxRegs,
		wake:     make(chan struct{}),
		msgChan:  msgChan,
	}
}

// remember records why t was refused or dropped.
func (p *pool) remember(t *tx.Tx, err error) {
	p.rejected.Put(t.ID(), droppedTx{reason: err.Error(), author: t.Author, nonce: t.Nonce})
}

// lowestReg returns the pending registration that goes last. Call with
// p.mu held and p.regs not empty.
func (p *pool) lowestReg() (ids.ID, pendingReg) {
	var lowID ids.ID
	var low pendingReg
	first := true
	for id, r := range p.regs {
		if first || low.before(r) {
			lowID, low, first = id, r, false
		}
	}
	return lowID, low
}

// allowedRegistrations returns the registrations a block may take when
// more than n are pending (those with the most excess, then the oldest),
// or nil when all may go.
func (p *pool) allowedRegistrations(n int) map[ids.ID]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.regs) <= n {
		return nil
	}
	type item struct {
		id ids.ID
		r  pendingReg
	}
	list := make([]item, 0, len(p.regs))
	for id, r := range p.regs {
		list = append(list, item{id, r})
	}
	slices.SortFunc(list, func(a, b item) int {
		if a.r.before(b.r) {
			return -1
		}
		if b.r.before(a.r) {
			return 1
		}
		return 0
	})
	out := make(map[ids.ID]bool, n)
	for _, it := range list[:n] {
		out[it.id] = true
	}
	return out
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

// issueTx admits t, remembering a refusal's reason for getTxStatus.
func (p *pool) issueTx(t *tx.Tx) error {
	err := p.admit(t)
	if err != nil && tx.IsRefusal(err) && !errors.Is(err, ErrAlreadyAccepted) {
		p.remember(t, err)
	}
	return err
}

// admit runs admission in the order of docs/chain.md section 15: the
// stateless checks, room, the disk, what an accepted or pending
// transaction already settles (before any signature), for a registration
// its state checks and the registration pool, then the signature (and a
// registration's work, within the verifier's Argon2id budget), then
// execution on the overlay.
func (p *pool) admit(t *tx.Tx) error {
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
	if may, err := mayBeAccepted(base, t); err != nil {
		return err
	} else if may {
		if _, err := base.GetTx(t.ID()); err == nil {
			return fmt.Errorf("%w: %s", ErrAlreadyAccepted, t.ID())
		} else if !errors.Is(err, state.ErrNotFound) {
			return err
		}
	}
	seed, excess, err := p.precheck(t)
	if err != nil {
		return err
	}
	// The expensive part, outside every lock, so concurrent submissions
	// verify on all cores. The key comes from the cache, the accepted state
	// or, for an author registered by a pending transaction, the overlay.
	err = c.verifier.verifyTx(t, func(id crypto.SessionID) (*state.Identity, error) {
		i, err := base.GetIdentity(id)
		if errors.Is(err, state.ErrNotFound) {
			p.mu.Lock()
			defer p.mu.Unlock()
			return p.view.GetIdentity(id)
		}
		return i, err
	}, seed)
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
	_, isReg := t.Payload.(*tx.RegisterIdentity)
	if isReg && len(p.regs) >= p.maxRegs {
		lowID, low := p.lowestReg()
		if excess <= low.excess {
			return fmt.Errorf("%w: %d registrations pending, the lowest with %d bits of excess: more work goes first", mempool.ErrFull, len(p.regs), low.excess)
		}
		// The new registration outbids the lowest: drop it, and whatever
		// of its author's depends on it (the rebuild drops those).
		p.mempool.Remove(lowID)
		delete(p.regs, lowID)
		p.remember(low.t, fmt.Errorf("%w: replaced by a registration with more work (%d bits of excess over %d)", mempool.ErrFull, excess, low.excess))
		p.rebuild(ts)
	}
	ctx := c.execContext(tip.Block.Height+1, ts, tip.ID())
	if err := execute.Tx(p.view, ctx, p.position(), t); err != nil {
		return err
	}
	p.applied++
	if err := p.mempool.Add(t); err != nil {
		// Unreachable (room was checked under the lock), but the overlay
		// now holds t: rebuild it from the pool.
		p.rebuild(ts)
		return err
	}
	if isReg {
		p.regs[t.ID()] = pendingReg{t: t, excess: excess, seq: p.regSeq}
		p.regSeq++
	}
	p.signal()
	return nil
}

// mayBeAccepted reports whether t could be on chain in base (the accepted
// state), so that only then admission looks its ID up in the transaction
// index. A transaction other than a registration whose nonce is at least
// its author's next accepted nonce cannot have been accepted: accepting it
// would have set that nonce past it, and nonces never go back (an account
// is never deleted). The account is a hot key of the base cache, while
// the index lookup of a new transaction's ID is a database miss; so a
// fresh transaction, the common case, costs no miss, and a replay still
// meets the lookup and ErrAlreadyAccepted. Registrations are always looked
// up.
func mayBeAccepted(base *state.State, t *tx.Tx) (bool, error) {
	if _, isReg := t.Payload.(*tx.RegisterIdentity); isReg {
		return true, nil
	}
	next, err := base.Nonce(t.Author)
	if err != nil {
		return false, err
	}
	return t.Nonce < next, nil
}

// precheck runs the cheap state checks before any signature: a nonce
// already used by the author (pending transactions counted); for a
// registration, an author registered already or by a pending
// transaction, the anchor (whose resolution gives the work seed), and
// room in the registration pool for its excess.
func (p *pool) precheck(t *tx.Tx) (seed [32]byte, excess int, err error) {
	c := p.chain
	p.mu.Lock()
	defer p.mu.Unlock()
	reg, isReg := t.Payload.(*tx.RegisterIdentity)
	if !isReg {
		next, err := p.view.Nonce(t.Author)
		if err != nil {
			return seed, 0, err
		}
		if t.Nonce < next {
			return seed, 0, fmt.Errorf("%w: got %d, next is %d", tx.ErrReplayedNonce, t.Nonce, next)
		}
		return seed, 0, nil
	}
	if dup, err := p.view.HasIdentity(t.Author); err != nil {
		return seed, 0, err
	} else if dup {
		return seed, 0, fmt.Errorf("%w: %s (accepted or pending)", tx.ErrDuplicateRegistration, t.Author)
	}
	tip := p.tip
	ctx := c.execContext(tip.Block.Height+1, tip.Block.Timestamp, tip.ID())
	anchor, err := execute.AnchorID(p.view, ctx, reg.AnchorHeight)
	if err != nil {
		return seed, 0, err
	}
	seed = tx.WorkSeed(c.chainID, t.Author, reg.AnchorHeight, anchor)
	excess = tx.Excess(tx.WorkPre(seed, reg.Work), c.cfg.Registration)
	if len(p.regs) >= p.maxRegs {
		if _, low := p.lowestReg(); excess <= low.excess {
			return seed, 0, fmt.Errorf("%w: %d registrations pending, the lowest with %d bits of excess: more work goes first", mempool.ErrFull, len(p.regs), low.excess)
		}
	}
	return seed, excess, nil
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
	ctx := p.chain.execContext(p.tip.Block.Height+1, max(ts, p.tip.Block.Timestamp), p.tip.ID())
	var drop []ids.ID
	for _, t := range p.mempool.Ordered() {
		if err := execute.Tx(st, ctx, p.position(), t); err != nil {
			drop = append(drop, t.ID())
			p.remember(t, err)
			delete(p.regs, t.ID())
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

// blockAccepted implements poolHooks. When the block holds, for each of
// its authors, that author's oldest pending transactions (the usual case:
// this node built it, in admission or fair order), the overlay already
// reflects them and stays; otherwise it is rebuilt. Either
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
	for _, t := range b.Txs {
		if t.Type() == tx.TypeRegisterIdentity {
			delete(p.regs, t.ID())
		}
	}
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
	if d, ok := p.rejected.Get(id); ok {
		return TxStatus{Status: TxDropped, Reason: d.reason, author: d.author, nonce: d.nonce}, true
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
