package mempool

import (
	"errors"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

func txs(t *testing.T, seed byte, n int) []*tx.Tx {
	id, err := crypto.IdentityFromSeed([32]byte{seed})
	if err != nil {
		t.Fatal(err)
	}
	var out []*tx.Tx
	for i := 0; i < n; i++ {
		s, err := tx.Sign(id, ids.ID{1}, uint64(i), &tx.CloseSession{Session: ids.ID{byte(i)}})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestOrderLimitsRemove(t *testing.T) {
	a, b := txs(t, 1, 3), txs(t, 2, 2)
	size := a[0].Size()
	m := New(Limits{MaxTxs: 4, MaxBytes: 4 * size, MaxPerAuthor: 2})
	for _, x := range []*tx.Tx{a[0], b[0], a[1], b[1]} {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Add(a[0]); !errors.Is(err, ErrDuplicate) {
		t.Fatal("duplicate")
	}
	if err := m.Add(a[2]); !errors.Is(err, ErrFull) {
		t.Fatalf("full: %v", err)
	}
	got := m.Ordered()
	if len(got) != 4 || got[0] != a[0] || got[1] != b[0] || got[2] != a[1] || got[3] != b[1] {
		t.Fatal("admission order")
	}
	if !m.isPrefix([]ids.ID{a[0].ID(), b[0].ID()}) || m.isPrefix([]ids.ID{b[0].ID()}) {
		t.Fatal("IsPrefix")
	}
	if n := m.Remove(a[0].ID(), b[0].ID(), ids.ID{9}); n != 2 || m.Len() != 2 || m.Bytes() != 2*size {
		t.Fatalf("remove: %d, len %d", n, m.Len())
	}
	if m.Pending(a[0].Author) != 1 {
		t.Fatal("per-author count")
	}
	if err := m.Add(a[2]); err != nil {
		t.Fatal(err)
	}
	m2 := New(Limits{MaxTxs: 10, MaxBytes: 1 << 30, MaxPerAuthor: 2})
	m2.Add(a[0])
	m2.Add(a[1])
	if err := m2.Add(a[2]); !errors.Is(err, ErrAuthorLimit) {
		t.Fatal("author limit")
	}
	if !m2.Any(func(x *tx.Tx) bool { return x == a[1] }) || m2.Any(func(x *tx.Tx) bool { return x == b[0] }) {
		t.Fatal("Any")
	}
}

func TestCompaction(t *testing.T) {
	list := txs(t, 3, 200)
	m := New(Limits{MaxTxs: 1000, MaxBytes: 1 << 30, MaxPerAuthor: 1000})
	for _, x := range list {
		m.Add(x)
	}
	for _, x := range list[:150] {
		m.Remove(x.ID())
	}
	got := m.Ordered()
	if len(got) != 50 || got[0] != list[150] || len(m.order) >= 200 {
		t.Fatalf("after compaction: %d live, %d slots", len(got), len(m.order))
	}
}

// RemoveBlock drops a block's transactions and tells whether they were the
// head of the mempool in order.
func TestRemoveBlock(t *testing.T) {
	list := txs(t, 3, 4)
	m := New(Limits{MaxTxs: 10, MaxBytes: 1 << 20, MaxPerAuthor: 10})
	for _, x := range list {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	if !m.RemoveBlock([]ids.ID{list[0].ID(), list[1].ID()}) || m.Len() != 2 {
		t.Fatalf("head block: len %d", m.Len())
	}
	if m.RemoveBlock([]ids.ID{list[3].ID()}) || m.Len() != 1 || m.Has(list[3].ID()) {
		t.Fatalf("out-of-order block: len %d", m.Len())
	}
	if !m.RemoveBlock([]ids.ID{list[2].ID()}) || m.Len() != 0 {
		t.Fatalf("last block: len %d", m.Len())
	}
}
