package main

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// TestRequestsContactsPrekeys: message requests (read before accepting,
// accept, decline), session list, contacts and blocks, prekeys and the
// archive, through the binary.
func TestRequestsContactsPrekeys(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	carol, carolID := newUser(t, n, "carol")

	// Alice writes to Bob, a stranger: a request.
	var created struct{ Session string }
	alice.ok(&created, "session", "create", "--with", bobID)
	s := created.Session
	alice.ok(nil, "send", s, "hello, stranger")
	var reqs struct{ Requests []service.RequestEntry }
	bob.ok(&reqs, "requests")
	if len(reqs.Requests) != 1 || reqs.Requests[0].Session.String() != s || reqs.Requests[0].Creator != aliceID {
		t.Fatalf("bob's requests: %+v", reqs.Requests)
	}
	var in shown
	bob.ok(&in, "inbox")
	if len(in.Messages) != 0 {
		t.Fatalf("a request reached the inbox: %+v", in.Messages)
	}
	if got := readTexts(t, bob, s); !slices.Equal(got, []string{"hello, stranger"}) {
		t.Fatalf("bob reads the request: %q", got)
	}
	var list struct{ Sessions []map[string]any }
	bob.ok(&list, "session", "list")
	if len(list.Sessions) != 0 {
		t.Fatalf("a request is listed as a session: %+v", list.Sessions)
	}
	bob.ok(nil, "accept", s)
	bob.ok(&in, "inbox")
	if len(in.Messages) != 1 || in.Messages[0].Text != "hello, stranger" {
		t.Fatalf("bob's inbox after accepting: %+v", in.Messages)
	}
	bob.ok(&reqs, "requests")
	if len(reqs.Requests) != 0 {
		t.Fatalf("requests after accepting: %+v", reqs.Requests)
	}
	alice.ok(nil, "send", s, "second")
	bob.ok(&list, "session", "list")
	if len(list.Sessions) != 1 || list.Sessions[0]["session"] != s || list.Sessions[0]["lastSeq"].(float64) != 2 || list.Sessions[0]["readThrough"].(float64) != 1 {
		t.Fatalf("bob's sessions: %+v", list.Sessions)
	}
	out, _, _ := bob.run("session", "list")
	if !strings.Contains(out, s+" (active)") || !strings.Contains(out, "2 messages, 1 new") || !strings.Contains(out, "with "+aliceID) {
		t.Fatalf("session list:\n%s", out)
	}

	// Carol writes to Bob; Bob declines, then blocks her.
	var c2 struct{ Session string }
	carol.ok(&c2, "session", "create", "--with", bobID)
	bob.ok(nil, "decline", c2.Session)
	bob.ok(&reqs, "requests")
	if len(reqs.Requests) != 0 {
		t.Fatalf("a declined request is listed: %+v", reqs.Requests)
	}
	bob.ok(nil, "block", carolID)
	var st struct{ Status string }
	bob.ok(&st, "contact", "show", carolID)
	if st.Status != "blocked" {
		t.Fatalf("contact show after block: %q", st.Status)
	}
	before := nonce(t, n, carolID)
	if _, errs, code := carol.run("session", "create", "--with", bobID); code != 1 || !strings.Contains(errs, "blocked") {
		t.Fatalf("a blocked identity creates a session: exit %d, %s", code, errs)
	}
	if nonce(t, n, carolID) != before {
		t.Fatal("a refused session was signed and sent")
	}
	bob.ok(nil, "unblock", carolID)
	bob.ok(&st, "contact", "show", carolID)
	if st.Status != "none" {
		t.Fatalf("contact show after unblock: %q", st.Status)
	}
	// A contact's session skips the request.
	bob.ok(nil, "contact", "add", carolID)
	carol.ok(&c2, "session", "create", "--with", bobID)
	bob.ok(&list, "session", "list")
	if len(list.Sessions) != 2 {
		t.Fatalf("a contact's session is not listed: %+v", list.Sessions)
	}
	if _, errs, code := bob.run("block", bobID); code != 2 || !strings.Contains(errs, "your own Session ID") {
		t.Fatalf("block self: exit %d, %s", code, errs)
	}

	// Prekeys: Alice's and Carol's sessions claimed two of Bob's.
	var pk struct {
		SignedPrekeyID   uint32
		Unclaimed        uint32
		Held             int
		PublishedOneTime int
	}
	bob.ok(&pk, "prekeys")
	if pk.SignedPrekeyID == 0 || pk.Unclaimed != service.PrekeyTarget-3 || pk.Held != service.PrekeyTarget-1 || pk.PublishedOneTime != 0 {
		t.Fatalf("bob's prekeys: %+v", pk)
	}
	bob.ok(&pk, "prekeys", "replenish")
	if pk.PublishedOneTime != 0 {
		t.Fatalf("replenished above the low-water mark: %+v", pk)
	}
	out, _, _ = bob.run("prekeys")
	// The replenishment read the claim log: the three claimed secrets
	// (two still waiting for their handshakes) are counted apart.
	if !strings.Contains(out, "one-time prekeys: 61 unclaimed on chain, 61 held on this device (and 2 claimed, kept for their handshakes)") {
		t.Fatalf("prekeys:\n%s", out)
	}

	// The archive.
	var h shown
	alice.ok(&h, "history", s)
	if len(h.Messages) != 2 || h.Messages[0].Text != "hello, stranger" || !h.Messages[0].FromSelf || h.Messages[1].Seq != 2 {
		t.Fatalf("alice's history: %+v", h.Messages)
	}

	// tx prints the new writes.
	for _, c := range []struct {
		args []string
		typ  tx.Type
	}{
		{[]string{"tx", "accept", s}, tx.TypeAcceptSession},
		{[]string{"tx", "decline", s}, tx.TypeAcceptSession},
		{[]string{"tx", "block", carolID}, tx.TypeSetContact},
		{[]string{"tx", "contact", "add", carolID}, tx.TypeSetContact},
		{[]string{"tx", "requests", "policy", "contacts"}, tx.TypeSetRequestPolicy},
	} {
		out, errs, code := bob.run(c.args...)
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
		if code != 0 || err != nil {
			t.Fatalf("%q: exit %d, %s", c.args, code, errs)
		}
		if p, err := tx.Parse(b); err != nil || p.Type() != c.typ || p.Author.String() != bobID {
			t.Fatalf("%q printed %v (%v)", c.args, p, err)
		}
	}
	if _, errs, code := bob.run("tx", "contact", "show", carolID); code != 2 || !strings.Contains(errs, "not a write command") {
		t.Fatalf("tx contact show: exit %d, %s", code, errs)
	}

	// The request policy: printed, then set; a bad one is a usage error.
	out, errs, code := bob.run("tx", "--nonce", "7", "requests", "policy", "contacts")
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil {
		t.Fatalf("tx requests policy: exit %d, %s", code, errs)
	}
	if p, err := tx.Parse(b); err != nil || p.Nonce != 7 || p.Payload.(*tx.SetRequestPolicy).Policy != tx.RequestsFromContacts {
		t.Fatalf("tx requests policy printed %+v (%v)", p, err)
	}
	if out, errs, code := bob.run("requests", "policy", "contacts"); code != 0 || !strings.Contains(out, "message requests from contacts") {
		t.Fatalf("requests policy contacts: exit %d, %s%s", code, out, errs)
	}
	if _, errs, code := bob.run("requests", "policy", "friends"); code != 2 || !strings.Contains(errs, "anyone | contacts") {
		t.Fatalf("requests policy friends: exit %d, %s", code, errs)
	}
	for _, args := range [][]string{{"requests", "policy", "--help"}, {"tx", "requests", "policy", "--help"}} {
		if out, _, code := bob.run(args...); code != 0 || !strings.Contains(out, "sessionctl requests policy (anyone | contacts)") {
			t.Fatalf("%q: exit %d, %s", args, code, out)
		}
	}
}

