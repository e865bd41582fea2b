package state

import (
	"testing"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
)

// recordingDB records the keys written and, like the mempool's admission
// view, may drop the TxWriteOnly ones.
type recordingDB struct {
	database.Database
	written [][]byte
}

func (r *recordingDB) Put(k, v []byte) error {
	r.written = append(r.written, append([]byte(nil), k...))
	return r.Database.Put(k, v)
}

type droppingDB struct{ *recordingDB }

func (droppingDB) DropsTxWriteOnly() {}

// TestAppendMessageTxWriteOnly checks that TxWriteOnly names exactly the
// namespaces of the message records, and that a dropping view gets the one
// write of AppendMessage that transaction execution reads: the target's
// sequence counter (not the records, the message counts or the retention
// head, which only pruning and queries read).
func TestAppendMessageTxWriteOnly(t *testing.T) {
	target := ids.ID{9}
	m := func() *Message {
		return &Message{Target: target, Author: sessionID(1), Position: Position(5, 2), Timestamp: 7, Ciphertext: []byte("c")}
	}
	full := &recordingDB{Database: memdb.New()}
	if _, err := New(full).AppendMessage(KindSession, m(), []crypto.SessionID{sessionID(2)}); err != nil {
		t.Fatal(err)
	}
	dropped := &recordingDB{Database: memdb.New()}
	seq, err := New(droppingDB{dropped}).AppendMessage(KindSession, m(), []crypto.SessionID{sessionID(2)})
	if err != nil || seq != 1 {
		t.Fatalf("dropping view: seq %d, %v", seq, err)
	}
	writeOnly := 0
	for _, k := range full.written {
		if TxWriteOnly(k) {
			writeOnly++
		}
	}
	if writeOnly == 0 {
		t.Fatal("no TxWriteOnly writes in AppendMessage")
	}
	counter := New(nil).counters().key(target[:])
	if len(dropped.written) != 1 || string(dropped.written[0]) != string(counter) {
		t.Fatalf("dropping view wrote %x, want only the counter %x", dropped.written, counter)
	}
	if last, err := New(dropped.Database).LastSeq(target); err != nil || last != 1 {
		t.Fatalf("dropping view: LastSeq %d, %v", last, err)
	}
	for _, p := range []byte{prefixMessage, prefixInbox, prefixRetention} {
		if !TxWriteOnly([]byte{p, 0}) {
			t.Fatalf("prefix %c not TxWriteOnly", p)
		}
	}
	for _, p := range []byte{prefixMeta, prefixIdentity, prefixNonce, prefixSession, prefixCounter, prefixChannel, prefixMember, prefixBlock, prefixHeight, prefixTx} {
		if TxWriteOnly([]byte{p, 0}) {
			t.Fatalf("prefix %c is TxWriteOnly", p)
		}
	}
}
