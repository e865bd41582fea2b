package chat

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// snapshot is what a thief copies from a device: its stored state and
// device records (not the archive), and the identity's secret keys.
type snapshot struct {
	conv, dev []byte
}

func steal(t *testing.T, net *testNet, i int) snapshot {
	t.Helper()
	conv, err := net.stores[i].LoadConversation(net.session.ID)
	if err != nil {
		t.Fatal(err)
	}
	dev, err := net.stores[i].LoadDevice()
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{conv, dev}
}

func (s snapshot) attack(t *testing.T, net *testNet, victim int, envs [][]byte) []bool {
	return newAttacker(t, net, victim, s.conv, s.dev, net.ids[victim]).attack(envs)
}

// exchange has from send msg and to open it (and from confirm it); it
// returns the envelope.
func exchange(net *testNet, from, to int, msg string) []byte {
	net.t.Helper()
	k := net.send(from, msg)
	for _, kk := range k {
		net.mustOpen(to, kk, map[bool]string{true: msg}[kk == k[len(k)-1]])
		net.mustOpen(from, kk, map[bool]string{true: msg}[kk == k[len(k)-1]])
	}
	return net.chain[k[len(k)-1]].env
}

// broadcast has from send msg and everyone else open it (and from confirm
// it); it returns the content envelope.
func broadcast(net *testNet, from int, msg string) []byte {
	net.t.Helper()
	k := net.send(from, msg)
	for _, kk := range k {
		want := map[bool]string{true: msg}[kk == k[len(k)-1]]
		for j := range net.n {
			if _, err := net.open(j, kk); err != nil && !(errors.Is(err, ErrNotAddressed) && want == "") {
				net.t.Fatalf("participant %d entry %d: %v", j, kk, err)
			}
		}
	}
	return net.chain[k[len(k)-1]].env
}

// TestForwardSecrecy: after a participant read every message, a thief with
// its long-term keys and its whole current state reads none of the recorded
// envelopes. Bob answers; Carol only reads (her ratchet never steps: only
// the slot chains and deletions protect her past). Taken before the last
// message was read, the same theft reads exactly that message, so the
// attacker is not vacuous.
func TestForwardSecrecy(t *testing.T) {
	net := newTestNet(t, 3, nil)
	var envs [][]byte
	// Handshakes, changes of speaker, a one-sided run across
	// MaxChainMessages, a time-based step, out-of-order delivery.
	envs = append(envs, broadcast(net, 0, "hello"))
	for i := range 6 {
		envs = append(envs, broadcast(net, i%2, fmt.Sprintf("ping %d", i)))
	}
	for i := range MaxChainMessages + 3 {
		envs = append(envs, broadcast(net, 1, fmt.Sprintf("bob alone %d", i)))
	}
	net.now = net.now.Add(MaxChainAge + time.Minute)
	envs = append(envs, broadcast(net, 0, "next day"))
	a := net.send(0, "first")
	b := net.send(0, "second")
	for _, j := range []int{1, 2} {
		net.mustOpen(j, b[0], "second")
		net.mustOpen(j, a[0], "first") // from a skipped key
	}
	envs = append(envs, net.chain[a[0]].env, net.chain[b[0]].env)
	last := net.send(0, "last")
	envs = append(envs, net.chain[last[0]].env)

	for _, victim := range []int{1, 2} {
		before := steal(t, net, victim)
		net.mustOpen(victim, last[0], "last")
		after := steal(t, net, victim)

		got := before.attack(t, net, victim, envs)
		for i, r := range got {
			if r != (i == len(envs)-1) {
				t.Errorf("participant %d, state stolen before the last message was read: envelope %d read = %v", victim, i, r)
			}
		}
		for i, r := range after.attack(t, net, victim, envs) {
			if r {
				t.Errorf("forward secrecy: participant %d: envelope %d of %d read from the state stolen after reading it", victim, i, len(envs))
			}
		}
		// The same as a black box: a device rebuilt from the stolen records
		// (without the archive) opens none of them.
		thief := NewMemoryStore()
		thief.Commit(&Batch{Device: after.dev, Conversations: []ConversationWrite{{Session: net.session.ID, Data: after.conv}}})
		d, err := NewDevice(net.ids[victim], net.chainID, thief)
		if err != nil {
			t.Fatal(err)
		}
		c, err := d.Conversation(net.session)
		if err != nil {
			t.Fatal(err)
		}
		for k := range net.chain {
			if net.chain[k].sender == victim {
				continue
			}
			if m, err := c.Open(net.now, net.delivery(k)); err == nil {
				t.Errorf("participant %d: thief's device opened entry %d: %q", victim, k, m.Plaintext)
			}
		}
	}
}

// TestPostCompromiseSecurity: a thief copies Bob's whole state at t. Alice's
// next message (in a chain from before t) is readable to it; after Bob sends
// (a step with fresh randomness) and Alice answers (a step against Bob's new
// key), it reads nothing more, in either direction.
func TestPostCompromiseSecurity(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "hello")
	for i := range 5 {
		exchange(net, i%2, 1-i%2, fmt.Sprintf("warm up %d", i))
	}
	exchange(net, 1, 0, "bob spoke last")
	stolen := steal(t, net, 1)

	var envs [][]byte
	envs = append(envs, exchange(net, 0, 1, "before healing"))   // 0: alice steps against Bob's key from before t
	envs = append(envs, exchange(net, 0, 1, "before healing 2")) // 1: continues that chain
	envs = append(envs, exchange(net, 1, 0, "bob heals"))        // 2: Bob's step, fresh randomness
	envs = append(envs, exchange(net, 0, 1, "alice heals"))      // 3: against Bob's new key
	for i := range 10 {
		envs = append(envs, exchange(net, i%2, 1-i%2, fmt.Sprintf("after %d", i)))
	}
	got := stolen.attack(t, net, 1, envs)
	if !got[0] || !got[1] {
		t.Fatalf("the thief does not read the messages before healing (%v): the test would be vacuous", got[:2])
	}
	for i := 2; i < len(got); i++ {
		if got[i] {
			t.Errorf("post-compromise security: envelope %d read after one round trip", i)
		}
	}
}

