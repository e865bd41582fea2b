package vm

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	smblock "github.com/luxfi/consensus/engine/chain/block"

	"github.com/luxfi/session/config"
)

// Disk space.
//
// BadgerDB writes its value log, its memtable write-ahead logs and the
// tables of every flush and compaction through memory-mapped files that it
// creates sparse (truncated to their final size, no blocks allocated). On a
// full filesystem the kernel cannot allocate the page a write touches, and
// the process dies of SIGBUS inside badger: no error ever reaches the
// caller. So a node on badger cannot wait for ENOSPC; it must stop writing
// while enough space is left for everything that may still be written.
//
// A DiskGuard watches the free space (statfs, bytes available to the
// process) of the filesystem that holds the database and keeps a reserve:
//
//   - Admission (IssueTx, Issue) refuses a transaction with ErrDiskFull
//     unless free ≥ reserve + DiskBytesPerTxByte × (bytes pending in the
//     mempool + the transaction's size), so whatever it admitted can be
//     committed without touching the reserve.
//   - Block building (BuildBlock, and WaitForEvent, which reports pending
//     transactions only while a block could be built) needs free ≥ reserve.
//   - With gated commits (the standalone node, which owns its database),
//     Accept checks free ≥ reserve before it writes anything and otherwise
//     returns ErrDiskFull with the block still verified and the state
//     untouched; the caller retries the same Accept later.
//
// Every check reads the free space again (admission may reuse a reading
// diskSampleAge old), so the node resumes by itself when space returns.
// Reads never write and are served throughout. See LLM.md ("Disk space")
// for the reserve of a database made by OpenDB and for the plugin.
type DiskGuard struct {
	path        string
	reserve     func() uint64
	gateCommits bool
	avail       func(path string) (uint64, error) // tests replace it

	mu      sync.Mutex
	sampled time.Time
	free    uint64
	freeErr error
}

// ErrDiskFull is returned (wrapped, with the figures) when the node refuses
// to admit a transaction, build or commit a block because the free space of
// its database's filesystem is below what it keeps in reserve.
var ErrDiskFull = errors.New("not enough free disk space")

// DiskBytesPerTxByte bounds the bytes the database writes per byte of an
// accepted transaction: the block's copy, the indexed copy of a ciphertext
// or identity, keys, inbox and index entries, badger's entry headers and
// write-ahead log. TestDiskFillTmpfs (package node) measures it on a real
// filesystem and fails if it is exceeded.
const DiskBytesPerTxByte = 3

// DefaultPluginDiskReserve is the reserve of the VM inside a Lux node,
// which watches the chain data directory the node gives it: 1 GiB, the Lux
// node's own default warning threshold (it shuts down at 512 MiB).
const DefaultPluginDiskReserve = 1 << 30

const (
	// diskSampleAge bounds the age of the free-space reading admission uses.
	diskSampleAge = 20 * time.Millisecond
	// diskFloor is kept free for what is not modelled below: badger's
	// manifest rewrites, the discard and key-registry files, the genesis
	// copy, logs.
	diskFloor = 16 << 20
	// dbScanAge bounds the age of the database's file sizes in the reserve.
	dbScanAge = time.Second
	// badgerVlogGCAbove and badgerVlogFileSize: github.com/luxfi/database's
	// badgerdb runs value-log GC every 5 minutes once the value log exceeds
	// 1 GiB; a GC rewrites the live part (at most half, at discard ratio
	// 0.5) of one 1 GiB value-log file before deleting it.
	badgerVlogGCAbove  = 1 << 30
	badgerVlogFileSize = 1 << 30
)

// NewDiskGuard watches the filesystem holding path and keeps reserve()
// bytes free (reserve is called at every check; it may change with the
// database's size). gateCommits makes Accept check the space too: set it
// when the VM's database is local and nothing but this VM decides when
// blocks are committed (the standalone node). It fails if the free space
// of path cannot be read.
func NewDiskGuard(path string, reserve func() uint64, gateCommits bool) (*DiskGuard, error) {
	g := &DiskGuard{path: path, reserve: reserve, gateCommits: gateCommits, avail: availableBytes}
	if _, err := g.avail(path); err != nil {
		return nil, fmt.Errorf("vm: watching free disk space of %s: %w", path, err)
	}
	return g, nil
}

// FixedReserve returns a reserve function for NewDiskGuard that always
// keeps n bytes.
func FixedReserve(n uint64) func() uint64 { return func() uint64 { return n } }

