package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The value log holds the values of separated keys (Options.Separate): the
// bytes of accepted blocks, which are written once and never rewritten. It
// is a directory of segment files, NNNNNNNN.seg, each a concatenation of
// values with no framing: a value is found by the pointer that the LSM
// stores under its key, and checked against the CRC-32C the pointer
// carries. A segment is only ever appended to by the process that created
// it: an open starts a new one, so a write torn by a crash is never
// followed by another, and its bytes are referenced by no pointer (the LSM
// batch that would point to them is committed only after the append).
//
// Pointer, pointerSize bytes:
//
//	kind    1  pointerKind (1)
//	segment 4  big-endian segment number
//	offset  8  big-endian byte offset in the segment
//	length  4  big-endian value length
//	crc     4  big-endian CRC-32C (Castagnoli) of the value
const (
	pointerKind = 1
	pointerSize = 1 + 4 + 8 + 4 + 4
	segSuffix   = ".seg"
	// maxOpenSegments bounds the segment files held open for reads.
	maxOpenSegments = 128
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type pointer struct {
	seg    uint32
	off    uint64
	length uint32
	crc    uint32
}

func (p pointer) append(b []byte) []byte {
	b = append(b, pointerKind)
	b = binary.BigEndian.AppendUint32(b, p.seg)
	b = binary.BigEndian.AppendUint64(b, p.off)
	b = binary.BigEndian.AppendUint32(b, p.length)
	return binary.BigEndian.AppendUint32(b, p.crc)
}

func parsePointer(b []byte) (pointer, error) {
	if len(b) != pointerSize || b[0] != pointerKind {
		return pointer{}, fmt.Errorf("%w: value pointer of %d bytes", ErrCorrupt, len(b))
	}
	return pointer{
		seg:    binary.BigEndian.Uint32(b[1:]),
		off:    binary.BigEndian.Uint64(b[5:]),
		length: binary.BigEndian.Uint32(b[13:]),
		crc:    binary.BigEndian.Uint32(b[17:]),
	}, nil
}

// ErrCorrupt reports stored bytes that do not match what was written.
var ErrCorrupt = errors.New("storage: corrupt")

// Every append is fsynced before it returns, and a new segment's directory
// entry before the segment's first append: a caller may commit pointers to
// what append returned at once. So nothing is left for a later sync, and a
// segment that is no longer appended to is closed for writing at once.
type valueLog struct {
	dir      string
	segBytes int64

	mu        sync.Mutex // appends
	cur       *os.File   // nil until the first append of this process
	curSeg    uint32
	curSize   int64
	flushedTo int64  // start of cur's bytes not yet handed to writeback
	next      uint32 // number of the next segment to create
	dirSyncs  int    // directory syncs after creating a segment (tests check one per segment)
	broken    error  // set by a failed append: the next append starts a new segment
	buf       []byte // an append's values, concatenated (kept: one write per append)
	bytes     int64  // of all segments, for Stats
	segments  int

	rmu   sync.RWMutex // readers
	files map[uint32]*os.File
}

func openValueLog(dir string, segBytes int64) (*valueLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: creating value log directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: reading value log directory: %w", err)
	}
	var (
		last     uint32
		total    int64
		segments int
	)
	for _, e := range entries {
		n, ok := segmentNumber(e.Name())
		if !ok {
			continue
		}
		last = max(last, n)
		segments++
		if fi, err := e.Info(); err == nil {
			total += fi.Size()
		}
	}
	return &valueLog{dir: dir, segBytes: segBytes, next: last + 1, files: map[uint32]*os.File{}, bytes: total, segments: segments}, nil
}

func segmentNumber(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(base) < 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 32)
	return uint32(n), err == nil
}

func (l *valueLog) segPath(n uint32) string {
	return filepath.Join(l.dir, fmt.Sprintf("%08d%s", n, segSuffix))
}

// append writes the values, one after the other, and returns their
// pointers. On return without error the bytes are on the disk; a caller
// may then commit pointers to them.
func (l *valueLog) append(vals [][]byte) ([]pointer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	buf := l.buf[:0]
	for _, v := range vals {
		buf = append(buf, v...)
	}
	l.buf = buf
	if l.cur == nil || l.broken != nil || (l.curSize > 0 && l.curSize+int64(len(buf)) > l.segBytes) {
		if err := l.rotate(); err != nil {
			return nil, err
		}
	}
	n, err := l.cur.Write(buf)
	l.curSize += int64(n)
	l.bytes += int64(n)
	if err == nil {
		err = l.cur.Sync()
	}
	if err != nil {
		l.broken = err
		return nil, fmt.Errorf("storage: writing the value log: %w", err)
	}
	if l.curSize-l.flushedTo >= writebackStep {
		// Start writing back what is there, without waiting: the kernel
		// then writes the log in steps instead of a burst at the sync.
		startWriteback(l.cur, l.flushedTo, l.curSize-l.flushedTo)
		l.flushedTo = l.curSize
	}
	ptrs := make([]pointer, len(vals))
	off := uint64(l.curSize) - uint64(len(buf))
	for i, v := range vals {
		ptrs[i] = pointer{seg: l.curSeg, off: off, length: uint32(len(v)), crc: crc32.Checksum(v, castagnoli)}
		off += uint64(len(v))
	}
	return ptrs, nil
}

