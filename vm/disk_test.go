package vm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/consensus/core/choices"
	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// fakeDisk is a settable free-space reading for a DiskGuard.
type fakeDisk struct {
	mu    sync.Mutex
	free  uint64
	guard *DiskGuard
}

// set changes the free space; the guard's next check sees it.
func (d *fakeDisk) set(n uint64) {
	d.mu.Lock()
	d.free = n
	d.mu.Unlock()
	d.guard.mu.Lock()
	d.guard.sampled = time.Time{}
	d.guard.mu.Unlock()
}

func (d *fakeDisk) avail(string) (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.free, nil
}

// newDiskEnv starts a VM on memdb (genesis identities 0..3) whose guard
// keeps reserve bytes and reads free space from the returned fakeDisk.
func newDiskEnv(t *testing.T, db *vmtest.FaultDB, reserve uint64) (*env, *fakeDisk) {
	t.Helper()
	g, err := NewDiskGuard(t.TempDir(), FixedReserve(reserve), true)
	if err != nil {
		t.Fatal(err)
	}
	disk := &fakeDisk{free: 1 << 40, guard: g}
	g.avail = disk.avail
	clock := newTestClock()
	v := New(WithClock(clock.Now), WithDiskGuard(g))
	genesis := genesisJSON(t, nil, identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 3))
	if err := v.Initialize(ctx, nil, db, genesis, nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Shutdown(context.Background()) })
	return &env{t: t, vm: v, db: db, clock: clock}, disk
}

// TestDiskGuard walks the watermarks with a fake free-space reading:
// admission needs reserve + 3 × (pending + size), building and accepting
// need the reserve, reads go on throughout, and everything resumes when
// space returns.
func TestDiskGuard(t *testing.T) {
	const reserve = 100 << 20
	e, disk := newDiskEnv(t, vmtest.NewFaultDB(memdb.New()), reserve)
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)

	// Room for this transaction but not for one more byte pending.
	m1 := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: bytes.Repeat([]byte{1}, 1000)})
	disk.set(reserve + DiskBytesPerTxByte*uint64(m1.Size()))
	e.issue(m1)
	m2 := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("refused")})
	_, err := e.vm.IssueTx(m2.Bytes())
	mustIs(t, err, ErrDiskFull)
	for _, want := range []string{"free on the database's filesystem", "needed to admit", "reads are served"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q does not say %q", err, want)
		}
	}
	// Reads are served, and health says why transactions are refused.
	if _, err := e.vm.Messages(s, 0, 10); err != nil {
		t.Fatal(err)
	}
	if _, err := e.vm.Status(); err != nil {
		t.Fatal(err)
	}
	hr, err := e.vm.Health(ctx)
	mustIs(t, err, ErrDiskFull)
	if hr.Healthy || hr.Disk == nil || hr.Disk.Admitting || !hr.Disk.Committing || hr.Disk.ReserveBytes != reserve ||
		hr.Disk.AdmitBytes != reserve+DiskBytesPerTxByte*uint64(m1.Size()+config.MaxTxSize) || !strings.Contains(hr.Disk.Error, "needed to admit") {
		t.Fatalf("health %+v disk %+v", hr, hr.Disk)
	}

	// Above the reserve, what was admitted is built and accepted.
	b := e.accept()
	if len(b.Txs) != 1 || b.Txs[0].ID() != m1.ID() {
		t.Fatalf("block holds %d txs", len(b.Txs))
	}

	// Below the reserve: no block is built, WaitForEvent does not report
	// pending work, and Accept of a block built before refuses to write.
	disk.set(1 << 40)
	e.issue(m2)
	built, err := e.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := built.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	disk.set(reserve - 1)
	if _, err := e.vm.BuildBlock(ctx); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("BuildBlock below the reserve: %v", err)
	}
	before := dump(t, e.db)
	lastBefore, _ := e.vm.LastAccepted(ctx)
	err = built.Accept(ctx)
	mustIs(t, err, ErrDiskFull)
	if !bytes.Equal(flat(dump(t, e.db)), flat(before)) {
		t.Fatal("a refused Accept wrote to the database")
	}
	if last, _ := e.vm.LastAccepted(ctx); last != lastBefore {
		t.Fatal("a refused Accept moved the last accepted block")
	}
	if st, _ := e.vm.TxStatus(m2.ID()); st.Status != TxPending {
		t.Fatalf("m2 is %s after a refused Accept", st.Status)
	}
	hr, err = e.vm.Health(ctx)
	mustIs(t, err, ErrDiskFull)
	if hr.Disk.Committing || !strings.Contains(hr.Disk.Error, "blocks wait") {
		t.Fatalf("disk %+v", hr.Disk)
	}

	// Space returns: the same block is accepted, and the chain goes on.
	disk.set(1 << 40)
	if err := built.Accept(ctx); err != nil {
		t.Fatal(err)
	}
	if err := e.vm.SetPreference(ctx, built.ID()); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.vm.TxStatus(m2.ID()); st.Status != TxAccepted {
		t.Fatalf("m2 is %s", st.Status)
	}
	if _, err := e.vm.Health(ctx); err != nil {
		t.Fatal(err)
	}

	// WaitForEvent waits for space while a transaction is pending.
	e.issue(e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("after")}))
	disk.set(reserve - 1)
	got := make(chan error, 1)
	go func() { _, err := e.vm.WaitForEvent(ctx); got <- err }()
	select {
	case err := <-got:
		t.Fatalf("WaitForEvent returned %v while the disk is full", err)
	case <-time.After(100 * time.Millisecond):
	}
	disk.set(1 << 40)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * diskRecheck):
		t.Fatal("WaitForEvent did not resume when space returned")
	}
	e.accept()
}

