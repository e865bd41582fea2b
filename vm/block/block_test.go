package block

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
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
		b, err := New(ids.ID{7}, 5, 1234, [32]byte{3}, list)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Parse(b.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		if p.ID() != b.ID() || p.ParentID != b.ParentID || p.Height != 5 || p.Timestamp != 1234 || p.StateCommitment != [32]byte{3} || len(p.Txs) != len(list) {
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
	b, _ := New(ids.ID{}, 1, 1, [32]byte{}, nil)
	raw := bytes.Clone(b.Bytes())
	for _, v := range []byte{0, 1, 3, 9} { // 1: the format before the state commitment
		raw[0] = v
		if _, err := Parse(raw); !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("version %d: %v", v, err)
		}
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
		b, err := New(ids.ID{7}, 5, 1234, [32]byte{3}, list)
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
		re, err := New(p.ParentID, p.Height, p.Timestamp, p.StateCommitment, p.Txs)
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
	blk, err := New(ids.ID{1}, 2, 3, [32]byte{4}, txs)
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
	variant := func(name string, parent ids.ID, height uint64, ts int64, commitment [32]byte, list []*tx.Tx) {
		b, err := New(parent, height, ts, commitment, list)
		if err != nil {
			t.Fatal(err)
		}
		if prev, dup := seen[b.ID()]; dup {
			t.Fatalf("%s has the ID of %s", name, prev)
		}
		seen[b.ID()] = name
	}
	c := [32]byte{4}
	variant("parent", ids.ID{9}, 2, 3, c, txs)
	variant("height", ids.ID{1}, 3, 3, c, txs)
	variant("timestamp", ids.ID{1}, 2, 4, c, txs)
	variant("commitment", ids.ID{1}, 2, 3, [32]byte{5}, txs)
	variant("fewer txs", ids.ID{1}, 2, 3, c, txs[:2])
	variant("tx order", ids.ID{1}, 2, 3, c, []*tx.Tx{txs[1], txs[0], txs[2]})
	variant("no txs", ids.ID{1}, 2, 3, c, nil)
}

// TestHeaderLayout pins the header byte for byte: version 2, parent,
// height, timestamp, state commitment, count.
func TestHeaderLayout(t *testing.T) {
	parent := ids.ID(bytes.Repeat([]byte{0x11}, 32))
	var commitment [32]byte
	copy(commitment[:], bytes.Repeat([]byte{0x44}, 32))
	b, err := New(parent, 0x0102, -2, commitment, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "02" + strings.Repeat("11", 32) + "0000000000000102" + "fffffffffffffffe" + strings.Repeat("44", 32) + "00000000"
	if got := hex.EncodeToString(b.Bytes()); got != want {
		t.Fatalf("header\n got %s\nwant %s", got, want)
	}
	if len(b.Bytes()) != HeaderSize || HeaderSize != 85 {
		t.Fatalf("header size %d (const %d), want 85", len(b.Bytes()), HeaderSize)
	}
	sum := sha256.Sum256(b.Bytes())
	if b.ID() != ids.ID(sum) {
		t.Fatal("the ID of a block without transactions is not SHA-256 of its header")
	}
}
