package vm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	"github.com/luxfi/math/set"
	"github.com/luxfi/p2p"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// fakeNet carries app gossip between in-process VMs, asynchronously, as a
// node's network does. drop, when set, decides which messages are lost.
type fakeNet struct {
	mu    sync.Mutex
	nodes []*netNode
	drop  func(from, to ids.NodeID, msg []byte) bool
	// inflight counts deliveries under way. It is a counter, not a
	// sync.WaitGroup: gossip loops start deliveries while a test waits,
	// and a WaitGroup must not be added to during a Wait from zero.
	inflight atomic.Int64
}

type netNode struct {
	id   ids.NodeID
	vm   *VM
	sent int // gossip messages this node sent
}

// sender is the p2p.Sender of one node.
type fakeSender struct {
	net  *fakeNet
	from ids.NodeID
}

var _ p2p.Sender = fakeSender{}

func (fakeSender) SendRequest(context.Context, set.Set[ids.NodeID], uint32, []byte) error { return nil }
func (fakeSender) SendResponse(context.Context, ids.NodeID, uint32, []byte) error         { return nil }
func (fakeSender) SendError(context.Context, ids.NodeID, uint32, int32, string) error     { return nil }

func (s fakeSender) SendGossip(_ context.Context, _ p2p.SendConfig, msg []byte) error {
	n := s.net
	msg = bytes.Clone(msg)
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, node := range n.nodes {
		if node.id == s.from {
			node.sent++
		}
	}
	for _, node := range n.nodes {
		if node.id == s.from || (n.drop != nil && n.drop(s.from, node.id, msg)) {
			continue
		}
		n.inflight.Add(1)
		go func(to *VM) {
			defer n.inflight.Add(-1)
			_ = to.Gossip(context.Background(), s.from, msg)
		}(node.vm)
	}
	return nil
}

// settle waits past the batch delay of every node, then for every delivery.
func (n *fakeNet) settle() {
	time.Sleep(50 * time.Millisecond)
	n.wait()
}

// wait returns when no delivery is under way.
func (n *fakeNet) wait() {
	for n.inflight.Load() != 0 {
		time.Sleep(time.Millisecond)
	}
}

func (n *fakeNet) sentBy(id ids.NodeID) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, node := range n.nodes {
		if node.id == id {
			return node.sent
		}
	}
	return 0
}

// gossipGenesis is the shared genesis of the gossip tests.
func gossipGenesis(t testing.TB) []byte {
	return genesisJSON(t, nil, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3))
}

// join starts a VM on the network with the given node config.
func (n *fakeNet) join(t testing.TB, name byte, clock *testClock, nodeCfg string) *env {
	t.Helper()
	id := ids.NodeID{name}
	v := New(WithClock(clock.Now))
	if err := v.Initialize(context.Background(), nil, memdb.New(), gossipGenesis(t), nil, []byte(nodeCfg), nil, nil, fakeSender{net: n, from: id}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = v.Shutdown(context.Background())
		n.wait()
	})
	n.mu.Lock()
	n.nodes = append(n.nodes, &netNode{id: id, vm: v})
	n.mu.Unlock()
	return &env{t: t, vm: v, clock: clock}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet settings: a re-gossip round far away, so only pushes are seen.
const quietGossip = `{"gossip": true, "gossipBatchMs": 1, "gossipRegossipMs": 600000}`

