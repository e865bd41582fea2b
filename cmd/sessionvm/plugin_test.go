package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/consensus/engine/chain/block"
	validators "github.com/luxfi/consensus/validator"
	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"
	"github.com/luxfi/metric"
	"github.com/luxfi/node/vms/rpcchainvm"
	lxruntime "github.com/luxfi/node/vms/rpcchainvm/runtime"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm"
	vmblock "github.com/luxfi/session/vm/block"
	vmgenesis "github.com/luxfi/session/vm/genesis"
	"github.com/luxfi/session/vm/tx"
)

// The plugin binary is built once per test binary, into a directory named
// like a node's plugin directory, under the VM ID.
var (
	pluginOnce sync.Once
	pluginDir  string
	pluginPath string
	pluginErr  error
)

func TestMain(m *testing.M) {
	// The plugin inherits the environment; keep its per-start info logs
	// out of the test output unless asked for.
	if os.Getenv("SESSIONVM_LOG_LEVEL") == "" {
		os.Setenv("SESSIONVM_LOG_LEVEL", "warn")
	}
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the plugin binary; skipped with -short")
	}
	pluginOnce.Do(func() {
		pluginDir, pluginErr = os.MkdirTemp("", "sessionvm-plugins-")
		if pluginErr != nil {
			return
		}
		pluginPath = filepath.Join(pluginDir, VMID().String())
		// go test puts its own GOROOT/bin first in the PATH of subprocesses.
		goTool := "go"
		cmd := exec.Command(goTool, "build", "-o", pluginPath, ".")
		out, err := cmd.CombinedOutput()
		if err != nil {
			pluginErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginPath
}

// pidTracker is the node's process tracker: it records the plugin's pid.
type pidTracker struct {
	mu   sync.Mutex
	pids map[int]bool
}

func (p *pidTracker) TrackProcess(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pids == nil {
		p.pids = map[int]bool{}
	}
	p.pids[pid] = true
}

func (p *pidTracker) UntrackProcess(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pids, pid)
}

func (p *pidTracker) tracked() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for pid := range p.pids {
		out = append(out, pid)
	}
	return out
}

// host is what a Lux node holds for one chain of the plugin.
type host struct {
	t       *testing.T
	client  *rpcchainvm.VMClient
	tracker *pidTracker
	pid     int
	rpc     http.Handler
	closed  bool
}

