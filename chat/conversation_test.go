package chat

import (
	"errors"
	"fmt"
	"testing"
)

func TestTwoPartyRoundTrips(t *testing.T) {
	net := newTestNet(t, 2, nil)
	k := net.send(0, "hello bob")
	net.mustOpen(1, k[0], "hello bob")
	net.mustOpen(0, k[0], "hello bob") // own message: confirmed
	for i := range 20 {
		from := i % 2
		to := 1 - from
		msg := fmt.Sprintf("message %d", i)
		k := net.send(from, msg)
		net.mustOpen(to, k[0], msg)
		net.mustOpen(from, k[0], msg)
	}
	h, err := net.convs[1].History()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 21 || string(h[0].Plaintext) != "hello bob" || h[0].Position != 1 {
		t.Fatalf("history: %d messages, first %q at %d", len(h), h[0].Plaintext, h[0].Position)
	}
	out, err := net.convs[0].Outbox()
	if err != nil || len(out) != 0 {
		t.Fatalf("outbox after confirmation: %d, %v", len(out), err)
	}
}

func TestGroupOfFive(t *testing.T) {
	net := newTestNet(t, 5, nil)
	for round := range 6 {
		for i := range net.n {
			msg := fmt.Sprintf("round %d from %d", round, i)
			k := net.send(i, msg)
			for _, kk := range k {
				for j := range net.n {
					if j == i {
						continue
					}
					want := msg
					if kk != k[len(k)-1] {
						want = ""
					}
					net.mustOpen(j, kk, want)
				}
				if _, err := net.open(i, kk); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestDeleteHistory(t *testing.T) {
	net := newTestNet(t, 2, nil)
	var ks []int
	for i := range 4 {
		k := net.send(0, fmt.Sprintf("m%d", i))
		net.mustOpen(1, k[0], fmt.Sprintf("m%d", i))
		ks = append(ks, k[0])
	}
	if err := net.convs[1].DeleteHistory(2); err != nil {
		t.Fatal(err)
	}
	h, err := net.convs[1].History()
	if err != nil || len(h) != 2 || string(h[0].Plaintext) != "m2" {
		t.Fatalf("history after deleting up to 2: %v %v", h, err)
	}
	// The deleted ones are still refused (their keys are gone, the
	// handshake's tree has its tombstone): both as replays.
	if _, err := net.open(1, ks[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a deleted handshake message: %v", err)
	}
	if _, err := net.open(1, ks[1]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay of a deleted message: %v", err)
	}
}

func TestReplayRefused(t *testing.T) {
	net := newTestNet(t, 2, nil)
	k := net.send(0, "once")
	net.mustOpen(1, k[0], "once")
	if _, err := net.open(1, k[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}
	net.reopen(1)
	if _, err := net.open(1, k[0]); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after restart: %v", err)
	}
}

func TestOneSidedBound(t *testing.T) {
	net := newTestNet(t, 2, nil)
	steps := 0
	for i := range 3*MaxChainMessages + 5 {
		k := net.send(0, fmt.Sprintf("m%d", i))
		net.mustOpen(1, k[0], fmt.Sprintf("m%d", i))
		net.mustOpen(0, k[0], fmt.Sprintf("m%d", i))
		if isStep(t, net.chain[k[0]].env, 0) {
			steps++
		}
	}
	// The handshake starts the first chain; a step every 50 messages after.
	if steps != 3 {
		t.Fatalf("%d steps in %d one-sided messages, want 3", steps, 3*MaxChainMessages+5)
	}
	net.now = net.now.Add(MaxChainAge)
	k := net.send(0, "a day later")
	net.mustOpen(1, k[0], "a day later")
	if !isStep(t, net.chain[k[0]].env, 0) {
		t.Fatal("no step after MaxChainAge")
	}
}

func TestThirtyTwoParticipants(t *testing.T) {
	if testing.Short() {
		t.Skip("32 identities")
	}
	net := newTestNet(t, MaxParticipants, nil)
	big := make([]byte, MaxPlaintextSize)
	for i := range big {
		big[i] = byte(i)
	}
	// The creator's first message: 31 handshakes with one-time prekeys do not
	// fit beside a full plaintext: one setup message goes first.
	k := net.send(0, string(big))
	if len(k) != 2 {
		t.Fatalf("%d envelopes for the first message, want 2 (setup + content)", len(k))
	}
	for _, kk := range k {
		if n := len(net.chain[kk].env); n > MaxEnvelopeSize {
			t.Fatalf("envelope of %d bytes", n)
		}
	}
	addressed := 0
	for j := 1; j < net.n; j++ {
		m, err := net.open(j, k[0])
		switch {
		case errors.Is(err, ErrNotAddressed):
		case err != nil:
			t.Fatal(err)
		case !m.Control:
			t.Fatal("first envelope is not a setup message")
		default:
			addressed++
		}
		net.mustOpen(j, k[1], string(big))
	}
	if addressed != 18 {
		t.Fatalf("setup message addressed %d participants, want 18 (docs/protocol.md, section 12)", addressed)
	}
	for _, kk := range k {
		net.mustOpen(0, kk, map[bool]string{true: string(big)}[kk == k[1]])
	}
	// Everyone answers the creator with a full plaintext: handshakes with
	// the participants after it (split again), a step with the creator.
	// Only the creator reads them here (the group test reads everything).
	for i := 1; i < net.n; i++ {
		kk := net.send(i, string(big[:MaxPlaintextSize-i]))
		if len(kk) > 2 {
			t.Fatalf("participant %d: %d envelopes", i, len(kk))
		}
		for _, e := range kk {
			if n := len(net.chain[e].env); n > MaxEnvelopeSize {
				t.Fatalf("envelope of %d bytes", n)
			}
			m, err := net.open(0, e)
			if errors.Is(err, ErrNotAddressed) && e != kk[len(kk)-1] {
				continue
			}
			if err != nil {
				t.Fatalf("creator, envelope from %d: %v", i, err)
			}
			if e == kk[len(kk)-1] && string(m.Plaintext) != string(big[:MaxPlaintextSize-i]) {
				t.Fatal("wrong plaintext")
			}
			if _, err := net.open(i, e); err != nil {
				t.Fatal(err)
			}
		}
	}
	kk := net.send(0, string(big))
	if n, want := len(net.chain[kk[0]].env), 22+1184+31*1169+3366+MaxPlaintextSize; n != want || want != 57195 {
		t.Fatalf("all-step envelope of %d bytes, want %d (docs/protocol.md, section 12: 57195)", n, want)
	}
	for j := range net.n {
		net.mustOpen(j, kk[0], string(big))
	}
}

// TestDeletedRatchetKeysForgotten: the parsed ratchet key pairs a device
// keeps to decapsulate without a key generation are dropped once its state
// deletes their seeds, so a deleted ratchet secret does not stay in
// memory; the ones its state still holds stay parsed.
func TestDeletedRatchetKeysForgotten(t *testing.T) {
	net := newTestNet(t, 2, nil)
	for i := range 12 {
		exchange(net, i%2, 1-i%2, fmt.Sprintf("message %d", i))
	}
	for i := range 2 {
		kc, st := net.devs[i].keys, net.convs[i].rec.state
		live := 0
		for _, p := range st.Pairs {
			if p == nil {
				continue
			}
			for _, tr := range p.Trees {
				for _, c := range tr.Own {
					if !c.Virtual {
						live++
						if kc.private[c.Seed] == nil {
							t.Errorf("participant %d: a ratchet key pair its state holds is not kept parsed", i)
						}
					}
				}
			}
		}
		if len(kc.ratchet) != live || live == 0 || live > 4 {
			t.Fatalf("participant %d keeps %d ratchet key pairs parsed, its state holds %d seeds (12 messages made 6 each)", i, len(kc.ratchet), live)
		}
		for seed := range kc.ratchet {
			if !st.HasSeed(&seed) {
				t.Fatalf("participant %d keeps a ratchet key pair its state deleted", i)
			}
		}
	}
}
