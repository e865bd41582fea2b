package service

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// keepAPI admits every transaction and keeps it, as the mempool does.
type keepAPI struct {
	vm.API
	mu   sync.Mutex
	kept []*tx.Tx
}

func (k *keepAPI) Issue(t *tx.Tx) error {
	k.mu.Lock()
	k.kept = append(k.kept, t)
	k.mu.Unlock()
	return nil
}

// TestPooledBodies: request bodies of one message are read into pooled
// buffers, reused by the next requests: what a call keeps (the admitted
// transaction's bytes) and what it answers (its id, its tx ID) must not
// change when its buffer is reused. Many concurrent one-message requests,
// each with its own id, over real connections; every kept transaction
// must still be the bytes sent, and every answer the request's own.
func TestPooledBodies(t *testing.T) {
	api := &keepAPI{}
	h, err := NewHandler(api)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	a := identity(t, 0)
	const n = 96
	signed := make(map[ids.ID][]byte)
	bodies := make([][]byte, n)
	wantIDs := make([]ids.ID, n)
	for i := range n {
		s, err := tx.Sign(a, ids.ID{0xc4}, uint64(i), &tx.SendMessage{Session: ids.ID{byte(i)}, Ciphertext: bytes.Repeat([]byte{byte(i)}, 256+i)})
		if err != nil {
			t.Fatal(err)
		}
		signed[s.ID()] = bytes.Clone(s.Bytes())
		wantIDs[i] = s.ID()
		bodies[i] = fmt.Appendf(nil, `{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":%q},"id":"req-%d"}`,
			base64.StdEncoding.EncodeToString(s.Bytes()), i)
		if len(bodies[i]) > bodyPoolSize {
			t.Fatalf("request of %d bytes: not a pooled body", len(bodies[i]))
		}
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := fmt.Sprintf(`"txID":%q`, wantIDs[i].String())
				if err != nil || !bytes.Contains(got, []byte(want)) || !bytes.HasSuffix(bytes.TrimSpace(got), fmt.Appendf(nil, `"id":"req-%d"}`, i)) {
					t.Errorf("request %d: %s (%v); want %s and its id", i, got, err, want)
				}
			}
		}()
	}
	wg.Wait()
	if len(api.kept) != n {
		t.Fatalf("%d transactions admitted, want %d", len(api.kept), n)
	}
	for _, k := range api.kept {
		if want, ok := signed[k.ID()]; !ok || !bytes.Equal(k.Bytes(), want) {
			t.Fatalf("kept transaction %s changed after its body's buffer was reused", k.ID())
		}
	}
}
