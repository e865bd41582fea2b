package state

import (
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
)

// TestMessagesBounded pages through ten 1000-byte messages with a 2500-byte
// bound: each page stops after the message that crosses the bound, and the
// pages together cover every message once.
func TestMessagesBounded(t *testing.T) {
	st := New(memdb.New())
	a, b := sessionID(1), sessionID(2)
	target := ids.ID{7}
	for i := 1; i <= 10; i++ {
		m := &Message{Target: target, Author: a, Height: uint64(i), Position: Position(uint64(i), 0), Timestamp: int64(i), Ciphertext: make([]byte, 1000)}
		if _, err := st.AppendMessage(KindSession, m, []crypto.SessionID{b}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []uint64
	after := uint64(0)
	for pages := 0; pages < 10; pages++ {
		page, err := st.MessagesBounded(target, after, 100, 2500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if len(page) > 3 {
			t.Fatalf("page of %d messages exceeds the bound by more than one message", len(page))
		}
		for _, m := range page {
			seen = append(seen, m.Seq)
		}
		after = page[len(page)-1].Seq
	}
	if len(seen) != 10 || seen[0] != 1 || seen[9] != 10 {
		t.Fatalf("pages covered %v", seen)
	}
	// No bound, and the count limit, behave as Messages.
	all, _ := st.MessagesBounded(target, 0, 100, 0)
	few, _ := st.Messages(target, 0, 4)
	if len(all) != 10 || len(few) != 4 {
		t.Fatalf("unbounded %d, limited %d", len(all), len(few))
	}
}
