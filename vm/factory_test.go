package vm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"
	"github.com/luxfi/node/vms"

	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// The reference implementation's vm names that remain (REFERENCE-API.md),
// with their exact types, and the Lux node's factory interface.
var (
	_ func(*Factory, luxlog.Logger) (*VM, error)                  = (*Factory).New
	_ ids.ID                                                      = VMID
	_ func(*VM, context.Context) (interface{}, error)             = (*VM).HealthCheck
	_ func(*VM, ids.ID) (*Session, error)                         = (*VM).GetSession
	_ func(*VM, context.Context) (map[string]http.Handler, error) = (*VM).CreateHandlers
	_ func(*VM, context.Context) error                            = (*VM).Shutdown
	_ vms.Factory                                                 = NodeFactory{}
	_                                                             = [...]string{SessionPending, SessionActive, SessionExpired, SessionClosed, Name}
)

func TestVMID(t *testing.T) {
	var want ids.ID
	copy(want[:], Name)
	if VMID != want {
		t.Fatalf("VMID = %x, want %q zero-padded", VMID, Name)
	}
	if got := VMID.String(); got != "speKUgLBX6WRD5cfGeEfLa43LxTXUBckvtv4td6F3eTXvRP48" {
		t.Fatalf("VMID in CB58 = %s", got)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFactory makes VMs the way the reference's callers (Factory) and a Lux
// node (NodeFactory) do, initializes them and checks that the logger and
// the options reach the VM.
func TestFactory(t *testing.T) {
	var logs syncBuffer
	logger := luxlog.NewLoggerFromHandler(slog.NewTextHandler(&logs, nil))
	handlerMade := false
	opts := []Option{WithHandler(func(api API) (http.Handler, error) {
		handlerMade = true
		return newRPCHandler(api.(*VM))
	})}

	v, err := (&Factory{Options: opts}).New(logger)
	if err != nil || v == nil {
		t.Fatalf("Factory.New = %v, %v", v, err)
	}
	// Uninitialized until a node (or the embedding program) initializes it.
	if rep, err := v.HealthCheck(context.Background()); !errors.Is(err, ErrNotInitialized) || rep.(map[string]interface{})["healthy"] != false {
		t.Fatalf("HealthCheck of an uninitialized VM = %v, %v", rep, err)
	}
	if err := v.Initialize(context.Background(), nil, memdb.New(), genesisJSON(t, nil), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown(context.Background())
	if !strings.Contains(logs.String(), "sessionvm initialized") || !strings.Contains(logs.String(), v.ChainID().String()) {
		t.Fatalf("the factory's logger got %q", logs.String())
	}
	if _, err := v.CreateHandlers(context.Background()); err != nil || !handlerMade {
		t.Fatalf("the factory's options did not reach the VM: %v", err)
	}

	nv, err := NodeFactory{}.New(nil)
	if _, ok := nv.(*VM); !ok || err != nil {
		t.Fatalf("NodeFactory.New = %T, %v", nv, err)
	}
	if err := nv.(*VM).Initialize(context.Background(), nil, memdb.New(), genesisJSON(t, nil), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err) // a nil logger is allowed
	}
	_ = nv.(*VM).Shutdown(context.Background())
}

// TestHealthCheckMap checks the result of HealthCheck: a
// map[string]interface{} (what the reference returned, and what a Lux node
// marshals) with every field of the report under its JSON name and its Go
// value, so callers can assert "healthy" to a bool.
func TestHealthCheckMap(t *testing.T) {
	e := newEnv(t, nil)
	e.createSession(identity(t, 0), identity(t, 1))
	rep, err := e.vm.HealthCheck(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	m, ok := rep.(map[string]interface{})
	if !ok {
		t.Fatalf("HealthCheck returned %T, want map[string]interface{}", rep)
	}
	if healthy, ok := m["healthy"].(bool); !ok || !healthy {
		t.Fatalf(`m["healthy"] = %#v, want true`, m["healthy"])
	}
	if h, ok := m["height"].(uint64); !ok || h != 1 {
		t.Fatalf(`m["height"] = %#v, want uint64(1)`, m["height"])
	}
	typed, err := e.vm.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The same keys as the JSON of the typed report, and the same JSON.
	b, _ := json.Marshal(typed)
	var fromJSON map[string]any
	if err := json.Unmarshal(b, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if got, want := slices.Sorted(maps.Keys(m)), slices.Sorted(maps.Keys(fromJSON)); !slices.Equal(got, want) {
		t.Fatalf("map keys %v, JSON keys %v", got, want)
	}
	bm, _ := json.Marshal(m)
	var fromMap map[string]any
	_ = json.Unmarshal(bm, &fromMap)
	if !reflect.DeepEqual(fromMap, fromJSON) {
		t.Fatalf("map JSON %s, report JSON %s", bm, b)
	}

	// With free space watched, "disk" is there too, as in the JSON.
	g, err := NewDiskGuard(t.TempDir(), FixedReserve(1000), true)
	if err != nil {
		t.Fatal(err)
	}
	dv := New(WithDiskGuard(g))
	if err := dv.Initialize(context.Background(), nil, memdb.New(), genesisJSON(t, nil), nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer dv.Shutdown(context.Background())
	drep, err := dv.HealthCheck(context.Background())
	if d, ok := drep.(map[string]interface{})["disk"].(*DiskReport); err != nil || !ok || d.FreeBytes == 0 {
		t.Fatalf(`with a disk guard, m["disk"] = %#v (%v)`, drep.(map[string]interface{})["disk"], err)
	}

	// The minimal handler's session.health serves the same report.
	hs, err := newRPCHandler(e.vm)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/rpc", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"session.health"}`))
	req.Header.Set("Content-Type", "application/json")
	hs.ServeHTTP(w, req)
	if !strings.Contains(w.Body.String(), `"healthy":true`) || !strings.Contains(w.Body.String(), `"height":1`) {
		t.Fatalf("session.health: %s", w.Body)
	}

	// After Shutdown: an error and healthy false.
	_ = e.vm.Shutdown(context.Background())
	rep, err = e.vm.HealthCheck(context.Background())
	if err == nil || rep.(map[string]interface{})["healthy"] != false {
		t.Fatalf("after shutdown: %v, %v", rep, err)
	}
}

// TestGetSession reads a session the way code written against the
// reference does (GetSession, then ID.String() and Status).
func TestGetSession(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := identity(t, 0), identity(t, 1)
	id := e.createSession(alice, bob)
	s, err := e.vm.GetSession(id)
	if err != nil {
		t.Fatal(err)
	}
	if s.ID.String() != id.String() || s.Status != SessionActive || s.Creator != alice.SessionID ||
		!slices.Equal(s.Participants, []string{alice.SessionID, bob.SessionID}) || string(s.Metadata) != "meta" || s.LastSeq != 0 {
		t.Fatalf("GetSession = %+v", s)
	}
	if !s.Expires.Equal(s.Created.Add(86400e9)) {
		t.Fatalf("created %v, expires %v", s.Created, s.Expires)
	}
	e.do(bob, &tx.SendMessage{Session: id, Ciphertext: []byte("x")})
	e.do(bob, &tx.CloseSession{Session: id})
	if s, err = e.vm.GetSession(id); err != nil || s.Status != SessionClosed || s.LastSeq != 1 {
		t.Fatalf("after close: %+v, %v", s, err)
	}
	if _, err := e.vm.GetSession(ids.GenerateTestID()); !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("unknown session: %v", err)
	}
}
