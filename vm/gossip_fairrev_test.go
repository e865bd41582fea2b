package vm

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	validators "github.com/luxfi/consensus/validator"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	"github.com/luxfi/node/utils/compression"

	"github.com/luxfi/session/vm/tx"
)

// Adversarial review of the sharing of the inbound gossip budget between
// validators and other peers (wp-fairrev). The four findings' tests
// demonstrated the problems on the code as reviewed (each failed there);
// they now check the answers. The other tests PIN properties that held.
//
// Findings: 1 (high) TestGossipFairRevCompressedFloodIsCheap; 2 (low)
// TestGossipFairRevShutdownBlockedByNodeState; 3 (low)
// TestGossipFairRevPenaltyShortenedByRateChange; 4 (note)
// TestGossipFairRevZeroWeightsWithPositiveSelf. Notes pinned as they are:
// 5 TestGossipFairRevFloorBoundsSybilValidators, 6
// TestGossipFairRevPercent100ShutsOutNonValidators, 7
// TestGossipFairRevBurstsOfSmallRates. The other tests pin properties
// that hold.

// fairrevClock gives e's gossip budgets a clock the test advances,
// starting where fairVM's frozen clock stands (the buckets' last refill).
func fairrevClock(e *env) interface {
	Now() time.Time
	Advance(time.Duration)
} {
	c := newTestClock()
	e.vm.gossip.now = c.Now
	return c
}

// lookedAt sends msg from peer once and returns how many of its n
// entries were looked at (not throttled).
func lookedAt(t *testing.T, e *env, peer ids.NodeID, msg []byte, n int) uint64 {
	t.Helper()
	return uint64(n) - send(t, e, peer, msg, 1)
}

// Finding 1 (high), answered. The cost the spec gave for a flood that
// takes the shared part S (B ≥ S × 3,388 ≈ 111 MB/s) assumed each entry
// costs the attacker its size on the wire. It does not: luxd v1.22.75
// (message/messages.go, unmarshal) decompresses any zstd-compressed
// message a peer sends, up to 2 MiB, and its inbound throttler
// (network/peer/peer.go) counts the wire length, before decompression.
// Entries of zeros compress by more than three orders of magnitude.
//
// The answer (gossip.go, receive): an entry no honest relay sends (one
// that does not parse or fails the checks that need no state, or the
// same transaction twice in a message) refuses its message and silences
// the node ID for gossipPenalty, so such junk costs one message (at most
// ~600 entries) per node ID per 30 s: taking S needs ~55 new node IDs
// (peer connections) a second. What stays cheap on the wire is junk that
// parses and passes those checks (distinct transactions of an identity the
// chain does not know, their signatures varied by a few bytes): this test
// measures what it costs compressed, and the spec states it. The VM cannot
// price entries by wire bytes; the host counts those.
func TestGossipFairRevCompressedFloodIsCheap(t *testing.T) {
	const entries = 600                              // 600 × ~3,390 bytes: under 2 MiB with the p2p envelope
	z, err := compression.NewZstdCompressor(2 << 20) // luxd: constants.DefaultMaxMessageSize
	if err != nil {
		t.Fatal(err)
	}
	wireSize := func(msg []byte) float64 {
		t.Helper()
		wire, err := z.Compress(msg)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := z.Decompress(wire); err != nil || len(back) != len(msg) {
			t.Fatalf("round trip: %d bytes, %v", len(back), err)
		}
		return float64(len(wire)) / entries
	}
	zeros := encodeGossip(func() [][]byte {
		raws := make([][]byte, entries)
		for i := range raws {
			raws[i] = make([]byte, minGossipTx)
		}
		return raws
	}(), MaxGossipMessageBytes)[0]
	crafted := junkGossip(t, entries)
	const shared = DefaultGossipTxsPerSecond * (100 - DefaultGossipValidatorPercent) / 100
	zerosPer, craftedPer := wireSize(zeros), wireSize(crafted)
	t.Logf("on the wire, compressed: zeros %.2f bytes an entry, crafted transactions %.2f; S (%d a second) at the crafted cost: %.0f KB/s",
		zerosPer, craftedPer, shared, craftedPer*shared/1000)
	if craftedPer >= minGossipTx/10 {
		t.Logf("crafted junk no longer compresses well: update the spec's figure")
	}

	// Zeros silence their node ID at the first message: its next ones are
	// not looked at for gossipPenalty.
	e := fairVM(t, nil, `{}`)
	peer := sybil(1)
	if err := e.vm.Gossip(ctx, peer, zeros); err != nil {
		t.Fatal(err)
	}
	if st := e.vm.GossipStats(); st.PeersPenalized != 1 || st.TxsRefused != entries {
		t.Fatalf("zeros did not silence their peer: %+v", st)
	}
	if got := lookedAt(t, e, peer, crafted, entries); got != 0 {
		t.Fatalf("a silenced node ID had %d entries looked at", got)
	}
	// Crafted junk counts against the budgets and is refused without
	// silencing (an honest relay can send a transaction whose author this
	// node does not know yet), and without a signature verification.
	other := sybil(2)
	if got := lookedAt(t, e, other, crafted, entries); got != entries {
		t.Fatalf("crafted junk: %d of %d entries looked at", got, entries)
	}
	if st := e.vm.GossipStats(); st.PeersPenalized != 1 {
		t.Fatalf("crafted junk silenced its peer: %+v", st)
	}
}

