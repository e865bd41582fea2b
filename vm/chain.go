package vm

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/consensus/core/choices"
	smblock "github.com/luxfi/consensus/engine/chain/block"
	"github.com/luxfi/database"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// minTxSize is the size of the smallest transaction (a header, the
// smallest payload and a signature).
const minTxSize = tx.HeaderSize + ids.IDLen + crypto.SignatureSize

// Block errors.
var (
	ErrUnknownParent      = errors.New("parent block is unknown or not verified")
	ErrParentNotAccepted  = errors.New("parent is accepted but not the last accepted block")
	ErrWrongHeight        = errors.New("block height is not parent height + 1")
	ErrTimestampDecreased = errors.New("block timestamp is before its parent's")
	ErrFutureTimestamp    = errors.New("block timestamp is too far in the future")
	ErrInvalidBlockTx     = errors.New("block holds an invalid transaction")
	ErrNotVerified        = errors.New("block was not verified")
	ErrAlreadyDecided     = errors.New("block was already accepted or rejected")
	ErrAcceptOutOfOrder   = errors.New("block's parent is not the last accepted block")
	ErrNoPendingTxs       = errors.New("no transactions to build a block with")
	ErrNotInitialized     = errors.New("vm: not initialized")
	ErrShutdown           = errors.New("vm: shut down")
	// ErrTooManyRegistrations refuses a block holding more registrations
	// than the chain's registration.maxPerBlock (checked before any
	// signature or proof of work, so such a block is cheap to refuse).
	ErrTooManyRegistrations = errors.New("block holds too many registrations")
)

var _ smblock.Block = (*Block)(nil)

// Block is a block as the consensus engine sees it. It holds its wire form,
// its decision status and, once verified, the versiondb overlay with the
// state after it. It talks to its chain, never to the whole VM.
type Block struct {
	*block.Block
	chain *chain

	status   choices.Status
	overlay  *versiondb.Database // non-nil once verified, until decided
	children []*Block            // verified children, in verification order
	counts   state.Counts        // the chain-wide counts after the block (set by verify and build)
	inbox    []state.InboxWrite  // the inbox entries it writes (set by verify and build)
	writes   int                 // its state writes, against bounds.ops (set by verify and build)
}

// ID implements smblock.Block.
func (b *Block) ID() ids.ID { return b.Block.ID() }

// Parent implements smblock.Block.
func (b *Block) Parent() ids.ID { return b.Block.ParentID }

// ParentID implements smblock.Block.
func (b *Block) ParentID() ids.ID { return b.Block.ParentID }

// Height implements smblock.Block.
func (b *Block) Height() uint64 { return b.Block.Height }

// Timestamp implements smblock.Block.
func (b *Block) Timestamp() time.Time { return b.Block.Time() }

// Status implements smblock.Block: a choices.Status value.
func (b *Block) Status() uint8 {
	b.chain.mu.Lock()
	defer b.chain.mu.Unlock()
	return uint8(b.chain.canonical(b).status)
}

// Bytes implements smblock.Block.
func (b *Block) Bytes() []byte { return b.Block.Bytes() }

// Verify executes the block on an overlay of its parent's state. Verifying
// a verified block again is a no-op.
func (b *Block) Verify(context.Context) error {
	b.chain.mu.Lock()
	defer b.chain.mu.Unlock()
	return b.chain.verify(b)
}

// Accept commits the block, its state and the last-accepted pointer in one
// atomic batch.
func (b *Block) Accept(context.Context) error {
	b.chain.mu.Lock()
	defer b.chain.mu.Unlock()
	return b.chain.accept(b)
}

// Reject drops the block and its overlay. Rejected blocks are not stored.
func (b *Block) Reject(context.Context) error {
	b.chain.mu.Lock()
	defer b.chain.mu.Unlock()
	return b.chain.reject(b)
}

// poolHooks is what the chain tells the mempool side.
type poolHooks interface {
	blockVerified(b *Block)
	blockRejected(b *Block)
	blockAccepted(b *Block) // called after the commit
}

