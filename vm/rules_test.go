package vm

import (
	"bytes"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// inboxSeqs returns the sequence numbers of recipient's inbox.
func (e *env) inboxSeqs(recipient *crypto.Identity) []uint64 {
	e.t.Helper()
	in, err := e.vm.Inbox(sid(e.t, recipient), 0, 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []uint64
	for _, m := range in {
		out = append(out, m.Seq)
	}
	return out
}

func (e *env) participantState(s ids.ID, id *crypto.Identity) state.ParticipantState {
	e.t.Helper()
	info, err := e.vm.Session(s)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State(info.Index(sid(e.t, id)))
}

func (e *env) requests(id *crypto.Identity) []state.Request {
	e.t.Helper()
	r, err := e.vm.Requests(sid(e.t, id), 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (e *env) listed(id *crypto.Identity) []ids.ID {
	e.t.Helper()
	ps, err := e.vm.Sessions(sid(e.t, id), 0, 100)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []ids.ID
	for _, p := range ps {
		out = append(out, p.Session)
	}
	return out
}

func seqs(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestMessageRequests: a stranger's session is a request until the
// recipient accepts; nothing of it reaches the inbox before; accepting
// brings the first RequestBackfill messages; declining stops delivery.
func TestMessageRequests(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createRequest(alice, bob)
	if st := e.participantState(s, bob); st != state.ParticipantPending {
		t.Fatalf("bob is %s", st)
	}
	if r := e.requests(bob); len(r) != 1 || r[0].Session != s || r[0].Creator != sid(t, alice) {
		t.Fatalf("bob's requests %+v", r)
	}
	if l := e.listed(bob); len(l) != 0 {
		t.Fatalf("a request is listed as bob's session: %v", l)
	}
	if l := e.listed(alice); len(l) != 1 || l[0] != s {
		t.Fatalf("alice's sessions %v", l)
	}
	for i := 0; i < config.RequestBackfill; i++ {
		e.issue(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
	}
	e.accept()
	if got := e.inboxSeqs(bob); len(got) != 0 {
		t.Fatalf("a request reached bob's inbox: %v", got)
	}
	// A request takes at most 8 messages.
	_, err := e.vm.IssueTx(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("9")}).Bytes())
	mustIs(t, err, tx.ErrRequestFull)

	// Accepting: the 8 messages enter the inbox, later ones as sent.
	e.do(bob, &tx.AcceptSession{Session: s})
	if got := e.inboxSeqs(bob); !equalSeqs(got, seqs(1, 8)) {
		t.Fatalf("bob's inbox after accepting %v, want 1..8", got)
	}
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("nine")})
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("ten")})
	if r := e.requests(bob); len(r) != 0 {
		t.Fatalf("request still listed: %+v", r)
	}
	if l := e.listed(bob); len(l) != 1 || l[0] != s {
		t.Fatalf("bob's sessions %v", l)
	}
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("eleven")})
	if got := e.inboxSeqs(bob); !equalSeqs(got, seqs(1, 11)) {
		t.Fatalf("bob's inbox %v", got)
	}

	// Declining (leaving) stops delivery and unlists the session; the
	// entries already there stay. With nobody but alice accepted, the
	// session takes no more messages (it has 8 or more).
	e.do(bob, &tx.AcceptSession{Session: s, Decision: tx.DecisionDecline})
	_, err = e.vm.IssueTx(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("twelve")}).Bytes())
	mustIs(t, err, tx.ErrRequestFull)
	if got := e.inboxSeqs(bob); len(got) != 11 {
		t.Fatalf("bob's inbox after leaving %v", got)
	}
	if l := e.listed(bob); len(l) != 0 {
		t.Fatalf("bob still lists %v", l)
	}
	// Coming back: no second backfill, delivery resumes.
	e.do(bob, &tx.AcceptSession{Session: s})
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("thirteen")})
	if got := e.inboxSeqs(bob); !equalSeqs(got, seqs(1, 12)) {
		t.Fatalf("bob's inbox after returning %v", got)
	}
}

