package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	luxlog "github.com/luxfi/log"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
)

// sessionctlBin is the binary TestMain builds: the CLI tests run it as a
// user does.
var sessionctlBin string

func TestMain(m *testing.M) {
	luxlog.SetGlobalLogger(luxlog.NewNoOpLogger()) // the in-process node's database
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sessionctl-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sessionctlBin = filepath.Join(dir, "sessionctl")
	// Without -race: the binary only needs to be correct; the test process
	// (and the node in it) keeps the race detector.
	cmd := exec.Command("go", "build", "-o", sessionctlBin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// testNode starts a standalone node with the full API on a free loopback
// port and a temporary data directory.
func testNode(t *testing.T) *node.Node { return testNodeWith(t, 0) }

// testNodeWith is testNode with a build delay: transactions wait that long
// in the mempool before their block (0: the node's default).
func testNodeWith(t *testing.T, buildDelay time.Duration) *node.Node {
	t.Helper()
	work := config.MinimalRegistration() // these tests are not about the work
	n, err := node.Start(node.Config{
		DataDir:        t.TempDir(),
		HTTPAddr:       "127.0.0.1:0",
		ChainOverrides: node.ChainOverrides{Registration: &work},
		Handler:        service.NewHandler,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		BuildDelay:     buildDelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

// ctl runs the sessionctl binary as one user, the way a person does: a
// separate process with its environment, arguments and standard input.
type ctl struct {
	t        *testing.T
	node     string
	identity string
	pass     string
	stdin    string   // standard input of the next run (then reset)
	bin      string   // the binary (default sessionctlBin)
	env      []string // more environment variables
}

func (c *ctl) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	bin := sessionctlBin
	if c.bin != "" {
		bin = c.bin
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.t.TempDir(),
		envNode + "=" + c.node,
		envIdentity + "=" + c.identity,
	}, c.env...)
	if c.pass != "" {
		cmd.Env = append(cmd.Env, envPassphrase+"="+c.pass)
	}
	cmd.Stdin = strings.NewReader(c.stdin)
	c.stdin = ""
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		c.t.Fatalf("running sessionctl: %v", err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed and decodes its --json output.
func (c *ctl) ok(v any, args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(append([]string{"--json"}, args...)...)
	if code != 0 {
		c.t.Fatalf("sessionctl %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	if v != nil {
		if err := json.Unmarshal([]byte(out), v); err != nil {
			c.t.Fatalf("sessionctl %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	return out
}

// newUser makes a user with a registered identity. The identity file is
// written here, at the low work factor of kdf_test.go (so that each run of
// the binary opens it quickly); keygen itself is tested in TestKeygenSeed
// and TestErrors.
func newUser(t *testing.T, n *node.Node, name string) (*ctl, string) {
	c := &ctl{t: t, node: n.URL(), identity: filepath.Join(t.TempDir(), name+".json"), pass: "pw-" + name}
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Save(c.identity, c.pass); err != nil {
		t.Fatal(err)
	}
	var w struct{ SessionID, Registered string }
	c.ok(&w, "whoami")
	if w.SessionID != id.SessionID || w.Registered != "no" {
		t.Fatalf("whoami before register: %+v", w)
	}
	var r struct{ Status string }
	c.ok(&r, "register")
	if r.Status != "accepted" {
		t.Fatalf("register: status %q", r.Status)
	}
	return c, id.SessionID
}

type shown struct {
	Messages []shownMessage
	Next     uint64
}

func TestSessionConversation(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	carol, _ := newUser(t, n, "carol")

	var created struct{ Session, Status string }
	alice.ok(&created, "session", "create", "--with", bobID)
	if created.Status != "accepted" || created.Session == "" {
		t.Fatalf("session create: %+v", created)
	}
	alice.ok(nil, "send", created.Session, "hello bob")
	bob.ok(nil, "send", created.Session, "hi alice")

	for _, reader := range []*ctl{alice, bob} {
		var got shown
		reader.ok(&got, "read", created.Session)
		if len(got.Messages) != 2 {
			t.Fatalf("read: %d messages, want 2", len(got.Messages))
		}
		want := []struct{ sender, text string }{{aliceID, "hello bob"}, {bobID, "hi alice"}}
		for i, m := range got.Messages {
			if m.Error != "" || m.Sender != want[i].sender || m.Text != want[i].text || m.Seq != uint64(i+1) {
				t.Fatalf("message %d: %+v, want %+v", i, m, want[i])
			}
		}
	}
	// The inbox holds what others sent: bob's message for alice.
	var inbox shown
	alice.ok(&inbox, "inbox")
	if len(inbox.Messages) != 1 || inbox.Messages[0].Text != "hi alice" || inbox.Messages[0].Sender != bobID {
		t.Fatalf("alice's inbox: %+v", inbox.Messages)
	}
	var empty shown
	alice.ok(&empty, "inbox", "--after", jsonNumber(inbox.Next))
	if len(empty.Messages) != 0 {
		t.Fatalf("inbox after the cursor: %+v", empty.Messages)
	}
	// A non-participant is refused, and cannot open what it fetches.
	if _, errs, code := carol.run("send", created.Session, "let me in"); code != 1 || !strings.Contains(errs, "not a participant") {
		t.Fatalf("carol send: exit %d, %s", code, errs)
	}
	var peek shown
	carol.ok(&peek, "read", created.Session)
	for _, m := range peek.Messages {
		if m.Error == "" || m.Text != "" {
			t.Fatalf("carol opened a message: %+v", m)
		}
	}
	// Closing ends the session.
	alice.ok(nil, "close", created.Session)
	if _, errs, code := bob.run("send", created.Session, "late"); code != 1 || !strings.Contains(errs, "closed") {
		t.Fatalf("send after close: exit %d, %s", code, errs)
	}
	var info struct{ Status string }
	bob.ok(&info, "session", "show", created.Session)
	if info.Status != "closed" {
		t.Fatalf("session status %q after close", info.Status)
	}
}

func TestChannel(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	bob, _ := newUser(t, n, "bob")
	carol, _ := newUser(t, n, "carol")
	dave, _ := newUser(t, n, "dave")

	var ch struct{ Channel string }
	alice.ok(&ch, "channel", "create", "general")
	bob.ok(nil, "channel", "join", ch.Channel)
	carol.ok(nil, "channel", "join", ch.Channel)
	alice.ok(nil, "channel", "post", ch.Channel, "welcome")

	for _, member := range []*ctl{alice, bob, carol} {
		var got shown
		member.ok(&got, "channel", "read", ch.Channel)
		if len(got.Messages) != 1 || got.Messages[0].Text != "welcome" || got.Messages[0].Sender != aliceID {
			t.Fatalf("channel read: %+v", got.Messages)
		}
	}
	if _, errs, code := dave.run("channel", "post", ch.Channel, "spam"); code != 1 || !strings.Contains(errs, "not a member") {
		t.Fatalf("non-member post: exit %d, %s", code, errs)
	}
	var info struct {
		MemberCount int
		Members     []string
	}
	alice.ok(&info, "channel", "show", ch.Channel)
	if info.MemberCount != 3 || len(info.Members) != 3 {
		t.Fatalf("channel show: %+v", info)
	}
	carol.ok(nil, "channel", "leave", ch.Channel)
	alice.ok(&info, "channel", "show", ch.Channel)
	if info.MemberCount != 2 {
		t.Fatalf("members after leave: %d", info.MemberCount)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, _ := newUser(t, n, "alice")

	cases := []struct {
		name string
		c    *ctl
		args []string
		code int
		want string
	}{
		{"unknown command", alice, []string{"frobnicate"}, 2, "unknown command"},
		{"bad session ID", alice, []string{"read", "nope"}, 2, "not a valid ID"},
		{"unknown session", alice, []string{"read", "11111111111111111111111111111111LpoYY"}, 1, "unknown session"},
		{"wrong passphrase", &ctl{t: t, node: alice.node, identity: alice.identity, pass: "wrong"}, []string{"inbox"}, 1, "wrong passphrase"},
		{"no identity", &ctl{t: t, node: alice.node, identity: filepath.Join(t.TempDir(), "none.json"), pass: "x"}, []string{"register"}, 1, "keygen"},
		{"node unreachable", &ctl{t: t, node: "http://127.0.0.1:1/rpc", identity: alice.identity, pass: alice.pass}, []string{"status"}, 1, "unreachable"},
		{"keygen over existing", alice, []string{"keygen"}, 1, "--force"},
		{"seed on the command line", &ctl{t: t, identity: filepath.Join(t.TempDir(), "s.json"), pass: "p"}, []string{"keygen", "--seed", "abc"}, 2, "not taken from the command line"},
		{"session without participants", alice, []string{"session", "create"}, 2, "--with"},
		{"bad participant", alice, []string{"session", "create", "--with", "07xyz"}, 2, "invalid session ID"},
		{"unregistered participant", alice, []string{"session", "create", "--with", "07" + strings.Repeat("ab", 32)}, 1, "unknown identity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs, code := c.c.run(c.args...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d containing %q", code, errs, c.code, c.want)
			}
		})
	}
}

func TestSplitGlobalFlags(t *testing.T) {
	g, rest := splitGlobalFlags([]string{"send", "S", "hi", "--json", "--node", "u", "--timeout=5s", "-x marks", "--", "--json"})
	if strings.Join(g, " ") != "--json --node u --timeout=5s" || strings.Join(rest, "|") != "send|S|hi|-x marks|--|--json" {
		t.Fatalf("globals %q rest %q", g, rest)
	}
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
