package e2e

import (
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
)

// TestScenarioAndRestart walks the path users walk against a real sessiond
// process: three identities register (two with the CLI binary, one with
// the Go client), two of them talk in a session through both, a
// three-member channel works, outsiders are refused; then the node is
// stopped with SIGTERM and restarted on the same data directory, and all
// history is still there.
func TestScenarioAndRestart(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	proc := StartProcess(t, sessiondBin, dataDir)
	c := newClient(proc.URL)

	// Three identities: alice and bob with the CLI, carol with the Go client.
	alice := newCLIUser(t, proc.URL, "alice")
	bob := newCLIUser(t, proc.URL, "bob")
	for _, u := range []*cliUser{alice, bob} {
		out := u.write("register")
		if out.TxID == "" {
			t.Fatalf("register: no txID: %+v", out)
		}
		var who struct {
			Registered string `json:"registered"`
		}
		u.runJSON(&who, "whoami")
		if who.Registered != "yes" {
			t.Fatalf("whoami after register: %q", who.Registered)
		}
	}
	carol := registerGo(t, c)
	aliceID, bobID := alice.identity(), bob.identity()
	for _, sid := range []string{alice.SessionID, bob.SessionID, carol.SessionID} {
		pub, err := c.PublicIdentity(ctx(t, 10*time.Second), sid)
		if err != nil || pub.SessionID != sid {
			t.Fatalf("PublicIdentity(%s): %v", sid, err)
		}
	}

	// Alice opens a session with Bob through the CLI.
	created := alice.write("session", "create", "--with", bob.SessionID, "--metadata", "e2e")
	session, err := ids.FromString(created.Session)
	if err != nil {
		t.Fatalf("session create: session %q: %v", created.Session, err)
	}
	si, err := c.Session(ctx(t, 10*time.Second), session)
	if err != nil {
		t.Fatal(err)
	}
	if si.Creator != alice.SessionID || !reflect.DeepEqual(si.Participants, []string{alice.SessionID, bob.SessionID}) || si.Status != service.SessionActive {
		t.Fatalf("session: %+v", si)
	}

	// They talk: CLI and an app on the Go client (each person's, on the
	// same device store), each side both ways.
	alice.write("send", session.String(), "hello bob (cli)")
	bob.app(proc.URL).send(session, "hello alice (go)")
	bob.write("send", session.String(), "second from bob (cli)")
	alice.app(proc.URL).send(session, "second from alice (go)")
	want := []plain{
		{1, alice.SessionID, "hello bob (cli)"},
		{2, bob.SessionID, "hello alice (go)"},
		{3, bob.SessionID, "second from bob (cli)"},
		{4, alice.SessionID, "second from alice (go)"},
	}
	checkSessionHistory(t, proc.URL, alice, bob, session, want)

	// Bob's inbox holds what Alice sent him, opened and verified.
	inbox := bob.read("inbox")
	if len(inbox) != 2 || inbox[0].Sender != alice.SessionID || inbox[0].Text != "hello bob (cli)" ||
		inbox[1].Text != "second from alice (go)" || inbox[0].Target != session.String() {
		t.Fatalf("bob's inbox: %+v", inbox)
	}

	// Carol is no participant: the chain refuses her message, through the
	// Go client (code) and through the CLI.
	_, err = c.Send(ctx(t, 10*time.Second), carol, session, []byte("let me in"))
	wantCode(t, "carol sends to alice and bob's session", err, service.CodeNotParticipant)
	carolCLI := saveForCLI(t, carol, proc.URL, "carol")
	if stderr := carolCLI.fails("send", session.String(), "let me in"); !strings.Contains(stderr, "not a participant") {
		t.Fatalf("carol's CLI send: stderr %q, want \"not a participant\"", stderr)
	}

	// A three-member channel: Carol (Go) creates it; Alice, not yet a
	// member, cannot post; then Alice and Bob join through the CLI; every
	// member posts and reads every post.
	cr, err := c.CreateChannel(ctx(t, 10*time.Second), carol, "e2e-room")
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, c, cr)
	channel := cr.Channel
	if stderr := alice.fails("channel", "post", channel.String(), "early"); !strings.Contains(stderr, "not a member") {
		t.Fatalf("non-member CLI post: stderr %q", stderr)
	}
	env, err := crypto.Seal(aliceID, []*crypto.Identity{aliceID.PublicIdentity(), carol.PublicIdentity()}, []byte("early"), service.MessageAD(channel))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Post(ctx(t, 10*time.Second), aliceID, channel, env)
	wantCode(t, "non-member posts to the channel", err, service.CodeNotParticipant)

	alice.write("channel", "join", channel.String())
	bob.write("channel", "join", channel.String())
	info, err := c.Channel(ctx(t, 10*time.Second), channel, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if info.MemberCount != 3 || info.Owner != carol.SessionID || info.Name != "e2e-room" {
		t.Fatalf("channel: %+v", info)
	}
	alice.write("channel", "post", channel.String(), "hi all from alice")
	bob.write("channel", "post", channel.String(), "hi all from bob")
	members := []*crypto.Identity{carol.PublicIdentity(), aliceID.PublicIdentity(), bobID.PublicIdentity()}
	env, err = crypto.Seal(carol, members, []byte("welcome, from carol"), service.MessageAD(channel))
	if err != nil {
		t.Fatal(err)
	}
	pr, err := c.Post(ctx(t, 10*time.Second), carol, channel, env)
	if err != nil {
		t.Fatal(err)
	}
	waitAll(t, c, pr)
	wantPosts := []plain{
		{1, alice.SessionID, "hi all from alice"},
		{2, bob.SessionID, "hi all from bob"},
		{3, carol.SessionID, "welcome, from carol"},
	}
	checkChannelHistory(t, c, alice, bob, carol, channel, wantPosts)

	// SIGTERM: a clean stop, then a restart on the same data directory.
	before := snapshot(t, c, session, channel, alice.SessionID, bob.SessionID, carol.SessionID)
	if code, err := proc.Signal(syscall.SIGTERM, 30*time.Second); err != nil || code != 0 {
		t.Fatalf("SIGTERM: exit %d, %v", code, err)
	}
	if !strings.Contains(proc.Logs(), "sessiond stopped") {
		t.Errorf("no \"sessiond stopped\" log line after SIGTERM")
	}
	proc = StartProcess(t, sessiondBin, dataDir)
	c = newClient(proc.URL)
	for _, u := range []*cliUser{alice, bob, carolCLI} {
		u.Node = proc.URL
	}
	after := snapshot(t, c, session, channel, alice.SessionID, bob.SessionID, carol.SessionID)
	if !reflect.DeepEqual(before, after) {
		t.Fatalf("history changed across a SIGTERM restart:\nbefore %+v\nafter  %+v", before, after)
	}
	checkSessionHistory(t, proc.URL, alice, bob, session, want)
	checkChannelHistory(t, c, alice, bob, carol, channel, wantPosts)

	// The chain goes on: nonces continue where they were.
	bob.write("send", session.String(), "after the restart")
	msgs := alice.read("read", session.String(), "--after", "4")
	if len(msgs) != 1 || msgs[0].Sender != bob.SessionID || msgs[0].Text != "after the restart" || msgs[0].Seq != 5 {
		t.Fatalf("after restart: %+v", msgs)
	}
	st, err := c.Status(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.Height != before.Status.Height+1 {
		t.Fatalf("height after one more message: %d, want %d", st.Height, before.Status.Height+1)
	}
}

// checkSessionHistory reads the session as both participants, through the
// CLI binary and through a Messenger on the same store, and compares with
// want.
func checkSessionHistory(t *testing.T, url string, alice, bob *cliUser, session ids.ID, want []plain) {
	t.Helper()
	for _, u := range []*cliUser{alice, bob} {
		got := toPlain(u.read("read", session.String()))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads the session with the CLI:\n got %+v\nwant %+v", u.SessionID, got, want)
		}
		if got := u.app(url).read(session); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads the session with the Go client:\n got %+v\nwant %+v", u.SessionID, got, want)
		}
	}
}