// blockingValidators is a validators.State whose GetValidatorSet blocks,
// ignoring its context, until released (an in-process state behind a
// lock held elsewhere).
type blockingValidators struct {
	*fakeValidators
	entered, release chan struct{}
}

func newBlockingValidators() *blockingValidators {
	return &blockingValidators{fakeValidators: newFakeValidators(nil), entered: make(chan struct{}, 1), release: make(chan struct{})}
}

func (b *blockingValidators) GetValidatorSet(context.Context, uint64, ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return nil, nil
}

// blockingCtxValidators is the consensus context's ValidatorState, blocking
// the same way.
type blockingCtxValidators struct {
	ctxValidators
	entered, release chan struct{}
}

func (b blockingCtxValidators) GetValidatorSet(uint64, ids.ID) (map[ids.NodeID]uint64, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return nil, nil
}

// shutdownWhileReading starts a VM whose validator state blocks, waits
// until the refresh loop is in the reading, and reports whether Shutdown
// returned within two seconds (the state is released afterwards).
func shutdownWhileReading(t *testing.T, state interface{}, entered, release chan struct{}) bool {
	t.Helper()
	v := New(withValidatorRefresh(time.Hour))
	chainCtx := &consensusctx.Context{NodeID: selfID, ValidatorState: state}
	if err := v.Initialize(ctx, chainCtx, memdb.New(), gossipGenesis(t), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the refresh loop never read the validator set")
	}
	done := make(chan struct{})
	go func() {
		_ = v.Shutdown(context.Background())
		close(done)
	}()
	returned := false
	select {
	case <-done:
		returned = true
	case <-time.After(2 * time.Second):
	}
	close(release)
	released = true
	<-done
	return returned
}

// Finding 2 (low), fixed (asyncValidators runs every reading on its own
// goroutine). Was: contextValidators runs the reading on
// its own goroutine "so that a reading that never returns does not hold
// the refresh loop (and Shutdown) past its timeout"; nodeValidators (a
// node's validators.State, the in-process case) calls the state directly
// and relies on it honouring the context. A state that blocks without
// looking at the context (behind a lock held elsewhere) holds
// refreshValidators past validatorQueryTimeout and past cancellation, so
// VM.Shutdown (which waits for the refresh loop) does not return until
// the state does. rpcchainvm's gRPC client honours the context; an
// in-process state need not.
func TestGossipFairRevShutdownBlockedByNodeState(t *testing.T) {
	b := newBlockingValidators()
	if !shutdownWhileReading(t, b, b.entered, b.release) {
		t.Fatal("Shutdown did not return while a validators.State reading ignored its cancelled context")
	}
}

