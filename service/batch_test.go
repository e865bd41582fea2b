package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/luxfi/session/vm/tx"
)

// postRaw sends body to the handler and returns the status and body.
func postRaw(t testing.TB, h http.Handler, body []byte) (int, http.Header, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	data, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, data
}

// postBatch sends a batch and checks that the answer is an array of
// well-formed JSON-RPC responses.
func postBatch(t testing.TB, h http.Handler, body []byte) []*rawResponse {
	t.Helper()
	status, header, data := postRaw(t, h, body)
	if status != http.StatusOK {
		t.Fatalf("batch %q: HTTP %d: %s", truncate(body), status, data)
	}
	if ct := header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("batch: content type %q", ct)
	}
	if !utf8.Valid(data) {
		t.Fatal("batch response is not valid UTF-8")
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		t.Fatalf("batch response is not an array: %v: %s", err, truncate(data))
	}
	out := make([]*rawResponse, len(raws))
	for i, raw := range raws {
		r, err := checkResponse(http.StatusOK, header, raw)
		if err != nil {
			t.Fatalf("batch response %d: %v", i, err)
		}
		out[i] = r
	}
	return out
}

func reqJSON(id, method, params string) string {
	s := `{"jsonrpc":"2.0","method":"session.` + method + `"`
	if params != "" {
		s += `,"params":` + params
	}
	if id != "" {
		s += `,"id":` + id
	}
	return s + "}"
}