func flat(kvs [][2][]byte) []byte {
	var b []byte
	for _, kv := range kvs {
		b = append(b, kv[0]...)
		b = append(b, 0xff)
		b = append(b, kv[1]...)
		b = append(b, 0xfe)
	}
	return b
}

// TestAcceptWriteFault injects ENOSPC at every write of an Accept in turn
// (each batch Put, then the batch Write): the Accept fails with the cause,
// nothing reaches the database, nothing changes in memory, and accepting
// the same block again once the fault clears commits it completely.
func TestAcceptWriteFault(t *testing.T) {
	alice, bob := identity(t, 0), identity(t, 1)
	for k := 0; ; k++ {
		fdb := vmtest.NewFaultDB(memdb.New())
		e, _ := newDiskEnv(t, fdb, 0)
		s := e.createSession(alice, bob)
		m := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("kept through a full disk")})
		e.issue(m)
		b, err := e.vm.BuildBlock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		before := flat(dump(t, fdb))
		statusBefore, _ := e.vm.Status()
		lastBefore, _ := e.vm.LastAccepted(ctx)

		fdb.FailAfter(k)
		err = b.Accept(ctx)
		if fdb.Failed() == 0 {
			// k exceeds the writes of one Accept: every position was tried.
			if err != nil {
				t.Fatal(err)
			}
			if k < 5 {
				t.Fatalf("an Accept made only %d writes", k)
			}
			t.Logf("faults injected at each of %d writes of an Accept", k)
			return
		}
		if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, vmtest.ErrInjected) {
			t.Fatalf("write %d: Accept error %v, want the injected ENOSPC", k, err)
		}
		fdb.Heal()
		if !bytes.Equal(flat(dump(t, fdb)), before) {
			t.Fatalf("write %d: a failed Accept changed the database", k)
		}
		if last, _ := e.vm.LastAccepted(ctx); last != lastBefore {
			t.Fatalf("write %d: last accepted moved", k)
		}
		if st, _ := e.vm.Status(); st != statusBefore {
			t.Fatalf("write %d: status %+v, before %+v", k, st, statusBefore)
		}
		if st, _ := e.vm.TxStatus(m.ID()); st.Status != TxPending {
			t.Fatalf("write %d: tx is %s", k, st.Status)
		}
		if b.Status() == uint8(choices.Accepted) {
			t.Fatalf("write %d: block reports accepted", k)
		}
		if rep, err := e.vm.Health(ctx); !errors.Is(err, syscall.ENOSPC) || rep.Healthy {
			t.Fatalf("write %d: health %+v, %v", k, rep, err)
		}
		// Retry: the block is accepted whole.
		if err := b.Accept(ctx); err != nil {
			t.Fatalf("write %d: retry: %v", k, err)
		}
		if err := e.vm.SetPreference(ctx, b.ID()); err != nil {
			t.Fatal(err)
		}
		msgs, err := e.vm.Messages(s, 0, 10)
		if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].Ciphertext, []byte("kept through a full disk")) {
			t.Fatalf("write %d: messages %v, %v", k, msgs, err)
		}
		if st, _ := e.vm.TxStatus(m.ID()); st.Status != TxAccepted {
			t.Fatalf("write %d: tx is %s after the retry", k, st.Status)
		}
		if _, err := e.vm.Health(ctx); err != nil {
			t.Fatalf("write %d: health after the retry: %v", k, err)
		}
		// The chain goes on from it.
		e.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("next")})
	}
}

