package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc CPU times (100 on Linux).
const clockTick = 10 * time.Millisecond

// cpuSample is CPU time used so far: by this process, by the node process
// (when its PID is known), and by the whole machine (busy, total).
type cpuSample struct {
	self, node       time.Duration
	busy, total      time.Duration
	haveNode, haveOS bool
}

func sampleCPU(nodePID int) cpuSample {
	var s cpuSample
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	if nodePID > 0 {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(nodePID) + "/stat"); err == nil {
			// Fields after the ")" closing the command name: state is
			// field 3, utime 14, stime 15.
			if i := strings.LastIndexByte(string(b), ')'); i >= 0 {
				f := strings.Fields(string(b[i+1:]))
				if len(f) > 12 {
					u, err1 := strconv.ParseInt(f[11], 10, 64)
					st, err2 := strconv.ParseInt(f[12], 10, 64)
					if err1 == nil && err2 == nil {
						s.node, s.haveNode = time.Duration(u+st)*clockTick, true
					}
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		if len(f) > 5 && f[0] == "cpu" {
			var total, idle int64
			for i, v := range f[1:] {
				n, _ := strconv.ParseInt(v, 10, 64)
				if i == 7 || i == 8 { // guest time is already in user
					continue
				}
				total += n
				if i == 3 || i == 4 { // idle, iowait
					idle += n
				}
			}
			s.busy, s.total, s.haveOS = time.Duration(total-idle)*clockTick, time.Duration(total)*clockTick, true
		}
	}
	return s
}
