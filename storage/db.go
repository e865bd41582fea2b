// Package storage is the chain database of the standalone node: a
// github.com/luxfi/database.Database over cockroachdb/pebble, with the
// values of append-only keys (the bytes of accepted blocks) kept out of
// the LSM tree in a value log of plain segment files.
//
// Why (measured with cmd/sessionload, LLM.md "On-disk backend"): a block's bytes
// are most of what a node writes (a 3.7 KB signed transaction per 256-byte
// message), and they are written once and never changed. In an LSM tree
// they are written again at every memtable flush and compaction; BadgerDB,
// which separated them, writes its logs and tables through memory maps,
// and on a host where a first touch of fresh memory costs 10–15 µs a page,
// each memtable switch stalled commits for 0.5–1 s. Here the LSM holds
// only state (message records, indexes, counters) and 21-byte pointers,
// pebble writes with write(2) and recycles its memtables, and the block
// bytes are appended to a segment with one write(2) per commit.
//
// Durability: Write returns once the batch is on the disk. Its separated
// values are appended to the value log and fsynced, then the LSM batch
// that points to them is committed with an fsync of pebble's write-ahead
// log. A pointer therefore never refers to bytes that are not on the disk,
// and a crash or a power loss between the two steps leaves unreferenced
// bytes in a segment, never a dangling pointer. (Pebble without its sync
// returns before its write-ahead log reaches the kernel, so a killed
// process would lose commits it had reported; the fsyncs cost about 0.5 ms
// each on the measuring host, and fewer, larger blocks under load.)
package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"
	"github.com/cockroachdb/pebble/bloom"
	"github.com/cockroachdb/pebble/vfs"
	"github.com/luxfi/database"
)

// Options tune Open.
type Options struct {
	// CacheBytes is the LSM block cache; 0 means 64 MiB.
	CacheBytes int64
	// MemTableBytes is the LSM memtable size; 0 means 64 MiB.
	MemTableBytes int64
	// SegmentBytes is the size after which the value log starts a new
	// segment; 0 means 512 MiB.
	SegmentBytes int64
	// Separate reports whether the values of key go to the value log.
	// Such keys should be written once: a Delete or an overwrite removes
	// the pointer, and the old bytes stay in their segment. nil separates
	// nothing.
	Separate func(key []byte) bool
	// Logger receives pebble's messages (Info level); nil discards them.
	Logger *slog.Logger
}

const memTableStopWrites = 2

// DB is the database. It implements database.Database and is safe for
// concurrent use.
type DB struct {
	db       *pebble.DB
	vlog     *valueLog
	wo       *pebble.WriteOptions
	separate func([]byte) bool

	mu     sync.RWMutex // closed; held for reading by every operation
	closed bool

	itMu      sync.Mutex // the open iterators, for Close to release
	iterators map[*iterator]struct{}
}

var _ database.Database = (*DB)(nil)

// Open opens (creating it if needed) the database in dir: pebble's files
// in dir, the value log in dir/values.
func Open(dir string, opts Options) (*DB, error) {
	cache := opts.CacheBytes
	if cache <= 0 {
		cache = 64 << 20
	}
	mem := opts.MemTableBytes
	if mem <= 0 {
		mem = 64 << 20
	}
	seg := opts.SegmentBytes
	if seg <= 0 {
		seg = 512 << 20
	}
	c := pebble.NewCache(cache)
	defer c.Unref()
	o := &pebble.Options{
		Cache:        c,
		MemTableSize: uint64(mem),
		// One memtable filling and one flushing before writes wait: a
		// flush of 64 MiB takes under a second, filling one takes ~15 s at
		// half the measured maximum.
		MemTableStopWritesThreshold: memTableStopWrites,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       32,
		LBaseMaxBytes:               256 << 20,
		// One compaction at a time on two cores leaves the other to the
		// node; more on bigger machines.
		MaxConcurrentCompactions: func() int { return max(1, runtime.NumCPU()-1) },
		// Write back in 1 MiB steps rather than letting a flush or the WAL
		// accumulate dirty pages for the kernel to write in a burst.
		BytesPerSync:    1 << 20,
		WALBytesPerSync: 1 << 20,
		Logger:          pebbleLogger{opts.Logger},
		FS:              noPreallocFS{vfs.Default},
	}
	o.Levels = make([]pebble.LevelOptions, 7)
	for i := range o.Levels {
		o.Levels[i] = pebble.LevelOptions{
			BlockSize:      32 << 10,
			FilterPolicy:   bloom.FilterPolicy(10),
			FilterType:     pebble.TableFilter,
			TargetFileSize: 32 << 20,
			// What the LSM holds is hashes, ciphertexts and counters:
			// compression costs CPU at every flush and saves little.
			Compression: pebble.NoCompression,
		}
	}
	vlog, err := openValueLog(filepath.Join(dir, "values"), seg)
	if err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, o)
	if err != nil {
		_ = vlog.close()
		return nil, fmt.Errorf("storage: opening %s: %w", dir, err)
	}
	wo := pebble.Sync
	separate := opts.Separate
	if separate == nil {
		separate = func([]byte) bool { return false }
	}
	return &DB{db: db, vlog: vlog, wo: wo, separate: separate, iterators: map[*iterator]struct{}{}}, nil
}

