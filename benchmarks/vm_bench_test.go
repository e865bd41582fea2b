package benchmarks

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"
	"github.com/luxfi/log"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// vmBenchAuthors is the number of identities sending messages; each sends
// to its own session with the next one.
const vmBenchAuthors = 64

// BenchmarkVMSendMessage measures signed SendMessage transactions with
// 256-byte payloads going through a single-validator chain on the on-disk
// database (BadgerDB): concurrent IssueTx (parse, signature verification,
// admission) while a builder loops BuildBlock + Verify + Accept. One op is
// one message. It reports, from the same run:
//
//	msgs/s            the builder node's end-to-end rate
//	verify/s          bare ML-DSA-65 verification on all cores (GOMAXPROCS
//	                  goroutines, keys parsed once): the bound
//	%bound            msgs/s as a percentage of verify/s
//	validator-msgs/s  a second node on its own on-disk database, with cold
//	                  caches, running ParseBlock + Verify (signatures in
//	                  parallel) + Accept on the same blocks
//
// Signing is done before the timer starts. Run with a fixed count, e.g.
//
//	go test ./benchmarks -run XXX -bench VMSendMessage -benchtime 20000x
func BenchmarkVMSendMessage(b *testing.B) {
	ctx := context.Background()
	authors := make([]*crypto.Identity, vmBenchAuthors)
	sids := make([]crypto.SessionID, vmBenchAuthors)
	type ident struct {
		SessionID    string `json:"sessionId"`
		KEMPublicKey []byte `json:"kemPublicKey"`
		DSAPublicKey []byte `json:"dsaPublicKey"`
	}
	var initial []ident
	for i := range authors {
		var seed [32]byte
		seed[0], seed[1] = 0xbe, byte(i)
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			b.Fatal(err)
		}
		authors[i] = id
		if sids[i], err = crypto.ParseSessionID(id.SessionID); err != nil {
			b.Fatal(err)
		}
		initial = append(initial, ident{id.SessionID, id.KEMPublicKey, id.DSAPublicKey})
	}
	genesis, err := json.Marshal(map[string]any{
		"timestamp":  time.Now().Unix() - 60,
		"config":     map[string]any{"maxMessages": 1 << 30},
		"identities": initial,
	})
	if err != nil {
		b.Fatal(err)
	}
	nodeCfg := []byte(`{"mempoolTxs":1000000,"mempoolBytes":8589934592,"maxPendingPerAuthor":1000000,"maxPendingBytesPerAuthor":8589934592}`)
	open := func() *vm.VM {
		db, err := vm.OpenDB(b.TempDir(), vm.DBOptions{})
		if err != nil {
			b.Fatal(err)
		}
		v := vm.New()
		if err := v.Initialize(ctx, nil, db, genesis, nil, nodeCfg, nil, nil, nil); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = v.Shutdown(ctx) })
		return v
	}
	builder := open()
	chainID := builder.ChainID()

	// Sessions: author i with author i+1.
	sessions := make([]ids.ID, vmBenchAuthors)
	var setupBlocks [][]byte
	for i, a := range authors {
		t, err := tx.Sign(a, chainID, 0, &tx.CreateSession{Participants: []crypto.SessionID{sids[(i+1)%vmBenchAuthors]}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := builder.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
		sessions[i] = tx.SessionIDFor(chainID, sids[i], 0)
	}
	// Author i+1 accepts author i's session (they are strangers: it came
	// as a message request), so every message makes an inbox entry.
	for i, a := range authors {
		prev := (i + vmBenchAuthors - 1) % vmBenchAuthors
		t, err := tx.Sign(a, chainID, 1, &tx.AcceptSession{Session: sessions[prev], Decision: tx.DecisionAccept})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := builder.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	for {
		blk, err := builder.BuildAndAccept(ctx)
		if errors.Is(err, vm.ErrNoPendingTxs) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		setupBlocks = append(setupBlocks, blk.Bytes())
	}

	// Pre-sign b.N messages on all cores, round-robin over authors.
	payload := make([]byte, 256)
	txs := make([]*tx.Tx, b.N)
	parallel(len(txs), func(i int) {
		a := i % vmBenchAuthors
		t, err := tx.Sign(authors[a], chainID, uint64(2+i/vmBenchAuthors), &tx.SendMessage{Session: sessions[a], Ciphertext: payload})
		if err != nil {
			panic(err)
		}
		txs[i] = t
	})

	// The bound: bare verification of these signatures on all cores.
	keys := make([]*crypto.DSAPublicKey, vmBenchAuthors)
	for i, a := range authors {
		if keys[i], err = crypto.ParseDSAPublicKey(a.DSAPublicKey); err != nil {
			b.Fatal(err)
		}
	}
	// Measured before and after the VM phases (other load on the machine
	// moves it); the mean is reported.
	bound := func() float64 {
		start := time.Now()
		parallel(len(txs), func(i int) {
			if !txs[i].VerifySignature(keys[i%vmBenchAuthors]) {
				panic("bad signature")
			}
		})
		return float64(len(txs)) / time.Since(start).Seconds()
	}
	verifyBefore := bound()

	// Builder node: issuers (one per core, each owning whole authors so
	// nonces arrive in order) while one goroutine builds and accepts. More
	// submitters than cores only take CPU time from the builder.
	b.ReportAllocs()
	b.ResetTimer()
	cpuStart := processCPU()
	start := time.Now()
	var issued atomic.Int64
	var issueErr atomic.Value
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0) // one submitter per core
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := range txs {
				if (i%vmBenchAuthors)%workers != w {
					continue
				}
				if _, err := builder.IssueTx(txs[i].Bytes()); err != nil {
					issueErr.Store(err)
					return
				}
				issued.Add(1)
			}
		}(w)
	}
	var blocks [][]byte
	accepted := 0
	for accepted < len(txs) {
		if err, _ := issueErr.Load().(error); err != nil {
			b.Fatal(err)
		}
		blk, err := builder.BuildAndAccept(ctx)
		if errors.Is(err, vm.ErrNoPendingTxs) {
			// Wait as a node's engine does, instead of spinning on a core
			// the submitters need.
			if _, err := builder.WaitForEvent(ctx); err != nil {
				b.Fatal(err)
			}
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		accepted += len(blk.Txs)
		blocks = append(blocks, blk.Bytes())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	wg.Wait()
	cpu := processCPU() - cpuStart
	rate := float64(len(txs)) / elapsed.Seconds()

	// Validator node: same blocks, cold caches, on its own disk database.
	validator := open()
	for _, raw := range setupBlocks {
		acceptRaw(b, validator, raw)
	}
	start = time.Now()
	for _, raw := range blocks {
		acceptRaw(b, validator, raw)
	}
	validatorRate := float64(len(txs)) / time.Since(start).Seconds()
	st, _ := validator.Status()
	if st.Counts.MessagesTotal != uint64(len(txs)) {
		b.Fatalf("validator holds %d messages, want %d", st.Counts.MessagesTotal, len(txs))
	}

	verifyRate := (verifyBefore + bound()) / 2
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(verifyRate, "verify/s")
	b.ReportMetric(100*rate/verifyRate, "%bound")
	b.ReportMetric(validatorRate, "validator-msgs/s")
	b.ReportMetric(float64(len(txs))/float64(len(blocks)), "msgs/block")
	// CPU time of the whole process per message in the builder phase
	// (verification included): robust to other load on the machine.
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(txs)), "cpu-µs/msg")
}

func acceptRaw(b *testing.B, v *vm.VM, raw []byte) {
	ctx := context.Background()
	blk, err := v.ParseBlock(ctx, raw)
	if err != nil {
		b.Fatal(err)
	}
	if err := blk.Verify(ctx); err != nil {
		b.Fatal(err)
	}
	if err := blk.Accept(ctx); err != nil {
		b.Fatal(err)
	}
	if err := v.SetPreference(ctx, blk.ID()); err != nil {
		b.Fatal(err)
	}
}

// processCPU returns the user+system CPU time of this process.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallel runs f(0..n-1) on every core.
func parallel(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// BadgerDB logs at INFO through the global luxfi/log logger when it opens
// and closes; keep benchmark output readable.
func init() { log.SetDefault(log.NewNoOpLogger()); log.SetGlobalLogger(log.NewNoOpLogger()) }
