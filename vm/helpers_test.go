package vm

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// genesisTime is the genesis timestamp of the test chains (Unix seconds).
const genesisTime = 1_767_225_600

// Identities cost ~150µs each; derive a fixed set once.
var (
	identitiesOnce sync.Once
	testIDs        []*crypto.Identity
)

func identity(t testing.TB, i int) *crypto.Identity {
	t.Helper()
	identitiesOnce.Do(func() { testIDs = vmtest.Identities(0, 8) })
	return testIDs[i]
}

func sid(t testing.TB, id *crypto.Identity) crypto.SessionID {
	t.Helper()
	s, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// genesisJSON returns a genesis with the given config object and initial
// identities.
func genesisJSON(t testing.TB, cfg map[string]any, initial ...*crypto.Identity) []byte {
	t.Helper()
	b, err := vmtest.GenesisJSON(genesisTime, cfg, initial...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testClock is a settable clock.
type testClock = vmtest.Clock

func newTestClock() *testClock { return vmtest.NewClock(time.Unix(genesisTime+60, 0)) }

type env struct {
	t     testing.TB
	vm    *VM
	db    database.Database
	clock *testClock

	// deterministic signs transactions with deterministic ML-DSA (the
	// golden writes test: the same transactions and IDs every run).
	deterministic bool
	// onBlock, when set, receives every block accept builds with the
	// writes its execution made (the golden writes test).
	onBlock func(b *Block, ops []recordedOp)
}

func newEnvDB(t testing.TB, db database.Database, genesis []byte, clock *testClock) *env {
	t.Helper()
	if clock == nil {
		clock = newTestClock()
	}
	v := New(WithClock(clock.Now))
	if err := v.Initialize(context.Background(), nil, db, genesis, nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Shutdown(context.Background()) })
	return &env{t: t, vm: v, db: db, clock: clock}
}

// newEnv starts a VM on memdb whose genesis registers identities 0..3.
func newEnv(t testing.TB, cfg map[string]any) *env {
	t.Helper()
	return newEnvDB(t, memdb.New(), genesisJSON(t, cfg, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3)), nil)
}

// sign signs a transaction of id with its next nonce (as the VM sees it).
func (e *env) sign(id *crypto.Identity, p tx.Payload) *tx.Tx {
	e.t.Helper()
	n, err := e.vm.NextNonce(sid(e.t, id))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.signNonce(id, n, p)
}

func (e *env) signNonce(id *crypto.Identity, nonce uint64, p tx.Payload) *tx.Tx {
	e.t.Helper()
	if e.deterministic {
		return signDeterministic(e.t, id, e.vm.ChainID(), nonce, p)
	}
	t, err := tx.Sign(id, e.vm.ChainID(), nonce, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

// issue admits t and fails the test on refusal.
func (e *env) issue(t *tx.Tx) ids.ID {
	e.t.Helper()
	id, err := e.vm.IssueTx(t.Bytes())
	if err != nil {
		e.t.Fatalf("IssueTx(%s): %v", t.Type(), err)
	}
	if id != t.ID() {
		e.t.Fatalf("IssueTx returned %s, want %s", id, t.ID())
	}
	return id
}

// do signs, issues, builds and accepts one transaction of id.
func (e *env) do(id *crypto.Identity, p tx.Payload) *tx.Tx {
	e.t.Helper()
	t := e.sign(id, p)
	e.issue(t)
	e.accept()
	return t
}

// accept builds, verifies and accepts one block.
func (e *env) accept() *Block {
	e.t.Helper()
	e.clock.Advance(time.Second)
	if e.onBlock != nil {
		return e.acceptRecorded()
	}
	b, err := e.vm.BuildAndAccept(context.Background())
	if err != nil {
		e.t.Fatalf("BuildAndAccept: %v", err)
	}
	return b
}

// acceptAny builds and accepts a block if a transaction is pending.
func (e *env) acceptAny() {
	e.t.Helper()
	e.clock.Advance(time.Second)
	if _, err := e.vm.BuildAndAccept(context.Background()); err != nil && !errors.Is(err, ErrNoPendingTxs) {
		e.t.Fatalf("BuildAndAccept: %v", err)
	}
}

// createSession opens a session of creator with others and returns its
// ID. The others are pending (a message request) unless they have creator
// as a contact: acceptAll makes them take part.
func (e *env) createSession(creator *crypto.Identity, others ...*crypto.Identity) ids.ID {
	e.t.Helper()
	return e.createRequest(creator, others...)
}

// acceptAll has each of ids accept session s, in one block.
func (e *env) acceptAll(s ids.ID, ids ...*crypto.Identity) {
	e.t.Helper()
	for _, id := range ids {
		e.issue(e.sign(id, &tx.AcceptSession{Session: s, Decision: tx.DecisionAccept}))
	}
	e.accept()
}

// createRequest opens a session of creator with others and returns its ID;
// the others are pending unless they have creator as a contact.
func (e *env) createRequest(creator *crypto.Identity, others ...*crypto.Identity) ids.ID {
	e.t.Helper()
	var ps []crypto.SessionID
	for _, o := range others {
		ps = append(ps, sid(e.t, o))
	}
	t := e.do(creator, &tx.CreateSession{Participants: ps, Metadata: []byte("meta")})
	return tx.SessionIDFor(e.vm.ChainID(), t.Author, t.Nonce)
}

func mustIs(t testing.TB, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

// channelOf creates a channel of owner with a join policy and returns its
// ID.
func (e *env) channelOf(owner *crypto.Identity, policy tx.JoinPolicy) ids.ID {
	e.t.Helper()
	t := e.do(owner, &tx.CreateChannel{Name: "c", JoinPolicy: policy})
	return tx.ChannelIDFor(e.vm.ChainID(), t.Author, t.Nonce)
}

// moderated creates an open channel of owner whose moderators are mods
// (who join first).
func (e *env) moderated(owner *crypto.Identity, mods ...*crypto.Identity) ids.ID {
	e.t.Helper()
	c := e.channelOf(owner, tx.PolicyOpen)
	var ms []crypto.SessionID
	for _, m := range mods {
		e.issue(e.sign(m, &tx.JoinChannel{Channel: c}))
		ms = append(ms, sid(e.t, m))
	}
	e.accept()
	e.do(owner, &tx.ModerateChannel{Channel: c, Action: tx.ActionMakeModerator, Members: ms})
	return c
}

// prekeyKeys are valid ML-KEM-768 public keys to publish as prekeys.
var prekeyKeys = func() [][]byte {
	out := make([][]byte, 4)
	for i := range out {
		var seed [32]byte
		seed[0], seed[31] = byte(i+1), 0x9e
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			panic(err)
		}
		out[i] = id.KEMPublicKey
	}
	return out
}()

// oneTimes returns a PublishPrekeys of n one-time prekeys with IDs from
// first on.
func oneTimes(first uint32, n int) *tx.PublishPrekeys {
	p := &tx.PublishPrekeys{}
	for i := 0; i < n; i++ {
		p.OneTime = append(p.OneTime, tx.OneTimePrekey{ID: first + uint32(i), KEMPublicKey: prekeyKeys[i%len(prekeyKeys)]})
	}
	return p
}

// signedPrekey returns a PublishPrekeys of a signed prekey valid for a
// week from the clock's time.
func (e *env) signedPrekey(id uint32) *tx.PublishPrekeys {
	return &tx.PublishPrekeys{Signed: &tx.SignedPrekey{ID: id, ExpiresAt: e.clock.Now().UnixMilli() + 7*86400*1000, KEMPublicKey: prekeyKeys[0]}}
}

// anchor returns the last accepted block: what a registration anchors its
// work to.
func (e *env) anchor() (uint64, ids.ID) {
	e.t.Helper()
	tip := e.vm.chain.tip.Load()
	return tip.Height(), tip.ID()
}

// registration returns id's RegisterIdentity with work solved for the
// chain's parameters on the last accepted block, and the evaluations.
func (e *env) registration(id *crypto.Identity, extra int) (*tx.RegisterIdentity, tx.WorkStats) {
	e.t.Helper()
	h, bid := e.anchor()
	author := sid(e.t, id)
	seed := tx.WorkSeed(e.vm.ChainID(), author, h, bid)
	work, st, err := tx.SolveWork(context.Background(), e.vm.ChainID(), seed, e.vm.Config().Registration, extra, 0, 1)
	if err != nil {
		e.t.Fatal(err)
	}
	return &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, AnchorHeight: h, Work: work}, st
}

// prekeys returns id's prekey record and a random unclaimed one-time
// prekey (for claimer, when not nil).
func (e *env) prekeys(id *crypto.Identity, claimer *crypto.Identity) *Prekeys {
	e.t.Helper()
	var c *crypto.SessionID
	if claimer != nil {
		s := sid(e.t, claimer)
		c = &s
	}
	p, err := e.vm.Prekeys(sid(e.t, id), c, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// claimOf returns the claim a claimer would make of target's prekeys now:
// its current signed prekey and the one-time prekey the node serves it
// (or 0).
func (e *env) claimOf(target, claimer *crypto.Identity) tx.Claim {
	e.t.Helper()
	p := e.prekeys(target, claimer)
	c := tx.Claim{Participant: sid(e.t, target), SignedPrekeyID: p.SignedID}
	if p.HasOneTime {
		c.OneTimePrekeyID = p.OneTimeID
	}
	return c
}

// withPrekeys publishes a signed prekey (ID 1) and n one-time prekeys
// (IDs 1..n) for id, in as many transactions as needed, and accepts them.
func (e *env) withPrekeys(id *crypto.Identity, n int) {
	e.t.Helper()
	e.do(id, e.signedPrekey(1))
	for first := 1; first <= n; first += 32 {
		e.do(id, oneTimes(uint32(first), min(32, n-first+1)))
	}
}

// cl is a claim entry: target's signed prekey and one-time prekey (0:
// none).
func cl(target crypto.SessionID, signed, oneTime uint32) tx.Claim {
	return tx.Claim{Participant: target, SignedPrekeyID: signed, OneTimePrekeyID: oneTime}
}