// TestBatch: calls run in order (dependent transactions of one author in
// one batch), each gets its response in its place, invalid elements get
// errors, notifications run without a response.
func TestBatch(t *testing.T) {
	e := newEnv(t)
	sess := e.session(e.alice, e.bob)
	n0, err := e.client.Nonce(context.Background(), e.alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	send := func(nonce uint64, text string) string {
		s, err := tx.Sign(e.alice, e.vm.ChainID(), nonce, &tx.SendMessage{Session: sess, Ciphertext: []byte(text)})
		if err != nil {
			t.Fatal(err)
		}
		return `{"tx":"` + base64.StdEncoding.EncodeToString(s.Bytes()) + `"}`
	}
	nonce := `{"sessionId":"` + e.alice.SessionID + `"}`
	calls := []string{
		reqJSON(`"a"`, "sendMessage", send(n0, "one")),
		reqJSON(`2`, "issueTx", send(n0+1, "two")),
		reqJSON(``, "sendMessage", send(n0+2, "three, a notification")),
		reqJSON(`3`, "getNonce", nonce),
		`1`,
		reqJSON(`4`, "nope", ""),
		reqJSON(`5`, "getMessages", `{"session":"!!"}`),
		reqJSON(`6`, "sendMessage", send(n0+2, "replayed nonce")),
		`{"jsonrpc":"2.0","id":7}`,
		reqJSON(``, "nope", ""), // a notification: even its error is not answered
	}
	rs := postBatch(t, e.h, []byte("[\n"+strings.Join(calls, ",\n")+"\n]"))
	want := []struct {
		id   string
		code ErrorCode
	}{{`"a"`, 0}, {"2", 0}, {"3", 0}, {"null", CodeInvalidRequest}, {"4", CodeMethodNotFound},
		{"5", CodeInvalidParams}, {"6", CodeBadNonce}, {"7", CodeInvalidRequest}}
	if len(rs) != len(want) {
		t.Fatalf("%d responses, want %d", len(rs), len(want))
	}
	for i, w := range want {
		r := rs[i]
		if string(r.ID) != w.id {
			t.Errorf("response %d: id %s, want %s", i, r.ID, w.id)
		}
		if w.code == 0 && r.Error != nil || w.code != 0 && (r.Error == nil || r.Error.Code != w.code) {
			t.Errorf("response %d (id %s): error %+v, want code %d", i, r.ID, r.Error, w.code)
		}
	}
	// The notification's transaction was admitted after the two before
	// it: getNonce, after it, counts three.
	var nr NonceReply
	if err := json.Unmarshal(rs[2].Result, &nr); err != nil || nr.Nonce != n0+3 {
		t.Fatalf("getNonce in the batch: %s (%v), want nonce %d", rs[2].Result, err, n0+3)
	}
	e.accept()
	page, err := e.client.Messages(context.Background(), sess, 0, 10)
	if err != nil || len(page.Messages) != 3 {
		t.Fatalf("messages: %+v, %v", page, err)
	}
}

// TestNotifications: a notification, alone or a batch of them, runs and
// gets no response (HTTP 204, empty body).
func TestNotifications(t *testing.T) {
	e := newEnv(t)
	sess := e.session(e.alice, e.bob)
	sign := func(text string) string {
		return `{"tx":"` + base64.StdEncoding.EncodeToString(e.signed(e.alice, &tx.SendMessage{Session: sess, Ciphertext: []byte(text)})) + `"}`
	}
	for _, body := range []func() string{
		func() string { return reqJSON("", "sendMessage", sign("alone")) },
		func() string {
			return "[" + reqJSON("", "sendMessage", sign("in a batch")) + "," + reqJSON("", "status", "") + "]"
		},
	} {
		body := body()
		status, _, data := postRaw(t, e.h, []byte(body))
		if status != http.StatusNoContent || len(data) != 0 {
			t.Fatalf("%.60q: HTTP %d, body %q; want 204 and no body", body, status, data)
		}
	}
	e.accept()
	page, err := e.client.Messages(context.Background(), sess, 0, 10)
	if err != nil || len(page.Messages) != 2 {
		t.Fatalf("the notifications' messages: %+v, %v", page, err)
	}
}

// TestBatchBounds: more than MaxBatchCalls calls, or more than
// MaxBodySize bytes, is refused as a whole.
func TestBatchBounds(t *testing.T) {
	e := newEnv(t)
	one := reqJSON("1", "status", "")
	for _, tc := range []struct {
		body   string
		status int
		code   ErrorCode
	}{
		{"[" + strings.Repeat(one+",", MaxBatchCalls-1) + one + "]", 200, 0},
		{"[" + strings.Repeat(one+",", MaxBatchCalls) + one + "]", 413, CodeTooLarge},
		{"[" + strings.Repeat(" ", MaxBodySize) + one + "]", 413, CodeTooLarge},
		{"[]", 400, CodeInvalidRequest},
	} {
		if tc.status == 200 {
			if rs := postBatch(t, e.h, []byte(tc.body)); len(rs) != MaxBatchCalls {
				t.Fatalf("%d responses to %d calls", len(rs), MaxBatchCalls)
			}
			continue
		}
		r := post(t, e.h, http.MethodPost, "application/json", []byte(tc.body))
		if r.Status != tc.status || r.Error == nil || r.Error.Code != tc.code {
			t.Fatalf("%.40q…: HTTP %d, %+v; want %d, code %d", tc.body, r.Status, r.Error, tc.status, tc.code)
		}
	}
}

// TestClientBatch: IssueTxs submits many transactions of one author in
// nonce order, split into requests within the node's bounds, and reports
// each refusal in its place.
func TestClientBatch(t *testing.T) {
	e := newEnvWith(t, envOpts{nodeConfig: `{"mempoolTxs": 10000, "maxPendingPerAuthor": 10000}`})
	ctx := context.Background()
	sess := e.session(e.alice, e.bob)
	n0, err := e.client.Nonce(ctx, e.alice.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	// 600 transactions of ~4.5 KB: more than MaxBatchCalls and more than
	// MaxBodySize per request, so three or more requests.
	const n = 600
	var signed [][]byte
	for i := 0; i < n; i++ {
		s, err := tx.Sign(e.alice, e.vm.ChainID(), n0+uint64(i), &tx.SendMessage{Session: sess, Ciphertext: make([]byte, 200)})
		if err != nil {
			t.Fatal(err)
		}
		signed = append(signed, s.Bytes())
	}
	bad := bytes.Clone(signed[n-1])
	bad[len(bad)-1] ^= 1 // signature broken
	signed = append(signed, signed[0], bad)
	res, err := e.client.IssueTxs(ctx, signed)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != n+2 {
		t.Fatalf("%d results", len(res))
	}
	for i := 0; i < n; i++ {
		if res[i].Err != nil || res[i].Reply.Nonce != n0+uint64(i) || res[i].Reply.Type != "sendMessage" {
			t.Fatalf("tx %d: %+v, %v", i, res[i].Reply, res[i].Err)
		}
	}
	if !errors.Is(res[n].Err, ErrDuplicateTx) {
		t.Fatalf("the duplicate: %v", res[n].Err)
	}
	if res[n+1].Err == nil {
		t.Fatal("the forged transaction was admitted")
	}

	// Batch with reads: results decoded in place, errors per call.
	var st StatusReply
	var nr NonceReply
	calls := []BatchCall{
		{Method: "status", Result: &st},
		{Method: "getNonce", Params: SessionIDArgs{SessionID: e.alice.SessionID}, Result: &nr},
		{Method: "getSession", Params: SessionArgs{Session: "nope"}},
	}
	if err := e.client.Batch(ctx, calls); err != nil {
		t.Fatal(err)
	}
	if calls[0].Err != nil || st.ChainID != e.vm.ChainID() || calls[1].Err != nil || nr.Nonce != n0+n {
		t.Fatalf("batch reads: %v %+v %v %+v", calls[0].Err, st, calls[1].Err, nr)
	}
	if !IsInvalidParams(calls[2].Err) {
		t.Fatalf("getSession of a malformed ID: %v", calls[2].Err)
	}
}

// TestClientRetriesBusy: a call or a batch the node answers busy is sent
// again (the node ran nothing, or could not hold a read's response), up to
// WithBusyRetries times; a batch refused as a whole keeps the calls after
// it back, so nonce order holds.
func TestClientRetriesBusy(t *testing.T) {
	e := newEnv(t)
	busyFirst := 0 // requests to answer busy before serving
	var seen []string
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		seen = append(seen, string(body))
		if busyFirst > 0 {
			busyFirst--
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32015,"message":"busy"}}`))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.h.ServeHTTP(w, r)
	}))
	defer front.Close()
	ctx := context.Background()

	c := NewClient(front.URL, WithTimeout(10*time.Second))
	busyFirst = 2
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status after two busy answers: %v", err)
	}
	if len(seen) != 3 {
		t.Fatalf("%d requests, want 3", len(seen))
	}
	busyFirst = 1
	if _, err := NewClient(front.URL, WithBusyRetries(0)).Status(ctx); !errors.Is(err, ErrBusy) || !IsRetryable(err) {
		t.Fatalf("without retries: %v", err)
	}

	// A batch of 300 writes of one author goes in two requests; the first
	// is refused as a whole, the second must not be sent before it.
	sess := e.session(e.alice, e.bob)
	n0, _ := e.client.Nonce(ctx, e.alice.SessionID)
	var signed [][]byte
	for i := 0; i < 300; i++ {
		s, err := tx.Sign(e.alice, e.vm.ChainID(), n0+uint64(i), &tx.SendMessage{Session: sess, Ciphertext: []byte("x")})
		if err != nil {
			t.Fatal(err)
		}
		signed = append(signed, s.Bytes())
	}
	seen, busyFirst = nil, 1
	res, err := NewClient(front.URL, WithTimeout(20*time.Second)).IssueTxs(ctx, signed)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("tx %d: %v", i, r.Err)
		}
	}
	if len(seen) != 3 {
		t.Fatalf("%d requests, want 3 (busy, then the two batches in order)", len(seen))
	}
}
