package vm

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

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
	sigCacheSize = 1 << 17
	keyCacheSize = 1024 // about 38 KiB each: ~40 MiB at most
)

// verdict is the cached outcome of checking a transaction's signature and,
// for a registration, its proof of work.
type verdict uint8

const (
	verdictOK verdict = iota + 1
	verdictBadSignature
	verdictBadWork
)

func (v verdict) err() error {
	switch v {
	case verdictBadSignature:
		return tx.ErrBadSignature
	case verdictBadWork:
		return tx.ErrInsufficientWork
	}
	return nil
}

// verifier checks transaction signatures and registration work once each.
//
// A Session ID is a hash of the identity's public keys, so the key that
// verifies a transaction is fixed by its author: a verdict for a
// transaction ID (a hash of the signed bytes) never changes, whatever the
// state, and parsed keys can be cached by Session ID, whichever transaction
// or state record they came from. The work of a registration depends only
// on its bytes and the chain's fixed parameters, so its verdict is cached
// the same way.
//
// Order of checks for a registration (docs/chain.md section 3): the BLAKE2b
// pre-filter, the signature, then Argon2id, so a bogus registration costs
// its sender the pre-filter's work and a signature before a node evaluates
// Argon2id. Argon2id evaluations run at most maxWorkVerifiers at a time
// (each holds registration.memoryKiB of memory).
type verifier struct {
	sigs    *fifoCache[ids.ID, verdict] // verdict by transaction ID
	keys    *fifoCache[crypto.SessionID, *crypto.DSAPublicKey]
	workers int
	chainID ids.ID
	reg     config.Registration
	workSem chan struct{} // bounds concurrent Argon2id evaluations

	verified    atomic.Uint64 // signatures actually checked (cache misses)
	workChecked atomic.Uint64 // Argon2id evaluations
}

// maxWorkVerifiers bounds concurrent Argon2id evaluations: the cores.
func maxWorkVerifiers() int { return runtime.GOMAXPROCS(0) }

func newVerifier(chainID ids.ID, reg config.Registration) *verifier {
	return &verifier{
		sigs:    newFIFOCache[ids.ID, verdict](sigCacheSize),
		keys:    newFIFOCache[crypto.SessionID, *crypto.DSAPublicKey](keyCacheSize),
		workers: runtime.GOMAXPROCS(0),
		chainID: chainID,
		reg:     reg,
		workSem: make(chan struct{}, maxWorkVerifiers()),
	}
}

// prefilter runs the cheap part of a registration's work check; a failure
// is cached.
func (v *verifier) prefilter(t *tx.Tx) error {
	reg, ok := t.Payload.(*tx.RegisterIdentity)
	if !ok {
		return nil
	}
	if _, pass := tx.WorkPrefilter(v.chainID, t.Author, reg.Work, v.reg); !pass {
		v.sigs.Put(t.ID(), verdictBadWork)
		return fmt.Errorf("%w: the pre-filter needs %d leading zero bits", tx.ErrInsufficientWork, v.reg.PrefilterBits)
	}
	return nil
}

// work evaluates a registration's Argon2id (after its signature verified).
func (v *verifier) work(t *tx.Tx) verdict {
	reg, ok := t.Payload.(*tx.RegisterIdentity)
	if !ok {
		return verdictOK
	}
	v.workSem <- struct{}{}
	err := tx.CheckWork(v.chainID, t.Author, reg.Work, v.reg)
	<-v.workSem
	v.workChecked.Add(1)
	if err != nil {
		return verdictBadWork
	}
	return verdictOK
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

// verifyTx checks one signature and, for a registration, its work
// (cached). The caller ran t.Check.
func (v *verifier) verifyTx(t *tx.Tx, lookup keyLookup) error {
	if vd, seen := v.sigs.Get(t.ID()); seen {
		return vd.err()
	}
	if err := v.prefilter(t); err != nil {
		return err
	}
	k, err := v.keyFor(t, lookup)
	if err != nil {
		return err
	}
	return v.check(t, k).err()
}

// check verifies the signature, then the work, and caches the verdict.
func (v *verifier) check(t *tx.Tx, k *crypto.DSAPublicKey) verdict {
	vd := verdictBadSignature
	ok := t.VerifySignature(k)
	v.verified.Add(1)
	if ok {
		vd = v.work(t)
	}
	v.sigs.Put(t.ID(), vd)
	return vd
}

// verifyBlock checks the signatures of txs not seen before, in parallel on
// every core. Keys come from the cache, from lookup (the parent state), or
// from a RegisterIdentity earlier in the same block. The first failure in
// block order is returned, naming the transaction index.
func (v *verifier) verifyBlock(txs []*tx.Tx, lookup keyLookup) error {
	type job struct {
		index int
		t     *tx.Tx
		key   *crypto.DSAPublicKey
	}
	var jobs []job
	var blockKeys map[crypto.SessionID]*tx.RegisterIdentity // lookups only
	for i, t := range txs {
		reg, isReg := t.Payload.(*tx.RegisterIdentity)
		if isReg {
			if blockKeys == nil {
				blockKeys = make(map[crypto.SessionID]*tx.RegisterIdentity)
			}
			if _, dup := blockKeys[t.Author]; !dup {
				blockKeys[t.Author] = reg
			}
		}
		if vd, seen := v.sigs.Get(t.ID()); seen {
			if err := vd.err(); err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			continue
		}
		if isReg {
			// Only a payload whose keys derive the author may supply the key.
			if err := t.Check(t.ChainID); err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
			if err := v.prefilter(t); err != nil {
				return fmt.Errorf("transaction %d: %w", i, err)
			}
		}
		k, err := v.keyFor(t, func(id crypto.SessionID) (*state.Identity, error) {
			if r, ok := blockKeys[id]; ok {
				return &state.Identity{ID: id, KEMPublicKey: r.KEMPublicKey, DSAPublicKey: r.DSAPublicKey}, nil
			}
			return lookup(id)
		})
		if err != nil {
			return fmt.Errorf("transaction %d: %w", i, err)
		}
		jobs = append(jobs, job{index: i, t: t, key: k})
	}
	if len(jobs) == 0 {
		return nil
	}
	workers := min(v.workers, len(jobs))
	failed := make([]verdict, len(jobs))
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
				failed[j] = v.check(jobs[j].t, jobs[j].key)
			}
		}()
	}
	wg.Wait()
	for j, vd := range failed {
		if err := vd.err(); err != nil {
			return fmt.Errorf("transaction %d: %w", jobs[j].index, err)
		}
	}
	return nil
}
