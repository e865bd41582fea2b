package vm

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// Cache bounds of the verifier. A parsed ML-DSA-65 public key keeps its
// expanded matrix (about 38 KiB with t1), which bounds the key cache.
const (
	sigCacheSize  = 1 << 17
	keyCacheSize  = 1024 // about 38 KiB each: ~40 MiB at most
	workCacheSize = 1 << 16
)

// The admission budget for Argon2id (docs/chain.md section 3): at most
// max(1, GOMAXPROCS/2) evaluations at a time; a registration that finds
// them busy waits at most workGateWait in a queue of at most
// workGateQueue, ordered by excess, and is refused with ErrWorkBusy
// otherwise.
const (
	workGateQueue = 64
	workGateWait  = 2 * time.Second
)

// ErrWorkBusy refuses a registration at admission when the node's
// Argon2id budget is taken: retry later, with more work to go first
// (JSON-RPC -32015).
var ErrWorkBusy = errors.New("vm: the node's registration proof-of-work verifiers are busy: retry later (more work goes first)")

// verdict is the cached outcome of checking a transaction's signature.
type verdict uint8

const (
	verdictOK verdict = iota + 1
	verdictBadSignature
)

func (v verdict) err() error {
	if v == verdictBadSignature {
		return tx.ErrBadSignature
	}
	return nil
}

// verifier checks transaction signatures and registration work once each.
//
// A Session ID is a hash of the identity's public keys, so the key that
// verifies a transaction is fixed by its author: a signature verdict for a
// transaction ID (a hash of the signed bytes) never changes, whatever the
// state, and parsed keys can be cached by Session ID. A registration's
// Argon2id depends only on its pre-filter hash pre (which binds the chain,
// the author, the anchor and the work) and the chain's fixed parameters,
// so its verdict is cached by pre: re-signing a work value, or replaying
// it, never buys a second Argon2id.
//
// Order of checks for a registration (docs/chain.md section 3; the caller
// ran the stateless and state checks and resolved the anchor into the
// seed): the pre-filter (one BLAKE2b), the work cache, the signature, then
// Argon2id (at admission within the gate's budget).
type verifier struct {
	sigs    *fifoCache[ids.ID, verdict] // signature verdict by transaction ID
	work    *fifoCache[[32]byte, bool]  // Argon2id verdict by pre
	keys    *fifoCache[crypto.SessionID, *crypto.DSAPublicKey]
	workers int
	chainID ids.ID
	reg     config.Registration
	gate    *workGate

	verified    atomic.Uint64 // signatures actually checked (cache misses)
	workChecked atomic.Uint64 // Argon2id evaluations
}

func newVerifier(chainID ids.ID, reg config.Registration) *verifier {
	return &verifier{
		sigs:    newFIFOCache[ids.ID, verdict](sigCacheSize),
		work:    newFIFOCache[[32]byte, bool](workCacheSize),
		keys:    newFIFOCache[crypto.SessionID, *crypto.DSAPublicKey](keyCacheSize),
		workers: runtime.GOMAXPROCS(0),
		chainID: chainID,
		reg:     reg,
		gate:    newWorkGate(max(1, runtime.GOMAXPROCS(0)/2), workGateQueue, workGateWait),
	}
}

// keyLookup finds the identity record of an author, or state.ErrNotFound.
type keyLookup func(crypto.SessionID) (*state.Identity, error)

// keyFor returns the parsed DSA key of t's author: from a RegisterIdentity
// payload (whose derivation t.Check verified), the cache, or lookup.
func (v *verifier) keyFor(t *tx.Tx, lookup keyLookup) (*crypto.DSAPublicKey, error) {
	if k, ok := v.keys.Get(t.Author); ok {
		return k, nil
	}
	var raw []byte
	if reg, ok := t.Payload.(*tx.RegisterIdentity); ok {
		raw = reg.DSAPublicKey
	} else {
		id, err := lookup(t.Author)
		if errors.Is(err, state.ErrNotFound) {
			return nil, execute.ErrUnregistered(t.Author)
		}
		if err != nil {
			return nil, err
		}
		raw = id.DSAPublicKey
	}
	k, err := crypto.ParseDSAPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: ML-DSA-65 key", tx.ErrInvalidPublicKey)
	}
	v.keys.Put(t.Author, k)
	return k, nil
}

