package node

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// BenchmarkNodeHTTPSendMessage measures the standalone node end to end:
// pre-signed 256-byte SendMessage transactions submitted over loopback HTTP
// (session.issueTx) by one client per author, until every one is in an
// accepted block on the on-disk database. Run with a fixed count, e.g.
//
//	go test ./node -run '^$' -bench NodeHTTP -benchtime 20000x
func BenchmarkNodeHTTPSendMessage(b *testing.B) {
	const authors = 32
	ids_ := make([]*crypto.Identity, authors)
	type ident struct {
		SessionID    string `json:"sessionId"`
		KEMPublicKey []byte `json:"kemPublicKey"`
		DSAPublicKey []byte `json:"dsaPublicKey"`
	}
	var initial []ident
	for i := range ids_ {
		var seed [32]byte
		seed[0], seed[1] = 0xbe, byte(i)
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			b.Fatal(err)
		}
		ids_[i] = id
		initial = append(initial, ident{id.SessionID, id.KEMPublicKey, id.DSAPublicKey})
	}
	genesis, err := json.Marshal(map[string]any{"timestamp": DefaultGenesisTimestamp, "identities": initial})
	if err != nil {
		b.Fatal(err)
	}
	delay := time.Duration(0) // the default
	if d, err := time.ParseDuration(os.Getenv("SESSIOND_BENCH_BUILD_DELAY")); err == nil {
		delay = d
	}
	n, err := Start(Config{DataDir: b.TempDir(), HTTPAddr: "127.0.0.1:0", Genesis: genesis, Logger: quietLogger(), BuildDelay: delay,
		VMConfig: []byte(`{"maxPendingPerAuthor": 65536, "maxPendingBytesPerAuthor": 268435456}`)})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Shutdown(context.Background())
	api, chainID := n.API(), n.ChainID()

	// Each author opens a session with the next one.
	sessions := make([]ids.ID, authors)
	for i, id := range ids_ {
		other, _ := crypto.ParseSessionID(ids_[(i+1)%authors].SessionID)
		t, err := tx.Sign(id, chainID, 0, &tx.CreateSession{Participants: []crypto.SessionID{other}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := api.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
		sessions[i] = tx.SessionIDFor(chainID, t.Author, 0)
	}
	// Author i+1 accepts author i's session (a message request from a
	// stranger), so every message makes an inbox entry.
	for i, id := range ids_ {
		t, err := tx.Sign(id, chainID, 1, &tx.AcceptSession{Session: sessions[(i+authors-1)%authors], Decision: tx.DecisionAccept})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := api.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	waitHeight(b, api, func(s vm.Status) bool { return s.AcceptedTxs == 2*authors })

	// Pre-sign b.N messages, round robin over authors, on every core.
	perAuthor := make([][][]byte, authors)
	for i := range b.N {
		perAuthor[i%authors] = append(perAuthor[i%authors], nil)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for a := range authors {
		for k := range perAuthor[a] {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				payload := make([]byte, 256)
				_, _ = rand.Read(payload)
				t, err := tx.Sign(ids_[a], chainID, uint64(k+2), &tx.SendMessage{Session: sessions[a], Ciphertext: payload})
				if err != nil {
					panic(err)
				}
				perAuthor[a][k] = t.Bytes()
			}()
		}
	}
	wg.Wait()
	before, _ := api.Status()

	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for a := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := service.NewClient(n.URL())
			for _, raw := range perAuthor[a] {
				for {
					_, err := c.IssueTx(context.Background(), raw)
					if err == nil {
						break
					}
					if !service.IsRetryable(err) {
						panic(err)
					}
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	want := before.Counts.MessagesTotal + uint64(b.N)
	after := waitHeight(b, api, func(s vm.Status) bool { return s.Counts.MessagesTotal >= want })
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(b.N)/float64(max(after.Height-before.Height, 1)), "msgs/block")
}

func waitHeight(b *testing.B, api vm.API, done func(vm.Status) bool) vm.Status {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		notify := api.AcceptedNotify()
		s, err := api.Status()
		if err != nil {
			b.Fatal(err)
		}
		if done(s) {
			return s
		}
		select {
		case <-notify:
		case <-time.After(time.Until(deadline)):
			b.Fatalf("timed out at %+v", s)
		}
	}
}
