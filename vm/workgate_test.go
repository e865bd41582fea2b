package vm

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestWorkGate (review C1 fix 3, A19): admission's Argon2id budget. With
// every slot busy and the queue full, a registration with no more excess
// than the lowest waiter is refused at once with the retryable
// ErrWorkBusy (it costs the node nothing more); one with more excess takes
// the lowest waiter's place (that one is refused), and a freed slot goes
// to the best waiter first: an honest client outbids a flood of minimal
// registrations by solving a few bits more. A waiter gives up after
// maxWait.
func TestWorkGate(t *testing.T) {
	g := newWorkGate(1, 2, time.Minute)
	if err := g.acquire(0); err != nil { // the flood holds the slot
		t.Fatal(err)
	}
	type result struct {
		name string
		err  error
	}
	done := make(chan result, 4)
	wait := func(name string, excess int) {
		go func() { done <- result{name, g.acquire(excess)} }()
	}
	queued := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; {
			g.mu.Lock()
			l := len(g.waiters)
			g.mu.Unlock()
			if l == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d waiters, want %d", l, n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	wait("flood 1", 0)
	queued(1)
	wait("flood 2", 0)
	queued(2)
	// The queue is full of minimal registrations: another minimal one is
	// refused at once.
	if err := g.acquire(0); !errors.Is(err, ErrWorkBusy) {
		t.Fatalf("a minimal registration with the queue full: %v", err)
	}
	// The honest registration with 2 bits of excess displaces the last
	// flood waiter...
	wait("honest", 2)
	r := <-done
	if r.name != "flood 2" || !errors.Is(r.err, ErrWorkBusy) {
		t.Fatalf("displaced: %s %v", r.name, r.err)
	}
	queued(2)
	// ... and gets the next free slot before the older flood waiter.
	g.release()
	r = <-done
	if r.name != "honest" || r.err != nil {
		t.Fatalf("first granted: %s %v", r.name, r.err)
	}
	g.release()
	if r = <-done; r.name != "flood 1" || r.err != nil {
		t.Fatalf("then: %s %v", r.name, r.err)
	}
	if g.refused.Load() != 2 {
		t.Fatalf("%d refused", g.refused.Load())
	}
	// A waiter gives up after maxWait.
	short := newWorkGate(1, 4, 20*time.Millisecond)
	if err := short.acquire(0); err != nil {
		t.Fatal(err)
	}
	if err := short.acquire(9); !errors.Is(err, ErrWorkBusy) {
		t.Fatalf("after maxWait: %v", err)
	}
	if len(short.waiters) != 0 {
		t.Fatal("a timed-out waiter stayed queued")
	}
}

// tipWatch records, as the pool hears of each accepted block, whether
// the tip that session.status reads already showed it.
type tipWatch struct {
	poolHooks
	c     *chain
	early []uint64 // heights whose tip was visible before the pool moved
}

func (w *tipWatch) blockAccepted(b *Block) {
	if w.c.tip.Load() == b {
		w.early = append(w.early, b.Height())
	}
	w.poolHooks.blockAccepted(b)
}

// The tip a client reads (session.status, to anchor a registration's
// work) is published only once admission executes above it: otherwise a
// registration anchored to the tip it was just shown is refused with
// ErrAnchor, as sessionload's setup was, now and then, under load.
func TestTipPublishedAfterPool(t *testing.T) {
	e := newEnv(t, nil)
	w := &tipWatch{poolHooks: e.vm.chain.hooks, c: e.vm.chain}
	e.vm.chain.hooks = w
	for i := 4; i < 7; i++ {
		reg, _ := e.registration(identity(t, i), 0)
		e.issue(e.signNonce(identity(t, i), 0, reg))
		e.accept()
		if h, _ := e.anchor(); h != uint64(i-3) {
			t.Fatalf("tip at height %d after %d blocks", h, i-3)
		}
	}
	if len(w.early) != 0 {
		t.Fatalf("blocks at heights %v were visible at the tip before admission moved to them", w.early)
	}
}

// statusWatch asks, as the pool hears of each accepted block (after the
// commit, before the tip is published), for the status of the block's
// transactions, and records any reported accepted above the tip.
type statusWatch struct {
	poolHooks
	v     *VM
	ahead []string
}

func (w *statusWatch) blockAccepted(b *Block) {
	tip := w.v.chain.tip.Load().Height()
	for _, t := range b.Txs {
		st, err := w.v.TxStatus(t.ID())
		if err == nil && st.Status == TxAccepted && st.Height > tip {
			w.ahead = append(w.ahead, fmt.Sprintf("%s at height %d with the tip at %d", t.ID(), st.Height, tip))
		}
	}
	w.poolHooks.blockAccepted(b)
}

// A transaction is reported accepted only once session.status shows its
// block: a client that waits for "accepted" and then reads the status (its
// height, the chain-wide counts) must find its transaction counted there.
// Before, getTxStatus read the database, written before the tip was
// published, and TestKillDuringBurst (package e2e) once read a message
// count one short right after its last message was reported accepted.
func TestTxAcceptedOnlyAtOrBelowTip(t *testing.T) {
	e := newEnv(t, nil)
	w := &statusWatch{poolHooks: e.vm.chain.hooks, v: e.vm}
	e.vm.chain.hooks = w
	for i := 4; i < 7; i++ {
		reg, _ := e.registration(identity(t, i), 0)
		id := e.signNonce(identity(t, i), 0, reg)
		e.issue(id)
		e.accept()
		st, err := e.vm.TxStatus(id.ID())
		if err != nil || st.Status != TxAccepted {
			t.Fatalf("after its block was accepted: %+v, %v", st, err)
		}
		if s, _ := e.vm.Status(); s.Height < st.Height || s.Counts.Identities < uint64(i-3) {
			t.Fatalf("status at height %d with %d identities, transaction accepted at height %d", s.Height, s.Counts.Identities, st.Height)
		}
	}
	if len(w.ahead) != 0 {
		t.Fatalf("reported accepted before session.status showed the block: %v", w.ahead)
	}
}