// chain tracks the accepted tip and the verified, undecided blocks.
type chain struct {
	mu sync.Mutex

	db       database.Database // the base database
	cache    *baseCache        // reads of the base for execution
	chainID  ids.ID
	cfg      config.Config
	verifier *verifier
	clock    func() time.Time
	hooks    poolHooks
	disk     *DiskGuard // nil: free space is not watched

	closed       bool // set by Shutdown; every operation then fails
	lastAccepted *Block
	tip          atomic.Pointer[Block] // lastAccepted, readable without mu
	preferred    ids.ID
	processing   map[ids.ID]*Block // lookups only; never iterated

	acceptedBlocks uint64
	acceptedTxs    atomic.Uint64         // since this process started
	commitErr      atomic.Pointer[error] // the last failed Accept's error, nil after a success
	nProcessing    atomic.Int64          // len(processing)
	onAccept       func(*Block)          // after hooks; for notification

	// divergeForTest, when set (tests only), replaces the context a block
	// executes in, which makes this node compute another state than its
	// peers: the fault the state commitment exists to catch.
	divergeForTest func(execute.Context) execute.Context
	// bounds are the write bounds of a block and the builder's reserves
	// (defaultWriteBounds; tests lower them).
	bounds writeBounds
}

func (c *chain) execContext(height uint64, ts int64, parent ids.ID) execute.Context {
	return execute.Context{ChainID: c.chainID, Config: c.cfg, Height: height, Timestamp: ts, ParentID: parent}
}

// blockContext is the context a block's transactions execute in.
func (c *chain) blockContext(height uint64, ts int64, parent ids.ID) execute.Context {
	ctx := c.execContext(height, ts, parent)
	if c.divergeForTest != nil {
		ctx = c.divergeForTest(ctx)
	}
	return ctx
}

// executeBlock runs a block's state transition after its signatures were
// checked: the block's bookkeeping (anchor record, retention), the
// transactions in order, the block's transaction count, then the deferred
// writes. st is a deferred view over a commitDB.
func executeBlock(st *state.State, ctx execute.Context, txs []*tx.Tx) error {
	if err := execute.BeginBlock(st, ctx); err != nil {
		return err
	}
	for i, t := range txs {
		if err := execute.Tx(st, ctx, uint32(i), t); err != nil {
			return fmt.Errorf("%w: transaction %d (%s): %w", ErrInvalidBlockTx, i, t.ID(), err)
		}
	}
	return finishBlock(st, len(txs))
}

// finishBlock counts a block's transactions in the chain-wide total and
// writes what the deferred view kept.
func finishBlock(st *state.State, n int) error {
	if n > 0 {
		if err := st.AddCount(state.CountTxsAccepted, int64(n)); err != nil {
			return err
		}
	}
	return st.Flush()
}

// countsAfter reads the counts of a block's state (its flushed view), for
// the status of the chain once the block is accepted.
func countsAfter(st *state.State) (state.Counts, error) {
	c, err := st.Counts()
	if err != nil {
		return c, fmt.Errorf("reading the block's counts: %w", err)
	}
	return c, nil
}

// getBlock returns a processing or accepted block.
func (c *chain) getBlock(id ids.ID) (*Block, error) {
	if b, ok := c.processing[id]; ok {
		return b, nil
	}
	if c.lastAccepted != nil && c.lastAccepted.ID() == id {
		return c.lastAccepted, nil
	}
	raw, err := state.New(c.db).GetBlock(id)
	if err != nil {
		return nil, fmt.Errorf("block %s: %w", id, err)
	}
	blk, err := block.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("stored block %s: %w", id, err)
	}
	return &Block{Block: blk, chain: c, status: choices.Accepted}, nil
}

// parseBlock returns the known block with these bytes, or a new,
// unverified one.
func (c *chain) parseBlock(raw []byte) (*Block, error) {
	if len(raw) > config.MaxBlockSize {
		return nil, fmt.Errorf("%w: %d bytes", block.ErrTooLarge, len(raw))
	}
	blk, err := block.Parse(raw)
	if err != nil {
		return nil, err
	}
	if b, err := c.getBlock(blk.ID()); err == nil {
		return b, nil
	}
	return &Block{Block: blk, chain: c, status: choices.Processing}, nil
}

