package vm

import (
	"fmt"
	"testing"

	"github.com/luxfi/database/memdb"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// TestFullGroupOfStrangers (review L6): the requests burst holds a full
// group: a creator lists 31 identities that do not have it as a contact,
// all pending, in one transaction; the next such group waits for the
// bucket to refill.
func TestFullGroupOfStrangers(t *testing.T) {
	group := vmtest.Identities(0x6c, 32)
	e := newEnvDB(t, memdb.New(), genesisJSON(t, nil, group...), nil)
	creator := group[0]
	var others []crypto.SessionID
	for _, id := range group[1:] {
		others = append(others, sid(t, id))
	}
	e.do(creator, &tx.CreateSession{Participants: others})
	s := tx.SessionIDFor(e.vm.ChainID(), sid(t, creator), 0)
	for _, id := range group[1:] {
		if len(e.requests(id)) != 1 {
			t.Fatalf("%s has no request", id.SessionID)
		}
	}
	if st := e.participantState(s, group[31]); st.String() != "pending" {
		t.Fatalf("the last participant is %s", st)
	}
	_, err := e.vm.IssueTx(e.sign(creator, &tx.CreateSession{Participants: others}).Bytes())
	mustIs(t, err, tx.ErrRateLimited)
}

// TestAdmissionBeforeSignature (review L1): an accepted transaction sent
// again, and a transaction whose nonce its author already used, are
// refused at admission before any signature is verified: garbage costs a
// node lookups, not ML-DSA verifications.
func TestAdmissionBeforeSignature(t *testing.T) {
	e := newEnv(t, nil)
	alice := identity(t, 0)
	done := e.do(alice, &tx.CreateChannel{Name: "x", JoinPolicy: tx.PolicyOpen})
	sigs := e.vm.verifier.verified.Load()
	_, err := e.vm.IssueTx(done.Bytes())
	mustIs(t, err, ErrAlreadyAccepted)
	stale := e.signNonce(alice, done.Nonce, &tx.CreateChannel{Name: "y", JoinPolicy: tx.PolicyOpen})
	_, err = e.vm.IssueTx(stale.Bytes())
	mustIs(t, err, tx.ErrReplayedNonce)
	if n := e.vm.verifier.verified.Load() - sigs; n != 0 {
		t.Fatalf("refusing a replay and a used nonce verified %d signatures", n)
	}
	// The next nonce is verified as usual.
	e.issue(e.sign(alice, &tx.CreateChannel{Name: "z", JoinPolicy: tx.PolicyOpen}))
	if e.vm.verifier.verified.Load() == sigs {
		t.Fatal("an admitted transaction was not verified")
	}
}

// TestReplayRefusedWithoutIndexMiss: admission looks a transaction up in
// the accepted index only when its nonce says it may be on chain
// (mayBeAccepted); every replay of an accepted transaction, of any of its
// author's accepted nonces and after later blocks, is still refused as
// ErrAlreadyAccepted, a pending one as a duplicate, and a registration is
// always looked up.
func TestReplayRefusedWithoutIndexMiss(t *testing.T) {
	e := newEnv(t, nil)
	alice := identity(t, 0)
	var accepted []*tx.Tx
	for i := 0; i < 3; i++ {
		accepted = append(accepted, e.do(alice, &tx.CreateChannel{Name: fmt.Sprintf("c%d", i), JoinPolicy: tx.PolicyOpen}))
	}
	base := state.New(e.vm.chain.cache)
	for _, a := range accepted {
		if may, err := mayBeAccepted(base, a); err != nil || !may {
			t.Fatalf("accepted nonce %d: mayBeAccepted %v, %v", a.Nonce, may, err)
		}
		_, err := e.vm.IssueTx(a.Bytes())
		mustIs(t, err, ErrAlreadyAccepted)
	}
	fresh := e.sign(alice, &tx.CreateChannel{Name: "fresh", JoinPolicy: tx.PolicyOpen})
	if may, err := mayBeAccepted(base, fresh); err != nil || may {
		t.Fatalf("fresh nonce %d: mayBeAccepted %v, %v", fresh.Nonce, may, err)
	}
	e.issue(fresh)
	_, err := e.vm.IssueTx(fresh.Bytes())
	mustIs(t, err, mempool.ErrDuplicate)
	e.accept()
	_, err = e.vm.IssueTx(fresh.Bytes())
	mustIs(t, err, ErrAlreadyAccepted)
	for _, a := range accepted {
		_, err := e.vm.IssueTx(a.Bytes())
		mustIs(t, err, ErrAlreadyAccepted)
	}
	// A registration (nonce 0 of an author not yet known) is looked up.
	newcomer := identity(t, 7)
	reg, _ := e.registration(newcomer, 0)
	if may, err := mayBeAccepted(base, e.sign(newcomer, reg)); err != nil || !may {
		t.Fatalf("registration: mayBeAccepted %v, %v", may, err)
	}
}