// pebbleLogger passes pebble's messages to a slog.Logger. Fatalf is for
// what pebble cannot continue from (a failed manifest write, corruption):
// it logs and panics, as pebble's default logger exits.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	if p.l != nil {
		p.l.Info(fmt.Sprintf(format, args...), "component", "pebble")
	}
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if p.l != nil {
		p.l.Error(msg, "component", "pebble")
	}
	panic("storage: pebble: " + msg)
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pebble.ErrNotFound):
		return database.ErrNotFound
	case errors.Is(err, pebble.ErrClosed):
		return database.ErrClosed
	}
	return err
}

// Has implements database.Database.
func (d *DB) Has(key []byte) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return false, database.ErrClosed
	}
	_, closer, err := d.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, mapErr(err)
	}
	return true, closer.Close()
}

// Get implements database.Database. The result is the caller's.
func (d *DB) Get(key []byte) ([]byte, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, database.ErrClosed
	}
	v, closer, err := d.db.Get(key)
	if err != nil {
		return nil, mapErr(err)
	}
	defer closer.Close()
	return d.resolve(key, v)
}

// resolve returns a copy of the value stored under key: v itself, or what
// v points to for a separated key.
func (d *DB) resolve(key, v []byte) ([]byte, error) {
	if !d.separate(key) {
		out := make([]byte, len(v))
		copy(out, v)
		return out, nil
	}
	p, err := parsePointer(v)
	if err != nil {
		return nil, fmt.Errorf("key %x: %w", key, err)
	}
	return d.vlog.read(p)
}

// Stats are figures of a database for monitoring.
type Stats struct {
	// L0Files is the number of level-0 tables: pebble stops writes at 32
	// (L0StopWritesThreshold), compacts from 4.
	L0Files int64
	// Compactions and Flushes count since the database was opened.
	Compactions int64
	Flushes     int64
	// CompactionDebtBytes estimates what compactions still have to write
	// to bring the LSM back into shape.
	CompactionDebtBytes uint64
	// LSMBytes is the size of pebble's files (tables, logs, manifest).
	LSMBytes uint64
	// ValueLogBytes and ValueLogSegments describe the value log.
	ValueLogBytes    int64
	ValueLogSegments int
}

// Stats returns the database's figures.
func (d *DB) Stats() (Stats, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return Stats{}, database.ErrClosed
	}
	m := d.db.Metrics()
	s := Stats{
		L0Files:             m.Levels[0].NumFiles,
		Compactions:         m.Compact.Count,
		Flushes:             m.Flush.Count,
		CompactionDebtBytes: m.Compact.EstimatedDebt,
		LSMBytes:            m.DiskSpaceUsage(),
	}
	d.vlog.mu.Lock()
	s.ValueLogBytes, s.ValueLogSegments = d.vlog.bytes, d.vlog.segments
	d.vlog.mu.Unlock()
	return s, nil
}

// Put implements database.Database.
func (d *DB) Put(key, value []byte) error {
	b := d.NewBatch()
	if err := b.Put(key, value); err != nil {
		return err
	}
	return b.Write()
}

// Delete implements database.Database.
func (d *DB) Delete(key []byte) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return database.ErrClosed
	}
	return mapErr(d.db.Delete(key, d.wo))
}

// Sync implements database.Database. Every commit is durable when it
// returns (see the package comment); Sync syncs pebble's write-ahead log,
// which holds nothing unsynced.
func (d *DB) Sync() error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return database.ErrClosed
	}
	return mapErr(d.db.LogData(nil, pebble.Sync))
}

