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
