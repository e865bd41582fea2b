package vm

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// The griefing scenarios of issue 9 §2, of the chain review (docs/chain.md
// section 17) and of prekey draining (docs/chain.md section 12). In each,
// an attacker spends what the test counts in a budget (identities
// registered, proof-of-work evaluations, transactions accepted and
// refused), and an honest user's action must succeed.
//
// The chains use a registration work small enough for a test but not
// zero, so the evaluations are real and counted; budget.atDefaults says
// what the same registrations cost at the default parameters.

// griefWork is the test chains' registration work: 2^4 pre-filter and 2^2
// Argon2id evaluations per identity on average.
var griefWork = map[string]any{"memoryKiB": 8, "iterations": 1, "prefilterBits": 4, "workBits": 2, "maxPerBlock": 64}

// budget counts what an attacker spent.
type budget struct {
	identities      int // registered
	prefilterEvals  uint64
	argon2Evals     uint64
	txsAccepted     int
	txsRefused      int
	refusedWithLast error
}

// atDefaults is the expected cost of the registrations at the default
// parameters, in core-seconds (docs/chain.md section 3: about 1.0 s each
// on the development machine).
func (b *budget) atDefaults() float64 { return float64(b.identities) * 1.0 }

func (b *budget) log(t *testing.T, what string) {
	t.Logf("%s: attacker spent %d identities (%d pre-filter and %d Argon2id evaluations here; ~%.0f core-seconds at the default work), %d transactions accepted, %d refused (last: %v)",
		what, b.identities, b.prefilterEvals, b.argon2Evals, b.atDefaults(), b.txsAccepted, b.txsRefused, b.refusedWithLast)
}

// try admits a transaction of the attacker and counts it.
func (b *budget) try(e *env, id *crypto.Identity, p tx.Payload) error {
	_, err := e.vm.IssueTx(e.sign(id, p).Bytes())
	if err != nil {
		b.txsRefused++
		b.refusedWithLast = err
		return err
	}
	b.txsAccepted++
	return nil
}

// sybils registers n new identities for the attacker (solving the chain's
// work on the last accepted block, counted) in as few blocks as the
// per-block bound allows, admitting at most the node's registration pool
// at a time, on every core.
func (b *budget) sybils(t *testing.T, e *env, tag byte, n int) []*crypto.Identity {
	t.Helper()
	out := make([]*crypto.Identity, n)
	for done := 0; done < n; {
		chunk := min(n-done, config.DefaultMaxPendingRegistrations)
		txs := make([]*tx.Tx, chunk)
		h, bid := e.anchor()
		p := e.vm.Config().Registration
		var mu sync.Mutex
		parallelFor(chunk, func(k int) {
			i := done + k
			var seed [32]byte
			seed[0], seed[1], seed[2], seed[31] = byte(i), byte(i>>8), 0x5b, tag
			id, err := crypto.IdentityFromSeed(seed)
			if err != nil {
				panic(err)
			}
			author, _ := crypto.ParseSessionID(id.SessionID)
			work, st, err := tx.SolveWork(context.Background(), e.vm.ChainID(), tx.WorkSeed(e.vm.ChainID(), author, h, bid), p, 0, 0, 1)
			if err != nil {
				panic(err)
			}
			signed, err := tx.Sign(id, e.vm.ChainID(), 0, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, AnchorHeight: h, Work: work})
			if err != nil {
				panic(err)
			}
			mu.Lock()
			out[i], txs[k] = id, signed
			b.prefilterEvals += st.Prefilter
			b.argon2Evals += st.Argon2
			mu.Unlock()
		})
		e.issueAll(txs)
		b.txsAccepted += len(txs)
		for registered := 0; registered < chunk; {
			registered += len(e.accept().Txs)
		}
		done += chunk
	}
	b.identities += n
	return out
}

// issueAll admits transactions of distinct authors on every core.
func (e *env) issueAll(txs []*tx.Tx) {
	e.t.Helper()
	errs := make([]error, len(txs))
	parallelFor(len(txs), func(i int) { _, errs[i] = e.vm.IssueTx(txs[i].Bytes()) })
	for i, err := range errs {
		if err != nil {
			e.t.Fatalf("IssueTx %d (%s): %v", i, txs[i].Type(), err)
		}
	}
}

