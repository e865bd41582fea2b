package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// TestAccountRecord: the account round-trips every field; SetNonce keeps
// the rest; a record of another size is corrupt.
func TestAccountRecord(t *testing.T) {
	db := memdb.New()
	st := New(db)
	a := sessionID(1)
	acct := Account{Nonce: 9, Channels: 3, Contacts: 7, Blocked: 5, Memberships: 4, Records: 2, ContactsOnly: 1}
	for i := range acct.Buckets {
		acct.Buckets[i] = int64(1000 + i)
	}
	if err := st.PutAccount(a, &acct); err != nil {
		t.Fatal(err)
	}
	if err := st.SetNonce(a, 10); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetAccount(a)
	acct.Nonce = 10
	if err != nil || got != acct {
		t.Fatalf("account %+v, %v", got, err)
	}
	if z, err := st.GetAccount(sessionID(2)); err != nil || z != (Account{}) {
		t.Fatal("unknown account")
	}
	k := SessionIDKey(a)
	db.Put(append([]byte{'n'}, k[:]...), make([]byte, 8))
	if _, err := st.GetAccount(a); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("short account: %v", err)
	}
	if accountSize != 8+5*4+1+8*int(config.NumBuckets) {
		t.Fatal("account size")
	}
	// A contacts-only byte other than 0 or 1 is corrupt.
	acct.ContactsOnly = 2
	st.PutAccount(a, &acct)
	if _, err := st.GetAccount(a); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("policy 2: %v", err)
	}
}

// TestSessionRecord: participant states, claims and the new fields
// round-trip.
func TestSessionRecord(t *testing.T) {
	st := New(memdb.New())
	s := &Session{ID: ids.ID{1}, Creator: sessionID(1), Participants: []crypto.SessionID{sessionID(1), sessionID(2), sessionID(3)},
		ExpiresAt: 5, Position: Position(4, 2), TxID: ids.ID{7}}
	s.SetState(0, ParticipantAccepted)
	s.SetState(2, ParticipantLeft)
	// Without claims, the record ends with a zero pair count and decodes
	// to nil claims.
	if err := st.PutSession(s); err != nil {
		t.Fatal(err)
	}
	if g, err := st.GetSession(s.ID); err != nil || g.Claims != nil || g.AcceptedOthers() {
		t.Fatalf("session without claims: %+v, %v", g, err)
	}
	s.AddClaim(0, 1)
	s.AddClaim(0, 1)
	s.AddClaim(2, 0)
	if err := st.PutSession(s); err != nil {
		t.Fatal(err)
	}
	g, err := st.GetSession(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.State(0) != ParticipantAccepted || g.State(1) != ParticipantPending || g.State(2) != ParticipantLeft ||
		g.ClaimCount(0, 1) != 2 || g.ClaimCount(2, 0) != 1 || g.ClaimCount(1, 0) != 0 || g.Position != s.Position || g.TxID != s.TxID {
		t.Fatalf("session %+v", g)
	}
	// The claim counts are pairs u16 | (claimer, target, count) × pairs,
	// by claimer then target: (0,1,2) then (2,0,1).
	raw := s.encode()
	if tail := raw[len(raw)-8:]; !bytes.Equal(tail, []byte{0, 2, 0, 1, 2, 2, 0, 1}) {
		t.Fatalf("claim counts encoded as %x", tail)
	}
	// A pair out of range or a zero count is corrupt.
	for _, bad := range [][]byte{{0, 1, 0, 3, 1}, {0, 1, 0, 1, 0}, {0, 10, 0, 1, 1}} {
		b := append(bytes.Clone(raw[:len(raw)-8]), bad...)
		if _, err := decodeSession(s.ID, b); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("claims %x: %v", bad, err)
		}
	}
	g.SetState(2, ParticipantAccepted)
	if g.State(2) != ParticipantAccepted || g.Left != 0 {
		t.Fatal("state change")
	}
}

