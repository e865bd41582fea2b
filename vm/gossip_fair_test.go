package vm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	validators "github.com/luxfi/consensus/validator"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// Sharing of the inbound gossip budget between validators (by stake) and
// other peers (see the top of gossip.go). The budgets' clock is frozen
// (withGossipClock) so that no bucket refills during a test: every count
// below is exact, whatever the machine's speed.

// withGossipClock replaces the clock of the inbound gossip budgets.
func withGossipClock(now func() time.Time) Option { return func(v *VM) { v.gossipNow = now } }

// withValidatorRefresh sets the validator set's refresh period; negative:
// it is read only when the test calls refreshValidators.
func withValidatorRefresh(d time.Duration) Option {
	return func(v *VM) { v.validatorRefresh = d }
}

// fakeValidators is a validators.State (github.com/luxfi/consensus/validator,
// what a node and rpcchainvm's plugin server pass) whose set a test
// changes.
type fakeValidators struct {
	mu     sync.Mutex
	set    map[ids.NodeID]uint64
	err    error
	reads  int
	netIDs []ids.ID // asked for, in order
	// weightOnly reports weights in Weight with Light 0 (Light is what
	// rpcchainvm's gRPC carries; Weight its older alias).
	weightOnly bool
}

var _ validators.State = (*fakeValidators)(nil)

func newFakeValidators(set map[ids.NodeID]uint64) *fakeValidators {
	return &fakeValidators{set: set}
}

func (f *fakeValidators) setTo(set map[ids.NodeID]uint64, err error) {
	f.mu.Lock()
	f.set, f.err = set, err
	f.mu.Unlock()
}

func (f *fakeValidators) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeValidators) GetCurrentHeight(context.Context) (uint64, error) { return 7, nil }

func (f *fakeValidators) GetValidatorSet(_ context.Context, height uint64, netID ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	f.netIDs = append(f.netIDs, netID)
	if f.err != nil {
		return nil, f.err
	}
	if height != 7 {
		return nil, fmt.Errorf("height %d, want the current one", height)
	}
	out := make(map[ids.NodeID]*validators.GetValidatorOutput, len(f.set))
	for id, w := range f.set {
		o := &validators.GetValidatorOutput{NodeID: id, Light: w, Weight: w}
		if f.weightOnly {
			o.Light = 0
		}
		out[id] = o
	}
	return out, nil
}

func (f *fakeValidators) GetCurrentValidators(ctx context.Context, height uint64, netID ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	return f.GetValidatorSet(ctx, height, netID)
}

func (f *fakeValidators) GetWarpValidatorSets(context.Context, []uint64, []ids.ID) (map[ids.ID]map[uint64]*validators.WarpSet, error) {
	return nil, errors.New("not used")
}

func (f *fakeValidators) GetWarpValidatorSet(context.Context, uint64, ids.ID) (*validators.WarpSet, error) {
	return nil, errors.New("not used")
}

// ctxValidators is the consensus context's own ValidatorState interface
// (weights as plain numbers, no context argument).
type ctxValidators struct{ set map[ids.NodeID]uint64 }

var _ consensusctx.ValidatorState = ctxValidators{}

func (ctxValidators) GetChainID(ids.ID) (ids.ID, error)                { return ids.Empty, nil }
func (ctxValidators) GetNetworkID(ids.ID) (ids.ID, error)              { return ids.Empty, nil }
func (ctxValidators) GetCurrentHeight(context.Context) (uint64, error) { return 3, nil }
func (ctxValidators) GetMinimumHeight(context.Context) (uint64, error) { return 0, nil }
func (c ctxValidators) GetValidatorSet(uint64, ids.ID) (map[ids.NodeID]uint64, error) {
	return c.set, nil
}

// The node IDs of the tests.
var (
	selfID = ids.NodeID{'s', 'e', 'l', 'f'}
	valA   = ids.NodeID{'v', 'a', 'l', 'A'}
	valB   = ids.NodeID{'v', 'a', 'l', 'B'}
	valC   = ids.NodeID{'v', 'a', 'l', 'C'}
)

func sybil(i int) ids.NodeID { return ids.NodeID{'s', 'y', 'b', byte(i >> 8), byte(i)} }