// parentOf returns the parent of b if b may be verified on it, with the
// database holding the parent's state.
func (c *chain) parentOf(b *block.Block) (*Block, database.Database, error) {
	if p, ok := c.processing[b.ParentID]; ok {
		return p, p.overlay, nil
	}
	if c.lastAccepted.ID() == b.ParentID {
		return c.lastAccepted, c.cache, nil
	}
	if ok, err := state.New(c.db).HasBlock(b.ParentID); err == nil && ok {
		return nil, nil, fmt.Errorf("%w: %s", ErrParentNotAccepted, b.ParentID)
	}
	return nil, nil, fmt.Errorf("%w: %s", ErrUnknownParent, b.ParentID)
}

// canonical returns the processing block with b's ID if there is one: two
// objects parsed from the same bytes share one decision.
func (c *chain) canonical(b *Block) *Block {
	if k, ok := c.processing[b.ID()]; ok {
		return k
	}
	return b
}

func (c *chain) verify(b *Block) error {
	if c.closed {
		return ErrShutdown
	}
	b = c.canonical(b)
	switch {
	case b.status == choices.Accepted:
		return nil
	case b.status == choices.Rejected:
		return ErrAlreadyDecided
	case b.overlay != nil:
		return nil // verified before
	}
	parent, parentDB, err := c.parentOf(b.Block)
	if err != nil {
		return err
	}
	if b.Block.Height != parent.Block.Height+1 {
		return fmt.Errorf("%w: height %d, parent %d", ErrWrongHeight, b.Block.Height, parent.Block.Height)
	}
	if b.Block.Timestamp < parent.Block.Timestamp {
		return fmt.Errorf("%w: %d < %d", ErrTimestampDecreased, b.Block.Timestamp, parent.Block.Timestamp)
	}
	// The only use of the clock: bound the proposer's timestamp.
	if limit := c.clock().UnixMilli() + config.MaxFutureBlockTime; b.Block.Timestamp > limit {
		return fmt.Errorf("%w: %d > %d", ErrFutureTimestamp, b.Block.Timestamp, limit)
	}
	if n := countRegistrations(b.Txs); n > int(c.cfg.Registration.MaxPerBlock) {
		return fmt.Errorf("%w: %d, at most %d", ErrTooManyRegistrations, n, c.cfg.Registration.MaxPerBlock)
	}
	overlay := versiondb.New(parentDB)
	writes := newCommitDB(overlay, parent.Block.StateCommitment, b.Block.Height)
	st := state.New(writes)
	st.Defer()
	ctx := c.blockContext(b.Block.Height, b.Block.Timestamp, b.Block.ParentID)
	// Registrations: the cheap state checks before any signature or
	// Argon2id (docs/chain.md section 3), and their work seeds.
	seeds, err := registrationSeeds(st, ctx, b.Txs)
	if err != nil {
		overlay.Abort()
		return fmt.Errorf("%w: %w", ErrInvalidBlockTx, err)
	}
	if err := c.verifier.verifyBlock(b.Txs, st.GetIdentity, seeds); err != nil {
		overlay.Abort()
		return fmt.Errorf("%w: %w", ErrInvalidBlockTx, err)
	}
	if err := executeBlock(st, ctx, b.Txs); err != nil {
		overlay.Abort()
		return err
	}
	// No node may be asked to commit more than the write bounds.
	if err := writes.overBudget(c.bounds); err != nil {
		overlay.Abort()
		return err
	}
	// The block's state must be the state this node computed.
	if got := writes.sum(); got != b.Block.StateCommitment {
		overlay.Abort()
		return fmt.Errorf("%w: block %s at height %d commits to %x, this node computed %x",
			ErrStateMismatch, b.ID(), b.Block.Height, b.Block.StateCommitment[:8], got[:8])
	}
	if b.counts, err = countsAfter(st); err != nil {
		overlay.Abort()
		return err
	}
	b.inbox, b.writes = writes.inbox, writes.ops
	c.addVerified(b, parent, overlay)
	return nil
}

func (c *chain) addVerified(b, parent *Block, overlay *versiondb.Database) {
	b.overlay = overlay
	c.processing[b.ID()] = b
	c.nProcessing.Add(1)
	parent.children = append(parent.children, b)
	c.hooks.blockVerified(b)
}