// Compact implements database.Database: it compacts the LSM over [start,
// limit) (nil limit: to the end).
func (d *DB) Compact(start, limit []byte) error {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return database.ErrClosed
	}
	if limit == nil {
		limit = bytes.Repeat([]byte{0xff}, 64)
	}
	if bytes.Compare(start, limit) >= 0 {
		return nil
	}
	return mapErr(d.db.Compact(start, limit, true))
}

// HealthCheck implements database.Database.
func (d *DB) HealthCheck(context.Context) (any, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, database.ErrClosed
	}
	return nil, nil
}

// Close releases open iterators, syncs and closes the database.
func (d *DB) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return database.ErrClosed
	}
	d.closed = true
	d.itMu.Lock()
	for it := range d.iterators {
		it.releaseLocked()
	}
	d.iterators = nil
	d.itMu.Unlock()
	verr := d.vlog.close()
	return errors.Join(verr, mapErr(d.db.Close()))
}

// NewBatch implements database.Database.
func (d *DB) NewBatch() database.Batch { return &batch{d: d} }

// batch writes the operations on keys that are not separated straight
// into a pebble batch (which copies them), and keeps those on separated
// keys, with their values concatenated, for Write: there the values go to
// the value log first (one write), then one pebble batch with the other
// operations and the pointers is committed. The two groups touch disjoint
// keys, so applying the separated group last keeps every key's order;
// Replay interleaves them as they were written.
type batch struct {
	d    *DB
	pb   *pebble.Batch // nil until the first operation on a non-separated key
	sep  []sepOp
	size int
}

// sepOp is an operation on a separated key. Its value is a copy of its
// own (a block's chunks are 32 KiB: the allocator reuses such objects,
// where one growing buffer took fresh memory at every doubling, which
// cost 0.7 s of page faults per 20,000 messages on a host where a fault
// costs 11 µs).
type sepOp struct {
	key []byte
	val []byte
	del bool
	at  uint32 // operations in pb before this one
}

// lsmCount is the number of operations in pb.
func (b *batch) lsmCount() uint32 {
	if b.pb == nil {
		return 0
	}
	return b.pb.Count()
}

func (b *batch) lsm() *pebble.Batch {
	if b.pb == nil {
		b.pb = b.d.db.NewBatch()
	}
	return b.pb
}

func (b *batch) Put(key, value []byte) error {
	b.size += len(key) + len(value)
	if b.d.separate(key) {
		val := make([]byte, len(value))
		copy(val, value)
		b.sep = append(b.sep, sepOp{key: slices.Clone(key), val: val, at: b.lsmCount()})
		return nil
	}
	return mapErr(b.lsm().Set(key, value, nil))
}

func (b *batch) Delete(key []byte) error {
	b.size += len(key)
	if b.d.separate(key) {
		b.sep = append(b.sep, sepOp{key: slices.Clone(key), del: true, at: b.lsmCount()})
		return nil
	}
	return mapErr(b.lsm().Delete(key, nil))
}

func (b *batch) Size() int { return b.size }

func (b *batch) Write() error {
	d := b.d
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return database.ErrClosed
	}
	var (
		ptrs []pointer
		vals [][]byte
	)
	for _, o := range b.sep {
		if !o.del {
			vals = append(vals, o.val)
		}
	}
	if len(vals) > 0 {
		var err error
		if ptrs, err = d.vlog.append(vals); err != nil {
			return err
		}
	}
	// b.pb itself is never applied (pebble applies a batch once; this one
	// may be written again, and replayed): its operations are copied.
	wb := d.db.NewBatch()
	defer wb.Close()
	if b.pb != nil {
		if err := wb.Apply(b.pb, nil); err != nil {
			return mapErr(err)
		}
	}
	var ptrBuf [pointerSize]byte
	for _, o := range b.sep {
		var err error
		if o.del {
			err = wb.Delete(o.key, nil)
		} else {
			err = wb.Set(o.key, ptrs[0].append(ptrBuf[:0]), nil)
			ptrs = ptrs[1:]
		}
		if err != nil {
			return mapErr(err)
		}
	}
	return mapErr(d.db.Apply(wb, d.wo))
}

func (b *batch) Reset() {
	if b.pb != nil {
		b.pb.Reset()
	}
	clear(b.sep)
	b.sep = b.sep[:0]
	b.size = 0
}

