package service

import (
	"context"
	"sync"
	"time"
)

// budget is a counting semaphore of bytes with FIFO waiters: the handler
// holds response and request-body bytes against one each, so what clients
// can make the node hold at once is bounded whatever they do.
type budget struct {
	mu      sync.Mutex
	limit   int64
	used    int64
	waiters []*budgetWaiter // FIFO
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// tryAcquire takes n bytes if they are free now and nobody waits before.
func (b *budget) tryAcquire(n int64) bool {
	if n <= 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if n > b.limit-b.used || len(b.waiters) > 0 {
		return false
	}
	b.used += n
	return true
}

// acquire takes n bytes, waiting at most wait (and while ctx lasts) for
// them. n above the limit never succeeds.
func (b *budget) acquire(ctx context.Context, n int64, wait time.Duration) bool {
	if n <= 0 {
		return true
	}
	if n > b.limit {
		return false
	}
	b.mu.Lock()
	if n <= b.limit-b.used && len(b.waiters) == 0 {
		b.used += n
		b.mu.Unlock()
		return true
	}
	if wait <= 0 {
		b.mu.Unlock()
		return false
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.ready:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted while giving up: keep it
		return true
	default:
	}
	for i, x := range b.waiters {
		if x == w {
			b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
			break
		}
	}
	// A large waiter at the head may have held up smaller ones.
	b.grantLocked()
	return false
}

// release returns n bytes and wakes the waiters they satisfy, in order.
func (b *budget) release(n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	if b.used < 0 {
		b.mu.Unlock()
		panic("service: budget released more than acquired")
	}
	b.grantLocked()
	b.mu.Unlock()
}

func (b *budget) grantLocked() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if w.n > b.limit-b.used {
			return
		}
		b.used += w.n
		close(w.ready)
		b.waiters[0] = nil
		b.waiters = b.waiters[1:]
	}
}

// inUse returns the bytes held now.
func (b *budget) inUse() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