// accept commits b. Until the batch is written nothing changes, in memory
// or on disk: an error before or from the write (a full disk, a failing
// database) leaves b verified and undecided, and accepting it again later
// redoes the whole commit.
func (c *chain) accept(b *Block) error {
	if c.closed {
		return ErrShutdown
	}
	alias := b // another object parsed from the same bytes
	b = c.canonical(b)
	switch {
	case b.status == choices.Accepted:
		alias.status = choices.Accepted
		return nil
	case b.status == choices.Rejected:
		return ErrAlreadyDecided
	case b.overlay == nil:
		return ErrNotVerified
	case b.Block.ParentID != c.lastAccepted.ID():
		return fmt.Errorf("%w: parent %s, last accepted %s", ErrAcceptOutOfOrder, b.Block.ParentID, c.lastAccepted.ID())
	}
	// A failure from here to the write is reported by HealthCheck until a
	// commit succeeds.
	fail := func(err error) error {
		err = fmt.Errorf("committing block %s: %w", b.ID(), err)
		c.commitErr.Store(&err)
		return err
	}
	if c.disk != nil && c.disk.gateCommits {
		if err := c.disk.commit(); err != nil {
			return fail(err)
		}
	}
	// The parent's overlay was committed when it was accepted: read the
	// base. (SetDatabase also gives the overlay a fresh batch, so a retry
	// after a failed write starts from an empty one.)
	if err := b.overlay.SetDatabase(c.cache); err != nil {
		return fail(err)
	}
	// One atomic batch: the overlay's state changes plus the block, its
	// transaction index and the last-accepted pointer.
	batch, err := b.overlay.CommitBatch()
	if err != nil {
		return fail(err)
	}
	txIDs := make([]ids.ID, len(b.Txs))
	sizes := make([]int, len(b.Txs))
	for i, t := range b.Txs {
		txIDs[i], sizes[i] = t.ID(), t.Size()
	}
	if err := state.WriteAccepted(batch, b.ID(), b.Block.Height, b.Bytes(), txIDs, sizes); err != nil {
		return fail(err)
	}
	if err := batch.Write(); err != nil {
		return fail(err)
	}
	if c.disk != nil {
		c.disk.written()
	}
	// Written. From here on nothing may fail, or memory and disk would
	// disagree: the cache's writer never fails, and SetDatabase fails only
	// on an aborted overlay, which a child that has one is not.
	c.commitErr.Store(nil)
	alias.status = choices.Accepted
	_ = c.cache.apply(batch)
	b.overlay.Abort()
	for _, child := range b.children {
		if child.overlay != nil {
			_ = child.overlay.SetDatabase(c.cache)
		}
	}
	b.status = choices.Accepted
	b.overlay = nil
	b.children = nil
	delete(c.processing, b.ID())
	c.nProcessing.Add(-1)
	c.lastAccepted = b
	c.acceptedBlocks++
	c.acceptedTxs.Add(uint64(len(b.Txs)))
	c.hooks.blockAccepted(b)
	// Published after the pool has moved to b: a client that reads the new
	// tip from session.status and anchors a registration to it must find
	// admission executing above it (before, admission could still be at
	// b's height for a moment, and refused the anchor with ErrAnchor).
	c.tip.Store(b)
	if c.onAccept != nil {
		c.onAccept(b)
	}
	return nil
}

func (c *chain) reject(b *Block) error {
	if k := c.canonical(b); k != b {
		b.status = choices.Rejected
		b = k
	}
	switch b.status {
	case choices.Rejected:
		return nil
	case choices.Accepted:
		return ErrAlreadyDecided
	}
	b.status = choices.Rejected
	if b.overlay != nil {
		b.overlay.Abort()
		b.overlay = nil
		delete(c.processing, b.ID())
		c.nProcessing.Add(-1)
		c.hooks.blockRejected(b)
	}
	b.children = nil
	return nil
}

// maxBuildRefusals bounds the transactions a build tries and refuses
// (docs/chain.md section 15): a pool full of transactions that no longer
// apply costs a bounded amount per block.
const maxBuildRefusals = 256