// Replay replays the operations in the order they were written.
func (b *batch) Replay(w database.KeyValueWriterDeleter) error {
	sep := b.sep
	// flush replays the separated operations written before the n-th
	// operation on a non-separated key.
	flush := func(n uint32) error {
		for len(sep) > 0 && sep[0].at <= n {
			o := sep[0]
			sep = sep[1:]
			var err error
			if o.del {
				err = w.Delete(o.key)
			} else {
				err = w.Put(o.key, o.val)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if b.pb != nil {
		r := b.pb.Reader()
		for n := uint32(0); ; n++ {
			kind, k, v, ok, err := r.Next()
			if err != nil {
				return err
			}
			if !ok {
				break
			}
			if err := flush(n); err != nil {
				return err
			}
			switch kind {
			case pebble.InternalKeyKindSet:
				err = w.Put(k, v)
			case pebble.InternalKeyKindDelete:
				err = w.Delete(k)
			default:
				err = fmt.Errorf("storage: batch holds an operation of kind %v", kind)
			}
			if err != nil {
				return err
			}
		}
	}
	return flush(^uint32(0))
}

func (b *batch) Inner() database.Batch { return b }

// NewIterator implements database.Database.
func (d *DB) NewIterator() database.Iterator { return d.newIterator(nil, nil) }

// NewIteratorWithStart implements database.Database.
func (d *DB) NewIteratorWithStart(start []byte) database.Iterator {
	return d.newIterator(start, nil)
}

// NewIteratorWithPrefix implements database.Database.
func (d *DB) NewIteratorWithPrefix(prefix []byte) database.Iterator {
	return d.newIterator(nil, prefix)
}

// NewIteratorWithStartAndPrefix implements database.Database.
func (d *DB) NewIteratorWithStartAndPrefix(start, prefix []byte) database.Iterator {
	return d.newIterator(start, prefix)
}

func (d *DB) newIterator(start, prefix []byte) database.Iterator {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return &database.IteratorError{Err: database.ErrClosed}
	}
	o := &pebble.IterOptions{}
	if len(prefix) > 0 {
		o.LowerBound = slices.Clone(prefix)
		o.UpperBound = prefixEnd(prefix)
	}
	if bytes.Compare(start, o.LowerBound) > 0 {
		o.LowerBound = slices.Clone(start)
	}
	pit, err := d.db.NewIter(o)
	if err != nil {
		return &database.IteratorError{Err: mapErr(err)}
	}
	it := &iterator{d: d, it: pit}
	d.itMu.Lock()
	d.iterators[it] = struct{}{}
	d.itMu.Unlock()
	return it
}

// prefixEnd is the first key after every key with prefix p, or nil when
// there is none (p is all 0xff).
func prefixEnd(p []byte) []byte {
	end := slices.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// iterator copies each key and value (and reads a separated value from
// the value log) at Next, so what Key and Value return stays valid.
type iterator struct {
	d       *DB
	it      *pebble.Iterator // nil once released
	started bool
	key     []byte
	value   []byte
	err     error
}

func (i *iterator) Next() bool {
	i.d.mu.RLock()
	defer i.d.mu.RUnlock()
	if i.it == nil || i.err != nil {
		i.key, i.value = nil, nil
		if i.err == nil && i.d.closed {
			i.err = database.ErrClosed
		}
		return false
	}
	var ok bool
	if !i.started {
		ok, i.started = i.it.First(), true
	} else {
		ok = i.it.Next()
	}
	if !ok {
		i.key, i.value = nil, nil
		i.err = mapErr(i.it.Error())
		return false
	}
	i.key = slices.Clone(i.it.Key())
	v, err := i.d.resolve(i.key, i.it.Value())
	if err != nil {
		i.key, i.value, i.err = nil, nil, err
		return false
	}
	i.value = v
	return true
}

func (i *iterator) Error() error  { return i.err }
func (i *iterator) Key() []byte   { return i.key }
func (i *iterator) Value() []byte { return i.value }

func (i *iterator) Release() {
	i.d.itMu.Lock()
	defer i.d.itMu.Unlock()
	i.releaseLocked()
	if i.d.iterators != nil {
		delete(i.d.iterators, i)
	}
}

// releaseLocked closes the pebble iterator; d.itMu is held (and, from
// Close, d.mu: no Next runs meanwhile).
func (i *iterator) releaseLocked() {
	if i.it != nil {
		_ = i.it.Close()
		i.it = nil
	}
}