// fairVM starts a VM whose chain context carries this node's ID and the
// given validator state (none: state nil), with a frozen gossip clock and
// the validator set read once, by hand.
func fairVM(t *testing.T, state interface{}, nodeCfg string) *env {
	t.Helper()
	frozen := newTestClock()
	clock := newTestClock()
	v := New(WithClock(clock.Now), withGossipClock(frozen.Now), withValidatorRefresh(-1))
	chainCtx := &consensusctx.Context{ChainID: fairChainID, NodeID: selfID, ValidatorState: state}
	// Room for 40 channels an author (the default burst is 10).
	genesis := genesisJSON(t, map[string]any{"rateLimits": map[string]any{"channels": map[string]any{"burst": 100, "refillSeconds": 1}}},
		identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3))
	if err := v.Initialize(ctx, chainCtx, memdb.New(), genesis, nil, []byte(nodeCfg), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Shutdown(context.Background()) })
	v.gossip.refreshValidators(ctx)
	return &env{t: t, vm: v, clock: clock}
}

// fairChainID is the chain of fairVM.
var fairChainID = ids.ID{'f', 'a', 'i', 'r'}

// junkGossip is a message of n real-size entries that parse and pass the
// checks that need no state, distinct, by an identity the chain does not
// know: what a flood must send to count against the budgets without
// silencing its node ID (entries that do not parse, or one entry twice,
// silence it), refused at admission before any signature is verified.
// Its signature's tail varies per entry (variants), so on the wire it
// compresses to little. For fairVM's chain.
func junkGossip(t testing.TB, n int) []byte {
	msg, _ := strangerGossip(t, &tx.SetRequestPolicy{Policy: tx.RequestsFromContacts}, n)
	return msg
}

// strangerGossip is one gossip message of n distinct variants (variants)
// of payload signed by an identity fairVM's chain does not know, and the
// size of each entry.
func strangerGossip(t testing.TB, payload tx.Payload, n int) (msg []byte, entryBytes int) {
	t.Helper()
	stranger := vmtest.Identities(9, 1)[0]
	base, err := tx.Sign(stranger, fairChainID, 1, payload)
	if err != nil {
		t.Fatal(err)
	}
	vs := variants(t, base, n)
	raws := make([][]byte, n)
	for i, v := range vs {
		raws[i] = v.Bytes()
	}
	msgs := encodeGossip(raws, MaxGossipMessageBytes)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	return msgs[0], len(raws[0])
}

// validTxs signs n transactions of author with consecutive nonces from
// its next one.
func validTxs(t testing.TB, e *env, author *crypto.Identity, n int) []*tx.Tx {
	t.Helper()
	next, err := e.vm.NextNonce(sid(t, author))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*tx.Tx, n)
	for i := range out {
		out[i] = e.signNonce(author, next+uint64(i), &tx.CreateChannel{Name: fmt.Sprintf("fair-%d", i)})
	}
	return out
}

// send delivers msg from peer n times and returns how many of its entries
// were throttled.
func send(t testing.TB, e *env, peer ids.NodeID, msg []byte, n int) uint64 {
	t.Helper()
	before := e.vm.GossipStats().TxsThrottled
	for range n {
		if err := e.vm.Gossip(ctx, peer, msg); err != nil {
			t.Fatal(err)
		}
	}
	return e.vm.GossipStats().TxsThrottled - before
}

