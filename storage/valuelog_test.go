package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	"github.com/luxfi/database"
)

// Tests of the value log's properties through the database.Database API:
// every path with some keys separated and others not, reopen, rotation,
// corruption and concurrency. The process-kill and torn-tail tests are in
// crash_test.go.

// sepS separates the keys that start with "s".
func sepS(k []byte) bool { return len(k) > 0 && k[0] == 's' }

// sepOdd separates the keys whose last byte is odd, so that separated and
// inline values alternate in key order.
func sepOdd(k []byte) bool { return len(k) > 0 && k[len(k)-1]&1 == 1 }

// gen returns n deterministic pseudo-random bytes named by tag.
func gen(tag string, n int) []byte {
	r := rand.NewChaCha8(sha256.Sum256([]byte(tag)))
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func openDB(t testing.TB, dir string, opts Options) *DB {
	t.Helper()
	if opts.MemTableBytes == 0 {
		opts.MemTableBytes = 1 << 20
	}
	if opts.CacheBytes == 0 {
		opts.CacheBytes = 1 << 20
	}
	d, err := Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func closeDB(t testing.TB, d *DB) {
	t.Helper()
	if err := d.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// segments returns the numbers of the segment files in dir/values, sorted,
// and their sizes.
func segments(t testing.TB, dir string) ([]uint32, map[uint32]int64) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "values"))
	if err != nil {
		t.Fatal(err)
	}
	var nums []uint32
	sizes := map[uint32]int64{}
	for _, e := range entries {
		n, ok := segmentNumber(e.Name())
		if !ok {
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		nums = append(nums, n)
		sizes[n] = info.Size()
	}
	slices.Sort(nums)
	return nums, sizes
}

func segFile(dir string, n uint32) string {
	return filepath.Join(dir, "values", fmt.Sprintf("%08d.seg", n))
}

// pointerOf returns the pointer the LSM holds under the separated key.
func pointerOf(t testing.TB, d *DB, key string) pointer {
	t.Helper()
	v, closer, err := d.db.Get([]byte(key))
	if err != nil {
		t.Fatalf("raw get %q: %v", key, err)
	}
	defer closer.Close()
	p, err := parsePointer(v)
	if err != nil {
		t.Fatalf("key %q: %v", key, err)
	}
	return p
}

// checkModel checks that d holds exactly model: every key through Get and
// Has, and the whole key space through an iterator.
func checkModel(t testing.TB, d *DB, model map[string][]byte) {
	t.Helper()
	for k, want := range model {
		got, err := d.Get([]byte(k))
		if err != nil {
			t.Fatalf("Get(%q): %v", k, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Get(%q) = %d bytes %x…, want %d bytes %x…", k, len(got), head(got), len(want), head(want))
		}
		if ok, err := d.Has([]byte(k)); err != nil || !ok {
			t.Fatalf("Has(%q) = %v, %v; want true", k, ok, err)
		}
	}
	it := d.NewIterator()
	defer it.Release()
	var keys []string
	for it.Next() {
		k := string(it.Key())
		want, ok := model[k]
		if !ok {
			t.Fatalf("iterator returned %q, which the model does not hold", k)
		}
		if !bytes.Equal(it.Value(), want) {
			t.Fatalf("iterator value of %q = %x…, want %x…", k, head(it.Value()), head(want))
		}
		keys = append(keys, k)
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iterator: %v", err)
	}
	if len(keys) != len(model) {
		t.Fatalf("iterator returned %d keys, model holds %d", len(keys), len(model))
	}
	if !sort.StringsAreSorted(keys) {
		t.Fatalf("iterator keys out of order: %q", keys)
	}
}

func head(b []byte) []byte { return b[:min(len(b), 8)] }

func mustAbsent(t testing.TB, d *DB, key string) {
	t.Helper()
	if v, err := d.Get([]byte(key)); !errors.Is(err, database.ErrNotFound) {
		t.Fatalf("Get(%q) = %x…, %v; want ErrNotFound", key, head(v), err)
	}
	if ok, err := d.Has([]byte(key)); err != nil || ok {
		t.Fatalf("Has(%q) = %v, %v; want false", key, ok, err)
	}
}

// TestRoundTripMixed covers Put/Get/Has/Delete on separated and inline
// keys, empty values, overwrites, the copy semantics of the API, and
// reopen.
func TestRoundTripMixed(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS})
	model := map[string][]byte{}
	put := func(k string, v []byte) {
		t.Helper()
		if err := d.Put([]byte(k), v); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
		model[k] = slices.Clone(v)
		if model[k] == nil {
			model[k] = []byte{}
		}
	}
	put("s/a", gen("s/a", 1000))
	put("i/a", gen("i/a", 300))
	put("s/empty", []byte{})
	put("s/nil", nil)
	put("i/empty", nil)
	put("s/big", gen("s/big", 300<<10))
	checkModel(t, d, model)

	// The caller's buffers are the caller's: changing the value after Put,
	// or the slice Get returned, changes nothing stored.
	buf := gen("s/mut", 64)
	put("s/mut", buf)
	buf[0] ^= 0xff
	ibuf := gen("i/mut", 64)
	put("i/mut", ibuf)
	ibuf[0] ^= 0xff
	for _, k := range []string{"s/mut", "i/mut", "s/a"} {
		got, err := d.Get([]byte(k))
		if err != nil {
			t.Fatal(err)
		}
		got[0] ^= 0xff
	}
	checkModel(t, d, model)

	// Overwrites: a longer and a shorter value, on both kinds.
	put("s/a", gen("s/a2", 5000))
	put("s/a", gen("s/a3", 7))
	put("i/a", gen("i/a2", 9))
	put("s/empty", gen("s/empty2", 3))
	checkModel(t, d, model)

	// Deletes, of present and of absent keys.
	for _, k := range []string{"s/a", "i/a", "s/never", "i/never"} {
		if err := d.Delete([]byte(k)); err != nil {
			t.Fatalf("Delete(%q): %v", k, err)
		}
		delete(model, k)
		mustAbsent(t, d, k)
	}
	put("s/a", gen("s/a4", 100)) // written again after its delete
	checkModel(t, d, model)

	closeDB(t, d)
	d = openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	checkModel(t, d, model)
	for _, k := range []string{"i/a", "s/never", "i/never"} {
		mustAbsent(t, d, k)
	}
}

