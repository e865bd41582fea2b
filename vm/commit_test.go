package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// blockFor returns the block an honest peer would propose with these
// fields: its state commitment comes from executing txs on the parent's
// state (nothing is kept). When the parent is unusable or a transaction is
// refused the commitment is left zero: such a block is refused before its
// commitment is compared.
func (e *env) blockFor(parent ids.ID, height uint64, ts int64, txs []*tx.Tx) (*block.Block, error) {
	c := e.vm.chain
	c.mu.Lock()
	defer c.mu.Unlock()
	var commitment [block.CommitmentSize]byte
	if p, db, err := c.parentOf(&block.Block{ParentID: parent}); err == nil {
		overlay := versiondb.New(db)
		defer overlay.Abort()
		w := newCommitDB(overlay, p.Block.StateCommitment, height)
		st := state.New(w)
		st.Defer()
		if executeBlock(st, c.execContext(height, ts, parent), txs) == nil {
			commitment = w.sum()
		}
	}
	return block.New(parent, height, ts, commitment, txs)
}

// twins starts two VMs on the same genesis and clock: two nodes of one
// network.
func twins(t *testing.T) (a, b *env) {
	t.Helper()
	g := genesisJSON(t, nil, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3))
	clock := newTestClock()
	a = newEnvDB(t, memdb.New(), g, clock)
	b = newEnvDB(t, memdb.New(), g, clock)
	return a, b
}

