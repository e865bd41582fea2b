package main

import (
	"context"
	"os"
	"runtime"
	"testing"
	"time"
)

// TestParseNodeStat: minor faults and user+system time are read after the
// command name, which may hold spaces and parentheses.
func TestParseNodeStat(t *testing.T) {
	stat := "4242 (session load (x)) S 1 4242 4242 0 -1 4194560 123456 0 7 0 250 75 0 0 20 0 9 0 100 1000 10"
	st, ok := parseNodeStat(stat)
	if !ok || st.faults != 123456 || st.cpu != 325*clockTick {
		t.Fatalf("parsed %+v, %v", st, ok)
	}
	for _, bad := range []string{"", "4242 (x", "4242 (x) S 1 2", "4242 (x) S 1 4242 4242 0 -1 4194560 many 0 7 0 250 75"} {
		if st, ok := parseNodeStat(bad); ok {
			t.Fatalf("parsed %q as %+v", bad, st)
		}
	}
}

// TestRunNodeSeconds: with the node's PID known (here the test process,
// which runs the node in-process), the timeline carries the node's
// faults and CPU of each second of the timed phase.
func TestRunNodeSeconds(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	n := startNode(t)
	r, err := Run(context.Background(), Config{URL: n.URL(), Clients: 3, Duration: 1500 * time.Millisecond, Rate: 60, Verify: true, NodePID: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	checkResult(t, r)
	if len(r.Timeline) == 0 {
		t.Fatal("no timeline")
	}
	// Second 0 is whole (the phase lasts 1.5 s): the process that runs
	// node and generator faulted or used CPU in it.
	if s := r.Timeline[0]; s.At != 0 || (s.NodeFaults <= 0 && s.NodeCores <= 0) || s.NodeCores > float64(runtime.NumCPU())+0.5 {
		t.Fatalf("second 0: %+v", s)
	}
}
