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

// seedSessions stores n sessions of two participants, created at times
// 100, 200, …, each listed for its creator, with a request entry for the
// other and queued for session retention; none stores a message.
func seedSessions(t *testing.T, n int) database.Database {
	t.Helper()
	db := memdb.New()
	st := New(db)
	alice := sessionID(1)
	for i := 1; i <= n; i++ {
		bob := sessionID(byte(100 + i))
		s := &Session{ID: ids.ID{byte(i), 0x5e}, Creator: alice, Participants: []crypto.SessionID{alice, bob}, CreatedAt: int64(100 * i), Position: uint64(i)}
		s.SetState(0, ParticipantAccepted)
		for _, err := range []error{
			st.PutSession(s),
			st.AddParticipation(alice, s.Position, s.ID),
			st.PutRequest(bob, Request{Creator: alice, Session: s.ID, Position: s.Position}),
			st.QueueSession(s.ID, s.Position, s.CreatedAt),
		} {
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	return db
}

// TestPruneSessionsWithinBoundsWrites: session retention under a bound on
// writes begins no session once the bound is spent (a call writes at most
// the bound plus one session's writes, 3 × MaxParticipants + 1, plus the
// head), progresses every call, and ends in the state one unbounded call
// leaves.
func TestPruneSessionsWithinBoundsWrites(t *testing.T) {
	const sessions = 9
	want := seedSessions(t, sessions)
	if n, err := New(want).PruneSessions(10_000, config.MaxSessionPrunePerBlock); err != nil || n != sessions {
		t.Fatalf("unbounded: %d, %v", n, err)
	}
	for _, budget := range []int{1, 5, 12} {
		db := seedSessions(t, sessions)
		done, calls := 0, 0
		for done < sessions {
			if calls++; calls > sessions {
				t.Fatalf("budget %d: no progress", budget)
			}
			st := New(db)
			n, err := st.PruneSessionsWithin(10_000, config.MaxSessionPrunePerBlock, budget)
			if err != nil || n == 0 {
				t.Fatalf("budget %d, call %d: pruned %d, %v", budget, calls, n, err)
			}
			if limit := budget + 3*config.MaxParticipants + 1 + 1; st.Writes() > limit {
				t.Fatalf("budget %d: a call wrote %d, more than %d", budget, st.Writes(), limit)
			}
			done += n
		}
		if budget < 12 && calls < 2 {
			t.Fatalf("budget %d: one call did everything", budget)
		}
		got, exp := dump(t, db), dump(t, want)
		if len(got) != len(exp) {
			t.Fatalf("budget %d: %d records, unbounded leaves %d", budget, len(got), len(exp))
		}
		for k, v := range exp {
			if !bytes.Equal(got[k], v) {
				t.Fatalf("budget %d: record %x differs", budget, k)
			}
		}
	}
}

// costDB counts what is written through it as the block bounds do.
type costDB struct {
	database.Database
	ops, bytes int
}

func (d *costDB) Put(k, v []byte) error {
	d.ops++
	d.bytes += config.WriteCost(len(k), len(v))
	return d.Database.Put(k, v)
}

func (d *costDB) Delete(k []byte) error {
	d.ops++
	d.bytes += config.WriteCost(len(k), 0)
	return d.Database.Delete(k)
}

// TestDeferredCostBoundsFlush: what DeferredCost announces is at least what
// Flush then writes, in calls and in bytes (the builder relies on it to
// keep a block within its write bounds), and nothing once flushed.
func TestDeferredCostBoundsFlush(t *testing.T) {
	for _, msgs := range []int{0, 1, 40, 700} {
		db := &costDB{Database: memdb.New()}
		st := New(db)
		sess := &Session{ID: ids.ID{3}, Creator: sessionID(1), Participants: []crypto.SessionID{sessionID(1), sessionID(2)}, ExpiresAt: 1 << 60}
		if err := st.PutSession(sess); err != nil {
			t.Fatal(err)
		}
		st.Defer()
		for i := 0; i < msgs; i++ {
			m := &Message{Target: sess.ID, Author: sessionID(1), Height: 5, Position: Position(5, uint32(i)), Timestamp: 100, Ciphertext: []byte{1}}
			if _, err := st.AppendMessage(KindSession, m, []crypto.SessionID{sessionID(2)}); err != nil {
				t.Fatal(err)
			}
		}
		ops, bytes := st.DeferredCost()
		before, beforeBytes := db.ops, db.bytes
		if err := st.Flush(); err != nil {
			t.Fatal(err)
		}
		gotOps, gotBytes := db.ops-before, db.bytes-beforeBytes
		if gotOps > ops || gotBytes > bytes {
			t.Fatalf("%d messages: announced %d writes of %d bytes, Flush wrote %d of %d", msgs, ops, bytes, gotOps, gotBytes)
		}
		if msgs > 0 && (gotOps == 0 || bytes > 2*gotBytes+256) {
			t.Fatalf("%d messages: announced %d bytes for %d written: not a useful bound", msgs, bytes, gotBytes)
		}
		if o, b := st.DeferredCost(); o != 0 || b != 0 {
			t.Fatalf("after Flush: %d, %d", o, b)
		}
	}
}
