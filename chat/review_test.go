package chat

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/luxfi/session/chat/internal/options"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// Tests of the review findings H3, M1 to M12 (M3 and M5 are elsewhere or
// text only), L1 and L3 (docs/protocol.md, section 17). C1, H1 and H2 are
// in node_test.go and dead_test.go.

// TestHandshakeClaimChecked (H3): every handshake has exactly one claim
// naming the signed and one-time prekey it used, and the responder refuses
// one whose claim is missing, duplicated or different: a node cannot make a
// first flight skip the one-time prekey, or use another signed prekey,
// without the claim on chain saying so.
func TestHandshakeClaimChecked(t *testing.T) {
	net := newTestNet(t, 3, nil)
	outs := net.sendUnposted(1, "bob starts with alice and carol")
	if len(outs) != 1 || len(outs[0].Claims) != 2 {
		t.Fatalf("bob's first message has %d claims, want one per handshake", len(outs[0].Claims))
	}
	k := net.post(1, outs[0])
	var good Claim
	for _, c := range outs[0].Claims {
		if c.Participant == net.sid(2) {
			good = c
		}
	}
	if good.SignedPrekeyID == 0 || good.OneTimePrekeyID == 0 {
		t.Fatalf("carol's claim %+v does not name both prekeys", good)
	}
	alice := outs[0].Claims[0]
	for name, claims := range map[string][]Claim{
		"no claim":                  nil,
		"only another's claim":      {alice},
		"one-time prekey 0":         {alice, {Participant: good.Participant, SignedPrekeyID: good.SignedPrekeyID}},
		"another signed prekey":     {alice, {Participant: good.Participant, SignedPrekeyID: good.SignedPrekeyID + 1, OneTimePrekeyID: good.OneTimePrekeyID}},
		"another one-time prekey":   {alice, {Participant: good.Participant, SignedPrekeyID: good.SignedPrekeyID, OneTimePrekeyID: good.OneTimePrekeyID + 1}},
		"two claims for the target": {alice, good, good},
	} {
		d := net.delivery(k)
		d.Claims = claims
		if _, err := net.convs[2].Open(net.now, d); !errors.Is(err, ErrUnclaimedPrekey) {
			t.Errorf("%s: %v, want ErrUnclaimedPrekey", name, err)
		}
	}
	net.mustOpen(2, k, "bob starts with alice and carol")
	net.mustOpen(0, k, "bob starts with alice and carol")

	// The creator's session claim covers one handshake: its first. A later
	// handshake of the creator needs its own claim.
	net.mustOpen(1, k, "bob starts with alice and carol")
	first := net.send(0, "alice, on her session claim for carol")
	net.mustOpen(2, first[0], "alice, on her session claim for carol")
	net.mustOpen(0, first[0], "alice, on her session claim for carol")
	if err := net.convs[0].Reset(net.sid(2)); err != nil {
		t.Fatal(err)
	}
	again := net.sendUnposted(0, "alice resets carol")
	if len(again[0].Claims) != 1 || again[0].Claims[0].Participant != net.sid(2) {
		t.Fatal("the creator's second handshake with carol has no transaction claim")
	}
	k2 := net.post(0, again[0])
	d := net.delivery(k2)
	d.Claims = nil
	if _, err := net.convs[2].Open(net.now, d); !errors.Is(err, ErrUnclaimedPrekey) {
		t.Fatalf("a second handshake on the creator's session claim: %v", err)
	}
	net.mustOpen(2, k2, "alice resets carol")

	// Without a one-time prekey, the claim says 0.
	net2 := newTestNet(t, 2, nil)
	net2.dir.noOneOTP = true
	o := net2.sendUnposted(1, "no one-time prekey left")
	if len(o[0].Claims) != 1 || o[0].Claims[0].OneTimePrekeyID != 0 || o[0].Claims[0].SignedPrekeyID == 0 {
		t.Fatalf("claim %+v, want the signed prekey and one-time prekey 0", o[0].Claims)
	}
}