// TestBatchLastOperationWins writes batches that touch the same key more
// than once, separated and not: the last operation on each key must win,
// whatever the other operations of the batch.
func TestBatchLastOperationWins(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS})
	for _, k := range []string{"s/pre", "i/pre", "s/pre2"} {
		if err := d.Put([]byte(k), gen(k, 200)); err != nil {
			t.Fatal(err)
		}
	}
	b := d.NewBatch()
	steps := []struct {
		del bool
		key string
		val []byte
	}{
		{false, "s/x", gen("x1", 100)},
		{false, "i/x", gen("ix1", 10)},
		{true, "s/x", nil}, // put then delete: absent
		{true, "s/y", nil},
		{false, "s/y", gen("y", 50)}, // delete then put: present
		{false, "s/z", gen("z1", 500)},
		{false, "s/z", gen("z2", 20)}, // put then put: the second
		{false, "s/w", gen("w1", 30)},
		{true, "s/w", nil},
		{false, "s/w", gen("w3", 40)}, // put, delete, put: the last put
		{true, "s/pre", nil},          // delete of a key written before
		{false, "s/pre2", gen("pre2b", 60)},
		{true, "s/pre2", nil}, // overwrite then delete of an existing key
		{false, "i/pre", gen("ipre", 7)},
		{false, "i/q", gen("iq", 7)},
		{true, "i/q", nil},
		{false, "s/e", nil},
		{false, "s/e2", gen("e2", 10)},
		{false, "s/e2", []byte{}}, // overwrite with an empty value
	}
	model := map[string][]byte{"i/pre": gen("i/pre", 200)}
	for _, s := range steps {
		var err error
		if s.del {
			err = b.Delete([]byte(s.key))
			delete(model, s.key)
		} else {
			err = b.Put([]byte(s.key), s.val)
			model[s.key] = append([]byte{}, s.val...)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is visible before Write.
	mustAbsent(t, d, "s/y")
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	checkModel(t, d, model)
	closeDB(t, d)
	d = openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	checkModel(t, d, model)
}

// replayRecorder records the operations a Replay hands it.
type replayRecorder struct{ ops []op }

type op struct {
	del bool
	key string
	val []byte
}

func (r *replayRecorder) Put(k, v []byte) error {
	r.ops = append(r.ops, op{key: string(k), val: slices.Clone(v)})
	return nil
}

func (r *replayRecorder) Delete(k []byte) error {
	r.ops = append(r.ops, op{del: true, key: string(k)})
	return nil
}

func perKey(ops []op) map[string][]op {
	m := map[string][]op{}
	for _, o := range normalized(ops) {
		m[o.key] = append(m[o.key], o)
	}
	return m
}

// normalized is ops with nil put values as empty ones (a batch stores a
// nil value as empty).
func normalized(ops []op) []op {
	out := slices.Clone(ops)
	for i := range out {
		if !out[i].del && out[i].val == nil {
			out[i].val = []byte{}
		}
	}
	return out
}

func sameOps(a, b []op) bool {
	return slices.EqualFunc(a, b, func(x, y op) bool {
		return x.del == y.del && x.key == y.key && bytes.Equal(x.val, y.val)
	})
}

// TestBatchRandomAgainstModel applies random operations on a few
// separated and inline keys in random batches, one batch value reused
// with Reset, some batches written twice with a change to their keys in
// between, and compares the database with a model after every Write and
// after reopen. Each batch's Replay must hand over every key's operations
// in the order they were made, and its Size must count them.
func TestBatchRandomAgainstModel(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS, SegmentBytes: 8 << 10})
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []string
	for i := range 6 {
		keys = append(keys, fmt.Sprintf("s/%d", i), fmt.Sprintf("i/%d", i))
	}
	model := map[string][]byte{}
	b := d.NewBatch()
	for round := range 24 {
		b.Reset()
		if b.Size() != 0 {
			t.Fatalf("Size after Reset = %d", b.Size())
		}
		var ops []op
		size := 0
		for j := range 1 + rng.IntN(12) {
			k := keys[rng.IntN(len(keys))]
			if rng.IntN(3) == 0 {
				ops = append(ops, op{del: true, key: k})
				size += len(k)
				if err := b.Delete([]byte(k)); err != nil {
					t.Fatal(err)
				}
				continue
			}
			var v []byte
			switch rng.IntN(6) {
			case 0:
				v = nil
			case 1:
				v = gen(fmt.Sprint(round, j), 20000)
			default:
				v = gen(fmt.Sprint(round, j), rng.IntN(3000))
			}
			size += len(k) + len(v)
			ops = append(ops, op{key: k, val: slices.Clone(v)})
			if err := b.Put([]byte(k), v); err != nil {
				t.Fatal(err)
			}
			if len(v) > 0 {
				v[0] ^= 1 // the batch holds its own copy
			}
		}
		if b.Size() != size {
			t.Fatalf("round %d: Size = %d, want %d", round, b.Size(), size)
		}
		var rec replayRecorder
		if err := b.Replay(&rec); err != nil {
			t.Fatal(err)
		}
		if !sameOps(normalized(rec.ops), normalized(ops)) {
			t.Fatalf("round %d: Replay gave %+v, want the written order %+v", round, rec.ops, ops)
		}
		want, got := perKey(ops), perKey(rec.ops)
		if len(want) != len(got) {
			t.Fatalf("round %d: Replay touched %d keys, want %d", round, len(got), len(want))
		}
		for k := range want {
			if !sameOps(want[k], got[k]) {
				t.Fatalf("round %d: Replay of %q = %+v, want %+v", round, k, got[k], want[k])
			}
		}
		if err := b.Write(); err != nil {
			t.Fatal(err)
		}
		for _, o := range ops {
			if o.del {
				delete(model, o.key)
			} else {
				model[o.key] = append([]byte{}, o.val...)
			}
		}
		checkModel(t, d, model)
		if round%4 == 3 {
			// Change every key the batch touched behind its back, then
			// write it again: the batch's final state comes back.
			for _, o := range ops {
				if err := d.Put([]byte(o.key), []byte("changed")); err != nil {
					t.Fatal(err)
				}
			}
			if err := b.Write(); err != nil {
				t.Fatalf("second Write: %v", err)
			}
			checkModel(t, d, model)
			var rec2 replayRecorder
			if err := b.Replay(&rec2); err != nil || !sameOps(rec.ops, rec2.ops) {
				t.Fatalf("Replay after Write differs: %v", err)
			}
		}
	}
	closeDB(t, d)
	d = openDB(t, dir, Options{Separate: sepS, SegmentBytes: 8 << 10})
	defer closeDB(t, d)
	checkModel(t, d, model)
}