// TestChannelModeration: invite-only channels, invites, moderators, bans,
// deleted posts, through the binary.
func TestChannelModeration(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	carol, carolID := newUser(t, n, "carol")

	var ch struct{ Channel string }
	alice.ok(&ch, "channel", "create", "club", "--invite-only")
	if _, errs, code := bob.run("channel", "join", ch.Channel); code != 1 || !strings.Contains(errs, "invite") {
		t.Fatalf("join without an invite: exit %d, %s", code, errs)
	}
	alice.ok(nil, "channel", "invite", ch.Channel, bobID)
	bob.ok(nil, "channel", "join", ch.Channel)
	alice.ok(nil, "channel", "moderator", ch.Channel, "add", bobID)
	bob.ok(nil, "channel", "ban", ch.Channel, carolID)
	alice.ok(nil, "channel", "policy", ch.Channel, "open")
	if _, errs, code := carol.run("channel", "join", ch.Channel); code != 1 || !strings.Contains(errs, "banned") {
		t.Fatalf("a banned identity joins: exit %d, %s", code, errs)
	}
	alice.ok(nil, "channel", "post", ch.Channel, "first")
	alice.ok(nil, "channel", "post", ch.Channel, "second")
	bob.ok(nil, "channel", "delete", ch.Channel, "1")
	var posts shown
	bob.ok(&posts, "channel", "read", ch.Channel)
	if len(posts.Messages) != 1 || posts.Messages[0].Text != "second" || posts.Messages[0].Sender != aliceID {
		t.Fatalf("posts after a moderator's delete: %+v", posts.Messages)
	}
	bob.ok(nil, "channel", "unban", ch.Channel, carolID)
	carol.ok(nil, "channel", "join", ch.Channel)
	alice.ok(nil, "channel", "moderator", ch.Channel, "remove", bobID)
	var info service.ChannelReply
	alice.ok(&info, "channel", "show", ch.Channel)
	if info.JoinPolicy != "open" || info.MemberCount != 3 || info.BanCount != 0 || !slices.Contains(info.MemberRoles, "owner") || slices.Contains(info.MemberRoles, "moderator") {
		t.Fatalf("channel show: %+v", info)
	}
	out, _, _ := alice.run("channel", "show", ch.Channel)
	if !strings.Contains(out, `"club" (open)`) || !strings.Contains(out, aliceID+" (owner)") {
		t.Fatalf("channel show:\n%s", out)
	}
	// Usage errors say what is expected.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"channel", "ban", ch.Channel}, "channel ban CHANNEL ID [ID ...]"},
		{[]string{"channel", "policy", ch.Channel, "closed"}, "(open | invite-only)"},
		{[]string{"channel", "delete", ch.Channel, "x"}, "not a post's sequence number"},
		{[]string{"channel", "moderator", ch.Channel, "promote", bobID}, "(add | remove)"},
		{[]string{"channel", "invite", ch.Channel, ch.Channel}, "is a session ID (a conversation, or a channel), not a Session ID"},
	} {
		if _, errs, code := alice.run(c.args...); code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%q: exit %d, %q; want %q", c.args, code, errs, c.want)
		}
	}
	out, errs, code := alice.run("tx", "channel", "ban", ch.Channel, carolID)
	b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if p, err := tx.Parse(b); code != 0 || err != nil || p.Type() != tx.TypeModerateChannel {
		t.Fatalf("tx channel ban: exit %d, %s, %v", code, errs, err)
	}
}