// TestAcceptWriteFaultRestart: a block whose commit failed at a write in
// the middle is not on disk after a restart, and the chain resumes from
// the block before it; committed again, it survives the next restart.
func TestAcceptWriteFaultRestart(t *testing.T) {
	dir := t.TempDir()
	alice, bob := identity(t, 0), identity(t, 1)
	g := genesisJSON(t, nil, alice, bob)
	clock := newTestClock()
	open := func() (*env, *vmtest.FaultDB) {
		db, err := OpenDB(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		fdb := vmtest.NewFaultDB(db)
		return newEnvDB(t, fdb, g, clock), fdb
	}
	e, fdb := open()
	s := e.createSession(alice, bob)
	m := e.sign(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("m")})
	e.issue(m)
	b, err := e.vm.BuildBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	lastBefore, _ := e.vm.LastAccepted(ctx)
	fdb.FailAfter(3)
	mustIs(t, b.Accept(ctx), syscall.ENOSPC)
	fdb.Heal()
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	e, _ = open()
	if last, _ := e.vm.LastAccepted(ctx); last != lastBefore {
		t.Fatalf("after restart the last accepted block is %s, want %s", last, lastBefore)
	}
	if st, _ := e.vm.TxStatus(m.ID()); st.Status != TxUnknown {
		t.Fatalf("tx of the failed block is %s after restart", st.Status)
	}
	e.issue(m) // the client resubmits; nothing was lost or half-written
	b2 := e.accept()
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	e, _ = open()
	if last, _ := e.vm.LastAccepted(ctx); last != b2.ID() {
		t.Fatal("the committed block did not survive a restart")
	}
	if msgs, err := e.vm.Messages(s, 0, 10); err != nil || len(msgs) != 1 {
		t.Fatalf("messages %v, %v", msgs, err)
	}
}

