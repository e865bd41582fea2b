//go:build crashpoints

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"syscall"
)

// Enabled reports whether this build has crash points.
const Enabled = true

var (
	mu    sync.Mutex
	count int
	at    = func() int { n, _ := strconv.Atoi(os.Getenv(EnvAt)); return n }()
)

// Hit marks a point where a crash test may kill the process.
func Hit(point string) {
	mu.Lock()
	defer mu.Unlock()
	count++
	if path := os.Getenv(EnvLog); path != "" {
		if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			fmt.Fprintf(f, "%d %s\n", count, point)
			f.Sync()
			f.Close()
		}
	}
	if at > 0 && count == at {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
