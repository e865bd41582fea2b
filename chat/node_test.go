package chat

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/wire"
)

// Tests of docs/protocol.md section 10: which tree a pair uses depends only
// on signed handshakes, never on what a node reports (review findings C1
// and H1).

// deliverAt delivers chain entry k to participant j at a position the node
// chose.
func (net *testNet) deliverAt(j, k int, position uint64) (*Message, error) {
	d := net.delivery(k)
	d.Position = position
	return net.convs[j].Open(net.now, d)
}

// currentTree is participant i's current tree with peer.
func (net *testNet) currentTree(i, peer int) ratchet.ID {
	id, ok := net.convs[i].rec.state.CurrentID(uint8(peer))
	if !ok {
		net.t.Fatalf("participant %d has no current tree with %d", i, peer)
	}
	return id
}

// stanzaTrees returns the tree tags (continue, step) or tree IDs (handshake)
// of the stanzas of entry k, by recipient.
func (net *testNet) stanzaTree(k, r int) [wire.TreeTagSize]byte {
	p := net.chain[k]
	e, err := wire.Parse(p.env)
	if err != nil {
		net.t.Fatal(err)
	}
	st := &e.Stanzas[stanzaIndex(uint8(r), uint8(p.sender))]
	switch st.Type {
	case wire.Continue, wire.Step:
		return st.Tree
	case wire.Handshake:
		c := net.convs[p.sender]
		h := ratchet.Handshake{Initiator: c.parts[p.sender].id[:], Responder: c.parts[r].id[:], SPKID: st.SPKID,
			OPKID: st.OPKID, Gen: st.Gen, C1: st.C1, C2: st.C2, C3: st.C3}
		id := h.TreeID(c.env.SC)
		return [wire.TreeTagSize]byte(id[:wire.TreeTagSize])
	}
	net.t.Fatalf("entry %d has no stanza for %d", k, r)
	return [wire.TreeTagSize]byte{}
}

// TestLyingNodeConverges is the attack of review finding C1: both sides
// initiate at once, and the node shows each side the two handshakes with
// the positions swapped (its own first), and replays the other's. With
// positions deciding, each side would keep its own tree, send only in it,
// and never publish a fresh key to the other: a thief with a copy of Bob's
// state would read everything Alice sends, forever. Here both compute the
// same tree from the signed handshakes, send in it, and a copy of Bob's
// state stops reading Alice once a round trip has passed.
func TestLyingNodeConverges(t *testing.T) {
	net := newTestNet(t, 2, nil)
	a := net.send(0, "alice, in her tree")[0]
	b := net.send(1, "bob, in his tree")[0]
	// Alice sees her handshake at 1 and Bob's at 2; Bob the reverse.
	for _, step := range []struct {
		who, entry int
		pos        uint64
	}{{0, a, 1}, {0, b, 2}, {1, b, 1}, {1, a, 2}} {
		if _, err := net.deliverAt(step.who, step.entry, step.pos); err != nil {
			t.Fatalf("participant %d, entry %d at position %d: %v", step.who, step.entry, step.pos, err)
		}
	}
	// The node replays Alice's handshake to Bob at a made-up position.
	if _, err := net.deliverAt(1, a, 7); !errors.Is(err, ErrReplay) {
		t.Fatalf("replayed handshake: %v", err)
	}
	if net.currentTree(0, 1) != net.currentTree(1, 0) {
		t.Fatal("the two sides chose different trees from the same handshakes")
	}
	cur := net.currentTree(0, 1)
	// A thief copies Bob's state now. Both send in the chosen tree from now
	// on; the node keeps lying about positions (it reports every message at
	// position 1).
	theft := steal(t, net, 1)
	var envs [][]byte
	for i, from := range []int{0, 0, 1, 0, 1, 0} {
		to := 1 - from
		k := net.send(from, fmt.Sprintf("message %d", i))[0]
		if tag := net.stanzaTree(k, to); tag != [wire.TreeTagSize]byte(cur[:wire.TreeTagSize]) {
			t.Fatalf("message %d from %d is not in the chosen tree", i, from)
		}
		for _, j := range []int{to, from} {
			if _, err := net.deliverAt(j, k, 1); err != nil {
				t.Fatalf("message %d to %d: %v", i, j, err)
			}
		}
		envs = append(envs, net.chain[k].env)
	}
	// Alice's first two messages rest on keys Bob had when the copy was
	// taken: readable (the attacker is not vacuous). Bob's reply steps to a
	// fresh key; Alice's next message targets it: from then on, nothing. In
	// a split pair Alice would never target a fresh key of Bob's, and the
	// copy would read all of her messages.
	got := theft.attack(t, net, 1, envs)
	if want := []bool{true, true, false, false, false, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the copy of Bob's state reads %v, want %v", got, want)
	}
}

