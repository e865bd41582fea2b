package vm

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"sync/atomic"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	validators "github.com/luxfi/consensus/validator"
	"github.com/luxfi/ids"
)

// The validator set behind the sharing of the inbound gossip budget (see
// the top of gossip.go).

// validatorBudget is the inbound budget of one validator: its reserved
// bucket, and its per-peer bucket for the shared part.
type validatorBudget struct {
	reserve *tokenBucket // rate: its share of the validator part
	peer    *tokenBucket // rate: GossipPeerTxsPerSecond
}

// validatorSource reads the chain's validator set with weights.
type validatorSource interface {
	validatorSet(ctx context.Context) (map[ids.NodeID]uint64, error)
}

// validatorSourceOf returns the source of a chain context's validator
// state, or nil when it is none of the interfaces known (nil included).
// A node's validators.State (github.com/luxfi/consensus/validator; what
// rpcchainvm's plugin server passes: its gRPC client) and the consensus
// context's own ValidatorState have different GetValidatorSet methods:
// no type is both.
func validatorSourceOf(state interface{}, netID ids.ID) validatorSource {
	switch s := state.(type) {
	case validators.State:
		if s != nil {
			return &asyncValidators{read: nodeValidators{state: s, netID: netID}.validatorSet}
		}
	case consensusctx.ValidatorState:
		if s != nil {
			return &asyncValidators{read: contextValidators{state: s, netID: netID}.validatorSet}
		}
	}
	return nil
}

// asyncValidators runs each reading on its own goroutine, so that a
// reading that never returns (a state that ignores its context, or whose
// method takes none) does not hold the refresh loop, and Shutdown, past
// the reading's timeout; at most one such reading runs at a time (a
// state that hangs for good costs one goroutine, and every later reading
// fails and is counted).
type asyncValidators struct {
	read     func(ctx context.Context) (map[ids.NodeID]uint64, error)
	inflight atomic.Bool
}

var errValidatorQueryRunning = errors.New("vm: the previous reading of the validator set has not returned")

