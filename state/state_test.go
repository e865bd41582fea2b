package state

import (
	"bytes"
	"errors"
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/database/prefixdb"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
)

func sessionID(b byte) crypto.SessionID {
	var d [32]byte
	d[0] = b
	return crypto.SessionID{Prefix: 0x07, Digest: d}
}

func TestPosition(t *testing.T) {
	p := Position(123456, 4095)
	if h, i := SplitPosition(p); h != 123456 || i != 4095 {
		t.Fatal("split")
	}
	if Position(1, 0) <= Position(0, MaxTxsPerPosition-1) {
		t.Fatal("order")
	}
}

func TestRecordsRoundTrip(t *testing.T) {
	st := New(memdb.New())
	a, b := sessionID(1), sessionID(2)
	id := &Identity{ID: a, KEMPublicKey: bytes.Repeat([]byte{1}, crypto.KEMPublicKeySize), DSAPublicKey: bytes.Repeat([]byte{2}, crypto.DSAPublicKeySize), Height: 3, Timestamp: 4}
	if err := st.PutIdentity(id); err != nil {
		t.Fatal(err)
	}
	got, err := st.GetIdentity(a)
	if err != nil || !bytes.Equal(got.DSAPublicKey, id.DSAPublicKey) || got.Height != 3 || got.Timestamp != 4 {
		t.Fatal("identity")
	}
	if _, err := st.GetIdentity(b); !errors.Is(err, ErrNotFound) {
		t.Fatal("missing identity")
	}
	s := &Session{ID: ids.ID{9}, Creator: a, Participants: []crypto.SessionID{a, b}, Metadata: []byte("m"), Height: 1, CreatedAt: 10, ExpiresAt: 20}
	if err := st.PutSession(s); err != nil {
		t.Fatal(err)
	}
	gs, err := st.GetSession(s.ID)
	if err != nil || len(gs.Participants) != 2 || gs.Participants[1] != b || gs.ExpiresAt != 20 || gs.Closed {
		t.Fatal("session")
	}
	if gs.StatusAt(19) != SessionActive || gs.StatusAt(20) != SessionExpired {
		t.Fatal("status")
	}
	c := &Channel{ID: ids.ID{8}, Owner: a, Name: "n", Members: 1}
	if err := st.PutChannel(c); err != nil {
		t.Fatal(err)
	}
	if gc, err := st.GetChannel(c.ID); err != nil || gc.Name != "n" || gc.Owner != a {
		t.Fatal("channel")
	}
	if n, _ := st.Nonce(a); n != 0 {
		t.Fatal("default nonce")
	}
	st.SetNonce(a, 7)
	if n, _ := st.Nonce(a); n != 7 {
		t.Fatal("nonce")
	}
}

