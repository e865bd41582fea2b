package state

import (
	"encoding/binary"
	"testing"

	"github.com/luxfi/database"

	"github.com/luxfi/session/config"
)

// retentionState returns the items left in each retention entry (in
// order) and the recorded head (-1: none).
func retentionState(t *testing.T, db database.Database) ([]int, int64) {
	t.Helper()
	s := New(db)
	it := s.retention().NewIterator()
	defer it.Release()
	var items []int
	for it.Next() {
		items = append(items, (len(it.Value())-8)/retentionItemSize)
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	head, err := s.meta().Get(keyRetentionHead)
	if err == database.ErrNotFound {
		return items, -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return items, int64(binary.BigEndian.Uint64(head))
}

// TestHoldsPruneBoundAtEntryEdges (question 4): a write budget that runs
// out exactly at the end of a retention entry deletes that entry, leaves
// the next one untouched (no rewrite) and records its time as the head;
// one that runs out inside an entry rewrites its rest under the same key;
// every call with something due removes at least one item; and the calls
// together remove every due item, in order, and nothing else.
func TestHoldsPruneBoundAtEntryEdges(t *testing.T) {
	const participants = 5 // a message: 4 inbox deletes, the message, its counter
	per := participants + 1
	db := seedPrunable(t, participants, []int{2, 3, 1}) // times 100, 200, 300; 10,000 not due

	// Exactly the first entry's writes.
	st := New(db)
	if n, err := st.PruneMessagesWithin(5_000, config.MaxPrunePerBlock, 2*per); err != nil || n != 2 {
		t.Fatalf("took %d, %v", n, err)
	}
	if items, head := retentionState(t, db); len(items) != 3 || items[0] != 3 || items[1] != 1 || head != 200 {
		t.Fatalf("after a budget ending at an entry's end: entries %v, head %d", items, head)
	}
	if st.Writes() != 2*per+1+1+2 { // items, the entry's delete, the head, two counts
		t.Fatalf("%d writes", st.Writes())
	}

	// One write into the next entry: one item, the rest rewritten.
	st = New(db)
	if n, err := st.PruneMessagesWithin(5_000, config.MaxPrunePerBlock, 1); err != nil || n != 1 {
		t.Fatalf("took %d, %v", n, err)
	}
	if items, head := retentionState(t, db); len(items) != 3 || items[0] != 2 || head != 200 {
		t.Fatalf("after a budget ending inside an entry: entries %v, head %d", items, head)
	}

	// The rest, one write at a time: progress in every call.
	for left := 3; left > 0; left-- {
		if n, err := New(db).PruneMessagesWithin(5_000, config.MaxPrunePerBlock, 1); err != nil || n != 1 {
			t.Fatalf("%d left: took %d, %v", left, n, err)
		}
	}
	if items, head := retentionState(t, db); len(items) != 1 || items[0] != 1 || head != 10_000 {
		t.Fatalf("at the end: entries %v, head %d", items, head)
	}
	if n, err := New(db).PruneMessagesWithin(5_000, config.MaxPrunePerBlock, 1); err != nil || n != 0 {
		t.Fatalf("nothing due: took %d, %v", n, err)
	}
}
