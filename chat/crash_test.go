package chat

import (
	"errors"

	"fmt"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/crypto"
	"io"
	"testing"
)

// errCrash is what every file system call returns once the simulated
// process has died.
var errCrash = errors.New("simulated crash")

// faultFS counts the calls that change the disk and kills the process at
// call number crashAt: that call has no effect, except a WriteTemp, which
// leaves half its data in a temporary file (a write cut short); every later
// call fails. This simulates kill -9 at any point: what the kernel already
// has stays, nothing after happens. (Power loss adds reordering of unsynced
// writes, which the store's fsync of files and directories before each
// rename excludes.)
type faultFS struct {
	base    fileSystem
	count   *int // shared by the stores of one process
	crashAt int  // 0: never
	dead    bool
}

func (f *faultFS) op() error {
	if f.dead {
		return errCrash
	}
	*f.count++
	if *f.count == f.crashAt {
		f.dead = true
		return errCrash
	}
	return nil
}

func (f *faultFS) ReadFile(name string) ([]byte, error) {
	if f.dead {
		return nil, errCrash
	}
	return f.base.ReadFile(name)
}

func (f *faultFS) ReadDir(name string) ([]dirEntry, error) {
	if f.dead {
		return nil, errCrash
	}
	return f.base.ReadDir(name)
}

func (f *faultFS) MkdirAll(name string) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.base.MkdirAll(name)
}

func (f *faultFS) WriteTemp(dir string, data []byte) (string, error) {
	if err := f.op(); err != nil {
		if *f.count == f.crashAt {
			f.base.WriteTemp(dir, data[:len(data)/2]) // torn
		}
		return "", err
	}
	return f.base.WriteTemp(dir, data)
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.base.Rename(o, n)
}

func (f *faultFS) Remove(name string) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.base.Remove(name)
}

func (f *faultFS) Lock(name string) (io.Closer, error) { return f.base.Lock(name) }

func (f *faultFS) SyncDir(name string) error {
	if err := f.op(); err != nil {
		return err
	}
	return f.base.SyncDir(name)
}

// crashStep is one step of the crash script.
type crashStep struct {
	op    string // send | open | prekeys
	who   int
	label string // send: the message; open: the label of the message opened
}

// crashScript exercises every kind of commit: a handshake with a one-time
// prekey (consumed in the same commit), steps, continues, out-of-order
// opens (skipped keys), own messages confirmed, prekeys generated.
var crashScript = []crashStep{
	{"send", 0, "m0"}, {"open", 1, "m0"}, {"open", 0, "m0"},
	{"send", 1, "m1"}, {"open", 0, "m1"}, {"open", 1, "m1"},
	{"send", 0, "m2"}, {"send", 0, "m3"}, {"send", 0, "m3b"},
	{"open", 1, "m2"}, {"open", 1, "m3b"}, {"open", 1, "m3"},
	{"open", 0, "m2"}, {"open", 0, "m3"}, {"open", 0, "m3b"},
	{"prekeys", 1, ""},
	{"send", 1, "m4"}, {"open", 0, "m4"}, {"open", 1, "m4"},
}

// crashBase is the state every crash run starts from: two devices with
// prekeys and the session's conversation, on in-memory disks.
type crashBase struct {
	disks []*memFS
	dir   *directory
	net   *testNet
}

var crashBaseOnce *crashBase

func newCrashBase(t *testing.T) *crashBase {
	if crashBaseOnce != nil {
		return crashBaseOnce
	}
	b := &crashBase{disks: []*memFS{newMemFS(), newMemFS()}}
	var stores []Store
	for i, d := range []string{"/alice.chat", "/bob.chat"} {
		s, err := openFileStore(d, "passphrase", b.disks[i])
		if err != nil {
			t.Fatal(err)
		}
		stores = append(stores, s)
	}
	b.net = newTestNet(t, 2, stores)
	b.dir = b.net.dir
	crashBaseOnce = b
	return b
}

func (m *memFS) clone() *memFS {
	c := newMemFS()
	for k, v := range m.files {
		c.files[k] = append([]byte(nil), v...)
	}
	c.tmp = m.tmp
	return c
}

func (d *directory) clone() *directory {
	c := *d
	c.oneTime = map[crypto.SessionID][]OneTimePrekey{}
	for k, v := range d.oneTime {
		c.oneTime[k] = append([]OneTimePrekey(nil), v...)
	}
	return &c
}

