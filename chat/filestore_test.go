package chat

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// noSyncFS is the real file system without fsync: the randomized tests
// exercise the store's code paths and restarts, not the disk's durability
// (the crash test does that, with injected faults), and a shared disk's
// fsync would make them slow.
type noSyncFS struct{ osFS }

func (noSyncFS) WriteTemp(dir string, data []byte) (string, error) {
	f, err := os.CreateTemp(dir, tempPrefix+"*")
	if err != nil {
		return "", err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

func (noSyncFS) SyncDir(string) error { return nil }

func openTestStore(t testing.TB, dir string) *FileStore {
	t.Helper()
	s, err := openFileStore(dir, "passphrase", noSyncFS{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fileStores(t *testing.T, n int) ([]Store, []string) {
	t.Helper()
	var stores []Store
	var dirs []string
	for i := range n {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.chat", i))
		s := openTestStore(t, dir)
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
		dirs = append(dirs, dir)
	}
	return stores, dirs
}

func TestFileStoreConversation(t *testing.T) {
	stores, dirs := fileStores(t, 2)
	net := newTestNet(t, 2, stores)
	for i := range 6 {
		from := i % 2
		k := net.send(from, fmt.Sprintf("plaintext marker %d", i))
		net.mustOpen(1-from, k[0], fmt.Sprintf("plaintext marker %d", i))
		if i == 3 {
			// Restart Bob from disk.
			stores[1].(*FileStore).Close()
			s, err := OpenFileStore(dirs[1], "passphrase")
			if err != nil {
				t.Fatal(err)
			}
			net.stores[1] = s
			net.reopen(1)
		}
	}
	h, err := net.convs[1].History()
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 6 {
		t.Fatalf("history after restart: %d messages", len(h))
	}
	// Nothing on disk is in the clear: no plaintext, no header magic.
	err = filepath.Walk(dirs[1], func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "plaintext marker") && !strings.HasSuffix(path, "key") {
			t.Errorf("%s holds a plaintext", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestFileStoreOpenErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "x.chat")
	s, err := OpenFileStore(dir, "right")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir, "right"); !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("second open: %v", err)
	}
	if err := s.Commit(&Batch{Device: []byte("device")}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenFileStore(dir, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	s, err = OpenFileStore(dir, "right")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.LoadDevice()
	if err != nil || string(got) != "device" {
		t.Fatalf("reload: %q %v", got, err)
	}
	s.Close()
	// A record moved to another name does not authenticate.
	var session [32]byte
	s, _ = OpenFileStore(dir, "right")
	if err := s.Commit(&Batch{Conversations: []ConversationWrite{{Session: session, Data: []byte("state")}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "s", fmt.Sprintf("%x", session), "state"))
	os.WriteFile(filepath.Join(dir, "device"), b, 0o600)
	s, _ = OpenFileStore(dir, "right")
	defer s.Close()
	if _, err := s.LoadDevice(); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("swapped record: %v", err)
	}
}
