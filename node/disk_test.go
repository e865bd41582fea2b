package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/database"

	"github.com/luxfi/session/vm/vmtest"
)

// TestAcceptWriteFaultRetried: a block whose commit fails with ENOSPC (the
// database returning the error, as rpcdb, pebble or leveldb do, rather than
// badger's SIGBUS) does not stop the node. The block stays verified, its
// transaction stays pending, the health report says why, reads are served,
// and the loop commits the same block once writes succeed again; nothing
// is lost across a restart.
func TestAcceptWriteFaultRetried(t *testing.T) {
	dir := t.TempDir()
	alice, bob := identity(t, 0), identity(t, 1)
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, nil, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	var fdb *vmtest.FaultDB
	wrap := func(db database.Database) database.Database {
		fdb = vmtest.NewFaultDB(db)
		return fdb
	}
	n := start(t, Config{DataDir: dir, Genesis: genesis, WrapDB: wrap})
	c := client(n)
	ctx := context.Background()
	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	waitAccepted(t, c, r, err)
	session := r.Session

	fdb.FailAfter(2) // in the middle of the next commit's batch
	r, err = c.Send(ctx, alice, session, []byte("through a failing disk"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for fdb.Failed() < 3 { // the first attempt and at least two retries
		if time.Now().After(deadline) {
			t.Fatalf("no commit was attempted (%d faults)", fdb.Failed())
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-n.Err():
		t.Fatalf("the node stopped: %v", err)
	default:
	}
	st, err := c.TxStatus(ctx, r.TxID)
	if err != nil || st.Status != "pending" {
		t.Fatalf("status while the disk fails: %+v, %v", st, err)
	}
	h, err := c.Health(ctx)
	if err != nil || h.Healthy || !strings.Contains(h.Error, syscall.ENOSPC.Error()) {
		t.Fatalf("health while the disk fails: %+v, %v", h, err)
	}
	if page, err := c.Messages(ctx, session, 0, 10); err != nil || len(page.Messages) != 0 {
		t.Fatalf("reads while the disk fails: %v, %v", page, err)
	}

	fdb.Heal()
	waitAccepted(t, c, r, nil)
	if h, err := c.Health(ctx); err != nil || !h.Healthy {
		t.Fatalf("health after the disk healed: %+v, %v", h, err)
	}
	// The chain goes on, and a restart keeps it all.
	r, err = c.Send(ctx, bob, session, []byte("after"))
	waitAccepted(t, c, r, err)
	stop(t, n)
	n = start(t, Config{DataDir: dir})
	page, err := client(n).Messages(ctx, session, 0, 10)
	if err != nil || len(page.Messages) != 2 || string(page.Messages[0].Ciphertext) != "through a failing disk" {
		t.Fatalf("after restart: %+v, %v", page, err)
	}
}

// TestAcceptOtherWriteErrorStops: a write error that more space would not
// cure still stops the node (Err), as before.
func TestAcceptOtherWriteErrorStops(t *testing.T) {
	alice, bob := identity(t, 0), identity(t, 1)
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, nil, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	broken := &brokenBatches{}
	n := start(t, Config{DataDir: t.TempDir(), Genesis: genesis, WrapDB: func(db database.Database) database.Database {
		broken.Database = db
		return broken
	}})
	broken.on.Store(true)
	r, err := client(n).CreateSession(context.Background(), alice, bob.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-n.Err():
		if !errors.Is(err, errIO) {
			t.Fatalf("node stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("the node did not stop on an I/O error (tx %s)", r.TxID)
	}
}

var errIO = errors.New("input/output error")

// brokenBatches fails every batch write, once on, with an error that is
// not ENOSPC.
type brokenBatches struct {
	database.Database
	on atomic.Bool
}

func (b *brokenBatches) NewBatch() database.Batch { return brokenBatch{b.Database.NewBatch(), b} }

type brokenBatch struct {
	database.Batch
	db *brokenBatches
}

func (b brokenBatch) Write() error {
	if b.db.on.Load() {
		return errIO
	}
	return b.Batch.Write()
}

// syncCounter counts the Sync calls that reach the database.
type syncCounter struct {
	database.Database
	n *atomic.Int64
}

func (s syncCounter) Sync() error {
	s.n.Add(1)
	return s.Database.Sync()
}

// TestSyncInterval: without SyncWrites the node syncs the database every
// SyncInterval, and not at all with a negative one.
func TestSyncInterval(t *testing.T) {
	var on, off atomic.Int64
	n := start(t, Config{DataDir: t.TempDir(), SyncInterval: 20 * time.Millisecond,
		WrapDB: func(db database.Database) database.Database { return syncCounter{db, &on} }})
	m := start(t, Config{DataDir: t.TempDir(), SyncInterval: -1,
		WrapDB: func(db database.Database) database.Database { return syncCounter{db, &off} }})
	deadline := time.Now().Add(10 * time.Second)
	for on.Load() < 5 {
		if time.Now().After(deadline) {
			t.Fatalf("%d syncs in 10 s at a 20 ms interval", on.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// (Shutdown itself syncs once, closing the database.)
	if off.Load() != 0 {
		t.Fatalf("%d syncs with a negative interval", off.Load())
	}
	stop(t, n)
	after := on.Load()
	time.Sleep(100 * time.Millisecond)
	if on.Load() != after {
		t.Fatal("the node synced after Shutdown")
	}
	stop(t, m)
}
