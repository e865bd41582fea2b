package chat

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/luxfi/session/chat/internal/ratchet"
)

// Fuzz targets for every decoder of bytes this package reads back: the
// envelope through Open (the wire parser has its own targets in
// internal/wire), the ratchet state and the other stored records, the file
// store's journal and key file. Seeds come from the known-answer vectors
// and from a conversation run here.

func vectorEnvelopes(t testing.TB) [][]byte {
	b, err := os.ReadFile("chattest/testdata/conversation_kat.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Steps []struct {
			Envelopes []struct {
				Hex string `json:"hex"`
			} `json:"envelopes"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range f.Steps {
		for _, e := range s.Envelopes {
			env, _ := hex.DecodeString(e.Hex)
			out = append(out, env)
		}
	}
	return out
}

// seedNet runs a short three-party conversation and returns it with its
// envelopes (handshakes, steps, continues).
func seedNet(t testing.TB) *testNet {
	net := newTestNet(t, 3, nil)
	for i, from := range []int{0, 1, 2, 0, 0, 1} {
		k := net.send(from, "seed message")
		for _, kk := range k {
			for j := range net.n {
				net.open(j, kk)
			}
		}
		_ = i
	}
	return net
}

func FuzzOpen(f *testing.F) {
	net := seedNet(f)
	for _, p := range net.chain {
		f.Add(p.env, uint8(p.sender))
	}
	for _, env := range vectorEnvelopes(f) {
		f.Add(env, uint8(0))
	}
	// Bob of a fresh session of the same participants, rewound to his
	// state before any message for every input, so that the seed
	// conversation's envelopes are fresh each time.
	fresh := newTestNet(f, 3, nil)
	bob := fresh.convs[1]
	store := fresh.stores[1].(*MemoryStore)
	committed, dev := bytes.Clone(bob.committed), fresh.devs[1].rec.clone()
	fresh.session.ID = net.session.ID
	f.Fuzz(func(t *testing.T, env []byte, sender uint8) {
		bob.committed, bob.seen, fresh.devs[1].rec = committed, 0, dev.clone()
		bob.restore()
		store.archive = map[[32]byte]map[[16]byte][]byte{}
		_, err := bob.Open(fresh.now, &Delivery{Envelope: env, Position: 1, Sender: fresh.sid(int(sender % 3))})
		if err == nil {
			return
		}
		for _, e := range []error{ErrMalformed, ErrWrongSender, ErrReplay, ErrDuplicate, ErrChainNotStarted, ErrUnknownTree,
			ErrUnknownTarget, ErrUnknownPrekey, ErrUnclaimedPrekey, ErrNotAddressed, ErrNotFromThisDevice, ErrDecryptionFailed,
			ErrInvalidSignature, ErrTooManySkipped, ErrTooManyHandshakes} {
			if errors.Is(err, e) {
				return
			}
		}
		t.Fatalf("unexpected error class: %v", err)
	})
}

func storedRecords(t testing.TB) (conv, dev [][]byte, outbox, archive [][]byte) {
	net := seedNet(t)
	net.send(0, "pending in the outbox")
	for i, s := range net.stores {
		c, err := s.LoadConversation(net.session.ID)
		if err != nil {
			t.Fatal(err)
		}
		conv = append(conv, c)
		d, err := s.LoadDevice()
		if err != nil {
			t.Fatal(err)
		}
		dev = append(dev, d)
		o, _ := s.LoadOutbox(net.session.ID)
		for _, r := range o {
			outbox = append(outbox, r.Data)
		}
		a, _ := s.LoadArchive(net.session.ID)
		for _, r := range a {
			archive = append(archive, r.Data)
		}
		_ = i
	}
	return conv, dev, outbox, archive
}

func FuzzConversationRecord(f *testing.F) {
	conv, _, _, _ := storedRecords(f)
	for _, b := range conv {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := parseConversationRecord(b)
		if err != nil {
			if !errors.Is(err, ErrCorruptState) {
				t.Fatalf("error %v is not ErrCorruptState", err)
			}
			return
		}
		out, err := rec.marshal()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatal("parse then marshal differs")
		}
	})
}

func FuzzRatchetState(f *testing.F) {
	conv, _, _, _ := storedRecords(f)
	for _, b := range conv {
		rec, err := parseConversationRecord(b)
		if err != nil {
			f.Fatal(err)
		}
		st, _ := rec.state.MarshalBinary()
		f.Add(st)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ratchet.State
		if err := s.UnmarshalBinary(b); err != nil {
			return
		}
		out, _ := s.MarshalBinary()
		if !bytes.Equal(out, b) {
			t.Fatal("unmarshal then marshal differs")
		}
	})
}

func FuzzDeviceRecord(f *testing.F) {
	_, dev, _, _ := storedRecords(f)
	for _, b := range dev {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := parseDeviceRecord(b)
		if err != nil {
			return
		}
		if !bytes.Equal(d.marshal(), b) {
			t.Fatal("parse then marshal differs")
		}
	})
}

func FuzzOutboxAndArchiveRecords(f *testing.F) {
	_, _, outbox, archive := storedRecords(f)
	for _, b := range outbox {
		f.Add(b, true)
	}
	for _, b := range archive {
		f.Add(b, false)
	}
	f.Fuzz(func(t *testing.T, b []byte, isOutbox bool) {
		if isOutbox {
			if o, err := parseOutboxRecord(b); err == nil && !bytes.Equal(o.marshal(), b) {
				t.Fatal("outbox: parse then marshal differs")
			}
			return
		}
		if a, err := parseArchiveRecord(b); err == nil && !bytes.Equal(a.marshal(), b) {
			t.Fatal("archive: parse then marshal differs")
		}
	})
}

// FuzzStoreKeyFile: a key file as a hostile disk could leave it is refused
// before any scrypt work unless its parameters are in bounds.
func FuzzStoreKeyFile(f *testing.F) {
	dir := f.TempDir()
	s, err := OpenFileStore(filepath.Join(dir, "seed"), "passphrase")
	if err != nil {
		f.Fatal(err)
	}
	s.Close()
	key, _ := os.ReadFile(filepath.Join(dir, "seed", keyName))
	f.Add(key)
	f.Fuzz(func(t *testing.T, b []byte) {
		kf, err := parseStoreKeyFile(b)
		if err != nil {
			return
		}
		if 128*kf.KDF.R<<kf.KDF.LogN > 256<<20 {
			t.Fatal("accepted a key file asking for more than 256 MiB")
		}
	})
}

// FuzzJournal: the journal's decoder, under its AEAD (the fuzzer's input is
// sealed first, as only the store could), refuses paths the store never
// writes and malformed entries.
func FuzzJournal(f *testing.F) {
	s := &FileStore{}
	copy(s.key[:], "a fixed key for the journal fuzz")
	j, err := s.marshalJournal([]fileOp{{rel: "device", data: []byte("x")}, {rel: "s/" + hex.EncodeToString(make([]byte, 32)) + "/state"}})
	if err != nil {
		f.Fatal(err)
	}
	plain, err := s.unseal(journalName, j)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Fuzz(func(t *testing.T, p []byte) {
		sealed, err := s.seal(journalName, p)
		if err != nil {
			t.Fatal(err)
		}
		ops, err := s.parseJournal(sealed)
		if err != nil {
			return
		}
		for _, op := range ops {
			if !validRel(op.rel) {
				t.Fatalf("journal accepted path %q", op.rel)
			}
		}
	})
}