// PINS (passes): the consensus context's ValidatorState, blocking the same
// way, does not hold Shutdown (its reading runs on its own goroutine; that
// goroutine is left behind until the state returns, at most one).
func TestGossipFairRevShutdownNotBlockedByContextState(t *testing.T) {
	b := blockingCtxValidators{entered: make(chan struct{}, 1), release: make(chan struct{})}
	if !shutdownWhileReading(t, b, b.entered, b.release) {
		t.Fatal("Shutdown did not return while a context ValidatorState reading blocked")
	}
}

// penalizeAfterFlood starts a VM with set, takes the whole shared part
// with a flood, and has valA relay a forged signature.
func penalizeAfterFlood(t *testing.T, state *fakeValidators) (*env, []byte) {
	t.Helper()
	e := fairVM(t, state, `{}`)
	junk := junkGossip(t, 70)
	flood(t, e, junk, 0, 1000) // 70,000: more than the total
	relayForgery(t, e, valA)
	return e, junk
}

// PINS (passes): a penalized validator stays silent for the penalty across
// a refresh that keeps its rate (setRate keeps a debt), and is heard again
// once it is over.
func TestGossipFairRevPenaltyKeptAcrossRefresh(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1_000_000})
	e, junk := penalizeAfterFlood(t, state)
	clock := fairrevClock(e)
	clock.Advance(7 * time.Second)
	e.vm.gossip.refreshValidators(ctx) // the same set
	if got := lookedAt(t, e, valA, junk, 70); got != 0 {
		t.Fatalf("7 s into its penalty, the same set: %d entries of the validator looked at", got)
	}
	clock.Advance(24 * time.Second) // 31 s
	if got := lookedAt(t, e, valA, junk, 70); got == 0 {
		t.Fatal("the penalty did not end")
	}
}

// Finding 3 (low), fixed (a penalty is a deadline, silentUntil, not a
// debt in tokens). Was: A penalty is a debt of 30 s of the
// reserved bucket's rate at the time of the penalty; a refresh that
// changes the rate (setRate keeps the debt in tokens) scales what is left
// of it by old rate / new rate. A validator with a small stake (rate
// 3,641 a second here) whose rate rises at a refresh (a large validator
// leaves: 16,384) is heard again after 30 × 3,641 / 16,384 ≈ 6.7 s, not
// 30 s; the reverse (a rate that falls) lengthens it. Honest validators
// are not penalized; this is only a shorter silence for a misbehaving one
// when the set changes under it.
func TestGossipFairRevPenaltyShortenedByRateChange(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1_000_000})
	e, junk := penalizeAfterFlood(t, state)
	clock := fairrevClock(e)
	state.setTo(map[ids.NodeID]uint64{valA: 1, valC: 1}, nil) // B leaves: A's rate 3,641 → 16,384
	e.vm.gossip.refreshValidators(ctx)
	clock.Advance(7 * time.Second)
	if got := lookedAt(t, e, valA, junk, 70); got != 0 {
		t.Fatalf("7 s into its 30 s penalty, after its rate rose: %d entries of the validator looked at", got)
	}
}

// Finding 4 (note), fixed ("all are 0" is over the whole set). Was: "Weight 0 is not a validator, unless
// all are 0 (then each counts 1)" (LLM.md, reservedRates' comment): the
// test of "all" runs after this node is left out, so a set where only
// this node has a positive weight makes every zero-weight node a
// validator with an equal share.
func TestGossipFairRevZeroWeightsWithPositiveSelf(t *testing.T) {
	shares := reservedRates(map[ids.NodeID]uint64{selfID: 10, valA: 0, valB: 0}, selfID, 32768)
	if len(shares) != 0 {
		t.Fatalf("%d zero-weight nodes given a reserve (%v) while a weight in the set is positive", len(shares), shares)
	}
}

