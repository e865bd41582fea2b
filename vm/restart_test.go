package vm

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/state"
	"github.com/luxfi/session/storage"
	"github.com/luxfi/session/vm/tx"
)

// dump returns every key/value of db, in key order.
func dump(t testing.TB, db database.Database) [][2][]byte {
	t.Helper()
	it := db.NewIterator()
	defer it.Release()
	var out [][2][]byte
	for it.Next() {
		out = append(out, [2][]byte{bytes.Clone(it.Key()), bytes.Clone(it.Value())})
	}
	if err := it.Error(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	g := genesisJSON(t, nil, identity(t, 0), identity(t, 1))
	clock := newTestClock()
	alice, bob := identity(t, 0), identity(t, 1)

	db, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDB(t, db, g, clock)
	s := e.createSession(alice, bob)
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("persist me")})
	pending := e.sign(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("never built")})
	e.issue(pending)
	lastBefore, _ := e.vm.LastAccepted(ctx)
	statusBefore, _ := e.vm.Status()
	if statusBefore.MempoolTxs != 1 {
		t.Fatal("pending tx missing")
	}
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	db2, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e2 := newEnvDB(t, db2, g, clock)
	lastAfter, _ := e2.vm.LastAccepted(ctx)
	if lastAfter != lastBefore {
		t.Fatalf("last accepted %s, want %s", lastAfter, lastBefore)
	}
	statusAfter, _ := e2.vm.Status()
	if statusAfter.MempoolTxs != 0 {
		t.Fatal("mempool survived restart")
	}
	// Genesis not re-applied: the identity count would have grown.
	if statusAfter.Counts != statusBefore.Counts || statusAfter.Counts.Identities != 2 {
		t.Fatalf("counts %+v, before %+v", statusAfter.Counts, statusBefore.Counts)
	}
	// Chain-wide figures survive the restart; since-start ones begin again.
	if statusBefore.AcceptedTxs != 2 || statusBefore.AcceptedTxsSinceStart != 2 ||
		statusAfter.AcceptedTxs != 2 || statusAfter.AcceptedTxsSinceStart != 0 {
		t.Fatalf("accepted txs before restart %d (since start %d), after %d (%d); want 2 (2), 2 (0)",
			statusBefore.AcceptedTxs, statusBefore.AcceptedTxsSinceStart, statusAfter.AcceptedTxs, statusAfter.AcceptedTxsSinceStart)
	}
	msgs, err := e2.vm.Messages(s, 0, 10)
	if err != nil || len(msgs) != 1 || string(msgs[0].Ciphertext) != "persist me" {
		t.Fatalf("messages after restart: %v %v", msgs, err)
	}
	// Alice's session is still a request to bob.
	if r, _ := e2.vm.Requests(sid(t, bob), 0, 10); len(r) != 1 || r[0].Session != s {
		t.Fatalf("bob's requests after restart: %+v", r)
	}
	if st, _ := e2.vm.TxStatus(pending.ID()); st.Status != TxUnknown {
		t.Fatalf("pending tx status after restart: %v", st.Status)
	}
	// The chain continues; the nonce sequence survived. Replying accepts
	// the request: alice's message reaches bob's inbox.
	e2.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("after restart")})
	if n, _ := e2.vm.NextNonce(sid(t, bob)); n != 1 {
		t.Fatalf("bob's nonce %d", n)
	}
	if in, _ := e2.vm.Inbox(sid(t, bob), 0, 10); len(in) != 1 || string(in[0].Ciphertext) != "persist me" {
		t.Fatal("inbox after restart")
	}
	if st, _ := e2.vm.Status(); st.AcceptedTxs != 3 || st.Counts.TxsAccepted != 3 || st.AcceptedTxsSinceStart != 1 {
		t.Fatalf("after one more: acceptedTxs %d, since start %d; want 3, 1", st.AcceptedTxs, st.AcceptedTxsSinceStart)
	}
	if err := e2.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Another genesis is refused on this database.
	db3, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer db3.Close()
	other := genesisJSON(t, map[string]any{"maxMessages": 5}, identity(t, 0))
	err = New().Initialize(ctx, nil, db3, other, nil, nil, nil, nil, nil)
	mustIs(t, err, ErrGenesisMismatch)

	// A database in another layout format (here: written before the format
	// was recorded) is refused with a clear error, not misread.
	if v, err := state.New(db3).StoredFormatVersion(); err != nil || v != state.FormatVersion {
		t.Fatalf("stored format %d, %v", v, err)
	}
	if err := db3.Delete(append([]byte{'m'}, "format"...)); err != nil {
		t.Fatal(err)
	}
	err = New().Initialize(ctx, nil, db3, g, nil, nil, nil, nil, nil)
	mustIs(t, err, ErrDatabaseFormat)
	if !strings.Contains(err.Error(), "format 1") {
		t.Fatalf("error does not name the format: %v", err)
	}
}

