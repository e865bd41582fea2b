package node

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luxfi/session/vm/vmtest"
)

// TestFailedStartCreatesNothing: a start that fails (busy port, bad node
// config, unreadable stored state) on a new data directory leaves no
// directory and no genesis behind, so a later start with another genesis
// is not refused.
func TestFailedStartCreatesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "new", "data")

	for _, c := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"busy port", Config{DataDir: dir, HTTPAddr: busy.Addr().String()}, "listening on"},
		{"bad node config", Config{DataDir: dir, VMConfig: []byte(`{"mempoolTxs": -1}`)}, "mempoolTxs"},
		{"bad genesis", Config{DataDir: dir, Genesis: []byte(`{"timestamp": "soon"}`)}, "genesis"},
	} {
		if c.cfg.HTTPAddr == "" {
			c.cfg.HTTPAddr = "127.0.0.1:0"
		}
		c.cfg.Logger = quietLogger()
		_, err := Start(c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: Start = %v, want an error containing %q", c.name, err, c.want)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s: the failed start left %s behind (%v)", c.name, dir, err)
		}
	}

	// The next start, with a genesis of its own, is a new chain.
	gen, err := vmtest.GenesisJSON(1_767_225_600, map[string]any{"sessionTTL": 600})
	if err != nil {
		t.Fatal(err)
	}
	n := start(t, Config{DataDir: dir, Genesis: gen})
	if n.ChainID() != ChainIDOf(gen) {
		t.Fatalf("chain %s, want the one of the given genesis %s", n.ChainID(), ChainIDOf(gen))
	}
	stop(t, n)
}

// TestFailedStartKeepsExistingDirectory: a failed start on a directory
// that existed removes nothing from it.
func TestFailedStartKeepsExistingDirectory(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "keep.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	if _, err := Start(Config{DataDir: dir, HTTPAddr: busy.Addr().String(), Logger: quietLogger()}); err == nil {
		t.Fatal("Start on a busy port succeeded")
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Fatalf("existing file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, GenesisFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a genesis was stored by a failed start: %v", err)
	}
}