// TestRequestsAndParticipations: one request per (recipient, creator),
// paging by position (time), a replaced entry leaves the time index,
// conditional deletion, participations by position.
func TestRequestsAndParticipations(t *testing.T) {
	st := New(memdb.New())
	bob := sessionID(9)
	for i := byte(1); i <= 4; i++ {
		st.PutRequest(bob, Request{Creator: sessionID(5 - i), Session: ids.ID{i}, Position: uint64(i)})
	}
	st.PutRequest(bob, Request{Creator: sessionID(2), Session: ids.ID{22}, Position: 22})        // replaces position 3
	st.PutRequest(sessionID(8), Request{Creator: sessionID(1), Session: ids.ID{5}, Position: 7}) // another recipient
	page, _ := st.Requests(bob, 0, 2)
	if len(page) != 2 || page[0].Creator != sessionID(4) || page[0].Position != 1 || page[1].Creator != sessionID(3) {
		t.Fatalf("page %+v", page)
	}
	rest, _ := st.Requests(bob, page[1].Position, 10)
	if len(rest) != 2 || rest[0].Creator != sessionID(1) || rest[1].Session != (ids.ID{22}) || rest[1].Position != 22 {
		t.Fatalf("rest %+v", rest)
	}
	st.DeleteRequestFor(bob, sessionID(2), ids.ID{2}) // the replaced one: no effect
	if _, ok, _ := st.GetRequest(bob, sessionID(2)); !ok {
		t.Fatal("deleted a newer request")
	}
	st.DeleteRequestFor(bob, sessionID(2), ids.ID{22})
	if _, ok, _ := st.GetRequest(bob, sessionID(2)); ok {
		t.Fatal("request not deleted")
	}
	if all, _ := st.Requests(bob, 0, 10); len(all) != 3 || all[2].Position != 4 {
		t.Fatalf("the time index after deletion: %+v", all)
	}
	st.DeleteRequest(bob, sessionID(4))
	st.DeleteRequest(bob, sessionID(4)) // absent: no effect
	if all, _ := st.Requests(bob, 0, 10); len(all) != 2 {
		t.Fatalf("after DeleteRequest: %+v", all)
	}
	for _, pos := range []uint64{30, 10, 20} {
		st.AddParticipation(bob, pos, ids.ID{byte(pos)})
	}
	ps, _ := st.Participations(bob, 10, 10)
	if len(ps) != 2 || ps[0].Position != 20 || ps[1].Session != (ids.ID{30}) {
		t.Fatalf("participations %+v", ps)
	}
	st.RemoveParticipation(bob, 20)
	if ps, _ := st.Participations(bob, 0, 10); len(ps) != 2 {
		t.Fatalf("after removal %+v", ps)
	}
}

// TestPrekeyRecords: the record round-trips; one-time prekeys list from the
// lowest ID of their identity only.
func TestPrekeyRecords(t *testing.T) {
	st := New(memdb.New())
	a, b := sessionID(1), sessionID(2)
	rec := PrekeyRecord{HasSigned: true, SignedID: 3, SignedExpiresAt: 99, SignedTx: ids.ID{4},
		HasPrevious: true, PreviousID: 2, PreviousExpires: 50, PreviousTx: ids.ID{8}, LastOneTimeID: 12, Unclaimed: 2, StrangerTAT: 77}
	st.PutPrekeys(a, &rec)
	if got, err := st.GetPrekeys(a); err != nil || got != rec {
		t.Fatalf("record %+v %v", got, err)
	}
	// The current and the previous signed prekey are valid until they
	// expire; nothing else is.
	for _, c := range []struct {
		id   uint32
		now  int64
		want bool
	}{{3, 98, true}, {3, 99, false}, {2, 49, true}, {2, 50, false}, {1, 0, false}, {4, 0, false}} {
		if rec.SignedValid(c.id, c.now) != c.want {
			t.Fatalf("SignedValid(%d, %d) != %v", c.id, c.now, c.want)
		}
	}
	st.PutOneTime(a, 12, ids.ID{5})
	st.PutOneTime(a, 11, ids.ID{6})
	st.PutOneTime(a, 20, ids.ID{9})
	st.PutOneTime(b, 1, ids.ID{7})
	if list, _ := st.OneTimes(a, 12); len(list) != 2 || list[0].ID != 11 || list[0].Tx != (ids.ID{6}) || list[1].ID != 12 {
		t.Fatalf("through 12: %+v", list)
	}
	st.DeleteOneTime(a, 11)
	st.DeleteOneTime(a, 12)
	st.DeleteOneTime(a, 20)
	if list, _ := st.OneTimes(a, 1<<31); len(list) != 0 {
		t.Fatal("another identity's prekey listed")
	}
}