// parallelFor runs f(0..n-1) on every core.
func parallelFor(n int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// TestGriefChannelCreation: the chain-wide channel count is gone; one
// identity creates a bounded number of channels, and another user's
// CreateChannel always succeeds.
func TestGriefChannelCreation(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork, "maxChannels": 15})
	honest := identity(t, 0)
	var b budget
	attacker := b.sybils(t, e, 1, 1)[0]
	// As fast as it can: the channels bucket's burst, then refusals.
	for b.try(e, attacker, &tx.CreateChannel{Name: "spam"}) == nil {
	}
	mustIs(t, b.refusedWithLast, tx.ErrRateLimited)
	e.accept()
	if b.txsAccepted != 1+10 { // the registration, the burst of 10
		t.Fatalf("attacker created %d channels at once, want the burst of 10", b.txsAccepted-1)
	}
	// Over a day: at most maxChannels in all.
	for h := 0; h < 24; h++ {
		e.clock.Advance(time.Hour)
		for b.try(e, attacker, &tx.CreateChannel{Name: "spam"}) == nil {
		}
		e.acceptAny()
	}
	mustIs(t, b.refusedWithLast, tx.ErrMaxChannels)
	if n := b.txsAccepted - 1; n != 15 {
		t.Fatalf("attacker owns %d channels, want maxChannels (15)", n)
	}
	b.log(t, "channel creation")
	// The honest user's action.
	c := e.do(honest, &tx.CreateChannel{Name: "honest"})
	if _, err := e.vm.Channel(tx.ChannelIDFor(e.vm.ChainID(), c.Author, c.Nonce)); err != nil {
		t.Fatalf("honest channel: %v", err)
	}
	if st, _ := e.vm.Status(); st.Counts.Channels != 16 {
		t.Fatalf("%d channels", st.Counts.Channels)
	}
}

// TestGriefPostFlood: an attacker in an open channel posts as fast as its
// bucket allows, past the channel's capacity; an honest member's post is
// accepted and stays; a moderator bans the attacker and deletes its posts;
// a slow mode bounds what the next attacker posts (review M2).
func TestGriefPostFlood(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork, "maxMessages": 50})
	owner, honest := identity(t, 0), identity(t, 1)
	c := e.channelOf(owner, tx.PolicyOpen)
	e.do(honest, &tx.JoinChannel{Channel: c})
	var b budget
	attackers := b.sybils(t, e, 2, 2)
	attacker, second := attackers[0], attackers[1]
	for _, a := range attackers {
		if err := b.try(e, a, &tx.JoinChannel{Channel: c}); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	flood := 0
	for b.try(e, attacker, &tx.PostChannel{Channel: c, Ciphertext: []byte("x")}) == nil {
		flood++
	}
	mustIs(t, b.refusedWithLast, tx.ErrRateLimited)
	e.accept()
	if flood != 100 {
		t.Fatalf("attacker posted %d at once, want the burst of 100", flood)
	}
	b.log(t, "post flood")
	// The channel (capacity 50) holds the attacker's last 50 posts; the
	// honest post is accepted all the same and evicts the oldest.
	hp := e.do(honest, &tx.PostChannel{Channel: c, Ciphertext: []byte("honest")})
	// The owner bans the attacker and deletes what it left: one ban, one
	// deletion per 64 posts.
	e.do(owner, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: []crypto.SessionID{sid(t, attacker)}})
	msgs, _ := e.vm.Messages(c, 0, 100)
	var seqs []uint64
	for _, m := range msgs {
		if m.Author == sid(t, attacker) {
			seqs = append(seqs, m.Seq)
		}
	}
	if len(seqs) != 49 {
		t.Fatalf("%d attacker posts stored, want 49 beside the honest one", len(seqs))
	}
	e.do(owner, &tx.DeletePosts{Channel: c, Seqs: seqs})
	msgs, _ = e.vm.Messages(c, 0, 100)
	if len(msgs) != 1 || msgs[0].TxID != hp.ID() {
		t.Fatalf("channel holds %d posts after moderation", len(msgs))
	}
	e.clock.Advance(time.Hour)
	mustIs(t, b.try(e, attacker, &tx.PostChannel{Channel: c, Ciphertext: []byte("x")}), tx.ErrNotMember)
	mustIs(t, b.try(e, attacker, &tx.JoinChannel{Channel: c}), tx.ErrBanned)
	e.do(honest, &tx.PostChannel{Channel: c, Ciphertext: []byte("still here")})

	// Slow mode: the second attacker posts once per minute, however full
	// its bucket; the owner and honest members are unaffected in their
	// own pace.
	e.do(owner, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyOpen, SlowModeSeconds: 60})
	posted := 0
	for b.try(e, second, &tx.PostChannel{Channel: c, Ciphertext: []byte("y")}) == nil {
		posted++
	}
	mustIs(t, b.refusedWithLast, tx.ErrSlowMode)
	if posted != 1 {
		t.Fatalf("%d posts inside a slow mode of 60 s, want 1", posted)
	}
	e.accept()
	e.clock.Advance(59 * time.Second)
	mustIs(t, b.try(e, second, &tx.PostChannel{Channel: c, Ciphertext: []byte("y")}), tx.ErrSlowMode)
	e.clock.Advance(time.Second)
	if err := b.try(e, second, &tx.PostChannel{Channel: c, Ciphertext: []byte("y")}); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
	for i := 0; i < 3; i++ { // the owner is not slowed
		e.issue(e.sign(owner, &tx.PostChannel{Channel: c, Ciphertext: []byte("announcement")}))
	}
	e.accept()
	b.log(t, "post flood, slow mode")
}

