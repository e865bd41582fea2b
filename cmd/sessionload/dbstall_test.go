package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/luxfi/database"
	"github.com/luxfi/database/badgerdb"

	"github.com/luxfi/session/storage"
)

// TestBadgerCommitStalls reproduces, outside the VM, the commit pattern of
// a node under load (per block: the block bytes, and per message a ~450 B
// record, an inbox entry, a tx index entry and a nonce) on BadgerDB with
// the options vm.OpenDB used for it, and on package storage (vm.OpenDB's
// database since), and reports the slowest batch commits. On BadgerDB with
// a 64 MiB memtable, the commit that rotates the memtable blocks for a
// long time; that single commit is the tail latency seen at moderate
// rates. Alone on the machine (2026-12-01, no other load, so without the
// page-fault storms of a loaded node), 1,200 commits of 60 messages:
// BadgerDB 64 MiB p50 0.83 ms, p99 16.6 ms, max 18 ms; storage p50 1.68 ms
// (two fsyncs), p99 4.9 ms, max 24 ms.
//
// It writes ~300 MB and takes a while, so it runs only with
// SESSIONLOAD_DBSTALL=1:
//
//	SESSIONLOAD_DBSTALL=1 go test -run BadgerCommitStalls -v ./cmd/sessionload
func TestBadgerCommitStalls(t *testing.T) {
	if os.Getenv("SESSIONLOAD_DBSTALL") == "" {
		t.Skip("set SESSIONLOAD_DBSTALL=1 to run")
	}
	type engine struct {
		name string
		open func(t *testing.T) database.Database
	}
	badger := func(memtable int64, compression string) engine {
		return engine{fmt.Sprintf("badger,memtable=%dMiB,compression=%q", memtable>>20, compression), func(t *testing.T) database.Database {
			opts := map[string]any{
				"syncWrites": false, "numCompactors": 2, "numMemtables": 3,
				"memTableSize": memtable, "blockCacheSize": 64 << 20, "indexCacheSize": 32 << 20,
				"valueThreshold": 1024,
			}
			if compression != "" {
				opts["compression"] = compression
			}
			cfg, _ := json.Marshal(opts)
			db, err := badgerdb.New(t.TempDir(), cfg, "stall", nil)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}}
	}
	engines := []engine{badger(64<<20, ""), badger(16<<20, ""), badger(64<<20, "none"),
		// The database of vm.OpenDB since: block bytes in the value log,
		// every commit fsynced.
		{"storage", func(t *testing.T) database.Database {
			db, err := storage.Open(t.TempDir(), storage.Options{Separate: func(k []byte) bool { return bytes.HasPrefix(k, []byte("blk/")) }})
			if err != nil {
				t.Fatal(err)
			}
			return db
		}},
	}
	for _, c := range engines {
		t.Run(c.name, func(t *testing.T) {
			db := c.open(t)
			defer db.Close()
			const blocks, perBlock = 1200, 60 // 72,000 messages
			record := make([]byte, 450)
			blockBytes := make([]byte, perBlock*3676)
			_, _ = rand.Read(blockBytes)
			var lat []time.Duration
			msg := uint64(0)
			for b := range blocks {
				batch := db.NewBatch()
				key := binary.BigEndian.AppendUint64([]byte("blk/"), uint64(b))
				if err := batch.Put(key, blockBytes); err != nil {
					t.Fatal(err)
				}
				for range perBlock {
					msg++
					_, _ = rand.Read(record[:32])
					k := binary.BigEndian.AppendUint64([]byte("msg/session-id-32-bytes-padding.."), msg)
					_ = batch.Put(k, record)
					_ = batch.Put(binary.BigEndian.AppendUint64([]byte("inb/recipient-33-bytes-padding..."), msg), record[:40])
					_ = batch.Put(append([]byte("txi/"), record[:32]...), record[:12])
					_ = batch.Put(binary.BigEndian.AppendUint64([]byte("non/author-33-bytes-padding......"), msg%64), record[:8])
				}
				t0 := time.Now()
				if err := batch.Write(); err != nil {
					t.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			sorted := slices.Clone(lat)
			slices.Sort(sorted)
			var slow []string
			for i, d := range lat {
				if d > 50*time.Millisecond {
					slow = append(slow, fmt.Sprintf("block %d (message %d): %v", i, (i+1)*perBlock, d.Round(time.Millisecond)))
				}
			}
			t.Logf("%d commits of %d messages: p50 %v, p99 %v, max %v; > 50 ms: %v",
				len(lat), perBlock, sorted[len(sorted)/2].Round(10*time.Microsecond),
				sorted[len(sorted)*99/100].Round(10*time.Microsecond), sorted[len(sorted)-1].Round(time.Millisecond), slow)
		})
	}
}
