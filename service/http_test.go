package service

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/luxfi/session/vm/tx"
)

// TestHTTPProtocol sends malformed requests of every kind: each gets a
// well-formed JSON-RPC error with the documented HTTP status and code.
func TestHTTPProtocol(t *testing.T) {
	e := newEnv(t)
	const ok = `{"jsonrpc":"2.0","id":1,"method":"session.status"}`
	for _, tc := range []struct {
		name        string
		method      string
		contentType string
		body        string
		status      int
		code        ErrorCode // 0: success
		id          string    // the echoed id
	}{
		{"ok", "POST", "application/json", ok, 200, 0, "1"},
		{"ok charset", "POST", "application/json; charset=UTF-8", ok, 200, 0, "1"},
		{"no content type", "POST", "", ok, 415, CodeInvalidRequest, "null"},
		{"ok string id", "POST", "application/json", `{"jsonrpc":"2.0","id":"abc","method":"session.status"}`, 200, 0, `"abc"`},
		{"ok null id", "POST", "application/json", `{"jsonrpc":"2.0","id":null,"method":"session.status"}`, 200, 0, "null"},
		{"ok null params", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":null}`, 200, 0, "1"},
		{"ok array params", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":[{}]}`, 200, 0, "1"},
		{"ok empty array params", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":[]}`, 200, 0, "1"},
		{"ok whitespace", "POST", "application/json", "\n\t " + ok + " \n", 200, 0, "1"},
		{"GET", "GET", "", "", 405, CodeInvalidRequest, "null"},
		{"PUT", "PUT", "application/json", ok, 405, CodeInvalidRequest, "null"},
		{"text/plain", "POST", "text/plain", ok, 415, CodeInvalidRequest, "null"},
		{"form", "POST", "application/x-www-form-urlencoded", ok, 415, CodeInvalidRequest, "null"},
		{"bad content type", "POST", ";;;", ok, 415, CodeInvalidRequest, "null"},
		{"empty body", "POST", "application/json", "", 400, CodeParseError, "null"},
		{"not JSON", "POST", "application/json", "hello", 400, CodeParseError, "null"},
		{"truncated", "POST", "application/json", ok[:20], 400, CodeParseError, "null"},
		{"two objects", "POST", "application/json", ok + ok, 400, CodeParseError, "null"},
		{"invalid UTF-8", "POST", "application/json", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}", 200, CodeMethodNotFound, "1"},
		{"invalid UTF-8 id", "POST", "application/json", "{\"jsonrpc\":\"2.0\",\"id\":\"a\xffb\",\"method\":\"session.status\"}", 400, CodeInvalidRequest, "null"},
		{"invalid UTF-8 id escaped", "POST", "application/json", `{"jsonrpc":"2.0","id":"a\u00ffb","method":"session.status"}`, 200, 0, `"a\u00ffb"`},
		{"empty batch", "POST", "application/json", "[]", 400, CodeInvalidRequest, "null"},
		{"empty batch spaced", "POST", "application/json", " [ ] ", 400, CodeInvalidRequest, "null"},
		{"batch not JSON", "POST", "application/json", "[" + ok + ",", 400, CodeParseError, "null"},
		{"batch trailing", "POST", "application/json", "[" + ok + "]x", 400, CodeParseError, "null"},
		{"batch too many", "POST", "application/json", "[" + strings.Repeat(ok+",", MaxBatchCalls) + ok + "]", 413, CodeTooLarge, "null"},
		{"string", "POST", "application/json", `"session.status"`, 400, CodeInvalidRequest, "null"},
		{"number", "POST", "application/json", `42`, 400, CodeInvalidRequest, "null"},
		{"null", "POST", "application/json", `null`, 400, CodeInvalidRequest, "null"},
		{"no jsonrpc", "POST", "application/json", `{"id":1,"method":"session.status"}`, 400, CodeInvalidRequest, "1"},
		{"jsonrpc 1.0", "POST", "application/json", `{"jsonrpc":"1.0","id":1,"method":"session.status"}`, 400, CodeInvalidRequest, "1"},
		{"jsonrpc number", "POST", "application/json", `{"jsonrpc":2.0,"id":1,"method":"session.status"}`, 400, CodeInvalidRequest, "1"},
		{"invalid notification", "POST", "application/json", `{"jsonrpc":"1.0","method":"session.status"}`, 400, CodeInvalidRequest, "null"},
		{"object id", "POST", "application/json", `{"jsonrpc":"2.0","id":{},"method":"session.status"}`, 400, CodeInvalidRequest, "null"},
		{"bool id", "POST", "application/json", `{"jsonrpc":"2.0","id":true,"method":"session.status"}`, 400, CodeInvalidRequest, "null"},
		{"no method", "POST", "application/json", `{"jsonrpc":"2.0","id":1}`, 400, CodeInvalidRequest, "1"},
		{"method number", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":7}`, 400, CodeInvalidRequest, "1"},
		{"empty method", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":""}`, 400, CodeInvalidRequest, "1"},
		{"params string", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":"x"}`, 400, CodeInvalidRequest, "1"},
		{"unknown method", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.nope"}`, 200, CodeMethodNotFound, "1"},
		{"Go method name", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.Status"}`, 200, CodeMethodNotFound, "1"},
		{"other namespace", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"eth.status"}`, 200, CodeMethodNotFound, "1"},
		{"no namespace", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"status"}`, 200, CodeMethodNotFound, "1"},
		{"params numbers", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":[1,2]}`, 200, CodeInvalidParams, "1"},
		{"wrong type", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.getMessages","params":{"session":1}}`, 200, CodeInvalidParams, "1"},
		{"deep nesting", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.status","params":{"a":` + strings.Repeat("[", 5000) + strings.Repeat("]", 5000) + `}}`, 200, CodeInvalidParams, "1"},
		{"too large", "POST", "application/json", `{"jsonrpc":"2.0","id":1,"method":"session.issueTx","params":{"tx":"` + strings.Repeat("A", MaxBodySize) + `"}}`, 413, CodeTooLarge, "null"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := post(t, e.h, tc.method, tc.contentType, []byte(tc.body))
			if r.Status != tc.status {
				t.Errorf("HTTP %d, want %d", r.Status, tc.status)
			}
			if tc.code == 0 && r.Error != nil {
				t.Errorf("error %+v", r.Error)
			}
			if tc.code != 0 && (r.Error == nil || r.Error.Code != tc.code) {
				t.Errorf("error %+v, want code %d", r.Error, tc.code)
			}
			if string(r.ID) != tc.id {
				t.Errorf("id %s, want %s", r.ID, tc.id)
			}
			if tc.status == 405 && r.Header.Get("Allow") != "POST" {
				t.Error("405 without Allow: POST")
			}
		})
	}
}

// TestSlowAndConcurrent: a client that stalls in the middle of its body
// does not hold others up, and gets its answer when the body ends.
func TestSlowAndConcurrent(t *testing.T) {
	e := newEnv(t)
	pr, pw := io.Pipe()
	slow := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL, pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slow <- 0
			return
		}
		resp.Body.Close()
		slow <- resp.StatusCode
	}()
	if _, err := pw.Write([]byte(`{"jsonrpc":"2.0",`)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.client.Status(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	select {
	case code := <-slow:
		t.Fatalf("the stalled request completed early: %d", code)
	default:
	}
	pw.Close() // the body ends, truncated
	select {
	case code := <-slow:
		if code != http.StatusBadRequest {
			t.Fatalf("truncated body: HTTP %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no answer after the body ended")
	}
}

// TestOversizeThroughClient: the typed client reports a body over the
// limit as CodeTooLarge.
func TestOversizeThroughClient(t *testing.T) {
	e := newEnv(t)
	err := e.client.Call(context.Background(), "issueTx", TxArgs{Tx: make([]byte, MaxBodySize)}, nil)
	mustCode(t, err, CodeTooLarge)
}

// FuzzHandler: any body, any content type, never a panic, a 500 or a
// malformed answer; always exactly one JSON-RPC 2.0 response.
func FuzzHandler(f *testing.F) {
	e := newEnv(f)
	sess := e.session(e.alice, e.bob)
	signed, _ := tx.Sign(e.bob, e.vm.ChainID(), 0, &tx.SendMessage{Session: sess, Ciphertext: []byte("fuzz")})
	for _, m := range Methods {
		f.Add(fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"session.%s","params":{}}`, m), uint8(0))
	}
	for _, p := range []string{
		`{"session":"` + sess.String() + `","after":0,"limit":5}`,
		`{"sessionId":"` + e.alice.SessionID + `"}`,
		`{"tx":"` + b64(signed.Bytes()) + `"}`,
		`{"channel":"` + sess.String() + `","membersAfter":"` + e.bob.SessionID + `"}`,
		`[{"txID":"` + signed.ID().String() + `"}]`,
	} {
		for _, m := range []string{"getMessages", "getSession", "getInbox", "getIdentity", "getNonce", "issueTx", "sendMessage", "getChannel", "getTxStatus"} {
			f.Add(`{"jsonrpc":"2.0","id":"q","method":"session.`+m+`","params":`+p+`}`, uint8(1))
		}
	}
	for _, s := range []string{"", "{", "[]", "null", `{"jsonrpc":"2.0"}`, `[{"jsonrpc":"2.0","id":1,"method":"session.status"}]`, "\x00\xff"} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, body string, ctSel uint8) {
		ct := []string{"application/json", "", "text/plain", "application/json; charset=utf-8"}[ctSel%4]
		method := http.MethodPost
		if ctSel >= 200 {
			method = http.MethodGet
		}
		if method == http.MethodPost && answersNothing(body) {
			// Notifications only: 204 and no body, or an error response.
			req := httptest.NewRequest(method, "/rpc", strings.NewReader(body))
			req.Header.Set("Content-Type", ct)
			rec := httptest.NewRecorder()
			e.h.ServeHTTP(rec, req)
			if rec.Code == http.StatusNoContent {
				if rec.Body.Len() != 0 {
					t.Fatalf("204 with a body for %q: %q", truncate([]byte(body)), rec.Body.Bytes())
				}
				return
			}
		}
		r := post(t, e.h, method, ct, []byte(body))
		if r.Error != nil && r.Error.Code == CodeInternal {
			t.Fatalf("internal error for %q: %s", truncate([]byte(body)), r.Error.Message)
		}
	})
}

// answersNothing reports whether body is a JSON-RPC notification or a
// batch of them (objects without an id), which the handler may answer
// with 204 and no body.
func answersNothing(body string) bool {
	var v any
	if json.Unmarshal([]byte(body), &v) != nil {
		return false
	}
	isNote := func(x any) bool {
		m, ok := x.(map[string]any)
		if !ok {
			return false
		}
		_, hasID := m["id"]
		return !hasID
	}
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if !isNote(x) {
				return false
			}
		}
		return len(a) > 0
	}
	return isNote(v)
}

func b64(b []byte) string {
	s, _ := json.Marshal(b)
	return string(bytes.Trim(s, `"`))
}