// relay has to verify and accept a block that from built and accepted.
func relay(t *testing.T, from *Block, to *env) {
	t.Helper()
	ctx := context.Background()
	pb, err := to.vm.ParseBlock(ctx, from.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := pb.Verify(ctx); err != nil {
		t.Fatalf("peer refused block %d: %v", from.Height(), err)
	}
	if err := pb.Accept(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestDivergentNodeRefusedAtVerify: a node whose execution stamps messages
// with its wall clock instead of the block time (the mutation that once
// left every node agreeing on block IDs and bytes while their stored
// messages differed) computes another state commitment, so its blocks are
// refused by honest nodes at Verify, and it refuses theirs, before anything
// is accepted.
func TestDivergentNodeRefusedAtVerify(t *testing.T) {
	ctx := context.Background()
	honest, divergent := twins(t)
	if g1, g2 := honest.vm.chain.lastAccepted, divergent.vm.chain.lastAccepted; g1.ID() != g2.ID() {
		t.Fatalf("same genesis, different genesis blocks %s %s", g1.ID(), g2.ID())
	}
	alice, bob := identity(t, 0), identity(t, 1)
	// While both execute alike, the chains agree block by block.
	session := honest.createSession(alice, bob)
	relay(t, honest.vm.chain.lastAccepted, divergent)

	// Its clock reads a few milliseconds past the block's time when it
	// executes, and it uses that instead of the block's time.
	divergent.vm.chain.divergeForTest = func(c execute.Context) execute.Context {
		c.Timestamp = divergent.clock.Now().Add(5 * time.Millisecond).UnixMilli()
		return c
	}

	// The honest node's block: same bytes everywhere, refused by the
	// divergent node because its own execution commits to another state.
	m := honest.sign(alice, &tx.SendMessage{Session: session, Ciphertext: []byte("hi")})
	honest.issue(m)
	good := honest.accept()
	pb, err := divergent.vm.ParseBlock(ctx, good.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	mustIs(t, pb.Verify(ctx), ErrStateMismatch)
	mustIs(t, pb.Accept(ctx), ErrNotVerified)
	if divergent.vm.chain.processingCount() != 0 || divergent.vm.chain.lastAccepted.Height() != good.Height()-1 {
		t.Fatal("the divergent node kept the refused block")
	}

	// The divergent node's own block (same transaction, its own state) is
	// refused by the honest node.
	divergent.issue(m)
	divergent.clock.Advance(time.Second)
	bad, err := divergent.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := bad.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	other := newEnvDB(t, memdb.New(), genesisJSON(t, nil, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3)), honest.clock)
	for h := uint64(1); h < good.Height(); h++ { // a third, honest node at the divergent node's height
		id, err := honest.vm.GetBlockIDAtHeight(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := honest.vm.GetBlock(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		relay(t, blk.(*Block), other)
	}
	pb, err = other.vm.ParseBlock(ctx, bad.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	err = pb.Verify(ctx)
	mustIs(t, err, ErrStateMismatch)
	if !strings.Contains(err.Error(), "this node computed") {
		t.Fatalf("error does not explain: %v", err)
	}
	// Without the mutation the same node agrees again.
	divergent.vm.chain.divergeForTest = nil
	if err := bad.Reject(ctx); err != nil {
		t.Fatal(err)
	}
	relay(t, good, divergent)
}

// recordingDB logs the writes made through it, in order.
type recordingDB struct {
	database.Database
	ops []recordedOp
}

type recordedOp struct {
	del        bool
	key, value []byte
}

func (r *recordingDB) Put(k, v []byte) error {
	r.ops = append(r.ops, recordedOp{key: bytes.Clone(k), value: bytes.Clone(v)})
	return r.Database.Put(k, v)
}

func (r *recordingDB) Delete(k []byte) error {
	r.ops = append(r.ops, recordedOp{del: true, key: bytes.Clone(k)})
	return r.Database.Delete(k)
}

// commitmentByDefinition computes a commitment from the documented
// formula, independently of commitDB.
func commitmentByDefinition(previous [32]byte, height uint64, ops []recordedOp) [32]byte {
	var msg []byte
	msg = append(msg, "luxfi/session/v1/state"...)
	msg = append(msg, previous[:]...)
	msg = binary.BigEndian.AppendUint64(msg, height)
	for _, op := range ops {
		if op.del {
			msg = append(msg, 2)
			msg = binary.BigEndian.AppendUint32(msg, uint32(len(op.key)))
			msg = append(msg, op.key...)
			continue
		}
		msg = append(msg, 1)
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(op.key)))
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(op.value)))
		msg = append(msg, op.key...)
		msg = append(msg, op.value...)
	}
	return sha256.Sum256(msg)
}

// TestCommitmentDefinition checks the commitments of the genesis block and
// of a block against the formula in LLM.md, over the writes that executing
// them makes, and that those writes reach every namespace the block
// changes.
func TestCommitmentDefinition(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, nil)
	genesisBlock := e.vm.chain.lastAccepted

	rec := &recordingDB{Database: memdb.New()}
	if err := e.vm.genesis.Apply(state.New(rec)); err != nil {
		t.Fatal(err)
	}
	if got := commitmentByDefinition(e.vm.genesis.Hash, 0, rec.ops); got != genesisBlock.Block.StateCommitment {
		t.Fatalf("genesis commitment %x, by definition %x", genesisBlock.Block.StateCommitment, got)
	}
	if genesisBlock.Block.StateCommitment == ([32]byte{}) || len(rec.ops) < 4 {
		t.Fatalf("genesis made %d writes", len(rec.ops))
	}

	alice, bob := identity(t, 0), identity(t, 1)
	session := e.createSession(alice, bob)
	e.issue(e.sign(bob, &tx.SendMessage{Session: session, Ciphertext: []byte("to alice")}))
	e.issue(e.sign(alice, &tx.CreateChannel{Name: "general"}))
	e.clock.Advance(time.Second)
	sb, err := e.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b := sb.(*Block)
	parent := e.vm.chain.lastAccepted
	overlay := versiondb.New(e.vm.chain.cache)
	defer overlay.Abort()
	rec = &recordingDB{Database: overlay}
	st := state.New(rec)
	st.Defer()
	if err := executeBlock(st, e.vm.chain.execContext(b.Height(), b.Block.Timestamp, parent.ID()), b.Txs); err != nil {
		t.Fatal(err)
	}
	if got := commitmentByDefinition(parent.Block.StateCommitment, b.Height(), rec.ops); got != b.Block.StateCommitment {
		t.Fatalf("block commitment %x, by definition %x", b.Block.StateCommitment, got)
	}
	namespaces := map[byte]bool{}
	for _, op := range rec.ops {
		namespaces[op.key[0]] = true
	}
	for _, ns := range "ngxrchem" { // nonces, messages, inbox, retention, counters, channels, members, meta
		if !namespaces[byte(ns)] {
			t.Errorf("the block's writes miss namespace %q (wrote %d keys)", ns, len(rec.ops))
		}
	}
	// The transaction count is part of the committed state.
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	st2, err := e.vm.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st2.Counts.TxsAccepted != 3 || st2.AcceptedTxs != 3 {
		t.Fatalf("txsAccepted %d, acceptedTxs %d; want 3 (create session, message, channel)", st2.Counts.TxsAccepted, st2.AcceptedTxs)
	}
}

// TestBuiltAroundRefusalsVerifiesOnPeer: a block the builder made while
// refusing transactions (one whose session expired between admission and
// the block, and the same author's next one behind it) commits to exactly
// the writes of the transactions it holds, so a peer verifies it: a
// refused transaction leaves nothing in the builder's state or commitment.
func TestBuiltAroundRefusalsVerifiesOnPeer(t *testing.T) {
	g := genesisJSON(t, map[string]any{"sessionTTL": 60}, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3))
	clock := newTestClock()
	a := newEnvDB(t, memdb.New(), g, clock)
	b := newEnvDB(t, memdb.New(), g, clock)
	alice, bob, carol := identity(t, 0), identity(t, 1), identity(t, 2)
	s := a.createSession(alice, bob)
	relay(t, a.vm.chain.lastAccepted, b)
	late := a.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("late")})
	a.issue(late)
	behind := a.sign(alice, &tx.CreateChannel{Name: "behind"})
	a.issue(behind)
	ok := a.sign(carol, &tx.CreateChannel{Name: "fine"})
	a.issue(ok)
	clock.Advance(2 * time.Minute) // the session expires before the block
	sb, err := a.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blk := sb.(*Block)
	if len(blk.Txs) != 1 || blk.Txs[0].ID() != ok.ID() {
		t.Fatalf("block holds %d transactions, want only carol's", len(blk.Txs))
	}
	if err := blk.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	relay(t, blk, b)
}