func TestMessagesInboxAndPruning(t *testing.T) {
	base := memdb.New()
	st := New(base)
	a, b, c := sessionID(1), sessionID(2), sessionID(3)
	sess := &Session{ID: ids.ID{1}, Creator: a, Participants: []crypto.SessionID{a, b, c}, ExpiresAt: 1 << 60}
	if err := st.PutSession(sess); err != nil {
		t.Fatal(err)
	}
	// Five messages from a at times 100..500, one per block.
	for i := 1; i <= 5; i++ {
		m := &Message{Target: sess.ID, Author: a, Height: uint64(i), Position: Position(uint64(i), 0), Timestamp: int64(i * 100), Ciphertext: []byte{byte(i)}}
		seq, err := st.AppendMessage(KindSession, m, []crypto.SessionID{b, c})
		if err != nil || seq != uint64(i) {
			t.Fatalf("append %d: %d %v", i, seq, err)
		}
	}
	in, _ := st.Inbox(b, 0, 10)
	if len(in) != 5 || in[0].Seq != 1 || in[4].Position != Position(5, 0) {
		t.Fatal("inbox")
	}
	page, _ := st.Inbox(b, in[1].Position, 2)
	if len(page) != 2 || page[0].Seq != 3 || page[1].Seq != 4 {
		t.Fatal("inbox paging")
	}
	if none, _ := st.Inbox(a, 0, 10); len(none) != 0 {
		t.Fatal("author got its own message")
	}

	// Pruning is bounded: cutoff 450 makes four due, max 3 prunes three,
	// on an overlay (as a block does).
	overlay := versiondb.New(base)
	ost := New(overlay)
	n, err := ost.PruneMessages(450, 3)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	if err := overlay.Commit(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := st.Messages(sess.ID, 0, 10)
	if len(msgs) != 2 || msgs[0].Seq != 4 {
		t.Fatalf("%d messages left", len(msgs))
	}
	// The cursor at message 2 still works; entries at or before it are gone.
	if rest, _ := st.Inbox(c, in[1].Position, 10); len(rest) != 2 || rest[0].Seq != 4 {
		t.Fatal("cursor after pruning")
	}
	n, _ = st.PruneMessages(450, 3)
	if n != 1 {
		t.Fatalf("second prune %d", n)
	}
	if n, _ := st.PruneMessages(450, 3); n != 0 {
		t.Fatal("pruned a message that is not due")
	}
	counts, _ := st.Counts()
	if counts.MessagesStored != 1 || counts.MessagesPruned != 4 || counts.MessagesTotal != 5 {
		t.Fatalf("counts %+v", counts)
	}
	if last, _ := st.LastSeq(sess.ID); last != 5 {
		t.Fatal("seq counter lowered by pruning")
	}
}

func TestMembersAndBlocks(t *testing.T) {
	st := New(memdb.New())
	ch := ids.ID{5}
	for i := byte(1); i <= 5; i++ {
		st.AddMember(ch, sessionID(i), RoleMember)
	}
	st.AddMember(ch, sessionID(2), RoleModerator)
	st.AddMember(ids.ID{6}, sessionID(9), RoleOwner) // another channel
	first, _ := st.Members(ch, nil, 2)
	if len(first) != 2 || first[0].ID != sessionID(1) || first[1].Role != RoleModerator {
		t.Fatal("members page 1")
	}
	rest, _ := st.Members(ch, &first[1].ID, 10)
	if len(rest) != 3 || rest[0].ID != sessionID(3) || rest[0].Role != RoleMember {
		t.Fatalf("members page 2: %d", len(rest))
	}
	if r, _ := st.MemberRole(ch, sessionID(2)); r != RoleModerator {
		t.Fatalf("role %d", r)
	}
	if r, _ := st.MemberRole(ch, sessionID(9)); r != 0 {
		t.Fatalf("non-member role %d", r)
	}
	st.RemoveMember(ch, sessionID(3))
	if ok, _ := st.IsMember(ch, sessionID(3)); ok {
		t.Fatal("removed member")
	}

	if _, err := st.LastAccepted(); !errors.Is(err, ErrNotFound) {
		t.Fatal("last accepted on empty state")
	}
	st.PutBlock(ids.ID{1}, 7, []byte("blk"))
	st.SetLastAccepted(ids.ID{1})
	if id, _ := st.BlockIDAtHeight(7); id != (ids.ID{1}) {
		t.Fatal("height index")
	}
	if b, _ := st.GetBlock(ids.ID{1}); string(b) != "blk" {
		t.Fatal("block bytes")
	}
	st.PutTx(ids.ID{2}, TxLocation{Height: 7, Index: 3, Offset: 1, Length: 2})
	if loc, _ := st.GetTx(ids.ID{2}); loc != (TxLocation{Height: 7, Index: 3, Offset: 1, Length: 2}) {
		t.Fatal("tx index")
	}
	if err := st.AddCount(CountChannels, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatal("negative counter")
	}
}

func TestCorruptRecords(t *testing.T) {
	db := memdb.New()
	st := New(db)
	k := SessionIDKey(sessionID(1))
	db.Put(append([]byte{'i'}, k[:]...), []byte{1, 2, 3})
	if _, err := st.GetIdentity(sessionID(1)); !errors.Is(err, ErrCorrupt) {
		t.Fatal("corrupt identity")
	}
	db.Put(append([]byte{'s'}, make([]byte, 32)...), []byte{0xff})
	if _, err := st.GetSession(ids.Empty); !errors.Is(err, ErrCorrupt) {
		t.Fatal("corrupt session")
	}
}

// TestNamespaceMatchesPrefixDB: the inline namespaces store exactly the
// keys prefixdb.New would, and iterate the same way.
func TestNamespaceMatchesPrefixDB(t *testing.T) {
	db := memdb.New()
	st := New(db)
	a := sessionID(1)
	if err := st.SetNonce(a, 5); err != nil {
		t.Fatal(err)
	}
	st.AddMember(ids.ID{1}, a, RoleOwner)
	st.AddMember(ids.ID{1}, sessionID(2), RoleMember)
	k := SessionIDKey(a)
	v, err := prefixdb.New([]byte{'n'}, db).Get(k[:])
	if err != nil || len(v) != accountSize || v[7] != 5 {
		t.Fatalf("prefixdb view: %x %v", v, err)
	}
	ch1 := ids.ID{1}
	var viaPrefixDB, viaNS [][]byte
	it := prefixdb.New([]byte{'e'}, db).NewIteratorWithPrefix(ch1[:])
	for it.Next() {
		viaPrefixDB = append(viaPrefixDB, bytes.Clone(it.Key()))
	}
	it.Release()
	it = st.members().NewIteratorWithStartAndPrefix(nil, ch1[:])
	for it.Next() {
		viaNS = append(viaNS, bytes.Clone(it.Key()))
	}
	it.Release()
	if len(viaNS) != 2 || len(viaPrefixDB) != 2 || !bytes.Equal(viaNS[0], viaPrefixDB[0]) || !bytes.Equal(viaNS[1], viaPrefixDB[1]) {
		t.Fatal("iteration differs from prefixdb")
	}
}

func TestWriteAcceptedMatchesSetters(t *testing.T) {
	a, b := memdb.New(), memdb.New()
	id, txs := ids.ID{1}, []ids.ID{{2}, {3}}
	if err := WriteAccepted(a, id, 9, []byte("hdr-tx1tx22"), txs, []int{3, 4}); err != nil {
		t.Fatal(err)
	}
	st := New(b)
	st.PutBlock(id, 9, []byte("hdr-tx1tx22"))
	st.PutTx(txs[0], TxLocation{Height: 9, Index: 0, Offset: 4, Length: 3})
	st.PutTx(txs[1], TxLocation{Height: 9, Index: 1, Offset: 7, Length: 4})
	st.SetLastAccepted(id)
	ia, ib := a.NewIterator(), b.NewIterator()
	defer ia.Release()
	defer ib.Release()
	n := 0
	for ia.Next() {
		if !ib.Next() || !bytes.Equal(ia.Key(), ib.Key()) || !bytes.Equal(ia.Value(), ib.Value()) {
			t.Fatalf("entry %d differs", n)
		}
		n++
	}
	if ib.Next() || n != 5 {
		t.Fatalf("%d entries", n)
	}
	// A transaction's bytes come back from its range alone.
	if got, loc, err := New(a).TxBytes(txs[1]); err != nil || string(got) != "tx22" || loc.Index != 1 {
		t.Fatalf("TxBytes: %q %+v %v", got, loc, err)
	}
	if err := WriteAccepted(a, id, 9, []byte("x"), txs, []int{3, 4}); err == nil {
		t.Fatal("transactions longer than the block")
	}
}

// Blocks are stored in chunks: every size round-trips, through PutBlock and
// WriteAccepted alike, a block never picks up chunks of another, and a gap
// in the chunks is reported as corruption.
func TestBlockChunks(t *testing.T) {
	db := memdb.New()
	st := New(db)
	sizes := []int{1, BlockChunkSize - 1, BlockChunkSize, BlockChunkSize + 1, 3*BlockChunkSize + 17}
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(i + j*7)
		}
		id := ids.ID{0xb1, byte(i)}
		if i%2 == 0 {
			if err := st.PutBlock(id, uint64(i), b); err != nil {
				t.Fatal(err)
			}
		} else {
			batch := db.NewBatch()
			if err := WriteAccepted(batch, id, uint64(i), b, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := batch.Write(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := st.GetBlock(id)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("size %d: %d bytes back, %v", n, len(got), err)
		}
		if ok, err := st.HasBlock(id); !ok || err != nil {
			t.Fatalf("size %d: HasBlock %v %v", n, ok, err)
		}
	}
	if _, err := st.GetBlock(ids.ID{0xb1, 9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown block: %v", err)
	}
	if ok, _ := st.HasBlock(ids.ID{0xb1, 9}); ok {
		t.Fatal("HasBlock of an unknown block")
	}
	// Remove a middle chunk of the largest block.
	big := ids.ID{0xb1, byte(len(sizes) - 1)}
	if err := db.Delete(blockKey(big, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.GetBlock(big); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("missing chunk: %v", err)
	}
}

// Deferred counters: Count sees the changes at once, the database only at
// Flush, and a change below zero is refused either way.
func TestDeferCounts(t *testing.T) {
	db := &recordingDB{Database: memdb.New()}
	st := New(db)
	if err := st.AddCount(CountMessagesStored, 5); err != nil { // immediate
		t.Fatal(err)
	}
	st.Defer()
	for i := 0; i < 10; i++ {
		if err := st.AddCount(CountMessagesStored, 1); err != nil {
			t.Fatal(err)
		}
		if err := st.AddCount(CountMessagesTotal, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddCount(CountMessagesStored, -3); err != nil {
		t.Fatal(err)
	}
	if err := st.AddCount(CountMessagesPruned, -1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("below zero: %v", err)
	}
	if n, _ := st.Count(CountMessagesStored); n != 12 {
		t.Fatalf("Count with deferred changes: %d, want 12", n)
	}
	if n, _ := New(db.Database).Count(CountMessagesStored); n != 5 {
		t.Fatalf("stored before flush: %d, want 5", n)
	}
	db.written = nil
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(db.written) != 2 {
		t.Fatalf("flush wrote %d keys, want 2", len(db.written))
	}
	fresh := New(db.Database)
	if n, _ := fresh.Count(CountMessagesStored); n != 12 {
		t.Fatalf("stored after flush: %d, want 12", n)
	}
	if n, _ := fresh.Count(CountMessagesTotal); n != 10 {
		t.Fatalf("total after flush: %d, want 10", n)
	}
	if err := st.Flush(); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Count(CountMessagesStored); n != 12 {
		t.Fatalf("flushing twice changed the count: %d", n)
	}
}

// On a deferred view (a block) the messages share one retention entry.
// Pruning with a bound cuts into that entry and leaves the rest queued
// under the same key; inbox entries and counters follow.
func TestBlockRetentionEntry(t *testing.T) {
	base := memdb.New()
	a, b := sessionID(1), sessionID(2)
	sess := &Session{ID: ids.ID{7}, Creator: a, Participants: []crypto.SessionID{a, b}, ExpiresAt: 1 << 60}
	if err := New(base).PutSession(sess); err != nil {
		t.Fatal(err)
	}
	// Block 1 at time 100: five messages; block 2 at time 900: two.
	for h, blk := range []struct {
		ts int64
		n  int
	}{{100, 5}, {900, 2}} {
		overlay := versiondb.New(base)
		st := New(overlay)
		st.Defer()
		for i := 0; i < blk.n; i++ {
			m := &Message{Target: sess.ID, Author: a, Height: uint64(h + 1), Position: Position(uint64(h+1), uint32(i)), Timestamp: blk.ts, Ciphertext: []byte{byte(i)}}
			if _, err := st.AppendMessage(KindSession, m, []crypto.SessionID{b}); err != nil {
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
	entries := func() (n int) {
		it := base.NewIteratorWithPrefix([]byte{prefixRetention})
		defer it.Release()
		for it.Next() {
			n++
		}
		return n
	}
	if got := entries(); got != 2 {
		t.Fatalf("%d retention entries, want one per block", got)
	}
	st := New(base)
	if n, err := st.PruneMessages(500, 2); err != nil || n != 2 {
		t.Fatalf("first prune: %d, %v", n, err)
	}
	if got := entries(); got != 2 {
		t.Fatalf("a cut entry must stay queued: %d entries", got)
	}
	if in, _ := st.Inbox(b, 0, 10); len(in) != 5 || in[0].Seq != 3 {
		t.Fatalf("inbox after the first prune: %d entries", len(in))
	}
	if n, err := st.PruneMessages(500, 10); err != nil || n != 3 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
	if got := entries(); got != 1 {
		t.Fatalf("%d retention entries after block 1 was pruned", got)
	}
	if n, _ := st.PruneMessages(500, 10); n != 0 {
		t.Fatal("pruned a message that is not due")
	}
	msgs, _ := st.Messages(sess.ID, 0, 10)
	if len(msgs) != 2 || msgs[0].Seq != 6 {
		t.Fatalf("%d messages left", len(msgs))
	}
	counts, _ := st.Counts()
	if counts.MessagesStored != 2 || counts.MessagesPruned != 5 || counts.MessagesTotal != 7 {
		t.Fatalf("counts %+v", counts)
	}
	if n, _ := st.PruneMessages(1000, 10); n != 2 {
		t.Fatal("block 2 not pruned")
	}
	if got := entries(); got != 0 {
		t.Fatalf("%d retention entries left", got)
	}
	if _, err := st.meta().Get(keyRetentionHead); !errors.Is(err, ErrNotFound) {
		t.Fatalf("retention head left: %v", err)
	}
}