// flood sends one junk message from each of the node IDs sybil(from) ..
// sybil(to-1).
func flood(t testing.TB, e *env, junk []byte, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := e.vm.Gossip(ctx, sybil(i), junk); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGossipFairSybilsCannotStarveValidators: 1,000 node IDs flood
// real-size junk, twice over, more than the whole total budget (140,000
// entries against 65,536 a second), while three validators of equal stake
// gossip valid transactions before, between and after the flood's waves.
// Every validator transaction is admitted and none is throttled; the
// junk gets exactly the shared part (half the total) and no more. Before
// the sharing, the total budget went to whoever came first: the flood.
func TestGossipFairSybilsCannotStarveValidators(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 100, valB: 100, valC: 100, selfID: 1000})
	e := fairVM(t, state, `{}`)
	if st := e.vm.GossipStats(); st.Validators != 3 {
		t.Fatalf("validators %d, want 3 (this node left out)", st.Validators)
	}
	const sybils, perMessage = 1000, 70 // 70 × 3,388 bytes: under 256 KiB
	junk := junkGossip(t, perMessage)
	const shared = DefaultGossipTxsPerSecond * (100 - DefaultGossipValidatorPercent) / 100

	txsA := validTxs(t, e, identity(t, 0), 40)
	txsB := validTxs(t, e, identity(t, 1), 40)
	txsC := validTxs(t, e, identity(t, 2), 40)

	flood(t, e, junk, 0, sybils/2)
	gossipAll(t, e, valA, txsA)
	flood(t, e, junk, sybils/2, sybils)
	gossipAll(t, e, valB, txsB)
	flood(t, e, junk, 0, sybils) // the same IDs again
	gossipAll(t, e, valC, txsC)

	st := e.vm.GossipStats()
	for _, x := range append(append(txsA, txsB...), txsC...) {
		if !e.vm.pool.mempool.Has(x.ID()) {
			t.Fatalf("a validator's transaction was not admitted: %+v", st)
		}
	}
	const junkSent = 2 * sybils * perMessage
	if st.TxsAdmitted != 120 || st.TxsReceivedValidators != 120 || st.TxsThrottledValidators != 0 {
		t.Fatalf("validators: %+v, want 120 received and admitted, none throttled", st)
	}
	if st.TxsThrottled != junkSent-shared {
		t.Fatalf("throttled %d, want %d (the junk beyond the shared part %d): %+v", st.TxsThrottled, junkSent-shared, shared, st)
	}
	if st.TxsRefused != shared {
		t.Fatalf("refused %d, want the %d junk entries the shared part let through", st.TxsRefused, shared)
	}
}

// TestGossipFairStakeRatio: a validator with 3× the stake gets 3× the
// reserved budget, once the shared part is taken by a flood; a validator
// with a negligible stake still gets the floor (a fifth of an equal share).
func TestGossipFairStakeRatio(t *testing.T) {
	const total = 4096
	cfg := fmt.Sprintf(`{"gossipTxsPerSecond": %d}`, total)
	e := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{valA: 1_000, valB: 3_000, valC: 1}), cfg)
	junk := junkGossip(t, 70)
	flood(t, e, junk, 0, 40) // 2,800 > the shared part (2,048)
	if got := send(t, e, sybil(999), junk, 1); got != 70 {
		t.Fatalf("shared part not exhausted: %d of 70 throttled", got)
	}
	const sent = 60 * 70 // more than any reserve
	lookedAt := func(id ids.NodeID) uint64 { return sent - send(t, e, id, junk, 60) }
	a, b, c := lookedAt(valA), lookedAt(valB), lookedAt(valC)
	// The validator part is 2,048 a second. valC's weight is raised to a
	// quarter of the mean, (4,001/3)/4: rates 2048 × w / (4,000 + 333.4).
	if a == 0 || b != 3*a && b != 3*a+1 && b != 3*a+2 {
		t.Fatalf("looked at: A %d, B %d (3× the stake): want B = 3A (±2 for whole tokens)", a, b)
	}
	const part = total * DefaultGossipValidatorPercent / 100
	if floor := uint64(part / (5 * 3)); c < floor {
		t.Fatalf("looked at from the small validator: %d, below the floor %d", c, floor)
	}
	if a+b+c > part {
		t.Fatalf("validators took %d, more than the validator part %d", a+b+c, part)
	}
	t.Logf("looked at: A %d, B %d, C %d of %d", a, b, c, part)
}