// TestLyingNodeRandom: two honest participants, each behind a node that
// delays, reorders, withholds for a while, replays and reports arbitrary
// positions, and that also re-initiate (resets) now and then. Once the
// nodes deliver everything, the participants agree on one tree per pair
// and every new message opens.
func TestLyingNodeRandom(t *testing.T) {
	seeds := 6
	if raceEnabled {
		seeds = 3
	}
	if f := soak(); f > 0 {
		seeds *= f
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runLyingNode(t, seed) })
	}
}

func runLyingNode(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0xc1))
	net := newTestNet(t, 2, nil)
	pending := [2][]int{} // per recipient, entries not delivered yet
	opened := [2]map[int]bool{{}, {}}
	resets := [2]int{}
	deliver := func(j, i int) {
		k := pending[j][i]
		pending[j] = append(pending[j][:i], pending[j][i+1:]...)
		pos := uint64(rng.IntN(len(net.chain) + 5)) // the node's positions are arbitrary
		_, err := net.deliverAt(j, k, pos+1)
		switch {
		case err == nil:
			opened[j][k] = true
		case errors.Is(err, ErrChainNotStarted), errors.Is(err, ErrUnknownTree), errors.Is(err, ErrUnknownTarget),
			errors.Is(err, ErrNotAddressed):
			pending[j] = append(pending[j], k) // retry later
		case errors.Is(err, ErrReplay), errors.Is(err, ErrDuplicate):
			if !opened[j][k] && net.chain[k].sender != j {
				t.Fatalf("entry %d to %d refused as a replay before it was opened", k, j)
			}
		default:
			t.Fatalf("entry %d to %d: %v", k, j, err)
		}
	}
	for range 120 {
		switch x := rng.IntN(100); {
		case x < 30:
			i := rng.IntN(2)
			if resets[i] < 1 && rng.IntN(15) == 0 && !net.convs[i].rec.state.PendingHandshake(uint8(1-i)) {
				if err := net.convs[i].Reset(net.sid(1 - i)); err == nil {
					resets[i]++
				}
			}
			outs, err := net.convs[i].Send(net.now, []byte(fmt.Sprintf("from %d at %d", i, len(net.chain))), net.dir)
			if errors.Is(err, ErrOutboxFull) {
				continue
			}
			if err != nil {
				t.Fatalf("participant %d send: %v", i, err)
			}
			for _, o := range outs {
				k := net.post(i, o)
				pending[0] = append(pending[0], k)
				pending[1] = append(pending[1], k)
			}
		case x < 90:
			// The node delivers something, often not the oldest: it
			// withholds the rest for now.
			j := rng.IntN(2)
			if len(pending[j]) > 0 {
				deliver(j, rng.IntN(len(pending[j])))
			}
		case x < 95:
			// It replays something already delivered.
			j := rng.IntN(2)
			if len(net.chain) > 0 {
				k := rng.IntN(len(net.chain))
				if opened[j][k] {
					if _, err := net.deliverAt(j, k, uint64(rng.IntN(50)+1)); !errors.Is(err, ErrReplay) &&
						!errors.Is(err, ErrUnknownTarget) && !errors.Is(err, ErrChainNotStarted) {
						t.Fatalf("replay of entry %d to %d: %v", k, j, err)
					}
				}
			}
		default:
			net.now = net.now.Add(time.Duration(rng.IntN(3)) * time.Hour)
		}
	}
	// The nodes finally deliver everything (still in any order, at any
	// position), as often as it takes.
	for round := 0; round < 10 && len(pending[0])+len(pending[1]) > 0; round++ {
		for j := range 2 {
			for n := len(pending[j]); n > 0; n-- {
				deliver(j, rng.IntN(len(pending[j])))
			}
		}
	}
	// Then each side speaks and the other answers, the node still lying
	// about positions; within a few round trips every message opens and
	// both send in one tree.
	for round := range 4 {
		for _, from := range []int{0, 1} {
			outs, err := net.convs[from].Send(net.now, []byte(fmt.Sprintf("settle %d from %d", round, from)), net.dir)
			if err != nil {
				t.Fatalf("settling, participant %d: %v", from, err)
			}
			for _, o := range outs {
				k := net.post(from, o)
				for _, j := range []int{1 - from, from} {
					_, err := net.deliverAt(j, k, uint64(rng.IntN(1000)+1))
					if err != nil && (round >= 2 || !errors.Is(err, ErrUnknownTree)) {
						t.Fatalf("settling round %d, entry %d to %d: %v", round, k, j, err)
					}
				}
			}
		}
	}
	if net.currentTree(0, 1) != net.currentTree(1, 0) {
		t.Fatal("the participants use different trees")
	}
}

