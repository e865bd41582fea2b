package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// prekeyKey returns a valid ML-KEM-768 public key to publish as a prekey.
func prekeyKey(t testing.TB, i int) []byte {
	t.Helper()
	return identity(t, 3+i%5).KEMPublicKey
}

// TestConsentThroughTheClient: requests, acceptance, listing, contacts.
func TestConsentThroughTheClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	e.accept()
	if _, err := c.SendSealed(ctx, alice, r.Session, []byte("hi bob")); err != nil {
		t.Fatal(err)
	}
	e.accept()
	reqs, err := c.Requests(ctx, bob.SessionID, 0, 0)
	if err != nil || len(reqs.Requests) != 1 || reqs.Requests[0].Creator != alice.SessionID ||
		reqs.Requests[0].Session != r.Session || reqs.Requests[0].Status != SessionActive || reqs.More {
		t.Fatalf("Requests = %+v, %v", reqs, err)
	}
	in, _ := c.Inbox(ctx, bob.SessionID, 0, 0)
	if len(in.Messages) != 0 {
		t.Fatal("a request reached the inbox")
	}
	s, err := c.Session(ctx, r.Session)
	if err != nil || s.ParticipantStates[1] != "pending" || s.Stored != 1 {
		t.Fatalf("Session = %+v, %v", s, err)
	}
	if _, err := c.AcceptSession(ctx, bob, r.Session); err != nil {
		t.Fatal(err)
	}
	e.accept()
	in, _ = c.Inbox(ctx, bob.SessionID, 0, 0)
	if len(in.Messages) != 1 {
		t.Fatalf("inbox after accepting: %d", len(in.Messages))
	}
	if pt, err := OpenMessage(bob, &in.Messages[0]); err != nil || string(pt) != "hi bob" {
		t.Fatalf("open: %q %v", pt, err)
	}
	list, err := c.Sessions(ctx, bob.SessionID, 0, 0)
	if err != nil || len(list.Sessions) != 1 || list.Sessions[0].Session != r.Session || list.Next != list.Sessions[0].Position {
		t.Fatalf("Sessions = %+v, %v", list, err)
	}
	if more, _ := c.Sessions(ctx, bob.SessionID, list.Next, 0); len(more.Sessions) != 0 || more.Next != list.Next {
		t.Fatalf("after the cursor: %+v", more)
	}
	// Contacts: carol trusts alice, so alice's session skips the request.
	if _, err := c.SetContact(ctx, carol, alice.SessionID, tx.ContactTrusted); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if st, err := c.Contact(ctx, carol.SessionID, alice.SessionID); err != nil || st != "contact" {
		t.Fatalf("Contact = %q, %v", st, err)
	}
	r2, _ := c.CreateSession(ctx, alice, carol.SessionID)
	e.accept()
	if s, _ := c.Session(ctx, r2.Session); s.ParticipantStates[1] != "accepted" {
		t.Fatalf("states %v", s.ParticipantStates)
	}
	// Declining, blocking: codes the client can act on.
	if _, err := c.DeclineSession(ctx, bob, r.Session); err != nil {
		t.Fatal(err)
	}
	e.accept()
	_, err = c.Send(ctx, bob, r.Session, []byte("x"))
	mustCode(t, err, CodeNotParticipant)
	if _, err := c.SetContact(ctx, bob, alice.SessionID, tx.ContactBlocked); err != nil {
		t.Fatal(err)
	}
	e.accept()
	_, err = c.CreateSession(ctx, alice, bob.SessionID)
	mustCode(t, err, CodeForbidden)
	if !IsRefused(err) || IsRetryable(err) {
		t.Fatal("classification")
	}
}

