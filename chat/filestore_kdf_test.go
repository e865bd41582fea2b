package chat

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/luxfi/session/crypto"
)

// The store's key is as costly to guess as the identity file beside it:
// new stores use the identity file's scrypt parameters, and a store that
// an older version wrote at N = 2^15 still opens.
func TestStoreWorkFactorIsIdentityFiles(t *testing.T) {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	idPath := filepath.Join(t.TempDir(), "id.json")
	if err := id.Save(idPath, "pass"); err != nil {
		t.Fatal(err)
	}
	var idFile struct {
		KDF struct {
			LogN, R, P int
		} `json:"kdf"`
	}
	b, err := os.ReadFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idFile); err != nil {
		t.Fatal(err)
	}
	if idFile.KDF.LogN != defaultStoreLogN || idFile.KDF.R != 8 || idFile.KDF.P != 1 {
		t.Fatalf("identity file scrypt logN %d r %d p %d, store default logN %d r 8 p 1",
			idFile.KDF.LogN, idFile.KDF.R, idFile.KDF.P, defaultStoreLogN)
	}

	for _, logN := range []int{defaultStoreLogN, 15} {
		old := storeLogN
		storeLogN = logN
		dir := filepath.Join(t.TempDir(), "store")
		s, err := OpenFileStore(dir, "pass")
		if err != nil {
			storeLogN = old
			t.Fatal(err)
		}
		s.Close()
		storeLogN = old // reopening reads the parameters from the key file
		var key struct {
			KDF struct{ LogN int } `json:"kdf"`
		}
		b, err := os.ReadFile(filepath.Join(dir, keyName))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &key); err != nil || key.KDF.LogN != logN {
			t.Fatalf("store key file logN %d (%v), want %d", key.KDF.LogN, err, logN)
		}
		s, err = OpenFileStore(dir, "pass")
		if err != nil {
			t.Fatalf("a store written at logN %d: %v", logN, err)
		}
		s.Close()
	}
}

// A store opened with a work factor is created with it, and keeps its own
// parameters when reopened with another; a factor out of range is refused.
func TestOpenFileStoreWorkFactor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "store")
	for _, logN := range []int{11, 12} { // created at 11, reopened asking 12
		s, err := OpenFileStoreWorkFactor(dir, "pass", logN)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		var key struct {
			KDF struct{ LogN int } `json:"kdf"`
		}
		b, err := os.ReadFile(filepath.Join(dir, keyName))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &key); err != nil || key.KDF.LogN != 11 {
			t.Fatalf("after opening with logN %d: key file logN %d (%v), want 11", logN, key.KDF.LogN, err)
		}
	}
	for _, logN := range []int{0, 9, 23} {
		if _, err := OpenFileStoreWorkFactor(filepath.Join(t.TempDir(), "s"), "pass", logN); err == nil {
			t.Fatalf("logN %d accepted", logN)
		}
	}
}