// PINS (passes), note 5: the weight floor is bounded. Validators with a
// negligible stake (a Sybil operator's minimum-stake validators) can,
// through the floor (a quarter of the mean), take at most a fifth of the
// validator part in all, however many they are; the honest stake keeps
// at least four fifths, and every validator at least V / (5n).
func TestGossipFairRevFloorBoundsSybilValidators(t *testing.T) {
	const part = 32768.0
	honest := ids.NodeID{'h'}
	for _, sybils := range []int{1, 10, 100, 1000, maxGossipValidators - 1, maxGossipValidators + 100} {
		set := map[ids.NodeID]uint64{honest: 1_000_000_000, selfID: 5}
		for i := range sybils {
			set[sybil(i)] = 1
		}
		shares := reservedRates(set, selfID, part)
		n := float64(len(shares))
		var mine, sum float64
		for _, s := range shares {
			sum += s.rate
			if s.id == honest {
				mine = s.rate
			}
			if s.rate < part/(5*n)*(1-1e-9) {
				t.Fatalf("%d sybils: %v gets %v, below V/(5n) = %v", sybils, s.id, s.rate, part/(5*n))
			}
		}
		if math.Abs(sum-part) > 1e-6 || mine < 0.8*part*(1-1e-9) {
			t.Fatalf("%d sybils: the honest stake keeps %v of %v (sum %v), want at least four fifths", sybils, mine, part, sum)
		}
	}
}

// PINS (passes): a validator that floods (with Sybils beside it, and a
// refresh in the middle that changes its own stake and the shared rate)
// takes nothing from another validator's reserve: the honest validator
// is looked at exactly its reserved bucket (one second of its rate).
func TestGossipFairRevValidatorCannotTakeAnothersReserve(t *testing.T) {
	const total = 4096
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1})
	e := fairVM(t, state, fmt.Sprintf(`{"gossipTxsPerSecond": %d}`, total))
	junk := junkGossip(t, 70)
	send(t, e, valA, junk, 100) // its reserve, and S under its per-peer budget
	flood(t, e, junk, 0, 100)
	state.setTo(map[ids.NodeID]uint64{valA: 3, valB: 1}, nil) // A's stake triples
	e.vm.gossip.refreshValidators(ctx)
	send(t, e, valA, junk, 100)
	flood(t, e, junk, 100, 200)
	// B's reserve: 2,048 × 1 / 4 = 512 a second, its bucket full (the
	// frozen clock: no refill; setRate kept it at 512).
	if got := 70*20 - send(t, e, valB, junk, 20); got != 512 {
		t.Fatalf("the honest validator was looked at %d times, want its whole reserve 512", got)
	}
}

// Note 6. PINS (passes): gossipValidatorPercent 100 (allowed by the
// config) leaves a shared part of 0: with validators known, no entry of
// any other node ID (API nodes included) is ever looked at, and a
// validator gets its reserve and nothing more. The spec's formulas imply
// it (S = T − V) but do not say it.
func TestGossipFairRevPercent100ShutsOutNonValidators(t *testing.T) {
	e := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{valA: 1}), `{"gossipTxsPerSecond": 4096, "gossipValidatorPercent": 100}`)
	junk := junkGossip(t, 70)
	if got := lookedAt(t, e, sybil(1), junk, 70); got != 0 {
		t.Fatalf("a non-validator was looked at %d times", got)
	}
	clock := fairrevClock(e)
	clock.Advance(time.Hour)
	if got := lookedAt(t, e, sybil(2), junk, 70); got != 0 {
		t.Fatalf("an hour later, a non-validator was looked at %d times", got)
	}
	if got := 70*100 - send(t, e, valA, junk, 100); got != 4096 {
		t.Fatalf("the validator was looked at %d times, want its reserve 4,096", got)
	}
}

