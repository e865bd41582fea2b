package multinode

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// requireLong skips the scenario unless long tests run
// (SESSION_LONG_TESTS=1, internal/testenv): it starts several plugin
// processes and runs for about a minute.
func requireLong(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-node scenario; skipped with -short")
	}
	testenv.Long(t)
}

// account is a chat user: an identity of the genesis, the node it submits
// to, and its next nonce.
type account struct {
	id    *crypto.Identity
	sid   crypto.SessionID
	home  *node
	nonce uint64
}

// world is what the test submitted: it drives the reads that are compared.
type world struct {
	t        *testing.T
	net      *network
	accounts []*account
	sessions []ids.ID
	channel  ids.ID
	txs      []ids.ID
}

func (w *world) submit(a *account, p tx.Payload) *tx.Tx {
	w.t.Helper()
	signed, err := tx.Sign(a.id, w.net.chainID, a.nonce, p)
	if err != nil {
		w.t.Fatal(err)
	}
	var reply struct {
		TxID ids.ID `json:"txID"`
	}
	if err := a.home.call("session.issueTx", map[string]any{"tx": signed.Bytes()}, &reply); err != nil {
		w.t.Fatalf("%s refused %s of nonce %d: %v", a.home.name, signed.Type(), a.nonce, err)
	}
	if reply.TxID != signed.ID() {
		w.t.Fatalf("issueTx returned %s, want %s", reply.TxID, signed.ID())
	}
	a.nonce++
	w.txs = append(w.txs, signed.ID())
	return signed
}

