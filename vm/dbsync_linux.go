//go:build linux

package vm

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// syncLogFiles makes the database's logs in dir durable without taking
// badger's lock: fdatasync on each value log (.vlog) and then each
// memtable write-ahead log (.mem), opened by path.
//
// Why not badger's DB.Sync: it msyncs the active memtable's log while
// holding the database's read lock, and every batch that fills a memtable
// (ensureRoomForWrite) needs the write lock, so each sync stalled block
// acceptance for its duration (10-50 ms every second on a busy node,
// measured in an execution trace). On Linux the page cache is unified: the
// pages badger writes through its shared mappings are dirty pages of the
// file, and fdatasync of any descriptor writes them back and waits, which
// is what msync(MS_SYNC) does.
//
// Order: value logs first. Badger writes a batch's large values to the
// value log before it writes their pointers to the memtable's log, so a
// pointer that reaches the disk through this sync points at data that
// reached it before. A file deleted or rotated meanwhile is skipped: its
// contents reached a table (which badger syncs itself) or are gone by
// design.
func syncLogFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var vlogs, mems []string
	for _, e := range entries {
		switch name := e.Name(); {
		case strings.HasSuffix(name, ".vlog"):
			vlogs = append(vlogs, name)
		case strings.HasSuffix(name, ".mem"):
			mems = append(mems, name)
		}
	}
	var errs []error
	for _, name := range slices.Concat(vlogs, mems) {
		if err := fdatasync(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func fdatasync(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	err = unix.Fdatasync(int(f.Fd()))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return &fs.PathError{Op: "fdatasync", Path: path, Err: err}
	}
	return nil
}

const fileSyncSupported = true