// signature verifies t's signature under k, cached by transaction ID.
func (v *verifier) signature(t *tx.Tx, k *crypto.DSAPublicKey) error {
	if vd, seen := v.sigs.Get(t.ID()); seen {
		return vd.err()
	}
	vd := verdictBadSignature
	if t.VerifySignature(k) {
		vd = verdictOK
	}
	v.verified.Add(1)
	v.sigs.Put(t.ID(), vd)
	return vd.err()
}

// pre returns a registration's pre-filter hash for seed and checks the
// pre-filter and the work cache: known says the cache knew it passes
// Argon2id.
func (v *verifier) pre(reg *tx.RegisterIdentity, seed [32]byte) (pre [32]byte, known bool, err error) {
	pre = tx.WorkPre(seed, reg.Work)
	if !tx.PrefilterPasses(pre, v.reg) {
		return pre, false, fmt.Errorf("%w: the pre-filter needs %d leading zero bits", tx.ErrInsufficientWork, v.reg.PrefilterBits)
	}
	if good, seen := v.work.Get(pre); seen {
		if !good {
			return pre, false, fmt.Errorf("%w: this work value was refused before", tx.ErrInsufficientWork)
		}
		return pre, true, nil
	}
	return pre, false, nil
}

// argon evaluates Argon2id for pre and caches the verdict.
func (v *verifier) argon(pre [32]byte) error {
	good := tx.ArgonPasses(v.chainID, pre, v.reg)
	v.workChecked.Add(1)
	v.work.Put(pre, good)
	if !good {
		return fmt.Errorf("%w: the Argon2id output falls short of %d leading zero bits", tx.ErrInsufficientWork, v.reg.WorkBits)
	}
	return nil
}

// verifyTx checks one transaction at admission: for a registration (seed
// is its work seed, the anchor resolved), the pre-filter, the work cache,
// the signature and Argon2id within the gate; for any other, the
// signature. The caller ran t.Check and the state checks.
func (v *verifier) verifyTx(t *tx.Tx, lookup keyLookup, seed [32]byte) error {
	reg, isReg := t.Payload.(*tx.RegisterIdentity)
	var pre [32]byte
	known := true
	if isReg {
		var err error
		if pre, known, err = v.pre(reg, seed); err != nil {
			return err
		}
	}
	k, err := v.keyFor(t, lookup)
	if err != nil {
		return err
	}
	if err := v.signature(t, k); err != nil {
		return err
	}
	if known {
		return nil
	}
	if err := v.gate.acquire(tx.Excess(pre, v.reg)); err != nil {
		return err
	}
	defer v.gate.release()
	// Another admission may have evaluated the same pre meanwhile.
	if good, seen := v.work.Get(pre); seen {
		if !good {
			return fmt.Errorf("%w: this work value was refused before", tx.ErrInsufficientWork)
		}
		return nil
	}
	return v.argon(pre)
}

// prefetch verifies the signature of a transaction other than a
// registration (whose checks run in order at admission), caching the
// verdict.
func (v *verifier) prefetch(t *tx.Tx, lookup keyLookup) error {
	if t.Type() == tx.TypeRegisterIdentity {
		return nil
	}
	k, err := v.keyFor(t, lookup)
	if err != nil {
		return err
	}
	return v.signature(t, k)
}

