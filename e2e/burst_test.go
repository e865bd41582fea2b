package e2e

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// setupBurst registers authors identities, has author i open a session
// with author i+1, and pre-signs perAuthor messages for each (nonces 2,
// 3, ...: 0 registered, 1 created the session).
func setupBurst(t *testing.T, c *service.Client, authors, perAuthor, payloadBytes int) ([]*crypto.Identity, []ids.ID, [][]*tx.Tx) {
	t.Helper()
	chainID, err := c.ChainID(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// Authors register; author i opens a session with author i+1, who
	// accepts it: nonces 0, 1 and 2, so messages start at 3.
	people := make([]*crypto.Identity, authors)
	var regs []*service.TxReply
	for i := range people {
		if people[i], err = crypto.GenerateIdentity(); err != nil {
			t.Fatal(err)
		}
		r, err := c.Register(ctx(t, 10*time.Second), people[i])
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, r)
	}
	waitAll(t, c, regs...)
	sessions := make([]ids.ID, authors)
	var creates []*service.TxReply
	for i, p := range people {
		r, err := c.CreateSession(ctx(t, 10*time.Second), p, people[(i+1)%authors].SessionID)
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = r.Session
		creates = append(creates, r)
	}
	waitAll(t, c, creates...)
	// Each peer accepts (a message request stops after a few messages).
	var accepts []*service.TxReply
	for i, s := range sessions {
		r, err := c.AcceptSession(ctx(t, 10*time.Second), people[(i+1)%authors], s)
		if err != nil {
			t.Fatal(err)
		}
		accepts = append(accepts, r)
	}
	waitAll(t, c, accepts...)

	signed := make([][]*tx.Tx, authors)
	var wg sync.WaitGroup
	for i := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range perAuthor {
				payload := make([]byte, payloadBytes)
				copy(payload, fmt.Sprintf("author %d message %d", i, k))
				t2, err := tx.Sign(people[i], chainID, uint64(3+k), &tx.SendMessage{Session: sessions[i], Ciphertext: payload})
				if err != nil {
					t.Error(err)
					return
				}
				signed[i] = append(signed[i], t2)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	return people, sessions, signed
}

// TestTermDuringBurst stops sessiond with SIGTERM while clients are
// sending: the node stops taking requests, builds what it had admitted and
// exits cleanly, so after a restart every message whose issueTx returned
// success (admitted, pending) is accepted — nothing admitted is lost.
func TestTermDuringBurst(t *testing.T) {
	testenv.Long(t) // a load test: SESSION_LONG_TESTS=1
	t.Parallel()
	const authors, perAuthor = 6, 200
	dataDir := t.TempDir()
	proc := StartProcess(t, sessiondBin, dataDir)
	c := newClient(proc.URL)
	people, sessions, signed := setupBurst(t, c, authors, perAuthor, 256)

	admitted := make([]int, authors) // per author: how many issueTx calls succeeded
	var total atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k, t2 := range signed[i] {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := c.IssueTx(context.Background(), t2.Bytes()); err != nil {
					return // the node is stopping
				}
				admitted[i] = k + 1
				total.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for total.Load() < authors*perAuthor/3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d admitted in 60s", total.Load())
		}
		time.Sleep(time.Millisecond)
	}
	code, err := proc.Signal(syscall.SIGTERM, 60*time.Second)
	close(stop)
	wg.Wait()
	if err != nil || code != 0 {
		t.Fatalf("SIGTERM during a burst: exit %d, %v\n%s", code, err, proc.Logs())
	}
	t.Logf("SIGTERM after %d of %d messages were admitted", total.Load(), authors*perAuthor)

	proc = StartProcess(t, sessiondBin, dataDir)
	c = newClient(proc.URL)
	st, err := c.Status(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.MempoolTxs != 0 {
		t.Fatalf("%d transactions pending after a restart", st.MempoolTxs)
	}
	for i := range people {
		si, err := c.Session(ctx(t, 10*time.Second), sessions[i])
		if err != nil {
			t.Fatal(err)
		}
		if si.LastSeq < uint64(admitted[i]) {
			t.Errorf("author %d: %d messages admitted before SIGTERM, %d on chain after the restart", i, admitted[i], si.LastSeq)
		}
		for k := range admitted[i] {
			s, err := c.TxStatus(ctx(t, 10*time.Second), signed[i][k].ID())
			if err != nil {
				t.Fatal(err)
			}
			if s.Status != service.TxAccepted {
				t.Fatalf("author %d message %d: admitted before SIGTERM, %s after the restart", i, k, s.Status)
			}
		}
	}
}
