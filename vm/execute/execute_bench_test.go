package execute_test

import (
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// BenchmarkSendMessage executes SendMessage transactions (256-byte
// payloads, signatures not checked here) on a versiondb overlay over
// memdb, a new overlay every 200 transactions as blocks do.
func BenchmarkSendMessage(b *testing.B) {
	chainID := ids.ID{1}
	var ids2 [2]crypto.SessionID
	base := memdb.New()
	st := state.New(base)
	for i := range ids2 {
		var seed [crypto.SeedSize]byte
		seed[0] = byte(i + 1)
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			b.Fatal(err)
		}
		if ids2[i], err = crypto.ParseSessionID(id.SessionID); err != nil {
			b.Fatal(err)
		}
		if err := st.PutIdentity(&state.Identity{ID: ids2[i], KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}); err != nil {
			b.Fatal(err)
		}
	}
	cfg := config.Default()
	cfg.MaxMessages = 1 << 30 // b.N messages go to one session
	// from one author in one block's time: above any person's rate.
	cfg.RateLimits.Messages = config.Bucket{Burst: 1 << 30, RefillSeconds: 1}
	ctx := execute.Context{ChainID: chainID, Config: cfg, Height: 1, Timestamp: 1000}
	create := mustTx(b, tx.Unsigned{ChainID: chainID, Author: ids2[0], Nonce: 0, Payload: &tx.CreateSession{Participants: []crypto.SessionID{ids2[1]}}})
	if err := execute.Tx(st, ctx, 0, create); err != nil {
		b.Fatal(err)
	}
	session := tx.SessionIDFor(chainID, ids2[0], 0)
	// The recipient accepts (it was a stranger's request), so every
	// message makes an inbox entry.
	if err := execute.Tx(st, ctx, 1, mustTx(b, tx.Unsigned{ChainID: chainID, Author: ids2[1], Nonce: 0, Payload: &tx.AcceptSession{Session: session}})); err != nil {
		b.Fatal(err)
	}
	txs := make([]*tx.Tx, b.N)
	for i := range txs {
		txs[i] = mustTx(b, tx.Unsigned{ChainID: chainID, Author: ids2[0], Nonce: uint64(1 + i), Payload: &tx.SendMessage{Session: session, Ciphertext: make([]byte, 256)}})
	}
	b.ReportAllocs()
	b.ResetTimer()
	var overlay *versiondb.Database
	var ost *state.State
	for i, t := range txs {
		if i%200 == 0 {
			if overlay != nil {
				if err := overlay.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			overlay = versiondb.New(base)
			ost = state.New(overlay)
			ctx.Height++
		}
		if err := execute.Tx(ost, ctx, uint32(i%200), t); err != nil {
			b.Fatal(err)
		}
	}
}

// mustTx makes a transaction with an all-zero signature.
func mustTx(b *testing.B, u tx.Unsigned) *tx.Tx {
	raw := append(u.Bytes(), make([]byte, crypto.SignatureSize)...)
	t, err := tx.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	return t
}
