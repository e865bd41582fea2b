package vm

import (
	"math"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/tx"
)

// bigJunkGossip is a message of n distinct entries of the largest
// ciphertext, by an identity the chain does not know: each parses and
// passes the checks that need no state (so it counts against the
// budgets, and is then refused without a penalty).
func bigJunkGossip(t *testing.T, n int) (msg []byte, entryBytes int) {
	return strangerGossip(t, &tx.SendMessage{Session: ids.ID{1}, Ciphertext: make([]byte, config.MaxCiphertextSize)}, n)
}

// TestGossipBudgetCountsBytes: the inbound budget prices an entry by its
// bytes. With a total of 120 a second (no validators: one shared
// bucket), a peer sending entries of the largest ciphertext is looked at
// 120 / cost of them, where a peer sending typical entries is looked at
// 120. Before, both were looked at 120 times, the large ones at 20 times
// the bytes.
func TestGossipBudgetCountsBytes(t *testing.T) {
	const total = 120
	cfg := `{"gossipTxsPerSecond": 120, "gossipPeerTxsPerSecond": 120}`

	small := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{}), cfg)
	junk := junkGossip(t, 70)
	if got := lookedAt(t, small, sybil(1), junk, 70) + lookedAt(t, small, sybil(1), junk, 70); got != total {
		t.Fatalf("typical entries: %d looked at, want %d", got, total)
	}

	big := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{}), cfg)
	msg, size := bigJunkGossip(t, 3)
	cost := gossipCost(size)
	if cost < 8 {
		t.Fatalf("an entry of %d bytes costs %d tokens; the largest must cost at least 8", size, cost)
	}
	var looked uint64
	for range 20 {
		looked += lookedAt(t, big, sybil(2), msg, 3)
	}
	if want := uint64(total / cost); looked != want {
		t.Fatalf("entries of %d bytes: %d looked at, want %d (%d tokens each)", size, looked, want, cost)
	}
	// The budget is spent: a typical entry from another peer waits.
	if got := lookedAt(t, big, sybil(3), junk, 70); got != uint64(total%cost) {
		t.Fatalf("after the large entries, %d typical ones looked at, want the %d tokens left", got, total%cost)
	}
}

// TestGossipBudgetEntryLargerThanBucket: an entry costing more than a
// bucket ever holds is taken when the bucket is full, leaving it in
// debt, so it is not shut out and the rate still holds: with a total of
// 4 a second, one large entry (cost ≥ 8) is looked at from a full
// bucket, the next only once the debt is repaid and the bucket full
// again (cost / 4 seconds later), and on average no more than 4 tokens'
// worth a second.
func TestGossipBudgetEntryLargerThanBucket(t *testing.T) {
	const rate = 4
	e := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{}), `{"gossipTxsPerSecond": 4, "gossipPeerTxsPerSecond": 4}`)
	clock := fairrevClock(e)
	e.vm.gossip.shared.last = clock.Now() // fairVM filled it on the wall clock
	msg, size := bigJunkGossip(t, 1)
	cost := gossipCost(size)
	if got := lookedAt(t, e, sybil(1), msg, 1); got != 1 {
		t.Fatalf("from a full bucket: %d looked at, want 1", got)
	}
	refill := time.Duration(float64(cost) / rate * float64(time.Second))
	clock.Advance(refill - 10*time.Millisecond)
	if got := lookedAt(t, e, sybil(1), msg, 1); got != 0 {
		t.Fatalf("before the debt is repaid: %d looked at, want 0", got)
	}
	clock.Advance(20 * time.Millisecond)
	if got := lookedAt(t, e, sybil(1), msg, 1); got != 1 {
		t.Fatalf("once full again: %d looked at, want 1", got)
	}
	// The average: over 90 s in steps of 0.1 s, at most (4 × 90 + 4) /
	// cost entries (the rate, and the one bucket it started with).
	const steps = 900
	var n int
	for range steps {
		clock.Advance(100 * time.Millisecond)
		n += int(lookedAt(t, e, sybil(1), msg, 1))
	}
	most := (rate*steps/10 + rate) / cost
	if n > most || n < most-2 {
		t.Fatalf("over 90 s: %d looked at, want %d or a little less (%d tokens a second, %d each)", n, most, rate, cost)
	}
}

// TestGossipPenaltyKeepsDebt: a bucket that owes for a large entry still
// owes it after a penalty's silence: the silence does not pay the debt
// (review finding: penalize set the balance to 0, so at rates under
// ~0.27 a second a peer that drew a penalty right after a large entry
// got its next one sooner than the rate allows).
func TestGossipPenaltyKeepsDebt(t *testing.T) {
	const rate, cost = 0.25, 9
	t0 := newTestClock().Now()
	b := newTokenBucket(rate, t0)
	if !b.affords(t0, cost) {
		t.Fatal("a full bucket refused an entry larger than it")
	}
	b.take(cost) // 1 − 9: owes 8
	b.penalize(t0)
	full := time.Duration(cost / rate * float64(time.Second)) // 36 s from t0
	if at := t0.Add(gossipPenalty + time.Millisecond); b.affords(at, cost) {
		t.Fatalf("the penalty (%v) ended and the debt was forgiven: tokens %v", gossipPenalty, b.tokens)
	}
	if at := t0.Add(full - time.Second); b.affords(at, cost) {
		t.Fatal("afforded before the debt was repaid")
	}
	if at := t0.Add(full + time.Millisecond); !b.affords(at, cost) {
		t.Fatalf("not afforded once full again: tokens %v", b.tokens)
	}
	if math.Abs(b.tokens-b.burst) > 1e-9 {
		t.Fatalf("tokens %v, want the burst %v", b.tokens, b.burst)
	}
}
