package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/keyfiletest"
	"github.com/luxfi/session/service"
)

// Paths of the binaries TestMain builds.
var (
	sessiondBin   string
	sessionctlBin string
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	root, err := ModuleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "session-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := BuildBinaries(root, dir, "./cmd/sessiond", "./cmd/sessionctl"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	// Every identity file the suite writes is at the lowest work factor
	// (keyfiletest), so that each sessionctl run opens it, and the message
	// store that takes its work factor, in milliseconds instead of two
	// scrypt runs at N = 2^17; keygen itself is tested in cmd/sessionctl.
	// Set once here: the tests run in parallel.
	defer keyfiletest.SetWorkFactor(keyfiletest.MinWorkFactor)()
	sessiondBin = filepath.Join(dir, "sessiond")
	sessionctlBin = filepath.Join(dir, "sessionctl")
	return m.Run()
}

// ctx returns a context bounded by d, cancelled at the end of the test.
func ctx(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func newClient(url string) *service.Client {
	return service.NewClient(url, service.WithTimeout(30*time.Second), service.WithWaitTimeout(60*time.Second),
		service.WithPollInterval(5*time.Millisecond))
}

// waitAll waits for every transaction reply to be accepted.
func waitAll(t *testing.T, c *service.Client, replies ...*service.TxReply) {
	t.Helper()
	for _, r := range replies {
		if _, err := c.WaitAccepted(ctx(t, time.Minute), r.TxID); err != nil {
			t.Fatalf("waiting for %s %s: %v", r.Type, r.TxID, err)
		}
	}
}

// registerGo makes and registers an identity through the Go client.
func registerGo(t *testing.T, c *service.Client) *crypto.Identity {
	t.Helper()
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Register(ctx(t, 30*time.Second), id)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	waitAll(t, c, r)
	return id
}

// cliUser is a person using the sessionctl binary.
type cliUser struct {
	t *testing.T
	CLI
	SessionID string
}

func newCLIUser(t *testing.T, node, name string) *cliUser {
	dir := t.TempDir()
	u := &cliUser{t: t, CLI: CLI{
		Bin:        sessionctlBin,
		Node:       node,
		Identity:   filepath.Join(dir, name+".json"),
		Passphrase: "passphrase of " + name,
		Home:       dir,
	}}
	// The identity file is written here, at the work factor runMain set.
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if err := id.Save(u.Identity, u.Passphrase); err != nil {
		t.Fatal(err)
	}
	var out struct {
		SessionID string `json:"sessionId"`
	}
	u.runJSON(&out, "whoami")
	if out.SessionID != id.SessionID {
		t.Fatalf("whoami gave Session ID %q, want %q", out.SessionID, id.SessionID)
	}
	u.SessionID = out.SessionID
	return u
}

// run runs the CLI and fails the test on a non-zero exit.
func (u *cliUser) run(args ...string) string {
	u.t.Helper()
	stdout, stderr, code, err := u.Run(args...)
	if err != nil || code != 0 {
		u.t.Fatalf("sessionctl %q: exit %d, %v\nstdout: %s\nstderr: %s", args, code, err, stdout, stderr)
	}
	return stdout
}

// runJSON runs the CLI with --json and decodes its output into v.
func (u *cliUser) runJSON(v any, args ...string) {
	u.t.Helper()
	out := u.run(append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		u.t.Fatalf("sessionctl %q: output is not JSON: %v\n%s", args, err, out)
	}
}

// fails runs the CLI expecting exit status 1 and returns stderr.
func (u *cliUser) fails(args ...string) string {
	u.t.Helper()
	stdout, stderr, code, err := u.Run(args...)
	if err != nil || code != 1 {
		u.t.Fatalf("sessionctl %q: want exit 1, got %d (%v)\nstdout: %s\nstderr: %s", args, code, err, stdout, stderr)
	}
	return stderr
}

// identity loads the user's identity file, as an app holding the same key
// would.
func (u *cliUser) identity() *crypto.Identity {
	u.t.Helper()
	id, err := crypto.LoadIdentity(u.Identity, u.Passphrase)
	if err != nil {
		u.t.Fatal(err)
	}
	return id
}

// txOut is the --json output of a CLI write.
type txOut struct {
	TxID    string `json:"txID"`
	Status  string `json:"status"`
	Height  uint64 `json:"height"`
	Session string `json:"session"`
	Channel string `json:"channel"`
}

func (u *cliUser) write(args ...string) txOut {
	u.t.Helper()
	var out txOut
	u.runJSON(&out, args...)
	if out.Status != service.TxAccepted || out.Height == 0 {
		u.t.Fatalf("sessionctl %q: %+v, want accepted", args, out)
	}
	return out
}

// shown is a message as `read --json` prints it.
type shown struct {
	Target    string `json:"target"`
	Seq       uint64 `json:"seq"`
	Sender    string `json:"sender"`
	Timestamp int64  `json:"timestamp"`
	Height    uint64 `json:"height"`
	Text      string `json:"text"`
	Error     string `json:"error"`
}

func (u *cliUser) read(args ...string) []shown {
	u.t.Helper()
	var out struct {
		Messages []shown `json:"messages"`
		Next     uint64  `json:"next"`
	}
	u.runJSON(&out, args...)
	for _, m := range out.Messages {
		if m.Error != "" {
			u.t.Errorf("sessionctl %q: message %d could not be opened: %s", args, m.Seq, m.Error)
		}
	}
	return out.Messages
}

// plain is a message opened with service.OpenMessage.
type plain struct {
	Seq    uint64
	Sender string
	Text   string
}

// openAll reads every message of a session (or, with channel, a channel)
// and opens each as id, checking that the sender is verified.
func openAll(t *testing.T, c *service.Client, id *crypto.Identity, target ids.ID, channel bool) []plain {
	t.Helper()
	var out []plain
	var after uint64
	for {
		var page *service.MessagesReply
		var err error
		if channel {
			page, err = c.ChannelMessages(ctx(t, 30*time.Second), target, after, 0)
		} else {
			page, err = c.Messages(ctx(t, 30*time.Second), target, after, 0)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := range page.Messages {
			m := &page.Messages[i]
			pt, err := service.OpenMessage(id, m)
			if err != nil {
				t.Fatalf("opening message %d of %s as %s: %v", m.Seq, target, id.SessionID, err)
			}
			out = append(out, plain{Seq: m.Seq, Sender: m.Author, Text: string(pt)})
		}
		if len(page.Messages) < service.DefaultPageSize {
			return out
		}
		after = page.Next
	}
}

// wantCode checks that err is a JSON-RPC error with the code.
func wantCode(t *testing.T, what string, err error, code service.ErrorCode) {
	t.Helper()
	got, ok := service.CodeOf(err)
	if !ok || got != code {
		var e *service.Error
		errors.As(err, &e)
		t.Fatalf("%s: got %v (code %d), want code %d (%s)", what, err, got, code, code)
	}
}
