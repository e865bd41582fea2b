package e2e

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/internal/testenv"
	"github.com/luxfi/session/service"
)

// TestKillDuringBurst kills sessiond with SIGKILL while many clients are
// sending pre-signed messages, restarts it on the same data directory, and
// checks that every message whose transaction the node had reported
// accepted (getTxStatus) is still there, at the same height, and that the
// chain goes on accepting transactions.
func TestKillDuringBurst(t *testing.T) {
	testenv.Long(t) // a load test: SESSION_LONG_TESTS=1
	t.Parallel()
	const (
		authors      = 8
		perAuthor    = 150
		killAfter    = 300 // accepted messages seen before the kill
		payloadBytes = 256
	)
	dataDir := t.TempDir()
	proc := StartProcess(t, sessiondBin, dataDir)
	c := newClient(proc.URL)
	people, sessions, signed := setupBurst(t, c, authors, perAuthor, payloadBytes)

	// The burst: per author, one goroutine issues its transactions back to
	// back and another waits for each in order, recording the accepted ones.
	type acceptedTx struct {
		author, index int
		height        uint64
	}
	var (
		mu       sync.Mutex
		accepted = map[ids.ID]acceptedTx{}
		nAcc     atomic.Int64
	)
	burstCtx, stopBurst := context.WithCancel(context.Background())
	defer stopBurst()
	var burst sync.WaitGroup
	for i := range people {
		issued := make(chan int, perAuthor)
		burst.Add(2)
		go func() {
			defer burst.Done()
			defer close(issued)
			for k, t2 := range signed[i] {
				if _, err := c.IssueTx(burstCtx, t2.Bytes()); err != nil {
					return // the node died
				}
				issued <- k
			}
		}()
		go func() {
			defer burst.Done()
			for k := range issued {
				st, err := c.WaitAccepted(burstCtx, signed[i][k].ID())
				if err != nil {
					return
				}
				// A reply that arrives after the kill was sent was still
				// sent by the node before it died: it counts.
				mu.Lock()
				accepted[signed[i][k].ID()] = acceptedTx{i, k, st.Height}
				mu.Unlock()
				nAcc.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for nAcc.Load() < killAfter {
		if time.Now().After(deadline) {
			t.Fatalf("only %d messages accepted in 60s", nAcc.Load())
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := proc.Signal(syscall.SIGKILL, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	stopBurst()
	burst.Wait()
	mu.Lock()
	reported := accepted
	mu.Unlock()
	if len(reported) >= authors*perAuthor {
		t.Fatalf("every message was accepted before the kill (%d): the kill did not land during the burst", len(reported))
	}
	t.Logf("SIGKILL after %d of %d messages were reported accepted", len(reported), authors*perAuthor)

	// Restart: every reported message is there, at the height reported.
	proc = StartProcess(t, sessiondBin, dataDir)
	c = newClient(proc.URL)
	var maxHeight uint64
	for _, a := range reported {
		maxHeight = max(maxHeight, a.height)
	}
	resumed, err := c.Status(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Height < maxHeight || resumed.MempoolTxs != 0 {
		t.Fatalf("resumed at height %d with %d pending, but height %d was reported accepted", resumed.Height, resumed.MempoolTxs, maxHeight)
	}
	if h, err := c.Health(ctx(t, 10*time.Second)); err != nil || !h.Healthy || h.LastAcceptedID != resumed.LastAcceptedID.String() {
		t.Fatalf("health after the crash: %+v, %v", h, err)
	}
	for txID, a := range reported {
		st, err := c.TxStatus(ctx(t, 10*time.Second), txID)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status != service.TxAccepted || st.Height != a.height {
			t.Fatalf("author %d message %d (%s): %s at height %d after the restart, reported accepted at height %d",
				a.author, a.index, txID, st.Status, st.Height, a.height)
		}
	}
	var stored, lost int
	for i := range people {
		onChain := map[ids.ID]uint64{} // tx ID → seq
		var after uint64
		for {
			page, err := c.Messages(ctx(t, 10*time.Second), sessions[i], after, service.MaxPageSize)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range page.Messages {
				onChain[m.TxID] = m.Seq
			}
			if len(page.Messages) < service.MaxPageSize {
				break
			}
			after = page.Next
		}
		stored += len(onChain)
		// Messages of an author are accepted in nonce order: the stored
		// ones are exactly a prefix of what was signed, seq = index+1.
		for k, t2 := range signed[i] {
			seq, ok := onChain[t2.ID()]
			if ok && seq != uint64(k+1) {
				t.Fatalf("author %d message %d stored at seq %d", i, k, seq)
			}
			if _, rep := reported[t2.ID()]; rep && !ok {
				lost++
				t.Errorf("author %d message %d (%s) was reported accepted and is gone after SIGKILL", i, k, t2.ID())
			}
			if !ok && k < len(onChain) {
				t.Fatalf("author %d: message %d missing below stored ones", i, k)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("%d reported-accepted messages lost", lost)
	}
	t.Logf("after the restart: %d messages stored (%d reported accepted before the kill)", stored, len(reported))

	// The chain resumes: each author's next message (at the nonce the node
	// now expects) is accepted, including resubmissions of lost pending ones.
	var replies []*service.TxReply
	for i, p := range people {
		r, err := c.Send(ctx(t, 10*time.Second), p, sessions[i], []byte("after the crash"))
		if err != nil {
			t.Fatalf("author %d sends after the restart: %v", i, err)
		}
		replies = append(replies, r)
	}
	waitAll(t, c, replies...)
	st, err := c.Status(ctx(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if st.MessagesStored != uint64(stored+authors) {
		t.Fatalf("messages stored: %d, want %d", st.MessagesStored, stored+authors)
	}
}