// joinFloodSybils is how many identities TestGriefSybilJoinFlood
// registers: every free seat of a channel (1,022) in the long run, 128 in
// the default run, which checks the same rules (one seat per identity,
// bans in batches of 64, no return) on a smaller flood.
func joinFloodSybils() int {
	if testenv.LongEnabled() {
		return config.MaxChannelMembers - 2
	}
	return 128
}

// TestGriefSybilJoinFlood: one identity takes one seat; filling an open
// channel takes 1,022 registrations; the owner answers with invite-only
// and batched bans, and the honest user it invites gets in.
func TestGriefSybilJoinFlood(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	owner, honest := identity(t, 0), identity(t, 1)
	c := e.channelOf(owner, tx.PolicyOpen)

	// An ordinary budget: one identity, one seat.
	var small budget
	one := small.sybils(t, e, 3, 1)[0]
	if err := small.try(e, one, &tx.JoinChannel{Channel: c}); err != nil {
		t.Fatal(err)
	}
	e.accept()
	mustIs(t, small.try(e, one, &tx.JoinChannel{Channel: c}), tx.ErrAlreadyMember)
	small.log(t, "sybil join, ordinary budget")
	if ch, _ := e.vm.Channel(c); ch.Members != 2 {
		t.Fatalf("%d members", ch.Members)
	}

	// The attack: n more seats take n more identities.
	var b budget
	n := joinFloodSybils()
	army := b.sybils(t, e, 4, n)
	joins := make([]*tx.Tx, len(army))
	parallelFor(len(army), func(i int) {
		j, err := tx.Sign(army[i], e.vm.ChainID(), 1, &tx.JoinChannel{Channel: c})
		if err != nil {
			panic(err)
		}
		joins[i] = j
	})
	e.issueAll(joins)
	b.txsAccepted += len(joins)
	for ch, _ := e.vm.Channel(c); ch.Members < uint32(2+n); ch, _ = e.vm.Channel(c) {
		e.accept()
	}
	b.identities++ // the first one
	b.log(t, "sybil join flood")
	if ch, _ := e.vm.Channel(c); int(ch.Members) != 2+n || b.identities != n+1 {
		t.Fatalf("%d members from %d identities", ch.Members, b.identities)
	}
	if n == config.MaxChannelMembers-2 {
		if b.atDefaults() < 1000 {
			t.Fatalf("filling the channel cost %.0f core-seconds", b.atDefaults())
		}
		_, err := e.vm.IssueTx(e.sign(honest, &tx.JoinChannel{Channel: c}).Bytes())
		mustIs(t, err, tx.ErrChannelFull)
	}

	// The owner's answer.
	ownerTxs := 0
	e.do(owner, &tx.SetChannelPolicy{Channel: c, JoinPolicy: tx.PolicyInviteOnly})
	ownerTxs++
	all := append([]*crypto.Identity{one}, army...)
	for i := 0; i < len(all); i += 64 {
		var batch []crypto.SessionID
		for _, s := range all[i:min(i+64, len(all))] {
			batch = append(batch, sid(t, s))
		}
		e.issue(e.sign(owner, &tx.ModerateChannel{Channel: c, Action: tx.ActionBan, Members: batch}))
		ownerTxs++
	}
	e.accept()
	e.do(owner, &tx.ModerateChannel{Channel: c, Action: tx.ActionInvite, Members: []crypto.SessionID{sid(t, honest)}})
	ownerTxs++
	t.Logf("the owner cleared the channel with %d transactions", ownerTxs)
	if want := 2 + (len(all)+63)/64; ownerTxs != want {
		t.Fatalf("%d owner transactions, want %d", ownerTxs, want)
	}
	e.do(honest, &tx.JoinChannel{Channel: c})
	if ch, _ := e.vm.Channel(c); ch.Members != 2 || int(ch.Bans) != len(all) {
		t.Fatalf("channel %+v", ch)
	}
	// The bans and the invite are the owner's records; the banned members'
	// memberships are freed.
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, owner)); int(a.Records) != len(all) {
		t.Fatalf("owner holds %d records, want %d bans", a.Records, len(all))
	}
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, army[5])); a.Memberships != 0 {
		t.Fatalf("a banned sybil still counts %d memberships", a.Memberships)
	}
	// Banned sybils cannot come back; new ones need an invite.
	mustIs(t, b.try(e, army[5], &tx.JoinChannel{Channel: c}), tx.ErrBanned)
	late := b.sybils(t, e, 5, 1)[0]
	mustIs(t, b.try(e, late, &tx.JoinChannel{Channel: c}), tx.ErrNotInvited)
}