// rotate starts a new segment: created, its directory entry synced, and
// only then the current one. The old segment is closed for writing: all
// its bytes were synced by their appends (or belong to a failed append,
// which nothing points to).
func (l *valueLog) rotate() error {
	f, err := os.OpenFile(l.segPath(l.next), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("storage: creating a value log segment: %w", err)
	}
	n := l.next
	l.next++ // taken even if what follows fails: the file exists
	if err := syncDir(l.dir); err != nil {
		_ = f.Close()
		return err
	}
	l.dirSyncs++
	if l.cur != nil {
		_ = l.cur.Close()
	}
	l.cur, l.curSeg, l.curSize, l.flushedTo, l.broken = f, n, 0, 0, nil
	l.segments++
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("storage: syncing the value log directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("storage: syncing the value log directory: %w", err)
	}
	return nil
}

// read returns a fresh copy of the value p points to. The handle is looked
// up and read under the read lock, so an eviction (which takes the write
// lock) never closes it during a read.
func (l *valueLog) read(p pointer) ([]byte, error) {
	if p.length > maxTrustedLength {
		// A damaged pointer must not make the node allocate gigabytes:
		// a length this large is checked against the segment first.
		if err := l.checkExtent(p); err != nil {
			return nil, err
		}
	}
	out := make([]byte, p.length)
	for {
		l.rmu.RLock()
		f := l.files[p.seg]
		if f == nil {
			l.rmu.RUnlock()
			if err := l.open(p.seg); err != nil {
				return nil, err
			}
			continue
		}
		_, err := f.ReadAt(out, int64(p.off))
		l.rmu.RUnlock()
		if err != nil {
			return nil, fmt.Errorf("%w: value log segment %d at %d (%d bytes): %v", ErrCorrupt, p.seg, p.off, p.length, err)
		}
		if crc32.Checksum(out, castagnoli) != p.crc {
			return nil, fmt.Errorf("%w: value log segment %d at %d (%d bytes): checksum mismatch", ErrCorrupt, p.seg, p.off, p.length)
		}
		return out, nil
	}
}

// maxTrustedLength is the largest value length read without first checking
// that the segment holds it.
const maxTrustedLength = 1 << 20

// checkExtent reports ErrCorrupt unless segment p.seg holds p's bytes.
func (l *valueLog) checkExtent(p pointer) error {
	fi, err := os.Stat(l.segPath(p.seg))
	if err != nil {
		return fmt.Errorf("%w: value log segment %d: %v", ErrCorrupt, p.seg, err)
	}
	if p.off+uint64(p.length) > uint64(fi.Size()) {
		return fmt.Errorf("%w: value log segment %d is %d bytes, a pointer reaches %d", ErrCorrupt, p.seg, fi.Size(), p.off+uint64(p.length))
	}
	return nil
}

// open opens the read handle of segment n. Beyond maxOpenSegments it
// closes the older half of the handles (reads favour recent blocks).
func (l *valueLog) open(n uint32) error {
	l.rmu.Lock()
	defer l.rmu.Unlock()
	if l.files[n] != nil {
		return nil
	}
	f, err := os.Open(l.segPath(n))
	if err != nil {
		return fmt.Errorf("%w: value log segment %d: %v", ErrCorrupt, n, err)
	}
	if len(l.files) >= maxOpenSegments {
		keys := make([]uint32, 0, len(l.files))
		for k := range l.files {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys[:len(keys)-maxOpenSegments/2] {
			_ = l.files[k].Close()
			delete(l.files, k)
		}
	}
	l.files[n] = f
	return nil
}

func (l *valueLog) close() error {
	l.mu.Lock()
	var err error
	if l.cur != nil {
		err = l.cur.Close()
		l.cur = nil
	}
	l.mu.Unlock()
	l.rmu.Lock()
	for k, f := range l.files {
		_ = f.Close()
		delete(l.files, k)
	}
	l.rmu.Unlock()
	return err
}
