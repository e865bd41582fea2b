package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// TestMethodList checks that Methods names exactly the exported methods
// of the service, so the list (and docs/api.md, see TestDocs) stays whole.
func TestMethodList(t *testing.T) {
	var served []string
	typ := reflect.TypeOf(&rpcService{})
	for i := 0; i < typ.NumMethod(); i++ {
		served = append(served, typ.Method(i).Name)
	}
	var listed []string
	for _, m := range Methods {
		listed = append(listed, goName(m))
	}
	slices.Sort(served)
	slices.Sort(listed)
	if !slices.Equal(served, listed) {
		t.Fatalf("served %v\nlisted %v", served, listed)
	}
	if _, err := NewHandler(nil); err == nil {
		t.Fatal("NewHandler(nil) succeeded")
	}
}

func TestReadOnlyMethods(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client

	h, err := c.Health(ctx)
	if err != nil || !h.Healthy || h.Database != "ok" || h.Height != 0 {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ChainID != e.vm.ChainID() || st.Height != 0 || st.Identities != 3 || st.LastAcceptedID == ids.Empty {
		t.Fatalf("Status = %+v", st)
	}
	cfg, err := c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := ConfigReply{
		ChainID: e.vm.ChainID(), SessionTTL: config.DefaultSessionTTL, MaxMessages: config.DefaultMaxMessages,
		MaxChannels: config.DefaultMaxChannels, RetentionDays: config.DefaultRetentionDays, IDPrefix: "07",
		MaxCiphertextSize: config.MaxCiphertextSize, MaxMetadataSize: config.MaxMetadataSize,
		MaxParticipants: config.MaxParticipants, MaxChannelName: config.MaxChannelNameSize,
		MaxChannelMembers: config.MaxChannelMembers, MaxTxSize: config.MaxTxSize,
		MaxPageSize: MaxPageSize, MaxBodySize: MaxBodySize,
		Registration: config.MinimalRegistration(), RateLimits: config.Default().RateLimits, Prekeys: config.Default().Prekeys,
		MaxPrekeysPerTx: config.MaxPrekeysPerTx, MaxUnclaimedPrekeys: config.MaxUnclaimedPrekeys,
		MaxSignedPrekeyLifetime: config.MaxSignedPrekeyLifetime, RequestBackfill: config.RequestBackfill, MaxContacts: config.MaxContacts,
		MaxBlocked: config.MaxBlocked, MaxMemberships: config.MaxMemberships, MaxModerationRecords: config.MaxModerationRecords,
		MaxClaimsPerPair: config.MaxClaimsPerPair, MaxSlowModeSeconds: config.MaxSlowModeSeconds,
	}
	if *cfg != want {
		t.Fatalf("Config = %+v, want %+v", *cfg, want)
	}
	if id, err := c.ChainID(ctx); err != nil || id != e.vm.ChainID() {
		t.Fatalf("ChainID = %s, %v", id, err)
	}

	// A genesis identity.
	got, err := c.Identity(ctx, e.alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SessionID != e.alice.SessionID || !bytes.Equal(got.KEMPublicKey, e.alice.KEMPublicKey) ||
		!bytes.Equal(got.DSAPublicKey, e.alice.DSAPublicKey) || got.Height != 0 {
		t.Fatalf("Identity = %+v", got)
	}
	pub, err := c.PublicIdentity(ctx, e.alice.SessionID)
	if err != nil || pub.SessionID != e.alice.SessionID || pub.KEMSecretKey != nil || pub.DSASecretKey != nil {
		t.Fatalf("PublicIdentity = %v, %v", pub, err)
	}
	if n, err := c.Nonce(ctx, e.alice.SessionID); err != nil || n != 0 {
		t.Fatalf("Nonce = %d, %v", n, err)
	}
	// Unknown transactions are not errors.
	ts, err := c.TxStatus(ctx, ids.GenerateTestID())
	if err != nil || ts.Status != TxUnknown {
		t.Fatalf("TxStatus(random) = %+v, %v", ts, err)
	}
}

// TestFlow walks every write and read method through the typed client:
// registration, a session with sealed messages, paging, the inbox, closing,
// and a channel's whole life.
func TestFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	alice, bob, carol := e.alice, e.bob, e.carol
	dave := identity(t, 3)

	// Register dave: pending, then accepted.
	r, err := c.Register(ctx, dave)
	if err != nil {
		t.Fatal(err)
	}
	if r.Type != "registerIdentity" || r.Author != dave.SessionID || r.Nonce != 0 || r.Session != ids.Empty {
		t.Fatalf("Register = %+v", r)
	}
	if st, err := c.TxStatus(ctx, r.TxID); err != nil || st.Status != TxPending {
		t.Fatalf("TxStatus after submit = %+v, %v", st, err)
	}
	if n, err := c.Nonce(ctx, dave.SessionID); err != nil || n != 1 {
		t.Fatalf("Nonce counts pending: %d, %v", n, err)
	}
	blk := e.accept()
	st, err := c.WaitAccepted(ctx, r.TxID)
	if err != nil || st.Status != TxAccepted || st.Height != blk.Height() || st.Index != 0 {
		t.Fatalf("WaitAccepted = %+v, %v (block %d)", st, err, blk.Height())
	}
	if got, err := c.Identity(ctx, dave.SessionID); err != nil || got.Height != blk.Height() {
		t.Fatalf("Identity(dave) = %+v, %v", got, err)
	}

	// A session of alice, bob and carol.
	r, err = c.CreateSessionWithMetadata(ctx, alice, []byte("topic"), bob.SessionID, carol.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	wantSession := tx.SessionIDFor(e.vm.ChainID(), mustSID(t, alice), r.Nonce)
	if r.Type != "createSession" || r.Session != wantSession {
		t.Fatalf("CreateSession = %+v, want session %s", r, wantSession)
	}
	e.accept()
	sess := r.Session
	s, err := c.Session(ctx, sess)
	if err != nil {
		t.Fatal(err)
	}
	if s.Session != sess || s.Creator != alice.SessionID || s.Status != SessionActive ||
		!slices.Equal(s.Participants, []string{alice.SessionID, bob.SessionID, carol.SessionID}) ||
		string(s.Metadata) != "topic" || s.ExpiresAt-s.CreatedAt != config.DefaultSessionTTL*1000 || s.LastSeq != 0 {
		t.Fatalf("Session = %+v", s)
	}

	// Messages: sealed by alice, opaque by bob, sealed by carol.
	if _, err := c.SendSealed(ctx, alice, sess, []byte("hello from alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Send(ctx, bob, sess, []byte("opaque")); err != nil {
		t.Fatal(err)
	}
	r3, err := c.SendSealed(ctx, carol, sess, []byte("hi all"))
	if err != nil {
		t.Fatal(err)
	}
	e.accept()
	page, err := c.Messages(ctx, sess, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 3 || page.Next != 3 || page.More {
		t.Fatalf("Messages = %d messages, next %d", len(page.Messages), page.Next)
	}
	for i, m := range page.Messages {
		if m.Seq != uint64(i+1) || m.Target != sess || m.Height == 0 || m.Timestamp == 0 {
			t.Fatalf("message %d = %+v", i, m)
		}
	}
	if page.Messages[2].TxID != r3.TxID || page.Messages[1].Author != bob.SessionID {
		t.Fatalf("messages out of order: %+v", page.Messages)
	}
	// Each participant opens alice's message, sender verified.
	for _, who := range []*crypto.Identity{alice, bob, carol} {
		pt, err := OpenMessage(who, &page.Messages[0])
		if err != nil || string(pt) != "hello from alice" {
			t.Fatalf("%s opens: %q, %v", who, pt, err)
		}
	}
	if _, err := OpenMessage(dave, &page.Messages[0]); !errors.Is(err, crypto.ErrNotRecipient) {
		t.Fatalf("dave opens: %v", err)
	}
	// A participant re-posting alice's envelope is caught.
	forged := page.Messages[0]
	forged.Author = bob.SessionID
	if _, err := OpenMessage(carol, &forged); !errors.Is(err, ErrSenderMismatch) {
		t.Fatalf("re-posted envelope: %v", err)
	}
	// Paging.
	p1, err := c.Messages(ctx, sess, 0, 2)
	if err != nil || len(p1.Messages) != 2 || p1.Next != 2 || !p1.More {
		t.Fatalf("page 1: %+v, %v", p1, err)
	}
	p2, err := c.Messages(ctx, sess, p1.Next, 2)
	if err != nil || len(p2.Messages) != 1 || p2.Next != 3 || p2.Messages[0].Seq != 3 || p2.More {
		t.Fatalf("page 2: %+v, %v", p2, err)
	}
	p3, err := c.Messages(ctx, sess, p2.Next, 2)
	if err != nil || len(p3.Messages) != 0 || p3.Next != 3 || p3.More {
		t.Fatalf("page 3: %+v, %v", p3, err)
	}

	// Bob's inbox: the messages of alice and carol, not his own.
	in, err := c.Inbox(ctx, bob.SessionID, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Messages) != 2 || in.Messages[0].Author != alice.SessionID || in.Messages[1].Author != carol.SessionID ||
		in.Next != in.Messages[1].Position {
		t.Fatalf("Inbox = %+v", in)
	}
	if pt, err := OpenMessage(bob, &in.Messages[1]); err != nil || string(pt) != "hi all" {
		t.Fatalf("bob opens carol's: %q, %v", pt, err)
	}
	in1, err := c.Inbox(ctx, bob.SessionID, 0, 1)
	if err != nil || len(in1.Messages) != 1 || !in1.More {
		t.Fatal(in1, err)
	}
	in2, err := c.Inbox(ctx, bob.SessionID, in1.Next, 0)
	if err != nil || len(in2.Messages) != 1 || in2.Messages[0].TxID != in.Messages[1].TxID || in2.More {
		t.Fatalf("inbox cursor: %+v, %v", in2, err)
	}

	// Close: status closed; later messages refused.
	if s, err := c.Session(ctx, sess); err != nil || s.LastSeq != 3 {
		t.Fatalf("LastSeq: %+v, %v", s, err)
	}
	// In a group only the creator closes; the others leave.
	_, err = c.CloseSession(ctx, bob, sess)
	mustCode(t, err, CodeForbidden)
	if _, err := c.CloseSession(ctx, alice, sess); err != nil {
		t.Fatal(err)
	}
	e.accept()
	s, err = c.Session(ctx, sess)
	if err != nil || s.Status != SessionClosed || s.ClosedBy != alice.SessionID || s.ClosedAt == 0 {
		t.Fatalf("closed session = %+v, %v", s, err)
	}
	_, err = c.Send(ctx, alice, sess, []byte("late"))
	mustCode(t, err, CodeSessionClosed)

	// A channel: create, join, post, read, members, leave.
	r, err = c.CreateChannel(ctx, alice, "general")
	if err != nil {
		t.Fatal(err)
	}
	if r.Channel != tx.ChannelIDFor(e.vm.ChainID(), mustSID(t, alice), r.Nonce) {
		t.Fatalf("channel ID %s", r.Channel)
	}
	e.accept()
	ch := r.Channel
	for _, who := range []*crypto.Identity{bob, carol, dave} {
		if _, err := c.JoinChannel(ctx, who, ch); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	if _, err := c.Post(ctx, bob, ch, []byte("post 1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Post(ctx, alice, ch, []byte("post 2")); err != nil {
		t.Fatal(err)
	}
	e.accept()
	posts, err := c.ChannelMessages(ctx, ch, 0, 10)
	if err != nil || len(posts.Messages) != 2 || string(posts.Messages[0].Ciphertext) != "post 1" ||
		posts.Messages[1].Author != alice.SessionID || posts.Messages[0].Target != ch {
		t.Fatalf("ChannelMessages = %+v, %v", posts, err)
	}
	info, err := c.Channel(ctx, ch, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	all := []string{alice.SessionID, bob.SessionID, carol.SessionID, dave.SessionID}
	slices.Sort(all)
	if info.Channel != ch || info.Name != "general" || info.Owner != alice.SessionID || info.MemberCount != 4 ||
		!slices.Equal(info.Members, all) {
		t.Fatalf("Channel = %+v", info)
	}
	// Members page by page.
	var paged []string
	after := ""
	for {
		p, err := c.Channel(ctx, ch, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		paged = append(paged, p.Members...)
		if len(p.Members) < 3 {
			break
		}
		after = p.Members[len(p.Members)-1]
	}
	if !slices.Equal(paged, all) {
		t.Fatalf("paged members %v, want %v", paged, all)
	}
	if ok, err := c.IsChannelMember(ctx, ch, carol.SessionID); err != nil || !ok {
		t.Fatalf("IsChannelMember(carol) = %v, %v", ok, err)
	}
	if _, err := c.LeaveChannel(ctx, carol, ch); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if ok, err := c.IsChannelMember(ctx, ch, carol.SessionID); err != nil || ok {
		t.Fatalf("IsChannelMember(carol) after leaving = %v, %v", ok, err)
	}
	_, err = c.Post(ctx, carol, ch, []byte("after leaving"))
	mustCode(t, err, CodeNotParticipant)

	stat, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vst, _ := e.vm.Status()
	if stat.Identities != 4 || stat.Sessions != 1 || stat.Channels != 1 || stat.MessagesStored != 5 ||
		stat.MempoolTxs != 0 || stat.Height != vst.Height || stat.Height == 0 || stat.LastAcceptedID != vst.LastAcceptedID {
		t.Fatalf("Status = %+v", stat)
	}
}

func mustSID(t testing.TB, id *crypto.Identity) crypto.SessionID {
	t.Helper()
	s, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRawTxMethods submits pre-signed bytes through every typed write
// method and issueTx, as a client that signs elsewhere does.
func TestRawTxMethods(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client
	eve := identity(t, 4)

	r, err := c.RegisterIdentityTx(ctx, e.signed(eve, &tx.RegisterIdentity{KEMPublicKey: eve.KEMPublicKey, DSAPublicKey: eve.DSAPublicKey}))
	if err != nil || r.Type != "registerIdentity" {
		t.Fatal(r, err)
	}
	e.accept()
	r, err = c.CreateSessionTx(ctx, e.signed(eve, &tx.CreateSession{Participants: []crypto.SessionID{mustSID(t, e.alice)}}))
	if err != nil || r.Session == ids.Empty {
		t.Fatal(r, err)
	}
	sess := r.Session
	// Dependent transactions queue without waiting for a block.
	n, _ := c.Nonce(ctx, eve.SessionID)
	msg, _ := tx.Sign(eve, e.vm.ChainID(), n, &tx.SendMessage{Session: sess, Ciphertext: []byte("x")})
	if r, err = c.SendMessageTx(ctx, msg.Bytes()); err != nil || r.TxID != msg.ID() {
		t.Fatal(r, err)
	}
	e.accept()
	if r, err = c.CloseSessionTx(ctx, e.signed(eve, &tx.CloseSession{Session: sess})); err != nil || r.Type != "closeSession" {
		t.Fatal(r, err)
	}
	if r, err = c.CreateChannelTx(ctx, e.signed(eve, &tx.CreateChannel{Name: "raw"})); err != nil || r.Channel == ids.Empty {
		t.Fatal(r, err)
	}
	ch := r.Channel
	e.accept()
	if r, err = c.JoinChannelTx(ctx, e.signed(e.bob, &tx.JoinChannel{Channel: ch})); err != nil || r.Type != "joinChannel" {
		t.Fatal(r, err)
	}
	e.accept()
	if r, err = c.PostChannelTx(ctx, e.signed(e.bob, &tx.PostChannel{Channel: ch, Ciphertext: []byte("p")})); err != nil {
		t.Fatal(r, err)
	}
	if r, err = c.LeaveChannelTx(ctx, e.signed(e.bob, &tx.LeaveChannel{Channel: ch})); err != nil || r.Type != "leaveChannel" {
		t.Fatal(r, err)
	}
	// issueTx takes any type.
	if r, err = c.IssueTx(ctx, e.signed(e.carol, &tx.CreateChannel{Name: "any"})); err != nil || r.Type != "createChannel" || r.Channel == ids.Empty {
		t.Fatal(r, err)
	}
	e.accept()
	if s, err := c.Session(ctx, sess); err != nil || s.Status != SessionClosed || s.LastSeq != 1 {
		t.Fatal(s, err)
	}
	if p, err := c.ChannelMessages(ctx, ch, 0, 0); err != nil || len(p.Messages) != 1 {
		t.Fatal(p, err)
	}
}

// TestWaitAccepted runs the standalone block loop (vm.Run) and waits for
// transactions through the client; and checks the bounded failure modes.
func TestWaitAccepted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client

	// Nothing builds blocks yet: a pending transaction times out.
	r, err := c.Register(ctx, identity(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := c.WaitAccepted(short, r.TxID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitAccepted on a pending tx: %v", err)
	}
	// Unknown transactions give up after a few polls.
	if _, err := c.WaitAccepted(ctx, ids.GenerateTestID()); !errors.Is(err, ErrTxUnknown) {
		t.Fatalf("WaitAccepted(unknown): %v", err)
	}

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.vm.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	if st, err := c.WaitAccepted(ctx, r.TxID); err != nil || st.Status != TxAccepted {
		t.Fatalf("WaitAccepted = %+v, %v", st, err)
	}
	sess := e.session2(t)
	// Concurrent sends of one author through one client: the client
	// serializes them, so every nonce is right.
	const n = 8
	var wg sync.WaitGroup
	txIDs := make([]ids.ID, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Send(ctx, e.alice, sess, fmt.Appendf(nil, "m%d", i))
			if err == nil {
				txIDs[i] = r.TxID
				_, err = c.WaitAccepted(ctx, r.TxID)
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	page, err := c.Messages(ctx, sess, 0, 0)
	if err != nil || len(page.Messages) != n {
		t.Fatalf("messages: %d, %v", len(page.Messages), err)
	}
}

// session2 creates a session of alice and bob while vm.Run builds blocks.
func (e *env) session2(t *testing.T) ids.ID {
	r, err := e.client.CreateSession(context.Background(), e.alice, e.bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.WaitAccepted(context.Background(), r.TxID); err != nil {
		t.Fatal(err)
	}
	return r.Session
}

// TestNonceResync: another client (or tool) uses the same key; the
// helper's cached nonce is stale, it refetches and retries once.
func TestNonceResync(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	sess := e.session(e.alice, e.bob)
	if _, err := e.client.Send(ctx, e.alice, sess, []byte("1")); err != nil {
		t.Fatal(err)
	}
	other := NewClient(e.srv.URL)
	if _, err := other.Send(ctx, e.alice, sess, []byte("2")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Send(ctx, e.alice, sess, []byte("3")); err != nil {
		t.Fatalf("stale nonce not resynchronized: %v", err)
	}
	e.accept()
	page, err := e.client.Messages(ctx, sess, 0, 0)
	if err != nil || len(page.Messages) != 3 {
		t.Fatal(page, err)
	}
}

// TestPageBounds: the one-extra fetch tells whether more follow, and a page
// is cut at maxPageBytes (never below one message).
func TestPageBounds(t *testing.T) {
	msgs := func(n, size int) []*state.Message {
		out := make([]*state.Message, n)
		for i := range out {
			out[i] = &state.Message{Seq: uint64(i + 1), Ciphertext: make([]byte, size)}
		}
		return out
	}
	seq := func(m *state.Message) uint64 { return m.Seq }
	for _, tc := range []struct {
		name      string
		stored    []*state.Message
		limit     int
		wantLen   int
		wantMore  bool
		wantAsked int
	}{
		{"empty", nil, 10, 0, false, 11},
		{"short", msgs(3, 10), 10, 3, false, 11},
		{"exact", msgs(10, 10), 10, 10, false, 11},
		{"more", msgs(11, 10), 10, 10, true, 11},
		{"max page full", msgs(MaxPageSize, 1), MaxPageSize, MaxPageSize, true, MaxPageSize},
		{"bytes", msgs(300, config.MaxCiphertextSize), 300, maxPageBytes / config.MaxCiphertextSize, true, 301},
		{"one huge", msgs(1, maxPageBytes+1), 5, 1, false, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asked := 0
			r, err := page(func(n int) ([]*state.Message, error) {
				asked = n
				return tc.stored[:min(n, len(tc.stored))], nil
			}, tc.limit, 0, seq)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Messages) != tc.wantLen || r.More != tc.wantMore || asked != tc.wantAsked {
				t.Fatalf("len %d more %v asked %d, want %d %v %d", len(r.Messages), r.More, asked, tc.wantLen, tc.wantMore, tc.wantAsked)
			}
			if tc.wantLen > 0 && r.Next != uint64(tc.wantLen) {
				t.Fatalf("next %d", r.Next)
			}
		})
	}
	if _, err := page(func(int) ([]*state.Message, error) { return nil, errors.New("boom") }, 1, 0, seq); err == nil {
		t.Fatal("error lost")
	}
}

// TestWaitAcceptedFates uses a scripted node: dropped transactions,
// transient transport failures, a node that stays down, a busy node.
func TestWaitAcceptedFates(t *testing.T) {
	ctx := context.Background()
	script := func(answers ...string) *Client {
		var mu sync.Mutex
		i := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			a := answers[min(i, len(answers)-1)]
			i++
			mu.Unlock()
			if a == "down" {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			var req struct{ ID json.RawMessage }
			_ = json.NewDecoder(r.Body).Decode(&req)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,%s}`, req.ID, a)
		}))
		t.Cleanup(srv.Close)
		return NewClient(srv.URL, WithPollInterval(time.Millisecond))
	}
	id := ids.GenerateTestID()
	accepted := `"result":{"txID":"` + id.String() + `","status":"accepted","height":7,"index":2}`
	pending := `"result":{"txID":"` + id.String() + `","status":"pending","height":0,"index":0}`

	st, err := script(pending, "down", "down", pending, accepted).WaitAccepted(ctx, id)
	if err != nil || st.Height != 7 || st.Index != 2 {
		t.Fatalf("transient failures: %+v, %v", st, err)
	}
	_, err = script(pending, `"result":{"txID":"`+id.String()+`","status":"dropped","reason":"wrong nonce"}`).WaitAccepted(ctx, id)
	if !errors.Is(err, ErrTxDropped) || !strings.Contains(err.Error(), "wrong nonce") {
		t.Fatalf("dropped: %v", err)
	}
	_, err = script("down").WaitAccepted(ctx, id)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("node down: %v", err)
	}
	busy := `"error":{"code":-32014,"message":"vm: shut down"}`
	if st, err := script(busy, busy, accepted).WaitAccepted(ctx, id); err != nil || st.Status != TxAccepted {
		t.Fatalf("busy node: %+v, %v", st, err)
	}
	_, err = script(`"error":{"code":-32602,"message":"invalid params"}`).WaitAccepted(ctx, id)
	mustCode(t, err, CodeInvalidParams)
}