// sample returns the free space, read again when the last reading is older
// than maxAge.
func (g *DiskGuard) sample(maxAge time.Duration) (uint64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if now := time.Now(); maxAge <= 0 || now.Sub(g.sampled) > maxAge {
		g.free, g.freeErr = g.avail(g.path)
		g.sampled = now
	}
	return g.free, g.freeErr
}

// written tells the guard that a commit wrote to the disk: the next check
// reads the free space again instead of a reading from before the commit
// (whose transactions are no longer counted as pending).
func (g *DiskGuard) written() {
	g.mu.Lock()
	g.sampled = time.Time{}
	g.mu.Unlock()
}

// admit checks that a transaction of size bytes can be admitted while
// pending bytes wait in the mempool.
func (g *DiskGuard) admit(pending, size int) error {
	free, err := g.sample(diskSampleAge)
	if err != nil {
		return fmt.Errorf("%w: cannot read the free space of the database's filesystem: %v", ErrDiskFull, err)
	}
	reserve := g.reserve()
	need := reserve + DiskBytesPerTxByte*uint64(pending+size)
	if free < need {
		return fmt.Errorf("%w: %s free on the database's filesystem, %s needed to admit a transaction (reserve %s + %d × %s, the bytes pending plus the transaction's); new transactions are refused until space is freed, reads are served",
			ErrDiskFull, mib(free), mib(need), mib(reserve), DiskBytesPerTxByte, mib(uint64(pending+size)))
	}
	return nil
}

// commit checks that a block can be built or committed now.
func (g *DiskGuard) commit() error {
	free, err := g.sample(0)
	if err != nil {
		return fmt.Errorf("%w: cannot read the free space of the database's filesystem: %v", ErrDiskFull, err)
	}
	if reserve := g.reserve(); free < reserve {
		return fmt.Errorf("%w: %s free on the database's filesystem, below the reserve of %s kept for block commits and database maintenance; blocks wait until space is freed",
			ErrDiskFull, mib(free), mib(reserve))
	}
	return nil
}

// DiskReport is the disk part of the health report.
type DiskReport struct {
	// Path is the directory whose filesystem is watched: for Go callers
	// only. Health reports are served to anyone who reaches the API (GET
	// /health, session.health), and an absolute path tells a stranger the
	// operator's user name and layout, so neither the JSON nor the errors
	// name it.
	Path string `json:"-"`
	// FreeBytes is the space available on it.
	FreeBytes uint64 `json:"freeBytes"`
	// ReserveBytes is kept free for block commits and database maintenance.
	ReserveBytes uint64 `json:"reserveBytes"`
	// AdmitBytes is the free space a transaction of the largest size
	// (config.MaxTxSize) needs now: the reserve plus DiskBytesPerTxByte ×
	// (the bytes pending in the mempool + config.MaxTxSize). Smaller
	// transactions need correspondingly less.
	AdmitBytes uint64 `json:"admitBytes"`
	// Admitting is false while a transaction of the largest size would be
	// refused for lack of space.
	Admitting bool `json:"admitting"`
	// Committing is false while blocks wait for space.
	Committing bool `json:"committing"`
	// Error says why, when Admitting or Committing is false.
	Error string `json:"error,omitempty"`
}

// Report reads the free space now and describes it, with pendingBytes in
// the mempool. The error is the
// refusal of admission or of commits, if any (it wraps ErrDiskFull).
func (g *DiskGuard) Report(pending int) (DiskReport, error) {
	reserve := g.reserve()
	r := DiskReport{
		Path:         g.path,
		ReserveBytes: reserve,
		AdmitBytes:   reserve + DiskBytesPerTxByte*uint64(pending+config.MaxTxSize),
	}
	err := g.commit()
	r.Committing = err == nil
	if aerr := g.admit(pending, config.MaxTxSize); aerr == nil {
		r.Admitting = true
	} else if err == nil {
		err = aerr
	}
	r.FreeBytes, _ = g.sample(diskSampleAge)
	if err != nil {
		r.Error = err.Error()
	}
	return r, err
}

func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// BadgerReserve returns the reserve function for a database that OpenDB
// made in dir:
//
//	16 MiB                          floor (manifest, small files, logs)
//	+ DiskBytesPerTxByte × 2 MiB    one block of config.MaxBlockSize committed
//	+ 64 MiB (one memtable)         the level-0 table a memtable flush writes
//	+ size of the LSM tables        a compaction writes its output before it
//	                                deletes its inputs, and its inputs are LSM
//	                                tables (values above 256 B live in the
//	                                value log, so the LSM stays small)
//	+ 512 MiB once the value log    value-log GC rewrites the live half of a
//	  exceeds 1 GiB                 1 GiB file before deleting it
//
// The sizes of the database's files are read at most once a second.
func BadgerReserve(dir string) func() uint64 { return dbReserve(dir, true) }

