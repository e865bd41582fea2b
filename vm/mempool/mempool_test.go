package mempool

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
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

// TestFairOrder: rounds of one transaction per author, authors never
// served first, then by their oldest pending transaction; a block that
// takes each author's oldest transactions is an author-prefix whatever
// its order across authors; served authors go last.
func TestFairOrder(t *testing.T) {
	a, b, c := txs(t, 1, 4), txs(t, 2, 2), txs(t, 4, 1)
	m := New(Limits{MaxTxs: 100, MaxBytes: 1 << 30, MaxPerAuthor: 100})
	for _, x := range []*tx.Tx{a[0], a[1], a[2], a[3], b[0], b[1], c[0]} {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	same := func(got []*tx.Tx, want ...*tx.Tx) bool {
		if len(got) != len(want) {
			return false
		}
		for i := range got {
			if got[i] != want[i] {
				return false
			}
		}
		return true
	}
	if got := m.Fair(); !same(got, a[0], b[0], c[0], a[1], b[1], a[2], a[3]) {
		t.Fatalf("fair order: %d transactions, not in rounds", len(got))
	}
	// Everything fits: admission order; otherwise the fair order.
	if got := m.BuildOrder(100, 1<<30); !same(got, a[0], a[1], a[2], a[3], b[0], b[1], c[0]) {
		t.Fatal("build order when all fit")
	}
	if got := m.BuildOrder(3, 1<<30); !same(got, a[0], b[0], c[0], a[1], b[1], a[2], a[3]) {
		t.Fatal("build order when they do not fit")
	}
	// A block of A's and B's oldest, in any order across authors, is an
	// author-prefix; A and B were served, so C leads the next round.
	if !m.RemoveBlock([]ids.ID{b[0].ID(), a[0].ID()}) {
		t.Fatal("a block of each author's oldest is an author-prefix")
	}
	if got := m.Fair(); !same(got, c[0], a[1], b[1], a[2], a[3]) {
		t.Fatal("served authors do not go last")
	}
	// Skipping an author's oldest is not an author-prefix.
	if m.RemoveBlock([]ids.ID{a[2].ID()}) {
		t.Fatal("a block skipping a[1] is an author-prefix")
	}
	// A transaction the pool never held is not one either.
	if m.RemoveBlock([]ids.ID{txs(t, 5, 1)[0].ID()}) {
		t.Fatal("a foreign transaction is an author-prefix")
	}
	if m.Pending(a[0].Author) != 2 || m.Pending(b[0].Author) != 1 || m.Len() != 4 {
		t.Fatalf("pending: %d, %d of %d", m.Pending(a[0].Author), m.Pending(b[0].Author), m.Len())
	}
}

// RemoveBlock drops a block's transactions and tells whether they were,
// per author, the oldest pending ones in order.
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

// sized returns n transactions of author seed with consecutive nonces, each
// a SendMessage with a ciphertext of ctSize bytes. Only the first is
// signed; the others change its nonce bytes (the pool checks no
// signatures), which gives them distinct IDs at no signing cost.
func sized(t *testing.T, seed byte, n, ctSize int) []*tx.Tx {
	t.Helper()
	id, err := crypto.IdentityFromSeed([32]byte{seed, 0x77})
	if err != nil {
		t.Fatal(err)
	}
	first, err := tx.Sign(id, ids.ID{1}, 0, &tx.SendMessage{Session: ids.ID{2}, Ciphertext: make([]byte, ctSize)})
	if err != nil {
		t.Fatal(err)
	}
	const nonceAt = tx.HeaderSize - 8 // the nonce ends the header
	out := make([]*tx.Tx, n)
	for i := range out {
		raw := bytes.Clone(first.Bytes())
		binary.BigEndian.PutUint64(raw[nonceAt:], uint64(i))
		if out[i], err = tx.Parse(raw); err != nil || out[i].Nonce != uint64(i) {
			t.Fatalf("tx %d: %v", i, err)
		}
	}
	return out
}

func defaultLimits() Limits {
	return Limits{
		MaxTxs:            config.DefaultMempoolTxs,
		MaxBytes:          config.DefaultMempoolBytes,
		MaxPerAuthor:      config.DefaultMaxPendingPerAuthor,
		MaxBytesPerAuthor: config.DefaultMaxPendingBytesPerAuthor,
	}
}

// TestDefaultLimitsConsistent: with the default limits one author can
// never hold the pool. An author sending messages of the largest size is
// stopped by its byte share (1/16 of the pool) long before the pool is
// full, and others are still admitted; an author sending the smallest
// messages meets the count first, within its byte share.
func TestDefaultLimitsConsistent(t *testing.T) {
	m := New(defaultLimits())
	// Two more than the share holds (the count alone would allow 4,096).
	largeSize := sized(t, 1, 1, config.MaxCiphertextSize)[0].Size()
	large := sized(t, 1, config.DefaultMaxPendingBytesPerAuthor/largeSize+2, config.MaxCiphertextSize)
	added, err := 0, error(nil)
	for _, x := range large {
		if err = m.Add(x); err != nil {
			break
		}
		added++
	}
	if !errors.Is(err, ErrAuthorLimit) {
		t.Fatalf("one author of %d-byte transactions stopped after %d with %v, want ErrAuthorLimit", large[0].Size(), added, err)
	}
	if got := m.PendingBytes(large[0].Author); got > config.DefaultMaxPendingBytesPerAuthor || got+large[0].Size() <= config.DefaultMaxPendingBytesPerAuthor {
		t.Fatalf("author holds %d bytes, share %d", got, config.DefaultMaxPendingBytesPerAuthor)
	}
	if m.Bytes()*16 > config.DefaultMempoolBytes {
		t.Fatalf("one author holds %d of %d bytes", m.Bytes(), config.DefaultMempoolBytes)
	}
	t.Logf("one author: %d transactions of %d bytes (%d bytes) of a %d-byte pool", added, large[0].Size(), m.Bytes(), config.DefaultMempoolBytes)
	// Another author is admitted.
	if err := m.Add(sized(t, 2, 1, config.MaxCiphertextSize)[0]); err != nil {
		t.Fatalf("second author refused: %v", err)
	}

	// The smallest messages: the count binds, inside the byte share.
	small := sized(t, 3, config.DefaultMaxPendingPerAuthor+1, 1)
	for i, x := range small {
		err := m.Add(x)
		if i < config.DefaultMaxPendingPerAuthor && err != nil {
			t.Fatalf("small message %d refused: %v", i, err)
		}
		if i == config.DefaultMaxPendingPerAuthor && !errors.Is(err, ErrAuthorLimit) {
			t.Fatalf("small message beyond the count: %v", err)
		}
	}
	if got := m.PendingBytes(small[0].Author); got > config.DefaultMaxPendingBytesPerAuthor {
		t.Fatalf("%d small messages take %d bytes, above the share %d", config.DefaultMaxPendingPerAuthor, got, config.DefaultMaxPendingBytesPerAuthor)
	}
	// The count bound of the whole pool is of the order of its byte bound
	// for the smallest transactions.
	if n := config.DefaultMempoolTxs * small[0].Size(); n > config.DefaultMempoolBytes || n < config.DefaultMempoolBytes/2 {
		t.Fatalf("%d of the smallest transactions take %d bytes of a %d-byte pool", config.DefaultMempoolTxs, n, config.DefaultMempoolBytes)
	}
}

// TestAuthorByteShare: the byte share is enforced and released.
func TestAuthorByteShare(t *testing.T) {
	list := sized(t, 4, 3, 1000)
	size := list[0].Size()
	m := New(Limits{MaxTxs: 10, MaxBytes: 10 * size, MaxPerAuthor: 10, MaxBytesPerAuthor: 2 * size})
	for _, x := range list[:2] {
		if err := m.Add(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Add(list[2]); !errors.Is(err, ErrAuthorLimit) || !strings.Contains(err.Error(), "bytes pending") {
		t.Fatalf("third: %v", err)
	}
	m.Remove(list[0].ID())
	if m.PendingBytes(list[0].Author) != size {
		t.Fatalf("pending bytes %d after a removal", m.PendingBytes(list[0].Author))
	}
	if err := m.Add(list[2]); err != nil {
		t.Fatal(err)
	}
	m.Remove(list[1].ID(), list[2].ID())
	if m.PendingBytes(list[0].Author) != 0 || m.Pending(list[0].Author) != 0 {
		t.Fatal("share not released")
	}
}
