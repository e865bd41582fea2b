package storage

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Crash consistency: a child process (this test binary, re-executed into
// TestHelperProcess) writes batches and reports each one once its Write
// has returned; the parent kills it with SIGKILL, reopens the directory
// and checks that every reported batch is there in full, that the batches
// in flight are there in full or not at all, and that no segment that
// existed before the child started was appended to.

const (
	crashDirEnv     = "STORAGE_CRASH_DIR"
	crashBaseEnv    = "STORAGE_CRASH_BASE"
	crashWriters    = 2
	crashSegBytes   = 16 << 10
	crashRoundSpan  = 1_000_000 // batch indexes of round r: r*crashRoundSpan + …
	crashSeparators = 4
)

var crashSizes = []int{0, 1, 700, 5000, 2 * crashSegBytes}

// crashBatch is what the batch with index i (written by writer i %
// crashWriters) holds: an inline record, 1–4 separated values (one empty,
// one larger than a segment, in turn), a separated key put and deleted in
// the batch, and the writer's two "last" keys overwritten by each batch.
func crashBatch(i int) (kv map[string][]byte, tmp string) {
	kv = map[string][]byte{
		fmt.Sprintf("c/%09d/meta", i): gen(fmt.Sprint("meta", i), 10+i%50),
	}
	for j := range 1 + i%crashSeparators {
		kv[fmt.Sprintf("s/%09d/%d", i, j)] = gen(fmt.Sprint("v", i, j), crashSizes[(i+j)%len(crashSizes)])
	}
	return kv, fmt.Sprintf("s/%09d/tmp", i)
}

func crashLastKeys(w int) (inline, sep string) {
	return fmt.Sprintf("c/w%d/last", w), fmt.Sprintf("s/w%d/last", w)
}

func crashOpts() Options {
	return Options{Separate: sepS, SegmentBytes: crashSegBytes, MemTableBytes: 1 << 20, CacheBytes: 1 << 20}
}

// TestHelperProcess is the child of TestCrashKill; it does nothing in a
// normal run.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashKill")
	}
	base, err := strconv.Atoi(os.Getenv(crashBaseEnv))
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	d, err := Open(dir, crashOpts())
	if err != nil {
		fmt.Println("error", err)
		os.Exit(2)
	}
	for w := range crashWriters {
		go func() {
			for k := 0; ; k++ {
				i := base + w + k*crashWriters
				kv, tmp := crashBatch(i)
				b := d.NewBatch()
				put := func(k string, v []byte) {
					if err := b.Put([]byte(k), v); err != nil {
						fmt.Println("error", err)
						os.Exit(2)
					}
				}
				for k, v := range kv {
					put(k, v)
				}
				put(tmp, gen("tmp", 100))
				if err := b.Delete([]byte(tmp)); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				li, ls := crashLastKeys(w)
				put(li, []byte(strconv.Itoa(i)))
				put(ls, gen(fmt.Sprint("last", i), 300))
				if err := b.Write(); err != nil {
					fmt.Println("error", err)
					os.Exit(2)
				}
				fmt.Printf("done %d\n", i) // one write(2): a whole line or none
			}
		}()
	}
	select {}
}

// runCrashChild starts the child on dir, lets it report at least minDone
// batches, kills it a moment later and returns the indexes it reported.
func runCrashChild(t *testing.T, dir string, base, minDone int, rng *rand.Rand) map[int]bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashBaseEnv+"="+strconv.Itoa(base))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := map[int]bool{}
	killed := false
	timeout := time.AfterFunc(60*time.Second, func() { _ = cmd.Process.Kill() })
	defer timeout.Stop()
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		n, ok := strings.CutPrefix(line, "done ")
		if !ok {
			if strings.HasPrefix(line, "error") {
				t.Errorf("child: %s", line)
			}
			continue
		}
		i, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("child printed %q", line)
		}
		done[i] = true
		if !killed && len(done) >= minDone {
			// Kill at some point within the next commit or two, so that a
			// Write is caught at any of its steps.
			time.Sleep(time.Duration(rng.IntN(4000)) * time.Microsecond)
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended by itself after %d batches: %v\n%s", len(done), err, stderr.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child did not die of SIGKILL: %v\n%s", err, stderr.String())
	}
	return done
}