// TestReplayAfterTreeDeleted (M2): Bob's handshake without a one-time
// prekey is replaced by a reset, and its tree's state is deleted a week
// later. Alice still holds her signed prekey secret, so she could compute
// the handshake's root again: the node replays the handshake and its first
// flight, and every envelope is refused as a replay (the tree's tombstone).
func TestReplayAfterTreeDeleted(t *testing.T) {
	net := newTestNet(t, 2, nil)
	net.dir.noOneOTP = true
	s := *net.session
	s.ID[0] ^= 1
	s.Claims = nil
	for i := range 2 {
		c, err := net.devs[i].Conversation(&s)
		if err != nil {
			t.Fatal(err)
		}
		net.convs[i] = c
	}
	net.session = &s
	hs := net.send(1, "bob, no one-time prekey")[0]
	more := net.send(1, "bob again")[0]
	net.mustOpen(0, hs, "bob, no one-time prekey")
	net.mustOpen(0, more, "bob again")
	old := net.currentTree(0, 1)
	if err := net.convs[0].Reset(net.sid(1)); err != nil {
		t.Fatal(err)
	}
	exchange(net, 0, 1, "alice resets")
	exchange(net, 1, 0, "bob answers in the new tree")
	net.now = net.now.Add(MaxSkipAge + time.Hour)
	exchange(net, 1, 0, "a week later")
	if net.convs[0].rec.state.Tree(1, old) != nil {
		t.Fatal("the replaced tree's state was not deleted")
	}
	if net.devs[0].PrekeyStatus().SignedPrekeyID == 0 {
		t.Fatal("alice no longer holds a signed prekey: the replay would fail for another reason")
	}
	// Alice also deleted her history: only the tombstone remembers the tree.
	if err := net.convs[0].DeleteHistory(uint64(len(net.chain))); err != nil {
		t.Fatal(err)
	}
	for _, k := range []int{hs, more} {
		if _, err := net.open(0, k); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of entry %d after its tree was deleted: %v", k, err)
		}
	}
	net.history(0) // fails if a message appears twice
}

// TestSenderOrderAuthenticated (M4): one sender's messages carry signed,
// strictly increasing times, and each names the message its sender had
// last seen. The node delivers Alice's three messages to Bob in reverse
// order and reports them at reversed positions: Bob's history shows them
// in the order Alice wrote them, and her answer names the question it
// answers, whatever position the node gives it.
func TestSenderOrderAuthenticated(t *testing.T) {
	net := newTestNet(t, 3, nil)
	broadcast(net, 0, "hello")
	broadcast(net, 1, "hi")
	var ks []int
	for _, text := range []string{"No.", "Wait.", "Yes, go ahead."} {
		ks = append(ks, net.send(0, text)[0]) // the same clock reading for all three
	}
	// The first starts Alice's chain, so it must come first; the node then
	// delivers the third before the second, and reports the reverse order.
	times := map[int]time.Time{}
	for _, kp := range [][2]int{{ks[0], 102}, {ks[2], 100}, {ks[1], 101}} {
		m, err := net.deliverAt(1, kp[0], uint64(kp[1]))
		if err != nil {
			t.Fatal(err)
		}
		times[kp[0]] = m.SentAt
	}
	if !times[ks[0]].Before(times[ks[1]]) || !times[ks[1]].Before(times[ks[2]]) {
		t.Fatalf("sentAt not strictly increasing over one sender's messages: %v", times)
	}
	var got []string
	h, err := net.convs[1].History()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range h {
		if m.Sender == net.sid(0) {
			got = append(got, string(m.Plaintext))
		}
	}
	if want := "[hello No. Wait. Yes, go ahead.]"; fmt.Sprint(got) != want {
		t.Fatalf("alice's messages in bob's history: %v, want %s", got, want)
	}
	// Carol and Bob each ask; Alice has read only Carol's question when she
	// answers. The node puts the answer after Bob's question: Bob still
	// sees which question it answers.
	for _, k := range ks {
		net.mustOpen(2, k, map[int]string{ks[0]: "No.", ks[1]: "Wait.", ks[2]: "Yes, go ahead."}[k])
	}
	q1 := net.send(2, "Should I wire the money?")[0]
	q2 := net.send(1, "Should I cancel?")[0]
	m1, err := net.open(0, q1)
	if err != nil {
		t.Fatal(err)
	}
	answer := net.send(0, "yes")[0]
	if _, err := net.open(1, q1); err != nil {
		t.Fatal(err)
	}
	m, err := net.deliverAt(1, answer, uint64(net.chain[q2].pos+1))
	if err != nil {
		t.Fatal(err)
	}
	if m.After != m1.ID {
		t.Fatal("the answer does not name the question Alice had read")
	}
}