// TestContactsSkipRequests: a contact's session is accepted at once;
// replying accepts a request (with its backfill); a newer request of the
// same creator replaces the older entry; blocking removes it.
func TestContactsSkipRequests(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, carol, dave := identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3)
	e.do(bob, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactTrusted})
	s := e.createRequest(alice, bob, carol)
	if e.participantState(s, bob) != state.ParticipantAccepted || e.participantState(s, carol) != state.ParticipantPending {
		t.Fatal("bob (alice is his contact) should be accepted, carol pending")
	}
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("hi")})
	if got := e.inboxSeqs(bob); !equalSeqs(got, []uint64{1}) {
		t.Fatalf("bob's inbox %v", got)
	}
	if got := e.inboxSeqs(carol); len(got) != 0 {
		t.Fatalf("carol's inbox %v", got)
	}
	// Carol replies: that accepts, and alice's message reaches her inbox.
	e.do(carol, &tx.SendMessage{Session: s, Ciphertext: []byte("hello")})
	if e.participantState(s, carol) != state.ParticipantAccepted {
		t.Fatal("replying did not accept")
	}
	if got := e.inboxSeqs(carol); !equalSeqs(got, []uint64{1}) {
		t.Fatalf("carol's inbox %v", got)
	}
	if got := e.inboxSeqs(bob); !equalSeqs(got, []uint64{1, 2}) {
		t.Fatalf("bob's inbox %v", got)
	}

	// One entry per creator: the newer request replaces the older.
	s1 := e.createRequest(alice, dave)
	s2 := e.createRequest(alice, dave)
	if r := e.requests(dave); len(r) != 1 || r[0].Session != s2 {
		t.Fatalf("dave's requests %+v, want one for %s", r, s2)
	}
	// The older stays acceptable by ID.
	e.do(dave, &tx.AcceptSession{Session: s1})
	if r := e.requests(dave); len(r) != 1 || r[0].Session != s2 {
		t.Fatal("accepting the older request removed the newer entry")
	}
	// Blocking removes the pending request.
	e.do(dave, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactBlocked})
	if r := e.requests(dave); len(r) != 0 {
		t.Fatalf("dave's requests after blocking %+v", r)
	}
	if st, _ := e.vm.Contact(sid(t, dave), sid(t, alice)); st != uint8(tx.ContactBlocked) {
		t.Fatalf("status %d", st)
	}
	// The account counts contacts and blocks; removing one frees it.
	e.do(dave, &tx.SetContact{Peer: sid(t, alice), Status: tx.ContactNone})
	e.do(bob, &tx.SetContact{Peer: sid(t, carol), Status: tx.ContactTrusted})
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, dave)); a.Contacts != 0 {
		t.Fatalf("dave counts %d contacts", a.Contacts)
	}
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, bob)); a.Contacts != 2 {
		t.Fatalf("bob counts %d contacts", a.Contacts)
	}
}

// TestRequestRetention: an unanswered request entry goes at retention.
func TestRequestRetention(t *testing.T) {
	e := newEnv(t, map[string]any{"retentionDays": 1})
	alice, bob := identity(t, 0), identity(t, 1)
	e.createRequest(alice, bob)
	e.clock.Advance(25 * time.Hour)
	e.do(alice, &tx.CreateChannel{Name: "tick"})
	if r := e.requests(bob); len(r) != 0 {
		t.Fatalf("request survived retention: %+v", r)
	}
}

// TestRateLimitsRefill: a bucket refuses past its burst and refills with
// block time, never beyond its burst.
func TestRateLimitsRefill(t *testing.T) {
	e := newEnv(t, map[string]any{"rateLimits": map[string]any{"messages": map[string]any{"burst": 2, "refillSeconds": 10}}})
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	send := func() error {
		_, err := e.vm.IssueTx(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("m")}).Bytes())
		if err == nil {
			e.accept()
		}
		return err
	}
	for i := 0; i < 2; i++ {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	mustIs(t, send(), tx.ErrRateLimited)
	// The first token (taken one block, 1 s, before the second) is back
	// 10 s after it: 9 s from now.
	e.clock.Advance(8 * time.Second)
	mustIs(t, send(), tx.ErrRateLimited)
	e.clock.Advance(time.Second)
	if err := send(); err != nil {
		t.Fatal(err)
	}
	mustIs(t, send(), tx.ErrRateLimited)
	e.clock.Advance(time.Hour) // full again, but only 2
	for i := 0; i < 2; i++ {
		if err := send(); err != nil {
			t.Fatal(err)
		}
	}
	mustIs(t, send(), tx.ErrRateLimited)
	// Another identity has its own bucket.
	if _, err := e.vm.IssueTx(e.sign(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("b")}).Bytes()); err != nil {
		t.Fatal(err)
	}
}

