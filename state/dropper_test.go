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
// namespaces of the message records, and that a dropping view gets every
// other write of AppendMessage (the ones later checks read).
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
	if _, err := New(droppingDB{dropped}).AppendMessage(KindSession, m(), []crypto.SessionID{sessionID(2)}); err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, k := range full.written {
		if !TxWriteOnly(k) {
			kept = append(kept, string(k))
		}
	}
	if len(kept) == len(full.written) {
		t.Fatal("no TxWriteOnly writes in AppendMessage")
	}
	if len(dropped.written) != len(kept) {
		t.Fatalf("dropping view got %d writes, want %d", len(dropped.written), len(kept))
	}
	for i, k := range dropped.written {
		if string(k) != kept[i] {
			t.Fatalf("write %d: key %x, want %x", i, k, kept[i])
		}
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
