package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/session/internal/crashpoint"
)

var (
	crashBinOnce sync.Once
	crashBin     string
	crashBinErr  error
)

// crashBinary builds sessionctl with the crash points of
// internal/crashpoint (each write of the message store, before and after,
// and each submission), once per test binary.
func crashBinary(t *testing.T) string {
	t.Helper()
	crashBinOnce.Do(func() {
		crashBin = filepath.Join(filepath.Dir(sessionctlBin), "sessionctl-crash")
		cmd := exec.Command("go", "build", "-tags", "crashpoints", "-o", crashBin, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			crashBinErr = fmt.Errorf("go build -tags crashpoints: %v\n%s", err, out)
		}
	})
	if crashBinErr != nil {
		t.Fatal(crashBinErr)
	}
	return crashBin
}

// crashing returns c running the crash binary, killed with SIGKILL at its
// n-th crash point; the points it passed are appended to log.
func crashing(t *testing.T, c *ctl, n int, log string) *ctl {
	k := *c
	k.bin = crashBinary(t)
	k.env = []string{crashpoint.EnvAt + "=" + strconv.Itoa(n), crashpoint.EnvLog + "=" + log}
	return &k
}

// lastPoint returns the last crash point a run logged.
func lastPoint(t *testing.T, log string) string {
	b, err := os.ReadFile(log)
	if err != nil {
		return "(none)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// TestCrashAtEveryWrite kills a real sessionctl process at each write of
// its store (the chat store's commits and the Messenger's records, before
// and after each) and after each submission, while it sends and while it
// reads, then runs it again as a user would (resend, read). Nothing is lost
// and nothing arrives twice: every message sent is read exactly once, in
// order, and opens (no key served two envelopes), and both histories hold
// it. Package chat kills its store at every call in process; this is the
// same through the binary.
func TestCrashAtEveryWrite(t *testing.T) {
	t.Parallel()
	if crashpoint.Enabled {
		t.Fatal("the test binary is built with crash points")
	}
	// Blocks come a little late, so that a run started right after a kill
	// finds the killed run's transaction still pending (the case where a
	// second transaction for the same envelope would land twice).
	n := testNodeWith(t, 300*time.Millisecond)
	alice, _ := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	var created struct{ Session string }
	alice.ok(&created, "session", "create", "--with", bobID)
	s := created.Session
	bob.ok(nil, "accept", s) // a request takes a few messages only

	var sent []string
	// Alice is killed at the n-th point of a send, for every n until a send
	// completes; the first send carries the handshake.
	for n := 1; ; n++ {
		log := filepath.Join(t.TempDir(), "points")
		text := fmt.Sprintf("message %d", n)
		_, errs, code := crashing(t, alice, n, log).run("send", s, text)
		// Alice reads nothing new, so her first commit is the one that
		// puts the message in her outbox: a kill before it means the
		// message was never sent (the user sends it again); after it, it
		// must arrive exactly once.
		if points, _ := os.ReadFile(log); code == 0 || strings.Contains(string(points), "after chat commit") {
			sent = append(sent, text)
		}
		if code == 0 {
			if n < 8 {
				t.Fatalf("a send passed only %d crash points", n-1)
			}
			t.Logf("send: %d crash points", n-1)
			break
		}
		if code != -1 {
			t.Fatalf("send killed at point %d: exit %d, %s", n, code, errs)
		}
		// The user runs sessionctl again: what the outbox holds goes out.
		if out, errs, code := alice.run("resend", s); code != 0 {
			t.Fatalf("resend after a kill at %s: exit %d, %s %s", lastPoint(t, log), code, out, errs)
		}
	}
	if got := readTexts(t, bob, s); !slices.Equal(got, sent) {
		t.Fatalf("bob reads %q\nwant %q", got, sent)
	}

	// Bob is killed at the n-th point of a read that opens a new message.
	for n := 1; ; n++ {
		text := fmt.Sprintf("to be read %d", n)
		alice.ok(nil, "send", s, text)
		sent = append(sent, text)
		log := filepath.Join(t.TempDir(), "points")
		_, errs, code := crashing(t, bob, n, log).run("--json", "read", s, "--limit", "1000")
		if code == 0 {
			t.Logf("read: %d crash points", n-1)
			break
		}
		if code != -1 {
			t.Fatalf("read killed at point %d: exit %d, %s", n, code, errs)
		}
		if got := readTexts(t, bob, s); !slices.Equal(got, sent) {
			t.Fatalf("after a kill at %s, bob reads %q\nwant %q", lastPoint(t, log), got, sent)
		}
	}
	for _, u := range []*ctl{alice, bob} {
		var h shown
		u.ok(&h, "history", s)
		var texts []string
		for _, m := range h.Messages {
			texts = append(texts, m.Text)
		}
		if !slices.Equal(texts, sent) {
			t.Fatalf("history %q\nwant %q", texts, sent)
		}
	}
}
