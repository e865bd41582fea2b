package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/keyfiletest"
)

// The message store beside an identity file gets the file's work factor.
func TestIdentityFileWorkFactor(t *testing.T) {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	for _, logN := range []int{10, 12} {
		restore := keyfiletest.SetWorkFactor(logN)
		path := filepath.Join(t.TempDir(), "id.json")
		err := id.Save(path, "p")
		restore()
		if err != nil {
			t.Fatal(err)
		}
		if got := identityFileWorkFactor(path); got != logN {
			t.Fatalf("identity file at logN %d: read %d", logN, got)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte(`{"kdf":{"logN":40}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := identityFileWorkFactor(bad); got != 0 {
		t.Fatalf("out-of-range logN read as %d", got)
	}
	if got := identityFileWorkFactor(filepath.Join(t.TempDir(), "none.json")); got != 0 {
		t.Fatalf("missing file read as %d", got)
	}
}