// TestClaimLogAndAnchors: claim log entries round-trip and page by
// position per target; retention of a claim item removes its entry;
// anchors are set, read and removed.
func TestClaimLogAndAnchors(t *testing.T) {
	st := New(memdb.New())
	target, other := sessionID(1), sessionID(2)
	for i := uint64(1); i <= 3; i++ {
		c := ClaimRecord{Position: i * 10, Claimer: sessionID(byte(i)), Session: ids.ID{byte(i)}, Tx: ids.ID{9, byte(i)},
			SignedPrekeyID: 4, OneTimePrekeyID: uint32(i), OneTimeTx: ids.ID{7}, Time: int64(i) * 1000}
		if err := st.PutClaim(target, &c); err != nil {
			t.Fatal(err)
		}
		if err := st.QueueClaim(target, c.Position, c.Time); err != nil {
			t.Fatal(err)
		}
	}
	st.PutClaim(other, &ClaimRecord{Position: 15, Claimer: target})
	got, err := st.Claims(target, 10, 10)
	if err != nil || len(got) != 2 || got[0].Position != 20 || got[0].Claimer != sessionID(2) || got[0].OneTimePrekeyID != 2 ||
		got[0].Tx != (ids.ID{9, 2}) || got[0].OneTimeTx != (ids.ID{7}) || got[0].Time != 2000 || got[1].Session != (ids.ID{3}) {
		t.Fatalf("claims %+v, %v", got, err)
	}
	// Retention: items older than the cutoff go (the first two).
	if n, err := st.PruneMessages(2500, 100); err != nil || n != 2 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if got, _ := st.Claims(target, 0, 10); len(got) != 1 || got[0].Position != 30 {
		t.Fatalf("after retention %+v", got)
	}
	if got, _ := st.Claims(other, 0, 10); len(got) != 1 {
		t.Fatal("retention reached another target")
	}
	st.PutAnchor(7, ids.ID{7})
	if id, ok, err := st.Anchor(7); err != nil || !ok || id != (ids.ID{7}) {
		t.Fatalf("anchor %s %v %v", id, ok, err)
	}
	st.DeleteAnchor(7)
	if _, ok, _ := st.Anchor(7); ok {
		t.Fatal("anchor not deleted")
	}
}

// TestSessionRetention: a session created before the cutoff goes with its
// listings, request entries and counter once it stores no message; one
// that still stores a message stops session pruning; later ones stay.
func TestSessionRetention(t *testing.T) {
	st := New(memdb.New())
	alice, bob := sessionID(1), sessionID(2)
	mk := func(n byte, created int64) *Session {
		s := &Session{ID: ids.ID{n}, Creator: alice, Participants: []crypto.SessionID{alice, bob}, CreatedAt: created, Position: uint64(n)}
		s.SetState(0, ParticipantAccepted)
		st.PutSession(s)
		st.AddParticipation(alice, s.Position, s.ID)
		st.PutRequest(bob, Request{Creator: alice, Session: s.ID, Position: s.Position})
		st.QueueSession(s.ID, s.Position, created)
		return s
	}
	s1, s2, s3 := mk(1, 100), mk(2, 200), mk(3, 300)
	// s2 stores a message.
	st.AppendMessage(KindSession, &Message{Target: s2.ID, Author: alice, Position: 50, Timestamp: 200, Ciphertext: []byte{1}}, []crypto.SessionID{bob})
	if n, err := st.PruneSessions(250, 10); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v (want s1 only: s2 stores a message)", n, err)
	}
	if _, err := st.GetSession(s1.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("s1 kept")
	}
	if ps, _ := st.Participations(alice, 0, 10); len(ps) != 2 || ps[0].Session != s2.ID {
		t.Fatalf("listings %+v", ps)
	}
	// bob's entry points at s3 (the newest): it stays.
	if r, ok, _ := st.GetRequest(bob, alice); !ok || r.Session != s3.ID {
		t.Fatal("the newer request went with the older session")
	}
	// Once s2's message is gone, s2 goes; s3 is not due.
	st.RemoveMessage(KindSession, s2.ID, 1, true)
	if n, err := st.PruneSessions(250, 10); err != nil || n != 1 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if _, err := st.GetSession(s2.ID); !errors.Is(err, ErrNotFound) {
		t.Fatal("s2 kept")
	}
	if c, _ := st.GetCounter(s2.ID); c != (Counter{}) {
		t.Fatalf("s2's counter kept: %+v", c)
	}
	if _, err := st.GetSession(s3.ID); err != nil {
		t.Fatal("s3 pruned early")
	}
	// s3 goes with bob's request entry (it points at s3).
	if n, _ := st.PruneSessions(1000, 10); n != 1 {
		t.Fatal("s3 not pruned")
	}
	if _, ok, _ := st.GetRequest(bob, alice); ok {
		t.Fatal("request entry kept")
	}
	if r, _ := st.Requests(bob, 0, 10); len(r) != 0 {
		t.Fatal("request time entry kept")
	}
	if n, _ := st.PruneSessions(1<<40, 10); n != 0 {
		t.Fatal("an empty queue pruned something")
	}
}

