package chat

import (
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// memFS is a fileSystem in memory: the crash test runs the file store's
// code paths thousands of times without the disk. Directories exist
// implicitly.
type memFS struct {
	mu    sync.Mutex
	files map[string][]byte
	tmp   int
}

func newMemFS() *memFS { return &memFS{files: map[string][]byte{}} }

func (m *memFS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[name]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return append([]byte(nil), b...), nil
}

func (m *memFS) ReadDir(name string) ([]dirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	var out []dirEntry
	prefix := name + string(filepath.Separator)
	for f := range m.files {
		if !strings.HasPrefix(f, prefix) {
			continue
		}
		rest := f[len(prefix):]
		first, _, isDir := strings.Cut(rest, string(filepath.Separator))
		if !seen[first] {
			seen[first] = true
			out = append(out, dirEntry{name: first, dir: isDir})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (m *memFS) MkdirAll(string) error { return nil }

func (m *memFS) WriteTemp(dir string, data []byte) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tmp++
	name := filepath.Join(dir, fmt.Sprintf("%s%d", tempPrefix, m.tmp))
	m.files[name] = append([]byte(nil), data...)
	return name, nil
}

func (m *memFS) Rename(o, n string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.files[o]
	if !ok {
		return fs.ErrNotExist
	}
	delete(m.files, o)
	m.files[n] = b
	return nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.files, name)
	return nil
}

func (m *memFS) SyncDir(string) error { return nil }

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

func (m *memFS) Lock(string) (io.Closer, error) { return nopCloser{}, nil }