// TestGriefUnsolicitedSessions: a stranger opens sessions with a victim as
// fast as it can and sends into them; nothing reaches the victim's inbox,
// its requests list holds one entry, a request takes at most 8 messages,
// a contact's messages arrive, and one block ends it.
func TestGriefUnsolicitedSessions(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	victim, friend := identity(t, 0), identity(t, 1)
	e.do(victim, &tx.SetContact{Peer: sid(t, friend), Status: tx.ContactTrusted})
	var b budget
	attacker := b.sybils(t, e, 6, 1)[0]
	var sessions []ids.ID
	for {
		n, _ := e.vm.NextNonce(sid(t, attacker))
		if b.try(e, attacker, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, victim)}}) != nil {
			break
		}
		sessions = append(sessions, tx.SessionIDFor(e.vm.ChainID(), sid(t, attacker), n))
	}
	mustIs(t, b.refusedWithLast, tx.ErrRateLimited) // the requests bucket
	e.accept()
	if len(sessions) != 31 {
		t.Fatalf("%d requests at once, want the burst of 31", len(sessions))
	}
	for _, s := range sessions[:4] {
		for i := 0; i < config.RequestBackfill; i++ {
			if err := b.try(e, attacker, &tx.SendMessage{Session: s, Ciphertext: []byte("buy now")}); err != nil {
				t.Fatal(err)
			}
		}
		// A request takes at most 8 messages (review M4).
		mustIs(t, b.try(e, attacker, &tx.SendMessage{Session: s, Ciphertext: []byte("buy more")}), tx.ErrRequestFull)
	}
	e.accept()
	b.log(t, "unsolicited sessions")
	if got := e.inboxSeqs(victim); len(got) != 0 {
		t.Fatalf("the victim's inbox holds %d messages", len(got))
	}
	if r := e.requests(victim); len(r) != 1 || r[0].Creator != sid(t, attacker) {
		t.Fatalf("the victim's requests: %+v", r)
	}
	// The honest action: a contact's session reaches the inbox at once.
	s := e.createRequest(friend, victim)
	e.do(friend, &tx.SendMessage{Session: s, Ciphertext: []byte("lunch?")})
	in, _ := e.vm.Inbox(sid(t, victim), 0, 100)
	if len(in) != 1 || in[0].Author != sid(t, friend) {
		t.Fatalf("the victim's inbox: %d messages", len(in))
	}
	// One block, and the attacker is gone for good.
	e.do(victim, &tx.SetContact{Peer: sid(t, attacker), Status: tx.ContactBlocked})
	if r := e.requests(victim); len(r) != 0 {
		t.Fatalf("requests after blocking: %+v", r)
	}
	e.clock.Advance(24 * time.Hour)
	mustIs(t, b.try(e, attacker, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, victim)}}), tx.ErrBlocked)
	// Blocking used no contact place.
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, victim)); a.Contacts != 1 || a.Blocked != 1 {
		t.Fatalf("victim counts %d contacts, %d blocks", a.Contacts, a.Blocked)
	}
}

// TestGriefRequestFlood (review H3): many identities each leave a request;
// the list is ordered by time, so the victim reads only what is new;
// SetRequestPolicy(contacts only) ends the flood with one transaction and
// no record per attacker, and contacts still reach the victim.
func TestGriefRequestFlood(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	victim, friend, late := identity(t, 0), identity(t, 1), identity(t, 2)
	e.do(victim, &tx.SetContact{Peer: sid(t, friend), Status: tx.ContactTrusted})
	var b budget
	army := b.sybils(t, e, 9, 40)
	for _, a := range army {
		if err := b.try(e, a, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, victim)}}); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	before, _ := e.vm.Requests(sid(t, victim), 0, 1000)
	if len(before) != len(army) {
		t.Fatalf("%d requests from %d identities", len(before), len(army))
	}
	// A later honest request comes after them: paging from the last seen
	// position reads only it.
	cursor := before[len(before)-1].Position
	hs := e.createRequest(late, victim)
	newer, _ := e.vm.Requests(sid(t, victim), cursor, 1000)
	if len(newer) != 1 || newer[0].Session != hs {
		t.Fatalf("requests after the cursor: %+v", newer)
	}
	// Close the door: one transaction.
	e.do(victim, &tx.SetRequestPolicy{Policy: tx.RequestsFromContacts})
	more := b.sybils(t, e, 10, 5)
	for _, a := range more {
		mustIs(t, b.try(e, a, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, victim)}}), tx.ErrRequestsClosed)
	}
	after, _ := e.vm.Requests(sid(t, victim), 0, 1000)
	if len(after) != len(army)+1 {
		t.Fatalf("%d requests after closing the door", len(after))
	}
	b.log(t, "request flood")
	// A contact still reaches the victim.
	fs := e.createRequest(friend, victim)
	if e.participantState(fs, victim) != state.ParticipantAccepted {
		t.Fatal("a contact's session is not accepted under contacts-only")
	}
	// Closing the door wrote nothing per attacker: the victim's account
	// holds one contact and no blocks.
	if a, _ := state.New(e.vm.db).GetAccount(sid(t, victim)); a.Contacts != 1 || a.Blocked != 0 || a.ContactsOnly != 1 {
		t.Fatalf("victim's account %+v", a)
	}
	// Opening again.
	e.do(victim, &tx.SetRequestPolicy{Policy: tx.RequestsFromAnyone})
	if err := b.try(e, more[0], &tx.CreateSession{Participants: []crypto.SessionID{sid(t, victim)}}); err != nil {
		t.Fatal(err)
	}
}

