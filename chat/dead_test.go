package chat

import (
	"errors"
	"fmt"
	"testing"
)

// Tests of docs/protocol.md section 10.4: a refused or dead transaction
// never wedges a pair, never reuses a key, never loses a message (review
// finding H2).

// history returns participant i's history as plaintexts, checking that no
// message appears twice.
func (net *testNet) history(i int) []string {
	net.t.Helper()
	h, err := net.convs[i].History()
	if err != nil {
		net.t.Fatal(err)
	}
	var out []string
	seen := map[MessageID]bool{}
	for _, m := range h {
		if seen[m.ID] {
			net.t.Fatalf("participant %d: message %q twice in the history", i, m.Plaintext)
		}
		seen[m.ID] = true
		out = append(out, string(m.Plaintext))
	}
	return out
}

// sendUnposted has participant i send pt without posting the envelopes.
func (net *testNet) sendUnposted(i int, pt string) []Outgoing {
	net.t.Helper()
	outs, err := net.convs[i].Send(net.now, []byte(pt), net.dir)
	if err != nil {
		net.t.Fatalf("participant %d send: %v", i, err)
	}
	return outs
}

// TestDeadClaimRetried: Bob's first message claims one of Alice's one-time
// prekeys, and the chain refuses the transaction (another initiator claimed
// it first). Bob reports it dead; the message goes out again with a new
// bundle and fresh keys, and the pair works.
func TestDeadClaimRetried(t *testing.T) {
	net := newTestNet(t, 3, nil)
	m := newModel(t, net, 0) // checks that no message key serves two envelopes
	dead := net.sendUnposted(1, "bob to all")
	if len(dead) != 1 || len(dead[0].Claims) != 2 || dead[0].Claims[0].OneTimePrekeyID == 0 || dead[0].Claims[1].OneTimePrekeyID == 0 {
		t.Fatalf("bob's first message should claim a one-time prekey of alice and of carol: %d envelopes", len(dead))
	}
	// The refused transaction's envelope never reaches the chain.
	again, err := net.convs[1].Dead(net.now, dead[0].ID, net.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 1 || again[0].Message != dead[0].Message || again[0].ID == dead[0].ID || len(again[0].Claims) != 2 {
		t.Fatalf("sent again: %d envelopes", len(again))
	}
	for i := range 2 {
		if again[0].Claims[i].OneTimePrekeyID == dead[0].Claims[i].OneTimePrekeyID {
			t.Fatal("the new handshake claims the refused one-time prekey again")
		}
	}
	k := net.post(1, again[0])
	m.record(k, "bob to all")
	for j := range 3 {
		net.mustOpen(j, k, "bob to all")
	}
	for _, i := range []int{2, 0, 1} {
		kk := net.send(i, fmt.Sprintf("from %d", i))
		for _, k := range kk {
			m.record(k, "")
		}
		for j := range 3 {
			net.mustOpen(j, kk[len(kk)-1], fmt.Sprintf("from %d", i))
		}
	}
	if out, _ := net.convs[1].Outbox(); len(out) != 0 {
		t.Fatalf("%d envelopes left in bob's outbox", len(out))
	}
}

// TestDeadPipelined: Alice sends three messages before she learns that the
// transaction of the first (her handshake with Bob) died. The later two
// continue in the dead tree, so all three go out again. The second of the
// old ones still lands (it raced its replacement for a nonce): Bob cannot
// read it, and reads the copy; the third dies. Each message reaches Bob
// exactly once, no key serves two envelopes, and the pair works after.
func TestDeadPipelined(t *testing.T) {
	net := newTestNet(t, 2, nil)
	m := newModel(t, net, 0)
	var first []Outgoing
	for i := range 3 {
		first = append(first, net.sendUnposted(0, fmt.Sprintf("m%d", i))...)
	}
	again, err := net.convs[0].Dead(net.now, first[0].ID, net.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 3 {
		t.Fatalf("%d envelopes sent again, want 3", len(again))
	}
	out, err := net.convs[0].Outbox()
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0].ID != again[0].ID {
		t.Fatalf("the outbox lists %d envelopes (superseded ones are left out)", len(out))
	}
	// The old second message lands first (it won the race for its nonce).
	k := net.post(0, first[1])
	m.record(k, "m1")
	if _, err := net.open(1, k); !errors.Is(err, ErrUnknownTree) {
		t.Fatalf("bob opens a message of the dead tree: %v", err)
	}
	if _, err := net.open(0, k); err != nil { // alice sees it land
		t.Fatal(err)
	}
	// Its replacement died (the nonce was taken by the old one), and so
	// did the old third one.
	if more, err := net.convs[0].Dead(net.now, again[1].ID, net.dir); err != nil || len(more) != 2 {
		t.Fatalf("the replacement of a landed superseded message: %d envelopes, %v", len(more), err)
	} else {
		again = append(again[:1], more...)
	}
	if more, err := net.convs[0].Dead(net.now, first[2].ID, net.dir); err != nil || len(more) != 0 {
		t.Fatalf("a superseded envelope that died: %d envelopes sent, %v", len(more), err)
	}
	for i, o := range again {
		k := net.post(0, o)
		m.record(k, "")
		want := fmt.Sprintf("m%d", i)
		net.mustOpen(1, k, want)
		net.mustOpen(0, k, want)
	}
	exchange(net, 1, 0, "bob answers")
	exchange(net, 0, 1, "alice again")
	if got, want := fmt.Sprint(net.history(1)), "[m0 m1 m2 bob answers alice again]"; got != want {
		t.Fatalf("bob's history %s, want %s", got, want)
	}
	if out, _ := net.convs[0].Outbox(); len(out) != 0 {
		t.Fatalf("%d envelopes left in alice's outbox", len(out))
	}
}

// TestDeadButLanded: the node says Alice's transaction was refused, but it
// landed. The message went out again; Bob opens both copies: one is the
// message, the other a duplicate. Both handshakes exist; the new one has
// the higher generation, and both sides use it.
func TestDeadButLanded(t *testing.T) {
	net := newTestNet(t, 2, nil)
	m := newModel(t, net, 0)
	lied := net.sendUnposted(0, "hello")
	again, err := net.convs[0].Dead(net.now, lied[0].ID, net.dir)
	if err != nil {
		t.Fatal(err)
	}
	k1 := net.post(0, again[0])
	k0 := net.post(0, lied[0]) // it landed after all, later
	m.record(k1, "hello")
	m.record(k0, "hello")
	net.mustOpen(1, k0, "hello")
	if _, err := net.open(1, k1); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("the second copy: %v", err)
	}
	if _, err := net.open(1, k1); !errors.Is(err, ErrReplay) {
		t.Fatalf("the second copy again: %v", err)
	}
	net.mustOpen(0, k0, "hello") // the dead envelope, landed: revived
	net.mustOpen(0, k1, "hello")
	if net.currentTree(0, 1) != net.currentTree(1, 0) {
		t.Fatal("the sides use different trees")
	}
	exchange(net, 1, 0, "hi")
	exchange(net, 0, 1, "both trees exist; the newer is used")
	if got, want := fmt.Sprint(net.history(1)), "[hello hi both trees exist; the newer is used]"; got != want {
		t.Fatalf("bob's history %s, want %s", got, want)
	}
}

