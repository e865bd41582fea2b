package service

import (
	"context"
	"testing"
	"time"
)

// waitTick waits for a value on C, failing after d.
func waitTick(t *testing.T, w *InboxWatch, d time.Duration, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(d):
		t.Fatalf("no value on C: %s", what)
	}
}

// TestClientWatchInbox: over a ws:// Client, C receives a value when a
// block adds to the inbox, and again once the watch has resubscribed on a
// new WebSocket after the node dropped the old one; over http:// it
// ticks at the poll interval.
func TestClientWatchInbox(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	sess := e.session(e.alice, e.bob)
	c := NewClient(wsURL(e), WithTimeout(10*time.Second))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	w, err := c.WatchInbox(ctx, e.bob.SessionID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	waitTick(t, w, time.Second, "the first value, at once")
	// The node's immediate notification (the inbox holds the session's
	// entries) may follow: drain it.
	select {
	case <-w.C:
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case <-w.C:
		t.Fatal("a value without a change")
	case <-time.After(300 * time.Millisecond):
	}
	e.sendAndAccept(t, sess)
	waitTick(t, w, 5*time.Second, "after a message to bob")

	// The node drops the WebSocket: C gets a value (notifications may
	// have been missed), and once resubscribed, notifications again.
	h := e.h.(*handler)
	h.wsMu.Lock()
	for conn := range h.conns {
		conn.abort()
	}
	h.wsMu.Unlock()
	waitTick(t, w, 5*time.Second, "after the connection was lost")
	deadline := time.Now().Add(15 * time.Second)
	for {
		w.mu.Lock()
		ok := w.sub != ""
		w.mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("not resubscribed")
		}
		time.Sleep(100 * time.Millisecond)
	}
	select {
	case <-w.C:
	default:
	}
	e.sendAndAccept(t, sess)
	waitTick(t, w, 5*time.Second, "after a message, resubscribed")

	// Over http:// it polls.
	hc := NewClient(e.srv.URL, WithTimeout(10*time.Second))
	pw, err := hc.WatchInbox(ctx, e.bob.SessionID, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	for range 3 {
		waitTick(t, pw, 2*time.Second, "polling")
	}
	if _, err := hc.WatchInbox(ctx, "07zz", 0); err == nil {
		t.Fatal("a malformed Session ID was watched")
	}
}