// TestRemoveMessageAndEvictionBound: removing a post lowers the stored
// count; only removing the oldest moves the bound below which all are gone.
// A session message's removal lowers its author's share.
func TestRemoveMessageAndEvictionBound(t *testing.T) {
	st := New(memdb.New())
	ch := ids.ID{3}
	for i := 1; i <= 4; i++ {
		if _, err := st.AppendMessage(KindChannel, &Message{Target: ch, Author: sessionID(byte(i)), Position: uint64(i), Ciphertext: []byte{1}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if gone, _ := st.RemoveMessage(KindChannel, ch, 3, false); !gone {
		t.Fatal("post 3")
	}
	if gone, _ := st.RemoveMessage(KindChannel, ch, 3, false); gone {
		t.Fatal("removed twice")
	}
	c, _ := st.GetCounter(ch)
	if c.Stored != 3 || c.First != 1 || c.Last != 4 || c.NShares != 0 {
		t.Fatalf("counter %+v", c)
	}
	st.RemoveMessage(KindChannel, ch, 1, true)
	st.RemoveMessage(KindChannel, ch, 2, true)
	c, _ = st.GetCounter(ch)
	if c.First != 3 || c.Stored != 1 {
		t.Fatalf("counter %+v", c)
	}
	if a, ok, _ := st.PostAuthor(ch, 4); !ok || a != sessionID(4) {
		t.Fatal("author of post 4")
	}
	// Shares.
	alice, bob := sessionID(1), sessionID(2)
	sess := &Session{ID: ids.ID{4}, Creator: alice, Participants: []crypto.SessionID{alice, bob}}
	st.PutSession(sess)
	sc := Counter{NShares: 2}
	sc.Shares[1] = 1
	if _, err := st.AppendMessageAfter(KindSession, &Message{Target: sess.ID, Author: bob, Position: 9, Ciphertext: []byte{1}}, []crypto.SessionID{alice}, &sc); err != nil {
		t.Fatal(err)
	}
	if c, _ := st.GetCounter(sess.ID); c.NShares != 2 || c.Shares[1] != 1 || c.Stored != 1 {
		t.Fatalf("session counter %+v", c)
	}
	st.RemoveMessage(KindSession, sess.ID, 1, true)
	if c, _ := st.GetCounter(sess.ID); c.Shares[1] != 0 || c.Stored != 0 {
		t.Fatalf("share after removal %+v", c)
	}
}

// TestTxBytesAcrossChunks: a transaction's range may span chunk
// boundaries; a range outside the block is corruption.
func TestTxBytesAcrossChunks(t *testing.T) {
	db := memdb.New()
	st := New(db)
	blk := make([]byte, 3*BlockChunkSize)
	for i := range blk {
		blk[i] = byte(i * 31)
	}
	id := ids.ID{1}
	sizes := []int{10, 2*BlockChunkSize + 5, BlockChunkSize - 15 - 100}
	txIDs := []ids.ID{{2}, {3}, {4}}
	batch := db.NewBatch()
	if err := WriteAccepted(batch, id, 5, blk, txIDs, sizes); err != nil {
		t.Fatal(err)
	}
	batch.Write()
	off := len(blk) - (sizes[0] + sizes[1] + sizes[2])
	for i, txID := range txIDs {
		got, loc, err := st.TxBytes(txID)
		if err != nil || !bytes.Equal(got, blk[off:off+sizes[i]]) || loc.Index != uint32(i) {
			t.Fatalf("tx %d: %d bytes, %+v, %v", i, len(got), loc, err)
		}
		off += sizes[i]
	}
	st.PutTx(ids.ID{9}, TxLocation{Height: 5, Offset: uint32(len(blk) - 2), Length: 10})
	if _, _, err := st.TxBytes(ids.ID{9}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("range past the block: %v", err)
	}
	if _, _, err := st.TxBytes(ids.ID{8}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
}