func checkChannelHistory(t *testing.T, c *service.Client, alice, bob *cliUser, carol *crypto.Identity, channel ids.ID, want []plain) {
	t.Helper()
	for _, u := range []*cliUser{alice, bob} {
		got := toPlain(u.read("channel", "read", channel.String()))
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s reads the channel with the CLI:\n got %+v\nwant %+v", u.SessionID, got, want)
		}
	}
	if got := openAll(t, c, carol, channel, true); !reflect.DeepEqual(got, want) {
		t.Fatalf("carol opens the channel with the Go client:\n got %+v\nwant %+v", got, want)
	}
}

func toPlain(in []shown) []plain {
	out := make([]plain, 0, len(in))
	for _, m := range in {
		out = append(out, plain{Seq: m.Seq, Sender: m.Sender, Text: m.Text})
	}
	return out
}

// saveForCLI writes a Go-made identity to a file the CLI can use.
func saveForCLI(t *testing.T, id *crypto.Identity, node, name string) *cliUser {
	dir := t.TempDir()
	u := &cliUser{t: t, SessionID: id.SessionID, CLI: CLI{
		Bin: sessionctlBin, Node: node, Identity: dir + "/" + name + ".json",
		Passphrase: "passphrase of " + name, Home: dir,
	}}
	if err := id.Save(u.Identity, u.Passphrase); err != nil {
		t.Fatal(err)
	}
	return u
}

// chainSnapshot is everything the restart must keep.
type chainSnapshot struct {
	Status     service.StatusReply
	Identities []service.IdentityReply
	Session    service.SessionReply
	Messages   []service.Message
	Channel    service.ChannelReply
	Posts      []service.Message
	Nonces     []uint64
}

func snapshot(t *testing.T, c *service.Client, session, channel ids.ID, people ...string) chainSnapshot {
	t.Helper()
	var s chainSnapshot
	st, err := c.Status(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	s.Status = *st
	s.Status.AcceptedTxsSinceStart = 0 // process-local; acceptedTxs is chain-wide and must survive
	for _, p := range people {
		id, err := c.Identity(ctx(t, 10*time.Second), p)
		if err != nil {
			t.Fatalf("identity %s: %v", p, err)
		}
		s.Identities = append(s.Identities, *id)
		n, err := c.Nonce(ctx(t, 10*time.Second), p)
		if err != nil {
			t.Fatal(err)
		}
		s.Nonces = append(s.Nonces, n)
	}
	si, err := c.Session(ctx(t, 10*time.Second), session)
	if err != nil {
		t.Fatal(err)
	}
	s.Session = *si
	m, err := c.Messages(ctx(t, 10*time.Second), session, 0, service.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	s.Messages = m.Messages
	ch, err := c.Channel(ctx(t, 10*time.Second), channel, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	s.Channel = *ch
	p, err := c.ChannelMessages(ctx(t, 10*time.Second), channel, 0, service.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	s.Posts = p.Messages
	if s.Status.Height == 0 || len(s.Messages) == 0 || len(s.Posts) == 0 || s.Status.LastAcceptedID == ids.Empty {
		t.Fatalf("snapshot of an empty chain: %+v", s.Status)
	}
	return s
}