// checkCrashState checks the database after the children of rounds
// [0, rounds) were killed, given the indexes each reported.
func checkCrashState(t *testing.T, d *DB, done map[int]bool) {
	t.Helper()
	// present[i]: how many of batch i's keys are there.
	present := map[int]int{}
	it := d.NewIterator()
	defer it.Release()
	for it.Next() {
		k := string(it.Key())
		if strings.HasPrefix(k, "c/w") || strings.HasPrefix(k, "s/w") || k == "s/after" {
			continue
		}
		var i int
		if len(k) < 11 {
			t.Fatalf("unexpected key %q", k)
		}
		if _, err := fmt.Sscanf(k[2:11], "%09d", &i); err != nil {
			t.Fatalf("unexpected key %q", k)
		}
		kv, tmp := crashBatch(i)
		if k == tmp {
			t.Fatalf("%q, put and deleted in one batch, is there", k)
		}
		want, ok := kv[k]
		if !ok {
			t.Fatalf("unexpected key %q", k)
		}
		if !bytes.Equal(it.Value(), want) {
			t.Fatalf("%q: %d bytes, not the %d written", k, len(it.Value()), len(want))
		}
		present[i]++
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterating after the crash: %v", err)
	}
	inFlight := 0
	for i := range present {
		if !done[i] {
			inFlight++
		}
	}
	t.Logf("%d batches reported written, %d more (in flight at a kill) there", len(done), inFlight)
	for i := range done {
		kv, _ := crashBatch(i)
		if present[i] != len(kv) {
			t.Fatalf("batch %d was reported written, but %d of its %d keys are there", i, present[i], len(kv))
		}
	}
	// Per writer per round: what is there is what was reported, plus at
	// most the one batch in flight when the child was killed, and the
	// writer's "last" keys are those of its last batch there.
	type wr struct{ w, round int }
	lastDone, lastThere := map[wr]int{}, map[wr]int{}
	for i := range done {
		k := wr{i % crashWriters, i / crashRoundSpan}
		lastDone[k] = max(lastDone[k], i+1) // +1: 0 is "none"
	}
	for i, n := range present {
		kv, _ := crashBatch(i)
		if n != len(kv) {
			t.Fatalf("batch %d is there in part: %d of its %d keys", i, n, len(kv))
		}
		k := wr{i % crashWriters, i / crashRoundSpan}
		lastThere[k] = max(lastThere[k], i+1)
		if !done[i] && i+1-lastDone[k] != crashWriters && !(lastDone[k] == 0 && i%crashRoundSpan < crashWriters) {
			t.Fatalf("batch %d is there, but it is not the one after the last reported batch of its writer (%d)", i, lastDone[k]-1)
		}
	}
	for w := range crashWriters {
		last := -1
		for k, v := range lastThere {
			if k.w == w && v-1 > last {
				last = v - 1
			}
		}
		if last < 0 {
			continue
		}
		li, ls := crashLastKeys(w)
		if got, err := d.Get([]byte(li)); err != nil || string(got) != strconv.Itoa(last) {
			t.Fatalf("%s = %q, %v; want %d, its last batch there", li, got, err, last)
		}
		if got, err := d.Get([]byte(ls)); err != nil || !bytes.Equal(got, gen(fmt.Sprint("last", last), 300)) {
			t.Fatalf("%s: %v, or not the value of batch %d", ls, err, last)
		}
	}
}

