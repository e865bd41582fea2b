//go:build !linux

package vm

// syncLogFiles is only used on Linux (dbsync_linux.go): elsewhere the
// database's own Sync, which msyncs its mappings, is used.
func syncLogFiles(string) error { return nil }

const fileSyncSupported = false
