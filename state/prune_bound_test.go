package state

import (
	"bytes"
	"testing"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// seedPrunable stores, in a new database, a session of n participants and
// blocks of messages (sizes[i] messages at time 100·(i+1)), plus one message
// not yet due at time 10,000.
func seedPrunable(t *testing.T, n int, sizes []int) database.Database {
	t.Helper()
	db := memdb.New()
	parts := make([]crypto.SessionID, n)
	for i := range parts {
		parts[i] = sessionID(byte(i + 1))
	}
	sess := &Session{ID: ids.ID{9}, Creator: parts[0], Participants: parts, ExpiresAt: 1 << 60}
	if err := New(db).PutSession(sess); err != nil {
		t.Fatal(err)
	}
	for h, size := range append(sizes, 1) {
		ts := int64(100 * (h + 1))
		if h == len(sizes) {
			ts = 10_000
		}
		overlay := versiondb.New(db)
		st := New(overlay)
		st.Defer()
		for i := 0; i < size; i++ {
			author := parts[i%n]
			var rcpt []crypto.SessionID
			for _, p := range parts {
				if p != author {
					rcpt = append(rcpt, p)
				}
			}
			m := &Message{Target: sess.ID, Author: author, Height: uint64(h + 1), Position: Position(uint64(h+1), uint32(i)), Timestamp: ts, Ciphertext: []byte{byte(i)}}
			if _, err := st.AppendMessage(KindSession, m, rcpt); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := overlay.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

func dump(t *testing.T, db database.Database) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	it := db.NewIterator()
	defer it.Release()
	for it.Next() {
		out[string(it.Key())] = bytes.Clone(it.Value())
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPruneMessagesWithinBoundsWrites: retention under a bound on writes
// stops before an item once the bound is spent (so one call writes at
// most the bound plus one item's writes plus its entry, the head and the
// two counts), makes progress in every call, and after enough calls leaves
// exactly the state one unbounded call leaves: same records, same head,
// same counts, the message not yet due untouched.
func TestPruneMessagesWithinBoundsWrites(t *testing.T) {
	const participants = 5 // a message: 4 inbox entries, the message, its counter
	sizes := []int{7, 1, 30, 2, 11}
	total := 0
	for _, s := range sizes {
		total += s
	}
	want := seedPrunable(t, participants, sizes)
	if took, err := New(want).PruneMessages(5_000, config.MaxPrunePerBlock); err != nil || took != total {
		t.Fatalf("unbounded: took %d, %v", took, err)
	}
	for _, budget := range []int{1, 6, 13, 20, 100} {
		db := seedPrunable(t, participants, sizes)
		took, calls := 0, 0
		for took < total {
			calls++
			if calls > total {
				t.Fatalf("budget %d: no progress", budget)
			}
			st := New(db)
			n, err := st.PruneMessagesWithin(5_000, config.MaxPrunePerBlock, budget)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				t.Fatalf("budget %d, call %d: nothing taken with %d due", budget, calls, total-took)
			}
			// The bound, one item (participants + 1 writes), its entry,
			// the head, two counts.
			if limit := budget + participants + 1 + 4; st.Writes() > limit {
				t.Fatalf("budget %d: a call wrote %d, more than %d", budget, st.Writes(), limit)
			}
			took += n
		}
		if took != total {
			t.Fatalf("budget %d: took %d of %d", budget, took, total)
		}
		if n, err := New(db).PruneMessagesWithin(5_000, config.MaxPrunePerBlock, budget); err != nil || n != 0 {
			t.Fatalf("budget %d: pruned %d (%v) when nothing is due", budget, n, err)
		}
		got, exp := dump(t, db), dump(t, want)
		if len(got) != len(exp) {
			t.Fatalf("budget %d: %d records, unbounded leaves %d", budget, len(got), len(exp))
		}
		for k, v := range exp {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("budget %d: record %x is %x, unbounded leaves %x", budget, k, got[k], v)
			}
		}
		if budget < 100 && calls < 3 {
			t.Fatalf("budget %d: %d calls, the bound did not act", budget, calls)
		}
	}
}
