package storage

import (
	"testing"

	"github.com/luxfi/database"
	"github.com/luxfi/database/dbtest"
)

// The conformance suite of github.com/luxfi/database, on the LSM alone and
// with every value in the value log.
func TestConformance(t *testing.T) {
	for _, mode := range []struct {
		name     string
		separate func([]byte) bool
	}{
		{"lsm", nil},
		{"valuelog", func([]byte) bool { return true }},
	} {
		for name, test := range dbtest.Tests {
			t.Run(mode.name+"/"+name, func(t *testing.T) {
				db, err := Open(t.TempDir(), Options{Separate: mode.separate, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
				if err != nil {
					t.Fatal(err)
				}
				test(t, db)
				if err := db.Close(); err != nil && err != database.ErrClosed {
					t.Fatal(err)
				}
			})
		}
	}
}

// Replay gives the operations in the order they were written, separated
// keys and others interleaved, as database.Batch promises.
func TestReplayOrder(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Separate: func(k []byte) bool { return k[0] == 's' }, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.NewBatch()
	want := []op{{key: "s1", val: []byte("a")}, {key: "i1", val: []byte("b")}, {del: true, key: "s1"},
		{key: "s2", val: []byte("c")}, {key: "s3", val: []byte("d")}, {del: true, key: "i1"},
		{key: "i2", val: []byte("e")}, {key: "s4", val: []byte("f")}}
	for _, o := range want {
		if o.del {
			_ = b.Delete([]byte(o.key))
		} else {
			_ = b.Put([]byte(o.key), o.val)
		}
	}
	for range 2 { // before and after Write
		var got replayRecorder
		if err := b.Replay(&got); err != nil {
			t.Fatal(err)
		}
		if !sameOps(got.ops, want) {
			t.Fatalf("replayed %+v, want %+v", got.ops, want)
		}
		if err := b.Write(); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{"s2": "c", "s3": "d", "i2": "e", "s4": "f"} {
		if got, err := db.Get([]byte(k)); err != nil || string(got) != v {
			t.Fatalf("%s: %q, %v", k, got, err)
		}
	}
	for _, k := range []string{"s1", "i1"} {
		if ok, err := db.Has([]byte(k)); err != nil || ok {
			t.Fatalf("%s deleted in the batch is there: %v", k, err)
		}
	}
}

// Stats counts what was written: value-log bytes and segments (across a
// reopen), the LSM's files, and flushes.
func TestStats(t *testing.T) {
	dir := t.TempDir()
	sep := func(k []byte) bool { return k[0] == 's' }
	db, err := Open(dir, Options{Separate: sep, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 1000)
	for i := range 10 {
		if err := db.Put([]byte{'s', byte(i)}, val); err != nil {
			t.Fatal(err)
		}
		if err := db.Put([]byte{'i', byte(i)}, val); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.db.Flush(); err != nil {
		t.Fatal(err)
	}
	s, err := db.Stats()
	if err != nil || s.ValueLogBytes != 10_000 || s.ValueLogSegments != 1 || s.LSMBytes == 0 || s.Flushes < 1 || s.L0Files < 1 {
		t.Fatalf("stats %+v, %v", s, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Stats(); err != database.ErrClosed {
		t.Fatalf("Stats after Close: %v", err)
	}
	db, err = Open(dir, Options{Separate: sep})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put([]byte("s-more"), val[:500]); err != nil {
		t.Fatal(err)
	}
	if s, err := db.Stats(); err != nil || s.ValueLogBytes != 10_500 || s.ValueLogSegments != 2 {
		t.Fatalf("after a reopen and a write: %+v, %v", s, err)
	}
}
