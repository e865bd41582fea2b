package benchmarks

import (
	"testing"
	"time"
)

// cpuTimer measures the process CPU time of a benchmark loop, paused with
// the benchmark timer, and reports it as cpu-ns/op beside ns/op.
type cpuTimer struct {
	b       *testing.B
	total   time.Duration
	started time.Duration
	running bool
}

func startCPU(b *testing.B) *cpuTimer {
	c := &cpuTimer{b: b}
	c.start()
	return c
}

func (c *cpuTimer) start() {
	if !c.running {
		c.started, c.running = processCPU(), true
	}
}

func (c *cpuTimer) stop() {
	if c.running {
		c.total += processCPU() - c.started
		c.running = false
	}
}

// pause stops this timer and the benchmark's. The benchmark timer reads
// the memory statistics when it stops and starts (runtime.ReadMemStats, a
// stop-the-world), outside its own measurement: this timer stops before it
// and starts after it, so that it leaves them out too.
func (c *cpuTimer) pause() { c.stop(); c.b.StopTimer() }

// resume restarts both.
func (c *cpuTimer) resume() { c.b.StartTimer(); c.start() }

// report adds the metric; defer it right after startCPU.
func (c *cpuTimer) report() {
	c.stop()
	if c.total > 0 && c.b.N > 0 {
		c.b.ReportMetric(float64(c.total.Nanoseconds())/float64(c.b.N), "cpu-ns/op")
	}
}
