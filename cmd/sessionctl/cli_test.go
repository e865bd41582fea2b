package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// These tests run the sessionctl binary as a user does (see ctl).

// pair starts a node with two registered users and a session of theirs.
func pair(t *testing.T) (n *node.Node, alice, bob *ctl, aliceID, bobID, session string) {
	n = testNode(t)
	alice, aliceID = newUser(t, n, "alice")
	bob, bobID = newUser(t, n, "bob")
	var created struct{ Session string }
	alice.ok(&created, "session", "create", "--with", bobID)
	return n, alice, bob, aliceID, bobID, created.Session
}

func readTexts(t *testing.T, c *ctl, session string) []string {
	t.Helper()
	var got shown
	c.ok(&got, "read", session, "--limit", "1000")
	var texts []string
	for _, m := range got.Messages {
		if m.Error != "" {
			t.Fatalf("message %d did not open: %s", m.Seq, m.Error)
		}
		texts = append(texts, m.Text)
	}
	return texts
}

// TestSendAnyText: text that starts with dashes, standard input and files
// all arrive exactly as given.
func TestSendAnyText(t *testing.T) {
	t.Parallel()
	_, alice, bob, _, _, s := pair(t)
	file := filepath.Join(t.TempDir(), "note.txt")
	if err := os.WriteFile(file, []byte("from a file\nsecond line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.ok(nil, "send", s, "-x marks the spot")
	alice.ok(nil, "send", s, "--", "-x")
	alice.ok(nil, "send", s, "--", "--json")
	alice.ok(nil, "send", s, "-5")
	alice.stdin = "from standard input\n"
	alice.ok(nil, "send", s, "-")
	alice.ok(nil, "send", s, "--file", file)
	alice.ok(nil, "send", "--file="+file, s) // flags anywhere before --
	want := []string{"-x marks the spot", "-x", "--json", "-5", "from standard input", "from a file\nsecond line", "from a file\nsecond line"}
	if got := readTexts(t, bob, s); !slices.Equal(got, want) {
		t.Fatalf("bob read %q, want %q", got, want)
	}

	// A flag-shaped word that is no flag says how to send it as text.
	_, errs, code := alice.run("send", s, "-x")
	if code != 2 || !strings.Contains(errs, "unknown flag -x") || !strings.Contains(errs, "put -- before it") {
		t.Fatalf("send S -x: exit %d, %q", code, errs)
	}
	// Several words, text and --file, nothing at all.
	for _, args := range [][]string{{"send", s, "two", "words"}, {"send", s, "text", "--file", file}, {"send", s}} {
		if _, errs, code := alice.run(args...); code != 2 {
			t.Fatalf("%q: exit %d, %q", args, code, errs)
		}
	}
	if got := readTexts(t, bob, s); len(got) != len(want) {
		t.Fatalf("refused sends were sent: %q", got)
	}
}

// TestEmptyMessage: empty and blank messages are refused, from every
// source, and nothing is signed.
func TestEmptyMessage(t *testing.T) {
	t.Parallel()
	n, alice, _, aliceID, _, s := pair(t)
	empty := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := nonce(t, n, aliceID)
	for _, c := range []struct {
		args  []string
		stdin string
	}{
		{[]string{"send", s, ""}, ""},
		{[]string{"send", s, "  \t "}, ""},
		{[]string{"send", s, "-"}, ""},
		{[]string{"send", s, "-"}, "\n"},
		{[]string{"send", s, "--file", empty}, ""},
	} {
		alice.stdin = c.stdin
		_, errs, code := alice.run(c.args...)
		if code != 2 || !strings.Contains(errs, "nothing to send") {
			t.Fatalf("%q (stdin %q): exit %d, %q", c.args, c.stdin, code, errs)
		}
	}
	if after := nonce(t, n, aliceID); after != before {
		t.Fatalf("a refused empty message was signed and sent (nonce %d -> %d)", before, after)
	}
}

func nonce(t *testing.T, n *node.Node, sessionID string) uint64 {
	t.Helper()
	v, err := service.NewClient(n.URL()).Nonce(context.Background(), sessionID)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMessageSizeLimit: the limit is the protocol's bound on the text
// (the same whatever the number of participants, so that every envelope
// fits the chain's ciphertext limit); a longer text is refused in terms of
// the text, before anything is encrypted or signed.
func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	n, alice, bob, aliceID, _, s := pair(t)
	limit := maxText(2)
	if limit != chat.MaxPlaintextSize || chat.MaxPlaintextSize != 16_384 {
		t.Fatalf("the limit with 2 participants is %d; the protocol says %d and the docs 16,384", limit, chat.MaxPlaintextSize)
	}
	fits := strings.Repeat("a", limit)
	path := filepath.Join(t.TempDir(), "fits.txt")
	if err := os.WriteFile(path, []byte(fits), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.ok(nil, "send", s, "--file", path)
	if got := readTexts(t, bob, s); len(got) != 1 || got[0] != fits {
		t.Fatalf("the largest message did not arrive intact (%d messages)", len(got))
	}

	before := nonce(t, n, aliceID)
	big := filepath.Join(t.TempDir(), "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("b", 70_000)), 0o600); err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(t.TempDir(), "huge.txt")
	if err := os.WriteFile(huge, make([]byte, 3<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{[]string{"send", s, "--file", big}, "", "message is 70,000 bytes; at most 16,384 with 2 participants"},
		{[]string{"send", s, strings.Repeat("c", limit+1)}, "", "message is 16,385 bytes; at most 16,384 with 2 participants"},
		{[]string{"send", s, "-"}, strings.Repeat("d", 70_000) + "\n", "message is 70,000 bytes; at most 16,384 with 2 participants"},
		{[]string{"send", s, "--file", huge}, "", "message is 3,145,728 bytes; at most 16,384 with 2 participants"},
		{[]string{"send", s, "-"}, strings.Repeat("e", 2<<20), "message is more than 1,048,576 bytes; at most 16,384 with 2 participants"},
		{[]string{"tx", "send", s, "--file", big}, "", "message is 70,000 bytes; at most 16,384 with 2 participants"},
	} {
		alice.stdin = c.stdin
		_, errs, code := alice.run(c.args...)
		if code != 1 || strings.TrimSpace(errs) != "sessionctl: "+c.want {
			t.Fatalf("%.40q: exit %d, %q; want %q", c.args, code, errs, c.want)
		}
	}
	if after := nonce(t, n, aliceID); after != before {
		t.Fatalf("an oversize message was signed and sent (nonce %d -> %d)", before, after)
	}
	// Nothing reached the outbox either.
	if _, errs, _ := alice.run("read", s); strings.Contains(errs, "not on chain yet") {
		t.Fatalf("an oversize message is in the outbox: %q", errs)
	}

	// More participants, the same limit.
	_, carolID := newUser(t, n, "carol")
	var three struct{ Session string }
	alice.ok(&three, "session", "create", "--with", mustField(t, bob, "whoami", "sessionId"), "--with", carolID)
	_, errs, code := alice.run("send", three.Session, "--file", big)
	if want := "at most 16,384 with 3 participants"; code != 1 || !strings.Contains(errs, want) {
		t.Fatalf("3 participants: exit %d, %q; want %q", code, errs, want)
	}
}

func mustField(t *testing.T, c *ctl, cmd, field string) string {
	t.Helper()
	var m map[string]any
	c.ok(&m, cmd)
	s, _ := m[field].(string)
	return s
}

// TestRegisterTwice: registering the registered identity again says so
// and succeeds.
func TestRegisterTwice(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	before := nonce(t, n, aliceID)
	out, errs, code := alice.run("register")
	if code != 0 || !strings.Contains(out, aliceID+" is already registered with these keys") {
		t.Fatalf("second register: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	var r struct{ Status, SessionID string }
	alice.ok(&r, "register")
	if r.Status != "already registered" || r.SessionID != aliceID {
		t.Fatalf("second register --json: %+v", r)
	}
	if after := nonce(t, n, aliceID); after != before {
		t.Fatal("a second registration was sent")
	}
}

// TestIDKinds: a Session ID (a person) where a session ID (a conversation)
// belongs, and the reverse, and a channel for a session, are refused with
// an error that says which is which.
func TestIDKinds(t *testing.T) {
	t.Parallel()
	_, alice, _, aliceID, bobID, s := pair(t)
	var ch struct{ Channel string }
	alice.ok(&ch, "channel", "create", "general")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"send", bobID, "hi"}, bobID + " is a Session ID (a person), not a session ID"},
		{[]string{"read", aliceID}, "is a Session ID (a person), not a session ID"},
		{[]string{"session", "show", bobID}, "is a Session ID (a person), not a session ID"},
		{[]string{"close", bobID}, "is a Session ID (a person), not a session ID"},
		{[]string{"channel", "read", bobID}, "is a Session ID (a person), not a channel ID"},
		{[]string{"session", "create", "--with", s}, s + " is a session ID (a conversation, or a channel), not a Session ID"},
		{[]string{"read", ch.Channel}, ch.Channel + " is a channel, not a session"},
		{[]string{"send", ch.Channel, "hi"}, "is a channel, not a session"},
		{[]string{"channel", "read", s}, s + " is a session, not a channel"},
		{[]string{"channel", "show", s}, "is a session, not a channel"},
	} {
		_, errs, code := alice.run(c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, %q; want %q", c.args, code, errs, c.want)
		}
	}
}

// TestHelpEverywhere: every command and subcommand answers --help (and
// -h, and "help COMMAND") with its own usage on stdout and exit status 0.
func TestHelpEverywhere(t *testing.T) {
	t.Parallel()
	commands := []string{
		"keygen", "whoami", "register", "session", "session create", "session list", "session show",
		"send", "resend", "read", "inbox", "history", "close", "requests", "accept", "decline",
		"contact", "contact show", "contact add", "contact remove", "block", "unblock", "prekeys",
		"channel", "channel create", "channel join", "channel leave", "channel show", "channel post", "channel read",
		"channel policy", "channel invite", "channel uninvite", "channel remove", "channel ban", "channel unban",
		"channel moderator", "channel delete", "status", "tx",
	}
	if got := slices.Sorted(func(yield func(string) bool) {
		for k := range commandHelp {
			if !yield(k) {
				return
			}
		}
	}); !slices.Equal(got, slices.Sorted(slices.Values(commands))) {
		t.Fatalf("commands with help %q; this test checks %q", got, commands)
	}
	c := &ctl{t: t, node: "http://127.0.0.1:1/rpc", identity: filepath.Join(t.TempDir(), "none.json")}
	for _, cmd := range commands {
		words := strings.Fields(cmd)
		for _, args := range [][]string{
			append(slices.Clone(words), "--help"),
			append(slices.Clone(words), "-h"),
			append([]string{"help"}, words...),
		} {
			out, errs, code := c.run(args...)
			if code != 0 || errs != "" || !strings.HasPrefix(out, "Usage: sessionctl "+cmd) {
				t.Errorf("sessionctl %s: exit %d, stderr %q, stdout %.60q", strings.Join(args, " "), code, errs, out)
			}
		}
	}
	// --help after arguments, and in tx, too.
	for _, args := range [][]string{{"send", "S", "--help"}, {"tx", "send", "--help"}, {"tx", "--help"}} {
		if out, errs, code := c.run(args...); code != 0 || errs != "" || !strings.HasPrefix(out, "Usage: sessionctl ") {
			t.Errorf("sessionctl %s: exit %d, %q", strings.Join(args, " "), code, errs)
		}
	}
	out, _, code := c.run("--help")
	if code != 0 || !strings.Contains(out, "tx [--nonce N]") {
		t.Fatalf("sessionctl --help: exit %d\n%s", code, out)
	}
	// The size limits in the help are the computed ones.
	out, _, _ = c.run("send", "--help")
	if !strings.Contains(out, "at most "+commas(chat.MaxPlaintextSize)+" bytes of text") {
		t.Fatalf("send --help lacks the size limit:\n%s", out)
	}
	out, _, _ = c.run("channel", "post", "--help")
	if !strings.Contains(out, "2 members:  56,735 bytes") || !strings.Contains(out, "more than 50 members") {
		t.Fatalf("channel post --help lacks the size limits:\n%s", out)
	}
}

// TestKeygenSeed: the backup seed is read from standard input (or the
// terminal), never taken from the command line, and never echoed.
func TestKeygenSeed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := &ctl{t: t, identity: filepath.Join(dir, "a.json"), pass: "p"}
	var k struct{ SessionID, Seed string }
	a.ok(&k, "keygen", "--print-seed")
	if len(k.Seed) != 64 {
		t.Fatalf("seed %q", k.Seed)
	}
	for i, args := range [][]string{{"keygen", "--seed", k.Seed}, {"keygen", "--seed=" + k.Seed}, {"keygen", k.Seed}} {
		b := &ctl{t: t, identity: filepath.Join(dir, "refused.json"), pass: "q"}
		out, errs, code := b.run(args...)
		if code != 2 || !strings.Contains(errs, "not taken from the command line") || strings.Contains(errs+out, k.Seed[:16]) {
			t.Fatalf("case %d: exit %d, stdout %q, stderr %q", i, code, out, errs)
		}
		if _, err := os.Stat(b.identity); err == nil {
			t.Fatal("an identity file was written from a seed on the command line")
		}
	}
	// From standard input (with whitespace, as typed or pasted).
	b := &ctl{t: t, identity: filepath.Join(dir, "b.json"), pass: "q"}
	b.stdin = k.Seed[:32] + " " + k.Seed[32:] + "\n"
	var r struct{ SessionID string }
	b.ok(&r, "keygen", "--seed")
	if r.SessionID != k.SessionID {
		t.Fatalf("restored %s, want %s", r.SessionID, k.SessionID)
	}
	// A bad seed is refused without echoing it.
	bad := &ctl{t: t, identity: filepath.Join(dir, "bad.json"), pass: "q", stdin: k.Seed[:63] + "z"}
	if _, errs, code := bad.run("keygen", "--seed"); code != 2 || !strings.Contains(errs, "64 hexadecimal") || strings.Contains(errs, k.Seed[:16]) {
		t.Fatalf("bad seed: exit %d, %q", code, errs)
	}
}

// TestTxPrint: "sessionctl tx" prints a signed transaction without
// sending it; submitted later, it is accepted.
func TestTxPrint(t *testing.T) {
	t.Parallel()
	n, alice, bob, aliceID, bobID, s := pair(t)
	before := nonce(t, n, aliceID)
	out, errs, code := alice.run("tx", "send", s, "printed, then sent")
	if code != 0 {
		t.Fatalf("tx send: exit %d, %q", code, errs)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("tx send printed %q: %v", out, err)
	}
	parsed, err := tx.Parse(raw)
	if err != nil || parsed.Type() != tx.TypeSendMessage || parsed.Author.String() != aliceID || parsed.Nonce != before || parsed.ChainID != n.ChainID() {
		t.Fatalf("printed transaction: %+v, %v", parsed, err)
	}
	if after := nonce(t, n, aliceID); after != before {
		t.Fatal("tx send sent the transaction")
	}
	c := service.NewClient(n.URL())
	r, err := c.IssueTx(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAccepted(context.Background(), r.TxID); err != nil {
		t.Fatal(err)
	}
	if got := readTexts(t, bob, s); !slices.Equal(got, []string{"printed, then sent"}) {
		t.Fatalf("bob read %q", got)
	}

	// --json names what a createSession creates.
	var j struct {
		Tx, TxID, Type, Author, Session, ChainID string
		Nonce                                    uint64
	}
	alice.ok(&j, "tx", "session", "create", "--with", bobID)
	b, _ := base64.StdEncoding.DecodeString(j.Tx)
	pt, err := tx.Parse(b)
	if err != nil || j.Type != "createSession" || j.TxID != pt.ID().String() || j.Session != tx.SessionIDFor(n.ChainID(), pt.Author, pt.Nonce).String() {
		t.Fatalf("tx session create --json: %+v (%v)", j, err)
	}

	// Offline: --nonce and --chain-id need no node; a registration also
	// needs its anchor block.
	chain := ids.GenerateTestID()
	offline := &ctl{t: t, node: "http://127.0.0.1:1/rpc", identity: alice.identity, pass: alice.pass}
	if _, errs, code := offline.run("tx", "--nonce", "0", "--chain-id", chain.String(), "register"); code != 2 || !strings.Contains(errs, "--anchor") {
		t.Fatalf("offline tx register without an anchor: exit %d, %q", code, errs)
	}
	anchor := ids.GenerateTestID()
	out, errs, code = offline.run("tx", "--nonce", "0", "--chain-id", chain.String(), "--anchor", "12:"+anchor.String(), "register")
	if code != 0 {
		t.Fatalf("offline tx register: exit %d, %q", code, errs)
	}
	b, _ = base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	pt, err = tx.Parse(b)
	if err != nil || pt.Nonce != 0 || pt.ChainID != chain || pt.Type() != tx.TypeRegisterIdentity || pt.Payload.(*tx.RegisterIdentity).AnchorHeight != 12 {
		t.Fatalf("offline register: %+v, %v", pt, err)
	}
	if _, errs, code := offline.run("tx", "--chain-id", chain.String(), "--anchor", "x", "register"); code != 2 || !strings.Contains(errs, "HEIGHT:BLOCKID") {
		t.Fatalf("bad --anchor: exit %d, %q", code, errs)
	}

	// Reads are not transactions.
	for _, args := range [][]string{{"tx", "read", s}, {"tx", "channel", "show", s}, {"tx", "status"}, {"tx"}} {
		if _, errs, code := alice.run(args...); code != 2 {
			t.Fatalf("%q: exit %d, %q", args, code, errs)
		}
	}
	if _, errs, code := alice.run("tx", "--chain-id", "nope", "register"); code != 2 || !strings.Contains(errs, "not a chain ID") {
		t.Fatalf("bad --chain-id: exit %d, %q", code, errs)
	}
}

// TestMaxSealedRecipients: the most members a channel post can be sealed
// to, from the same computation as the limits.
func TestMaxSealedRecipients(t *testing.T) {
	r := maxSealedRecipients()
	if maxSealedText(r) < 1 || maxSealedText(r+1) >= 1 || r != 50 {
		t.Fatalf("maxSealedRecipients = %d (text %d, next %d)", r, maxSealedText(r), maxSealedText(r+1))
	}
}
