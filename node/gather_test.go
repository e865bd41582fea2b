package node

import (
	"context"
	"testing"
	"time"
)

// fakeGather runs gather on a fake clock: arrivals(t) is the pending
// count at fake time t since the start. It returns how long gather waited.
func fakeGather(ctx context.Context, delay, window time.Duration, batch int, arrivals func(time.Duration) int) time.Duration {
	var elapsed time.Duration
	start := time.Unix(0, 0)
	now := func() time.Time { return start.Add(elapsed) }
	sleep := func(ctx context.Context, d time.Duration) {
		if ctx.Err() == nil {
			elapsed += d
		}
	}
	gather(ctx, delay, window, batch, func() int { return arrivals(elapsed) }, now, sleep)
	return elapsed
}

// TestGather holds the block loop's wait: one delay for a lone
// transaction or when nothing more arrives, at most the window while
// transactions keep arriving, and no longer once batch are pending.
func TestGather(t *testing.T) {
	ctx := context.Background()
	const delay, window = 2 * time.Millisecond, 10 * time.Millisecond
	steady := func(e time.Duration) int { return 1 + int(e/time.Millisecond) } // one a millisecond
	cases := []struct {
		name     string
		window   time.Duration
		batch    int
		arrivals func(time.Duration) int
		want     time.Duration
	}{
		{"lone transaction", window, 512, func(time.Duration) int { return 1 }, 2 * delay},
		{"steady trickle: the window", window, 512, steady, window},
		{"arrivals stop", window, 512, func(e time.Duration) int { return steady(min(e, 5*time.Millisecond)) }, 8 * time.Millisecond},
		{"batch reached", window, 5, steady, 4 * time.Millisecond},
		{"batch reached during the delay", window, 2, steady, delay},
		{"no window", -1, 512, steady, delay},
		{"window not above the delay", delay, 512, steady, delay},
		{"window not a multiple of the delay", 5 * time.Millisecond, 512, steady, 5 * time.Millisecond},
	}
	for _, c := range cases {
		if got := fakeGather(ctx, delay, c.window, c.batch, c.arrivals); got != c.want {
			t.Errorf("%s: waited %v, want %v", c.name, got, c.want)
		}
		if got := fakeGather(ctx, delay, c.window, c.batch, c.arrivals); got > max(c.window, delay) {
			t.Errorf("%s: waited %v, beyond the window", c.name, got)
		}
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if got := fakeGather(cancelled, delay, window, 512, steady); got != 0 {
		t.Errorf("cancelled: waited %v", got)
	}
}

// TestLoneTxNotHeldByWindow: with a window longer than the test, a lone
// transaction is still built after the delay, because no other arrives.
func TestLoneTxNotHeldByWindow(t *testing.T) {
	n := start(t, Config{DataDir: t.TempDir(), BuildWindow: time.Hour, BuildBatch: 1 << 20})
	c := client(n)
	r, err := c.Register(context.Background(), identity(t, 2))
	if st := waitAccepted(t, c, r, err); st.Height != 1 {
		t.Fatalf("accepted at height %d, want 1", st.Height)
	}
	stop(t, n)
}