// TestNotFromThisDevice (M6): an envelope of Alice's identity that her
// device did not make (a second device, or a thief with her signing key) is
// reported as such; replays of her own envelopes are replays.
func TestNotFromThisDevice(t *testing.T) {
	net := newTestNet(t, 2, nil)
	own := net.send(0, "alice")[0]
	net.mustOpen(1, own, "alice")
	net.mustOpen(0, own, "alice")
	if _, err := net.open(0, own); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of an own envelope: %v", err)
	}
	other, err := NewDevice(net.ids[0], net.chainID, NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.GeneratePrekeys(net.now, true, 1); err != nil {
		t.Fatal(err)
	}
	conv, err := other.Conversation(net.session)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := conv.Send(net.now, []byte("I am alice too"), net.dir)
	if err != nil {
		t.Fatal(err)
	}
	k := net.post(0, outs[0])
	if _, err := net.open(0, k); !errors.Is(err, ErrNotFromThisDevice) {
		t.Fatalf("an envelope of alice's identity from another device: %v", err)
	}
}

// TestLostDevice (M6, M10, docs/protocol.md section 10.5): Alice's device
// is lost; her identity comes back on a new device. It continues the prekey
// IDs, retires the old one-time prekeys, delivers the session to itself
// (learning the generations of the old trees), and its first message
// re-initiates above them: the pair works again and both use the new tree.
func TestLostDevice(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "before")
	exchange(net, 1, 0, "reply")
	dev, err := NewDevice(net.ids[0], net.chainID, NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.ResumePrekeyIDs(1, 8); err != nil { // the chain's highest IDs for alice
		t.Fatal(err)
	}
	up, err := dev.GeneratePrekeys(net.now, true, 4)
	if err != nil {
		t.Fatal(err)
	}
	if up.SignedPrekey.ID != 2 || up.OneTimePrekeys[0].ID != 9 || up.RetireThrough != 8 {
		t.Fatalf("upload: signed %d, first one-time %d, retire through %d", up.SignedPrekey.ID, up.OneTimePrekeys[0].ID, up.RetireThrough)
	}
	sid := net.sid(0)
	net.dir.oneTime[sid] = slices.DeleteFunc(net.dir.oneTime[sid], func(o OneTimePrekey) bool { return o.ID <= up.RetireThrough })
	net.dir.publish(net.ids[0], up)
	conv, err := dev.Conversation(net.session)
	if err != nil {
		t.Fatal(err)
	}
	oldGen := net.convs[1].rec.state.MaxGen(0)
	for k := range net.chain {
		_, err := conv.Open(net.now, net.delivery(k))
		for _, e := range []error{ErrNotFromThisDevice, ErrUnknownPrekey, ErrUnknownTree, ErrUnknownTarget, ErrChainNotStarted} {
			if errors.Is(err, e) {
				err = nil
			}
		}
		if err != nil {
			t.Fatalf("the new device delivers entry %d: %v", k, err)
		}
	}
	if got := conv.rec.state.MaxGen(1); got != oldGen {
		t.Fatalf("the new device learned generation %d, the pair has %d", got, oldGen)
	}
	net.devs[0], net.convs[0] = dev, conv
	k := net.send(0, "I lost my phone")[0]
	net.mustOpen(1, k, "I lost my phone")
	net.mustOpen(0, k, "I lost my phone")
	exchange(net, 1, 0, "welcome back")
	exchange(net, 0, 1, "thanks")
	if net.currentTree(0, 1) != net.currentTree(1, 0) || net.convs[1].rec.state.MaxGen(0) != oldGen+1 {
		t.Fatal("the pair does not use the new device's tree")
	}
}

