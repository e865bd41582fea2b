package service

import (
	"context"
	"testing"

	"github.com/luxfi/session/vm/tx"
)

// BenchmarkRPC measures the API over loopback HTTP: status is the bare
// JSON-RPC round trip; sendMessage adds admission of a pre-signed 256-byte
// message (parse, ML-DSA-65 verification, execution on the pool overlay),
// with blocks built by vm.Run in the background.
func BenchmarkRPC(b *testing.B) {
	ctx := context.Background()
	b.Run("status", func(b *testing.B) {
		e := newEnv(b)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := e.client.Status(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("sendMessage", func(b *testing.B) {
		e := newEnvWith(b, envOpts{nodeConfig: `{"mempoolTxs": 4000000, "maxPendingPerAuthor": 4000000, "maxPendingBytesPerAuthor": 268435456}`})
		sess := e.session(e.alice, e.bob)
		n0, err := e.client.Nonce(ctx, e.alice.SessionID)
		if err != nil {
			b.Fatal(err)
		}
		signed := make([][]byte, b.N)
		for i := range signed {
			t, err := tx.Sign(e.alice, e.vm.ChainID(), n0+uint64(i), &tx.SendMessage{Session: sess, Ciphertext: make([]byte, 256)})
			if err != nil {
				b.Fatal(err)
			}
			signed[i] = t.Bytes()
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- e.vm.Run(runCtx) }()
		b.SetBytes(256)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range signed {
			if _, err := e.client.SendMessageTx(ctx, signed[i]); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		stop()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	})
}