// runCrash runs the script with victim's process killed at its file system
// call crashAt (0: never) and restarted from disk, and returns how many
// calls the victim made.
func runCrash(t *testing.T, victim, crashAt int) int {
	base := newCrashBase(t)
	dirs := []string{"/alice.chat", "/bob.chat"}
	disks := []*memFS{base.disks[0].clone(), base.disks[1].clone()}
	count := 0
	fsys := []*faultFS{{base: disks[0], count: new(int)}, {base: disks[1], count: new(int)}}
	net := &testNet{
		t: t, n: 2, chainID: base.net.chainID, session: base.net.session, ids: base.net.ids,
		dir: base.dir.clone(), now: base.net.now,
		stores: make([]Store, 2), devs: make([]*Device, 2), convs: make([]*Conversation, 2),
	}
	for i := range 2 {
		s, err := openFileStore(dirs[i], "passphrase", fsys[i])
		if err != nil {
			t.Fatal(err)
		}
		net.stores[i] = s
		net.reopen(i)
	}
	defer func() {
		for _, s := range net.stores {
			s.(*FileStore).Close()
		}
	}()
	// From here on, the victim's calls are counted and may crash.
	fsys[victim].count, fsys[victim].crashAt = &count, crashAt
	m := newModel(t, net, 0) // checks that no message key serves two envelopes
	posted := map[string]int{}
	postedIDs := map[EnvelopeID]bool{}
	crashed := false
	restart := func(i int) {
		crashed = true
		net.stores[i].(*FileStore).Close()
		s, err := openFileStore(dirs[i], "passphrase", &faultFS{base: disks[i], count: new(int)})
		if err != nil {
			t.Fatalf("crash at call %d: the store does not open again: %v", crashAt, err)
		}
		net.stores[i] = s
		net.reopen(i)
	}
	post := func(i int, o Outgoing, label string) {
		if postedIDs[o.ID] {
			return
		}
		postedIDs[o.ID] = true
		k := net.post(i, o)
		m.record(k, label)
		if !o.Control {
			posted[label] = k
		}
	}
	for _, st := range crashScript {
		for attempt := 0; ; attempt++ {
			if attempt > 1 {
				t.Fatalf("crash at call %d: step %v fails after a restart", crashAt, st)
			}
			var err error
			switch st.op {
			case "send":
				// After a restart, the outbox is sent first: if the crashed
				// Send committed, its envelopes are there, and it is done.
				if attempt > 0 {
					out, oerr := net.convs[st.who].Outbox()
					if oerr != nil {
						t.Fatal(oerr)
					}
					sent := false
					for _, o := range out {
						if !postedIDs[o.ID] {
							post(st.who, o, st.label)
							sent = true
						}
					}
					if sent {
						break
					}
				}
				var outs []Outgoing
				outs, err = net.convs[st.who].Send(net.now, []byte(st.label), net.dir)
				for _, o := range outs {
					post(st.who, o, st.label)
				}
			case "open":
				k, ok := posted[st.label]
				if !ok {
					t.Fatalf("crash at call %d: %s was never sent", crashAt, st.label)
				}
				var msg *Message
				msg, err = net.open(st.who, k)
				if errors.Is(err, ErrReplay) && attempt > 0 {
					err = nil // committed before the crash
				} else if err == nil && string(msg.Plaintext) != st.label {
					t.Fatalf("crash at call %d: opened %q, want %q", crashAt, msg.Plaintext, st.label)
				}
			case "prekeys":
				_, err = net.devs[st.who].GeneratePrekeys(net.now, false, 2)
			}
			if err == nil {
				break
			}
			if !errors.Is(err, errCrash) {
				t.Fatalf("crash at call %d: step %v: %v", crashAt, st, err)
			}
			restart(st.who)
		}
	}
	if crashAt != 0 && crashAt <= count && !crashed {
		t.Fatalf("crash at call %d of %d did not happen", crashAt, count)
	}
	// Nothing received was lost, nothing appears twice.
	for i := range 2 {
		h, err := net.convs[i].History()
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]int{}
		for _, msg := range h {
			seen[string(msg.Plaintext)]++
			if msg.Position == 0 {
				t.Errorf("crash at call %d: participant %d: %q never confirmed", crashAt, i, msg.Plaintext)
			}
		}
		for label := range posted {
			if seen[label] != 1 {
				t.Errorf("crash at call %d: participant %d has %q %d times in its history", crashAt, i, label, seen[label])
			}
		}
		if len(seen) != len(posted) {
			t.Errorf("crash at call %d: participant %d history %v, sent %d messages", crashAt, i, seen, len(posted))
		}
	}
	return count
}

// TestCrashAtEveryWrite kills each participant's process at every call that
// changes its store, in turn, restarts it from disk and finishes the
// conversation: the store opens, no message key serves two envelopes, every
// message sent is received exactly once and stays in both histories.
func TestCrashAtEveryWrite(t *testing.T) {
	// The stores' key derivation is not under test here: skip scrypt.
	defer func(f func([]byte, []byte, int, int, int, int) ([]byte, error)) { scryptKey = f }(scryptKey)
	scryptKey = func(p, salt []byte, _, _, _, n int) ([]byte, error) {
		k := suite.H32("test key", p, salt)
		return k[:n], nil
	}
	for victim := range 2 {
		total := runCrash(t, victim, 0)
		if total < 50 {
			t.Fatalf("only %d store calls: the script does not exercise the store", total)
		}
		// Every call; under the race detector every third (the soak and the
		// plain run do every one).
		step := 1
		if raceEnabled && soak() == 0 {
			step = 3
		}
		if testing.Short() {
			step = 7
		}
		for k := 1; k <= total; k += step {
			t.Run(fmt.Sprintf("participant=%d/call=%d", victim, k), func(t *testing.T) {
				runCrash(t, victim, k)
			})
		}
	}
}
