//go:build linux

package vm

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/database"
)

// files returns the names in dir with the given suffix, sorted.
func files(t *testing.T, dir, suffix string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names
}

// TestSyncDefersLogDeletion: a memtable flushed to a table keeps its
// write-ahead log until the next Sync, which deletes it outside badger's
// lock (fileSyncedDB). Without the reference Sync holds, badger deletes
// the log right after the flush, under the database's write lock, where
// the truncation stalled every commit.
func TestSyncDefersLogDeletion(t *testing.T) {
	dir := t.TempDir()
	db, err := openBadger(dir, DBOptions{memTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := db.(*fileSyncedDB); !ok {
		t.Fatalf("openBadger returned %T on Linux", db)
	}
	if err := db.Sync(); err != nil { // takes the first reference
		t.Fatal(err)
	}
	first := files(t, dir, ".mem")
	if len(first) != 1 {
		t.Fatalf("memtable logs at start: %v", first)
	}

	// Fill the first memtable (1 MiB) a few times over with small values
	// (they stay in the LSM), until a table has been flushed.
	value := make([]byte, 200)
	deadline := time.Now().Add(20 * time.Second)
	for i := uint64(0); len(files(t, dir, ".sst")) == 0; i++ {
		if time.Now().After(deadline) {
			t.Fatal("no memtable flushed after 20 s of writes")
		}
		b := db.NewBatch()
		for j := range uint64(256) {
			key := binary.BigEndian.AppendUint64([]byte("test/"), i*256+j)
			if err := b.Put(key, value); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Write(); err != nil {
			t.Fatal(err)
		}
		if i%64 == 63 {
			time.Sleep(5 * time.Millisecond) // let the flusher run
		}
	}
	// Badger removes the flushed memtable from its list after the table is
	// written; give it a moment, then the log must still be there.
	time.Sleep(200 * time.Millisecond)
	if !slices.Contains(files(t, dir, ".mem"), first[0]) {
		t.Fatalf("the flushed memtable's log %s was deleted before the next Sync", first[0])
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(files(t, dir, ".mem"), first[0]) {
		t.Fatalf("the flushed memtable's log %s outlived the Sync after its flush", first[0])
	}
}

// TestFileSyncedDBClose: Close releases the reference Sync holds (badger
// closes without waiting for it), and Sync after Close is refused.
func TestFileSyncedDBClose(t *testing.T) {
	dir := t.TempDir()
	db, err := openBadger(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- db.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hung with Sync's reference taken")
	}
	if err := db.Sync(); !errors.Is(err, database.ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
	db, err = openBadger(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after reopening: %q, %v", v, err)
	}
	if files := files(t, filepath.Clean(dir), ".vlog"); len(files) == 0 {
		t.Fatal("no value log: not a badger directory")
	}
}

// TestSyncLogFilesSkipsVanished: a log deleted between listing and
// syncing is not an error; a directory that cannot be read is.
func TestSyncLogFilesSkipsVanished(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "000001.vlog"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := syncLogFiles(dir); err != nil {
		t.Fatal(err)
	}
	if err := fdatasync(filepath.Join(dir, "000002.mem")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fdatasync of a missing file: %v", err)
	}
	if err := syncLogFiles(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("syncLogFiles of a missing directory succeeded")
	}
}