// build makes a block on the preferred block from pending transactions
// (mempool transactions, whose signatures and work admission verified),
// executing them as it goes (the result is a verified block). pending is
// in build order (mempool.BuildOrder); skip receives every transaction
// refused, with the reason (and, on a processing parent, those left out
// behind a refusal, with a nil reason). regs, when not nil, is the set of
// registrations the block may take (the pool's choice by excess, when more
// are pending than a block holds).
//
// The block stays within the write bounds (config.MaxBlockWrites and
// MaxBlockWriteBytes, which Verify enforces): no transaction begins once
// fewer than the reserves of c.bounds are left after what the block wrote
// and what its deferred records will write. Should a block still end
// beyond them, it is built again with half the transactions (not expected:
// the reserves exceed what any one transaction writes, at most about 200
// records and 80 KiB).
func (c *chain) build(pending []*tx.Tx, skip func(t *tx.Tx, onTip bool, err error), regs map[ids.ID]bool) (*Block, error) {
	if c.closed {
		return nil, ErrShutdown
	}
	if c.disk != nil {
		if err := c.disk.commit(); err != nil {
			return nil, err
		}
	}
	maxTxs := config.MaxBlockTxs
	for {
		b, err := c.buildUpTo(pending, skip, regs, maxTxs)
		var over *overBudgetError
		if !errors.As(err, &over) || over.txs <= 1 {
			return b, err
		}
		maxTxs = over.txs / 2
	}
}

// writeBounds are a block's write bounds (config.MaxBlockWrites and
// MaxBlockWriteBytes) and the builder's reserves against them: what one
// transaction may write at most, with a wide margin (the largest write
// about 200 records; config.MaxTxSize bounds their bytes).
type writeBounds struct {
	ops, bytes               int
	reserveOps, reserveBytes int
}

var defaultWriteBounds = writeBounds{
	ops:          config.MaxBlockWrites,
	bytes:        config.MaxBlockWriteBytes,
	reserveOps:   2048,
	reserveBytes: 4*config.MaxTxSize + 256<<10,
}

// overBudgetError is a built block beyond the write bounds, of txs
// transactions.
type overBudgetError struct {
	txs int
	err error
}

func (e *overBudgetError) Error() string { return e.err.Error() }
func (e *overBudgetError) Unwrap() error { return e.err }