// TestCrashKill kills a writing child process three times and checks the
// database after each kill, then writes to it once more.
func TestCrashKill(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts child processes")
	}
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	done := map[int]bool{}
	for round := range 3 {
		var before map[uint32]int64
		var beforeMax uint32
		if round > 0 {
			var nums []uint32
			nums, before = segments(t, dir)
			beforeMax = nums[len(nums)-1]
		}
		got := runCrashChild(t, dir, round*crashRoundSpan, 10+rng.IntN(20), rng)
		for i := range got {
			done[i] = true
		}
		nums, sizes := segments(t, dir)
		for n, s := range before {
			if sizes[n] != s {
				t.Fatalf("round %d: segment %d of an earlier process went from %d to %d bytes", round, n, s, sizes[n])
			}
		}
		if nums[len(nums)-1] <= beforeMax {
			t.Fatalf("round %d: no segment after %d", round, beforeMax)
		}
		d := openDB(t, dir, crashOpts())
		checkCrashState(t, d, done)
		closeDB(t, d)
	}
	// After the kills the database takes writes, into new segments, and
	// keeps everything.
	nums, _ := segments(t, dir)
	d := openDB(t, dir, crashOpts())
	defer closeDB(t, d)
	if err := d.Put([]byte("s/after"), gen("after", 1000)); err != nil {
		t.Fatal(err)
	}
	if p := pointerOf(t, d, "s/after"); p.seg <= nums[len(nums)-1] {
		t.Fatalf("write after the crash went to segment %d, not after %d", p.seg, nums[len(nums)-1])
	}
	checkCrashState(t, d, done)
	if got, err := d.Get([]byte("s/after")); err != nil || !bytes.Equal(got, gen("after", 1000)) {
		t.Fatalf("value written after the crash: %v", err)
	}
}

