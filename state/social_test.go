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
	acct := Account{Nonce: 9, Channels: 3, Contacts: 7}
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
	if accountSize != 16+8*int(config.NumBuckets) {
		t.Fatal("account size")
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
	s.SetClaimed(0, 1)
	s.SetClaimed(2, 0)
	if err := st.PutSession(s); err != nil {
		t.Fatal(err)
	}
	g, err := st.GetSession(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if g.State(0) != ParticipantAccepted || g.State(1) != ParticipantPending || g.State(2) != ParticipantLeft ||
		!g.Claimed(0, 1) || !g.Claimed(2, 0) || g.Claimed(1, 0) || g.Position != s.Position || g.TxID != s.TxID {
		t.Fatalf("session %+v", g)
	}
	g.SetState(2, ParticipantAccepted)
	if g.State(2) != ParticipantAccepted || g.Left != 0 {
		t.Fatal("state change")
	}
}

// TestRequestsAndParticipations: one request per (recipient, creator),
// paging by creator, conditional deletion, participations by position.
func TestRequestsAndParticipations(t *testing.T) {
	st := New(memdb.New())
	bob := sessionID(9)
	for i := byte(1); i <= 4; i++ {
		st.PutRequest(bob, Request{Creator: sessionID(i), Session: ids.ID{i}, Position: uint64(i)})
	}
	st.PutRequest(bob, Request{Creator: sessionID(2), Session: ids.ID{22}, Position: 22}) // replaces
	st.PutRequest(sessionID(8), Request{Creator: sessionID(1), Session: ids.ID{5}})       // another recipient
	page, _ := st.Requests(bob, nil, 2)
	if len(page) != 2 || page[0].Creator != sessionID(1) || page[1].Session != (ids.ID{22}) {
		t.Fatalf("page %+v", page)
	}
	rest, _ := st.Requests(bob, &page[1].Creator, 10)
	if len(rest) != 2 || rest[0].Creator != sessionID(3) {
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
	rec := PrekeyRecord{HasSigned: true, SignedID: 3, SignedExpiresAt: 99, SignedTx: ids.ID{4}, LastOneTimeID: 12, Unclaimed: 2, StrangerTAT: 77}
	st.PutPrekeys(a, &rec)
	if got, err := st.GetPrekeys(a); err != nil || got != rec {
		t.Fatalf("record %+v %v", got, err)
	}
	st.PutOneTime(a, 12, ids.ID{5})
	st.PutOneTime(a, 11, ids.ID{6})
	st.PutOneTime(b, 1, ids.ID{7})
	if id, tx, ok, _ := st.FirstOneTime(a); !ok || id != 11 || tx != (ids.ID{6}) {
		t.Fatalf("first %d %s %v", id, tx, ok)
	}
	st.DeleteOneTime(a, 11)
	st.DeleteOneTime(a, 12)
	if _, _, ok, _ := st.FirstOneTime(a); ok {
		t.Fatal("another identity's prekey listed")
	}
}

// TestRemoveMessageAndEvictionBound: removing a post lowers the stored
// count; only removing the oldest moves the bound below which all are gone.
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
	if c.Stored != 3 || c.First != 1 || c.Last != 4 {
		t.Fatalf("counter %+v", c)
	}
	if seq, ok, _ := st.OldestPost(ch, c.First); !ok || seq != 1 {
		t.Fatal("oldest")
	}
	st.RemoveMessage(KindChannel, ch, 1, true)
	st.RemoveMessage(KindChannel, ch, 2, true)
	c, _ = st.GetCounter(ch)
	if seq, ok, _ := st.OldestPost(ch, c.First); !ok || seq != 4 || c.First != 3 {
		t.Fatalf("oldest %d, counter %+v", seq, c)
	}
	if a, ok, _ := st.PostAuthor(ch, 4); !ok || a != sessionID(4) {
		t.Fatal("author of post 4")
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