func (s *asyncValidators) validatorSet(ctx context.Context) (map[ids.NodeID]uint64, error) {
	if !s.inflight.CompareAndSwap(false, true) {
		return nil, errValidatorQueryRunning
	}
	type result struct {
		set map[ids.NodeID]uint64
		err error
	}
	done := make(chan result, 1)
	go func() {
		set, err := s.read(ctx)
		// Cleared before the result is handed over: a reading that
		// follows at once must not find this one still running.
		s.inflight.Store(false)
		done <- result{set, err}
	}()
	select {
	case r := <-done:
		return r.set, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// nodeValidators reads a validators.State.
type nodeValidators struct {
	state validators.State
	netID ids.ID
}

func (s nodeValidators) validatorSet(ctx context.Context) (map[ids.NodeID]uint64, error) {
	height, err := s.state.GetCurrentHeight(ctx)
	if err != nil {
		return nil, err
	}
	set, err := s.state.GetValidatorSet(ctx, height, s.netID)
	if err != nil {
		return nil, err
	}
	out := make(map[ids.NodeID]uint64, len(set))
	for id, v := range set {
		if v == nil {
			continue
		}
		// Light is the weight (what rpcchainvm's gRPC server sends);
		// Weight is its older alias.
		w := v.Light
		if w == 0 {
			w = v.Weight
		}
		out[id] = w
	}
	return out, nil
}

// contextValidators reads a consensus context's ValidatorState (whose
// GetValidatorSet takes no context: asyncValidators bounds it).
type contextValidators struct {
	state consensusctx.ValidatorState
	netID ids.ID
}

func (s contextValidators) validatorSet(ctx context.Context) (map[ids.NodeID]uint64, error) {
	height, err := s.state.GetCurrentHeight(ctx)
	if err != nil {
		return nil, err
	}
	return s.state.GetValidatorSet(height, s.netID)
}

// withNamed returns set with the operator's named peers added, each at
// the mean weight of set's validators (this node left out; weight 1 when
// none has weight), or at its own stake when a validator and larger. A
// set whose weights are all 0 counts each as 1 first (reservedRates'
// rule), so that naming peers does not drop the validators of a host that
// reports no weights. set is not modified.
func withNamed(set map[ids.NodeID]uint64, named []ids.NodeID, self ids.NodeID) map[ids.NodeID]uint64 {
	if len(named) == 0 {
		return set
	}
	out := make(map[ids.NodeID]uint64, len(set)+len(named))
	positive := false
	for _, w := range set {
		positive = positive || w > 0
	}
	var sum float64 // weights may be near 2^64: no uint64 sum
	var n int
	for id, w := range set {
		if !positive {
			w = 1
		}
		out[id] = w
		if id != self && w > 0 {
			sum, n = sum+float64(w), n+1
		}
	}
	mean := uint64(1)
	if n > 0 {
		// float64(MaxUint64) rounds up to 2^64, out of uint64's range.
		mean = max(1, uint64(min(sum/float64(n), math.MaxUint64/2)))
	}
	for _, id := range named {
		if id != self {
			out[id] = max(out[id], mean)
		}
	}
	return out
}

// validatorShare is a validator's reserved rate, in transactions a second.
type validatorShare struct {
	id   ids.NodeID
	rate float64
}

// reservedRates divides total (transactions a second) among the
// validators of set by weight, self left out, in node ID order. Weight 0
// is not a validator, unless every weight of the set, this node's
// included, is 0 (then each counts 1). At
// most maxGossipValidators are kept, the largest weights (ties: the
// smaller node ID). Every weight is raised to at least a quarter of the
// mean, so no validator gets less than total / (5n); above that the rates
// keep the weights' ratios. The rates sum to total. Deterministic: sums
// run in a fixed order.
func reservedRates(set map[ids.NodeID]uint64, self ids.NodeID, total float64) []validatorShare {
	type entry struct {
		id ids.NodeID
		w  uint64
	}
	entries := make([]entry, 0, len(set))
	positive := false // over the whole set, this node included
	for id, w := range set {
		positive = positive || w > 0
		if id == self {
			continue
		}
		entries = append(entries, entry{id, w})
	}
	if !positive {
		for i := range entries {
			entries[i].w = 1
		}
	}
	entries = slices.DeleteFunc(entries, func(e entry) bool { return e.w == 0 })
	slices.SortFunc(entries, func(a, b entry) int {
		if c := cmp.Compare(b.w, a.w); c != 0 {
			return c
		}
		return a.id.Compare(b.id)
	})
	entries = entries[:min(len(entries), maxGossipValidators)]
	if len(entries) == 0 {
		return nil
	}
	slices.SortFunc(entries, func(a, b entry) int { return a.id.Compare(b.id) })
	sum := 0.0
	for _, e := range entries {
		sum += float64(e.w)
	}
	floor := sum / float64(4*len(entries))
	raised := 0.0
	for _, e := range entries {
		raised += max(float64(e.w), floor)
	}
	out := make([]validatorShare, len(entries))
	for i, e := range entries {
		out[i] = validatorShare{id: e.id, rate: total * max(float64(e.w), floor) / raised}
	}
	return out
}

// refreshLoop reads the validator set at once and every refreshEvery
// until done.
func (g *gossiper) refreshLoop() {
	defer g.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-g.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	tick := time.NewTicker(g.refreshEvery)
	defer tick.Stop()
	for {
		g.refreshValidators(ctx)
		select {
		case <-g.done:
			return
		case <-tick.C:
		}
	}
}

// refreshValidators reads the validator set and applies it to the
// budgets. A failed reading keeps the set in use (and is counted).
// Readings are applied in the order they were made.
func (g *gossiper) refreshValidators(ctx context.Context) {
	if g.source == nil && len(g.named) == 0 {
		return
	}
	g.refreshMu.Lock()
	defer g.refreshMu.Unlock()
	var set map[ids.NodeID]uint64
	if g.source != nil {
		ctx, cancel := context.WithTimeout(ctx, validatorQueryTimeout)
		var err error
		set, err = g.source.validatorSet(ctx)
		cancel()
		if err != nil {
			g.stats.validatorRefreshErrors.Add(1)
			return
		}
	}
	part := float64(g.cfg.GossipTxsPerSecond) * float64(g.cfg.GossipValidatorPercent) / 100
	shares := reservedRates(withNamed(set, g.named, g.self), g.self, part)
	g.mu.Lock()
	g.setValidators(shares, part, g.now())
	g.mu.Unlock()
}

// setValidators makes shares the validators with a reserved budget (part
// transactions a second in all) and the shared bucket the rest of the
// total; without validators the shared bucket is the whole total. A
// validator that stays keeps its buckets (its reserved one at its new
// rate), one that joins brings its per-peer bucket from the FIFO (and a
// new reserved bucket, full, or owing what is left of a penalty), one that
// leaves takes its per-peer bucket there: a penalty survives either move.
// The caller holds g.mu.
func (g *gossiper) setValidators(shares []validatorShare, part float64, now time.Time) {
	next := make(map[ids.NodeID]*validatorBudget, len(shares))
	for _, s := range shares {
		if v, ok := g.validators[s.id]; ok {
			v.reserve.setRate(s.rate, now)
			next[s.id] = v
			continue
		}
		peer, ok := g.peers.Get(s.id)
		if !ok {
			peer = newTokenBucket(float64(g.cfg.GossipPeerTxsPerSecond), now)
		}
		reserve := newTokenBucket(s.rate, now)
		// Penalized: the reserve is silent for what is left of it.
		reserve.silentUntil = peer.silentUntil
		next[s.id] = &validatorBudget{reserve: reserve, peer: peer}
	}
	// Leavers in node ID order: the FIFO's eviction order must not depend
	// on a map's iteration.
	var left []ids.NodeID
	for id := range g.validators {
		if _, ok := next[id]; !ok {
			left = append(left, id)
		}
	}
	slices.SortFunc(left, func(a, b ids.NodeID) int { return a.Compare(b) })
	for _, id := range left {
		g.peers.Put(id, g.validators[id].peer)
	}
	g.validators = next
	total := float64(g.cfg.GossipTxsPerSecond)
	if len(next) > 0 {
		total -= part
	}
	g.shared.setRate(total, now)
	g.stats.validators.Store(uint64(len(next)))
}
