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

type valueLog struct {
	dir      string
	segBytes int64
	syncEach bool // fsync every append (Options.SyncWrites)

	syncMu sync.Mutex // one sync at a time; taken before mu

	mu        sync.Mutex // appends
	cur       *os.File   // nil until the first append of this process
	curSeg    uint32
	curSize   int64
	flushedTo int64      // start of cur's bytes not yet handed to writeback
	next      uint32     // number of the next segment to create
	unsynced  []*os.File // written since the last sync; closed after it unless cur
	dirDirty  bool       // a segment was created since the last sync
	broken    error      // set by a failed append: the next append starts a new segment

	rmu   sync.RWMutex // readers
	files map[uint32]*os.File
}

func openValueLog(dir string, segBytes int64, syncEach bool) (*valueLog, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: creating value log directory: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: reading value log directory: %w", err)
	}
	var last uint32
	for _, e := range entries {
		n, ok := segmentNumber(e.Name())
		if ok && n > last {
			last = n
		}
	}
	return &valueLog{dir: dir, segBytes: segBytes, syncEach: syncEach, next: last + 1, files: map[uint32]*os.File{}}, nil
}

func segmentNumber(name string) (uint32, bool) {
	base, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(base) != 8 {
		return 0, false
	}
	n, err := strconv.ParseUint(base, 10, 32)
	return uint32(n), err == nil
}

func (l *valueLog) segPath(n uint32) string {
	return filepath.Join(l.dir, fmt.Sprintf("%08d%s", n, segSuffix))
}

// append writes the values, concatenated in buf at the given lengths, and
// returns their pointers. On return without error the bytes are in the
// file (and on the disk with syncEach); a caller may then commit pointers
// to them.
func (l *valueLog) append(buf []byte, lengths []int) ([]pointer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur == nil || l.broken != nil || (l.curSize > 0 && l.curSize+int64(len(buf)) > l.segBytes) {
		if err := l.rotate(); err != nil {
			return nil, err
		}
	}
	n, err := l.cur.Write(buf)
	l.curSize += int64(n)
	if err == nil && l.syncEach {
		err = l.syncFiles([]*os.File{l.cur})
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
	ptrs := make([]pointer, len(lengths))
	off := uint64(l.curSize) - uint64(len(buf))
	at := 0
	for i, n := range lengths {
		ptrs[i] = pointer{seg: l.curSeg, off: off + uint64(at), length: uint32(n), crc: crc32.Checksum(buf[at:at+n], castagnoli)}
		at += n
	}
	return ptrs, nil
}

// rotate starts a new segment. The old one stays in unsynced until the
// next sync, which closes it.
func (l *valueLog) rotate() error {
	f, err := os.OpenFile(l.segPath(l.next), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("storage: creating a value log segment: %w", err)
	}
	l.cur, l.curSeg, l.curSize, l.flushedTo, l.broken = f, l.next, 0, 0, nil
	l.next++
	l.unsynced = append(l.unsynced, f)
	l.dirDirty = true
	return nil
}

// sync makes every append so far durable: the segments' data, then the
// directory entries of new segments. Appends go on meanwhile (the files
// are fsynced outside the append lock); what they add is made durable by
// the next sync.
func (l *valueLog) sync() error {
	l.syncMu.Lock()
	defer l.syncMu.Unlock()
	l.mu.Lock()
	files := slices.Clone(l.unsynced)
	dirDirty := l.dirDirty
	l.dirDirty = false
	l.mu.Unlock()
	err := l.syncFiles(files)
	if err == nil && dirDirty {
		err = syncDir(l.dir)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.dirDirty = l.dirDirty || dirDirty
		return err
	}
	// Synced: the rotated-away segments are closed; cur stays listed (it
	// is written again before the next sync, most likely).
	keep := l.unsynced[:0]
	for _, f := range l.unsynced {
		switch {
		case f == l.cur:
			keep = append(keep, f)
		case slices.Contains(files, f):
			_ = f.Close()
		default:
			keep = append(keep, f)
		}
	}
	clear(l.unsynced[len(keep):])
	l.unsynced = keep
	return nil
}

func (l *valueLog) syncFiles(files []*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("storage: syncing the value log: %w", err)
		}
	}
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
	err := l.sync()
	l.mu.Lock()
	for _, f := range l.unsynced {
		_ = f.Close()
	}
	l.unsynced, l.cur = nil, nil
	l.mu.Unlock()
	l.rmu.Lock()
	for k, f := range l.files {
		_ = f.Close()
		delete(l.files, k)
	}
	l.rmu.Unlock()
	return err
}