// waitAccepted waits until every submitted transaction is accepted on
// every live node.
func (w *world) waitAccepted(timeout time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for _, x := range w.net.peers(nil) {
		for _, id := range w.txs {
			for {
				var st struct {
					Status string `json:"status"`
				}
				if err := x.call("session.getTxStatus", map[string]any{"txID": id.String()}, &st); err != nil {
					w.t.Fatalf("%s: getTxStatus: %v", x.name, err)
				}
				if st.Status == "accepted" {
					break
				}
				if time.Now().After(deadline) {
					for _, y := range w.net.peers(nil) {
						w.t.Log(y.dump())
					}
					w.t.Fatalf("%s: transaction %s is %q after %v", x.name, id, st.Status, timeout)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
	}
}

// waitHeights waits until every live node has accepted the same height.
func (w *world) waitHeights(timeout time.Duration) uint64 {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var hs []uint64
		for _, x := range w.net.peers(nil) {
			_, h, _ := x.frontier()
			hs = append(hs, h)
		}
		if slices.Min(hs) == slices.Max(hs) {
			return hs[0]
		}
		if time.Now().After(deadline) {
			for _, y := range w.net.peers(nil) {
				w.t.Log(y.dump())
			}
			w.t.Fatalf("heights %v after %v", hs, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// nodeLocal are the fields of session.status that describe one node.
var nodeLocal = []string{"mempoolTxs", "mempoolBytes", "processingBlocks", "acceptedTxsSinceStart"}

// snapshot reads, through the node's JSON-RPC API, everything the world
// touched with every read method, and the blocks at every height.
func (w *world) snapshot(x *node) (map[string]string, map[string]bool) {
	w.t.Helper()
	out := map[string]string{}
	used := map[string]bool{}
	read := func(method string, params map[string]any) {
		w.t.Helper()
		raw, err := x.callRaw("session."+method, params)
		key := method + " " + canonical(w.t, mustJSON(w.t, params))
		used[method] = true
		if err != nil {
			out[key] = "error: " + err.Error()
			return
		}
		if method == "status" {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				w.t.Fatal(err)
			}
			for _, f := range nodeLocal {
				if _, ok := m[f]; !ok {
					w.t.Fatalf("status has no %s", f)
				}
				delete(m, f)
			}
			raw = mustJSON(w.t, m)
		}
		out[key] = canonical(w.t, raw)
	}
	read("status", map[string]any{})
	read("getConfig", map[string]any{})
	for _, a := range w.accounts {
		sid := a.id.SessionID
		read("getIdentity", map[string]any{"sessionId": sid})
		read("getNonce", map[string]any{"sessionId": sid})
		read("getInbox", map[string]any{"sessionId": sid, "after": 0, "limit": 1000})
		read("isChannelMember", map[string]any{"channel": w.channel.String(), "sessionId": sid})
		read("getPrekeyBundle", map[string]any{"sessionId": sid})
		read("listSessions", map[string]any{"sessionId": sid, "after": 0, "limit": 1000})
		read("getRequests", map[string]any{"sessionId": sid, "limit": 1000})
		read("getContact", map[string]any{"sessionId": sid, "peer": w.accounts[0].id.SessionID})
		read("getClaims", map[string]any{"sessionId": sid, "after": 0, "limit": 1000})
	}
	for _, s := range w.sessions {
		read("getSession", map[string]any{"session": s.String()})
		read("getMessages", map[string]any{"session": s.String(), "after": 0, "limit": 1000})
	}
	read("getChannel", map[string]any{"channel": w.channel.String(), "membersLimit": 100})
	read("getMessages", map[string]any{"channel": w.channel.String(), "after": 0, "limit": 1000})
	for _, id := range w.txs {
		read("getTxStatus", map[string]any{"txID": id.String()})
		read("getTx", map[string]any{"txID": id.String()})
	}
	// The blocks themselves, through the node's VMClient.
	ctx := context.Background()
	x.mu.Lock()
	defer x.mu.Unlock()
	for h := uint64(0); h <= x.height; h++ {
		id, err := x.client.GetBlockIDAtHeight(ctx, h)
		if err != nil {
			w.t.Fatalf("%s: block at %d: %v", x.name, h, err)
		}
		blk, err := x.client.GetBlock(ctx, id)
		if err != nil {
			w.t.Fatalf("%s: block %s: %v", x.name, id, err)
		}
		out[fmt.Sprintf("block %d", h)] = fmt.Sprintf("%s %x", id, blk.Bytes())
	}
	return out, used
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canonical re-encodes JSON with sorted keys.
func canonical(t *testing.T, raw []byte) string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return string(mustJSON(t, v))
}

// compare checks that every live node answers every read alike and holds
// the same block at every height, and that the reads cover every read
// method of the API.
func (w *world) compare() {
	w.t.Helper()
	w.waitHeights(60 * time.Second)
	nodes := w.net.peers(nil)
	ref, used := w.snapshot(nodes[0])
	for _, m := range service.Methods {
		isRead := m == "status" || strings.HasPrefix(m, "get") || strings.HasPrefix(m, "list") ||
			(strings.HasPrefix(m, "is") && len(m) > 2 && m[2] >= 'A' && m[2] <= 'Z') // isChannelMember, not issueTx
		if isRead && !used[m] {
			w.t.Errorf("the comparison does not read session.%s", m)
		}
	}
	for _, x := range nodes[1:] {
		got, _ := w.snapshot(x)
		if len(got) != len(ref) {
			w.t.Errorf("%s: %d reads, %s: %d", x.name, len(got), nodes[0].name, len(ref))
		}
		diffs := 0
		for k, v := range ref {
			if got[k] != v {
				diffs++
				if diffs <= 5 {
					w.t.Errorf("%s and %s differ on %s:\n  %s\n  %s", nodes[0].name, x.name, k, v, got[k])
				}
			}
		}
		if diffs > 0 {
			w.t.Fatalf("%s differs from %s on %d of %d reads", x.name, nodes[0].name, diffs, len(ref))
		}
	}
	w.t.Logf("%d nodes agree on %d reads", len(nodes), len(ref))
}

// traffic submits one round: every account sends a message in the session
// it created and in the one its predecessor created, the odd ones join the
// channel (first round) and post to it.
func (w *world) traffic(round int) {
	w.t.Helper()
	k := len(w.accounts)
	for i, a := range w.accounts {
		mine, theirs := w.sessions[i], w.sessions[(i+k-1)%k]
		w.submit(a, &tx.SendMessage{Session: mine, Ciphertext: fmt.Appendf(nil, "round %d from %d, own", round, i)})
		w.submit(a, &tx.SendMessage{Session: theirs, Ciphertext: fmt.Appendf(nil, "round %d from %d, reply", round, i)})
		if i%2 == 1 {
			if round == 1 {
				w.submit(a, &tx.JoinChannel{Channel: w.channel})
			}
			w.submit(a, &tx.PostChannel{Channel: w.channel, Ciphertext: fmt.Appendf(nil, "post %d/%d", round, i)})
		}
	}
}

// TestNetwork runs SessionVM as a network of 3 and of 5 validators, each
// a plugin process with its own database, deciding blocks with nova/wave:
// transactions submitted to any node (one never proposes) are accepted on
// all, every node answers every read alike; competing proposals resolve;
// a validator killed with SIGKILL restarts from its database and catches
// up; a node that starts empty bootstraps the whole chain.
func TestNetwork(t *testing.T) {
	requireLong(t)
	buildPlugin(t)
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d validators", n), func(t *testing.T) { runNetwork(t, n) })
	}
}

func runNetwork(t *testing.T, n int) {
	const wait = 90 * time.Second
	people := vmtest.Identities(0x4e, 6)
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, nil, people...)
	if err != nil {
		t.Fatal(err)
	}
	net := newNetwork(t, ids.ID{'m', 'u', 'l', 't', 'i', 'n', 'o', 'd', 'e', byte(n)}, genesis)
	// Node 0 votes but never proposes: what is submitted there reaches
	// the proposers by gossip only. Node 1 keeps its database on disk and
	// is the one killed.
	var nodes []*node
	for i := range n {
		nodes = append(nodes, net.addNode(fmt.Sprintf("v%d", i), true, i != 0, i == 1))
	}
	for _, x := range nodes {
		x.start()
	}
	// Each plugin reads the validator set from its host over gRPC (the
	// others: itself left out) at start, in the background.
	for _, x := range nodes {
		waitValidators(t, x, n-1, wait)
	}
	w := &world{t: t, net: net}
	for i, p := range people {
		sid, err := crypto.ParseSessionID(p.SessionID)
		if err != nil {
			t.Fatal(err)
		}
		w.accounts = append(w.accounts, &account{id: p, sid: sid, home: nodes[i%n]})
	}

	// Signed prekeys (no one-time prekeys: getPrekeyBundle would pick one
	// at random per node), so that each session's creator claims its
	// peer's and the claim log (getClaims) has entries to compare.
	expires := time.Now().Add(7 * 24 * time.Hour).UnixMilli()
	for _, a := range w.accounts {
		w.submit(a, &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: expires, KEMPublicKey: a.id.KEMPublicKey}})
	}
	w.waitAccepted(wait)

	// Sessions (each account with the next) and a channel, then traffic
	// in rounds, through every node.
	k := len(w.accounts)
	for i, a := range w.accounts {
		nonce := a.nonce
		peer := w.accounts[(i+1)%k].sid
		w.submit(a, &tx.CreateSession{Participants: []crypto.SessionID{peer},
			Claims: []tx.Claim{{Participant: peer, SignedPrekeyID: 1}}, Metadata: []byte("multinode")})
		w.sessions = append(w.sessions, tx.SessionIDFor(net.chainID, a.sid, nonce))
	}
	owner := w.accounts[0]
	w.channel = tx.ChannelIDFor(net.chainID, owner.sid, owner.nonce)
	w.submit(owner, &tx.CreateChannel{Name: "general"})
	w.waitAccepted(wait)
	for i, a := range w.accounts { // each was claimed once, by its predecessor
		var log service.ClaimsReply
		if err := nodes[i%n].call("session.getClaims", map[string]any{"sessionId": a.id.SessionID, "limit": 10}, &log); err != nil {
			t.Fatal(err)
		}
		if len(log.Claims) != 1 || log.Claims[0].Claimer != w.accounts[(i+k-1)%k].id.SessionID || log.Claims[0].SignedPrekeyID != 1 {
			t.Fatalf("%s's claim log on %s: %+v", a.id.SessionID, nodes[i%n].name, log.Claims)
		}
	}
	if nodes[0].builtCount() != 0 {
		t.Fatal("the non-proposing node built a block")
	}
	for round := 1; round <= 2; round++ {
		w.traffic(round)
		w.waitAccepted(wait)
	}
	w.compare()

	// Lost gossip: the non-proposing node's next message reaches nobody;
	// its transaction still gets in, through a re-gossip round.
	rpcNode := nodes[0]
	lost := 0
	net.mu.Lock()
	net.dropGossip = func(from, to ids.NodeID) bool {
		if from == rpcNode.id && lost < n-1 {
			lost++
			return true
		}
		return false
	}
	net.mu.Unlock()
	w.accounts[0].home = rpcNode
	w.submit(w.accounts[0], &tx.SendMessage{Session: w.sessions[0], Ciphertext: []byte("first push lost")})
	w.waitAccepted(wait)
	net.mu.Lock()
	net.dropGossip = nil
	dropped := lost
	net.mu.Unlock()
	if dropped != n-1 {
		t.Fatalf("%d deliveries dropped, want %d (the push to every peer)", dropped, n-1)
	}

	// Competing proposals: with block messages held, two proposers each
	// build a block at the same height; released, one wins everywhere and
	// the other is rejected; every transaction is accepted once.
	before := net.rejected.Load()
	h := w.waitHeights(wait)
	net.hold()
	p1, p2 := nodes[1], nodes[2]
	net.force(p1, p2)
	built1, built2 := p1.builtCount(), p2.builtCount()
	w.accounts[1].home, w.accounts[2].home = p1, p2
	w.submit(w.accounts[1], &tx.SendMessage{Session: w.sessions[1], Ciphertext: []byte("race 1")})
	w.submit(w.accounts[2], &tx.SendMessage{Session: w.sessions[2], Ciphertext: []byte("race 2")})
	deadline := time.Now().Add(wait)
	for {
		if p1.builtCount() > built1 && p2.builtCount() > built2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the two proposers did not both build")
		}
		time.Sleep(5 * time.Millisecond)
	}
	net.release()
	net.force()
	w.waitAccepted(wait)
	if got := net.rejected.Load() - before; got == 0 {
		t.Fatal("no competing block was rejected")
	} else {
		t.Logf("competing proposals at height %d: %d rejections across the nodes", h+1, got)
	}
	w.compare()

	// A validator is killed with SIGKILL; the others go on without it.
	victim := nodes[1]
	_, atKill, _ := victim.frontier()
	victim.kill()
	for _, a := range w.accounts {
		if a.home == victim {
			a.home = nodes[2]
		}
	}
	w.traffic(3)
	w.waitAccepted(wait)
	// It restarts from its database and catches up from its peers.
	if loaded := victim.start(); loaded != atKill {
		t.Fatalf("restarted at height %d, it had accepted %d", loaded, atKill)
	}
	w.accounts[1].home = victim
	w.traffic(4)
	w.waitAccepted(wait)
	w.compare()

	// A node with an empty database bootstraps the whole chain, then
	// takes transactions.
	fresh := net.addNode("fresh", false, false, false)
	fresh.start()
	_, got, _ := fresh.frontier()
	_, want, _ := nodes[0].frontier()
	if got != want || got < 5 {
		t.Fatalf("bootstrapped to height %d, the network is at %d", got, want)
	}
	w.accounts[0].home = fresh
	w.traffic(5)
	w.waitAccepted(wait)
	w.compare()

	// The node that does not validate gives every validator a reserve;
	// no honest gossip was throttled anywhere, and no honest peer was
	// silenced (for a forged signature, or an entry no honest relay sends).
	waitValidators(t, fresh, n, wait)
	for _, x := range append(nodes, fresh) {
		st, err := x.gossipStats()
		if err != nil {
			t.Fatal(err)
		}
		if st.TxsThrottled != 0 || st.TxsReceived == 0 || st.PeersPenalized != 0 {
			t.Fatalf("%s: gossip stats %+v: want gossip received, none throttled, no peer penalized", x.name, st)
		}
	}
}

// waitValidators waits until x's plugin shares its gossip budget among
// want validators.
func waitValidators(t *testing.T, x *node, want int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, err := x.gossipStats()
		if err == nil && st.Validators == uint64(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: gossip stats %+v (%v): want %d validators", x.name, st, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
