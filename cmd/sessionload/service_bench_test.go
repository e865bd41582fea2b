package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// nullAPI admits every transaction instantly: the benchmarks below measure
// the JSON-RPC layer alone. Only IssueTx and Issue are called.
type nullAPI struct{ vm.API }

func (nullAPI) IssueTx([]byte) (ids.ID, error) { return ids.ID{1}, nil }

func (nullAPI) Issue(*tx.Tx) error { return nil }

func loadTx(b *testing.B) *tx.Tx {
	b.Helper()
	id, err := crypto.GenerateIdentity()
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 256)
	_, _ = rand.Read(payload)
	t, err := tx.Sign(id, ids.ID{7}, 2, &tx.SendMessage{Session: ids.ID{9}, Ciphertext: payload})
	if err != nil {
		b.Fatal(err)
	}
	return t
}

// BenchmarkServiceIssueTx is the node-side cost of one session.issueTx
// request of a load message (3,676-byte transaction, ~4.9 KB of base64) in
// package service, the VM excluded: envelope and params decoding, tx.Parse,
// gorilla/rpc dispatch, the response.
func BenchmarkServiceIssueTx(b *testing.B) {
	h, err := service.NewHandler(&nullAPI{})
	if err != nil {
		b.Fatal(err)
	}
	body := issueBody(1, loadTx(b).Bytes())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"error"`)) {
			b.Fatalf("HTTP %d: %s", w.Code, w.Body.String())
		}
	}
}

// BenchmarkIssueTxFloor is what the same request needs at least: one
// base64 decode of the transaction and tx.Parse (which hashes it).
func BenchmarkIssueTxFloor(b *testing.B) {
	raw := loadTx(b).Bytes()
	enc := base64.StdEncoding.EncodeToString(raw)
	body := issueBody(1, raw)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	buf := make([]byte, len(raw))
	for b.Loop() {
		n, err := base64.StdEncoding.Decode(buf, []byte(enc))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Parse(buf[:n]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOnePassDecode is the proposed fix for package service, measured
// here: the request decoded with a single encoding/json pass into a typed
// envelope (the params' tx decoded from base64 in the same pass), then
// tx.Parse. Compare with BenchmarkServiceIssueTx.
func BenchmarkOnePassDecode(b *testing.B) {
	body := issueBody(1, loadTx(b).Bytes())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var env struct {
			JSONRPC string          `json:"jsonrpc"`
			ID      json.RawMessage `json:"id"`
			Method  string          `json:"method"`
			Params  struct {
				Tx []byte `json:"tx"`
			} `json:"params"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Parse(env.Params.Tx); err != nil {
			b.Fatal(err)
		}
	}
}