// TestRetention: messages older than retentionDays (block time) are pruned
// with their inbox entries, and inbox cursors keep working.
func TestRetention(t *testing.T) {
	e := newEnv(t, map[string]any{"retentionDays": 1, "sessionTTL": 10 * 86400})
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	e.acceptAll(s, bob)
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("old 1")})
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("old 2")})
	old, _ := e.vm.Inbox(sid(t, bob), 0, 10)
	if len(old) != 2 {
		t.Fatal("setup")
	}
	cursor := old[0].Position // bob read the first one

	e.clock.Advance(12 * time.Hour)
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("mid")})
	e.clock.Advance(13 * time.Hour) // old ones are now > 1 day old; "mid" is not
	e.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("reply")})

	msgs, _ := e.vm.Messages(s, 0, 10)
	if len(msgs) != 2 || string(msgs[0].Ciphertext) != "mid" || msgs[0].Seq != 3 {
		t.Fatalf("after pruning: %d messages", len(msgs))
	}
	in, _ := e.vm.Inbox(sid(t, bob), cursor, 10)
	if len(in) != 1 || string(in[0].Ciphertext) != "mid" {
		t.Fatalf("bob's inbox after his cursor: %d entries", len(in))
	}
	if in, _ := e.vm.Inbox(sid(t, bob), 0, 10); len(in) != 1 {
		t.Fatal("pruned inbox entries remain")
	}
	if in, _ := e.vm.Inbox(sid(t, alice), 0, 10); len(in) != 1 || string(in[0].Ciphertext) != "reply" {
		t.Fatal("alice's inbox")
	}
	st, _ := e.vm.Status()
	if st.Counts.MessagesPruned != 2 || st.Counts.MessagesStored != 2 || st.Counts.MessagesTotal != 4 {
		t.Fatalf("counts %+v", st.Counts)
	}
	// Sequence numbers continue after pruning.
	if info, _ := e.vm.Session(s); info.LastSeq != 4 {
		t.Fatal("last seq")
	}
}