// Note 7. PINS (passes; shows a gap in a spec sentence): a bucket whose
// rate is below 1 holds 1 token, so with many validators and a small
// validator part the reserved buckets' bursts add up to more than one
// second of the total: LLM.md's "cannot make this node look at more than
// T entries a second (plus the buckets' one second of burst)" holds for
// the rates, not for the first instant. Here T = 4,096 and 4,096
// validators: 2,048 reserved a second (0.5 each), but 4,096 entries at
// once, plus the shared part's 2,048.
func TestGossipFairRevBurstsOfSmallRates(t *testing.T) {
	const total = 4096
	set := make(map[ids.NodeID]uint64, maxGossipValidators)
	for i := range maxGossipValidators {
		set[sybil(i)] = 1
	}
	e := fairVM(t, newFakeValidators(set), fmt.Sprintf(`{"gossipTxsPerSecond": %d}`, total))
	one := junkGossip(t, 1)
	var got uint64
	for i := range maxGossipValidators {
		got += lookedAt(t, e, sybil(i), one, 1)
	}
	got += 70*40 - send(t, e, valA, junkGossip(t, 70), 40)
	if got != maxGossipValidators+total/2 {
		t.Fatalf("looked at %d at once, want %d", got, maxGossipValidators+total/2)
	}
	t.Logf("looked at %d entries at once with T = %d (rates and one second of burst: %d)", got, total, total)
}

// PINS (passes): a reading that finds the set empty (a host's transient
// empty answer) drops the reserves, but a penalized validator's per-peer
// bucket goes to the FIFO and the penalty comes back on its new reserve
// when the set does: an empty reading does not launder a penalty.
func TestGossipFairRevPenaltySurvivesEmptyReading(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1})
	e, junk := penalizeAfterFlood(t, state)
	clock := fairrevClock(e)
	state.setTo(map[ids.NodeID]uint64{}, nil)
	e.vm.gossip.refreshValidators(ctx)
	if st := e.vm.GossipStats(); st.Validators != 0 {
		t.Fatalf("validators %d after an empty reading", st.Validators)
	}
	clock.Advance(time.Second)
	state.setTo(map[ids.NodeID]uint64{valA: 1, valB: 1}, nil)
	e.vm.gossip.refreshValidators(ctx)
	clock.Advance(5 * time.Second)
	if got := lookedAt(t, e, valA, junk, 70); got != 0 {
		t.Fatalf("6 s into its penalty, after an empty reading: %d entries of the validator looked at", got)
	}
}

// PINS (passes; meant for -race): readings of the validator set applied
// while messages are received and peers penalized, on other goroutines.
// The lock order is refreshMu, then g.mu, then the FIFO's own lock; the
// receive path takes only g.mu (then the FIFO's).
func TestGossipFairRevRefreshWhileReceiving(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 2})
	e := fairVM(t, state, `{"gossipTxsPerSecond": 4096}`)
	junk := junkGossip(t, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			if i%2 == 0 {
				state.setTo(map[ids.NodeID]uint64{valA: uint64(i + 1), valC: 1, sybil(i % 7): 3}, nil)
			} else {
				state.setTo(map[ids.NodeID]uint64{valB: 1}, nil)
			}
			e.vm.gossip.refreshValidators(ctx)
		}
	}()
	for i := range 400 {
		peer := []ids.NodeID{valA, valB, valC, sybil(i % 7)}[i%4]
		if err := e.vm.Gossip(ctx, peer, junk); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			e.vm.gossip.penalize(peer, 0)
		}
	}
	<-done
	st := e.vm.GossipStats()
	if st.TxsReceived != 400*8 || st.TxsRefused+st.TxsThrottled != 400*8 {
		t.Fatalf("%+v", st)
	}
}

