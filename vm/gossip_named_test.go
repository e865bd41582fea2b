package vm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
)

// The operator's reserved peers (NodeConfig.GossipReservedPeers).

// namedConfig is a node config naming peers.
func namedConfig(extra string, peers ...ids.NodeID) string {
	names := make([]string, len(peers))
	for i, p := range peers {
		names[i] = fmt.Sprintf("%q", p.String())
	}
	return fmt.Sprintf(`{"gossipReservedPeers": [%s]%s}`, strings.Join(names, ", "), extra)
}

// floodAgainst sends 40 valid transactions from each of peers between two
// waves of a Sybil flood of twice the total budget, and returns how many
// of them were admitted.
func floodAgainst(t *testing.T, e *env, peers ...ids.NodeID) int {
	t.Helper()
	junk := junkGossip(t, 70)
	admitted := 0
	for i, p := range peers {
		txs := validTxs(t, e, identity(t, i), 40)
		flood(t, e, junk, 2*i*1000, 2*i*1000+1000) // 70,000 entries: more than the total
		gossipAll(t, e, p, txs)
		for _, x := range txs {
			if e.vm.pool.mempool.Has(x.ID()) {
				admitted++
			}
		}
	}
	return admitted
}

// TestGossipNamedPeersWithoutValidatorState: with no validator information
// (as under luxd v1.22.75, whose chains get an empty set) a flood from
// 1,000 node IDs takes the whole budget first come, first served, and a
// peer's transactions behind it are throttled; peers the operator named
// keep a reserved share: all their transactions are admitted.
func TestGossipNamedPeersWithoutValidatorState(t *testing.T) {
	plain := fairVM(t, nil, `{}`)
	if got := floodAgainst(t, plain, valA, valB); got != 0 {
		t.Fatalf("unnamed peers behind a flood: %d of 80 transactions admitted, want 0 (the flood took the budget)", got)
	}

	// Initialize alone applies the names (fairVM reads the set by hand).
	v := New(withValidatorRefresh(-1))
	chainCtx := &consensusctx.Context{ChainID: fairChainID, NodeID: selfID}
	if err := v.Initialize(ctx, chainCtx, memdb.New(), gossipGenesis(t), nil, []byte(namedConfig("", valA, valB)), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Shutdown(context.Background()) })
	if st := v.GossipStats(); st.Validators != 2 {
		t.Fatalf("reserves %d after Initialize, want the 2 named peers", st.Validators)
	}

	e := fairVM(t, nil, namedConfig("", valA, valB))
	if got := floodAgainst(t, e, valA, valB); got != 80 {
		t.Fatalf("named peers behind a flood: %d of 80 transactions admitted", got)
	}
	if st := e.vm.GossipStats(); st.TxsThrottledValidators != 0 || st.TxsThrottled == 0 {
		t.Fatalf("named peers throttled, or the flood not: %+v", st)
	}
	// Each named peer has half the reserved part.
	part := float64(DefaultGossipTxsPerSecond) * DefaultGossipValidatorPercent / 100
	for _, p := range []ids.NodeID{valA, valB} {
		if r := e.vm.gossip.validators[p].reserve.rate; r != part/2 {
			t.Fatalf("%s: reserved rate %v, want %v", p, r, part/2)
		}
	}
}

// TestGossipNamedPeersAmongValidators: a named peer counts as a validator
// of the mean weight (validators of stake 1 and 3: a named peer weighs 2,
// shares 1:3:2); a named validator keeps its stake when larger; a host
// that reports no weights (all 0) keeps its validators, equal, beside the
// named peer; this node is never given a reserve.
func TestGossipNamedPeersAmongValidators(t *testing.T) {
	named := ids.NodeID{'n', 'a', 'm', 'e', 'd'}
	const total = 4096
	part := float64(total) * DefaultGossipValidatorPercent / 100
	rates := func(state map[ids.NodeID]uint64, peers ...ids.NodeID) map[ids.NodeID]float64 {
		t.Helper()
		e := fairVM(t, newFakeValidators(state), namedConfig(fmt.Sprintf(`, "gossipTxsPerSecond": %d`, total), peers...))
		out := map[ids.NodeID]float64{}
		for id, v := range e.vm.gossip.validators {
			out[id] = v.reserve.rate
		}
		return out
	}
	near := func(got, want float64) bool { return got > want-1e-6 && got < want+1e-6 }

	r := rates(map[ids.NodeID]uint64{valA: 1, valB: 3, selfID: 50}, named)
	if len(r) != 3 || !near(r[valA], part/6) || !near(r[valB], part*3/6) || !near(r[named], part*2/6) {
		t.Fatalf("validators 1 and 3 and a named peer: %v, want 1:3:2 of %v", r, part)
	}
	r = rates(map[ids.NodeID]uint64{valA: 1, valB: 3}, valB, named)
	if !near(r[valB], part*3/6) || !near(r[named], part*2/6) {
		t.Fatalf("a named validator above the mean: %v, want its stake kept (3 of 6)", r)
	}
	r = rates(map[ids.NodeID]uint64{valA: 0, valB: 0}, named)
	if len(r) != 3 || !near(r[valA], part/3) || !near(r[named], part/3) {
		t.Fatalf("a host with no weights: %v, want three equal reserves", r)
	}
	r = rates(map[ids.NodeID]uint64{valA: 1}, selfID, named)
	if _, ok := r[selfID]; ok || len(r) != 2 {
		t.Fatalf("this node named: %v, want no reserve of its own", r)
	}
}

// TestGossipNamedPeersConfig: the list is parsed, duplicates collapse, and
// bad entries, too many, or names without a reserved part are refused.
func TestGossipNamedPeersConfig(t *testing.T) {
	c, err := ParseNodeConfig([]byte(namedConfig("", valA, valB, valA)))
	if err != nil || len(c.GossipReservedPeers) != 2 || c.GossipReservedPeers[0] != valA || c.GossipReservedPeers[1] != valB {
		t.Fatalf("parsed %v, %v", c.GossipReservedPeers, err)
	}
	many := make([]ids.NodeID, MaxGossipReservedPeers+1)
	for i := range many {
		many[i] = sybil(i)
	}
	for _, bad := range []string{
		`{"gossipReservedPeers": ["NodeID-nope"]}`,
		`{"gossipReservedPeers": [7]}`,
		namedConfig(`, "gossipValidatorPercent": 0`, valA),
		namedConfig("", many...),
	} {
		if _, err := ParseNodeConfig([]byte(bad)); !errors.Is(err, ErrBadNodeConfig) {
			t.Fatalf("%.80s: %v, want ErrBadNodeConfig", bad, err)
		}
	}
	if _, err := ParseNodeConfig([]byte(namedConfig("", many[:MaxGossipReservedPeers]...))); err != nil {
		t.Fatalf("%d names: %v", MaxGossipReservedPeers, err)
	}
}