// TestChannelRoles: invitations, bans, removal, moderators, policy.
func TestChannelRoles(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, carol, dave := identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3)
	c := e.channelOf(carol, tx.PolicyInviteOnly)
	standing := func(id *crypto.Identity) Standing {
		s, err := e.vm.ChannelStanding(c, sid(t, id))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, alice), sid(t, bob)}})
	if !standing(alice).Invited {
		t.Fatal("no invite")
	}
	e.do(alice, &tx.JoinChannel{Channel: c})
	if s := standing(alice); s.Invited || s.Role != state.RoleMember {
		t.Fatalf("after joining %+v", s)
	}
	// The owner appoints alice; alice bans bob (invited, not joined) and
	// invites dave.
	e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: []crypto.SessionID{sid(t, alice)}})
	e.do(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, bob)}})
	if s := standing(bob); !s.Banned || s.Invited {
		t.Fatalf("bob %+v", s)
	}
	e.do(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, dave)}})
	e.do(dave, &tx.JoinChannel{Channel: c})
	ch, _ := e.vm.Channel(c)
	if ch.Members != 3 || ch.Invites != 0 || ch.Bans != 1 || ch.JoinPolicy != uint8(tx.PolicyInviteOnly) {
		t.Fatalf("channel %+v", ch)
	}
	// Removal: dave goes; in an open channel he may come back, a banned
	// identity may not until unbanned.
	e.do(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionRemove, Members: []crypto.SessionID{sid(t, dave)}})
	e.do(carol, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyOpen})
	e.do(dave, &tx.JoinChannel{Channel: c})
	_, err := e.vm.IssueTx(e.sign(bob, &tx.JoinChannel{Channel: c}).Bytes())
	mustIs(t, err, tx.ErrBanned)
	e.do(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionUnban, Members: []crypto.SessionID{sid(t, bob)}})
	e.do(bob, &tx.JoinChannel{Channel: c})
	// Revoking: alice is a member again, and can no longer moderate.
	e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionRevokeModerator, Members: []crypto.SessionID{sid(t, alice)}})
	_, err = e.vm.IssueTx(e.sign(alice, &tx.ModerateChannel{Channel: c, Action: tx.ActionRemove, Members: []crypto.SessionID{sid(t, bob)}}).Bytes())
	mustIs(t, err, tx.ErrNotModerator)
	members, _ := e.vm.ChannelMembers(c, nil, 10)
	roles := map[crypto.SessionID]uint8{} // lookups only
	for _, m := range members {
		roles[m.ID] = m.Role
	}
	if len(members) != 4 || roles[sid(t, carol)] != state.RoleOwner || roles[sid(t, alice)] != state.RoleMember {
		t.Fatalf("members %+v", members)
	}
	// The owner bans a moderator; all members checked before any write.
	e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: []crypto.SessionID{sid(t, dave)}})
	_, err = e.vm.IssueTx(e.sign(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, dave), sid(t, carol)}}).Bytes())
	mustIs(t, err, tx.ErrTargetIsOwner)
	if standing(dave).Banned {
		t.Fatal("a refused transaction wrote")
	}
	e.do(carol, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, dave)}})
	if s := standing(dave); s.Role != 0 || !s.Banned {
		t.Fatalf("dave %+v", s)
	}
}

// TestPostsDeletionAndEviction: authors delete their posts, moderators any
// post; a full channel evicts its oldest post instead of refusing.
func TestPostsDeletionAndEviction(t *testing.T) {
	e := newEnv(t, map[string]any{"maxMessages": 3})
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	c := e.channelOf(carol, tx.PolicyOpen)
	e.do(alice, &tx.JoinChannel{Channel: c})
	e.do(bob, &tx.JoinChannel{Channel: c})
	post := func(id *crypto.Identity, text string) {
		e.do(id, &tx.PostChannel{Channel: c, Ciphertext: []byte(text)})
	}
	posts := func() []uint64 {
		ms, err := e.vm.Messages(c, 0, 100)
		if err != nil {
			t.Fatal(err)
		}
		var out []uint64
		for _, m := range ms {
			out = append(out, m.Seq)
		}
		return out
	}
	post(alice, "a1")
	post(bob, "b2")
	post(alice, "a3")
	post(bob, "b4") // full: evicts 1
	if got := posts(); !equalSeqs(got, []uint64{2, 3, 4}) {
		t.Fatalf("posts %v", got)
	}
	e.do(alice, &tx.DeletePosts{Channel: c, Seqs: []uint64{3, 1}}) // 1 is gone already: skipped
	if got := posts(); !equalSeqs(got, []uint64{2, 4}) {
		t.Fatalf("posts after deleting %v", got)
	}
	e.do(carol, &tx.DeletePosts{Channel: c, Seqs: []uint64{4}}) // the owner deletes bob's
	post(bob, "b5")
	post(alice, "a6")
	post(alice, "a7") // full again: evicts 2
	if got := posts(); !equalSeqs(got, []uint64{5, 6, 7}) {
		t.Fatalf("posts %v", got)
	}
	st, _ := e.vm.Status()
	if st.Counts.MessagesStored != 3 || st.Counts.MessagesDeleted != 4 || st.Counts.MessagesTotal != 7 {
		t.Fatalf("counts %+v", st.Counts)
	}
	c2, _ := state.New(e.vm.db).GetCounter(c)
	if c2.Stored != 3 || c2.Last != 7 || c2.First != 3 {
		t.Fatalf("counter %+v", c2)
	}
}