// TestBatchResetDropsOperations: after Reset, nothing of what the batch
// held before is written again.
func TestBatchResetDropsOperations(t *testing.T) {
	t.Parallel()
	d := openDB(t, t.TempDir(), Options{Separate: sepS})
	defer closeDB(t, d)
	b := d.NewBatch()
	for _, k := range []string{"s/a", "i/a"} {
		if err := b.Put([]byte(k), gen(k, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"s/a", "i/a"} {
		if err := d.Delete([]byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	b.Reset()
	if err := b.Put([]byte("s/b"), gen("s/b", 10)); err != nil {
		t.Fatal(err)
	}
	var rec replayRecorder
	if err := b.Replay(&rec); err != nil || len(rec.ops) != 1 || rec.ops[0].key != "s/b" {
		t.Fatalf("Replay after Reset = %+v, %v; want only the Put of s/b", rec.ops, err)
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	mustAbsent(t, d, "s/a")
	mustAbsent(t, d, "i/a")
	checkModel(t, d, map[string][]byte{"s/b": gen("s/b", 10)})
	// An empty batch writes nothing and succeeds.
	b.Reset()
	if err := b.Write(); err != nil {
		t.Fatalf("empty Write: %v", err)
	}
	if b.Inner() != b {
		t.Fatal("Inner is not the batch itself")
	}
}

// iterModel is the key space of the iterator tests: keys a00…c19 and two
// keys of 0xff bytes, the odd-ending ones separated, values of assorted
// sizes (some empty).
func iterModel() map[string][]byte {
	m := map[string][]byte{}
	for _, p := range "abc" {
		for i := range 20 {
			k := fmt.Sprintf("%c%02d", p, i)
			m[k] = gen(k, (i*733)%2500)
		}
	}
	m["\xff\xff\x01"] = gen("ff1", 77)
	m["\xff\xfe"] = gen("ff2", 78)
	return m
}

func expectRange(model map[string][]byte, start, prefix string) []string {
	var out []string
	for k := range model {
		if k >= start && len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func checkIterators(t *testing.T, d *DB, model map[string][]byte) {
	t.Helper()
	cases := []struct{ start, prefix string }{
		{"", ""},
		{"b05", ""},
		{"b05\x00", ""},
		{"zzz", ""},
		{"", "b"},
		{"", "b1"},
		{"", "d"},
		{"b13", "b"},
		{"a", "b"},   // start before the prefix: the whole prefix
		{"c00", "b"}, // start after the prefix: nothing
		{"", "\xff"},
		{"", "\xff\xff"},
		{"\xff\xff", "\xff"},
	}
	for _, c := range cases {
		var it database.Iterator
		switch {
		case c.start == "" && c.prefix == "":
			it = d.NewIterator()
		case c.prefix == "":
			it = d.NewIteratorWithStart([]byte(c.start))
		case c.start == "":
			it = d.NewIteratorWithPrefix([]byte(c.prefix))
		default:
			it = d.NewIteratorWithStartAndPrefix([]byte(c.start), []byte(c.prefix))
		}
		var gotK, gotV [][]byte
		for it.Next() {
			gotK, gotV = append(gotK, it.Key()), append(gotV, it.Value())
		}
		if err := it.Error(); err != nil {
			t.Fatalf("start %q prefix %q: %v", c.start, c.prefix, err)
		}
		if it.Key() != nil || it.Value() != nil {
			t.Fatalf("start %q prefix %q: Key/Value not nil once done", c.start, c.prefix)
		}
		it.Release()
		want := expectRange(model, c.start, c.prefix)
		if len(gotK) != len(want) {
			t.Fatalf("start %q prefix %q: %d keys, want %d", c.start, c.prefix, len(gotK), len(want))
		}
		// Key and Value slices stay valid after the next Next.
		for i, k := range want {
			if string(gotK[i]) != k || !bytes.Equal(gotV[i], model[k]) {
				t.Fatalf("start %q prefix %q: #%d = %q (%d bytes), want %q (%d bytes)", c.start, c.prefix, i, gotK[i], len(gotV[i]), k, len(model[k]))
			}
		}
	}
}

// TestIteratorsMixedValues iterates ranges where separated and inline
// values alternate, from the memtable, after reopen, and after a
// compaction has moved the pointers into tables.
func TestIteratorsMixedValues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepOdd})
	model := iterModel()
	b := d.NewBatch()
	for k, v := range model {
		if err := b.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	checkIterators(t, d, model)
	closeDB(t, d)
	d = openDB(t, dir, Options{Separate: sepOdd})
	defer closeDB(t, d)
	checkIterators(t, d, model)
	if err := d.Compact(nil, nil); err != nil {
		t.Fatal(err)
	}
	checkIterators(t, d, model)
	// An iterator sees the database as of its creation.
	it := d.NewIteratorWithPrefix([]byte("a"))
	defer it.Release()
	for _, k := range []string{"a01", "a02"} {
		if err := d.Put([]byte(k), []byte("later")); err != nil {
			t.Fatal(err)
		}
	}
	for it.Next() {
		if k := string(it.Key()); !bytes.Equal(it.Value(), model[k]) {
			t.Fatalf("iterator saw a later write to %q", k)
		}
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
}

// flipByte inverts one byte of a file.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptValueIsReported flips a byte of one separated value on disk:
// Get of that key and an iterator reaching it fail with ErrCorrupt, and
// every other value still reads.
func TestCorruptValueIsReported(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepOdd})
	model := map[string][]byte{}
	b := d.NewBatch()
	for i := range 10 {
		k := fmt.Sprintf("k%02d", i)
		model[k] = gen(k, 500)
		if err := b.Put([]byte(k), model[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Write(); err != nil {
		t.Fatal(err)
	}
	p := pointerOf(t, d, "k05")
	closeDB(t, d)
	flipByte(t, segFile(dir, p.seg), int64(p.off)+int64(p.length)/2)

	d = openDB(t, dir, Options{Separate: sepOdd})
	defer closeDB(t, d)
	if v, err := d.Get([]byte("k05")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of the corrupt value = %d bytes, %v; want ErrCorrupt", len(v), err)
	}
	for k, want := range model {
		if k == "k05" {
			continue
		}
		if got, err := d.Get([]byte(k)); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get(%q) next to a corrupt value: %v", k, err)
		}
	}
	it := d.NewIterator()
	defer it.Release()
	var seen []string
	for it.Next() {
		seen = append(seen, string(it.Key()))
	}
	if !errors.Is(it.Error(), ErrCorrupt) {
		t.Fatalf("iterator error = %v; want ErrCorrupt", it.Error())
	}
	if want := []string{"k00", "k01", "k02", "k03", "k04"}; !slices.Equal(seen, want) {
		t.Fatalf("iterator returned %q before the corrupt value, want %q", seen, want)
	}
	if it.Next() || it.Key() != nil || it.Value() != nil {
		t.Fatal("iterator goes on after ErrCorrupt")
	}
}

// TestLostSegmentBytesAreCorrupt: a missing segment or one cut short makes
// the reads of its values fail with ErrCorrupt, not ErrNotFound or a
// short value.
func TestLostSegmentBytesAreCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2 {
		d := openDB(t, dir, Options{Separate: sepS})
		for j := range 3 {
			k := fmt.Sprintf("s/%d/%d", i, j)
			if err := d.Put([]byte(k), gen(k, 1000)); err != nil {
				t.Fatal(err)
			}
		}
		closeDB(t, d)
	}
	nums, sizes := segments(t, dir)
	if !slices.Equal(nums, []uint32{1, 2}) {
		t.Fatalf("segments %v, want [1 2]", nums)
	}
	if err := os.Truncate(segFile(dir, 1), sizes[1]-500); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(segFile(dir, 2)); err != nil {
		t.Fatal(err)
	}
	d := openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	for _, k := range []string{"s/0/0", "s/0/1"} {
		if got, err := d.Get([]byte(k)); err != nil || !bytes.Equal(got, gen(k, 1000)) {
			t.Fatalf("Get(%q) before the cut: %v", k, err)
		}
	}
	for _, k := range []string{"s/0/2", "s/1/0", "s/1/2"} {
		if v, err := d.Get([]byte(k)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get(%q) of lost bytes = %d bytes, %v; want ErrCorrupt", k, len(v), err)
		}
	}
}

// TestBadPointerIsCorrupt: a separated key whose LSM value is not a
// pointer (a stray write, or a key written before it was separated)
// reads as ErrCorrupt.
func TestBadPointerIsCorrupt(t *testing.T) {
	t.Parallel()
	d := openDB(t, t.TempDir(), Options{Separate: sepS})
	defer closeDB(t, d)
	good := pointer{seg: 1, off: 0, length: 3, crc: 0}.append(nil)
	bad := map[string][]byte{
		"s/short":   []byte("not a pointer"),
		"s/kind":    append([]byte{2}, good[1:]...),
		"s/noseg":   pointer{seg: 99, off: 0, length: 3}.append(nil),
		"s/pastend": pointer{seg: 1, off: 1 << 40, length: 3}.append(nil),
	}
	if err := d.Put([]byte("s/real"), []byte("abc")); err != nil { // creates segment 1
		t.Fatal(err)
	}
	for k, v := range bad {
		if err := d.db.Set([]byte(k), v, pebble.Sync); err != nil {
			t.Fatal(err)
		}
		if got, err := d.Get([]byte(k)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Get(%q) = %x, %v; want ErrCorrupt", k, got, err)
		}
	}
	it := d.NewIteratorWithPrefix([]byte("s/"))
	defer it.Release()
	for it.Next() {
	}
	if !errors.Is(it.Error(), ErrCorrupt) {
		t.Fatalf("iterator over bad pointers: %v; want ErrCorrupt", it.Error())
	}
}

// TestNewSegmentEachOpen: each Open writes to a segment of its own, after
// every existing one, and never changes an older segment.
func TestNewSegmentEachOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var prevSizes map[uint32]int64
	var last uint32
	for i := range 4 {
		d := openDB(t, dir, Options{Separate: sepS})
		if i == 2 {
			closeDB(t, d) // an Open that writes nothing
			d = openDB(t, dir, Options{Separate: sepS})
		}
		for j := range 3 {
			k := fmt.Sprintf("s/%d/%d", i, j)
			if err := d.Put([]byte(k), gen(k, 100+j)); err != nil {
				t.Fatal(err)
			}
		}
		p := pointerOf(t, d, fmt.Sprintf("s/%d/0", i))
		if p.seg <= last {
			t.Fatalf("open %d wrote to segment %d, not after segment %d", i, p.seg, last)
		}
		for j := 1; j < 3; j++ {
			if q := pointerOf(t, d, fmt.Sprintf("s/%d/%d", i, j)); q.seg != p.seg {
				t.Fatalf("open %d: segment %d then %d without rotation", i, p.seg, q.seg)
			}
		}
		last = p.seg
		closeDB(t, d)
		nums, sizes := segments(t, dir)
		if nums[len(nums)-1] != last {
			t.Fatalf("segments %v, newest is not %08d.seg", nums, last)
		}
		for n, s := range prevSizes {
			if sizes[n] != s {
				t.Fatalf("segment %d changed from %d to %d bytes at a later open", n, s, sizes[n])
			}
		}
		prevSizes = sizes
	}
	d := openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	model := map[string][]byte{}
	for i := range 4 {
		for j := range 3 {
			k := fmt.Sprintf("s/%d/%d", i, j)
			model[k] = gen(k, 100+j)
		}
	}
	checkModel(t, d, model)
}

// TestOpenTwiceFails: a second Open of an open directory fails and leaves
// the first one working (two value logs would number their segments
// alike).
func TestOpenTwiceFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	if err := d.Put([]byte("s/a"), []byte("a")); err != nil {
		t.Fatal(err)
	}
	if d2, err := Open(dir, Options{Separate: sepS}); err == nil {
		d2.Close()
		t.Fatal("a second Open of the same directory succeeded")
	}
	if err := d.Put([]byte("s/b"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	checkModel(t, d, map[string][]byte{"s/a": []byte("a"), "s/b": []byte("b")})
}

// TestSegmentRotationManySegments writes with 4 KiB segments until there
// are far more segments than read handles (maxOpenSegments), checks that
// a segment outgrows SegmentBytes only by holding a single batch, reopens,
// and reads every value from many goroutines at once.
func TestSegmentRotationManySegments(t *testing.T) {
	t.Parallel()
	const (
		segBytes = 4 << 10
		writers  = 4
		batches  = 3 * maxOpenSegments / 2
	)
	dir := t.TempDir()
	opts := Options{Separate: sepS, SegmentBytes: segBytes}
	d := openDB(t, dir, opts)
	var (
		mu    sync.Mutex
		model = map[string][]byte{}
		batch = map[string]int{} // key -> batch index
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	errs := make(chan error, writers)
	for range writers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= batches {
					return
				}
				b := d.NewBatch()
				kv := map[string][]byte{}
				kv[fmt.Sprintf("s/%04d/0", i)] = gen(fmt.Sprint(i), 500+(i*997)%3000)
				if i%3 == 0 {
					kv[fmt.Sprintf("s/%04d/1", i)] = gen(fmt.Sprint(i, "b"), 1000)
				}
				if i%10 == 0 { // bigger than a segment
					kv[fmt.Sprintf("s/%04d/2", i)] = gen(fmt.Sprint(i, "c"), 3*segBytes)
				}
				kv[fmt.Sprintf("i/%04d", i)] = gen(fmt.Sprint(i, "i"), 40)
				for k, v := range kv {
					if err := b.Put([]byte(k), v); err != nil {
						errs <- err
						return
					}
				}
				if err := b.Write(); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for k, v := range kv {
					model[k], batch[k] = v, i
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkModel(t, d, model)

	// Which batches each segment holds: a segment bigger than SegmentBytes
	// holds one batch.
	segBatches := map[uint32]map[int]bool{}
	for k := range model {
		if !sepS([]byte(k)) {
			continue
		}
		p := pointerOf(t, d, k)
		if segBatches[p.seg] == nil {
			segBatches[p.seg] = map[int]bool{}
		}
		segBatches[p.seg][batch[k]] = true
	}
	closeDB(t, d)
	nums, sizes := segments(t, dir)
	if len(nums) <= maxOpenSegments {
		t.Fatalf("%d segments; the test needs more than %d", len(nums), maxOpenSegments)
	}
	for _, n := range nums {
		if sizes[n] > segBytes && len(segBatches[n]) != 1 {
			t.Fatalf("segment %d: %d bytes > SegmentBytes, holding %d batches", n, sizes[n], len(segBatches[n]))
		}
	}

	d = openDB(t, dir, opts)
	defer closeDB(t, d)
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range model {
			if !yield(k) {
				return
			}
		}
	})
	var rg sync.WaitGroup
	rerrs := make(chan error, 16)
	for g := range 12 {
		rg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 7))
			order := slices.Clone(keys)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			for _, k := range order {
				got, err := d.Get([]byte(k))
				if err != nil || !bytes.Equal(got, model[k]) {
					rerrs <- fmt.Errorf("reader %d: Get(%q): %d bytes, %v", g, k, len(got), err)
					return
				}
			}
			if g%3 == 0 {
				it := d.NewIteratorWithPrefix([]byte("s/"))
				defer it.Release()
				for it.Next() {
					if !bytes.Equal(it.Value(), model[string(it.Key())]) {
						rerrs <- fmt.Errorf("reader %d: iterator value of %q", g, it.Key())
						return
					}
				}
				if it.Error() != nil {
					rerrs <- fmt.Errorf("reader %d: iterator: %w", g, it.Error())
				}
			}
		})
	}
	rg.Wait()
	close(rerrs)
	for err := range rerrs {
		t.Fatal(err)
	}
	d.vlog.rmu.RLock()
	open := len(d.vlog.files)
	d.vlog.rmu.RUnlock()
	if open > maxOpenSegments {
		t.Fatalf("%d segment read handles open, more than maxOpenSegments", open)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	return len(entries)
}

// TestRotatedSegmentsDoNotLeakFiles: a segment that is no longer written
// to must not keep a file open. Not parallel: it counts this process's
// open files.
func TestRotatedSegmentsDoNotLeakFiles(t *testing.T) {
	const rotations = 48
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS, SegmentBytes: 1024})
	defer closeDB(t, d)
	if err := d.Put([]byte("s/first"), gen("first", 2000)); err != nil {
		t.Fatal(err)
	}
	before := openFiles(t)
	for i := range rotations {
		k := fmt.Sprintf("s/%d", i)
		if err := d.Put([]byte(k), gen(k, 2000)); err != nil {
			t.Fatal(err)
		}
	}
	nums, _ := segments(t, dir)
	if len(nums) != rotations+1 {
		t.Fatalf("%d segments, want %d", len(nums), rotations+1)
	}
	if after := openFiles(t); after-before >= rotations/2 {
		t.Fatalf("%d open files before %d segment rotations, %d after: every rotated-away segment's write handle stays open until Sync or Close", before, rotations, after)
	}
}

