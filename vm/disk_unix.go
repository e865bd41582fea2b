//go:build unix

package vm

import (
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// availableBytes is the free space of the filesystem holding path that an
// unprivileged process may use (statfs f_bavail).
func availableBytes(path string) (uint64, error) {
	var s unix.Statfs_t
	if err := unix.Statfs(path, &s); err != nil {
		return 0, err
	}
	return uint64(s.Bavail) * uint64(s.Bsize), nil
}

// dbFileSizes returns the bytes allocated to badger's LSM tables (.sst) and
// value-log files (.vlog) in dir. Allocated, not apparent: the current
// value-log file is sparse, as large as a whole file from the start.
func dbFileSizes(dir string) (lsm, vlog int64) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range entries {
		name := e.Name()
		isSST, isVlog := strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".vlog")
		if !isSST && !isVlog {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, name), &st) != nil {
			continue
		}
		n := int64(st.Blocks) * 512
		if isSST {
			lsm += n
		} else {
			vlog += n
		}
	}
	return lsm, vlog
}
