package block

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
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

func FuzzParse(f *testing.F) {
	txs := sampleTxs(f)
	for _, list := range [][]*tx.Tx{nil, txs[:1], txs} {
		b, err := New(ids.ID{7}, 5, 1234, list)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
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

func TestParseHashedMatchesParse(t *testing.T) {
	blk, err := New(ids.ID{1}, 2, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := Parse(blk.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ParseHashed(blk.Bytes(), sha256.Sum256(blk.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if a.ID() != b.ID() || a.ID() != blk.ID() || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("ParseHashed differs from Parse")
	}
}