// TestModerationThroughTheClient: policy, invites, bans, deletion, roles
// in getChannel and isChannelMember.
func TestModerationThroughTheClient(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	r, err := c.CreateChannelWithPolicy(ctx, alice, "club", tx.PolicyInviteOnly)
	if err != nil {
		t.Fatal(err)
	}
	e.accept()
	ch := r.Channel
	_, err = c.JoinChannel(ctx, bob, ch)
	mustCode(t, err, CodeForbidden)
	if _, err := c.ModerateChannel(ctx, alice, ch, tx.ActionInvite, bob.SessionID, carol.SessionID); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if m, err := c.ChannelMembership(ctx, ch, bob.SessionID); err != nil || m.Member || !m.Invited || m.Role != "none" {
		t.Fatalf("bob %+v %v", m, err)
	}
	for _, id := range []*crypto.Identity{bob, carol} {
		if _, err := c.JoinChannel(ctx, id, ch); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	if _, err := c.ModerateChannel(ctx, alice, ch, tx.ActionMakeModerator, bob.SessionID); err != nil {
		t.Fatal(err)
	}
	p, _ := c.Post(ctx, carol, ch, []byte("spam"))
	e.accept()
	info, err := c.Channel(ctx, ch, "", 0)
	if err != nil || info.JoinPolicy != "invite-only" || info.MemberCount != 3 || info.InviteCount != 0 || len(info.MemberRoles) != 3 {
		t.Fatalf("Channel = %+v, %v", info, err)
	}
	roles := map[string]string{} // lookups only
	for i, m := range info.Members {
		roles[m] = info.MemberRoles[i]
	}
	if roles[alice.SessionID] != "owner" || roles[bob.SessionID] != "moderator" || roles[carol.SessionID] != "member" {
		t.Fatalf("roles %v", roles)
	}
	// The moderator deletes carol's post and bans her.
	pt, _ := c.Tx(ctx, p.TxID)
	if pt == nil || pt.Type != "postChannel" {
		t.Fatalf("Tx = %+v", pt)
	}
	if _, err := c.DeletePosts(ctx, bob, ch, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ModerateChannel(ctx, bob, ch, tx.ActionBan, carol.SessionID); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if m, _ := c.ChannelMembership(ctx, ch, carol.SessionID); m.Member || !m.Banned {
		t.Fatalf("carol %+v", m)
	}
	if ms, _ := c.ChannelMessages(ctx, ch, 0, 0); len(ms.Messages) != 0 {
		t.Fatal("the post is still there")
	}
	if _, err := c.SetChannelPolicy(ctx, alice, ch, tx.PolicyOpen); err != nil {
		t.Fatal(err)
	}
	e.accept()
	_, err = c.JoinChannel(ctx, carol, ch)
	mustCode(t, err, CodeForbidden)
	st, _ := c.Status(ctx)
	if st.MessagesDeleted != 1 {
		t.Fatalf("Status = %+v", st)
	}
	_, err = c.Tx(ctx, ids.ID{9})
	mustCode(t, err, CodeUnknownTx)
}

// TestRegisterSolvesWork: Register solves the chain's proof of work; a
// registration without it is refused.
func TestRegisterSolvesWork(t *testing.T) {
	e := newEnvWith(t, envOpts{cfg: map[string]any{"registration": map[string]any{"memoryKiB": 64, "prefilterBits": 8, "workBits": 3}}})
	ctx := context.Background()
	newcomer := identity(t, 5)
	bare := e.signed(newcomer, &tx.RegisterIdentity{KEMPublicKey: newcomer.KEMPublicKey, DSAPublicKey: newcomer.DSAPublicKey, Work: 1})
	_, err := e.client.RegisterIdentityTx(ctx, bare)
	if !errors.Is(err, ErrInvalidTx) || !strings.Contains(err.Error(), "proof of work") {
		t.Fatalf("registration without work: %v", err)
	}
	r, err := e.client.Register(ctx, newcomer)
	if err != nil {
		t.Fatal(err)
	}
	e.accept()
	if _, err := e.client.WaitAccepted(ctx, r.TxID); err != nil {
		t.Fatal(err)
	}
	cfg, _ := e.client.Config(ctx)
	if cfg.Registration.PrefilterBits != 8 || cfg.RateLimits != config.Default().RateLimits {
		t.Fatalf("config %+v", cfg)
	}
}

// publish publishes bob's signed prekey and n one-time prekeys.
func publish(t *testing.T, e *env, id *crypto.Identity, n int) {
	t.Helper()
	signed := &tx.SignedPrekey{ID: 1, ExpiresAt: e.clock.Now().Add(7 * 24 * time.Hour).UnixMilli(), KEMPublicKey: prekeyKey(t, 0)}
	var ot []tx.OneTimePrekey
	for i := 0; i < n; i++ {
		ot = append(ot, tx.OneTimePrekey{ID: uint32(i + 1), KEMPublicKey: prekeyKey(t, i+1)})
	}
	if _, err := e.client.PublishPrekeys(context.Background(), id, signed, ot...); err != nil {
		t.Fatal(err)
	}
	e.accept()
}

// TestPrekeyBundleVerified: the bundle's keys come from the signed
// transactions; every lie is refused.
func TestPrekeyBundleVerified(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	bob := e.bob
	_, err := c.PrekeyBundle(ctx, bob.SessionID)
	if !errors.Is(err, ErrNoSignedPrekey) {
		t.Fatalf("before publishing: %v", err)
	}
	publish(t, e, bob, 3)
	b, err := c.PrekeyBundle(ctx, bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if b.Identity.SessionID != bob.SessionID || b.SignedPrekey.ID != 1 || !bytes.Equal(b.SignedPrekey.KEMPublicKey, prekeyKey(t, 0)) ||
		b.OneTime == nil || b.OneTime.ID < 1 || b.OneTime.ID > 3 || !bytes.Equal(b.OneTime.KEMPublicKey, prekeyKey(t, int(b.OneTime.ID))) {
		t.Fatalf("bundle %+v", b)
	}

	raw, err := c.RawPrekeyBundle(ctx, bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	chainID := e.vm.ChainID()
	now := e.clock.Now()
	// carol's prekey transaction, to substitute.
	publish(t, e, e.carol, 1)
	carolRaw, _ := c.RawPrekeyBundle(ctx, e.carol.SessionID)
	forged := func() *tx.Tx {
		u := tx.Unsigned{ChainID: chainID, Author: mustSID(t, bob), Nonce: 99,
			Payload: &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: raw.SignedPrekey.ExpiresAt, KEMPublicKey: prekeyKey(t, 4)}}}
		f, err := u.Sign(e.carol) // not bob's key
		if err != nil {
			t.Fatal(err)
		}
		return f
	}()
	other, err := tx.Sign(bob, ids.ID{7}, 0, &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: 1, ExpiresAt: raw.SignedPrekey.ExpiresAt, KEMPublicKey: prekeyKey(t, 4)}})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		tamper func(r *PrekeyBundleReply)
		now    time.Time
		want   error
	}{
		{"another identity's keys", func(r *PrekeyBundleReply) { r.KEMPublicKey = e.carol.KEMPublicKey }, now, ErrIdentityMismatch},
		{"another identity's transaction", func(r *PrekeyBundleReply) { r.SignedPrekey.Tx = carolRaw.SignedPrekey.Tx }, now, ErrUntrustedNode},
		{"a forged signature", func(r *PrekeyBundleReply) { r.SignedPrekey.Tx = forged.Bytes() }, now, ErrUntrustedNode},
		{"another chain's transaction", func(r *PrekeyBundleReply) { r.SignedPrekey.Tx = other.Bytes() }, now, ErrUntrustedNode},
		{"a signed prekey ID not in the transaction", func(r *PrekeyBundleReply) { r.SignedPrekey.ID = 2 }, now, ErrUntrustedNode},
		{"an expiry not in the transaction", func(r *PrekeyBundleReply) { r.SignedPrekey.ExpiresAt += 1000 }, now, ErrUntrustedNode},
		{"a one-time prekey not in the transaction", func(r *PrekeyBundleReply) { r.OneTimePrekey.ID = 9 }, now, ErrUntrustedNode},
		{"a one-time prekey of another identity", func(r *PrekeyBundleReply) { r.OneTimePrekey = carolRaw.OneTimePrekey }, now, ErrUntrustedNode},
		{"garbage", func(r *PrekeyBundleReply) { r.SignedPrekey.Tx = []byte{1, 2, 3} }, now, ErrUntrustedNode},
		{"an expired signed prekey", func(*PrekeyBundleReply) {}, now.Add(8 * 24 * time.Hour), ErrPrekeyExpired},
	}
	for _, tc := range cases {
		var r PrekeyBundleReply
		b, _ := json.Marshal(raw)
		_ = json.Unmarshal(b, &r)
		tc.tamper(&r)
		if _, err := VerifyPrekeyBundle(chainID, bob.SessionID, &r, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// Claiming: the bundle's one-time prekey; a replayed (claimed) one is
	// refused by the chain.
	if _, err := c.SetContact(ctx, bob, e.alice.SessionID, tx.ContactTrusted); err != nil {
		t.Fatal(err)
	}
	e.accept()
	claim, err := b.ClaimOf()
	if err != nil || claim.SignedPrekeyID != 1 || claim.OneTimePrekeyID != b.OneTime.ID {
		t.Fatalf("ClaimOf %+v, %v", claim, err)
	}
	if _, err := c.CreateSessionWithClaims(ctx, e.alice, nil, []string{bob.SessionID}, []tx.Claim{claim}); err != nil {
		t.Fatal(err)
	}
	e.accept()
	_, err = c.CreateSessionWithClaims(ctx, e.alice, nil, []string{bob.SessionID}, []tx.Claim{claim})
	mustCode(t, err, CodePrekeyGone)
	for i := 0; i < 10; i++ {
		if next, _ := c.PrekeyBundle(ctx, bob.SessionID); next.OneTime == nil || next.OneTime.ID == b.OneTime.ID {
			t.Fatalf("next one-time prekey %+v", next.OneTime)
		}
	}
	// A claim of 0 while a one-time prekey is claimable is refused: a node
	// that withholds one-time prekeys gets its client's transaction
	// refused (prekey unavailable), not obeyed.
	_, err = c.CreateSessionWithClaims(ctx, e.alice, nil, []string{bob.SessionID}, []tx.Claim{{Participant: claim.Participant, SignedPrekeyID: 1}})
	mustCode(t, err, CodePrekeyGone)
}

// TestClaimerBundlesAndClaimLog: a bundle asked for a claimer serves a
// one-time prekey only when that claimer may claim it, so a claim built
// from the bundle is always accepted; the claim log names every claim
// with its proof transactions.
func TestClaimerBundlesAndClaimLog(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	alice, bob := e.alice, e.bob
	publish(t, e, bob, 30)
	ask := PrekeyBundleArgs{SessionID: bob.SessionID, Claimer: alice.SessionID}
	b, err := c.PrekeyBundleFor(ctx, ask)
	if err != nil || b.OneTime == nil {
		t.Fatalf("first request's bundle: %+v, %v", b, err)
	}
	claim, _ := b.ClaimOf()
	r1, err := c.CreateSessionWithClaims(ctx, alice, nil, []string{bob.SessionID}, []tx.Claim{claim})
	if err != nil {
		t.Fatal(err)
	}
	e.accept()
	// alice's request is pending: her second request may not claim a
	// one-time prekey, and the bundle for her says so.
	b2, err := c.PrekeyBundleFor(ctx, ask)
	if err != nil || b2.OneTime != nil {
		t.Fatalf("second request's bundle: %+v, %v", b2.OneTime, err)
	}
	c2, _ := b2.ClaimOf()
	if _, err := c.CreateSessionWithClaims(ctx, alice, nil, []string{bob.SessionID}, []tx.Claim{c2}); err != nil {
		t.Fatalf("a claim of 0 the bundle asked for: %v", err)
	}
	e.accept()
	// In a session bob has not accepted, a stranger's bundle has none.
	inSession := ask
	inSession.Session = r1.Session.String()
	if b3, err := c.PrekeyBundleFor(ctx, inSession); err != nil || b3.OneTime != nil {
		t.Fatalf("bundle in an unaccepted session: %+v, %v", b3, err)
	}
	_, err = c.RawPrekeyBundleFor(ctx, PrekeyBundleArgs{SessionID: bob.SessionID, Session: r1.Session.String()})
	mustCode(t, err, CodeInvalidParams)

	log, err := c.Claims(ctx, bob.SessionID, 0, 0)
	if err != nil || len(log.Claims) != 2 || log.More {
		t.Fatalf("claim log %+v, %v", log, err)
	}
	l := log.Claims[0]
	if l.Claimer != alice.SessionID || l.Session != r1.Session || l.TxID != r1.TxID || l.SignedPrekeyID != 1 ||
		l.OneTimePrekeyID != claim.OneTimePrekeyID || l.OneTimeTx == (ids.ID{}) || log.Claims[1].OneTimePrekeyID != 0 || log.Next != log.Claims[1].Position {
		t.Fatalf("claim log %+v", log.Claims)
	}
	// The claim is provable: the claiming transaction holds it.
	got, err := c.Tx(ctx, l.TxID)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := tx.Parse(got.Tx)
	if err != nil || pt.Payload.(*tx.CreateSession).Claims[0] != claim {
		t.Fatalf("the claiming transaction %+v, %v", pt, err)
	}
	if page, _ := c.Claims(ctx, bob.SessionID, l.Position, 1); len(page.Claims) != 1 || page.Claims[0].Position != log.Claims[1].Position {
		t.Fatalf("claim log page %+v", page)
	}
}

// TestRequestPolicyAndDeadTx: setRequestPolicy closes requests to
// strangers; a transaction whose nonce another one consumed is reported
// dropped and dead.
func TestRequestPolicyAndDeadTx(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	if _, err := c.SetRequestPolicy(ctx, bob, tx.RequestsFromContacts); err != nil {
		t.Fatal(err)
	}
	e.accept()
	_, err := c.CreateSession(ctx, alice, bob.SessionID)
	mustCode(t, err, CodeForbidden)
	_, err = c.SetRequestPolicy(ctx, bob, tx.RequestsFromContacts)
	mustCode(t, err, CodeAlreadyExists)
	if _, err := c.SetContact(ctx, bob, alice.SessionID, tx.ContactTrusted); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if _, err := c.CreateSession(ctx, alice, bob.SessionID); err != nil {
		t.Fatalf("a contact under contacts-only: %v", err)
	}
	e.accept()

	// Two transactions of carol with one nonce: the second is refused,
	// and once the first is accepted, it is dead.
	chainID := e.vm.ChainID()
	n, _ := c.Nonce(ctx, carol.SessionID)
	first, _ := tx.Sign(carol, chainID, n, &tx.CreateChannel{Name: "first"})
	second, _ := tx.Sign(carol, chainID, n, &tx.CreateChannel{Name: "second"})
	if _, err := c.IssueTx(ctx, first.Bytes()); err != nil {
		t.Fatal(err)
	}
	_, err = c.IssueTx(ctx, second.Bytes())
	mustCode(t, err, CodeBadNonce)
	st, err := c.TxStatus(ctx, second.ID())
	if err != nil || st.Status != TxDropped || st.Dead || st.Reason == "" {
		t.Fatalf("before the block: %+v, %v", st, err)
	}
	e.accept()
	st, err = c.TxStatus(ctx, second.ID())
	if err != nil || st.Status != TxDropped || !st.Dead {
		t.Fatalf("after the block: %+v, %v", st, err)
	}
	if st, _ := c.TxStatus(ctx, first.ID()); st.Status != TxAccepted || st.Dead {
		t.Fatalf("the accepted one: %+v", st)
	}
}

// lyingProxy forwards to the node but rewrites replies of one method.
func lyingProxy(t *testing.T, target string, method string, rewrite func(result map[string]any)) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(target, "application/json", bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var req struct{ Method string }
		_ = json.Unmarshal(body, &req)
		if req.Method == Namespace+"."+method {
			var msg map[string]any
			if json.Unmarshal(out, &msg) == nil {
				if res, ok := msg["result"].(map[string]any); ok {
					rewrite(res)
					out, _ = json.Marshal(msg)
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestUntrustedNodeParticipants: a node that adds Eve to a session's
// participants (issue 8) is refused: VerifiedSession and SendSealed fail,
// and nothing is sent.
func TestUntrustedNodeParticipants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	alice, bob, eve := e.alice, e.bob, e.carol
	sess := e.session(alice, bob)
	honest, err := e.client.VerifiedSession(ctx, sess)
	if err != nil || len(honest.Participants) != 2 || honest.Participants[1] != bob.SessionID || honest.CreateTx == nil {
		t.Fatalf("VerifiedSession = %+v, %v", honest, err)
	}
	for name, rewrite := range map[string]func(map[string]any){
		"adds Eve": func(r map[string]any) {
			r["participants"] = append(r["participants"].([]any), eve.SessionID)
		},
		"replaces Bob": func(r map[string]any) {
			r["participants"] = []any{alice.SessionID, eve.SessionID}
		},
		"serves Eve's session": func(r map[string]any) {
			sig, _ := tx.Sign(eve, e.vm.ChainID(), 0, &tx.CreateSession{Participants: []crypto.SessionID{mustSID(t, alice), mustSID(t, bob)}})
			r["createTx"] = sig.Bytes()
			r["creator"] = eve.SessionID
			r["participants"] = []any{eve.SessionID, alice.SessionID, bob.SessionID}
		},
		"drops the proof": func(r map[string]any) { delete(r, "createTx") },
	} {
		proxy := lyingProxy(t, e.srv.URL, "getSession", rewrite)
		c := NewClient(proxy.URL, WithTimeout(10*time.Second))
		if _, err := c.VerifiedSession(ctx, sess); !errors.Is(err, ErrUntrustedNode) {
			t.Errorf("%s: VerifiedSession: %v", name, err)
		}
		before, _ := e.vm.Status()
		if _, err := c.SendSealed(ctx, alice, sess, []byte("for bob only")); !errors.Is(err, ErrUntrustedNode) {
			t.Errorf("%s: SendSealed: %v", name, err)
		}
		if after, _ := e.vm.Status(); after.MempoolTxs != before.MempoolTxs {
			t.Errorf("%s: a message was sent", name)
		}
	}
}
