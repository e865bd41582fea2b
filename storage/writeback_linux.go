package storage

import (
	"os"

	"golang.org/x/sys/unix"
)

// writebackStep is how many appended bytes start their writeback.
const writebackStep = 1 << 20

// startWriteback asks the kernel to start writing f's bytes [off, off+n)
// and returns without waiting (sync_file_range, SYNC_FILE_RANGE_WRITE), as
// pebble does for its own files (BytesPerSync). Durability still comes from
// the fsync of sync; this only spreads the writing.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
