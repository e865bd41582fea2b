package service

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// stubAPI answers Issue by the transaction's nonce, the same way every
// time: admitted, mempool full, a bad nonce, or a panic. Anything else it
// is asked panics (a nil vm.API), which both paths answer alike.
type stubAPI struct{ vm.API }

func (stubAPI) Issue(t *tx.Tx) error {
	switch t.Nonce % 4 {
	case 1:
		return mempool.ErrFull
	case 2:
		return fmt.Errorf("%w: want 7", tx.ErrBadNonce)
	case 3:
		panic("stub: boom")
	}
	return nil
}

// handlerPair is a handler with the direct dispatch and one that sends
// every call through gorilla/rpc, over the same stub.
func handlerPair(t testing.TB) (direct, general *handler) {
	t.Helper()
	var err error
	if direct, err = newHandler(stubAPI{}, Options{}); err != nil {
		t.Fatal(err)
	}
	if general, err = newHandler(stubAPI{}, Options{}); err != nil {
		t.Fatal(err)
	}
	general.general = true
	return direct, general
}

// sameAnswer posts body to both handlers and requires the same status,
// headers and bytes.
func sameAnswer(t testing.TB, direct, general http.Handler, body []byte) []byte {
	t.Helper()
	answer := func(h http.Handler) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	d, g := answer(direct), answer(general)
	if d.Code != g.Code || !reflect.DeepEqual(d.Header(), g.Header()) || !bytes.Equal(d.Body.Bytes(), g.Body.Bytes()) {
		t.Fatalf("%q:\ndirect  HTTP %d %v %s\ngeneral HTTP %d %v %s",
			truncate(body), d.Code, d.Header(), d.Body.Bytes(), g.Code, g.Header(), g.Body.Bytes())
	}
	return d.Body.Bytes()
}

// directSamples are signed transactions of four types, each with every
// outcome of stubAPI: sent to every write method, a method whose entry in txMethods
// named another type than its rpcService method takes would answer one
// of them differently.
func directSamples(t testing.TB) []*tx.Tx {
	t.Helper()
	a, b := identity(t, 0), identity(t, 1)
	bs, err := crypto.ParseSessionID(b.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	var out []*tx.Tx
	for nonce := range uint64(4) {
		for _, p := range []tx.Payload{
			&tx.SendMessage{Session: ids.ID{1}, Ciphertext: []byte("hello")},
			&tx.CloseSession{Session: ids.ID{2}},
			&tx.CreateSession{Participants: []crypto.SessionID{bs}},
			&tx.CreateChannel{Name: "général", JoinPolicy: tx.PolicyOpen},
			&tx.SetRequestPolicy{Policy: tx.RequestsFromContacts},
		} {
			s, err := tx.Sign(a, ids.ID{0xc4}, nonce, p)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	return out
}

func directBodies(t testing.TB) []string {
	t.Helper()
	var bodies []string
	for _, s := range directSamples(t) {
		for m := range txMethods {
			bodies = append(bodies, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{"tx":"%s"}}`, s.Nonce, m, b64(s.Bytes())))
		}
	}
	tx0 := b64(directSamples(t)[0].Bytes())
	bodies = append(bodies,
		`{"jsonrpc":"2.0","id":"x","method":"session.issueTx","params":{"tx":""}}`,
		`{"jsonrpc":"2.0","id":"x","method":"session.issueTx","params":{"tx":"AAAA"}}`,
		`{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"`+tx0+`"}}`,
		`{"jsonrpc":"2.0","id":null,"method":"session.sendMessage","params":{"tx":"`+tx0+`"}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"session.issueTx","params":{"tx":"`+tx0+`"}},`+
			`{"jsonrpc":"2.0","id":2,"method":"session.closeSession","params":{"tx":"`+tx0+`"}},`+
			`{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"`+tx0+`"}},`+
			`{"jsonrpc":"2.0","id":3,"method":"session.issueTx","params":[{"tx":"`+tx0+`"}]}]`,
	)
	return bodies
}

// TestDirectMatchesGorilla: the write methods answer the same through the
// direct dispatch as through gorilla/rpc, every outcome included
// (admitted, refused, a type another method takes, a panic).
func TestDirectMatchesGorilla(t *testing.T) {
	direct, general := handlerPair(t)
	outcomes := map[string]bool{}
	for _, body := range directBodies(t) {
		out := sameAnswer(t, direct, general, []byte(body))
		for _, s := range []string{`"result"`, fmt.Sprintf(`"code":%d`, CodeMempoolFull), fmt.Sprintf(`"code":%d`, CodeBadNonce), `"code":-32603`, `takes `} {
			if bytes.Contains(out, []byte(s)) {
				outcomes[s] = true
			}
		}
	}
	if len(outcomes) != 5 {
		t.Errorf("outcomes seen: %v; want results, mempool full, bad nonce, internal errors and type refusals", outcomes)
	}
}

func FuzzDirectMatchesGorilla(f *testing.F) {
	for _, body := range directBodies(f) {
		f.Add([]byte(body))
	}
	direct, general := handlerPair(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		sameAnswer(t, direct, general, body)
	})
}

// TestTxMethodsComplete: every method that takes TxArgs is in txMethods,
// and nothing else is.
func TestTxMethodsComplete(t *testing.T) {
	typ := reflect.TypeOf(&rpcService{})
	seen := 0
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if m.Type.NumIn() != 4 || m.Type.In(2) != reflect.TypeOf(&TxArgs{}) {
			continue
		}
		name := Namespace + "." + strings.ToLower(m.Name[:1]) + m.Name[1:]
		if _, ok := txMethods[name]; !ok {
			t.Errorf("%s takes TxArgs but is not in txMethods", name)
		}
		seen++
	}
	if seen != len(txMethods) {
		t.Errorf("%d methods take TxArgs; txMethods lists %d", seen, len(txMethods))
	}
}

// TestEncodeTxResult: the direct path's reply encoder writes what
// encodeResult writes for the TxReply of the same transaction (the
// session and channel IDs of the creating types included).
func TestEncodeTxResult(t *testing.T) {
	for _, s := range directSamples(t) {
		for _, id := range []string{"1", `"abc"`, "null", "-2.5e3"} {
			r := txReplyOf(s)
			want, e := encodeResult([]byte(id), &r)
			if e != nil {
				t.Fatal(e)
			}
			if got := encodeTxResult([]byte(id), s); !bytes.Equal(got, want) {
				t.Fatalf("%s:\nencodeTxResult %s\nencodeResult   %s", s.Type(), got, want)
			}
		}
	}
}