// TestDiskGuardSetup: inside a Lux node the VM watches the chain data
// directory with DefaultPluginDiskReserve (or the node config's reserve and
// path); without a directory it says that it watches nothing.
func TestDiskGuardSetup(t *testing.T) {
	g := genesisJSON(t, nil, identity(t, 0))
	health := func(chainCtx any, cfg string) HealthReport {
		t.Helper()
		v := New(WithClock(newTestClock().Now))
		if err := v.Initialize(ctx, chainCtx, memdb.New(), g, nil, []byte(cfg), nil, nil, nil); err != nil {
			t.Fatal(err)
		}
		defer v.Shutdown(ctx)
		rep, _ := v.Health(ctx)
		return rep
	}
	dir := t.TempDir()
	chainCtx := &consensusctx.Context{ChainID: ids.ID{9}, ChainDataDir: dir + "/not/yet/made"}
	hr := health(chainCtx, "")
	if hr.Disk == nil || hr.Disk.Path != dir || hr.Disk.ReserveBytes != DefaultPluginDiskReserve || hr.DiskNote != "" {
		t.Fatalf("plugin: disk %+v note %q", hr.Disk, hr.DiskNote)
	}
	hr = health(chainCtx, `{"diskReserveBytes": 12345, "diskPath": "`+t.TempDir()+`"}`)
	if hr.Disk == nil || hr.Disk.ReserveBytes != 12345 || hr.Disk.Path == dir {
		t.Fatalf("configured: disk %+v", hr.Disk)
	}
	hr = health(nil, "")
	if hr.Disk != nil || !strings.Contains(hr.DiskNote, "not watched") {
		t.Fatalf("no directory: disk %+v note %q", hr.Disk, hr.DiskNote)
	}
	// A diskPath that cannot be watched is a configuration error.
	v := New()
	err := v.Initialize(ctx, nil, memdb.New(), g, nil, []byte(`{"diskPath": "/nonexistent/\x00"}`), nil, nil, nil)
	mustIs(t, err, ErrBadNodeConfig)
	// The standalone guard keeps its model, raised by diskReserveBytes.
	guard, err := NewDiskGuard(t.TempDir(), FixedReserve(1000), true)
	if err != nil {
		t.Fatal(err)
	}
	v = New(WithDiskGuard(guard))
	if err := v.Initialize(ctx, nil, memdb.New(), g, nil, []byte(`{"diskReserveBytes": 5000}`), nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown(ctx)
	if r := guard.reserve(); r != 5000 {
		t.Fatalf("reserve %d, want 5000", r)
	}
}

// TestDBDiskGuard: the reserve of an OpenDB database counts the floor, one
// maximal block, one memtable and the LSM tables on disk (with badger's
// model for a BadgerDB directory), and its write-ahead log takes only what
// was written to it (no preallocation for the reserve to count).
func TestDBDiskGuard(t *testing.T) {
	for _, engine := range []struct {
		name string
		open func(string, DBOptions) (database.Database, error)
	}{{"storage", OpenDB}, {"badger", openBadger}} {
		dir := t.TempDir()
		db, err := engine.open(dir, DBOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Put([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if got := IsBadgerDir(dir); got != (engine.name == "badger") {
			t.Fatalf("%s: IsBadgerDir %v", engine.name, got)
		}
		g, err := NewDBDiskGuard(dir)
		if err != nil {
			t.Fatal(err)
		}
		base := uint64(diskFloor + DiskBytesPerTxByte*config.MaxBlockSize + dbMemTableSize)
		lsm, _ := dbFileSizes(dir)
		if r := g.reserve(); r != base+uint64(lsm) {
			t.Fatalf("%s: reserve %d, want %d + LSM %d", engine.name, r, base, lsm)
		}
		if engine.name == "badger" {
			continue
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil || !strings.HasSuffix(e.Name(), ".log") {
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Blocks*512 > 1<<20 {
				t.Fatalf("write-ahead log %s takes %d bytes after one small write (preallocated)", e.Name(), st.Blocks*512)
			}
		}
	}
}

// TestParseNodeConfig: defaults, per-author bounds that follow a smaller
// pool, and the consistency checks.
func TestParseNodeConfig(t *testing.T) {
	c, err := ParseNodeConfig(nil)
	if err != nil || c.MempoolTxs != config.DefaultMempoolTxs || c.MempoolBytes != config.DefaultMempoolBytes ||
		c.MaxPendingPerAuthor != config.DefaultMaxPendingPerAuthor || c.MaxPendingBytesPerAuthor != config.DefaultMaxPendingBytesPerAuthor ||
		c.DiskPath != "" || c.DiskReserveBytes != 0 {
		t.Fatalf("defaults %+v, %v", c, err)
	}
	if config.DefaultMaxPendingBytesPerAuthor*16 != config.DefaultMempoolBytes {
		t.Fatal("an author's default share is not 1/16 of the pool")
	}
	c, err = ParseNodeConfig([]byte(`{"mempoolTxs": 100, "mempoolBytes": 16777216, "diskPath": "/data", "diskReserveBytes": 1}`))
	if err != nil || c.MaxPendingPerAuthor != 100 || c.MaxPendingBytesPerAuthor != 1<<20 || c.DiskPath != "/data" || c.DiskReserveBytes != 1 {
		t.Fatalf("derived %+v, %v", c, err)
	}
	c, err = ParseNodeConfig([]byte(`{"mempoolBytes": 200000}`))
	if err != nil || c.MaxPendingBytesPerAuthor != config.MaxTxSize {
		t.Fatalf("small pool %+v, %v", c, err)
	}
	for _, bad := range []string{
		`{"mempoolBytes": 1000}`,
		`{"maxPendingBytesPerAuthor": 1000}`,
		`{"mempoolBytes": 1048576, "maxPendingBytesPerAuthor": 2097152}`,
		`{"mempoolTxs": 10, "maxPendingPerAuthor": 11}`,
		`{"diskPath": ""}`,
		`{"diskReserveBytes": 0}`,
		`{"diskreservebytes": 5}`,
	} {
		if _, err := ParseNodeConfig([]byte(bad)); !errors.Is(err, ErrBadNodeConfig) {
			t.Errorf("%s: %v", bad, err)
		}
	}
}