// TestPostCompromiseSecuritySender: a thief copies Alice's state; Bob keeps
// sending in his chain (readable), until Alice's own next step, made with
// her fresh randomness against Bob's key, locks it out of her messages at
// once, and Bob's answer against her new key locks it out of his.
func TestPostCompromiseSecuritySender(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "hello")
	exchange(net, 1, 0, "hi")
	stolen := steal(t, net, 0)
	var envs [][]byte
	envs = append(envs, exchange(net, 1, 0, "bob continues")) // 0: readable (Bob's chain from before t)
	envs = append(envs, exchange(net, 0, 1, "alice steps"))   // 1: Alice's step: closed at once
	envs = append(envs, exchange(net, 1, 0, "bob steps"))     // 2: against Alice's new key: closed
	envs = append(envs, exchange(net, 0, 1, "after"))
	got := stolen.attack(t, net, 0, envs)
	if !got[0] {
		t.Fatal("vacuous: the thief does not read Bob's continuing chain")
	}
	for i := 1; i < len(got); i++ {
		if got[i] {
			t.Errorf("envelope %d read after Alice's step", i)
		}
	}
}

// TestOneSidedSenderHeals: Alice only sends. A thief with her state reads
// her chain until her next step, which MaxChainMessages bounds.
func TestOneSidedSenderHeals(t *testing.T) {
	net := newTestNet(t, 2, nil)
	exchange(net, 0, 1, "hello")
	exchange(net, 1, 0, "hi")
	for i := range 10 {
		exchange(net, 0, 1, fmt.Sprintf("warm %d", i))
	}
	stolen := steal(t, net, 0)
	var envs [][]byte
	for i := range 2 * MaxChainMessages {
		envs = append(envs, exchange(net, 0, 1, fmt.Sprintf("alone %d", i)))
	}
	got := stolen.attack(t, net, 0, envs)
	readable := 0
	for readable < len(got) && got[readable] {
		readable++
	}
	if readable == 0 || readable > MaxChainMessages {
		t.Fatalf("thief reads the first %d one-sided messages, want 1 to %d", readable, MaxChainMessages)
	}
	for i := readable; i < len(got); i++ {
		if got[i] {
			t.Errorf("envelope %d read after the one-sided step at %d", i, readable)
		}
	}
}

// TestNoOneTimePrekeyWeakness checks docs/protocol.md section 11: without a
// one-time prekey, a thief with Bob's identity key and signed prekey secret
// reads what Alice sent before Bob's first reply, and nothing after it;
// once the signed prekey secret is deleted, not even that. With a one-time
// prekey (TestForwardSecrecy), nothing.
func TestNoOneTimePrekeyWeakness(t *testing.T) {
	net := newTestNet(t, 2, nil)
	net.dir.noOneOTP = true
	// A second session, started by Bob without one-time prekeys.
	s := *net.session
	s.ID[0] ^= 1
	s.Claims = nil // Alice's handshake claims in its transaction, with one-time prekey 0
	var err error
	for i := range 2 {
		if net.convs[i], err = net.devs[i].Conversation(&s); err != nil {
			t.Fatal(err)
		}
	}
	net.session = &s
	var envs [][]byte
	envs = append(envs, exchange(net, 0, 1, "first, no one-time prekey"))
	envs = append(envs, exchange(net, 0, 1, "second"))
	envs = append(envs, exchange(net, 1, 0, "bob replies"))
	envs = append(envs, exchange(net, 0, 1, "after the reply"))
	got := steal(t, net, 1).attack(t, net, 1, envs)
	if want := []bool{true, true, false, false}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	// The signed prekey expires; its grace passes; any prekey generation
	// deletes its secret.
	net.now = net.now.Add(SignedPrekeyLifetime + SignedPrekeyGrace + time.Hour)
	if _, err := net.devs[1].GeneratePrekeys(net.now, true, 0); err != nil {
		t.Fatal(err)
	}
	for i, r := range steal(t, net, 1).attack(t, net, 1, envs) {
		if r {
			t.Errorf("envelope %d read after the signed prekey secret was deleted", i)
		}
	}
}

// TestUnclaimedOneTimePrekeyRefused: a handshake with a one-time prekey the
// chain did not record as claimed for it is refused, so a participant
// cannot burn another's one-time prekeys off chain.
func TestUnclaimedOneTimePrekeyRefused(t *testing.T) {
	net := newTestNet(t, 3, nil)
	k := net.send(1, "bob starts with carol") // claims carol's one-time prekey in its transaction
	net.chain[k[0]].claims = nil              // a transaction without the claim
	if _, err := net.open(2, k[0]); !errors.Is(err, ErrUnclaimedPrekey) {
		t.Fatalf("unclaimed one-time prekey: %v", err)
	}
}
