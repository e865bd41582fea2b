package chat

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileSystem is what the file store does to the disk, one call per effect,
// so that tests can cut the process at any of them. Names are absolute.
type fileSystem interface {
	ReadFile(name string) ([]byte, error)
	// ReadDir lists a directory; a missing directory is empty.
	ReadDir(name string) ([]dirEntry, error)
	MkdirAll(name string) error
	// WriteTemp creates a new file in dir, writes data, syncs and closes
	// it, and returns its name.
	WriteTemp(dir string, data []byte) (string, error)
	Rename(oldName, newName string) error
	// Remove deletes a file; a missing file is not an error.
	Remove(name string) error
	SyncDir(name string) error
	// Lock takes the store's exclusive lock, held until closed.
	Lock(name string) (io.Closer, error)
}

// tempPrefix starts the names of temporary files, which an open removes.
const tempPrefix = ".tmp-"

type osFS struct{}

func (osFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(name) }

// dirEntry is a file or directory name.
type dirEntry struct {
	name string
	dir  bool
}

func (osFS) ReadDir(name string) ([]dirEntry, error) {
	es, err := os.ReadDir(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]dirEntry, 0, len(es))
	for _, e := range es {
		if e.IsDir() || e.Type().IsRegular() {
			out = append(out, dirEntry{name: e.Name(), dir: e.IsDir()})
		}
	}
	return out, nil
}

func (osFS) MkdirAll(name string) error { return os.MkdirAll(name, 0o700) }

func (osFS) WriteTemp(dir string, data []byte) (name string, err error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return "", err
	}
	if _, err = f.Write(data); err != nil {
		return "", err
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	return f.Name(), f.Close()
}

func (osFS) Rename(oldName, newName string) error { return os.Rename(oldName, newName) }

func (osFS) Remove(name string) error {
	err := os.Remove(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) { return lockFile(name) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeAtomic writes data to name through a synced temporary file renamed
// into place, then syncs the directory: a crash leaves the old file or the
// new one.
func writeAtomic(fsys fileSystem, name string, data []byte) error {
	dir := filepath.Dir(name)
	tmp, err := fsys.WriteTemp(dir, data)
	if err != nil {
		return err
	}
	if err := fsys.Rename(tmp, name); err != nil {
		fsys.Remove(tmp)
		return err
	}
	return fsys.SyncDir(dir)
}