// TestDeadSessionClaim: the creator's first message uses its session claim;
// its transaction dies. The claim may have been used after all (if the node
// lied), so the message goes out again with a transaction claim of a new
// bundle; both handshakes open at Bob if both land. The spent session claim
// still counts against the claims per pair: after it and three more
// handshakes, a fifth is refused.
func TestDeadSessionClaim(t *testing.T) {
	net := newTestNet(t, 2, nil)
	dead := net.sendUnposted(0, "first")
	if len(dead[0].Claims) != 0 {
		t.Fatal("the creator's first handshake should use its session claim")
	}
	again, err := net.convs[0].Dead(net.now, dead[0].ID, net.dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again[0].Claims) != 1 || again[0].Claims[0].Participant != net.sid(1) {
		t.Fatal("sent again without a transaction claim")
	}
	k1 := net.post(0, again[0])
	k0 := net.post(0, dead[0]) // it landed after all
	net.mustOpen(1, k1, "first")
	if _, err := net.open(1, k0); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("the first copy, landed after all: %v", err)
	}
	net.mustOpen(0, k1, "first")
	net.mustOpen(0, k0, "first")
	exchange(net, 1, 0, "ok")
	// Two more resets by Alice (claims 3 and 4 of the pair), then none.
	for i := range 2 {
		if err := net.convs[0].Reset(net.sid(1)); err != nil {
			t.Fatal(err)
		}
		exchange(net, 0, 1, fmt.Sprintf("reset %d", i))
	}
	if err := net.convs[0].Reset(net.sid(1)); !errors.Is(err, ErrTooManyHandshakes) {
		t.Fatalf("a fifth handshake with bob in the session: %v", err)
	}
	exchange(net, 0, 1, "the pair goes on in its current tree")
}