// TestSessionPlacesFreedByRetention: a full session refuses, and takes
// messages again once retention removed old ones.
func TestSessionPlacesFreedByRetention(t *testing.T) {
	e := newEnv(t, map[string]any{"maxMessages": 2, "retentionDays": 1, "sessionTTL": 10 * 86400})
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("1")})
	e.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("2")})
	_, err := e.vm.IssueTx(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("3")}).Bytes())
	mustIs(t, err, tx.ErrMaxMessages)
	e.clock.Advance(25 * time.Hour)
	e.do(alice, &tx.CreateChannel{Name: "tick"}) // a block prunes the two
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("3")})
	if info, _ := e.vm.Session(s); info.Stored != 1 || info.LastSeq != 3 {
		t.Fatalf("session %+v", info)
	}
}

// TestClaims (review H6, H7, M5, M6, L13): publication; the bundle's
// proof transactions and its random one-time prekey; claims by a contact,
// by a stranger and by a non-creator in a group, each naming the signed
// prekey; the previous signed prekey stays claimable until it expires;
// retiring; the claim log.
func TestClaims(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	signed := e.do(bob, e.signedPrekey(1))
	ot := e.do(bob, oneTimes(1, 30))
	p, err := e.vm.Prekeys(sid(t, bob), nil, nil)
	if err != nil || !p.HasSigned || p.SignedID != 1 || p.SignedTx != signed.ID() || p.Unclaimed != 30 ||
		!p.HasOneTime || p.OneTimeID < 1 || p.OneTimeID > 30 || p.OneTimeTx != ot.ID() || p.LastOneTimeID != 30 {
		t.Fatalf("prekeys %+v, %v", p, err)
	}
	// The one-time prekey served is chosen at random, not the lowest.
	seen := map[uint32]bool{}
	for i := 0; i < 50; i++ {
		seen[e.prekeys(bob, nil).OneTimeID] = true
	}
	if len(seen) < 5 {
		t.Fatalf("50 bundles served %d distinct one-time prekeys", len(seen))
	}
	// The proof is the transaction's bytes, read by its byte range.
	raw, loc, err := e.vm.Tx(p.SignedTx)
	if err != nil || !bytes.Equal(raw, signed.Bytes()) || loc.Height == 0 {
		t.Fatalf("Tx: %d bytes, %+v, %v", len(raw), loc, err)
	}

	// A stranger's claim (above the reserve of 20) and a contact's.
	e.do(bob, &tx.SetContact{Peer: sid(t, carol), Status: tx.ContactTrusted})
	b := sid(t, bob)
	as := e.do(alice, &tx.CreateSession{Participants: []crypto.SessionID{b}, Claims: []tx.Claim{cl(b, 1, 1)}})
	cs := e.do(carol, &tx.CreateSession{Participants: []crypto.SessionID{b, sid(t, alice)}, Claims: []tx.Claim{cl(b, 1, 2)}})
	p = e.prekeys(bob, nil)
	if p.Unclaimed != 28 {
		t.Fatalf("after two claims %+v", p)
	}
	s := tx.SessionIDFor(e.vm.ChainID(), cs.Author, cs.Nonce)
	info, _ := e.vm.Session(s)
	if info.ClaimCount(0, 1) != 1 || info.ClaimCount(0, 2) != 0 || info.TxID != cs.ID() {
		t.Fatalf("session claims %v", info.Claims)
	}
	// In the group, alice (not the creator, a stranger to bob, who
	// accepted) starts her pair with bob.
	hs := e.do(alice, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(b, 1, 10)}, Ciphertext: []byte("hs")})
	info, _ = e.vm.Session(s)
	if info.ClaimCount(2, 1) != 1 || info.State(2) != state.ParticipantAccepted {
		t.Fatalf("alice's claim: %v, state %s", info.Claims, info.State(2))
	}
	if _, ok, _ := state.New(e.vm.db).OneTime(b, 10); ok {
		t.Fatal("prekey 10 still unclaimed")
	}
	// The claim log names every claim, in chain order, with the claiming
	// and the publishing transaction.
	log, err := e.vm.Claims(b, 0, 10)
	if err != nil || len(log) != 3 {
		t.Fatalf("claim log %+v, %v", log, err)
	}
	if log[0].Claimer != sid(t, alice) || log[0].Tx != as.ID() || log[0].OneTimePrekeyID != 1 || log[0].OneTimeTx != ot.ID() || log[0].SignedPrekeyID != 1 ||
		log[1].Claimer != sid(t, carol) || log[1].Session != s || log[2].Tx != hs.ID() || log[2].OneTimePrekeyID != 10 || log[2].Time != e.vm.chain.tip.Load().Block.Timestamp {
		t.Fatalf("claim log %+v", log)
	}
	if page, _ := e.vm.Claims(b, log[1].Position, 10); len(page) != 1 || page[0].Position != log[2].Position {
		t.Fatalf("claim log after a cursor %+v", page)
	}
	// A newer signed prekey replaces the current one; the previous one is
	// still claimable until it expires (a client may have fetched it).
	e.do(bob, e.signedPrekey(2))
	if p = e.prekeys(bob, nil); p.SignedID != 2 || p.SignedTx == signed.ID() || !p.HasPrevious || p.PreviousID != 1 {
		t.Fatalf("signed prekey %+v", p)
	}
	e.do(alice, &tx.SendMessage{Session: s, Claims: []tx.Claim{cl(b, 1, 11)}, Ciphertext: []byte("hs again")})
	if n := info.ClaimCount(2, 1); n != 1 {
		t.Fatal("info is a copy")
	}
	if info, _ = e.vm.Session(s); info.ClaimCount(2, 1) != 2 {
		t.Fatalf("alice's second claim of bob counted %d", info.ClaimCount(2, 1))
	}
	// Retiring: every unclaimed one-time prekey through 20 goes, and a
	// new batch comes in the same transaction.
	e.do(bob, &tx.PublishPrekeys{RetireThrough: 20, OneTime: oneTimes(31, 2).OneTime})
	p = e.prekeys(bob, nil)
	left, _ := state.New(e.vm.db).OneTimes(b, 1<<31)
	if p.Unclaimed != uint32(len(left)) || len(left) != 12 || left[0].ID != 21 || p.LastOneTimeID != 32 {
		t.Fatalf("after retiring: %d unclaimed, %+v", p.Unclaimed, left)
	}
}

