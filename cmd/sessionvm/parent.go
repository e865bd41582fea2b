package main

import (
	"context"
	"time"
)

// watchParent returns a context that is cancelled when the process that
// started the plugin goes away (the plugin is re-parented, so getppid
// changes). A node stops its plugins with Shutdown and then SIGTERM, and
// also sets the parent-death signal to SIGTERM; but rpcchainvm.Serve
// ignores SIGTERM until the node has called Shutdown, so a plugin whose
// node crashed would otherwise serve nobody forever. Cancelling Serve's
// context stops it gracefully.
func watchParent(ctx context.Context, getppid func() int, every time.Duration) context.Context {
	ctx, cancel := context.WithCancel(ctx)
	parent := getppid()
	go func() {
		defer cancel()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if getppid() != parent {
					return
				}
			}
		}
	}()
	return ctx
}
