package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// TestSenderStore holds the flat store of pre-signed messages to what it
// replaces: each message's bytes, its ID's text and the request sent for
// it are those of the signed transaction, and a message larger than its
// room is refused, not cut.
func TestSenderStore(t *testing.T) {
	id, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	chain, session := ids.GenerateTestID(), ids.GenerateTestID()
	sign := func(nonce uint64, payload int) *tx.Tx {
		tt, err := tx.Sign(id, chain, nonce, &tx.SendMessage{Session: session, Ciphertext: bytes.Repeat([]byte{byte(nonce)}, payload)})
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	const n = 3
	txs := []*tx.Tx{sign(2, 256), sign(3, 256), sign(4, 256)}
	s := &sender{n: n, txSlot: txs[0].Size() + 16, reqBase: 7, reqStep: 64}
	s.txBuf = make([]byte, n*s.txSlot)
	s.txLen = make([]uint16, n)
	s.idBuf = make([]byte, n*idSlot)
	s.idLen = make([]uint8, n)
	for _, k := range []int{2, 0, 1} { // workers store out of order
		if err := s.store(k, txs[k]); err != nil {
			t.Fatal(err)
		}
	}
	for k, tt := range txs {
		if !bytes.Equal(s.signedTx(k), tt.Bytes()) {
			t.Fatalf("message %d: stored bytes differ from the signed transaction", k)
		}
		if got := string(s.txID(k)); got != tt.ID().String() {
			t.Fatalf("message %d: ID %q, want %q", k, got, tt.ID())
		}
	}
	bodies := s.bodies(nil, 1, 2)
	for i, b := range bodies {
		k := 1 + i
		if want := issueBody(7+uint64(k)*64, txs[k].Bytes()); !bytes.Equal(b, want) {
			t.Fatalf("request of message %d:\n got %.120s\nwant %.120s", k, b, want)
		}
	}
	big := sign(5, 256+17)
	if err := s.store(0, big); err == nil || !strings.Contains(err.Error(), "room") {
		t.Fatalf("a message larger than its room: %v", err)
	}
	if !bytes.Equal(s.signedTx(0), txs[0].Bytes()) {
		t.Fatal("a refused message overwrote the stored one")
	}
}