// TestGossipReachesPeers: a transaction admitted through one node's API
// is pushed once and admitted by every peer; peers do not push what they
// learned by gossip (no loops); a repeated message is recognized as
// duplicates and answered with nothing; a validator that never saw the
// transaction through its API builds the block.
func TestGossipReachesPeers(t *testing.T) {
	net := &fakeNet{}
	clock := newTestClock()
	a := net.join(t, 'a', clock, quietGossip)
	b := net.join(t, 'b', clock, quietGossip)
	c := net.join(t, 'c', clock, quietGossip)
	alice, bob := identity(t, 0), identity(t, 1)

	t1 := a.sign(alice, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, bob)}})
	a.issue(t1)
	for _, e := range []*env{b, c} {
		eventually(t, "peer admits the gossiped transaction", 5*time.Second, func() bool { return e.vm.pool.mempool.Has(t1.ID()) })
	}
	net.settle()
	if got := net.sentBy(ids.NodeID{'a'}); got != 1 {
		t.Fatalf("origin sent %d messages, want 1", got)
	}
	for _, e := range []*env{b, c} {
		st := e.vm.GossipStats()
		if st.TxsAdmitted != 1 || st.MessagesSent != 0 || st.TxsRefused != 0 {
			t.Fatalf("peer stats %+v: want 1 admitted, nothing sent, nothing refused", st)
		}
	}

	// The same message again (a peer forwarding it, a duplicate delivery):
	// nothing admitted, nothing sent.
	msg := encodeGossip([][]byte{t1.Bytes()}, DefaultGossipMaxMessageBytes)[0]
	if err := b.vm.Gossip(ctx, ids.NodeID{'c'}, msg); err != nil {
		t.Fatal(err)
	}
	net.settle()
	if st := b.vm.GossipStats(); st.TxsDuplicate != 1 || st.TxsAdmitted != 1 || st.MessagesSent != 0 {
		t.Fatalf("after a duplicate: %+v", st)
	}

	// c builds the block (a validator that got the transaction by
	// gossip); a and b accept it, and their mempools empty.
	blk := c.accept()
	for _, e := range []*env{a, b} {
		relay(t, blk, e)
		if n := e.vm.pool.mempool.Len(); n != 0 {
			t.Fatalf("mempool holds %d after the block", n)
		}
	}
	// Gossip of an accepted transaction is a duplicate too.
	if err := a.vm.Gossip(ctx, ids.NodeID{'b'}, msg); err != nil {
		t.Fatal(err)
	}
	net.settle()
	if st := a.vm.GossipStats(); st.TxsDuplicate != 1 || st.TxsAdmitted != 0 {
		t.Fatalf("origin after gossip of an accepted transaction: %+v", st)
	}
	total := 0
	for _, id := range []byte("abc") {
		total += net.sentBy(ids.NodeID{id})
	}
	if total != 1 {
		t.Fatalf("%d gossip messages in all, want the one push", total)
	}
}

// TestRegossip: a transaction whose push was lost, and a peer that joined
// after it was sent, still get it through re-gossip rounds; so a
// transaction sent to a node that never proposes still reaches the
// proposer.
func TestRegossip(t *testing.T) {
	net := &fakeNet{}
	lost := 0
	net.drop = func(from, to ids.NodeID, msg []byte) bool {
		// The first message from a to b is lost (a round gets through).
		if from == (ids.NodeID{'a'}) && to == (ids.NodeID{'b'}) && lost == 0 {
			lost++
			return true
		}
		return false
	}
	clock := newTestClock()
	const fast = `{"gossip": true, "gossipBatchMs": 1, "gossipRegossipMs": 50}`
	a := net.join(t, 'a', clock, fast) // never proposes
	b := net.join(t, 'b', clock, fast)
	alice := identity(t, 0)
	t1 := a.sign(alice, &tx.CreateChannel{Name: "late"})
	a.issue(t1)
	eventually(t, "a re-gossip round delivers what the push lost", 5*time.Second, func() bool { return b.vm.pool.mempool.Has(t1.ID()) })
	net.mu.Lock()
	nLost := lost
	net.mu.Unlock()
	if nLost != 1 || a.vm.GossipStats().TxsRegossiped == 0 {
		t.Fatalf("lost %d pushes, re-gossiped %d", nLost, a.vm.GossipStats().TxsRegossiped)
	}

	// A node that joins later gets the pending transaction.
	late := net.join(t, 'd', clock, fast)
	eventually(t, "a late peer gets the pending transaction", 5*time.Second, func() bool { return late.vm.pool.mempool.Has(t1.ID()) })

	// b proposes; everyone accepts; the rounds stop sending it.
	blk := b.accept()
	relay(t, blk, a)
	relay(t, blk, late)
	net.wait()
	time.Sleep(150 * time.Millisecond) // three rounds
	before := a.vm.GossipStats().TxsSent
	time.Sleep(150 * time.Millisecond)
	if after := a.vm.GossipStats().TxsSent; after != before {
		t.Fatalf("accepted transaction still gossiped: %d then %d", before, after)
	}
}

