package service

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/session/vm/tx"
)

func wsURL(e *env) string { return "ws" + strings.TrimPrefix(e.srv.URL, "http") + "/rpc" }

// openStreams is how many WebSockets the env's handler holds.
func openStreams(e *env) int {
	h := e.h.(*handler)
	h.wsMu.Lock()
	defer h.wsMu.Unlock()
	return len(h.conns)
}

// TestClientOverWebSocket: a Client of a ws:// URL makes its calls over
// one WebSocket, pipelined from many goroutines (typed calls, signing
// helpers, a batch), with the answers POST gives.
func TestClientOverWebSocket(t *testing.T) {
	e := streamEnv(t, StreamOptions{})
	c := NewClient(wsURL(e), WithTimeout(10*time.Second), WithClock(e.clock.Now))
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	cfg, err := c.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, err := e.client.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ChainID != want.ChainID {
		t.Fatalf("chain %s over the WebSocket, %s over POST", cfg.ChainID, want.ChainID)
	}
	if n := openStreams(e); n != 1 {
		t.Fatalf("%d WebSockets open, want 1", n)
	}
	sess := e.session(e.alice, e.bob)
	// 40 messages: 20 in a batch, then reads from 8 goroutines at once
	// (pipelined on the one connection), then 20 one by one.
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	nonce := mustNonce(t, e, e.alice.SessionID)
	signedTxs := make([][]byte, 40)
	for i := range signedTxs {
		st, err := tx.Sign(e.alice, e.vm.ChainID(), nonce+uint64(i), &tx.SendMessage{Session: sess, Ciphertext: []byte{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		signedTxs[i] = st.Bytes()
	}
	results, err := c.IssueTxs(ctx, signedTxs[:20])
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range results {
		if r.Err != nil {
			t.Fatalf("batch call %d: %v", i, r.Err)
		}
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := c.Nonce(ctx, e.bob.SessionID); err != nil {
					errs <- err
					return
				}
				if _, err := c.Session(ctx, sess); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, b := range signedTxs[20:] {
		if _, err := c.IssueTx(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	e.accept()
	page, err := c.Messages(ctx, sess, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Messages) != 40 {
		t.Fatalf("%d messages on chain, want 40", len(page.Messages))
	}
	for i, m := range page.Messages {
		if !bytes.Equal(m.Ciphertext, []byte{byte(i)}) {
			t.Fatalf("message %d out of order", i)
		}
	}
	if n := openStreams(e); n != 1 {
		t.Fatalf("%d WebSockets open after the calls, want 1", n)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for openStreams(e) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the node still holds the WebSocket after Close")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestClientWebSocketFallback: where the node does not serve the
// WebSocket, or closes it, a ws:// Client's calls go over POST.
func TestClientWebSocketFallback(t *testing.T) {
	off := newEnv(t) // the transport is off: upgrades are answered 400
	c := NewClient(wsURL(off), WithTimeout(10*time.Second))
	for range 3 {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatalf("over POST: %v", err)
		}
	}
	e := streamEnv(t, StreamOptions{})
	c = NewClient(wsURL(e), WithTimeout(10*time.Second))
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Status(context.Background()); err != nil || openStreams(e) != 1 {
		t.Fatalf("err %v, %d WebSockets", err, openStreams(e))
	}
	// The node shuts its WebSockets: the next calls go over POST.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.h.(StreamShutdowner).ShutdownStreams(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.Status(context.Background()); err != nil {
			t.Fatalf("after the WebSocket closed: %v", err)
		}
	}
}