// TestConcurrentWritersReadersIterators runs batch writers next to readers
// and iterators (run with -race): a reader never sees a batch in part, a
// wrong value, or an error.
func TestConcurrentWritersReadersIterators(t *testing.T) {
	t.Parallel()
	const (
		writers = 4
		perW    = 20
	)
	dir := t.TempDir()
	opts := Options{Separate: sepS, SegmentBytes: 32 << 10}
	d := openDB(t, dir, opts)
	val := func(w, i int, part string) []byte {
		return gen(fmt.Sprint(w, i, part), 100+(w*31+i*17)%4000)
	}
	var progress [writers]atomic.Int64 // batches done per writer
	var writing sync.WaitGroup
	errs := make(chan error, 64)
	for w := range writers {
		writing.Go(func() {
			b := d.NewBatch()
			for i := range perW {
				b.Reset()
				_ = b.Put(fmt.Appendf(nil, "s/%d/%03d", w, i), val(w, i, "a"))
				_ = b.Put(fmt.Appendf(nil, "i/%d/%03d", w, i), val(w, i, "b"))
				_ = b.Put(fmt.Appendf(nil, "s/%d/tmp", w), val(w, i, "tmp"))
				_ = b.Delete(fmt.Appendf(nil, "s/%d/tmp", w))
				_ = b.Put(fmt.Appendf(nil, "c/%d", w), fmt.Append(nil, i))
				if err := b.Write(); err != nil {
					errs <- err
					return
				}
				progress[w].Store(int64(i + 1))
			}
		})
	}
	stop := make(chan struct{})
	var reading sync.WaitGroup
	for r := range 3 {
		reading.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(r), 3))
			for {
				select {
				case <-stop:
					return
				default:
				}
				w := rng.IntN(writers)
				n := int(progress[w].Load())
				if n > 0 {
					i := rng.IntN(n)
					for part, kind := range map[string]string{"a": "s", "b": "i"} {
						k := fmt.Sprintf("%s/%d/%03d", kind, w, i)
						got, err := d.Get([]byte(k))
						if err != nil || !bytes.Equal(got, val(w, i, part)) {
							errs <- fmt.Errorf("Get(%q) after its batch was written: %v", k, err)
							return
						}
					}
				}
				// An iterator: every separated key it shows has its inline
				// twin (batches are atomic) and the right bytes.
				it := d.NewIteratorWithPrefix([]byte("s/"))
				for it.Next() {
					var w, i int
					k := string(it.Key())
					if _, err := fmt.Sscanf(k, "s/%d/%03d", &w, &i); err != nil {
						errs <- fmt.Errorf("iterator shows %q", k)
						break
					}
					if !bytes.Equal(it.Value(), val(w, i, "a")) {
						errs <- fmt.Errorf("iterator value of %q", k)
						break
					}
					if ok, err := d.Has(fmt.Appendf(nil, "i/%d/%03d", w, i)); err != nil || !ok {
						errs <- fmt.Errorf("%q without the rest of its batch", k)
						break
					}
				}
				if err := it.Error(); err != nil {
					errs <- err
				}
				it.Release()
			}
		})
	}
	writing.Wait()
	close(stop)
	reading.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	model := map[string][]byte{}
	for w := range writers {
		for i := range perW {
			model[fmt.Sprintf("s/%d/%03d", w, i)] = val(w, i, "a")
			model[fmt.Sprintf("i/%d/%03d", w, i)] = val(w, i, "b")
		}
		model[fmt.Sprintf("c/%d", w)] = fmt.Append(nil, perW-1)
	}
	checkModel(t, d, model)
	closeDB(t, d)
	d = openDB(t, dir, opts)
	defer closeDB(t, d)
	checkModel(t, d, model)
}