// TestSealedHistory: a session written with Seal before the protocol still
// reads (marked as without forward secrecy); once the protocol is used in
// it, a Seal envelope is refused (no downgrade), and nothing new is sent
// with Seal.
func TestSealedHistory(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, aliceID := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := service.NewClient(n.URL())
	aliceKey, err := crypto.LoadIdentity(alice.identity, alice.pass)
	if err != nil {
		t.Fatal(err)
	}
	bob.ok(nil, "contact", "add", aliceID)
	r, err := c.CreateSession(ctx, aliceKey, bobID) // no claims: a session of the old kind
	if err != nil {
		t.Fatal(err)
	}
	waitTx(t, c, r.TxID)
	s := r.Session
	sealed := func(text string) {
		r, err := c.SendSealed(ctx, aliceKey, s, []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		waitTx(t, c, r.TxID)
	}
	sealed("sealed before")
	var got shown
	bob.ok(&got, "read", s.String())
	if len(got.Messages) != 1 || got.Messages[0].Text != "sealed before" || !got.Messages[0].Sealed {
		t.Fatalf("the Seal message: %+v", got.Messages)
	}
	out, _, _ := bob.run("read", s.String())
	if !strings.Contains(out, "(sealed, no forward secrecy): sealed before") {
		t.Fatalf("read does not mark the Seal message:\n%s", out)
	}
	alice.ok(nil, "send", s.String(), "with the protocol")
	sealed("sealed after")
	bob.ok(&got, "read", s.String())
	if len(got.Messages) != 3 || got.Messages[1].Text != "with the protocol" || got.Messages[1].Sealed ||
		got.Messages[2].Text != "" || !strings.Contains(got.Messages[2].Error, "refused") {
		t.Fatalf("after the protocol: %+v", got.Messages)
	}
	// What the CLI sent is no Seal envelope.
	page, err := c.Messages(ctx, s, 1, 0)
	if err != nil || len(page.Messages) != 2 || page.Messages[0].Ciphertext[0] == crypto.SealVersion {
		t.Fatalf("the CLI's message: %+v, %v", page, err)
	}
}

func waitTx(t *testing.T, c *service.Client, id ids.ID) {
	t.Helper()
	if _, err := c.WaitAccepted(context.Background(), id); err != nil {
		t.Fatal(err)
	}
}

// TestTxPrekeys: "tx prekeys replenish" prints a PublishPrekeys
// transaction whose keys the device's store keeps: a new device of an
// identity prints one (a new signed prekey, retiring the old device's
// one-time prekeys), it is submitted by hand, and a stranger's session
// made with those prekeys opens on that device.
func TestTxPrekeys(t *testing.T) {
	t.Parallel()
	n := testNode(t)
	alice, _ := newUser(t, n, "alice")
	bob, bobID := newUser(t, n, "bob")
	raw, err := os.ReadFile(bob.identity)
	if err != nil {
		t.Fatal(err)
	}
	device2 := *bob
	device2.identity = filepath.Join(t.TempDir(), "bob.json")
	if err := os.WriteFile(device2.identity, raw, 0o600); err != nil {
		t.Fatal(err)
	}

	if _, errs, code := bob.run("prekeys", "--one-time", "2"); code != 2 || !strings.Contains(errs, "goes with 'sessionctl tx prekeys replenish'") {
		t.Fatalf("prekeys --one-time: exit %d, %s", code, errs)
	}
	if _, errs, code := bob.run("tx", "prekeys", "replenish"); code != 1 || !strings.Contains(errs, "nothing to publish") {
		t.Fatalf("tx prekeys replenish with nothing to do: exit %d, %s", code, errs)
	}
	out, errs, code := device2.run("tx", "prekeys", "replenish", "--one-time", "2")
	lines := strings.Fields(out)
	if code != 0 || len(lines) != 1 {
		t.Fatalf("tx prekeys replenish: exit %d, %q, %s", code, out, errs)
	}
	b, err := base64.StdEncoding.DecodeString(lines[0])
	if err != nil {
		t.Fatal(err)
	}
	p, err := tx.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	pp, ok := p.Payload.(*tx.PublishPrekeys)
	if !ok || p.Author.String() != bobID || pp.Signed == nil || len(pp.OneTime) != 2 || pp.RetireThrough == 0 {
		t.Fatalf("printed %+v", p)
	}
	ctx := context.Background()
	c := service.NewClient(n.URL())
	r, err := c.IssueTx(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WaitAccepted(ctx, r.TxID); err != nil {
		t.Fatal(err)
	}
	var created struct{ Session string }
	alice.ok(&created, "session", "create", "--with", bobID)
	alice.ok(nil, "send", created.Session, "to the new device")
	if got := readTexts(t, &device2, created.Session); !slices.Equal(got, []string{"to the new device"}) {
		t.Fatalf("device 2 reads: %q", got)
	}
}
