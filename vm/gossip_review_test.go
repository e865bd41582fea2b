package vm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// Tests from the attack review of transaction gossip (2026-12-01). Each
// says what the review showed; each checks the fix (they all failed before
// it).

// junkMessage is a gossip message of n empty entries: 6 + 4n bytes, each
// entry a transaction as far as the budgets are concerned.
func junkMessage(n int) []byte {
	msg := []byte{gossipVersion, gossipKindTxs, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(msg[2:], uint32(n))
	return append(msg, make([]byte, 4*n)...)
}

// variants returns n distinct transactions (distinct IDs) that differ from
// t only in the last bytes of the signature: what a peer makes for free,
// without any key.
func variants(t testing.TB, base *tx.Tx, n int) []*tx.Tx {
	t.Helper()
	out := make([]*tx.Tx, n)
	for i := range out {
		b := bytes.Clone(base.Bytes())
		binary.BigEndian.PutUint32(b[len(b)-4:], uint32(i)+1)
		p, err := tx.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// forged returns n transactions of author with the given nonce, distinct
// payloads, each carrying one well-formed ML-DSA-65 signature made once by
// another key (so verification runs to the end and fails): made without
// the author's key and without any signing per transaction.
func forged(t testing.TB, e *env, authors []crypto.SessionID, nonce uint64, n int) []*tx.Tx {
	t.Helper()
	sig := e.signNonce(identity(t, 5), 0, &tx.CreateChannel{Name: "s"}).Signature
	out := make([]*tx.Tx, n)
	for i := range out {
		u := tx.Unsigned{ChainID: e.vm.ChainID(), Author: authors[i%len(authors)], Nonce: nonce, Payload: &tx.CreateChannel{Name: fmt.Sprint("x", i)}}
		p, err := tx.Parse(append(u.Bytes(), sig...))
		if err != nil {
			t.Fatal(err)
		}
		out[i] = p
	}
	return out
}

// gossipAll sends txs from peer in messages of the default size.
func gossipAll(t testing.TB, e *env, peer ids.NodeID, txs []*tx.Tx) {
	t.Helper()
	raws := make([][]byte, len(txs))
	for i, x := range txs {
		raws[i] = x.Bytes()
	}
	for _, m := range encodeGossip(raws, DefaultGossipMaxMessageBytes) {
		if err := e.vm.Gossip(ctx, peer, m); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGossipReviewSybilDrainsTotalBudget: the total inbound budget
// (gossipTxsPerSecond) is first come, first served, and empty entries
// count against it (gossip.go:353-369). At the defaults (65,536 a second;
// 16,384 per peer), four node IDs sending four 16 KiB messages of 4,096
// empty entries each, 256 KiB a second and no transaction at all, take
// the whole budget, and honest peers get only what refills between two
// junk messages. Since a re-gossip round sends the oldest first and the
// receiver keeps the first `allowed` entries, what gets through is what
// the receiver already has: the new transactions at the tail of an honest
// message are cut every time. The test runs at 1/16 of the default rates
// (the same ratios) so that the few hundred microseconds between the
// drain and the honest message refill almost nothing.
func TestGossipReviewSybilDrainsTotalBudget(t *testing.T) {
	const total, perPeer = DefaultGossipTxsPerSecond / 16, DefaultGossipPeerTxsPerSecond / 16
	e := (&fakeNet{}).join(t, 'v', newTestClock(), fmt.Sprintf(`{"gossipTxsPerSecond": %d, "gossipPeerTxsPerSecond": %d}`, total, perPeer))
	good := e.sign(identity(t, 0), &tx.CreateChannel{Name: "honest"})
	e.issue(good) // the receiver has it already
	fresh := e.sign(identity(t, 1), &tx.CreateChannel{Name: "tail"})
	// An honest re-gossip message: 69 transactions the receiver has
	// already (accepted) and, at the tail, a new one.
	const round = 70
	raws := make([][]byte, 0, round)
	raws = append(raws, good.Bytes())
	for i := 0; len(raws) < round-1; i++ {
		x := e.sign(identity(t, 2+i%2), &tx.SetContact{Peer: sid(t, identity(t, 0)), Status: tx.ContactStatus(1 + i/2%2)})
		e.issue(x)
		raws = append(raws, x.Bytes())
		if i%8 == 7 {
			e.accept()
		}
	}
	e.accept()
	raws = append(raws, fresh.Bytes())
	msgs := encodeGossip(raws, DefaultGossipMaxMessageBytes)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	honest := msgs[0]

	const sybils = total / perPeer
	junk := junkMessage(perPeer) // 4 bytes an entry
	for i := range sybils {
		if err := e.vm.Gossip(ctx, ids.NodeID{'s', byte(i)}, junk); err != nil {
			t.Fatal(err)
		}
	}
	// What refilled while those were parsed is taken by one more message
	// from a new node ID (a fresh, full per-peer bucket); a sustained
	// stream does this continuously.
	start := time.Now() // refill is counted from before the top-up: an upper bound
	if err := e.vm.Gossip(ctx, ids.NodeID{'s', sybils}, junk); err != nil {
		t.Fatal(err)
	}
	before := e.vm.GossipStats()
	if err := e.vm.Gossip(ctx, ids.NodeID{'h'}, honest); err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	st := e.vm.GossipStats()
	throttled := st.TxsThrottled - before.TxsThrottled
	refill := int(elapsed.Seconds()*total) + 1
	t.Logf("junk: %d node IDs, %d bytes each (at the defaults: 16 messages, 256 KiB a second); honest message of %d: %d throttled, %v after the top-up began (refill ≤ %d)",
		sybils+1, len(junk), round, throttled, elapsed, refill)
	// Fixed: an entry shorter than any transaction refuses its message
	// before the budgets, so junk drains nothing (draining them now takes
	// entries of 3.4 KB that parse: see TestGossipFairRevCompressedFloodIsCheap
	// for what those cost on the wire, compressed).
	if throttled != 0 || !e.vm.pool.mempool.Has(fresh.ID()) {
		t.Fatalf("honest message throttled %d; new transaction admitted: %v", throttled, e.vm.pool.mempool.Has(fresh.ID()))
	}
	if st.MessagesRefused != sybils+1 {
		t.Fatalf("junk messages not refused: %+v", st)
	}
}

// TestGossipReviewForgedSignatures: a peer makes this node verify one
// ML-DSA-65 signature per transaction for free: the author is any
// registered identity (public), the signature one well-formed signature
// by any key, reused (no key of the author, no signing per transaction;
// random bytes fail early and cost little). Nothing is charged to the peer beyond one token of its budget,
// and at the budgets' defaults the node verifies up to 16,384 such
// signatures a second per peer and 65,536 in all, which the test
// converts into cores from the measured cost.
//
// It also shows that gossip verifies signatures before the replay check,
// unlike IssueTx (docs/chain.md section 15: "the replay
// (ErrReplayedNonce) ..., before any signature"; LLM.md: gossip goes
// "through exactly IssueTx's checks"): prefetchSignatures
// (gossip.go:394) runs ahead of pool.issueTx's precheck.
func TestGossipReviewForgedSignatures(t *testing.T) {
	e := newEnv(t, nil)
	alice := identity(t, 0)
	e.do(alice, &tx.CreateChannel{Name: "a"}) // alice's next nonce is 1

	const n = 512
	fs := forged(t, e, []crypto.SessionID{sid(t, alice)}, 1, n)
	v := e.vm.chain.verifier
	before := v.verified.Load()
	start := time.Now()
	gossipAll(t, e, ids.NodeID{'m'}, fs)
	took := time.Since(start)
	checked := v.verified.Load() - before
	st := e.vm.GossipStats()
	// Fixed: the first forged signature silences the peer for
	// gossipPenalty; it made the node verify at most one per worker.
	t.Logf("%d forged transactions (%d bytes each) in %v: %d signatures verified; stats %+v", n, fs[0].Size(), took, checked, st)
	if checked > uint64(v.workers)+1 || st.PeersPenalized != 1 || st.TxsAdmitted != 0 {
		t.Fatalf("verified %d signatures for %d forged transactions; stats %+v", checked, n, st)
	}

	// The replay check: through IssueTx, a forged transaction with a used
	// nonce costs no signature; through gossip, it costs one.
	rs := forged(t, e, []crypto.SessionID{sid(t, alice)}, 0, 2)
	before = v.verified.Load()
	if _, err := e.vm.IssueTx(rs[0].Bytes()); err == nil {
		t.Fatal("replay admitted")
	}
	viaAPI := v.verified.Load() - before
	before = v.verified.Load()
	gossipAll(t, e, ids.NodeID{'m', 2}, rs) // two: prefetch runs for ≥ 2
	viaGossip := v.verified.Load() - before
	t.Logf("signatures verified for a replayed nonce: IssueTx %d, gossip %d (for 2)", viaAPI, viaGossip)
	// Fixed: gossip runs the replay check before any signature too.
	if viaAPI != 0 || viaGossip != 0 {
		t.Fatalf("replay: IssueTx verified %d, gossip %d", viaAPI, viaGossip)
	}
}

// TestGossipReviewEvictsDropReasons: every refusal of a gossiped
// transaction is remembered (pool.issueTx → remember) in the one FIFO of
// 16,384 reasons that getTxStatus reads for this node's own clients. A
// peer fills it in one second of its default budget with transactions
// that cost the node no signature (an unregistered author: keyFor fails
// first), so a local client's "dropped" (and "dead") answer turns into
// "unknown".
func TestGossipReviewEvictsDropReasons(t *testing.T) {
	e := newEnv(t, nil)
	alice, mallory := identity(t, 0), identity(t, 5)
	// A local client's transaction, refused: its status says why.
	bad := e.signNonce(alice, 7, &tx.CreateChannel{Name: "gap"})
	if _, err := e.vm.IssueTx(bad.Bytes()); err == nil {
		t.Fatal("skipped nonce admitted")
	}
	if s, _ := e.vm.TxStatus(bad.ID()); s.Status != TxDropped {
		t.Fatalf("status %+v", s)
	}
	junk := variants(t, e.signNonce(mallory, 0, &tx.SetRequestPolicy{Policy: tx.RequestsFromAnyone}), rejectedCacheSize)
	v := e.vm.chain.verifier
	before := v.verified.Load()
	start := time.Now()
	gossipAll(t, e, ids.NodeID{'m'}, junk) // one peer, within its first second
	st := e.vm.GossipStats()
	t.Logf("%d junk transactions (%d bytes each) in %v; %d signatures verified; stats %+v",
		len(junk), junk[0].Size(), time.Since(start), v.verified.Load()-before, st)
	if st.TxsThrottled != 0 || st.TxsRefused != uint64(len(junk)) {
		t.Fatalf("stats %+v", st)
	}
	// Fixed: a peer's refusals are not recorded.
	if s, _ := e.vm.TxStatus(bad.ID()); s.Status != TxDropped {
		t.Fatalf("the local refusal was evicted: %+v", s)
	}
	if s, _ := e.vm.TxStatus(junk[len(junk)-1].ID()); s.Status != TxUnknown {
		t.Fatalf("a peer's junk is remembered: %+v", s)
	}
}

// TestGossipReviewRegossipIgnoresReceipts: LLM.md says a round sends the
// pending transactions "that it has not sent or received within that
// interval", but a duplicate received (gossip.go:384-391, 400) never
// refreshes seen (only remote() on first admission does, gossip.go:245).
// So every node re-sends every pending transaction every round: N nodes
// make N copies per interval, each a duplicate to every receiver, and
// each counting against the receivers' inbound budgets.
func TestGossipReviewRegossipIgnoresReceipts(t *testing.T) {
	net := &fakeNet{}
	clock := newTestClock()
	a := net.join(t, 'a', clock, quietGossip)
	b := net.join(t, 'b', clock, quietGossip)
	t1 := a.sign(identity(t, 0), &tx.CreateChannel{Name: "r"})
	a.issue(t1)
	eventually(t, "b has it", 5*time.Second, func() bool { return b.vm.pool.mempool.Has(t1.ID()) })
	net.settle()
	// Long after b learned it: b's entry is older than an interval.
	b.vm.gossip.mu.Lock()
	b.vm.gossip.seen[t1.ID()] = time.Now().Add(-time.Hour)
	b.vm.gossip.mu.Unlock()
	// a re-gossips it: b receives a duplicate.
	a.vm.gossip.regossip(true)
	net.wait()
	before := b.vm.GossipStats()
	if before.TxsDuplicate == 0 {
		t.Fatalf("b received no duplicate: %+v", before)
	}
	// Fixed: that receipt counts as seen, so b's round skips it (before,
	// every node re-sent every pending transaction every round).
	b.vm.gossip.regossip(false)
	net.wait()
	if n := b.vm.GossipStats().TxsRegossiped - before.TxsRegossiped; n != 0 {
		t.Fatalf("b re-gossiped %d just after receiving it", n)
	}
}

// TestGossipReviewConnectedIgnoresSeen: each Connected call triggers a
// round that ignores seen (regossip(true)): a host that forwards
// Connected lets a peer that reconnects in a loop make this node send its
// pending transactions (up to gossipRegossipTxs) per reconnection, at the
// whole outbound byte budget (32 MiB/s by default). rpcchainvm at node
// v1.22.75 does not forward Connected, so this is latent.
func TestGossipReviewConnectedIgnoresSeen(t *testing.T) {
	net := &fakeNet{}
	clock := newTestClock()
	e := net.join(t, 'a', clock, quietGossip)
	net.join(t, 'b', clock, quietGossip)
	for i := range 4 {
		e.issue(e.sign(identity(t, i), &tx.CreateChannel{Name: "c"}))
	}
	net.settle()
	const flaps = 20
	for range flaps {
		_ = e.vm.Connected(ctx, ids.NodeID{'x'}, nil)
		time.Sleep(3 * time.Millisecond)
	}
	net.settle()
	st := e.vm.GossipStats()
	t.Logf("%d reconnections: %d transactions re-sent", flaps, st.TxsRegossiped)
	// Fixed: at most one forced round per re-gossip interval.
	if st.TxsRegossiped > 4*2 {
		t.Fatalf("re-gossiped %d", st.TxsRegossiped)
	}
}

// TestGossipReviewKeyCacheRotation: the parsed-key cache holds 1,024
// keys (verifier.go:25). Forged transactions naming more registered
// authors than that, in turn, miss it every time: each costs an identity
// read and ParseDSAPublicKey on top of the signature check, and evicts
// honest authors' keys (which block verification then parses again).
func TestGossipReviewKeyCacheRotation(t *testing.T) {
	var many []*crypto.Identity
	for tag := byte(1); len(many) < keyCacheSize+76; tag++ {
		many = append(many, vmtest.Identities(tag, 220)...)
	}
	e := newEnvDB(t, memdb.New(), genesisJSON(t, nil, many...), nil)
	authors := make([]crypto.SessionID, len(many))
	for i, id := range many {
		authors[i] = sid(t, id)
	}
	const n = 1100
	measure := func(name string, authors []crypto.SessionID, peer byte) time.Duration {
		fs := forged(t, e, authors, 0, n)
		start := time.Now()
		gossipAll(t, e, ids.NodeID{'m', peer}, fs)
		per := time.Since(start) / n
		t.Logf("%s: %v a forged transaction (wall, %d cores)", name, per, e.vm.chain.verifier.workers)
		return per
	}
	one := measure("one author (key cached)", authors[:1], 1)
	rot := measure(fmt.Sprintf("%d authors in turn", len(authors)), authors, 2)
	// Fixed: each peer is silenced at its first forgery, so it cannot
	// walk the key cache (it held all 1,024 rotated keys before).
	if n := e.vm.chain.verifier.keys.Len(); n > 4 {
		t.Fatalf("key cache holds %d keys of forged authors", n)
	}
	_ = rot
	_ = one
	raw := many[0].DSAPublicKey
	start := time.Now()
	for range 100 {
		if _, err := crypto.ParseDSAPublicKey(raw); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("ParseDSAPublicKey alone: %v", time.Since(start)/100)
}

// TestGossipReviewRegossipWalksBacklog (review F7): a round sends at most
// gossipRegossipTxs transactions, and each round used to start again from
// the oldest, so with a backlog larger than a round the newer pending
// transactions (a local one whose push was lost, say) were never
// re-gossiped. Rounds now continue after where the last one stopped.
func TestGossipReviewRegossipWalksBacklog(t *testing.T) {
	net := &fakeNet{}
	var lost atomic.Bool
	lost.Store(true)
	net.drop = func(_, _ ids.NodeID, _ []byte) bool { return lost.Load() }
	clock := newTestClock()
	a := net.join(t, 'a', clock, `{"gossip": true, "gossipBatchMs": 1, "gossipRegossipMs": 600000, "gossipRegossipTxs": 2}`)
	b := net.join(t, 'b', clock, quietGossip)
	var sent []*tx.Tx
	for i := range 6 {
		x := a.sign(identity(t, i%4), &tx.CreateChannel{Name: fmt.Sprint("c", i)})
		a.issue(x)
		sent = append(sent, x)
	}
	net.settle() // the pushes are lost
	lost.Store(false)
	for range 3 {
		a.vm.gossip.regossip(true)
		net.wait()
	}
	for i, x := range sent {
		if !b.vm.pool.mempool.Has(x.ID()) {
			t.Fatalf("transaction %d of 6 never re-gossiped in three rounds of two", i)
		}
	}
}