// TestReaderHeals (M7): Carol only reads. A copy of her state reads the
// whole group's later traffic, until her ratchet message (due after
// MaxChainAge) publishes a fresh key that the others step against.
func TestReaderHeals(t *testing.T) {
	net := newTestNet(t, 3, nil)
	broadcast(net, 0, "alice")
	broadcast(net, 1, "bob")
	broadcast(net, 2, "carol, once")
	theft := steal(t, net, 2)
	var before [][]byte
	for i := range 4 {
		before = append(before, broadcast(net, i%2, fmt.Sprintf("message %d", i)))
	}
	for i, r := range theft.attack(t, net, 2, before) {
		if !r {
			t.Fatalf("message %d: the copy of a silent reader's state does not read it (the test is vacuous)", i)
		}
	}
	if net.convs[2].HealDue(net.now) {
		t.Fatal("a ratchet message is due too early")
	}
	net.now = net.now.Add(MaxChainAge)
	if !net.convs[2].HealDue(net.now) {
		t.Fatal("no ratchet message due after MaxChainAge")
	}
	outs, err := net.convs[2].Heal(net.now)
	if err != nil || len(outs) != 1 || !outs[0].Control {
		t.Fatalf("heal: %d envelopes, %v", len(outs), err)
	}
	k := net.post(2, outs[0])
	for j := range 3 {
		net.mustOpen(j, k, "")
	}
	if net.convs[2].HealDue(net.now) {
		t.Fatal("still due after the ratchet message")
	}
	var after [][]byte
	for i := range 4 {
		after = append(after, broadcast(net, i%2, fmt.Sprintf("after the heal %d", i)))
	}
	for i, r := range theft.attack(t, net, 2, after) {
		if r {
			t.Errorf("message %d after carol's ratchet message is readable with the old copy", i)
		}
	}
}

// TestExcluded (M8): a participant that left is excluded: later messages
// have no stanza for it, so not even its whole state reads them.
func TestExcluded(t *testing.T) {
	net := newTestNet(t, 3, nil)
	broadcast(net, 0, "alice")
	broadcast(net, 2, "carol, leaving")
	theft := steal(t, net, 2)
	if err := net.convs[0].SetExcluded([]crypto.SessionID{net.sid(2)}); err != nil {
		t.Fatal(err)
	}
	if err := net.convs[0].SetExcluded([]crypto.SessionID{net.sid(0)}); !errors.Is(err, ErrInvalidSession) {
		t.Fatalf("excluding oneself: %v", err)
	}
	k := net.send(0, "without carol")[0]
	net.mustOpen(1, k, "without carol")
	if _, err := net.open(2, k); !errors.Is(err, ErrNotAddressed) {
		t.Fatalf("carol opens a message she is excluded from: %v", err)
	}
	if theft.attack(t, net, 2, [][]byte{net.chain[k].env})[0] {
		t.Fatal("carol's state reads a message she was excluded from")
	}
	net.reopen(0) // the exclusion is stored
	k = net.send(0, "still without carol")[0]
	if _, err := net.open(2, k); !errors.Is(err, ErrNotAddressed) {
		t.Fatalf("after a restart: %v", err)
	}
	if err := net.convs[0].SetExcluded(nil); err != nil {
		t.Fatal(err)
	}
	k = net.send(0, "carol is back")[0]
	net.mustOpen(2, k, "carol is back")
}

