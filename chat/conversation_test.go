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