// hostLogger is the node-side logger; warnings and errors only, on stderr.
func hostLogger() luxlog.Logger {
	return luxlog.NewLoggerFromHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// load starts the plugin the way a node does and initializes a chain on
// db, with the node's *rpcchainvm.Context as chain context.
func load(t *testing.T, db database.Database, chainID ids.ID, genesis []byte) *host {
	t.Helper()
	return loadWith(t, db, &rpcchainvm.Context{
		NetworkID:      1337,
		ChainID:        chainID,
		NodeID:         ids.NodeID{1},
		Log:            hostLogger(),
		ValidatorState: testValidators,
	}, genesis)
}

// hostValidators is the validator state a node gives its chains (a
// validators.State of github.com/luxfi/consensus/validator; luxd v1.22.75
// gives a no-op one, every set empty). VMClient serves it to the plugin
// over gRPC, where the VM reads it to share its inbound gossip budget by
// stake. A host must give one: without it VMClient serves a nil state, and
// the host process crashes at the plugin's first reading.
type hostValidators map[ids.NodeID]uint64

// testValidators: this host's node ({1}) and two others.
var testValidators = hostValidators{{1}: 10, {7}: 20, {8}: 30}

var _ validators.State = hostValidators{}

func (hostValidators) GetCurrentHeight(context.Context) (uint64, error) { return 1, nil }

func (h hostValidators) GetValidatorSet(context.Context, uint64, ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	out := make(map[ids.NodeID]*validators.GetValidatorOutput, len(h))
	for id, w := range h {
		// rpcchainvm's gRPC server sends Light as the weight.
		out[id] = &validators.GetValidatorOutput{NodeID: id, Light: w, Weight: w}
	}
	return out, nil
}

func (h hostValidators) GetCurrentValidators(ctx context.Context, height uint64, netID ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	return h.GetValidatorSet(ctx, height, netID)
}

func (hostValidators) GetWarpValidatorSets(context.Context, []uint64, []ids.ID) (map[ids.ID]map[uint64]*validators.WarpSet, error) {
	return nil, errors.New("not served")
}

func (hostValidators) GetWarpValidatorSet(context.Context, uint64, ids.ID) (*validators.WarpSet, error) {
	return nil, errors.New("not served")
}

// loadWith is load with a given chain context (a *rpcchainvm.Context or a
// consensus *context.Context: VMClient.Initialize accepts both).
func loadWith(t *testing.T, db database.Database, chainCtx any, genesis []byte) *host {
	t.Helper()
	path := buildPlugin(t)
	tracker := &pidTracker{}
	// Each VMClient registers its gRPC metrics: one gatherer per client.
	f := rpcchainvm.NewFactory(path, tracker, lxruntime.NewManager(), metric.NewMultiGatherer())
	vmIface, err := f.New(hostLogger())
	if err != nil {
		t.Fatalf("factory.New: %v", err)
	}
	client, ok := vmIface.(*rpcchainvm.VMClient)
	if !ok {
		t.Fatalf("factory.New returned %T", vmIface)
	}
	h := &host{t: t, client: client, tracker: tracker}
	if pids := tracker.tracked(); len(pids) == 1 {
		h.pid = pids[0]
	} else {
		t.Fatalf("tracked pids %v, want one", pids)
	}
	t.Cleanup(h.shutdown)

	ctx := context.Background()
	if err := client.Initialize(ctx, chainCtx, db, genesis, nil, nil, nil, nil, nil); err != nil {
		t.Fatalf("Initialize: %v", err)
	}
	handlers, err := client.CreateHandlers(ctx)
	if err != nil {
		t.Fatalf("CreateHandlers: %v", err)
	}
	if h.rpc = handlers["/rpc"]; h.rpc == nil {
		t.Fatalf("CreateHandlers: no /rpc handler in %v", handlers)
	}
	return h
}

// shutdown stops the plugin as a node does, and checks that the
// subprocess is gone.
func (h *host) shutdown() {
	if h.closed {
		return
	}
	h.closed = true
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := h.client.Shutdown(ctx); err != nil {
		h.t.Errorf("Shutdown: %v", err)
	}
	if pids := h.tracker.tracked(); len(pids) != 0 {
		h.t.Errorf("pids still tracked after Shutdown: %v", pids)
	}
	// The runtime's stopper waits for the process; it must be reaped.
	if err := syscall.Kill(h.pid, 0); !errors.Is(err, syscall.ESRCH) {
		h.t.Errorf("plugin process %d still exists after Shutdown (kill -0: %v)", h.pid, err)
		_ = syscall.Kill(h.pid, syscall.SIGKILL)
	}
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// call makes a JSON-RPC 2.0 call through the handler the plugin served
// over gRPC.
func (h *host) call(method string, params, result any) error {
	h.t.Helper()
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		h.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.rpc.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Result().Body)
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		h.t.Fatalf("%s: HTTP %d, undecodable body %q: %v", method, rec.Code, raw, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			h.t.Fatalf("%s: result %s: %v", method, resp.Result, err)
		}
	}
	return nil
}

func (h *host) mustCall(method string, params, result any) {
	h.t.Helper()
	if err := h.call(method, params, result); err != nil {
		h.t.Fatalf("%s: %v", method, err)
	}
}

// issue submits signed transaction bytes through session.issueTx.
func (h *host) issue(t *tx.Tx) {
	h.t.Helper()
	var reply struct {
		TxID ids.ID `json:"txID"`
	}
	h.mustCall("session.issueTx", map[string]any{"tx": t.Bytes()}, &reply)
	if reply.TxID != t.ID() {
		h.t.Fatalf("issueTx returned %s, want %s", reply.TxID, t.ID())
	}
}