// TestGossipFairNoValidatorState: without validator information the
// budget is one total shared first come, first served, as before: no
// validator state, a state whose set is empty (luxd v1.22.75 passes one),
// a state that fails, or gossipValidatorPercent 0 (the state is then not
// even read). The flood takes the whole total and a peer's valid
// transaction is throttled.
func TestGossipFairNoValidatorState(t *testing.T) {
	failing := newFakeValidators(nil)
	failing.err = errors.New("unavailable")
	unread := newFakeValidators(map[ids.NodeID]uint64{valA: 1})
	for _, c := range []struct {
		name  string
		state interface{}
		cfg   string
	}{
		{"nil", nil, `{"gossip": false}`},
		{"empty set", newFakeValidators(map[ids.NodeID]uint64{}), `{"gossip": false}`},
		{"only this node", newFakeValidators(map[ids.NodeID]uint64{selfID: 5}), `{"gossip": false}`},
		{"failing", failing, `{"gossip": false}`},
		{"unknown type", struct{}{}, `{"gossip": false}`},
		{"percent 0", unread, `{"gossipValidatorPercent": 0}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			const total = 8192
			e := fairVM(t, c.state, fmt.Sprintf(`{"gossipTxsPerSecond": %d, %s`, total, c.cfg[1:]))
			if st := e.vm.GossipStats(); st.Validators != 0 {
				t.Fatalf("validators %d", st.Validators)
			}
			junk := junkGossip(t, 64)
			flood(t, e, junk, 0, total/64) // the whole total, exactly
			st := e.vm.GossipStats()
			if st.TxsThrottled != 0 || st.TxsRefused != total {
				t.Fatalf("the total was not all available to the first comers: %+v", st)
			}
			good := validTxs(t, e, identity(t, 0), 1)
			gossipAll(t, e, valA, good)
			if st := e.vm.GossipStats(); st.TxsThrottled != 1 || st.TxsThrottledValidators != 0 || st.TxsAdmitted != 0 {
				t.Fatalf("after the total is spent: %+v, want the transaction throttled", st)
			}
		})
	}
	if failing.readCount() == 0 || failing.netIDs[0] != ids.Empty {
		t.Fatalf("the failing state was not read for the primary network: %d reads, %v", failing.readCount(), failing.netIDs)
	}
	if unread.readCount() != 0 {
		t.Fatalf("gossipValidatorPercent 0: the state was read %d times", unread.readCount())
	}
}

// TestGossipFairRefresh: a change of the validator set is picked up at
// the next reading: a node that joins gets a reserve (its gossip goes
// through a flood that throttled it before), one that leaves loses it; a
// failed reading keeps the set in use.
func TestGossipFairRefresh(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1})
	e := fairVM(t, state, `{}`)
	junk := junkGossip(t, 70)
	flood(t, e, junk, 0, 1000) // 70,000: more than the total

	txsC := validTxs(t, e, identity(t, 2), 2)
	gossipAll(t, e, valC, txsC[:1])
	if st := e.vm.GossipStats(); st.TxsAdmitted != 0 || st.TxsThrottled == 0 {
		t.Fatalf("a non-validator's transaction went through the flood: %+v", st)
	}

	state.setTo(map[ids.NodeID]uint64{valB: 1, valC: 1}, nil) // C joins, A leaves
	e.vm.gossip.refreshValidators(ctx)
	if st := e.vm.GossipStats(); st.Validators != 2 {
		t.Fatalf("validators %d after the change", st.Validators)
	}
	before := e.vm.GossipStats()
	gossipAll(t, e, valC, txsC)
	if st := e.vm.GossipStats(); st.TxsAdmitted != 2 || st.TxsThrottled != before.TxsThrottled {
		t.Fatalf("the new validator's transactions: %+v, want both admitted", st)
	}
	txsA := validTxs(t, e, identity(t, 0), 1)
	gossipAll(t, e, valA, txsA)
	if st := e.vm.GossipStats(); st.TxsThrottled != before.TxsThrottled+1 || e.vm.pool.mempool.Has(txsA[0].ID()) {
		t.Fatalf("the validator that left kept its reserve: %+v", st)
	}

	// A failed reading changes nothing.
	state.setTo(nil, errors.New("unavailable"))
	e.vm.gossip.refreshValidators(ctx)
	if st := e.vm.GossipStats(); st.Validators != 2 || st.ValidatorRefreshErrors != 1 {
		t.Fatalf("after a failed reading: %+v", st)
	}
}

// TestGossipFairRefreshLoop: the set is read in the background at start
// and again every period, without any message.
func TestGossipFairRefreshLoop(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1})
	v := New(withValidatorRefresh(5 * time.Millisecond))
	netID := ids.ID{'n', 'e', 't'}
	chainCtx := &consensusctx.Context{NodeID: selfID, ValidatorState: state}
	if err := v.Initialize(ctx, chainCtx, memdb.New(), gossipGenesis(t), nil, []byte(fmt.Sprintf(`{"gossipValidatorNetID": %q}`, netID)), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Shutdown(context.Background()) })
	eventually(t, "the first reading", 5*time.Second, func() bool { return v.GossipStats().Validators == 1 })
	state.setTo(map[ids.NodeID]uint64{valA: 1, valB: 2, valC: 3}, nil)
	eventually(t, "a later reading", 5*time.Second, func() bool { return v.GossipStats().Validators == 3 })
	state.mu.Lock()
	asked := state.netIDs[0]
	state.mu.Unlock()
	if asked != netID {
		t.Fatalf("asked for net %s, want the configured %s", asked, netID)
	}
}

// TestGossipFairPenaltyTakesReserve: a validator that relays a forged
// signature loses its reserved budget for gossipPenalty, as any peer its
// per-peer budget.
func TestGossipFairPenaltyTakesReserve(t *testing.T) {
	e, _ := penalizeAfterFlood(t, newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1}))
	before := e.vm.GossipStats()
	good := validTxs(t, e, identity(t, 0), 1)
	gossipAll(t, e, valA, good)
	if st := e.vm.GossipStats(); st.TxsThrottledValidators != before.TxsThrottledValidators+1 || st.TxsAdmitted != 0 {
		t.Fatalf("a penalized validator was listened to: %+v", st)
	}
	gossipAll(t, e, valB, validTxs(t, e, identity(t, 1), 1))
	if st := e.vm.GossipStats(); st.TxsAdmitted != 1 {
		t.Fatalf("the other validator was throttled: %+v", st)
	}
}

// TestGossipFairContextValidatorState: the consensus context's own
// ValidatorState interface (plain weights) works as well as a node's.
func TestGossipFairContextValidatorState(t *testing.T) {
	e := fairVM(t, ctxValidators{set: map[ids.NodeID]uint64{valA: 1, valB: 3, selfID: 9}}, `{"gossipTxsPerSecond": 4096}`)
	if st := e.vm.GossipStats(); st.Validators != 2 {
		t.Fatalf("validators %d, want 2", st.Validators)
	}
	junk := junkGossip(t, 70)
	flood(t, e, junk, 0, 40)
	a := 70*40 - send(t, e, valA, junk, 40)
	b := 70*40 - send(t, e, valB, junk, 40)
	if a != 512 || b != 1536 {
		t.Fatalf("looked at: A %d, B %d; want 512 and 1536 (2,048 split 1:3)", a, b)
	}
}

// TestGossipFairRates checks reservedRates: the rates sum to the part,
// keep the stakes' ratios above the floor, give at least a fifth of an
// equal share, leave out this node and zero weights (unless all are
// zero), keep at most maxGossipValidators (the largest), and do not
// depend on the map's order.
func TestGossipFairRates(t *testing.T) {
	const part = 32768.0
	rates := func(set map[ids.NodeID]uint64) map[ids.NodeID]float64 {
		t.Helper()
		shares := reservedRates(set, selfID, part)
		out := make(map[ids.NodeID]float64, len(shares))
		sum := 0.0
		for i, s := range shares {
			if i > 0 && shares[i-1].id.Compare(s.id) >= 0 {
				t.Fatalf("not in node ID order")
			}
			out[s.id] = s.rate
			sum += s.rate
		}
		if len(shares) > 0 && math.Abs(sum-part) > 1e-6 {
			t.Fatalf("rates sum to %v, want %v", sum, part)
		}
		return out
	}
	r := rates(map[ids.NodeID]uint64{valA: 1, valB: 3, valC: 0, selfID: 100})
	if len(r) != 2 || r[valB] != 3*r[valA] {
		t.Fatalf("rates %v: want A and B only, B = 3A", r)
	}
	r = rates(map[ids.NodeID]uint64{valA: 0, valB: 0})
	if len(r) != 2 || r[valA] != r[valB] {
		t.Fatalf("all weights 0: %v, want equal shares", r)
	}
	r = rates(map[ids.NodeID]uint64{valA: 1, valB: math.MaxUint64 / 2, valC: math.MaxUint64 / 2})
	if r[valA] < part/(5*3) {
		t.Fatalf("small stake: %v, below the floor %v", r[valA], part/15)
	}
	if len(rates(map[ids.NodeID]uint64{selfID: 1})) != 0 {
		t.Fatal("this node alone is a validator set")
	}

	big := make(map[ids.NodeID]uint64, maxGossipValidators+10)
	for i := range maxGossipValidators + 10 {
		big[ids.NodeID{'b', byte(i >> 8), byte(i)}] = uint64(i + 1)
	}
	r = rates(big)
	if len(r) != maxGossipValidators {
		t.Fatalf("%d validators kept, want %d", len(r), maxGossipValidators)
	}
	for i := range 10 { // the 10 smallest stakes are out
		if _, ok := r[ids.NodeID{'b', byte(i >> 8), byte(i)}]; ok {
			t.Fatalf("validator %d of the smallest stakes kept", i)
		}
	}
	first := reservedRates(big, selfID, part)
	for range 5 {
		again := reservedRates(big, selfID, part)
		for i := range first {
			if first[i] != again[i] {
				t.Fatalf("rates differ between runs at %d", i)
			}
		}
	}
}

// TestGossipFairWeightAlias: a validators.State that fills only Weight
// (Light 0) is read by Weight.
func TestGossipFairWeightAlias(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 3})
	state.weightOnly = true
	set, err := validatorSourceOf(state, ids.Empty).validatorSet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if set[valA] != 1 || set[valB] != 3 {
		t.Fatalf("weights %v", set)
	}
}

// TestGossipFairValidatorOverflow: a validator sending more than its
// reserve, when nobody floods, takes the rest from the shared part as
// any peer does, under its own per-peer budget: it is not throttled at
// its reserve (which, with many validators, is far below the per-peer
// budget an honest validator had before the sharing).
func TestGossipFairValidatorOverflow(t *testing.T) {
	// Total 4,096: 1,024 reserved for each of A and B, 2,048 shared; a
	// peer may take 1,000 of the shared part.
	e := fairVM(t, newFakeValidators(map[ids.NodeID]uint64{valA: 1, valB: 1}), `{"gossipTxsPerSecond": 4096, "gossipPeerTxsPerSecond": 1000}`)
	junk := junkGossip(t, 70)
	if got := 70*40 - send(t, e, valA, junk, 40); got != 1024+1000 {
		t.Fatalf("validator A looked at %d, want its reserve and its per-peer share of the rest (2,024)", got)
	}
	// What A left of the shared part goes to others, first come first
	// served, each under its per-peer budget.
	x := 70*20 - send(t, e, sybil(1), junk, 20)
	y := 70*20 - send(t, e, sybil(2), junk, 20)
	if x != 1000 || y != 48 {
		t.Fatalf("others looked at %d and %d, want 1,000 and 48", x, y)
	}
	if st := e.vm.GossipStats(); st.TxsThrottledValidators != 70*40-2024 {
		t.Fatalf("%+v", st)
	}
}

// TestGossipFairPenaltySurvivesJoin: a peer penalized for a forged
// signature that becomes a validator does not shed the penalty through
// its new reserved budget.
func TestGossipFairPenaltySurvivesJoin(t *testing.T) {
	state := newFakeValidators(map[ids.NodeID]uint64{valA: 1})
	e := fairVM(t, state, `{}`)
	relayForgery(t, e, valC)
	state.setTo(map[ids.NodeID]uint64{valA: 1, valC: 1}, nil)
	e.vm.gossip.refreshValidators(ctx)
	gossipAll(t, e, valC, validTxs(t, e, identity(t, 2), 1))
	if st := e.vm.GossipStats(); st.Validators != 2 || st.TxsThrottledValidators != 1 || st.TxsAdmitted != 0 {
		t.Fatalf("the penalized peer, now a validator, was listened to: %+v", st)
	}
}

// TestGossipFairNodeConfig: the two settings, their default and bounds.
func TestGossipFairNodeConfig(t *testing.T) {
	c, err := ParseNodeConfig(nil)
	if err != nil || c.GossipValidatorPercent != DefaultGossipValidatorPercent || c.GossipValidatorNetID != ids.Empty {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	netID := ids.ID{'n', 'e', 't'}
	c, err = ParseNodeConfig([]byte(fmt.Sprintf(`{"gossipValidatorPercent": 0, "gossipValidatorNetID": %q}`, netID)))
	if err != nil || c.GossipValidatorPercent != 0 || c.GossipValidatorNetID != netID {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, bad := range []string{`{"gossipValidatorPercent": -1}`, `{"gossipValidatorPercent": 101}`, `{"gossipValidatorNetID": "nope"}`} {
		if _, err := ParseNodeConfig([]byte(bad)); !errors.Is(err, ErrBadNodeConfig) {
			t.Fatalf("%s: %v, want ErrBadNodeConfig", bad, err)
		}
	}
}

// relayForgery has peer relay two transactions with a forged signature
// and checks that it was penalized.
func relayForgery(t *testing.T, e *env, peer ids.NodeID) {
	t.Helper()
	author := sid(t, identity(t, 3))
	nonce, err := e.vm.NextNonce(author)
	if err != nil {
		t.Fatal(err)
	}
	gossipAll(t, e, peer, forged(t, e, []crypto.SessionID{author}, nonce, 2))
	if st := e.vm.GossipStats(); st.PeersPenalized != 1 {
		t.Fatalf("not penalized: %+v", st)
	}
}
