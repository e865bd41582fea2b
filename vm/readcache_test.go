package vm

import (
	"errors"
	"testing"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
)

func TestBaseCacheCoherence(t *testing.T) {
	db := memdb.New()
	db.Put([]byte("a"), []byte("1"))
	c := newBaseCache(db)
	if v, err := c.Get([]byte("a")); err != nil || string(v) != "1" {
		t.Fatal("read through")
	}
	if _, err := c.Get([]byte("b")); !errors.Is(err, database.ErrNotFound) {
		t.Fatal("absent")
	}
	if has, _ := c.Has([]byte("c")); has {
		t.Fatal("absent c")
	}
	// A batch written to the base, then applied, updates what was read.
	b := db.NewBatch()
	b.Put([]byte("a"), []byte("2"))
	b.Put([]byte("b"), []byte("new"))
	b.Put([]byte("c"), make([]byte, baseCacheMaxValue+1))
	b.Delete([]byte("zz"))
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	if err := c.apply(b); err != nil {
		t.Fatal(err)
	}
	if v, _ := c.Get([]byte("a")); string(v) != "2" {
		t.Fatalf("a = %q after apply", v)
	}
	if v, _ := c.Get([]byte("b")); string(v) != "new" {
		t.Fatal("b after apply")
	}
	if has, _ := c.Has([]byte("c")); !has {
		t.Fatal("large value: presence must be known")
	}
	if v, err := c.Get([]byte("c")); err != nil || len(v) != baseCacheMaxValue+1 {
		t.Fatal("large value read through")
	}
	// Without apply, the cache would serve the old value: apply is what
	// keeps it coherent.
	db.Put([]byte("a"), []byte("3"))
	if v, _ := c.Get([]byte("a")); string(v) != "2" {
		t.Fatal("cache should hold the applied value until the next apply")
	}
	c.Delete([]byte("a"))
	if _, err := c.Get([]byte("a")); !errors.Is(err, database.ErrNotFound) {
		t.Fatal("write-through delete")
	}
}
