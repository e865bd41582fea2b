package main

import (
	"os"
	"slices"
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
		if st, ok := readNodeStat(nodePID); ok {
			s.node, s.haveNode = st.cpu, true
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

// nodeStat is what /proc/PID/stat says of the node process: its minor
// page faults and CPU time (user and system) so far.
type nodeStat struct {
	faults int64
	cpu    time.Duration
}

func readNodeStat(pid int) (nodeStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nodeStat{}, false
	}
	return parseNodeStat(string(b))
}

// parseNodeStat reads /proc/PID/stat. Fields after the ")" closing the
// command name (which may hold spaces): state is field 3, minflt 10,
// utime 14, stime 15.
func parseNodeStat(stat string) (nodeStat, bool) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return nodeStat{}, false
	}
	f := strings.Fields(stat[i+1:])
	if len(f) <= 12 {
		return nodeStat{}, false
	}
	flt, err0 := strconv.ParseInt(f[7], 10, 64)
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err0 != nil || err1 != nil || err2 != nil {
		return nodeStat{}, false
	}
	return nodeStat{faults: flt, cpu: time.Duration(u+st) * clockTick}, true
}

// nodeSeconds samples the node's stat at start and every second after
// it until stop is closed, and returns the samples (the first at start).
func nodeSeconds(pid int, start time.Time, stop <-chan struct{}) []nodeStat {
	var out []nodeStat
	for k := 0; ; k++ {
		if k > 0 {
			select {
			case <-stop:
				return out
			case <-time.After(time.Until(start.Add(time.Duration(k) * time.Second))):
			}
		}
		st, ok := readNodeStat(pid)
		if !ok {
			return out
		}
		out = append(out, st)
	}
}

// freshPageMicros measures what first touching fresh memory costs on this
// host: µs per 4 KiB page of a new anonymous mapping (the page fault and
// the zeroing), the median of 3 rounds of 16 MiB. It is the host's
// figure behind the tail latency of a node on BadgerDB (the database of
// earlier versions): its memtable switch zeroes an 83 MiB arena and a
// flush writes its table through a fresh mapping (cmd/sessionload/README.md,
// "What a flush allocates"), tens of thousands of pages in a second, which
// cost ~1 µs each on some hosts and over 10 µs on others. 0 when it cannot
// be measured.
func freshPageMicros() float64 {
	const size, page = 16 << 20, 4096
	var rounds [3]float64
	for r := range rounds {
		b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return 0
		}
		t0 := time.Now()
		for i := 0; i < size; i += page {
			b[i] = 1
		}
		rounds[r] = float64(time.Since(t0).Nanoseconds()) / 1e3 / (size / page)
		_ = syscall.Munmap(b)
	}
	slices.Sort(rounds[:])
	return rounds[1]
}
