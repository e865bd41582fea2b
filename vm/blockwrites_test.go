package vm

import (
	"context"
	"errors"
	"fmt"
	"testing"

	badger "github.com/dgraph-io/badger/v4"
	"github.com/luxfi/database"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// seedDueMessages stores, in db, one session of config.MaxParticipants
// participants with n messages (blocks of per) sent at time ts, and
// returns the session.
func seedDueMessages(t *testing.T, db database.Database, n, per int, ts int64) *state.Session {
	t.Helper()
	parts := make([]crypto.SessionID, config.MaxParticipants)
	for i := range parts {
		parts[i] = crypto.SessionID{Prefix: 0x07, Digest: [32]byte{byte(i + 1), 0xaa}}
	}
	sess := &state.Session{ID: ids.ID{0x5e}, Creator: parts[0], Participants: parts, ExpiresAt: 1 << 60}
	if err := state.New(db).PutSession(sess); err != nil {
		t.Fatal(err)
	}
	ct := make([]byte, 64)
	for h := 0; h*per < n; h++ {
		overlay := versiondb.New(db)
		st := state.New(overlay)
		st.Defer()
		for i := 0; i < per && h*per+i < n; i++ {
			m := &state.Message{Target: sess.ID, Author: parts[0], Height: uint64(h + 1),
				Position: state.Position(uint64(h+1), uint32(i)), Timestamp: ts, Ciphertext: ct}
			if _, err := st.AppendMessage(state.KindSession, m, parts[1:]); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := overlay.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return sess
}

// TestRetentionBatchFitsDatabase: a block is committed as one batch, and
// the on-disk database refuses a batch beyond its limit (BadgerDB: 15 % of
// a memtable, about 104,000 entries with OpenDB's 64 MiB). Retention of
// 8,192 expired messages of 32-participant sessions (the items a block's
// retention took then, 31 inbox entries each) was such a batch: the block that pruned
// them could never be accepted, and a chain where anyone let that many
// expire at once halted. Retention now stops at
// config.MaxPruneWritesPerBlock writes; the block commits, and the
// following blocks take the rest.
//
// The quick run scales the database down (16 MiB memtables: 26,000
// entries, above what a bounded retention writes) and queues 1,024
// messages; SESSION_LONG_TESTS=1 runs it as shipped, with 8,192 (28 s
// under -race).
func TestRetentionBatchFitsDatabase(t *testing.T) {
	opts, n := DBOptions{memTableSize: 16 << 20}, 1024
	if testenv.LongEnabled() {
		opts, n = DBOptions{}, 8192
	}
	db, err := openBadger(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	seedDueMessages(t, db, n, 512, 1_000)
	cfg := config.Default()
	ctx := execute.Context{Config: cfg, Height: 100, Timestamp: 1_000 + cfg.RetentionMillis() + 1, ParentID: ids.ID{1}}

	// Without the bound on writes: the batch the database refuses.
	overlay := versiondb.New(db)
	st := state.New(overlay)
	if took, err := st.PruneMessages(ctx.Timestamp-cfg.RetentionMillis(), n); err != nil || took != n {
		t.Fatalf("unbounded prune took %d, %v", took, err)
	}
	batch, err := overlay.CommitBatch()
	if err != nil {
		t.Fatal(err)
	}
	if err := batch.Write(); !errors.Is(err, badger.ErrTxnTooBig) {
		t.Fatalf("a batch of %d writes: %v, want the database's refusal (else this test no longer shows why the bound exists)", st.Writes(), err)
	}
	overlay.Abort()

	// Block by block, as execution does.
	removed := 0
	for blocks := 1; ; blocks++ {
		overlay := versiondb.New(db)
		writes := newCommitDB(overlay, [32]byte{}, ctx.Height)
		st := state.New(writes)
		st.Defer()
		if err := execute.BeginBlock(st, ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := writes.overBudget(defaultWriteBounds); err != nil {
			t.Fatalf("block %d: %v", blocks, err)
		}
		if limit := config.MaxPruneWritesPerBlock + config.MaxParticipants + 16; writes.ops > limit {
			t.Fatalf("block %d: retention wrote %d, bound %d", blocks, writes.ops, limit)
		}
		batch, err := overlay.CommitBatch()
		if err != nil {
			t.Fatal(err)
		}
		if err := batch.Write(); err != nil {
			t.Fatalf("block %d (%d writes): %v", blocks, writes.ops, err)
		}
		overlay.Abort()
		counts, err := state.New(db).Counts()
		if err != nil {
			t.Fatal(err)
		}
		if int(counts.MessagesPruned) <= removed {
			t.Fatalf("block %d removed nothing (%d so far)", blocks, removed)
		}
		removed = int(counts.MessagesPruned)
		ctx.Height++
		if removed == n {
			if blocks < 2 {
				t.Fatal("one block took everything: the bound did not act")
			}
			if counts.MessagesStored != 0 {
				t.Fatalf("%d messages still stored", counts.MessagesStored)
			}
			t.Logf("%d messages of %d participants pruned in %d blocks", n, config.MaxParticipants, blocks)
			return
		}
		if blocks > n {
			t.Fatal("retention does not finish")
		}
	}
}

// TestBlockWriteBoundsAtVerify: a node refuses, at Verify, a block whose
// state writes exceed its bounds, and the builder keeps its blocks within
// them (building again with half the transactions when the reserves were
// not enough).
func TestBlockWriteBoundsAtVerify(t *testing.T) {
	ctx := context.Background()
	builder, strict := twins(t)
	alice, bob := identity(t, 0), identity(t, 1)
	session := builder.createSession(alice, bob)
	relay(t, builder.vm.chain.lastAccepted, strict)

	const msgs = 8
	var sent []*tx.Tx
	for i := 0; i < msgs; i++ {
		m := builder.sign(alice, &tx.SendMessage{Session: session, Ciphertext: []byte(fmt.Sprint("message ", i))})
		builder.issue(m)
		sent = append(sent, m)
	}
	big, err := builder.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	blk := big.(*Block)
	if len(blk.Txs) != msgs || blk.writes < msgs*3 {
		t.Fatalf("block of %d transactions, %d writes", len(blk.Txs), blk.writes)
	}

	// A node whose bound is below the block's writes refuses it.
	strict.vm.chain.bounds = writeBounds{ops: blk.writes - 1, bytes: config.MaxBlockWriteBytes}
	pb, err := strict.vm.ParseBlock(ctx, blk.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	mustIs(t, pb.Verify(ctx), ErrBlockWrites)
	if strict.vm.chain.processingCount() != 0 {
		t.Fatal("the refused block is processing")
	}
	// Bytes too.
	strict.vm.chain.bounds = writeBounds{ops: config.MaxBlockWrites, bytes: 100}
	mustIs(t, pb.Verify(ctx), ErrBlockWrites)

	// The same node builds within its bounds: with no reserve the first
	// attempt ends beyond them, and the second, with half the
	// transactions, fits; every message still gets in.
	if err := blk.Reject(ctx); err != nil {
		t.Fatal(err)
	}
	bound := blk.writes * 3 / 4
	builder.vm.chain.bounds = writeBounds{ops: bound, bytes: config.MaxBlockWriteBytes}
	strict.vm.chain.bounds = builder.vm.chain.bounds
	in := 0
	for blocks := 0; in < msgs; blocks++ {
		if blocks == msgs {
			t.Fatal("messages left out")
		}
		b, err := builder.vm.BuildBlock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		small := b.(*Block)
		if len(small.Txs) == msgs || small.writes > bound {
			t.Fatalf("built %d transactions with %d writes, bound %d", len(small.Txs), small.writes, bound)
		}
		if err := small.Accept(ctx); err != nil {
			t.Fatal(err)
		}
		relay(t, small, strict) // verifies under the same bounds
		in += len(small.Txs)
	}
	for _, m := range sent {
		if _, _, err := strict.vm.Tx(m.ID()); err != nil {
			t.Fatalf("message %s: %v", m.ID(), err)
		}
	}
}