// TestTreeChoiceSurvivesDeletion is review finding H1's situation: several
// trees of one pair, replaced in turn; one side deletes tree state at its
// own time (idle trees past MaxSkipAge), the other keeps it. The current
// tree never changes by a deletion (it is the maximum of the tombstones),
// so the sides keep agreeing.
func TestTreeChoiceSurvivesDeletion(t *testing.T) {
	net := newTestNet(t, 2, nil)
	// T1 and T2 at once (siblings of generation 1), then three resets by
	// each side: the eight handshakes the chain allows the pair.
	a := net.send(0, "t1")[0]
	b := net.send(1, "t2")[0]
	for _, s := range [][2]int{{0, a}, {1, a}, {0, b}, {1, b}} {
		if _, err := net.open(s[0], s[1]); err != nil {
			t.Fatal(err)
		}
	}
	agree := func(when string) ratchet.ID {
		t.Helper()
		c0, c1 := net.currentTree(0, 1), net.currentTree(1, 0)
		if c0 != c1 {
			t.Fatalf("%s: the sides use different trees", when)
		}
		return c0
	}
	agree("after simultaneous initiation")
	for i := range 2 * (MaxHandshakesPerPeer - 1) {
		from := i % 2
		if err := net.convs[from].Reset(net.sid(1 - from)); err != nil {
			t.Fatal(err)
		}
		exchange(net, from, 1-from, fmt.Sprintf("reset %d", i))
		exchange(net, 1-from, from, fmt.Sprintf("answer %d", i))
		agree(fmt.Sprintf("after reset %d", i))
	}
	if n := len(net.convs[0].rec.state.Pairs[1].Known); n != 2*MaxHandshakesPerPeer {
		t.Fatalf("%d tombstones, want %d", n, 2*MaxHandshakesPerPeer)
	}
	for _, i := range []int{0, 1} {
		if err := net.convs[i].Reset(net.sid(1 - i)); !errors.Is(err, ErrTooManyHandshakes) {
			t.Fatalf("participant %d: a fifth handshake in the session: %v", i, err)
		}
	}
	cur := agree("with every handshake the chain allows")
	// Only Bob's clock moves past MaxSkipAge: he deletes every idle tree;
	// Alice keeps hers.
	later := net.now.Add(MaxSkipAge + time.Hour)
	net.now = later
	k := net.send(1, "bob, a week later")
	net.mustOpen(0, k[0], "bob, a week later")
	if n := len(net.convs[1].rec.state.Pairs[0].Trees); n != 1 {
		t.Fatalf("Bob kept %d trees, want only the current one", n)
	}
	if got := agree("after Bob deleted the idle trees"); got != cur {
		t.Fatal("deleting idle trees changed the current tree")
	}
	exchange(net, 0, 1, "still talking")
	exchange(net, 1, 0, "yes")
}
