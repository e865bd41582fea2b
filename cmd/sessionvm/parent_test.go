package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

func TestWatchParent(t *testing.T) {
	var ppid atomic.Int64
	ppid.Store(100)
	get := func() int { return int(ppid.Load()) }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := watchParent(ctx, get, time.Millisecond)
	select {
	case <-w.Done():
		t.Fatal("cancelled while the parent lives")
	case <-time.After(20 * time.Millisecond):
	}
	ppid.Store(1) // re-parented to init: the node is gone
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not cancelled after the parent died")
	}

	// Cancelling the parent context stops the watcher too.
	ctx2, cancel2 := context.WithCancel(context.Background())
	w2 := watchParent(ctx2, func() int { return 7 }, time.Hour)
	cancel2()
	<-w2.Done()
}
