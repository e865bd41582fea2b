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
	"github.com/luxfi/session/vm/tx"
)

// The griefing scenarios of issue 9 §2 and prekey draining (docs/chain.md
// section 12). In each, an attacker spends what the test counts in a
// budget (identities registered, proof-of-work evaluations, transactions
// accepted and refused), and an honest user's action must succeed.
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
// parameters, in core-seconds (docs/chain.md section 3: about 1.2 s each
// on the development machine).
func (b *budget) atDefaults() float64 { return float64(b.identities) * 1.2 }

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
// work, counted) in as few blocks as the per-block bound allows, on every
// core.
func (b *budget) sybils(t *testing.T, e *env, tag byte, n int) []*crypto.Identity {
	t.Helper()
	out := make([]*crypto.Identity, n)
	txs := make([]*tx.Tx, n)
	p := e.vm.Config().Registration
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, n)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var seed [32]byte
				seed[0], seed[1], seed[2], seed[31] = byte(i), byte(i>>8), 0x5b, tag
				id, err := crypto.IdentityFromSeed(seed)
				if err != nil {
					errs <- err
					return
				}
				author, _ := crypto.ParseSessionID(id.SessionID)
				work, st, err := tx.SolveWork(context.Background(), e.vm.ChainID(), author, p, 0, 1)
				if err != nil {
					errs <- err
					return
				}
				signed, err := tx.Sign(id, e.vm.ChainID(), 0, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, Work: work})
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				out[i], txs[i] = id, signed
				b.prefilterEvals += st.Prefilter
				b.argon2Evals += st.Argon2
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e.issueAll(txs)
	b.txsAccepted += len(txs)
	for registered := 0; registered < n; {
		registered += len(e.accept().Txs)
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
// accepted and stays; a moderator bans the attacker and deletes its posts.
func TestGriefPostFlood(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork, "maxMessages": 50})
	owner, honest := identity(t, 0), identity(t, 1)
	c := e.channelOf(owner, tx.PolicyOpen)
	e.do(honest, &tx.JoinChannel{Channel: c})
	var b budget
	attacker := b.sybils(t, e, 2, 1)[0]
	if err := b.try(e, attacker, &tx.JoinChannel{Channel: c}); err != nil {
		t.Fatal(err)
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
	// The channel (capacity 50) is full of the attacker's posts; the honest
	// post is accepted all the same.
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
}

// TestGriefSybilJoinFlood: one identity takes one seat; filling an open
// channel takes 1,023 registrations; the owner answers with invite-only
// and 16 batched bans, and the honest user it invites gets in.
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
	small.log(t, "sybil join, ordinary budget")
	if ch, _ := e.vm.Channel(c); ch.Members != 2 {
		t.Fatalf("%d members", ch.Members)
	}

	// The full attack: every free seat.
	var b budget
	free := 1024 - 2
	army := b.sybils(t, e, 4, free)
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
	for ch, _ := e.vm.Channel(c); ch.Members < 1024; ch, _ = e.vm.Channel(c) {
		e.accept()
	}
	b.identities++ // the first one
	b.log(t, "sybil join, full channel")
	if b.identities != 1023 || b.atDefaults() < 1000 {
		t.Fatalf("filling the channel took %d identities", b.identities)
	}
	_, err := e.vm.IssueTx(e.sign(honest, &tx.JoinChannel{Channel: c}).Bytes())
	mustIs(t, err, tx.ErrChannelFull)

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
	if ownerTxs > 18 {
		t.Fatalf("%d owner transactions", ownerTxs)
	}
	e.do(honest, &tx.JoinChannel{Channel: c})
	if ch, _ := e.vm.Channel(c); ch.Members != 2 || ch.Bans != 1023 {
		t.Fatalf("channel %+v", ch)
	}
	// Banned sybils cannot come back; new ones need an invite.
	mustIs(t, b.try(e, army[5], &tx.JoinChannel{Channel: c}), tx.ErrBanned)
	late := b.sybils(t, e, 5, 1)[0]
	mustIs(t, b.try(e, late, &tx.JoinChannel{Channel: c}), tx.ErrNotInvited)
}

// TestGriefUnsolicitedSessions: a stranger opens sessions with a victim as
// fast as it can and sends into them; nothing reaches the victim's inbox,
// its requests list holds one entry, a contact's messages arrive, and one
// block ends it.
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
	if len(sessions) != 20 {
		t.Fatalf("%d requests at once, want the burst of 20", len(sessions))
	}
	for _, s := range sessions {
		for i := 0; i < 5; i++ {
			if err := b.try(e, attacker, &tx.SendMessage{Session: s, Ciphertext: []byte("buy now")}); err != nil {
				t.Fatal(err)
			}
		}
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
}

// TestGriefPrekeyDraining: strangers, however many, claim at most the
// target's stranger budget and never its reserve; its contacts keep
// finding one-time prekeys.
func TestGriefPrekeyDraining(t *testing.T) {
	e := newEnv(t, map[string]any{"registration": griefWork})
	target, friend := identity(t, 0), identity(t, 1)
	e.do(target, &tx.SetContact{Peer: sid(t, friend), Status: tx.ContactTrusted})
	for first := uint32(1); first <= 96; first += 32 {
		e.do(target, oneTimes(first, 32))
	}
	e.do(target, oneTimes(97, 4)) // 100 unclaimed
	var b budget
	sybils := b.sybils(t, e, 7, 10)
	next := uint32(1)
	claimed := 0
	for _, s := range sybils {
		for k := 0; k < 5; k++ { // each sybil tries 5 sessions, each claiming one
			p, _ := e.vm.Prekeys(sid(t, target))
			if !p.HasOneTime {
				break
			}
			next = p.OneTimeID
			if err := b.try(e, s, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, target)}, Claims: []uint32{next}}); err != nil {
				if !errors.Is(err, tx.ErrRateLimited) && !errors.Is(err, tx.ErrPrekeyReserved) {
					t.Fatalf("unexpected refusal: %v", err)
				}
				continue
			}
			claimed++
			e.accept()
		}
	}
	b.log(t, "prekey draining")
	if claimed != 20 {
		t.Fatalf("strangers claimed %d, want the target's stranger burst of 20", claimed)
	}
	p, _ := e.vm.Prekeys(sid(t, target))
	if p.Unclaimed != 80 {
		t.Fatalf("%d unclaimed", p.Unclaimed)
	}
	// A day later strangers got 24 more at most; the reserve of 20 never
	// goes to them.
	for h := 0; h < 96; h++ {
		e.clock.Advance(time.Hour)
		s := sybils[h%len(sybils)]
		p, _ := e.vm.Prekeys(sid(t, target))
		if b.try(e, s, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, target)}, Claims: []uint32{p.OneTimeID}}) == nil {
			e.accept()
		}
	}
	p, _ = e.vm.Prekeys(sid(t, target))
	if int64(p.Unclaimed) < config.Default().Prekeys.StrangerReserve {
		t.Fatalf("strangers drained the reserve: %d left", p.Unclaimed)
	}
	b.log(t, "prekey draining over four days")
	// The honest action: the target's contact claims a one-time prekey.
	e.do(friend, &tx.CreateSession{Participants: []crypto.SessionID{sid(t, target)}, Claims: []uint32{p.OneTimeID}})
	if q, _ := e.vm.Prekeys(sid(t, target)); q.Unclaimed != p.Unclaimed-1 {
		t.Fatal("the contact's claim did not count")
	}
}
