package vm

import (
	"crypto/sha256"
	"testing"

	"github.com/luxfi/database"
	"github.com/luxfi/database/versiondb"

	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// BenchmarkBlockExecution isolates what the state commitment adds to a
// block's execution: the same block of 256-byte messages executed on an
// overlay of the accepted state, through the commitDB seam (hashing every
// write) and straight on the overlay. One op is one message; compare the
// ns/op of the two sub-benchmarks of one run.
func BenchmarkBlockExecution(b *testing.B) {
	const perBlock = 1024
	e := newEnv(b, map[string]any{"maxMessages": 1 << 30})
	alice, bob := identity(b, 0), identity(b, 1)
	session := e.createSession(alice, bob)
	payload := make([]byte, 256)
	txs := make([]*tx.Tx, perBlock)
	for i := range txs {
		txs[i] = e.signNonce(alice, uint64(1+i), &tx.SendMessage{Session: session, Ciphertext: payload})
	}
	c := e.vm.chain
	parent := c.lastAccepted
	height, ts := parent.Block.Height+1, parent.Block.Timestamp+1000
	run := func(b *testing.B, commit bool) {
		b.ReportAllocs()
		b.SetBytes(int64(txs[0].Size()))
		for done := 0; done < b.N; done += perBlock {
			overlay := versiondb.New(c.cache)
			var db database.Database = overlay
			var w *commitDB
			if commit {
				w = newCommitDB(overlay, parent.Block.StateCommitment, height)
				db = w
			}
			st := state.New(db)
			st.Defer()
			n := min(perBlock, b.N-done)
			if err := executeBlock(st, c.execContext(height, ts, parent.ID()), txs[:n]); err != nil {
				b.Fatal(err)
			}
			if commit {
				_ = w.sum()
			}
			overlay.Abort()
		}
	}
	b.Run("commitment", func(b *testing.B) { run(b, true) })
	b.Run("plain", func(b *testing.B) { run(b, false) })

	// The hashing alone, over the writes the block makes.
	overlay := versiondb.New(c.cache)
	defer overlay.Abort()
	rec := &recordingDB{Database: overlay}
	st := state.New(rec)
	st.Defer()
	if err := executeBlock(st, c.execContext(height, ts, parent.ID()), txs); err != nil {
		b.Fatal(err)
	}
	logged := 0
	for _, op := range rec.ops {
		logged += 9 + len(op.key) + len(op.value)
	}
	// The raw primitive: SHA-256 over the same bytes in one buffer.
	flat := make([]byte, 0, logged)
	for _, op := range rec.ops {
		flat = append(flat, make([]byte, 9)...)
		flat = append(flat, op.key...)
		flat = append(flat, op.value...)
	}
	b.Run("sha256Raw", func(b *testing.B) {
		b.ReportAllocs()
		for done := 0; done < b.N; done += perBlock {
			n := len(flat) * min(perBlock, b.N-done) / perBlock
			_ = sha256.Sum256(flat[:n])
		}
	})
	b.Run("hashOnly", func(b *testing.B) {
		b.ReportAllocs()
		b.ReportMetric(float64(logged)/perBlock, "logged-B/msg")
		for done := 0; done < b.N; done += perBlock {
			w := newCommitDB(nil, parent.Block.StateCommitment, height)
			n := len(rec.ops) * min(perBlock, b.N-done) / perBlock
			for _, op := range rec.ops[:n] {
				if op.del {
					w.logDelete(op.key)
				} else {
					w.logPut(op.key, op.value)
				}
			}
			_ = w.sum()
		}
	})
}
