package storage

import "github.com/cockroachdb/pebble/vfs"

// noPreallocFS is the OS filesystem for pebble without preallocation.
//
// Pebble preallocates every write-ahead log it creates to 110 % of the
// largest memtable (70 MiB here), and its memtables start at 256 KiB and
// double up to that size, each with a log of its own, flushed only once
// the queued memtables add up to a full one: measured, 64 KiB batches left
// seven 70 MiB logs (490 MiB) on disk before the first flush. The node
// keeps a disk reserve for what the database may write unasked (vm's
// StorageReserve); without preallocation a log takes what was written to
// it, so that reserve counts bytes, not files. What it costs: an fdatasync
// of a log that grew also writes its new size (on ext4, measured in the
// commit path's latency: none visible at the measured load; the value log
// grows the same way).
type noPreallocFS struct{ vfs.FS }

func (fs noPreallocFS) Create(name string) (vfs.File, error) {
	f, err := fs.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

func (fs noPreallocFS) ReuseForWrite(oldname, newname string) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname)
	if err != nil {
		return nil, err
	}
	return noPreallocFile{f}, nil
}

type noPreallocFile struct{ vfs.File }

func (noPreallocFile) Preallocate(offset, length int64) error { return nil }