// NewDBDiskGuard returns the guard, with gated commits, of the database
// that OpenDB opened in dir: with BadgerReserve for a BadgerDB directory,
// StorageReserve otherwise.
func NewDBDiskGuard(dir string) (*DiskGuard, error) {
	if IsBadgerDir(dir) {
		return NewDiskGuard(dir, BadgerReserve(dir), true)
	}
	return NewDiskGuard(dir, StorageReserve(dir), true)
}

// StorageReserve returns the reserve function for a database of package
// storage that OpenDB made in dir:
//
//	16 MiB                          floor (manifest, options, logs)
//	+ DiskBytesPerTxByte × 2 MiB    one block of config.MaxBlockSize committed
//	+ 64 MiB (one memtable)         the level-0 table a memtable flush writes
//	                                before the memtable's log is recycled
//	+ size of the LSM tables        a compaction writes its output before it
//	                                deletes its inputs (block bytes live in the
//	                                value log, so the LSM stays small)
//
// The write-ahead logs take what was written to them (package storage
// turns pebble's preallocation off), which admission counts
// (DiskBytesPerTxByte); the value log is appended to, never rewritten. The
// tables' sizes are read at most once a second.
func StorageReserve(dir string) func() uint64 { return dbReserve(dir, false) }

// dbReserve is the model both reserves share: the floor, one block, one
// memtable and the LSM tables on disk, plus, for BadgerDB, value-log GC
// once its value log passes badgerVlogGCAbove. The files' sizes are read
// at most every dbScanAge.
func dbReserve(dir string, badger bool) func() uint64 {
	var (
		mu        sync.Mutex
		scanned   time.Time
		lsm, vlog int64
	)
	return func() uint64 {
		mu.Lock()
		if time.Since(scanned) > dbScanAge {
			lsm, vlog = dbFileSizes(dir)
			scanned = time.Now()
		}
		l, v := lsm, vlog
		mu.Unlock()
		r := uint64(diskFloor + DiskBytesPerTxByte*config.MaxBlockSize + dbMemTableSize + l)
		if badger && v > badgerVlogGCAbove {
			r += badgerVlogFileSize / 2
		}
		return r
	}
}

// setupDiskGuard completes the guard given by WithDiskGuard with the node
// config, or sets one up on the chain data directory of the chain context
// (inside a Lux node) or on the config's diskPath. Without either, free
// space is not watched and the health report says so.
func (v *VM) setupDiskGuard(chainCtx interface{}, cfg NodeConfig) error {
	if g := v.disk; g != nil {
		if cfg.DiskPath != "" {
			if _, err := g.avail(cfg.DiskPath); err != nil {
				return fmt.Errorf("%w: diskPath %s: %v", ErrBadNodeConfig, cfg.DiskPath, err)
			}
			g.path = cfg.DiskPath
		}
		if cfg.DiskReserveBytes > 0 {
			model, least := g.reserve, uint64(cfg.DiskReserveBytes)
			g.reserve = func() uint64 { return max(model(), least) }
		}
		return nil
	}
	path, explicit := cfg.DiskPath, cfg.DiskPath != ""
	if !explicit {
		path = chainDataDir(chainCtx)
	}
	if path == "" {
		v.diskNote = "free disk space is not watched: the chain context has no chain data directory and the node config no diskPath"
		return nil
	}
	reserve := uint64(DefaultPluginDiskReserve)
	if cfg.DiskReserveBytes > 0 {
		reserve = uint64(cfg.DiskReserveBytes)
	}
	// The directory may not exist yet; its filesystem is what counts.
	for dir := filepath.Clean(path); ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(dir); err == nil || dir == filepath.Dir(dir) {
			path = dir
			break
		}
	}
	g, err := NewDiskGuard(path, FixedReserve(reserve), false)
	if err != nil {
		if explicit {
			return fmt.Errorf("%w: diskPath: %v", ErrBadNodeConfig, err)
		}
		v.diskNote = "free disk space is not watched: " + err.Error()
		return nil
	}
	v.disk = g
	return nil
}

// chainDataDir is the chain data directory of a chain context, or "".
func chainDataDir(chainCtx interface{}) string {
	switch x := chainCtx.(type) {
	case *consensusctx.Context:
		if x != nil {
			return x.ChainDataDir
		}
	case smblock.ChainContext:
		if x.Context != nil {
			return x.Context.ChainDataDir
		}
	case *smblock.ChainContext:
		if x != nil && x.Context != nil {
			return x.Context.ChainDataDir
		}
	}
	return ""
}