// TestRegistrationsPerBlock: the builder puts at most maxPerBlock
// registrations in a block, and a peer's block with more is refused before
// any signature or work is checked.
func TestRegistrationsPerBlock(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": map[string]any{"memoryKiB": 8, "prefilterBits": 0, "workBits": 0, "maxPerBlock": 2}})
	var regs []*tx.Tx
	for i := 4; i < 8; i++ {
		id := identity(t, i)
		regs = append(regs, e.sign(id, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}))
	}
	last, _ := e.vm.LastAccepted(ctx)
	parent, _ := e.vm.GetBlock(ctx, last)
	e.clock.Advance(time.Second)
	blk, err := e.blockFor(last, parent.Height()+1, e.clock.Now().UnixMilli(), regs[:3])
	if err != nil {
		t.Fatal(err)
	}
	pb, err := e.vm.ParseBlock(ctx, blk.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	before := e.vm.verifier.verified.Load()
	mustIs(t, pb.Verify(ctx), ErrTooManyRegistrations)
	if e.vm.verifier.verified.Load() != before {
		t.Fatal("signatures checked in a block refused for its registrations")
	}
	for _, r := range regs {
		e.issue(r)
	}
	for _, want := range []int{2, 2} {
		if b := e.accept(); len(b.Txs) != want {
			t.Fatalf("block of %d registrations, want %d", len(b.Txs), want)
		}
	}
	if st, _ := e.vm.Status(); st.Counts.Identities != 8 {
		t.Fatalf("%d identities", st.Counts.Identities)
	}
}