// accept runs one consensus round through the VMClient boundary: the
// calls a node's engine makes for a block it built itself.
func (h *host) accept(wantTxs int) block.Block {
	h.t.Helper()
	ctx := context.Background()
	blk, err := h.client.BuildBlock(ctx)
	if err != nil {
		h.t.Fatalf("BuildBlock: %v", err)
	}
	if err := blk.Verify(ctx); err != nil {
		h.t.Fatalf("Verify: %v", err)
	}
	// A node parses blocks it receives; the bytes must give the same block.
	parsed, err := h.client.ParseBlock(ctx, blk.Bytes())
	if err != nil {
		h.t.Fatalf("ParseBlock: %v", err)
	}
	if parsed.ID() != blk.ID() || parsed.Height() != blk.Height() || parsed.Parent() != blk.Parent() {
		h.t.Fatalf("ParseBlock(Bytes()) = %s@%d, want %s@%d", parsed.ID(), parsed.Height(), blk.ID(), blk.Height())
	}
	if err := blk.Accept(ctx); err != nil {
		h.t.Fatalf("Accept: %v", err)
	}
	if err := h.client.SetPreference(ctx, blk.ID()); err != nil {
		h.t.Fatalf("SetPreference: %v", err)
	}
	got, err := h.client.GetBlockIDAtHeight(ctx, blk.Height())
	if err != nil || got != blk.ID() {
		h.t.Fatalf("GetBlockIDAtHeight(%d) = %s, %v; want %s", blk.Height(), got, err, blk.ID())
	}
	var st struct {
		Height         uint64 `json:"height"`
		LastAcceptedID ids.ID `json:"lastAcceptedID"`
		MempoolTxs     int    `json:"mempoolTxs"`
	}
	h.mustCall("session.status", nil, &st)
	if st.Height != blk.Height() || st.LastAcceptedID != blk.ID() {
		h.t.Fatalf("status after accept: height %d last %s, want %d %s", st.Height, st.LastAcceptedID, blk.Height(), blk.ID())
	}
	// The block took every pending transaction.
	if st.MempoolTxs != 0 {
		h.t.Fatalf("mempool holds %d transactions after accepting a block of %d", st.MempoolTxs, wantTxs)
	}
	if got := len(h.txsIn(blk)); got != wantTxs {
		h.t.Fatalf("block %d holds %d transactions, want %d", blk.Height(), got, wantTxs)
	}
	return blk
}

// txsIn decodes the transactions of a block from the bytes the plugin
// returned.
func (h *host) txsIn(blk block.Block) []*tx.Tx {
	h.t.Helper()
	b, err := vmblock.Parse(blk.Bytes())
	if err != nil {
		h.t.Fatalf("block %s: %v", blk.ID(), err)
	}
	if b.ID() != blk.ID() {
		h.t.Fatalf("block bytes hash to %s, the plugin says %s", b.ID(), blk.ID())
	}
	return b.Txs
}

type message struct {
	Target     ids.ID `json:"target"`
	Seq        uint64 `json:"seq"`
	Author     string `json:"author"`
	TxID       ids.ID `json:"txID"`
	Height     uint64 `json:"height"`
	Ciphertext []byte `json:"ciphertext"`
}

func (h *host) messages(session ids.ID) []message {
	h.t.Helper()
	var reply struct {
		Messages []message `json:"messages"`
	}
	h.mustCall("session.getMessages", map[string]any{"session": session.String(), "after": 0, "limit": 100}, &reply)
	return reply.Messages
}

