package keyfiletest_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/keyfiletest"
)

func TestSetWorkFactor(t *testing.T) {
	id, err := crypto.IdentityFromSeed([crypto.SeedSize]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	logN := func() int {
		path := filepath.Join(t.TempDir(), "id.json")
		if err := id.Save(path, "pw"); err != nil {
			t.Fatal(err)
		}
		data, _ := os.ReadFile(path)
		var f struct {
			KDF struct{ LogN int } `json:"kdf"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatal(err)
		}
		if _, err := crypto.LoadIdentity(path, "pw"); err != nil {
			t.Fatal(err)
		}
		return f.KDF.LogN
	}
	restore := keyfiletest.SetWorkFactor(keyfiletest.MinWorkFactor)
	if got := logN(); got != keyfiletest.MinWorkFactor {
		t.Fatalf("work factor %d, want %d", got, keyfiletest.MinWorkFactor)
	}
	restore()
	restore = keyfiletest.SetWorkFactor(11)
	defer restore()
	if got := logN(); got != 11 {
		t.Fatalf("work factor %d, want 11", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a work factor of 9")
		}
	}()
	keyfiletest.SetWorkFactor(9)
}
