package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// smallFS mounts a tmpfs of size bytes for the test, or skips the test
// with the reason when it cannot (not root, or no CAP_SYS_ADMIN).
func smallFS(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs to fill needs root (CI runs .ci/run as root, where this test runs)")
	}
	dir := filepath.Join(t.TempDir(), "fs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		if errors.Is(err, unix.EPERM) {
			t.Skipf("skipped: root, but mounting a tmpfs is not permitted here (%v)", err)
		}
		t.Fatalf("mounting a %d-byte tmpfs on %s: %v", size, dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", dir, err)
		}
	})
	return dir
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var s unix.Statfs_t
	if err := unix.Statfs(dir, &s); err != nil {
		t.Fatal(err)
	}
	return s.Bavail * uint64(s.Bsize)
}

// TestDiskFillTmpfs fills a real, small filesystem through the JSON-RPC API
// with 60 KiB messages. Before the disk guard, this ended in SIGBUS inside
// badger's memory-mapped value log (the test binary dies). Now the node
// refuses transactions with the disk-full code once free space nears its
// reserve, says why in its health report (and /health answers 503), keeps
// serving reads, accepts every transaction it admitted, never eats into
// the reserve, resumes by itself when space is freed, and loses nothing
// across a restart.
func TestDiskFillTmpfs(t *testing.T) {
	const (
		// About 14 MiB above the 86 MiB reserve of a new chain: ~110
		// messages fill it.
		fsSize  = 120 << 20
		ballast = 20 << 20 // freed later, to give space back
		msgSize = 60 << 10
	)
	fs := smallFS(t, fsSize)
	if err := os.WriteFile(filepath.Join(fs, "ballast"), make([]byte, ballast), 0o600); err != nil {
		t.Fatal(err)
	}
	alice, bob := identity(t, 0), identity(t, 1)
	// The test fills a disk from one identity: its byte bucket must not
	// stop it first.
	limits := map[string]any{"rateLimits": map[string]any{"bytes": map[string]any{"burst": 1 << 20, "refillSeconds": 1}}}
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, limits, alice, bob)
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(fs, "data")
	n := start(t, Config{DataDir: dataDir, Genesis: genesis})
	c := client(n)
	ctx := context.Background()

	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	waitAccepted(t, c, r, err)
	session := r.Session
	// Bob consents, or the chain stops the request after a few messages.
	a, err := c.AcceptSession(ctx, bob, session)
	waitAccepted(t, c, a, err)
	h, err := c.Health(ctx)
	if err != nil || !h.Healthy || h.Disk == nil || !h.Disk.Admitting {
		t.Fatalf("health at start: %+v, %v", h, err)
	}
	reserve := h.Disk.ReserveBytes
	free0 := freeBytes(t, fs)
	t.Logf("tmpfs %d MiB, %.1f MiB free, reserve %.1f MiB", fsSize>>20, float64(free0)/(1<<20), float64(reserve)/(1<<20))
	if free0 < reserve+10<<20 {
		t.Fatalf("the test needs room above the reserve: %d free, reserve %d", free0, reserve)
	}

	// Fill until the node refuses even with nothing pending.
	ct := bytes.Repeat([]byte{0x5a}, msgSize)
	one, err := tx.Sign(alice, n.ChainID(), 0, &tx.SendMessage{Session: session, Ciphertext: ct})
	if err != nil {
		t.Fatal(err)
	}
	var sent []*service.TxReply
	minFree := free0
	var refusal error
	for i := 0; ; i++ {
		if i == 4000 {
			t.Fatalf("the node never refused: %d messages sent, %d bytes free", len(sent), freeBytes(t, fs))
		}
		ct[0], ct[1] = byte(i), byte(i>>8)
		r, err := c.Send(ctx, alice, session, ct)
		minFree = min(minFree, freeBytes(t, fs))
		if err == nil {
			sent = append(sent, r)
			continue
		}
		if !errors.Is(err, service.ErrDiskFull) {
			t.Fatalf("message %d: %v", i, err)
		}
		refusal = err
		// Everything admitted is accepted; then try again.
		for _, r := range sent {
			waitAccepted(t, c, r, nil)
		}
		if st, err := c.Status(ctx); err != nil || st.MempoolTxs != 0 {
			t.Fatalf("status %+v, %v", st, err)
		}
		// Committing the pending bytes may have cost less than admission
		// assumed: then there is room again, and filling goes on.
		r, err = c.Send(ctx, alice, session, ct)
		if errors.Is(err, service.ErrDiskFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, r)
	}
	t.Logf("refused after %d messages: %v", len(sent), refusal)
	code, _ := service.CodeOf(refusal)
	if code != service.CodeDiskFull || !service.IsRetryable(refusal) {
		t.Fatalf("refusal %v: code %d", refusal, code)
	}

	// Commits never ate into the reserve beyond the one block being
	// committed, and the disk cost per transaction byte stayed within the
	// bound the admission watermark assumes.
	free1 := freeBytes(t, fs)
	minFree = min(minFree, free1)
	if floor := reserve - vm.DiskBytesPerTxByte*config.MaxBlockSize; minFree < floor {
		t.Fatalf("free space fell to %d, below reserve - one block = %d", minFree, floor)
	}
	txBytes := uint64(len(sent) * one.Size())
	perTxByte := float64(free0-free1) / float64(txBytes)
	t.Logf("%d messages (%.1f MiB of transactions) took %.1f MiB of disk: %.2f bytes per transaction byte (bound %d)",
		len(sent), float64(txBytes)/(1<<20), float64(free0-free1)/(1<<20), perTxByte, vm.DiskBytesPerTxByte)
	if perTxByte > vm.DiskBytesPerTxByte {
		t.Fatalf("%.2f disk bytes per transaction byte exceed vm.DiskBytesPerTxByte = %d", perTxByte, vm.DiskBytesPerTxByte)
	}

	// The health report says why; /health answers 503; reads are served.
	h, err = c.Health(ctx)
	if err != nil || h.Healthy || h.Disk == nil || h.Disk.Admitting || h.Error == "" || h.Disk.FreeBytes >= h.Disk.AdmitBytes {
		t.Fatalf("health while full: %+v disk %+v, %v", h, h.Disk, err)
	}
	t.Logf("health: %s", h.Error)
	resp, err := http.Get("http://" + n.Addr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var raw map[string]any
	_ = json.Unmarshal(body, &raw)
	if resp.StatusCode != http.StatusServiceUnavailable || raw["disk"] == nil {
		t.Fatalf("/health: HTTP %d %v", resp.StatusCode, raw)
	}
	// The API is public: neither the health report nor the refusals name
	// the database's directory.
	if strings.Contains(string(body), fs) || strings.Contains(refusal.Error(), fs) {
		t.Fatalf("the data directory %s is shown: /health %s, refusal %v", fs, body, refusal)
	}
	if m := scrape(t, n); m["sessiond_disk_admitting"] != 0 || m["sessiond_disk_free_bytes"] == 0 || m["sessiond_disk_reserve_bytes"] != float64(reserve) {
		t.Fatalf("disk metrics while full: admitting %v, free %v, reserve %v", m["sessiond_disk_admitting"], m["sessiond_disk_free_bytes"], m["sessiond_disk_reserve_bytes"])
	}
	msgs, err := c.Messages(ctx, session, 0, 10)
	if err != nil || len(msgs.Messages) != 10 {
		t.Fatalf("reads while full: %v", err)
	}
	if _, err := c.Status(ctx); err != nil {
		t.Fatal(err)
	}

	// Space returns: the node admits again by itself.
	if err := os.Remove(filepath.Join(fs, "ballast")); err != nil {
		t.Fatal(err)
	}
	ct[0], ct[1] = 0xff, 0xff
	// Admission may use a reading of the free space up to diskSampleAge
	// (20 ms) old: the node resumes by itself, within that.
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		r, err = c.Send(ctx, alice, session, ct)
		if !errors.Is(err, service.ErrDiskFull) || time.Now().After(deadline) {
			break
		}
	}
	waitAccepted(t, c, r, err)
	sent = append(sent, r)
	if h, err := c.Health(ctx); err != nil || !h.Healthy {
		t.Fatalf("health after space returned: %+v, %v", h, err)
	}

	// A restart keeps every accepted message.
	stop(t, n)
	n = start(t, Config{DataDir: dataDir})
	c = client(n)
	var got int
	var last []byte
	for after := uint64(0); ; {
		page, err := c.Messages(ctx, session, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Messages) == 0 {
			break
		}
		got += len(page.Messages)
		m := page.Messages[len(page.Messages)-1]
		after, last = m.Seq, m.Ciphertext
	}
	if got != len(sent) || !bytes.Equal(last, ct) {
		t.Fatalf("after restart: %d messages, want %d (last matches: %v)", got, len(sent), bytes.Equal(last, ct))
	}
}
