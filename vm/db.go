package vm

import (
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/luxfi/database"
	"github.com/luxfi/database/badgerdb"

	"github.com/luxfi/session/state"
	"github.com/luxfi/session/storage"
)

// DBOptions tune OpenDB.
type DBOptions struct {
	// SyncWrites makes every commit of a BadgerDB database (one made by an
	// earlier version) fsync before returning (survives power loss, not
	// only process crashes). Off by default there: a killed process loses
	// nothing either way, since badger's writes reach the OS before Accept
	// returns. A database of package storage fsyncs every commit always.
	SyncWrites bool
	// CacheBytes is the block cache size; 0 means 64 MiB.
	CacheBytes int64

	// memTableSize replaces dbMemTableSize in tests (flushes without
	// writing 64 MiB).
	memTableSize int64
}

// dbMemTableSize is the memtable size of OpenDB (BadgerReserve counts one
// memtable flush).
const dbMemTableSize = 64 << 20

// OpenDB opens (creating it if needed) the on-disk chain database in dir.
// Pass the result to Initialize; the VM closes it at Shutdown.
//
// A new database is package storage's: pebble for the state, with the
// bytes of accepted blocks (state.IsBlockKey), which are most of what a
// node writes and are never rewritten, in an append-only value log beside
// it. A directory that holds a BadgerDB database (made by an earlier
// version: it has a KEYREGISTRY file) opens as BadgerDB, as before; there
// is no conversion. LLM.md ("Storage") has the measurements behind the
// change.
func OpenDB(dir string, opts DBOptions) (database.Database, error) {
	if dir == "" {
		return nil, fmt.Errorf("vm: database directory required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vm: creating database directory: %w", err)
	}
	if IsBadgerDir(dir) {
		return openBadger(dir, opts)
	}
	db, err := storage.Open(dir, storage.Options{
		CacheBytes:    opts.CacheBytes,
		MemTableBytes: cmp.Or(opts.memTableSize, dbMemTableSize),
		Separate:      state.IsBlockKey,
	})
	if err != nil {
		return nil, fmt.Errorf("vm: opening database in %s: %w", dir, err)
	}
	return db, nil
}

// IsBadgerDir reports whether dir holds a BadgerDB database.
func IsBadgerDir(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "KEYREGISTRY"))
	return err == nil
}

// openBadger opens the BadgerDB database of an earlier version in dir,
// through github.com/luxfi/database/badgerdb.
//
// BadgerDB separates keys (an LSM tree) from large values (an append-only
// value log). It is pure Go and needs no build tag (pebbledb and leveldb
// do in github.com/luxfi/database; package storage uses pebble directly).
func openBadger(dir string, opts DBOptions) (database.Database, error) {
	cache := opts.CacheBytes
	if cache <= 0 {
		cache = 64 << 20
	}
	cfg, err := json.Marshal(map[string]any{
		"syncWrites":     opts.SyncWrites,
		"numCompactors":  2,
		"numMemtables":   3,
		"memTableSize":   cmp.Or(opts.memTableSize, dbMemTableSize),
		"blockCacheSize": cache,
		"indexCacheSize": cache / 2,
		// Values above 256 bytes (transactions, ciphertexts, blocks, and
		// the ~350-byte message records) go to the value log; keys,
		// counters and index entries stay in the LSM. At 1 KiB the message
		// records stayed in the LSM and doubled the bytes of every
		// memtable flush and compaction (whose CPU, on two cores, is what
		// held block acceptance back in the seconds of a flush).
		"valueThreshold": 256,
		// No block compression of LSM tables: what SessionVM stores is
		// ciphertexts, signatures and hashes, which do not compress, so
		// Snappy (the badgerdb default) only cost CPU at every flush and
		// compaction. Tables written compressed stay readable (each table
		// records its own compression).
		"compression": "none",
	})
	if err != nil {
		return nil, err
	}
	db, err := badgerdb.New(dir, cfg, "sessionvm", nil)
	if err != nil {
		return nil, fmt.Errorf("vm: opening database in %s: %w", dir, err)
	}
	if !fileSyncSupported || opts.SyncWrites {
		return db, nil
	}
	return &fileSyncedDB{Database: db, dir: dir}, nil
}

// fileSyncedDB is the database of OpenDB on Linux, with two changes to
// when badger's slow file operations happen, so that none of them holds
// up a commit:
//
//   - Sync makes the logs durable without taking badger's lock
//     (syncLogFiles).
//   - Sync also holds the memtables of its moment until the next Sync. A
//     memtable's write-ahead log is deleted (unmapped, truncated, removed)
//     when the last reference to it goes. Badger drops its own reference
//     after flushing the memtable to a table, under the database's write
//     lock, and truncating a synced 64 MiB log takes ext4 50-70 ms (more
//     under load): every commit waited for it. With a reference held here
//     the deletion happens in the next Sync instead, outside any lock of
//     badger's. The cost: a flushed memtable's memory (64 MiB) lives up to
//     one sync interval longer.
//
// The reference is an iterator positioned past every key (holderPrefix),
// which holds a reference to each memtable and reads nothing. It is
// released before the next is taken, never overlapping, so that value-log
// files that garbage collection retired (deleted when no iterator is open)
// are still deleted.
type fileSyncedDB struct {
	database.Database
	dir string

	mu     sync.Mutex
	holder database.Iterator
	closed bool
}

// holderPrefix sorts after every key SessionVM writes (state's namespaces
// are ASCII letters) and after badger's own.
var holderPrefix = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

func (d *fileSyncedDB) Sync() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return database.ErrClosed
	}
	d.release()
	err := syncLogFiles(d.dir)
	d.holder = d.Database.NewIteratorWithPrefix(holderPrefix)
	return err
}

func (d *fileSyncedDB) Close() error {
	d.mu.Lock()
	d.release()
	d.closed = true
	d.mu.Unlock()
	return d.Database.Close()
}

func (d *fileSyncedDB) release() {
	if d.holder != nil {
		d.holder.Release()
		d.holder = nil
	}
}