// verifyBlock checks the signatures of txs, and the work of their
// registrations (seeds[i] is registration i's work seed: the caller ran
// the registrations' state checks and resolved their anchors), in
// parallel on every core; Argon2id does not wait for the admission gate
// (a block holds at most registration.maxPerBlock). Keys come from the
// cache, from lookup (the parent state), or from a RegisterIdentity
// earlier in the same block. The first failure in block order is
// returned, naming the transaction index.
func (v *verifier) verifyBlock(txs []*tx.Tx, lookup keyLookup, seeds map[int][32]byte) error {
	type job struct {
		index int
		t     *tx.Tx
		key   *crypto.DSAPublicKey
		pre   [32]byte
		work  bool // Argon2id to evaluate
	}
	var jobs []job
	var blockKeys map[crypto.SessionID]*tx.RegisterIdentity // lookups only
	for i, t := range txs {
		reg, isReg := t.Payload.(*tx.RegisterIdentity)
		j := job{index: i, t: t}
		if isReg {
			if blockKeys == nil {
				blockKeys = make(map[crypto.SessionID]*tx.RegisterIdentity)
			}
			blockKeys[t.Author] = reg
			pre, known, err := v.pre(reg, seeds[i])
			if err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			j.pre, j.work = pre, !known
		}
		if vd, seen := v.sigs.Get(t.ID()); seen {
			if err := vd.err(); err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			if !j.work {
				continue
			}
		} else {
			k, err := v.keyFor(t, func(id crypto.SessionID) (*state.Identity, error) {
				if r, ok := blockKeys[id]; ok {
					return &state.Identity{ID: id, KEMPublicKey: r.KEMPublicKey, DSAPublicKey: r.DSAPublicKey}, nil
				}
				return lookup(id)
			})
			if err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			j.key = k
		}
		jobs = append(jobs, j)
	}
	if len(jobs) == 0 {
		return nil
	}
	workers := min(v.workers, len(jobs))
	errs := make([]error, len(jobs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(jobs) {
					return
				}
				jb := jobs[j]
				if jb.key != nil {
					if errs[j] = v.signature(jb.t, jb.key); errs[j] != nil {
						continue
					}
				}
				if jb.work {
					errs[j] = v.argon(jb.pre)
				}
			}
		}()
	}
	wg.Wait()
	for j, err := range errs {
		if err != nil {
			return fmt.Errorf("transaction %d: %w", jobs[j].index, err)
		}
	}
	return nil
}

// workGate is admission's budget for Argon2id: slots evaluations at a
// time, and a queue of at most maxQueue waiters ordered by excess (then
// arrival) in which each waits at most maxWait. When the queue is full, a
// registration with more excess than the lowest waiter takes its place
// (that one is refused); otherwise it is refused at once.
type workGate struct {
	mu       sync.Mutex
	free     int
	waiters  []*gateWaiter // best first
	seq      uint64
	maxQueue int
	maxWait  time.Duration

	refused atomic.Uint64 // registrations refused busy
}

type gateWaiter struct {
	excess  int
	seq     uint64
	ch      chan struct{} // closed when granted or evicted
	granted bool
}

func newWorkGate(slots, maxQueue int, maxWait time.Duration) *workGate {
	return &workGate{free: slots, maxQueue: maxQueue, maxWait: maxWait}
}

// better reports whether a goes before b.
func (a *gateWaiter) better(b *gateWaiter) bool {
	return a.excess > b.excess || (a.excess == b.excess && a.seq < b.seq)
}

// acquire takes a slot for a registration of the given excess, waiting
// in the queue if need be; ErrWorkBusy when it cannot.
func (g *workGate) acquire(excess int) error {
	g.mu.Lock()
	if g.free > 0 && len(g.waiters) == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	w := &gateWaiter{excess: excess, seq: g.seq, ch: make(chan struct{})}
	g.seq++
	if len(g.waiters) >= g.maxQueue {
		worst := g.waiters[len(g.waiters)-1]
		if !w.better(worst) {
			g.mu.Unlock()
			g.refused.Add(1)
			return fmt.Errorf("%w: %d registrations wait with at least as much work", ErrWorkBusy, len(g.waiters))
		}
		g.waiters = g.waiters[:len(g.waiters)-1]
		close(worst.ch) // not granted: refused
	}
	at, _ := slices.BinarySearchFunc(g.waiters, w, func(a, b *gateWaiter) int {
		if a.better(b) {
			return -1
		}
		return 1
	})
	g.waiters = slices.Insert(g.waiters, at, w)
	g.mu.Unlock()

	timer := time.NewTimer(g.maxWait)
	defer timer.Stop()
	select {
	case <-w.ch:
	case <-timer.C:
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if w.granted {
		return nil
	}
	if i := slices.Index(g.waiters, w); i >= 0 { // timed out while queued
		g.waiters = slices.Delete(g.waiters, i, i+1)
	}
	g.refused.Add(1)
	return fmt.Errorf("%w: waited %s", ErrWorkBusy, g.maxWait)
}

// release returns a slot: to the best waiter, if any.
func (g *workGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.waiters) > 0 {
		w := g.waiters[0]
		g.waiters = g.waiters[1:]
		w.granted = true
		close(w.ch)
		return
	}
	g.free++
}