// TestCloseRacingWriters closes the database while batches are being
// written: each Write returns nil or ErrClosed, and after reopen the
// batches that returned nil are there in full, the others not at all.
func TestCloseRacingWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS})
	const writers = 4
	var (
		wg      sync.WaitGroup
		started atomic.Int64
		mu      sync.Mutex
		ok      = map[string]bool{} // batch name -> Write returned nil
	)
	errs := make(chan error, writers*2)
	for w := range writers {
		wg.Go(func() {
			for i := 0; ; i++ {
				name := fmt.Sprintf("%d/%04d", w, i)
				b := d.NewBatch()
				if err := b.Put([]byte("s/"+name), gen(name, 2000)); err != nil {
					errs <- err
					return
				}
				if err := b.Put([]byte("i/"+name), gen(name, 20)); err != nil {
					errs <- err
					return
				}
				started.Add(1)
				err := b.Write()
				mu.Lock()
				ok[name] = err == nil
				mu.Unlock()
				if errors.Is(err, database.ErrClosed) {
					if _, gerr := d.Get([]byte("s/" + name)); !errors.Is(gerr, database.ErrClosed) {
						errs <- fmt.Errorf("Get after Close: %v, want ErrClosed", gerr)
					}
					return
				}
				if err != nil {
					errs <- fmt.Errorf("Write racing Close: %v", err)
					return
				}
			}
		})
	}
	for started.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	closeDB(t, d)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	d = openDB(t, dir, Options{Separate: sepS})
	defer closeDB(t, d)
	done := 0
	for name, written := range ok {
		for k, n := range map[string]int{"s/" + name: 2000, "i/" + name: 20} {
			got, err := d.Get([]byte(k))
			switch {
			case written && (err != nil || !bytes.Equal(got, gen(name, n))):
				t.Fatalf("batch %s returned nil, but %q reads %v", name, k, err)
			case !written && !errors.Is(err, database.ErrNotFound):
				t.Fatalf("batch %s returned ErrClosed, but %q is there (%v)", name, k, err)
			}
		}
		if written {
			done++
		}
	}
	if done == 0 {
		t.Fatal("no batch was written before Close")
	}
}