// TestGriefPrekeyDraining (review H4): strangers claim at most the
// target's stranger budget, never its reserve, and one identity gets at
// most one one-time prekey per request; helpers in a group cannot claim on
// a target that has not accepted; strangers then claim 0, which the chain
// accepts only then; the target's contacts keep finding one-time prekeys.
func TestGriefPrekeyDraining(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	target, friend := identity(t, 0), identity(t, 1)
	e.do(target, &tx.SetContact{Peer: sid(t, friend), Status: tx.ContactTrusted})
	e.withPrekeys(target, 100)
	var b budget
	sybils := b.sybils(t, e, 7, 30)
	ts := sid(t, target)

	// One identity, many requests: one one-time prekey, then 0.
	first := sybils[0]
	c := e.claimOf(target, first)
	if c.OneTimePrekeyID == 0 {
		t.Fatal("no one-time prekey served to a stranger's first request")
	}
	if err := b.try(e, first, &tx.CreateSession{Participants: []crypto.SessionID{ts}, Claims: []tx.Claim{c}}); err != nil {
		t.Fatal(err)
	}
	e.accept()
	if c := e.claimOf(target, first); c.OneTimePrekeyID != 0 {
		t.Fatal("the node serves a second one-time prekey to the same requester")
	}
	other := e.prekeys(target, nil) // what anyone else would be served
	mustIs(t, b.try(e, first, &tx.CreateSession{Participants: []crypto.SessionID{ts},
		Claims: []tx.Claim{cl(ts, 1, other.OneTimeID)}}), tx.ErrStrangerClaim)
	if err := b.try(e, first, &tx.CreateSession{Participants: []crypto.SessionID{ts},
		Claims: []tx.Claim{cl(ts, 1, 0)}}); err != nil {
		t.Fatalf("a second request claiming 0: %v", err)
	}
	e.accept()

	// Helpers in a group: first's session lists the target and a helper
	// who has first as a contact; the helper is accepted, the target
	// pending: the helper cannot claim the target's one-time prekey.
	helper := sybils[1]
	if err := b.try(e, helper, &tx.SetContact{Peer: sid(t, first), Status: tx.ContactTrusted}); err != nil {
		t.Fatal(err)
	}
	e.accept()
	n, _ := e.vm.NextNonce(sid(t, first))
	if err := b.try(e, first, &tx.CreateSession{Participants: []crypto.SessionID{ts, sid(t, helper)}}); err != nil {
		t.Fatal(err)
	}
	e.accept()
	group := tx.SessionIDFor(e.vm.ChainID(), sid(t, first), n)
	p := e.prekeys(target, nil)
	mustIs(t, b.try(e, helper, &tx.SendMessage{Session: group, Claims: []tx.Claim{cl(ts, 1, p.OneTimeID)},
		Ciphertext: []byte("hs")}), tx.ErrStrangerClaim)
	// ... and its claim of 0 is accepted (nothing is claimable to it).
	if err := b.try(e, helper, &tx.SendMessage{Session: group, Claims: []tx.Claim{cl(ts, 1, 0)}, Ciphertext: []byte("hs")}); err != nil {
		t.Fatal(err)
	}
	e.accept()

	// Many identities: each first request takes one, until the target's
	// stranger burst (20) is spent; then 0.
	claimed := 1
	zero := 0
	for _, s := range sybils[2:] {
		c := e.claimOf(target, s)
		if err := b.try(e, s, &tx.CreateSession{Participants: []crypto.SessionID{ts}, Claims: []tx.Claim{c}}); err != nil {
			t.Fatal(err)
		}
		if c.OneTimePrekeyID != 0 {
			claimed++
		} else {
			zero++
		}
		e.accept()
	}
	b.log(t, "prekey draining")
	if claimed != 20 || zero != len(sybils)-2-19 {
		t.Fatalf("strangers claimed %d one-time prekeys (want the burst of 20), %d zero claims", claimed, zero)
	}
	if p := e.prekeys(target, nil); p.Unclaimed != 80 {
		t.Fatalf("%d unclaimed", p.Unclaimed)
	}
	// With the budget spent, a stranger's 0 is accepted; and a day later
	// strangers got 24 more at most, never the reserve.
	for h := 0; h < 96; h++ {
		e.clock.Advance(time.Hour)
		s := b.sybils(t, e, byte(100+h%100), 1)[0]
		if err := b.try(e, s, &tx.CreateSession{Participants: []crypto.SessionID{ts}, Claims: []tx.Claim{e.claimOf(target, s)}}); err != nil {
			t.Fatal(err)
		}
		e.accept()
	}
	p = e.prekeys(target, nil)
	if int64(p.Unclaimed) != config.Default().Prekeys.StrangerReserve {
		t.Fatalf("strangers left %d unclaimed, want the reserve of 20", p.Unclaimed)
	}
	b.log(t, "prekey draining over four days")
	// Every claim is in the target's claim log.
	log, _ := e.vm.Claims(ts, 0, 1000)
	if len(log) != 1+1+1+len(sybils)-2+96 {
		t.Fatalf("%d claims logged", len(log))
	}
	// The honest action: the target's contact claims a one-time prekey
	// from the reserve, and may not claim 0 while one is there.
	fc := e.claimOf(target, friend)
	if fc.OneTimePrekeyID == 0 {
		t.Fatal("no one-time prekey for a contact")
	}
	_, err := e.vm.IssueTx(e.sign(friend, &tx.CreateSession{Participants: []crypto.SessionID{ts}, Claims: []tx.Claim{cl(ts, 1, 0)}}).Bytes())
	mustIs(t, err, tx.ErrPrekeyAvailable)
	e.do(friend, &tx.CreateSession{Participants: []crypto.SessionID{ts}, Claims: []tx.Claim{fc}})
	if q := e.prekeys(target, nil); q.Unclaimed != p.Unclaimed-1 {
		t.Fatal("the contact's claim did not count")
	}
}

