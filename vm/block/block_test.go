package block

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/fuzzedit"
	"github.com/luxfi/session/vm/tx"
)

func sampleTxs(t testing.TB) []*tx.Tx {
	id, err := crypto.IdentityFromSeed([32]byte{9})
	if err != nil {
		t.Fatal(err)
	}
	var out []*tx.Tx
	for i := 0; i < 3; i++ {
		s, err := tx.Sign(id, ids.ID{1}, uint64(i), &tx.SendMessage{Session: ids.ID{2}, Ciphertext: bytes.Repeat([]byte{byte(i)}, 100)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	txs := sampleTxs(t)
	for _, list := range [][]*tx.Tx{nil, txs[:1], txs} {
		b, err := New(ids.ID{7}, 5, 1234, list)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if p.ID() != b.ID() || p.ParentID != b.ParentID || p.Height != 5 || p.Timestamp != 1234 || len(p.Txs) != len(list) {
			t.Fatal("round trip")
		}
		for i := range list {
			if p.Txs[i].ID() != list[i].ID() {
				t.Fatal("tx differs")
			}
		}
		raw := b.Bytes()
		if _, err := Parse(append(bytes.Clone(raw), 1)); !errors.Is(err, ErrMalformed) {
			t.Fatal("trailing byte accepted")
		}
		for n := 0; n < len(raw); n += 1 + n/4 {
			if _, err := Parse(raw[:n]); err == nil {
				t.Fatalf("truncation to %d accepted", n)
			}
		}
	}
	if _, err := Parse(make([]byte, config.MaxBlockSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatal("oversize block")
	}
	b, _ := New(ids.ID{}, 1, 1, nil)
	raw := bytes.Clone(b.Bytes())
	raw[0] = 9
	if _, err := Parse(raw); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatal("version")
	}
	copy(raw[HeaderSize-4:], []byte{0, 0, 0x20, 0})
	raw[0] = Version
	if _, err := Parse(raw); !errors.Is(err, ErrTooManyTxs) {
		t.Fatalf("count: %v", err)
	}
}

// FuzzParse edits encoded blocks (internal/fuzzedit: the fuzzer mutates a
// short edit script, not kilobytes of transactions).
func FuzzParse(f *testing.F) {
	txs := sampleTxs(f)
	var bases [][]byte
	for _, list := range [][]*tx.Tx{nil, txs[:1], txs} {
		b, err := New(ids.ID{7}, 5, 1234, list)
		if err != nil {
			f.Fatal(err)
		}
		bases = append(bases, b.Bytes())
	}
	for i := range bases {
		f.Add(uint8(i), []byte(nil), int16(0))
		f.Add(uint8(i), []byte(nil), int16(-1))
		f.Add(uint8(i), []byte{1, 0, HeaderSize - 1, 9}, int16(0)) // count
	}
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		raw := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		p, err := Parse(raw)
		if err != nil {
			return
		}
		re, err := New(p.ParentID, p.Height, p.Timestamp, p.Txs)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(re.Bytes(), raw) || re.ID() != p.ID() {
			t.Fatal("re-encoding differs")
		}
	})
}

// The ID is SHA-256 over the header bytes and the transaction IDs, and
// changes with every field and every transaction.
func TestIDDefinition(t *testing.T) {
	txs := sampleTxs(t)
	blk, err := New(ids.ID{1}, 2, 3, txs)
	if err != nil {
		t.Fatal(err)
	}
	pre := append([]byte(nil), blk.Bytes()[:HeaderSize]...)
	for _, x := range txs {
		id := x.ID()
		if id != ids.ID(sha256.Sum256(x.Bytes())) {
			t.Fatal("transaction ID is not SHA-256 of its bytes")
		}
		pre = append(pre, id[:]...)
	}
	if blk.ID() != ids.ID(sha256.Sum256(pre)) {
		t.Fatal("ID is not SHA-256(header | transaction IDs)")
	}
	p, err := Parse(blk.Bytes())
	if err != nil || p.ID() != blk.ID() {
		t.Fatalf("Parse gives another ID: %v", err)
	}
	seen := map[ids.ID]string{blk.ID(): "base"}
	variant := func(name string, parent ids.ID, height uint64, ts int64, list []*tx.Tx) {
		b, err := New(parent, height, ts, list)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[b.ID()]; dup {
			t.Fatalf("%s has the ID of %s", name, prev)
		}
		seen[b.ID()] = name
	}
	variant("parent", ids.ID{9}, 2, 3, txs)
	variant("height", ids.ID{1}, 3, 3, txs)
	variant("timestamp", ids.ID{1}, 2, 4, txs)
	variant("fewer txs", ids.ID{1}, 2, 3, txs[:2])
	variant("tx order", ids.ID{1}, 2, 3, []*tx.Tx{txs[1], txs[0], txs[2]})
	variant("no txs", ids.ID{1}, 2, 3, nil)
}
