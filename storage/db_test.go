package storage

import (
	"slices"
	"strings"
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

// recorder is a KeyValueWriterDeleter that lists what it is given.
type recorder []string

func (r *recorder) Put(k, v []byte) error {
	*r = append(*r, "put "+string(k)+"="+string(v))
	return nil
}
func (r *recorder) Delete(k []byte) error { *r = append(*r, "del "+string(k)); return nil }

// Replay gives the operations in the order they were written, separated
// keys and others interleaved, as database.Batch promises.
func TestReplayOrder(t *testing.T) {
	db, err := Open(t.TempDir(), Options{Separate: func(k []byte) bool { return k[0] == 's' }, MemTableBytes: 1 << 20, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	b := db.NewBatch()
	want := []string{"put s1=a", "put i1=b", "del s1", "put s2=c", "put s3=d", "del i1", "put i2=e", "put s4=f"}
	for _, op := range want {
		k, v, _ := strings.Cut(op[4:], "=")
		if op[:3] == "del" {
			_ = b.Delete([]byte(k))
		} else {
			_ = b.Put([]byte(k), []byte(v))
		}
	}
	for range 2 { // before and after Write
		var got recorder
		if err := b.Replay(&got); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("replayed %q, want %q", got, want)
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