// PINS (passes): an attacker cannot frame an honest validator into the
// penalty (which now costs a validator its reserve): signature verdicts
// are cached by the transaction ID, a hash of the whole signed encoding,
// so a copy of an honest transaction with a bad signature, gossiped
// first by another node ID, is a different transaction and poisons
// nothing; the genuine one relayed by the validator is admitted and the
// validator is not penalized.
func TestGossipFairRevCannotFrameValidator(t *testing.T) {
	e := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1}), `{}`)
	genuine := validTxs(t, e, identity(t, 0), 2)
	bad := e.signNonce(identity(t, 5), 0, &tx.CreateChannel{Name: "s"}).Signature
	copies := make([]*tx.Tx, len(genuine))
	for i, g := range genuine {
		c, err := tx.Parse(append(append([]byte(nil), g.UnsignedBytes()...), bad...))
		if err != nil {
			t.Fatal(err)
		}
		if c.ID() == g.ID() {
			t.Fatal("a copy with another signature has the same ID")
		}
		copies[i] = c
	}
	gossipAll(t, e, sybil(1), copies)
	if st := e.vm.GossipStats(); st.PeersPenalized != 1 || st.TxsAdmitted != 0 {
		t.Fatalf("the forger: %+v, want it penalized and nothing admitted", st)
	}
	gossipAll(t, e, valA, genuine)
	st := e.vm.GossipStats()
	if st.PeersPenalized != 1 || st.TxsAdmitted != 2 || st.TxsThrottledValidators != 0 {
		t.Fatalf("the honest validator relaying the genuine transactions: %+v, want both admitted and no penalty", st)
	}
}

// TestGossipJunkSilencesItsPeer: each kind of entry no honest relay sends
// (the answer to finding 1) refuses its whole message, valid transactions
// in it included, and silences its node ID: its next message, valid, is
// not looked at. The same transactions sent properly by another node ID
// are admitted.
func TestGossipJunkSilencesItsPeer(t *testing.T) {
	e := fairVM(t, nil, `{}`)
	fairrevClock(e) // a fixed clock: the penalties do not end during the test
	good := e.sign(identity(t, 0), &tx.CreateChannel{Name: "good"})
	other := e.sign(identity(t, 1), &tx.CreateChannel{Name: "other"})
	unknownType := bytes.Clone(other.Bytes())
	unknownType[1+32] = 0xee // the type byte, after the version and the chain ID
	wrongChain, err := tx.Sign(identity(t, 2), ids.ID{'x'}, 0, &tx.CreateChannel{Name: "elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		raws [][]byte
	}{
		{"zeros", [][]byte{good.Bytes(), make([]byte, minGossipTx)}},
		{"unknown type", [][]byte{good.Bytes(), unknownType}},
		{"another chain", [][]byte{good.Bytes(), wrongChain.Bytes()}},
		{"the same transaction twice", [][]byte{good.Bytes(), other.Bytes(), good.Bytes()}},
	}
	for i, c := range cases {
		peer := sybil(100 + i)
		before := e.vm.GossipStats()
		gossipRaw(t, e, peer, c.raws)
		st := e.vm.GossipStats()
		if st.PeersPenalized != before.PeersPenalized+1 || st.TxsRefused-before.TxsRefused != uint64(len(c.raws)) || st.TxsAdmitted != 0 {
			t.Fatalf("%s: not refused whole with a penalty: %+v", c.name, st)
		}
		if got := lookedAt(t, e, peer, encodeGossip([][]byte{other.Bytes()}, MaxGossipMessageBytes)[0], 1); got != 0 {
			t.Fatalf("%s: the silenced peer's next message was looked at", c.name)
		}
	}
	gossipRaw(t, e, sybil(200), [][]byte{good.Bytes(), other.Bytes()})
	if st := e.vm.GossipStats(); st.TxsAdmitted != 2 {
		t.Fatalf("the same transactions from a well-behaved peer: %+v", st)
	}
}

// gossipRaw sends raws from peer in one message.
func gossipRaw(t *testing.T, e *env, peer ids.NodeID, raws [][]byte) {
	t.Helper()
	msgs := encodeGossip(raws, MaxGossipMessageBytes)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	if err := e.vm.Gossip(ctx, peer, msgs[0]); err != nil {
		t.Fatal(err)
	}
}
