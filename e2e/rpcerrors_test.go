package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/luxfi/session/service"
)

// TestJSONRPCErrors sends bad requests over real HTTP: each gets a JSON-RPC
// error object with the documented HTTP status and code, never a 500, a
// non-JSON body or a hung request; and the node still serves afterwards.
func TestJSONRPCErrors(t *testing.T) {
	t.Parallel()
	proc := StartProcess(t, sessiondBin, t.TempDir())
	hc := &http.Client{Timeout: 15 * time.Second}
	post := func(contentType string, body []byte) (int, *service.Error, json.RawMessage) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, proc.URL, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("POST %.80q: %v", body, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		var res struct {
			JSONRPC string          `json:"jsonrpc"`
			Error   *service.Error  `json:"error"`
			Result  json.RawMessage `json:"result"`
			ID      json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" {
			t.Fatalf("POST %.80q: HTTP %d, not a JSON-RPC response: %.300q", body, resp.StatusCode, data)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("POST %.80q: Content-Type %q", body, ct)
		}
		return resp.StatusCode, res.Error, res.ID
	}
	req := func(method, params string) []byte {
		return []byte(`{"jsonrpc":"2.0","id":7,"method":"` + method + `","params":` + params + `}`)
	}

	cases := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		code        service.ErrorCode
	}{
		{"malformed JSON", "application/json", []byte(`{"jsonrpc":"2.0","id":1,"method":"session.status",`), 400, service.CodeParseError},
		{"not JSON at all", "application/json", []byte("hello"), 400, service.CodeParseError},
		{"empty body", "application/json", nil, 400, service.CodeParseError},
		{"empty batch", "application/json", []byte(`[]`), 400, service.CodeInvalidRequest},
		{"no jsonrpc version", "application/json", []byte(`{"id":1,"method":"session.status"}`), 400, service.CodeInvalidRequest},
		{"invalid notification", "application/json", []byte(`{"jsonrpc":"1.0","method":"session.status"}`), 400, service.CodeInvalidRequest},
		{"unknown method", "application/json", req("session.noSuchMethod", "{}"), 200, service.CodeMethodNotFound},
		{"unknown namespace", "application/json", req("eth.blockNumber", "[]"), 200, service.CodeMethodNotFound},
		{"wrong type: number for an ID", "application/json", req("session.getMessages", `{"session":123}`), 200, service.CodeInvalidParams},
		{"wrong type: string for a limit", "application/json", req("session.getInbox", `{"sessionId":"07","limit":"ten"}`), 200, service.CodeInvalidParams},
		{"wrong type: object for tx bytes", "application/json", req("session.issueTx", `{"tx":{}}`), 200, service.CodeInvalidParams},
		{"wrong type: params a string", "application/json", req("session.status", `"x"`), 400, service.CodeInvalidRequest},
		{"unknown field", "application/json", req("session.getSession", `{"session":"x","extra":1}`), 200, service.CodeInvalidParams},
		{"bad base64", "application/json", req("session.issueTx", `{"tx":"!!!"}`), 200, service.CodeInvalidParams},
		{"garbage transaction", "application/json", req("session.issueTx", `{"tx":"AAAA"}`), 200, service.CodeInvalidTx},
		{"bad Session ID", "application/json", req("session.getIdentity", `{"sessionId":"zz"}`), 200, service.CodeInvalidParams},
		{"unknown session", "application/json", req("session.getSession", `{"session":"11111111111111111111111111111111LpoYY"}`), 200, service.CodeUnknownSession},
		{"wrong Content-Type", "text/plain", req("session.status", "{}"), 415, service.CodeInvalidRequest},
		{"no Content-Type", "", req("session.status", "{}"), 415, service.CodeInvalidRequest},
		{"oversize body", "application/json", oversize(), 413, service.CodeTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, rpcErr, _ := post(tc.contentType, tc.body)
			if status == http.StatusInternalServerError {
				t.Fatalf("HTTP 500")
			}
			if rpcErr == nil {
				t.Fatalf("HTTP %d without an error object", status)
			}
			if status != tc.status || rpcErr.Code != tc.code {
				t.Fatalf("HTTP %d, code %d (%s), want HTTP %d, code %d (%s)",
					status, rpcErr.Code, rpcErr.Message, tc.status, tc.code, tc.code)
			}
			if rpcErr.Message == "" {
				t.Fatalf("empty error message")
			}
		})
	}

	// The request ID is echoed on errors of well-formed requests.
	if _, e, id := post("application/json", req("session.nope", "{}")); e == nil || string(id) != "7" {
		t.Fatalf("unknown method: id %s, error %v", id, e)
	}
	// Other HTTP methods are refused with a JSON-RPC error too.
	resp, err := hc.Get(proc.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: HTTP %d, want 405", resp.StatusCode)
	}
	// A body that stops early does not hang the server past the client's
	// patience: the server answers or closes.
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"jsonrpc":"2.0","id":1,`))
		time.Sleep(200 * time.Millisecond)
		_ = pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	r2, err := http.NewRequest(http.MethodPost, proc.URL, pr)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Do(r2); err == nil {
		resp.Body.Close()
	}

	// Still healthy and serving.
	if err := WaitHealthy(proc.URL, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := newClient(proc.URL).Status(ctx(t, 5*time.Second))
	if err != nil || st.Height != 0 {
		t.Fatalf("status after the bad requests: %+v, %v", st, err)
	}
}

// oversize returns a syntactically plausible request just over
// service.MaxBodySize.
func oversize() []byte {
	head := `{"jsonrpc":"2.0","id":1,"method":"session.issueTx","params":{"tx":"`
	tail := `"}}`
	pad := service.MaxBodySize + 1024 - len(head) - len(tail)
	return []byte(head + strings.Repeat("A", pad) + tail)
}