// writeCommitted writes n batches of a separated and an inline key each
// and returns them.
func writeCommitted(t *testing.T, d *DB, tag string, n int) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	for i := range n {
		b := d.NewBatch()
		for _, k := range []string{fmt.Sprintf("s/%s/%d", tag, i), fmt.Sprintf("i/%s/%d", tag, i)} {
			m[k] = gen(k, 100+i*300)
			if err := b.Put([]byte(k), m[k]); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Write(); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestTornTailIsIgnored simulates the states a crash can leave the newest
// segment in — garbage after the last committed value, values appended
// but never committed and then cut short, an empty segment just created —
// plus stray files in the value log directory: the committed values read,
// the new writes go to a new segment, and the damaged one is never
// appended to.
func TestTornTailIsIgnored(t *testing.T) {
	t.Parallel()
	for _, tc := range []string{"garbage", "uncommitted-cut", "empty-newest", "stray-files"} {
		t.Run(tc, func(t *testing.T) {
			dir := t.TempDir()
			d := openDB(t, dir, Options{Separate: sepS})
			model := writeCommitted(t, d, "a", 5)
			switch tc {
			case "uncommitted-cut":
				// The first step of a Write done (values appended and
				// synced), the process gone before the second.
				lost := gen("lost", 8000)
				if _, err := d.vlog.append([][]byte{lost[:3000], lost[3000:]}); err != nil {
					t.Fatal(err)
				}
			}
			closeDB(t, d)
			nums, sizes := segments(t, dir)
			newest := nums[len(nums)-1]
			switch tc {
			case "garbage":
				appendFile(t, segFile(dir, newest), gen("junk", 3333))
			case "uncommitted-cut":
				if err := os.Truncate(segFile(dir, newest), sizes[newest]-6000); err != nil {
					t.Fatal(err)
				}
			case "empty-newest":
				if err := os.WriteFile(segFile(dir, newest+1), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			case "stray-files":
				for _, name := range []string{"foo", "00000099.seg.tmp", "123.seg", "0000000x.seg"} {
					if err := os.WriteFile(filepath.Join(dir, "values", name), []byte("x"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			nums, sizes = segments(t, dir)
			newest = nums[len(nums)-1]

			d = openDB(t, dir, Options{Separate: sepS})
			checkModel(t, d, model)
			more := writeCommitted(t, d, "b", 3)
			for k := range more {
				if sepS([]byte(k)) {
					if p := pointerOf(t, d, k); p.seg <= newest {
						t.Fatalf("write after reopen went to segment %d, not after %d", p.seg, newest)
					}
				}
			}
			closeDB(t, d)
			_, after := segments(t, dir)
			for n, s := range sizes {
				if after[n] != s {
					t.Fatalf("segment %d went from %d to %d bytes after reopen", n, s, after[n])
				}
			}
			all := map[string][]byte{}
			for k, v := range model {
				all[k] = v
			}
			for k, v := range more {
				all[k] = v
			}
			d = openDB(t, dir, Options{Separate: sepS})
			defer closeDB(t, d)
			checkModel(t, d, all)
		})
	}
}

// TestWriteSyncsNewSegmentDirectoryEntry: when Write returns, the batch
// must survive a power loss, so a segment it created must be in its
// directory on the disk: a fsync of the segment's data does not make its
// directory entry durable (POSIX fsync(2); ext4 without a journal, for
// one). The value log counts the directory syncs that follow a segment's
// creation (dirSyncs): after a Write that created a segment, there must be
// one per segment created.
func TestWriteSyncsNewSegmentDirectoryEntry(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS, SegmentBytes: 1024})
	defer closeDB(t, d)
	for i := range 3 { // the first segment of the process, then rotations
		k := fmt.Sprintf("s/%d", i)
		if err := d.Put([]byte(k), gen(k, 2000)); err != nil {
			t.Fatal(err)
		}
		d.vlog.mu.Lock()
		synced := d.vlog.dirSyncs
		d.vlog.mu.Unlock()
		if synced != i+1 {
			nums, _ := segments(t, dir)
			t.Fatalf("Put %d returned while the directory entry of segment %08d.seg (created by it) was not synced: a power loss can leave the committed pointer dangling", i, nums[len(nums)-1])
		}
	}
	// And the pointers of those writes are valid.
	for i := range 3 {
		k := fmt.Sprintf("s/%d", i)
		if got, err := d.Get([]byte(k)); err != nil || !bytes.Equal(got, gen(k, 2000)) {
			t.Fatalf("Get(%q): %v", k, err)
		}
	}
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(func() []uint32 { n, _ := segments(t, dir); return n }(), []uint32{1, 2, 3}) {
		t.Fatal("unexpected segments")
	}
}

// TestFailedAppendLeavesNoPointer makes the value log's write fail (its
// write handle swapped for a read-only one on the same file): that Write
// returns an error and commits nothing, not even its inline keys; the next
// Write starts a new segment and succeeds; Sync, Close and a reopen find
// everything committed.
func TestFailedAppendLeavesNoPointer(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS})
	model := writeCommitted(t, d, "a", 2)

	l := d.vlog
	l.mu.Lock()
	ro, err := os.Open(segFile(dir, l.curSeg))
	if err != nil {
		l.mu.Unlock()
		t.Fatal(err)
	}
	orig, failSeg := l.cur, l.curSeg
	l.cur = ro
	_ = orig.Close()
	l.mu.Unlock()

	b := d.NewBatch()
	_ = b.Put([]byte("s/fail"), gen("fail", 500))
	_ = b.Put([]byte("i/fail"), gen("ifail", 50))
	if err := b.Write(); err == nil {
		t.Fatal("Write succeeded although the value log could not be written")
	}
	mustAbsent(t, d, "s/fail")
	mustAbsent(t, d, "i/fail")

	more := writeCommitted(t, d, "b", 2)
	for k, v := range more {
		model[k] = v
		if sepS([]byte(k)) {
			if p := pointerOf(t, d, k); p.seg <= failSeg {
				t.Fatalf("write after a failed append went to segment %d, not after %d", p.seg, failSeg)
			}
		}
	}
	checkModel(t, d, model)
	if err := d.Sync(); err != nil {
		t.Fatalf("Sync after a failed append: %v", err)
	}
	closeDB(t, d)
	d = openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	checkModel(t, d, model)
}