// TestDeterminism: a second node that only parses, verifies and accepts
// the first node's blocks ends with a byte-identical database.
func TestDeterminism(t *testing.T) {
	g := genesisJSON(t, map[string]any{"retentionDays": 1, "sessionTTL": 864000}, identity(t, 0), identity(t, 1), identity(t, 2))
	clock := newTestClock()
	db1, db2 := memdb.New(), memdb.New()
	n1 := newEnvDB(t, db1, g, clock)
	n2 := newEnvDB(t, db2, g, clock)
	alice, bob, carol, dave := identity(t, 0), identity(t, 1), identity(t, 2), identity(t, 4)

	var blocks [][]byte
	step := func() {
		b := n1.accept()
		blocks = append(blocks, b.Bytes())
	}
	n1.issue(n1.sign(dave, &tx.RegisterIdentity{KEMPublicKey: dave.KEMPublicKey, DSAPublicKey: dave.DSAPublicKey}))
	n1.issue(n1.sign(dave, &tx.CreateChannel{Name: "dave"}))
	step()
	s := n1.createSession(alice, bob, carol)
	blocks = append(blocks, mustBlockAt(t, n1, 2))
	for i := 0; i < 30; i++ {
		author := []int{0, 1, 2}[i%3]
		n1.issue(n1.sign(identity(t, author), &tx.SendMessage{Session: s, Ciphertext: []byte{byte(i)}}))
		if i%7 == 6 {
			step()
			clock.Advance(9 * time.Hour) // retention prunes along the way
		}
	}
	step()
	n1.issue(n1.sign(alice, &tx.CloseSession{Session: s}))
	step()

	for _, raw := range blocks {
		b, err := n2.vm.ParseBlock(ctx, raw)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Verify(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.Accept(ctx); err != nil {
			t.Fatal(err)
		}
	}
	d1, d2 := dump(t, db1), dump(t, db2)
	if len(d1) != len(d2) {
		t.Fatalf("%d keys vs %d keys", len(d1), len(d2))
	}
	for i := range d1 {
		if !bytes.Equal(d1[i][0], d2[i][0]) || !bytes.Equal(d1[i][1], d2[i][1]) {
			t.Fatalf("databases differ at key %x", d1[i][0])
		}
	}
	st, _ := n2.vm.Status()
	if st.Counts.MessagesPruned == 0 || st.Counts.MessagesTotal != 30 {
		t.Fatalf("the run should exercise pruning: %+v", st.Counts)
	}
}

func mustBlockAt(t *testing.T, e *env, h uint64) []byte {
	t.Helper()
	id, err := e.vm.GetBlockIDAtHeight(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.vm.GetBlock(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestRPCHandler(t *testing.T) {
	e := newEnv(t, nil)
	e.do(identity(t, 0), &tx.CreateChannel{Name: "c"})
	hs, err := e.vm.CreateHandlers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(hs["/rpc"])
	defer srv.Close()
	call := func(body string) map[string]json.RawMessage {
		resp, err := http.Post(srv.URL, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]json.RawMessage
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s: %s", err, raw)
		}
		return out
	}
	out := call(`{"jsonrpc":"2.0","id":1,"method":"session.status","params":{}}`)
	var st StatusReply
	if err := json.Unmarshal(out["result"], &st); err != nil {
		t.Fatal(err)
	}
	last, _ := e.vm.LastAccepted(ctx)
	if st.Height != 1 || st.Channels != 1 || st.Identities != 4 || st.LastAcceptedID != last.String() || st.ChainID != e.vm.ChainID().String() {
		t.Fatalf("status %+v", st)
	}
	out = call(`{"jsonrpc":"2.0","id":2,"method":"session.health","params":{}}`)
	var h HealthReply
	if err := json.Unmarshal(out["result"], &h); err != nil || !h.Healthy || h.Height != 1 {
		t.Fatalf("health %s %v", out["result"], err)
	}
	if out = call(`{"jsonrpc":"2.0","id":3,"method":"session.nope","params":{}}`); out["error"] == nil {
		t.Fatal("unknown method without error")
	}
}

var (
	_ = errors.Is
	_ = ids.Empty
	_ = state.ErrNotFound
)

// An inbox entry whose message was pruned after the index was read (a
// block accepted in between) is skipped, and the page is filled from the
// entries after it: a page is short only at the end of the inbox.
func TestInboxSkipsPrunedMessages(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := identity(t, 0), identity(t, 1)
	s := e.createSession(alice, bob)
	e.acceptAll(s, bob)
	for i := 0; i < 5; i++ {
		e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte{byte('a' + i)}})
	}
	// Remove the records of messages 2 and 3 but not their inbox entries:
	// what a reader sees between a prune's two steps.
	for _, seq := range []uint64{2, 3} {
		k := append([]byte{'g'}, s[:]...)
		k = binary.BigEndian.AppendUint64(k, seq)
		if err := e.vm.db.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	page, err := e.vm.Inbox(sid(t, bob), 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for _, m := range page {
		got = append(got, m.Seq)
	}
	if len(got) != 3 || got[0] != 1 || got[1] != 4 || got[2] != 5 {
		t.Fatalf("page %v, want [1 4 5]", got)
	}
	if rest, _ := e.vm.Inbox(sid(t, bob), page[2].Position, 3); len(rest) != 0 {
		t.Fatalf("%d messages after the last", len(rest))
	}
}

// TestOpenDBKeepsBadgerDirectory: a data directory whose database an
// earlier version made with BadgerDB opens as BadgerDB (OpenDB converts
// nothing), and its chain goes on: blocks, messages and nonces as left,
// new blocks accepted, and a block's bytes read back through GetBlock.
func TestOpenDBKeepsBadgerDirectory(t *testing.T) {
	dir := t.TempDir()
	g := genesisJSON(t, nil, identity(t, 0), identity(t, 1))
	clock := newTestClock()
	alice, bob := identity(t, 0), identity(t, 1)

	db, err := openBadger(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnvDB(t, db, g, clock)
	s := e.createSession(alice, bob)
	e.do(alice, &tx.SendMessage{Session: s, Ciphertext: []byte("written by badger")})
	lastBefore, _ := e.vm.LastAccepted(ctx)
	if err := e.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	if !IsBadgerDir(dir) {
		t.Fatal("a BadgerDB directory is not recognized")
	}
	db2, err := OpenDB(dir, DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, isStorage := db2.(*storage.DB); isStorage {
		t.Fatal("OpenDB opened a BadgerDB directory with package storage")
	}
	e2 := newEnvDB(t, db2, g, clock)
	if last, _ := e2.vm.LastAccepted(ctx); last != lastBefore {
		t.Fatalf("last accepted %s, want %s", last, lastBefore)
	}
	if blk, err := e2.vm.GetBlock(ctx, lastBefore); err != nil || blk.ID() != lastBefore {
		t.Fatalf("the last block read back: %v", err)
	}
	e2.do(bob, &tx.SendMessage{Session: s, Ciphertext: []byte("written after")})
	msgs, err := e2.vm.Messages(s, 0, 10)
	if err != nil || len(msgs) != 2 || string(msgs[0].Ciphertext) != "written by badger" || string(msgs[1].Ciphertext) != "written after" {
		t.Fatalf("messages: %v, %v", msgs, err)
	}
	if err := e2.vm.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "values")); !os.IsNotExist(err) {
		t.Fatalf("package storage's value log appeared in a BadgerDB directory: %v", err)
	}
}
