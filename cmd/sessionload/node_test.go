package main

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestNodeTrace runs the built-in node as a child process with --trace:
// SIGUSR1 writes the flight recorder's window (a Go execution trace) to
// the file while the node keeps serving, and exit writes it again.
func TestNodeTrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node process")
	}
	file := filepath.Join(t.TempDir(), "node.trace")
	url, pid, stop := childNode(t, "trace", "--trace", file, "--trace-window", "2s")
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	isTrace := func() bool {
		b, err := os.ReadFile(file)
		// A Go execution trace starts with its version line.
		return err == nil && bytes.HasPrefix(b, []byte("go 1.")) && bytes.Contains(b[:min(len(b), 16)], []byte(" trace"))
	}
	deadline := time.Now().Add(20 * time.Second)
	for !isTrace() {
		if time.Now().After(deadline) {
			t.Fatal("no execution trace written after SIGUSR1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// SIGUSR1 did not stop the node.
	if err := waitHealthy(url, 5*time.Second, nil); err != nil {
		t.Fatalf("node not serving after SIGUSR1: %v", err)
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	stop()
	stopped = true
	if !isTrace() {
		t.Fatal("no execution trace written at exit")
	}
}