// TestClaimedPrekeysForgotten (M9): claimed one-time prekey secrets do not
// count against the cap, and are deleted at their deadline: a stranger who
// claims and never sends cannot stop a user from generating new ones.
func TestClaimedPrekeysForgotten(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dev, err := NewDevice(testIdentity(t, 40), [32]byte{1}, NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint32
	for range MaxOneTimePrekeys / MaxPrekeysPerUpload {
		up, err := dev.GeneratePrekeys(now, false, MaxPrekeysPerUpload)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range up.OneTimePrekeys {
			ids = append(ids, o.ID)
		}
	}
	if _, err := dev.GeneratePrekeys(now, false, 1); !errors.Is(err, ErrTooManyPrekeys) {
		t.Fatalf("beyond the cap: %v", err)
	}
	// A stranger claimed 200 of them in sessions that end within a day.
	var claims []ClaimedPrekey
	for _, id := range ids[:200] {
		claims = append(claims, ClaimedPrekey{ID: id, SessionEnd: now.Add(24 * time.Hour)})
	}
	if err := dev.NoteClaims(now, claims); err != nil {
		t.Fatal(err)
	}
	if st := dev.PrekeyStatus(); st.OneTimePrekeys != 56 || st.ClaimedOneTimePrekeys != 200 {
		t.Fatalf("status %+v", st)
	}
	if _, err := dev.GeneratePrekeys(now, false, MaxPrekeysPerUpload); err != nil {
		t.Fatalf("generating after claims: %v", err)
	}
	// Past the deadline, the claimed secrets are gone.
	later := now.Add(24*time.Hour + MaxSkipAge + time.Minute)
	if err := dev.NoteClaims(later, nil); err != nil {
		t.Fatal(err)
	}
	if st := dev.PrekeyStatus(); st.ClaimedOneTimePrekeys != 0 || st.OneTimePrekeys != 56+MaxPrekeysPerUpload {
		t.Fatalf("status after the deadline %+v", st)
	}
	// A claimed secret still opens its handshake before the deadline.
	net := newTestNet(t, 2, nil)
	c := net.session.Claims[0]
	if err := net.devs[1].NoteClaims(net.now, []ClaimedPrekey{{ID: c.OneTimePrekeyID, SessionEnd: net.now.Add(time.Hour)}}); err != nil {
		t.Fatal(err)
	}
	exchange(net, 0, 1, "on a claimed one-time prekey")
	if st := net.devs[1].PrekeyStatus(); st.ClaimedOneTimePrekeys != 0 {
		t.Fatal("the used one-time prekey secret is still held")
	}
}

// TestRetirePrekeys (M10, M1): retiring deletes the unclaimed secrets and
// makes the next upload retire them on chain; a device that replaced a lost
// one continues the IDs above the chain's.
func TestRetirePrekeys(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dev, err := NewDevice(testIdentity(t, 41), [32]byte{1}, NewMemoryStore())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.GeneratePrekeys(now, true, 10); err != nil {
		t.Fatal(err)
	}
	if err := dev.RetireOneTimePrekeys(); err != nil {
		t.Fatal(err)
	}
	if st := dev.PrekeyStatus(); st.OneTimePrekeys != 0 {
		t.Fatalf("%d one-time prekeys held after retiring", st.OneTimePrekeys)
	}
	up, err := dev.GeneratePrekeys(now, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	if up.RetireThrough != 10 || up.OneTimePrekeys[0].ID != 11 || up.SignedPrekey.ID != 2 {
		t.Fatalf("upload after retiring: retire through %d, first ID %d, signed %d", up.RetireThrough, up.OneTimePrekeys[0].ID, up.SignedPrekey.ID)
	}
}

// TestLegacyRefusedOnceUsed (M11): a session in which this device created,
// sent or opened a protocol envelope no longer accepts legacy formats, also
// after a restart; the magic alone tells the formats apart.
func TestLegacyRefusedOnceUsed(t *testing.T) {
	net := newTestNet(t, 2, nil)
	if net.convs[0].AllowsLegacy() {
		t.Fatal("the creator's conversation allows legacy envelopes")
	}
	if !net.convs[1].AllowsLegacy() {
		t.Fatal("a joined conversation that saw nothing refuses legacy envelopes")
	}
	k := net.send(0, "hello")[0]
	net.mustOpen(1, k, "hello")
	net.reopen(1)
	if net.convs[1].AllowsLegacy() {
		t.Fatal("legacy envelopes allowed after a protocol envelope was opened")
	}
	sealed, err := crypto.Seal(net.ids[0], []*crypto.Identity{net.ids[1].PublicIdentity()}, []byte("legacy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !IsEnvelope(net.chain[k].env) || IsEnvelope(sealed) || IsEnvelope(nil) {
		t.Fatal("IsEnvelope does not tell the formats apart")
	}
}

// TestSkippedKeysPerPair (M12): Mallory makes Bob skip over two thousand
// keys in their pair (she sends 42 chains of 50 messages of which Bob gets
// only each chain's first). Bob keeps at most MaxSkippedKeys for that pair,
// and Alice's skipped key in her pair is untouched: her late message opens.
func TestSkippedKeysPerPair(t *testing.T) {
	net := newTestNet(t, 3, nil) // alice, bob, mallory
	for i := range 3 {
		broadcast(net, i, fmt.Sprintf("hello from %d", i))
	}
	net.mustOpen(1, net.send(0, "a0")[0], "a0") // alice's chain to bob starts
	late := net.send(0, "a1")[0]
	next := net.send(0, "a2")[0]
	net.mustOpen(1, next, "a2") // a1's key is skipped at bob
	mallory := net.convs[2]
	for i := range 42 {
		// Mallory's chain to bob reaches its end with messages bob never gets.
		st := mallory.rec.state
		for st.Plan(1, ms(net.now)) == ratchet.ActContinue {
			var s wire.Stanza
			if _, err := st.Continue(1, ms(net.now), &s); err != nil {
				t.Fatal(err)
			}
		}
		if err := mallory.commit(&Batch{}); err != nil {
			t.Fatal(err)
		}
		k := net.send(2, fmt.Sprintf("chain %d", i))[0]
		net.mustOpen(1, k, fmt.Sprintf("chain %d", i))
	}
	if n := len(net.convs[1].rec.state.Pairs[2].Skipped); n > MaxSkippedKeys {
		t.Fatalf("bob keeps %d skipped keys for mallory's pair, at most %d", n, MaxSkippedKeys)
	}
	net.mustOpen(1, late, "a1")
}

// TestDeleteConversation (L2): a session's state and outbox go, its
// archive stays.
func TestDeleteConversation(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "kept in the archive")
	net.send(0, "still in the outbox")
	if err := net.devs[0].DeleteConversation(net.session.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := net.stores[0].LoadConversation(net.session.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("state after deletion: %v", err)
	}
	if out, _ := net.stores[0].LoadOutbox(net.session.ID); len(out) != 0 {
		t.Fatal("outbox after deletion")
	}
	recs, _ := net.stores[0].LoadArchive(net.session.ID)
	found := false
	for _, r := range recs {
		if a, err := parseArchiveRecord(r.Data); err == nil && bytes.Equal(a.plaintext, []byte("kept in the archive")) {
			found = true
		}
	}
	if !found {
		t.Fatal("the archive was deleted")
	}
}

// TestPrekeyRotationAfterCompromise (M1, docs/protocol.md sections 11.3 and
// 14.3): a copy of Bob's state holds his signed prekey and unclaimed
// one-time prekey secrets, so it reads the first flight of a new tree made
// to them (Alice re-initiates) even after the old trees healed. Once Bob
// rotates (RetireOneTimePrekeys, a new signed prekey, new one-time
// prekeys; the chain removes the retired ones), a new tree made to his
// prekeys is closed to the copy.
func TestPrekeyRotationAfterCompromise(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "hello")
	exchange(net, 1, 0, "hi")
	theft := steal(t, net, 1)
	exchange(net, 0, 1, "healed")
	healed := exchange(net, 1, 0, "both stepped since the copy")

	// Alice re-initiates to the prekeys the copy holds.
	if err := net.convs[0].Reset(net.sid(1)); err != nil {
		t.Fatal(err)
	}
	before := exchange(net, 0, 1, "a new tree on prekeys the copy holds")
	if got := theft.attack(t, net, 1, [][]byte{healed, before}); fmt.Sprint(got) != "[false true]" {
		t.Fatalf("the copy reads %v of (a healed message, a new tree's first message), want [false true]", got)
	}
	exchange(net, 1, 0, "bob replies in it")

	// Bob rotates his prekeys; the chain retires the old one-time prekeys.
	if err := net.devs[1].RetireOneTimePrekeys(); err != nil {
		t.Fatal(err)
	}
	up, err := net.devs[1].GeneratePrekeys(net.now, true, 4)
	if err != nil {
		t.Fatal(err)
	}
	sid := net.sid(1)
	if up.RetireThrough == 0 || len(net.dir.oneTime[sid]) == 0 || net.dir.oneTime[sid][0].ID > up.RetireThrough {
		t.Fatalf("the upload retires through %d: not the one-time prekeys the copy holds", up.RetireThrough)
	}
	net.dir.oneTime[sid] = slices.DeleteFunc(net.dir.oneTime[sid], func(o OneTimePrekey) bool { return o.ID <= up.RetireThrough })
	net.dir.publish(net.ids[1], up)
	if err := net.convs[0].Reset(net.sid(1)); err != nil {
		t.Fatal(err)
	}
	after := exchange(net, 0, 1, "a new tree after the rotation")
	if net.chain[len(net.chain)-1].claims[0].SignedPrekeyID != up.SignedPrekey.ID {
		t.Fatal("the new handshake does not use the new signed prekey")
	}
	if theft.attack(t, net, 1, [][]byte{after})[0] {
		t.Fatal("the copy reads a tree made to prekeys generated after it")
	}
}

// TestRepeatedRandomness (L1, docs/protocol.md section 5.5): a device
// restored from a snapshot whose random generator repeats (a VM snapshot)
// sends a different message from the same state with the same random
// bytes. The content key hashes the message, so the two bodies are not
// encrypted under one key and nonce (no two-time pad): their common prefix
// (kind, time, mid, after) encrypts differently.
func TestRepeatedRandomness(t *testing.T) {
	var rng *replayRand
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "hello")
	exchange(net, 1, 0, "hi")
	// Alice's device from here on draws from a replayable generator.
	rng = &replayRand{seed: 7}
	snap := cloneMemoryStore(t, net.stores[0])
	send := func(store Store, text string) []byte {
		d, err := NewDevice(net.ids[0], net.chainID, store, Option(func(c *options.Config) { c.Rand = rng }))
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Conversation(net.session)
		if err != nil {
			t.Fatal(err)
		}
		outs, err := c.Send(net.now, []byte(text), net.dir)
		if err != nil || len(outs) != 1 {
			t.Fatalf("send: %d envelopes, %v", len(outs), err)
		}
		return outs[0].Envelope
	}
	rng.pos = 0
	a := send(net.stores[0], "pay the invoice")
	rng.pos = 0
	b := send(snap, "do not pay it!!")
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	ea, err := wire.Parse(a)
	if err != nil {
		t.Fatal(err)
	}
	eb, err := wire.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if ea.Nonce != eb.Nonce {
		t.Fatal("the randomness did not repeat: the test is vacuous")
	}
	// kind || sentAt || mid || after: 41 equal plaintext bytes.
	if bytes.Equal(ea.Body[:41], eb.Body[:41]) {
		t.Fatal("two messages under one content key and nonce: their equal prefixes encrypt equally")
	}
	// Both open at Bob (the first; the second is the same message position
	// from the same state: a replay of its keys).
	k := net.post(0, Outgoing{Envelope: a})
	net.mustOpen(1, k, "pay the invoice")
}

// replayRand is a deterministic generator whose position can be reset.
type replayRand struct {
	seed byte
	pos  int
}

func (r *replayRand) Read(p []byte) (int, error) {
	for i := range p {
		h := sha256.Sum256([]byte{r.seed, byte(r.pos >> 24), byte(r.pos >> 16), byte(r.pos >> 8), byte(r.pos)})
		p[i] = h[0]
		r.pos++
	}
	return len(p), nil
}

// cloneMemoryStore copies every record of a MemoryStore into a new one.
func cloneMemoryStore(t *testing.T, s Store) Store {
	t.Helper()
	m := s.(*MemoryStore)
	c := NewMemoryStore()
	b := &Batch{}
	if dev, err := m.LoadDevice(); err == nil {
		b.Device = dev
	}
	for id := range m.conversations {
		conv, err := m.LoadConversation(id)
		if err != nil {
			t.Fatal(err)
		}
		b.Conversations = append(b.Conversations, ConversationWrite{Session: id, Data: conv})
		out, _ := m.LoadOutbox(id)
		for _, r := range out {
			b.Outbox = append(b.Outbox, RecordWrite{Session: id, ID: r.ID, Data: r.Data})
		}
		arch, _ := m.LoadArchive(id)
		for _, r := range arch {
			b.Archive = append(b.Archive, RecordWrite{Session: id, ID: r.ID, Data: r.Data})
		}
	}
	if err := c.Commit(b); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMonotonicClock (L3, docs/protocol.md section 2): the device's clock
// is made monotonic. After it read a time past a signed prekey's expiry,
// a clock set back does not make the bundle valid again, and a message
// written after it went back is still dated after the previous one, also
// after a restart.
func TestMonotonicClock(t *testing.T) {
	net := newTestNet(t, 3, nil)
	broadcast(net, 0, "now")
	broadcast(net, 1, "bob starts with carol")
	expires := net.dir.signed[net.sid(2)].ExpiresAt
	net.now = expires.Add(time.Hour)
	broadcast(net, 1, "bob, after carol's signed prekey expired")
	net.now = expires.Add(-time.Hour) // the clock goes back before the expiry
	net.reopen(1)                     // and bob's device restarts
	if err := net.convs[1].Reset(net.sid(2)); err != nil {
		t.Fatal(err)
	}
	if _, err := net.convs[1].Send(net.now, []byte("to carol on her expired prekey"), net.dir); !errors.Is(err, ErrInvalidBundle) {
		t.Fatalf("a bundle expired before the device's latest time: %v", err)
	}
	h, err := net.convs[2].History()
	if err != nil || len(h) == 0 || h[0].Sender != net.sid(0) {
		t.Fatalf("carol's history: %v", err)
	}
	prev := h[0].SentAt
	net.now = prev.Add(-time.Hour)
	net.reopen(0)
	k := net.send(0, "after the clock went back")[0]
	m, err := net.open(2, k)
	if err != nil {
		t.Fatal(err)
	}
	if !m.SentAt.After(prev) {
		t.Fatalf("sentAt %v not after the previous message's %v", m.SentAt, prev)
	}
}