// TestCloseReleasesIterators: Close with iterators open (fresh, midway,
// exhausted) succeeds; each then reports its current pair until its next
// Next, which returns false with ErrClosed; Release stays safe.
func TestCloseReleasesIterators(t *testing.T) {
	t.Parallel()
	d := openDB(t, t.TempDir(), Options{Separate: sepOdd})
	model := iterModel()
	for k, v := range model {
		if err := d.Put([]byte(k), v); err != nil {
			t.Fatal(err)
		}
	}
	fresh := d.NewIterator()
	mid := d.NewIterator()
	for range 5 {
		if !mid.Next() {
			t.Fatal("iterator ended early")
		}
	}
	curK, curV := slices.Clone(mid.Key()), slices.Clone(mid.Value())
	done := d.NewIteratorWithPrefix([]byte("c"))
	for done.Next() {
	}
	if err := d.Close(); err != nil {
		t.Fatalf("Close with open iterators: %v", err)
	}
	if !bytes.Equal(mid.Key(), curK) || !bytes.Equal(mid.Value(), curV) {
		t.Fatal("after Close, Key/Value no longer report the current pair")
	}
	for name, it := range map[string]database.Iterator{"fresh": fresh, "mid": mid, "done": done, "new": d.NewIterator()} {
		if it.Next() {
			t.Fatalf("%s iterator: Next after Close returned true", name)
		}
		if !errors.Is(it.Error(), database.ErrClosed) {
			t.Fatalf("%s iterator: Error after Close = %v, want ErrClosed", name, it.Error())
		}
		it.Release()
		it.Release()
	}
}

