package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/luxfi/session/node"
)

// TestBusyPortCreatesNothing runs sessiond as a user does on a port that
// is taken: it exits with status 1, saying why, before creating the data
// directory, so the next start may still choose its genesis.
func TestBusyPortCreatesNothing(t *testing.T) {
	bin := sessiondBinary(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := filepath.Join(t.TempDir(), "data")

	var stderr bytes.Buffer
	cmd := exec.Command(bin, "--data-dir", dir, "--http", busy.Addr().String())
	cmd.Stderr = &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "address already in use") {
		t.Fatalf("sessiond on a busy port: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed start created %s (%v)", dir, err)
	}

	// A start with a genesis file of its own then makes that chain.
	gen := filepath.Join(t.TempDir(), "genesis.json")
	if err := os.WriteFile(gen, []byte(`{"timestamp": 1767225600, "config": {"sessionTTL": 600}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	close(stop)
	stderr.Reset()
	if code := run([]string{"--data-dir", dir, "--http", "127.0.0.1:0", "--genesis", gen, "--log-level", "warn"}, os.Stdout, &stderr, stop); code != 0 {
		t.Fatalf("start with --genesis after the failed start: exit %d\n%s", code, stderr.String())
	}
	stored, err := os.ReadFile(filepath.Join(dir, node.GenesisFile))
	if err != nil || !strings.Contains(string(stored), `"sessionTTL": 600`) {
		t.Fatalf("stored genesis %q, %v", stored, err)
	}
}