// TestGossipRefusesBadInput: oversize and malformed messages, transactions
// that fail the checks of IssueTx, and a peer over its budget are refused
// and counted; nothing is admitted or forwarded; Gossip never returns an
// error.
func TestGossipRefusesBadInput(t *testing.T) {
	net := &fakeNet{}
	clock := newTestClock()
	e := net.join(t, 'a', clock, `{"gossip": true, "gossipBatchMs": 1, "gossipRegossipMs": 600000, "gossipPeerTxsPerSecond": 3}`)
	other := New(WithClock(clock.Now))
	if err := other.Initialize(ctx, nil, memdb.New(), genesisJSON(t, map[string]any{"maxMessages": 7}, identity(t, 0)), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer other.Shutdown(ctx)
	alice, bob := identity(t, 0), identity(t, 1)

	good := e.sign(alice, &tx.CreateChannel{Name: "ok"})
	badSig := bytes.Clone(e.signNonce(bob, 0, &tx.CreateChannel{Name: "x"}).Bytes())
	badSig[len(badSig)-1] ^= 1
	wrongChain, err := tx.Sign(bob, other.ChainID(), 0, &tx.CreateChannel{Name: "y"})
	if err != nil {
		t.Fatal(err)
	}
	skipped := e.signNonce(bob, 5, &tx.CreateChannel{Name: "z"})
	peer := ids.NodeID{'p'}
	send := func(from ids.NodeID, msg []byte) {
		t.Helper()
		if err := e.vm.Gossip(ctx, from, msg); err != nil {
			t.Fatalf("Gossip returned %v", err)
		}
	}
	// A well-formed message one byte over the size bound (its framing
	// decodes: only the size check refuses it), zeros of that size, and
	// bad framing.
	var oversize []byte
	for n := 1; len(oversize) <= MaxGossipMessageBytes; n++ {
		raws := make([][]byte, n)
		for i := range raws {
			raws[i] = make([]byte, config.MaxTxSize/2)
		}
		last := MaxGossipMessageBytes + 1 - (gossipHeaderSize + n*4 + (n-1)*config.MaxTxSize/2)
		if last < 0 || last > config.MaxTxSize {
			continue
		}
		raws[n-1] = make([]byte, last)
		oversize = encodeGossip(raws, 4<<20)[0]
	}
	if len(oversize) != MaxGossipMessageBytes+1 {
		t.Fatalf("the oversize message is %d bytes", len(oversize))
	}
	if _, err := decodeGossip(oversize, 0); err != nil {
		t.Fatalf("the oversize message does not decode: %v", err)
	}
	send(peer, oversize)
	send(peer, make([]byte, MaxGossipMessageBytes+1))
	send(peer, []byte{9, 9, 9})
	send(peer, nil)
	if st := e.vm.GossipStats(); st.MessagesRefused != 4 || st.TxsReceived != 0 {
		t.Fatalf("after bad messages: %+v", st)
	}
	// Framing intact, contents bad: a transaction of another chain is one
	// no honest relay sends (it fails a check that needs no state), so the
	// whole message is refused and the peer silenced.
	send(peer, encodeGossip([][]byte{badSig, wrongChain.Bytes(), skipped.Bytes()}, DefaultGossipMaxMessageBytes)[0])
	if st := e.vm.GossipStats(); st.TxsRefused != 3 || st.TxsAdmitted != 0 || st.PeersPenalized != 1 {
		t.Fatalf("after bad transactions: %+v", st)
	}
	if e.vm.pool.mempool.Len() != 0 {
		t.Fatal("a refused transaction is pending")
	}
	// The peer is silenced (and its budget of 3 per second spent): good is
	// throttled.
	send(peer, encodeGossip([][]byte{good.Bytes()}, DefaultGossipMaxMessageBytes)[0])
	if st := e.vm.GossipStats(); st.TxsThrottled != 1 || st.TxsAdmitted != 0 {
		t.Fatalf("over budget: %+v", st)
	}
	// Another peer has its own budget.
	send(ids.NodeID{'q'}, encodeGossip([][]byte{good.Bytes()}, DefaultGossipMaxMessageBytes)[0])
	if st := e.vm.GossipStats(); st.TxsAdmitted != 1 || !e.vm.pool.mempool.Has(good.ID()) {
		t.Fatalf("second peer: %+v", st)
	}
	net.settle()
	if n := net.sentBy(ids.NodeID{'a'}); n != 0 {
		t.Fatalf("the node sent %d messages in reply to gossip", n)
	}
	// And app requests are answered with an error, not served.
	if _, perr := e.vm.Request(ctx, peer, 1, time.Now().Add(time.Second), []byte("x")); perr == nil {
		t.Fatal("app request served")
	}
}

func TestGossipMessageFormat(t *testing.T) {
	small := [][]byte{{1, 2, 3}, {}, bytes.Repeat([]byte{7}, 300)}
	msgs := encodeGossip(small, 1<<20)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	want := []byte{1, 1, 0, 0, 0, 3, 0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 1, 44}
	if !bytes.Equal(msgs[0][:len(want)], want) || len(msgs[0]) != 6+4+3+4+4+300 {
		t.Fatalf("encoding % x", msgs[0][:len(want)])
	}
	got, err := decodeGossip(msgs[0], 0)
	if err != nil || len(got) != 3 || !bytes.Equal(got[2], small[2]) {
		t.Fatalf("decode: %v", err)
	}
	// Messages are split at the size bound, in order.
	var many [][]byte
	for i := range 10 {
		many = append(many, bytes.Repeat([]byte{byte(i)}, 1000))
	}
	msgs = encodeGossip(many, 6+3*1004)
	if len(msgs) != 4 {
		t.Fatalf("%d messages, want 4", len(msgs))
	}
	var back [][]byte
	for _, m := range msgs {
		if len(m) > 6+3*1004 {
			t.Fatalf("message of %d bytes", len(m))
		}
		part, err := decodeGossip(m, 0)
		if err != nil {
			t.Fatal(err)
		}
		back = append(back, part...)
	}
	for i := range many {
		if !bytes.Equal(back[i], many[i]) {
			t.Fatalf("transaction %d out of order", i)
		}
	}
	// Refusals.
	for name, m := range map[string][]byte{
		"empty":          nil,
		"version":        {2, 1, 0, 0, 0, 1, 0, 0, 0, 0},
		"kind":           {1, 2, 0, 0, 0, 1, 0, 0, 0, 0},
		"no txs":         {1, 1, 0, 0, 0, 0},
		"count too big":  {1, 1, 0, 0, 0x10, 1},
		"count vs bytes": {1, 1, 0, 0, 0, 9, 0, 0, 0, 0},
		"truncated":      {1, 1, 0, 0, 0, 1, 0, 0, 0, 5, 1},
		"trailing":       {1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0},
		"oversize tx":    binary.BigEndian.AppendUint32([]byte{1, 1, 0, 0, 0, 1}, config.MaxTxSize+1),
	} {
		if _, err := decodeGossip(m, 0); err == nil {
			t.Errorf("%s: decoded", name)
		} else if !strings.Contains(err.Error(), "gossip") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func FuzzDecodeGossip(f *testing.F) {
	f.Add(encodeGossip([][]byte{{1, 2}, {3}}, 1<<20)[0])
	f.Add([]byte{1, 1, 0, 0, 0, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		txs, err := decodeGossip(msg, 0)
		if err != nil {
			return
		}
		re := encodeGossip(txs, len(msg))
		if len(re) != 1 || !bytes.Equal(re[0], msg) {
			t.Fatalf("re-encoding differs: %d messages", len(re))
		}
	})
}

func TestGossipNodeConfig(t *testing.T) {
	c, err := ParseNodeConfig(nil)
	if err != nil || c.GossipMaxMessageBytes != DefaultGossipMaxMessageBytes || c.GossipRegossipMs != DefaultGossipRegossipMs {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if c.Gossip {
		t.Fatal("gossip is on by default")
	}
	c, err = ParseNodeConfig([]byte(`{"gossip": true, "gossipRegossipMs": 250, "gossipPeerTxsPerSecond": 10}`))
	if err != nil || !c.Gossip || c.GossipRegossipMs != 250 || c.GossipPeerTxsPerSecond != 10 || c.GossipBatchMs != DefaultGossipBatchMs {
		t.Fatalf("parsed %+v, %v", c, err)
	}
	for _, bad := range []string{
		fmt.Sprintf(`{"gossipMaxMessageBytes": %d}`, config.MaxTxSize), // cannot hold the largest transaction
		`{"gossipMaxMessageBytes": 4194304}`,
		`{"gossipRegossipMs": 1}`,
		`{"gossipBatchMs": 0}`,
		`{"gossipBytesPerSecond": 1000}`,
		`{"gossipTxsPerSecond": -1}`,
		`{"gossip": 1}`,
		`{"gossipOn": true}`,
	} {
		if _, err := ParseNodeConfig([]byte(bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	if err := New().Initialize(ctx, nil, memdb.New(), gossipGenesis(t), nil, nil, nil, nil, "sender"); err == nil {
		t.Fatal("a string appSender accepted")
	}
}

// TestGossipOffByDefault: without "gossip": true nothing is sent through
// the app sender (a host that passes none to a plugin would crash on it),
// while gossip from peers is still admitted.
func TestGossipOffByDefault(t *testing.T) {
	net := &fakeNet{}
	clock := newTestClock()
	quiet := net.join(t, 'a', clock, "")
	on := net.join(t, 'b', clock, quietGossip)
	alice, bob := identity(t, 0), identity(t, 1)
	t1 := quiet.sign(alice, &tx.CreateChannel{Name: "a"})
	quiet.issue(t1)
	t2 := on.sign(bob, &tx.CreateChannel{Name: "b"})
	on.issue(t2)
	eventually(t, "the default node admits gossip", 5*time.Second, func() bool { return quiet.vm.pool.mempool.Has(t2.ID()) })
	net.settle()
	if n := net.sentBy(ids.NodeID{'a'}); n != 0 || on.vm.pool.mempool.Has(t1.ID()) {
		t.Fatalf("a node without \"gossip\": true sent %d messages", n)
	}
}
