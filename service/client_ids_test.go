package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/luxfi/ids"
)

// TestClientRefusesHugeIDs: the typed client holds every string a result
// decodes as an ids.ID to the length of an ID before decoding it (CB58
// decoding is quadratic in the length, and the node is untrusted), on the
// single-call and the batch path, at any depth, while long strings of
// other fields (a ciphertext) and real IDs decode as before.
func TestClientRefusesHugeIDs(t *testing.T) {
	id := ids.ID{1, 2, 3}
	huge := strings.Repeat("1", 2048) // base58, and longer than any ID
	var result string                 // the result the fake node answers with
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "application/json")
		var one struct{ ID json.RawMessage }
		if len(req) > 0 && req[0] == '[' {
			var all []struct{ ID json.RawMessage }
			_ = json.Unmarshal(req, &all)
			one = all[0]
			_, _ = w.Write([]byte(`[{"jsonrpc":"2.0","id":` + string(one.ID) + `,"result":` + result + `}]`))
			return
		}
		_ = json.Unmarshal(req, &one)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(one.ID) + `,"result":` + result + `}`))
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := context.Background()
	page := func(txID, ciphertext string) string {
		return `{"messages":[{"target":"` + id.String() + `","seq":1,"author":"07ab","txID":"` + txID +
			`","height":1,"position":1,"timestamp":1,"ciphertext":"` + ciphertext + `"}],"next":1,"more":false}`
	}

	result = page(id.String(), strings.Repeat("QUJD", 4096)) // a 16 KB ciphertext
	p, err := c.Messages(ctx, id, 0, 10)
	if err != nil || len(p.Messages) != 1 || p.Messages[0].TxID != id || len(p.Messages[0].Ciphertext) != 3*4096 {
		t.Fatalf("an honest page: %+v, %v", p, err)
	}

	result = page(huge, "")
	if _, err := c.Messages(ctx, id, 0, 10); !errors.Is(err, ErrUntrustedNode) || !strings.Contains(err.Error(), "txID") {
		t.Fatalf("a huge txID in a page: %v", err)
	}
	var reply MessagesReply
	calls := []BatchCall{{Method: "getMessages", Params: MessagesArgs{Session: id.String()}, Result: &reply}}
	if err := c.Batch(ctx, calls); err != nil || !errors.Is(calls[0].Err, ErrUntrustedNode) {
		t.Fatalf("a huge txID in a batch: %v, %v", err, calls[0].Err)
	}

	// A key matched case-insensitively, as encoding/json matches it.
	result = `{"txID":"` + id.String() + `","type":"sendMessage","author":"07ab","nonce":1,"SESSION":"` + huge + `"}`
	var tr TxReply
	if err := c.Call(ctx, "x", nil, &tr); !errors.Is(err, ErrUntrustedNode) {
		t.Fatalf("a huge SESSION: %v", err)
	}
}