// TestOperationsAfterClose: every operation after Close returns ErrClosed
// (and a batch's Put/Delete do not panic).
func TestOperationsAfterClose(t *testing.T) {
	t.Parallel()
	d := openDB(t, t.TempDir(), Options{Separate: sepS})
	early := d.NewBatch()
	_ = early.Put([]byte("s/a"), []byte("a"))
	_ = early.Put([]byte("i/a"), []byte("a"))
	closeDB(t, d)
	late := d.NewBatch()
	_ = late.Put([]byte("s/b"), []byte("b"))
	_ = late.Put([]byte("i/b"), []byte("b"))
	_ = late.Delete([]byte("i/c"))
	_ = late.Delete([]byte("s/c"))
	_, getErr := d.Get([]byte("s/a"))
	_, hasErr := d.Has([]byte("i/a"))
	_, hcErr := d.HealthCheck(context.Background())
	for name, err := range map[string]error{
		"Get":         getErr,
		"Has":         hasErr,
		"Put sep":     d.Put([]byte("s/x"), []byte("x")),
		"Put inline":  d.Put([]byte("i/x"), []byte("x")),
		"Delete":      d.Delete([]byte("i/x")),
		"Sync":        d.Sync(),
		"Compact":     d.Compact(nil, nil),
		"HealthCheck": hcErr,
		"early batch": early.Write(),
		"late batch":  late.Write(),
		"Close":       d.Close(),
	} {
		if !errors.Is(err, database.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
}

// TestSyncDuringRotations calls Sync over and over while writers rotate
// segments every few commits (run with -race): no error, every value
// reads, and once synced no rotated-away segment keeps its write handle.
func TestSyncDuringRotations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := openDB(t, dir, Options{Separate: sepS, SegmentBytes: 4 << 10})
	defer closeDB(t, d)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		model = map[string][]byte{}
		stop  = make(chan struct{})
		errs  = make(chan error, 8)
	)
	var syncs sync.WaitGroup
	syncs.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := d.Sync(); err != nil {
				errs <- fmt.Errorf("Sync: %w", err)
				return
			}
		}
	})
	for w := range 3 {
		wg.Go(func() {
			for i := range 20 {
				k := fmt.Sprintf("s/%d/%d", w, i)
				v := gen(k, 1500+i*50)
				if err := d.Put([]byte(k), v); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				model[k] = v
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(stop)
	syncs.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkModel(t, d, model)
	if err := d.Sync(); err != nil {
		t.Fatal(err)
	}
}