// buildUpTo is build with at most maxTxs transactions.
func (c *chain) buildUpTo(pending []*tx.Tx, skip func(t *tx.Tx, onTip bool, err error), regs map[ids.ID]bool, maxTxs int) (*Block, error) {
	parent, ok := c.processing[c.preferred]
	var parentDB database.Database
	if ok {
		parentDB = parent.overlay
	} else {
		parent, parentDB = c.lastAccepted, c.cache
	}
	onTip := parent == c.lastAccepted
	ts := max(c.clock().UnixMilli(), parent.Block.Timestamp)
	height := parent.Block.Height + 1
	overlay := versiondb.New(parentDB)
	writes := newCommitDB(overlay, parent.Block.StateCommitment, height)
	st := state.New(writes)
	st.Defer()
	ctx := c.blockContext(height, ts, parent.ID())
	if err := execute.BeginBlock(st, ctx); err != nil {
		overlay.Abort()
		return nil, err
	}
	var txs []*tx.Tx
	nRegs := 0    // registrations in the block (at most registration.maxPerBlock)
	refusals := 0 // transactions refused in this build
	size := block.HeaderSize
	// An author whose transaction is left out has its later ones left out
	// too (their nonces would not follow). Lookups only.
	var blocked map[crypto.SessionID]bool
	blockAuthor := func(a crypto.SessionID) {
		if blocked == nil {
			blocked = make(map[crypto.SessionID]bool)
		}
		blocked[a] = true
	}
	for _, t := range pending {
		if len(txs) == maxTxs || config.MaxBlockSize-size < minTxSize || refusals == maxBuildRefusals {
			break
		}
		if dops, dbytes := st.DeferredCost(); writes.ops+dops > c.bounds.ops-c.bounds.reserveOps ||
			writes.bytes+dbytes > c.bounds.bytes-c.bounds.reserveBytes {
			break
		}
		if blocked[t.Author] {
			if !onTip {
				skip(t, false, nil)
			}
			continue
		}
		if size+t.Size() > config.MaxBlockSize {
			blockAuthor(t.Author) // a smaller transaction of another author may fit
			continue
		}
		_, isReg := t.Payload.(*tx.RegisterIdentity)
		if isReg && (nRegs == int(c.cfg.Registration.MaxPerBlock) || (regs != nil && !regs[t.ID()])) {
			blockAuthor(t.Author) // a later block takes it
			continue
		}
		// pending comes from the mempool, which admits a transaction only
		// after verifying its signature: no signature work here.
		if err := execute.Tx(st, ctx, uint32(len(txs)), t); err != nil {
			if !tx.IsRefusal(err) {
				overlay.Abort()
				return nil, err
			}
			if !onTip && errors.Is(err, tx.ErrReplayedNonce) {
				// Already in a processing ancestor (or in conflict with
				// one): park it, and go on with the author's later ones.
				skip(t, false, err)
				continue
			}
			blockAuthor(t.Author)
			skip(t, onTip, err)
			refusals++
			continue
		}
		txs = append(txs, t)
		size += t.Size()
		if isReg {
			nRegs++
		}
	}
	if len(txs) == 0 {
		overlay.Abort()
		return nil, ErrNoPendingTxs
	}
	if err := finishBlock(st, len(txs)); err != nil {
		overlay.Abort()
		return nil, err
	}
	if err := writes.overBudget(c.bounds); err != nil {
		overlay.Abort()
		return nil, &overBudgetError{txs: len(txs), err: err}
	}
	blk, err := block.New(parent.ID(), height, ts, writes.sum(), txs)
	if err != nil {
		overlay.Abort()
		return nil, err
	}
	b := &Block{Block: blk, chain: c, status: choices.Processing, inbox: writes.inbox, writes: writes.ops}
	if b.counts, err = countsAfter(st); err != nil {
		overlay.Abort()
		return nil, err
	}
	c.addVerified(b, parent, overlay)
	return b, nil
}

// registrationSeeds runs the cheap checks of a block's registrations on
// the parent state (st) before any signature or Argon2id: the stateless
// checks, no two of one author, none of an author registered already, an
// anchor in the block's window. It returns each registration's work seed
// by index.
func registrationSeeds(st *state.State, ctx execute.Context, txs []*tx.Tx) (map[int][32]byte, error) {
	var seeds map[int][32]byte            // lookups only
	var authors map[crypto.SessionID]bool // lookups only
	for i, t := range txs {
		reg, ok := t.Payload.(*tx.RegisterIdentity)
		if !ok {
			continue
		}
		if seeds == nil {
			seeds, authors = make(map[int][32]byte), make(map[crypto.SessionID]bool)
		}
		if err := t.Check(ctx.ChainID); err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
		if authors[t.Author] {
			return nil, fmt.Errorf("transaction %d: %w: %s twice in the block", i, tx.ErrDuplicateRegistration, t.Author)
		}
		authors[t.Author] = true
		if dup, err := st.HasIdentity(t.Author); err != nil {
			return nil, err
		} else if dup {
			return nil, fmt.Errorf("transaction %d: %w: %s", i, tx.ErrDuplicateRegistration, t.Author)
		}
		anchor, err := execute.AnchorID(st, ctx, reg.AnchorHeight)
		if err != nil {
			return nil, fmt.Errorf("transaction %d: %w", i, err)
		}
		seeds[i] = tx.WorkSeed(ctx.ChainID, t.Author, reg.AnchorHeight, anchor)
	}
	return seeds, nil
}

// countRegistrations counts the RegisterIdentity transactions of a block.
func countRegistrations(txs []*tx.Tx) int {
	n := 0
	for _, t := range txs {
		if t.Type() == tx.TypeRegisterIdentity {
			n++
		}
	}
	return n
}

// processingCount returns the number of verified, undecided blocks
// without waiting for the chain lock.
func (c *chain) processingCount() int { return int(c.nProcessing.Load()) }