func testIdentity(t *testing.T, n byte) *crypto.Identity {
	t.Helper()
	var seed [32]byte
	seed[0] = n
	id, err := crypto.IdentityFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sessionID(t *testing.T, id *crypto.Identity) crypto.SessionID {
	t.Helper()
	s, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sign(t *testing.T, id *crypto.Identity, chainID ids.ID, nonce uint64, p tx.Payload) *tx.Tx {
	t.Helper()
	signed, err := tx.Sign(id, chainID, nonce, p)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestPluginAsNodeLoadsIt builds the plugin, loads it with luxfi/node's
// rpcchainvm factory and VMClient on the host's memdb, and runs a chain
// through that boundary: two identities register, open a session and
// exchange messages, all submitted through the JSON-RPC handler the plugin
// serves (CreateHandlers) and decided through BuildBlock / Verify / Accept /
// SetPreference; the messages read back through the handler. Then the
// plugin is shut down and loaded again on the same database.
func TestPluginAsNodeLoadsIt(t *testing.T) {
	// The example genesis shipped at the repository root: the one the
	// README tells operators to start from.
	genesis := testGenesis(t)
	g, err := vmgenesis.Parse(genesis)
	if err != nil {
		t.Fatal(err)
	}
	initial := uint64(len(g.Identities))
	db := memdb.New()
	chainID := ids.ID{'s', 'e', 's', 's', 'i', 'o', 'n', '-', 't', 'e', 's', 't'}
	h := load(t, db, chainID, genesis)
	ctx := context.Background()

	version, err := h.client.Version(ctx)
	if err != nil || !strings.HasPrefix(version, "sessionvm/") {
		t.Fatalf("Version = %q, %v", version, err)
	}
	genesisID, err := h.client.GetBlockIDAtHeight(ctx, 0)
	if err != nil {
		t.Fatalf("GetBlockIDAtHeight(0): %v", err)
	}
	if last, err := h.client.LastAccepted(ctx); err != nil || last != genesisID {
		t.Fatalf("LastAccepted = %s, %v; want the genesis block %s", last, err, genesisID)
	}
	var st struct {
		ChainID ids.ID `json:"chainID"`
		Height  uint64 `json:"height"`
	}
	h.mustCall("session.status", nil, &st)
	if st.ChainID != chainID || st.Height != 0 {
		t.Fatalf("status: chain %s height %d; want the node's chain ID %s at height 0", st.ChainID, st.Height, chainID)
	}
	// The plugin reads the host's validator state over gRPC, in the
	// background: the two other validators get a reserved gossip budget.
	for deadline := time.Now().Add(30 * time.Second); ; {
		var health struct {
			Gossip vm.GossipStats `json:"gossip"`
		}
		h.mustCall("session.health", nil, &health)
		if health.Gossip.Validators == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("gossip stats %+v: want 2 validators (the host's, this node left out)", health.Gossip)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := h.client.BuildBlock(ctx); err == nil {
		t.Fatal("BuildBlock with an empty mempool succeeded")
	}

	alice, bob := testIdentity(t, 1), testIdentity(t, 2)
	aliceID, bobID := sessionID(t, alice), sessionID(t, bob)

	// Height 1: both register.
	for _, id := range []*crypto.Identity{alice, bob} {
		h.issue(sign(t, id, chainID, 0, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}))
	}
	b1 := h.accept(2)
	if b1.Height() != 1 || b1.Parent() != genesisID {
		t.Fatalf("block 1: height %d parent %s", b1.Height(), b1.Parent())
	}
	var ident struct {
		SessionID    string `json:"sessionId"`
		DSAPublicKey []byte `json:"dsaPublicKey"`
	}
	h.mustCall("session.getIdentity", map[string]any{"sessionId": bob.SessionID}, &ident)
	if ident.SessionID != bob.SessionID || !bytes.Equal(ident.DSAPublicKey, bob.DSAPublicKey) {
		t.Fatalf("getIdentity(bob) = %s", ident.SessionID)
	}

	// Height 2: alice opens a session with bob.
	create := sign(t, alice, chainID, 1, &tx.CreateSession{Participants: []crypto.SessionID{bobID}, Metadata: []byte("plugin test")})
	h.issue(create)
	h.accept(1)
	session := tx.SessionIDFor(chainID, aliceID, 1)

	// Height 3: three messages, from both sides, in one block.
	texts := []struct {
		from  *crypto.Identity
		nonce uint64
		body  string
	}{
		{alice, 2, "hello bob"},
		{bob, 1, "hello alice"},
		{alice, 3, "bye"},
	}
	var sent []*tx.Tx
	for _, m := range texts {
		s := sign(t, m.from, chainID, m.nonce, &tx.SendMessage{Session: session, Ciphertext: []byte(m.body)})
		h.issue(s)
		sent = append(sent, s)
	}
	b3 := h.accept(3)

	got := h.messages(session)
	if len(got) != len(texts) {
		t.Fatalf("getMessages: %d messages, want %d", len(got), len(texts))
	}
	for i, m := range got {
		if m.Seq != uint64(i+1) || string(m.Ciphertext) != texts[i].body || m.Author != texts[i].from.SessionID ||
			m.TxID != sent[i].ID() || m.Height != b3.Height() || m.Target != session {
			t.Fatalf("message %d = %+v, want seq %d %q from %s", i, m, i+1, texts[i].body, texts[i].from.SessionID)
		}
	}
	var status struct {
		Status string `json:"status"`
		Height uint64 `json:"height"`
	}
	h.mustCall("session.getTxStatus", map[string]any{"txID": sent[1].ID().String()}, &status)
	if status.Status != "accepted" || status.Height != 3 {
		t.Fatalf("getTxStatus = %+v, want accepted at 3", status)
	}

	// Refusals come back as JSON-RPC errors through the boundary: a
	// replayed nonce.
	if err := h.call("session.issueTx", map[string]any{"tx": sent[0].Bytes()}, nil); err == nil {
		t.Fatal("replayed transaction admitted")
	}

	// The node fetches blocks by ID and height from the plugin.
	for height, want := range map[uint64]ids.ID{0: genesisID, 1: b1.ID(), 3: b3.ID()} {
		id, err := h.client.GetBlockIDAtHeight(ctx, height)
		if err != nil || id != want {
			t.Fatalf("GetBlockIDAtHeight(%d) = %s, %v; want %s", height, id, err, want)
		}
		blk, err := h.client.GetBlock(ctx, id)
		if err != nil || blk.Height() != height {
			t.Fatalf("GetBlock(%s) = %v, %v", id, blk, err)
		}
	}
	if _, err := h.client.GetBlockIDAtHeight(ctx, 4); err == nil {
		t.Fatal("GetBlockIDAtHeight(4) succeeded above the last accepted height")
	}
	health, err := h.client.HealthCheck(ctx)
	if err != nil {
		t.Fatalf("HealthCheck: %v (%v)", err, health)
	}
	// The node's server marshals the VM's HealthCheck map under "health".
	raw, _ := health.(json.RawMessage)
	var report struct {
		Health map[string]any `json:"health"`
	}
	if err := json.Unmarshal(raw, &report); err != nil || report.Health["healthy"] != true || report.Health["height"] != float64(3) {
		t.Fatalf("HealthCheck through the plugin: %s (%v)", raw, err)
	}

	// The node shuts the plugin down; its database stays with the node.
	h.shutdown()

	// Loaded again on the same database, the chain resumes: same blocks,
	// same messages, empty mempool, genesis not re-applied.
	h2 := load(t, db, chainID, genesis)
	if last, err := h2.client.LastAccepted(ctx); err != nil || last != b3.ID() {
		t.Fatalf("after restart LastAccepted = %s, %v; want %s", last, err, b3.ID())
	}
	if id, err := h2.client.GetBlockIDAtHeight(ctx, 3); err != nil || id != b3.ID() {
		t.Fatalf("after restart GetBlockIDAtHeight(3) = %s, %v", id, err)
	}
	var st2 struct {
		Height     uint64 `json:"height"`
		MempoolTxs int    `json:"mempoolTxs"`
		Identities uint64 `json:"identities"`
	}
	h2.mustCall("session.status", nil, &st2)
	if st2.Height != 3 || st2.MempoolTxs != 0 || st2.Identities != initial+2 {
		t.Fatalf("after restart status = %+v, want height 3, empty mempool, %d identities", st2, initial+2)
	}
	if got := h2.messages(session); len(got) != len(texts) || string(got[2].Ciphertext) != "bye" {
		t.Fatalf("after restart: %d messages", len(got))
	}
	// And keeps going: bob's next message lands at height 4.
	h2.issue(sign(t, bob, chainID, 2, &tx.SendMessage{Session: session, Ciphertext: []byte("still here")}))
	if b4 := h2.accept(1); b4.Height() != 4 || b4.Parent() != b3.ID() {
		t.Fatalf("block after restart: height %d parent %s", b4.Height(), b4.Parent())
	}
	h2.shutdown()
}

// TestPluginRefusesWrongGenesis: Initialize errors cross the boundary.
func TestPluginRefusesWrongGenesis(t *testing.T) {
	path := buildPlugin(t)
	tracker := &pidTracker{}
	f := rpcchainvm.NewFactory(path, tracker, lxruntime.NewManager(), metric.NewMultiGatherer())
	vmIface, err := f.New(hostLogger())
	if err != nil {
		t.Fatal(err)
	}
	client := vmIface.(*rpcchainvm.VMClient)
	h := &host{t: t, client: client, tracker: tracker, pid: tracker.tracked()[0]}
	defer h.shutdown()
	err = client.Initialize(context.Background(), &rpcchainvm.Context{ChainID: ids.ID{1}}, memdb.New(),
		[]byte(`{"config":{"sessionTTL":-1}}`), nil, nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "sessionTTL") {
		t.Fatalf("Initialize with an invalid genesis: %v, want an error naming sessionTTL", err)
	}
}

// TestPluginConcurrentClients: as in a node, HTTP clients submit through
// the handler concurrently while the engine builds and accepts blocks
// through the VMClient (one goroutine, as the engine holds one lock per
// chain). The chain context is the consensus *context.Context this time.
func TestPluginConcurrentClients(t *testing.T) {
	genesis := testGenesis(t)
	chainID := ids.ID{'c', 'o', 'n', 'c', 'u', 'r', 'r', 'e', 'n', 't'}
	h := loadWith(t, memdb.New(), &consensusctx.Context{NetworkID: 1337, ChainID: chainID, NodeID: ids.NodeID{2}, ValidatorState: testValidators}, genesis)
	var st struct {
		ChainID ids.ID `json:"chainID"`
	}
	h.mustCall("session.status", nil, &st)
	if st.ChainID != chainID {
		t.Fatalf("chain ID %s, want the consensus context's %s", st.ChainID, chainID)
	}

	const authors, perAuthor = 4, 8
	var people []*crypto.Identity
	for i := range authors {
		id := testIdentity(t, byte(10+i))
		people = append(people, id)
		h.issue(sign(t, id, chainID, 0, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}))
	}
	h.accept(authors)
	// Pairs (0,1) and (2,3) each share a session opened by the first.
	sessions := make([]ids.ID, authors)
	for i := 0; i < authors; i += 2 {
		h.issue(sign(t, people[i], chainID, 1, &tx.CreateSession{Participants: []crypto.SessionID{sessionID(t, people[i+1])}}))
		sessions[i] = tx.SessionIDFor(chainID, sessionID(t, people[i]), 1)
		sessions[i+1] = sessions[i]
	}
	h.accept(authors / 2)

	var wg sync.WaitGroup
	errs := make(chan error, authors)
	for i, id := range people {
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := uint64(1)
			if i%2 == 0 {
				first = 2 // the session creator used nonce 1
			}
			for k := range uint64(perAuthor) {
				s, err := tx.Sign(id, chainID, first+k, &tx.SendMessage{Session: sessions[i], Ciphertext: fmt.Appendf(nil, "%d/%d", i, k)})
				if err != nil {
					errs <- err
					return
				}
				if err := h.call("session.issueTx", map[string]any{"tx": s.Bytes()}, nil); err != nil {
					errs <- fmt.Errorf("author %d message %d: %w", i, k, err)
					return
				}
			}
		}()
	}
	// The engine: build whenever something is pending, until every
	// message is in an accepted block.
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	total := 0
	for total < authors*perAuthor {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d messages accepted in 60s", total, authors*perAuthor)
		}
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		blk, err := h.client.BuildBlock(ctx)
		if err != nil {
			time.Sleep(2 * time.Millisecond) // nothing pending yet
			continue
		}
		if err := blk.Verify(ctx); err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if err := blk.Accept(ctx); err != nil {
			t.Fatalf("Accept: %v", err)
		}
		if err := h.client.SetPreference(ctx, blk.ID()); err != nil {
			t.Fatalf("SetPreference: %v", err)
		}
		total += len(h.txsIn(blk))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i := 0; i < authors; i += 2 {
		if got := h.messages(sessions[i]); len(got) != 2*perAuthor {
			t.Fatalf("session %d: %d messages, want %d", i/2, len(got), 2*perAuthor)
		}
	}
	h.shutdown()
}
