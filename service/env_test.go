package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	"github.com/luxfi/log"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/keyfiletest"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// TestMain silences the luxfi/log global logger and lowers the work factor
// of the identity files the tests write (keyfiletest; set once, since tests
// run in parallel).
func TestMain(m *testing.M) {
	log.SetDefault(log.NewNoOpLogger())
	log.SetGlobalLogger(log.NewNoOpLogger())
	keyfiletest.SetWorkFactor(keyfiletest.MinWorkFactor)
	os.Exit(m.Run())
}

// genesisTime is the genesis timestamp of the test chains (Unix seconds).
const genesisTime = 1_767_225_600

var (
	identitiesOnce sync.Once
	testIDs        []*crypto.Identity
)

// identity returns test identity i (0..7), derived from a fixed seed.
// Identities 0, 1 and 2 (alice, bob, carol) are in the test genesis; the
// others are not registered.
func identity(t testing.TB, i int) *crypto.Identity {
	t.Helper()
	identitiesOnce.Do(func() { testIDs = vmtest.Identities(0x5e, 8) })
	return testIDs[i]
}

func genesisJSON(t testing.TB, cfg map[string]any, initial ...*crypto.Identity) []byte {
	t.Helper()
	b, err := vmtest.GenesisJSON(genesisTime, cfg, initial...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testClock is a settable clock.
type testClock = vmtest.Clock

// env is an in-process VM with the service handler behind an httptest
// server, and a Client of it.
type env struct {
	t      testing.TB
	vm     *vm.VM
	clock  *testClock
	srv    *httptest.Server
	h      http.Handler
	client *Client
	alice  *crypto.Identity
	bob    *crypto.Identity
	carol  *crypto.Identity
}

type envOpts struct {
	cfg        map[string]any // chain config
	nodeConfig string         // vm.NodeConfig JSON
	handler    Options        // the handler's Options
}

func newEnv(t testing.TB) *env { return newEnvWith(t, envOpts{}) }

func newEnvWith(t testing.TB, o envOpts) *env {
	t.Helper()
	clock := vmtest.NewClock(time.Unix(genesisTime+60, 0))
	v := vm.New(vm.WithClock(clock.Now), vm.WithHandler(NewHandlerWith(o.handler)))
	gen := genesisJSON(t, o.cfg, identity(t, 0), identity(t, 1), identity(t, 2))
	var nodeCfg []byte
	if o.nodeConfig != "" {
		nodeCfg = []byte(o.nodeConfig)
	}
	if err := v.Initialize(context.Background(), nil, memdb.New(), gen, nil, nodeCfg, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	hs, err := v.CreateHandlers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h := hs["/rpc"]
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		srv.Close()
		_ = v.Shutdown(context.Background())
	})
	return &env{
		t: t, vm: v, clock: clock, srv: srv, h: h,
		client: NewClient(srv.URL, WithTimeout(10*time.Second), WithPollInterval(time.Millisecond), WithClock(clock.Now)),
		alice:  identity(t, 0), bob: identity(t, 1), carol: identity(t, 2),
	}
}

// accept builds, verifies and accepts one block.
func (e *env) accept() *vm.Block {
	e.t.Helper()
	e.clock.Advance(time.Second)
	b, err := e.vm.BuildAndAccept(context.Background())
	if err != nil {
		e.t.Fatalf("BuildAndAccept: %v", err)
	}
	return b
}

// signed signs payload as id with the node's next nonce (plus skip).
func (e *env) signed(id *crypto.Identity, p tx.Payload) []byte {
	e.t.Helper()
	n, err := e.client.Nonce(context.Background(), id.SessionID)
	if err != nil {
		e.t.Fatal(err)
	}
	t, err := tx.Sign(id, e.vm.ChainID(), n, p)
	if err != nil {
		e.t.Fatal(err)
	}
	return t.Bytes()
}

// session creates a session of creator with others, who all accept it
// (they are strangers: it reaches them as a message request), and accepts
// the blocks.
func (e *env) session(creator *crypto.Identity, others ...*crypto.Identity) ids.ID {
	e.t.Helper()
	var ps []string
	for _, o := range others {
		ps = append(ps, o.SessionID)
	}
	r, err := e.client.CreateSession(context.Background(), creator, ps...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.accept()
	for _, o := range others {
		if _, err := e.client.AcceptSession(context.Background(), o, r.Session); err != nil {
			e.t.Fatal(err)
		}
	}
	e.accept()
	return r.Session
}

// channel creates and accepts a channel of owner.
func (e *env) channel(owner *crypto.Identity, name string) ids.ID {
	e.t.Helper()
	r, err := e.client.CreateChannel(context.Background(), owner, name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.accept()
	return r.Channel
}

// rawResponse is a decoded JSON-RPC response, strictly checked.
type rawResponse struct {
	Status  int
	Header  http.Header
	JSONRPC string          `json:"jsonrpc"`
	Result  json.RawMessage `json:"result"`
	Error   *Error          `json:"error"`
	ID      json.RawMessage `json:"id"`
}

// post sends body to the handler and checks that the answer is a
// well-formed JSON-RPC 2.0 response: never a 500, JSON content type,
// exactly one of result and error.
func post(t testing.TB, h http.Handler, method, contentType string, body []byte) *rawResponse {
	t.Helper()
	req := httptest.NewRequest(method, "/rpc", bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	res := rec.Result()
	data, _ := io.ReadAll(res.Body)
	r, err := checkResponse(res.StatusCode, res.Header, data)
	if err != nil {
		t.Fatalf("%s %q: %v", method, truncate(body), err)
	}
	return r
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func checkResponse(status int, header http.Header, data []byte) (*rawResponse, error) {
	switch status {
	case http.StatusOK, http.StatusBadRequest, http.StatusMethodNotAllowed,
		http.StatusUnsupportedMediaType, http.StatusRequestEntityTooLarge, http.StatusServiceUnavailable:
	default:
		return nil, errors.New("unexpected HTTP status " + http.StatusText(status) + ": " + string(data))
	}
	if ct := header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		return nil, errors.New("content type " + ct)
	}
	if !utf8.Valid(data) {
		return nil, errors.New("the response is not valid UTF-8")
	}
	var r rawResponse
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, errors.New("not a JSON-RPC response: " + err.Error() + ": " + string(data))
	}
	if dec.More() {
		return nil, errors.New("trailing data after the response")
	}
	r.Status, r.Header = status, header
	if r.JSONRPC != "2.0" {
		return nil, errors.New("jsonrpc is not 2.0")
	}
	if (r.Error == nil) == (len(r.Result) == 0) {
		return nil, errors.New("need exactly one of result and error: " + string(data))
	}
	if r.Error != nil && (r.Error.Message == "" || r.Error.Code == 0) {
		return nil, errors.New("error without code or message")
	}
	if len(r.ID) == 0 {
		return nil, errors.New("missing id")
	}
	if r.Error == nil && status != http.StatusOK {
		return nil, errors.New("result with a non-200 status")
	}
	return &r, nil
}

func mustCode(t testing.TB, err error, want ErrorCode) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want code %d (%s)", want, want)
	}
	got, ok := CodeOf(err)
	if !ok {
		t.Fatalf("error %v is not an *Error, want code %d (%s)", err, want, want)
	}
	if got != want {
		t.Fatalf("code %d (%s), want %d (%s): %v", got, got, want, want, err)
	}
}