// TestGriefRegistrationReplay (review C1): replayed, re-signed and bogus
// registrations never cost a node more Argon2id than the sender paid
// pre-filter work for: a replay and a re-signed work value cost none, a
// new bogus value one, behind 2^prefilterBits of the sender's hashing.
func TestGriefRegistrationReplay(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": map[string]any{"memoryKiB": 64, "iterations": 1, "prefilterBits": 6, "workBits": 4, "maxPerBlock": 16}})
	v := e.vm.verifier
	newcomer := identity(t, 6)
	reg, _ := e.registration(newcomer, 0)
	signed := e.sign(newcomer, reg)
	e.issue(signed)
	e.accept()
	base := v.workChecked.Load()

	// Replays of the accepted registration: refused before any work.
	for i := 0; i < 20; i++ {
		_, err := e.vm.IssueTx(signed.Bytes())
		if !errors.Is(err, ErrAlreadyAccepted) {
			t.Fatalf("replay %d: %v", i, err)
		}
	}
	// Re-signed (a new signature, a new transaction ID): refused as a
	// duplicate registration, before any work.
	for i := 0; i < 5; i++ {
		again, err := tx.Sign(newcomer, e.vm.ChainID(), 0, reg)
		if err != nil || again.ID() == signed.ID() {
			t.Fatal("re-signing gave the same transaction")
		}
		_, err = e.vm.IssueTx(again.Bytes())
		mustIs(t, err, tx.ErrDuplicateRegistration)
	}
	if n := v.workChecked.Load() - base; n != 0 {
		t.Fatalf("replays cost %d Argon2id", n)
	}

	// A bogus work value of an unregistered identity that passes the
	// pre-filter but not Argon2id: one evaluation, then cached by its
	// input however often it is re-signed.
	bogus := identity(t, 7)
	h, bid := e.anchor()
	seed := tx.WorkSeed(e.vm.ChainID(), sid(t, bogus), h, bid)
	p := e.vm.Config().Registration
	var work uint64
	for w := uint64(0); ; w++ {
		pre := tx.WorkPre(seed, w)
		if tx.PrefilterPasses(pre, p) && !tx.ArgonPasses(e.vm.ChainID(), pre, p) {
			work = w
			break
		}
	}
	breg := &tx.RegisterIdentity{KEMPublicKey: bogus.KEMPublicKey, DSAPublicKey: bogus.DSAPublicKey, AnchorHeight: h, Work: work}
	for i := 0; i < 10; i++ {
		t2, err := tx.Sign(bogus, e.vm.ChainID(), 0, breg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.vm.IssueTx(t2.Bytes())
		mustIs(t, err, tx.ErrInsufficientWork)
	}
	if n := v.workChecked.Load() - base; n != 1 {
		t.Fatalf("10 signatures of one bogus work value cost %d Argon2id, want 1", n)
	}
	// A value that fails the pre-filter costs none.
	for w := uint64(0); ; w++ {
		if !tx.PrefilterPasses(tx.WorkPre(seed, w), p) {
			t2, _ := tx.Sign(bogus, e.vm.ChainID(), 0, &tx.RegisterIdentity{KEMPublicKey: bogus.KEMPublicKey, DSAPublicKey: bogus.DSAPublicKey, AnchorHeight: h, Work: w})
			_, err := e.vm.IssueTx(t2.Bytes())
			mustIs(t, err, tx.ErrInsufficientWork)
			break
		}
	}
	if n := v.workChecked.Load() - base; n != 1 {
		t.Fatalf("a pre-filter failure cost Argon2id (%d in all)", n)
	}

	// In a peer's block: a replayed registration, or an author registered
	// twice, is refused before any signature or Argon2id.
	last, _ := e.vm.LastAccepted(ctx)
	parent, _ := e.vm.GetBlock(ctx, last)
	e.clock.Advance(time.Second)
	for _, txs := range [][]*tx.Tx{{signed}, {e.sign(bogus, breg), e.sign(bogus, breg)}} {
		blk, err := e.blockFor(last, parent.Height()+1, e.clock.Now().UnixMilli(), txs)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := e.vm.ParseBlock(ctx, blk.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sigs, work := v.verified.Load(), v.workChecked.Load()
		mustIs(t, pb.Verify(ctx), tx.ErrDuplicateRegistration)
		if v.verified.Load() != sigs || v.workChecked.Load() != work {
			t.Fatal("a block of replayed registrations cost signatures or Argon2id")
		}
	}
}

// TestGriefCapacity (review C2): heavy senders with deep backlogs, and
// each a bytes bucket; an honest author's single message goes into the
// next block (fair building), not behind the backlog.
func TestGriefCapacity(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	var b budget
	heavy := b.sybils(t, e, 11, 3)
	honest, peer := identity(t, 0), identity(t, 1)
	hs := e.createSession(honest, peer)
	big := make([]byte, config.MaxCiphertextSize)
	// The heavy senders take each other as contacts, so their sessions are
	// no requests.
	for i, h := range heavy {
		if err := b.try(e, heavy[(i+1)%len(heavy)], &tx.SetContact{Peer: sid(t, h), Status: tx.ContactTrusted}); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	var sessions []ids.ID
	for i, h := range heavy {
		n, _ := e.vm.NextNonce(sid(t, h))
		if err := b.try(e, h, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, heavy[(i+1)%len(heavy)])}}); err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, tx.SessionIDFor(e.vm.ChainID(), sid(t, h), n))
	}
	e.accept()
	// Each heavy sender queues 16 messages of 64 KiB: 48 × 69 KB, more
	// than a block of 2 MiB; then the honest message.
	for i, h := range heavy {
		for k := 0; k < 16; k++ {
			if err := b.try(e, h, &tx.SendMessage{Session: sessions[i], Ciphertext: big}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The bytes bucket: a 64 KiB message costs 17 tokens of 4 KiB.
	if a, _ := state.New(e.vm.pool.overlay).GetAccount(sid(t, heavy[0])); a.Buckets[config.BucketBytes] == 0 {
		t.Fatal("the bytes bucket was not charged")
	}
	honestTx := e.sign(honest, &tx.SendMessage{Session: hs, Ciphertext: []byte("hi")})
	e.issue(honestTx)
	blk := e.accept()
	in := false
	for _, t2 := range blk.Txs {
		if t2.ID() == honestTx.ID() {
			in = true
		}
	}
	if !in {
		t.Fatalf("the honest message is not in the next block (%d transactions in it)", len(blk.Txs))
	}
	b.log(t, "block space")
	// The heavy senders' bytes: each sent 16 × 17 tokens; a burst of 1,024
	// tokens is 4 MiB, about 60 of these messages.
	if got := config.Default().RateLimits.Bytes.Burst / 17; got < 50 || got > 70 {
		t.Fatalf("a burst holds %d messages of 64 KiB", got)
	}
	for e.vm.pool.mempool.Len() > 0 {
		e.accept()
	}
}

// TestGriefGroups (reviews H5, M3): a contact's group holding someone the
// victim blocked arrives as a request; one member cannot close a group nor
// fill it for the others.
func TestGriefGroups(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork, "maxMessages": 30})
	victim, contact, other := identity(t, 0), identity(t, 1), identity(t, 2)
	var b budget
	blocked := b.sybils(t, e, 12, 1)[0]
	e.do(victim, &tx.SetContact{Peer: sid(t, contact), Status: tx.ContactTrusted})
	e.do(victim, &tx.SetContact{Peer: sid(t, blocked), Status: tx.ContactBlocked})
	e.do(other, &tx.SetContact{Peer: sid(t, contact), Status: tx.ContactTrusted})
	e.do(blocked, &tx.SetContact{Peer: sid(t, contact), Status: tx.ContactTrusted})
	g := e.createRequest(contact, victim, blocked, other)
	if e.participantState(g, victim) != state.ParticipantPending {
		t.Fatal("a contact's group with someone the victim blocked skipped the request")
	}
	if e.participantState(g, blocked) != state.ParticipantAccepted || e.participantState(g, other) != state.ParticipantAccepted {
		t.Fatal("the others should be accepted")
	}
	for i := 0; i < 3; i++ {
		if err := b.try(e, blocked, &tx.SendMessage{Session: g, Ciphertext: []byte("hello from the blocked")}); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	if got := e.inboxSeqs(victim); len(got) != 0 {
		t.Fatalf("the blocked peer reached the victim's inbox: %v", got)
	}
	// A group without anyone the victim blocked is accepted at once.
	g2 := e.createRequest(contact, victim, other)
	if e.participantState(g2, victim) != state.ParticipantAccepted {
		t.Fatal("a contact's group was not accepted")
	}
	// One member cannot close the group for everyone (review M3)...
	mustIs(t, b.try(e, blocked, &tx.CloseSession{Session: g}), tx.ErrNotCreator)
	// ... nor fill it: its share of maxMessages (30 / 4 = 8) is all it
	// stores; the others keep theirs.
	sent := 3
	for b.try(e, blocked, &tx.SendMessage{Session: g, Ciphertext: []byte("x")}) == nil {
		sent++
	}
	mustIs(t, b.refusedWithLast, tx.ErrMaxMessages)
	if sent != 8 {
		t.Fatalf("one member stored %d messages of a 30-message session with 4 participants, want its share of 8", sent)
	}
	e.accept()
	e.do(other, &tx.SendMessage{Session: g, Ciphertext: []byte("still talking")})
	// The creator closes it.
	e.do(contact, &tx.CloseSession{Session: g})
	b.log(t, "groups")
}

// TestGriefMempoolRegistrations: a registration flood holds at most the
// node's registration pool, never the mempool for others; an honest
// registration with more work replaces the lowest pending one.
func TestGriefMempoolRegistrations(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	e.vm.pool.maxRegs = 8
	var b budget
	var flood []*tx.Tx
	for i := 0; i < 8; i++ {
		var seed [32]byte
		seed[0], seed[31] = byte(i), 0x77
		id, _ := crypto.IdentityFromSeed(seed)
		reg, st := e.registration(id, 0)
		b.prefilterEvals += st.Prefilter
		b.argon2Evals += st.Argon2
		flood = append(flood, e.sign(id, reg))
	}
	e.issueAll(flood)
	// A ninth registration with no more excess than the lowest pending is
	// refused (retryable) before any signature or Argon2id...
	ninth := identity(t, 6)
	lowest, highest := tx.MaxExcess, 0
	for _, f := range flood {
		lowest, highest = min(lowest, excessOf(e, f)), max(highest, excessOf(e, f))
	}
	h, bid := e.anchor()
	seed := tx.WorkSeed(e.vm.ChainID(), sid(t, ninth), h, bid)
	var reg *tx.RegisterIdentity
	for start := uint64(0); reg == nil; start += 1 << 20 {
		w, _, err := tx.SolveWork(context.Background(), e.vm.ChainID(), seed, e.vm.Config().Registration, 0, start, 1)
		if err != nil {
			t.Fatal(err)
		}
		if tx.Excess(tx.WorkPre(seed, w), e.vm.Config().Registration) <= lowest {
			reg = &tx.RegisterIdentity{KEMPublicKey: ninth.KEMPublicKey, DSAPublicKey: ninth.DSAPublicKey, AnchorHeight: h, Work: w}
		}
	}
	sigs := e.vm.verifier.verified.Load()
	_, err := e.vm.IssueTx(e.sign(ninth, reg).Bytes())
	mustIs(t, err, mempool.ErrFull)
	if e.vm.verifier.verified.Load() != sigs {
		t.Fatal("a registration refused for the pool cost a signature")
	}
	// ... other transactions are admitted as usual...
	e.issue(e.sign(identity(t, 0), &tx.CreateChannel{Name: "still open"}))
	// ... and a registration with more work than every pending one gets in.
	better, _ := e.registration(ninth, highest+1)
	e.issue(e.sign(ninth, better))
	if len(e.vm.pool.regs) != 8 || e.vm.pool.mempool.Len() != 9 {
		t.Fatalf("%d registrations, %d transactions pending", len(e.vm.pool.regs), e.vm.pool.mempool.Len())
	}
	// The replaced one is dropped with its reason.
	dropped := 0
	for _, f := range flood {
		if st, _ := e.vm.TxStatus(f.ID()); st.Status == TxDropped {
			dropped++
		}
	}
	if dropped != 1 {
		t.Fatalf("%d flood registrations dropped, want 1", dropped)
	}
	b.log(t, "registration pool")
}

// excessOf returns the excess of a registration anchored to the last
// accepted block.
func excessOf(e *env, t *tx.Tx) int {
	reg := t.Payload.(*tx.RegisterIdentity)
	h, id := e.anchor()
	if reg.AnchorHeight != h {
		e.t.Fatal("the registration is not anchored to the tip")
	}
	return tx.Excess(tx.WorkPre(tx.WorkSeed(e.vm.ChainID(), t.Author, h, id), reg.Work), e.vm.Config().Registration)
}
