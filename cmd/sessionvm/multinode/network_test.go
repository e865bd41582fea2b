package multinode

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
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/consensus/core/types"
	"github.com/luxfi/consensus/engine/chain/block"
	"github.com/luxfi/consensus/protocol/nova"
	"github.com/luxfi/consensus/protocol/prism"
	"github.com/luxfi/consensus/protocol/wave"
	validators "github.com/luxfi/consensus/validator"
	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"
	"github.com/luxfi/math/set"
	"github.com/luxfi/metric"
	"github.com/luxfi/node/vms/rpcchainvm"
	lxruntime "github.com/luxfi/node/vms/rpcchainvm/runtime"
	"github.com/luxfi/p2p"

	"github.com/luxfi/session/vm"
)

// Consensus parameters of the test network.
const (
	beta         = 3                     // consecutive successful polls to decide
	roundTimeout = 50 * time.Millisecond // a poll waits this long for abstaining voters
	engineTick   = 5 * time.Millisecond  // how often a node tries to build and polls
	// proposerWindow staggers the proposers of a height, as proposervm
	// does on a Lux chain: the designated one may build at once, the next
	// after one window without a block at that height, and so on. It keeps
	// competing blocks rare (two at most, in practice).
	proposerWindow = 500 * time.Millisecond
	syncEvery      = 250 * time.Millisecond
	// maxAncestors bounds one GetAncestors answer.
	maxAncestors     = 64
	maxAncestorBytes = 8 << 20
)

// nodeConfig is every plugin's node-local config: quick gossip rounds so
// lost messages are repaired within the test's patience.
var nodeConfig = []byte(`{"gossip": true, "gossipBatchMs": 2, "gossipRegossipMs": 200}`)

// The plugin binary, built once per test binary.
var (
	pluginOnce sync.Once
	pluginDir  string
	pluginPath string
	pluginErr  error
)

func TestMain(m *testing.M) {
	if plugin := os.Getenv(hostModeEnv); plugin != "" {
		runHostMode(plugin) // this process is a node for TestPluginExitsWhenNodeDies
	}
	// Plugins inherit the environment: keep their info logs out of the
	// test output unless asked for.
	if os.Getenv("SESSIONVM_LOG_LEVEL") == "" {
		os.Setenv("SESSIONVM_LOG_LEVEL", "warn")
	}
	// The on-disk databases log through luxfi/log's global logger.
	luxlog.SetGlobalLogger(hostLogger())
	code := m.Run()
	if pluginDir != "" {
		os.RemoveAll(pluginDir)
	}
	os.Exit(code)
}

func buildPlugin(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		pluginDir, pluginErr = os.MkdirTemp("", "sessionvm-multinode-")
		if pluginErr != nil {
			return
		}
		pluginPath = filepath.Join(pluginDir, "sessionvm")
		out, err := exec.Command("go", "build", "-o", pluginPath, "github.com/luxfi/session/cmd/sessionvm").CombinedOutput()
		if err != nil {
			pluginErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if pluginErr != nil {
		t.Fatal(pluginErr)
	}
	return pluginPath
}

// network is the in-test network: the nodes, the validator set, and the
// delivery of block messages and app gossip.
type network struct {
	t          *testing.T
	chainID    ids.ID
	genesis    []byte
	validators []ids.NodeID // the nodes that vote, fixed
	dir        string       // on-disk databases live under it

	mu         sync.Mutex
	nodes      []*node
	proposers  []ids.NodeID        // in rank order
	forced     map[ids.NodeID]bool // when set, only these build, without waiting
	holdBlocks bool
	held       []heldBlock
	dropGossip func(from, to ids.NodeID) bool

	// voteMu makes a poll's reading of the validators' preferences one
	// snapshot, and orders it with every change of preference that
	// follows a poll.
	voteMu     sync.Mutex
	deliveries sync.WaitGroup
	rejected   atomic.Int64 // undecided blocks rejected, all nodes
}

type heldBlock struct {
	from *node
	raw  []byte
}

func newNetwork(t *testing.T, chainID ids.ID, genesis []byte) *network {
	// The directory first: cleanups run last-in first-out, so the nodes
	// stop (and close their databases) before it is removed.
	n := &network{t: t, chainID: chainID, genesis: genesis, dir: t.TempDir()}
	t.Cleanup(n.stopAll)
	return n
}

// node returns the node with this ID, or nil.
func (n *network) node(id ids.NodeID) *node {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range n.nodes {
		if x.id == id {
			return x
		}
	}
	return nil
}

// peers returns the other live nodes.
func (n *network) peers(of *node) []*node {
	n.mu.Lock()
	all := slices.Clone(n.nodes)
	n.mu.Unlock()
	var out []*node
	for _, x := range all {
		if x != of && x.isAlive() {
			out = append(out, x)
		}
	}
	return out
}

// majority is the number of validators that makes a strict majority.
func (n *network) majority() int { return len(n.validators)/2 + 1 }

// sendBlock delivers a block to every other live node (or holds it).
func (n *network) sendBlock(from *node, raw []byte) {
	n.mu.Lock()
	if n.holdBlocks {
		n.held = append(n.held, heldBlock{from, raw})
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	for _, to := range n.peers(from) {
		n.deliveries.Add(1)
		go func() {
			defer n.deliveries.Done()
			to.receiveBlock(from, raw)
		}()
	}
}

// hold stops block delivery until release, which sends what was held.
func (n *network) hold() {
	n.mu.Lock()
	n.holdBlocks = true
	n.mu.Unlock()
}

func (n *network) release() {
	n.mu.Lock()
	n.holdBlocks = false
	held := n.held
	n.held = nil
	n.mu.Unlock()
	for _, h := range held {
		n.sendBlock(h.from, h.raw)
	}
}

// gossip delivers a plugin's app gossip to every other live node (but
// those dropGossip, called under the network's lock, drops).
func (n *network) gossip(from ids.NodeID, msg []byte) {
	msg = bytes.Clone(msg)
	src := n.node(from)
	var to []*node
	for _, p := range n.peers(src) {
		n.mu.Lock()
		drop := n.dropGossip != nil && n.dropGossip(from, p.id)
		n.mu.Unlock()
		if !drop {
			to = append(to, p)
		}
	}
	for _, p := range to {
		n.deliveries.Add(1)
		go func() {
			defer n.deliveries.Done()
			p.appGossip(from, msg)
		}()
	}
}

func (n *network) stopAll() {
	n.mu.Lock()
	nodes := slices.Clone(n.nodes)
	n.mu.Unlock()
	for _, x := range nodes {
		x.stop()
	}
	n.deliveries.Wait()
}

// validatorState is the validator state a node gives its chains (a
// validators.State of github.com/luxfi/consensus/validator): the voting
// nodes, the i-th added weighing i+1. VMClient serves it to the plugin
// over gRPC, where the VM reads it to share its inbound gossip budget by
// stake. (Without one, VMClient serves a nil state and the host process
// crashes at the plugin's first reading.)
type validatorState struct{ net *network }

var _ validators.State = validatorState{}

func (validatorState) GetCurrentHeight(context.Context) (uint64, error) { return 1, nil }

func (s validatorState) GetValidatorSet(context.Context, uint64, ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	s.net.mu.Lock()
	defer s.net.mu.Unlock()
	out := make(map[ids.NodeID]*validators.GetValidatorOutput, len(s.net.validators))
	for i, id := range s.net.validators {
		w := uint64(i + 1)
		// rpcchainvm's gRPC server sends Light as the weight.
		out[id] = &validators.GetValidatorOutput{NodeID: id, Light: w, Weight: w}
	}
	return out, nil
}

func (s validatorState) GetCurrentValidators(ctx context.Context, height uint64, netID ids.ID) (map[ids.NodeID]*validators.GetValidatorOutput, error) {
	return s.GetValidatorSet(ctx, height, netID)
}

func (validatorState) GetWarpValidatorSets(context.Context, []uint64, []ids.ID) (map[ids.ID]map[uint64]*validators.WarpSet, error) {
	return nil, errors.New("not served")
}

func (validatorState) GetWarpValidatorSet(context.Context, uint64, ids.ID) (*validators.WarpSet, error) {
	return nil, errors.New("not served")
}

// gossipStats returns the plugin's gossip counters (session.health).
func (x *node) gossipStats() (vm.GossipStats, error) {
	var h struct {
		Gossip vm.GossipStats `json:"gossip"`
	}
	err := x.call("session.health", nil, &h)
	return h.Gossip, err
}

// appSender is the warp.Sender (= p2p.Sender) a node gives its plugin.
type appSender struct {
	net  *network
	from ids.NodeID
}

var _ p2p.Sender = appSender{}

func (s appSender) SendGossip(_ context.Context, _ p2p.SendConfig, msg []byte) error {
	s.net.gossip(s.from, msg)
	return nil
}

func (appSender) SendRequest(context.Context, set.Set[ids.NodeID], uint32, []byte) error { return nil }
func (appSender) SendResponse(context.Context, ids.NodeID, uint32, []byte) error         { return nil }
func (appSender) SendError(context.Context, ids.NodeID, uint32, int32, string) error     { return nil }

// pidTracker is the node's process tracker.
type pidTracker struct {
	mu   sync.Mutex
	pids []int
}

func (p *pidTracker) TrackProcess(pid int) {
	p.mu.Lock()
	p.pids = append(p.pids, pid)
	p.mu.Unlock()
}

func (p *pidTracker) UntrackProcess(pid int) {
	p.mu.Lock()
	p.pids = slices.DeleteFunc(p.pids, func(x int) bool { return x == pid })
	p.mu.Unlock()
}

func hostLogger() luxlog.Logger {
	return luxlog.NewLoggerFromHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
}

// node is one Lux node of the test: its database, the plugin it loads,
// and its consensus engine.
type node struct {
	net       *network
	t         *testing.T
	id        ids.NodeID
	name      string
	validator bool // votes
	proposer  bool // builds blocks
	dbDir     string
	db        database.Database

	mu         sync.Mutex // the hosted VM's lock: engine state and VMClient use
	alive      bool
	gen        int // incremented at every start
	client     *rpcchainvm.VMClient
	pid        int
	rpc        http.Handler
	lastID     ids.ID
	height     uint64
	tipSince   time.Time              // when height was reached
	workSince  time.Time              // when pending transactions were first seen at this height
	lastProbe  time.Time              // engine goroutine only
	accepted   map[ids.ID]uint64      // accepted block → height
	acceptedAt map[uint64]ids.ID      // height → accepted block
	blocks     map[ids.ID]block.Block // verified, undecided
	byHeight   map[uint64][]ids.ID    // undecided blocks per height, in verification order
	pref       map[uint64]ids.ID      // preferred undecided block per height
	rejected   map[ids.ID]bool
	built      int

	cancel context.CancelFunc
	done   chan struct{}
}

// addNode creates a node; onDisk keeps its database in a directory (so it
// can be closed and reopened), else in memory (held by the node, it
// outlives the plugin process).
func (n *network) addNode(name string, validator, proposer, onDisk bool) *node {
	x := &node{
		net: n, t: n.t, id: ids.NodeID{'n', 'o', 'd', 'e', '-', byte(len(n.nodes))}, name: name,
		validator: validator, proposer: proposer,
	}
	if onDisk {
		x.dbDir = filepath.Join(n.dir, name)
	}
	n.mu.Lock()
	n.nodes = append(n.nodes, x)
	if validator {
		n.validators = append(n.validators, x.id)
	}
	if proposer {
		n.proposers = append(n.proposers, x.id)
	}
	n.mu.Unlock()
	return x
}

// force lets only these nodes build, at once (nil: back to the windows).
func (n *network) force(nodes ...*node) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.forced = nil
	if len(nodes) > 0 {
		n.forced = map[ids.NodeID]bool{}
		for _, x := range nodes {
			n.forced[x.id] = true
		}
	}
}

// mayBuild reports whether a proposer may build at height h now, work
// having been pending there since since.
func (n *network) mayBuild(id ids.NodeID, h uint64, since time.Time) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.forced != nil {
		return n.forced[id]
	}
	p := len(n.proposers)
	i := slices.Index(n.proposers, id)
	if i < 0 {
		return false
	}
	rank := (i - int(h%uint64(p)) + p) % p
	return time.Since(since) >= time.Duration(rank)*proposerWindow
}

func (x *node) logf(format string, args ...any) {
	x.t.Logf("%s: "+format, append([]any{x.name}, args...)...)
}

func (x *node) isAlive() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.alive
}

// start opens the database, loads the plugin as a node does, reads where
// the chain stands, bootstraps from the validators and starts the engine.
// It returns the height the node's own database held.
func (x *node) start() uint64 {
	t := x.t
	t.Helper()
	ctx := context.Background()
	if x.db == nil {
		if x.dbDir == "" {
			x.db = memdb.New()
		} else {
			db, err := vm.OpenDB(x.dbDir, vm.DBOptions{CacheBytes: 8 << 20})
			if err != nil {
				t.Fatal(err)
			}
			x.db = db
		}
	}
	tracker := &pidTracker{}
	f := rpcchainvm.NewFactory(buildPlugin(t), tracker, lxruntime.NewManager(), metric.NewMultiGatherer())
	vmIface, err := f.New(hostLogger())
	if err != nil {
		t.Fatalf("%s: factory.New: %v", x.name, err)
	}
	client := vmIface.(*rpcchainvm.VMClient)
	chainCtx := &consensusctx.Context{NetworkID: 1337, ChainID: x.net.chainID, NodeID: x.id, ValidatorState: validatorState{x.net}}
	if err := client.Initialize(ctx, chainCtx, x.db, x.net.genesis, nil, nodeConfig, nil, nil, appSender{x.net, x.id}); err != nil {
		t.Fatalf("%s: Initialize: %v", x.name, err)
	}
	handlers, err := client.CreateHandlers(ctx)
	if err != nil || handlers["/rpc"] == nil {
		t.Fatalf("%s: CreateHandlers: %v", x.name, err)
	}
	tracker.mu.Lock()
	pid := tracker.pids[0]
	tracker.mu.Unlock()

	x.mu.Lock()
	x.client, x.pid, x.rpc = client, pid, handlers["/rpc"]
	x.accepted = map[ids.ID]uint64{}
	x.acceptedAt = map[uint64]ids.ID{}
	x.blocks = map[ids.ID]block.Block{}
	x.byHeight = map[uint64][]ids.ID{}
	x.pref = map[uint64]ids.ID{}
	x.rejected = map[ids.ID]bool{}
	x.mu.Unlock()

	// Where the chain stands in this node's database (VMClient's own
	// LastAccepted is not kept through its block calls).
	var st struct {
		Height         uint64 `json:"height"`
		LastAcceptedID ids.ID `json:"lastAcceptedID"`
	}
	if err := x.call("session.status", nil, &st); err != nil {
		t.Fatalf("%s: status: %v", x.name, err)
	}
	x.mu.Lock()
	x.lastID, x.height, x.tipSince = st.LastAcceptedID, st.Height, time.Now()
	for h := uint64(0); h <= st.Height; h++ {
		id, err := client.GetBlockIDAtHeight(ctx, h)
		if err != nil {
			x.mu.Unlock()
			t.Fatalf("%s: block at %d: %v", x.name, h, err)
		}
		x.accepted[id], x.acceptedAt[h] = h, id
	}
	if err := client.SetPreference(ctx, x.lastID); err != nil {
		x.mu.Unlock()
		t.Fatal(err)
	}
	x.alive = true
	x.gen++
	x.mu.Unlock()
	x.logf("started at height %d (pid %d)", st.Height, pid)

	if err := x.bootstrap(ctx); err != nil {
		t.Fatalf("%s: bootstrap: %v", x.name, err)
	}
	ectx, cancel := context.WithCancel(context.Background())
	x.mu.Lock()
	x.cancel, x.done = cancel, make(chan struct{})
	done := x.done
	x.mu.Unlock()
	go x.run(ectx, done)
	return st.Height
}

// stop shuts the plugin down as a node does and closes the database.
func (x *node) stop() {
	x.halt()
	x.mu.Lock()
	client := x.client
	x.client = nil
	x.mu.Unlock()
	if client != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if err := client.Shutdown(ctx); err != nil {
			x.t.Errorf("%s: Shutdown: %v", x.name, err)
		}
		cancel()
		if err := syscall.Kill(x.pid, 0); !errors.Is(err, syscall.ESRCH) {
			x.t.Errorf("%s: plugin %d still running after Shutdown", x.name, x.pid)
			_ = syscall.Kill(x.pid, syscall.SIGKILL)
		}
	}
	x.closeDB()
}

// halt stops the engine and marks the node dead (peers stop talking to it).
func (x *node) halt() {
	x.mu.Lock()
	x.alive = false
	cancel, done := x.cancel, x.done
	x.cancel, x.done = nil, nil
	x.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

func (x *node) closeDB() {
	if x.db != nil && x.dbDir != "" {
		_ = x.db.Close()
		x.db = nil
	}
}

// kill sends SIGKILL to the plugin, as a crash would, then closes the
// node's database (a node that crashed reopens it from disk).
func (x *node) kill() {
	x.halt()
	if err := syscall.Kill(x.pid, syscall.SIGKILL); err != nil {
		x.t.Fatalf("%s: kill %d: %v", x.name, x.pid, err)
	}
	x.mu.Lock()
	client := x.client
	x.client = nil
	x.mu.Unlock()
	// Reap the process and drop the connections; the plugin is gone, so
	// Shutdown's own call fails.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	_ = client.Shutdown(ctx)
	cancel()
	x.closeDB()
	x.logf("killed (SIGKILL) at height %d", x.height)
}

// run is the node's engine: build when there is work, poll, catch up.
func (x *node) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	k := len(x.net.validators)
	alpha := (float64(k/2) + 1) / float64(k) // int(k*alpha) = a strict majority
	alpha += 1e-9
	cut := prism.NewUniformCut(slices.Clone(x.net.validators))
	engine := nova.NewNova[ids.ID](nova.Config{SampleSize: k, Alpha: alpha, Beta: beta, RoundTO: roundTimeout}, cut, transport{x}, source{x}, sink{x})
	lastSync := time.Now()
	tick := time.NewTicker(engineTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if x.proposer {
			x.maybeBuild(ctx)
		}
		if err := engine.Tick(ctx); err != nil && ctx.Err() == nil {
			x.t.Errorf("%s: consensus: %v", x.name, err)
		}
		if time.Since(lastSync) > syncEvery {
			if err := x.bootstrap(ctx); err != nil && ctx.Err() == nil {
				x.logf("catch-up: %v", err)
			}
			lastSync = time.Now()
		}
	}
}

// maybeBuild builds a block when nothing is undecided at the next height,
// the plugin has pending transactions and this proposer's window is open,
// and sends it to the peers.
func (x *node) maybeBuild(ctx context.Context) {
	x.mu.Lock()
	busy := !x.alive || len(x.byHeight[x.height+1]) > 0
	h, since := x.height+1, x.workSince
	x.mu.Unlock()
	if busy {
		return
	}
	if since.IsZero() {
		// Is there work? (The plugin's mempool, through its API.)
		if time.Since(x.lastProbe) < 4*engineTick {
			return
		}
		x.lastProbe = time.Now()
		var st struct {
			MempoolTxs int `json:"mempoolTxs"`
		}
		if err := x.call("session.status", nil, &st); err != nil || st.MempoolTxs == 0 {
			return
		}
		x.mu.Lock()
		if x.workSince.IsZero() && x.height+1 == h {
			x.workSince = time.Now()
		}
		since = x.workSince
		x.mu.Unlock()
	}
	if !x.net.mayBuild(x.id, h, since) {
		return
	}
	x.mu.Lock()
	if !x.alive || x.height+1 != h || len(x.byHeight[h]) > 0 {
		x.mu.Unlock()
		return
	}
	blk, err := x.client.BuildBlock(ctx)
	if err != nil {
		x.mu.Unlock()
		return // nothing buildable after all
	}
	if err := blk.Verify(ctx); err != nil {
		x.mu.Unlock()
		x.t.Errorf("%s: own block %d does not verify: %v", x.name, blk.Height(), err)
		return
	}
	x.addLocked(blk)
	x.built++
	raw := blk.Bytes()
	x.mu.Unlock()
	x.net.sendBlock(x, raw)
}

// addLocked records a verified block as undecided.
func (x *node) addLocked(blk block.Block) {
	id, h := blk.ID(), blk.Height()
	x.blocks[id] = blk
	x.byHeight[h] = append(x.byHeight[h], id)
	if _, ok := x.pref[h]; !ok {
		x.pref[h] = id
	}
}

// knownLocked reports whether a block is accepted here or undecided.
func (x *node) knownLocked(id ids.ID) bool {
	_, acc := x.accepted[id]
	_, und := x.blocks[id]
	return acc || und
}

// receiveBlock handles a peer's block message.
func (x *node) receiveBlock(from *node, raw []byte) {
	ctx := context.Background()
	x.mu.Lock()
	if !x.alive {
		x.mu.Unlock()
		return
	}
	blk, err := x.client.ParseBlock(ctx, raw)
	if err != nil {
		x.mu.Unlock()
		x.t.Errorf("%s: ParseBlock of %s's block: %v", x.name, from.name, err)
		return
	}
	id := blk.ID()
	if x.knownLocked(id) || x.rejected[id] || blk.Height() <= x.height {
		x.mu.Unlock()
		return
	}
	parentKnown := x.knownLocked(blk.Parent())
	x.mu.Unlock()
	if !parentKnown {
		// A gap: catch up to what the validators accepted, then fetch the
		// undecided ancestors from the sender.
		if err := x.bootstrap(ctx); err != nil {
			x.logf("catch-up for %s's block %d: %v", from.name, blk.Height(), err)
			return
		}
		if err := x.fetchUndecided(ctx, from, blk.Parent()); err != nil {
			x.logf("fetching %s's undecided blocks: %v", from.name, err)
			return
		}
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.alive || x.knownLocked(id) || blk.Height() <= x.height || !x.knownLocked(blk.Parent()) {
		return
	}
	if err := blk.Verify(ctx); err != nil {
		x.t.Errorf("%s: verifying %s's block %d (%s): %v", x.name, from.name, blk.Height(), id, err)
		return
	}
	x.addLocked(blk)
}

// fetchUndecided gets the ancestors of id that are neither accepted nor
// known here from peer and verifies them, oldest first.
func (x *node) fetchUndecided(ctx context.Context, peer *node, id ids.ID) error {
	raws, err := peer.ancestors(ctx, id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	var chain []block.Block
	for _, raw := range raws {
		blk, err := x.client.ParseBlock(ctx, raw)
		if err != nil {
			return err
		}
		if x.knownLocked(blk.ID()) {
			break
		}
		if blk.Height() <= x.height {
			return fmt.Errorf("%s's block %d conflicts with this node's accepted chain", peer.name, blk.Height())
		}
		chain = append(chain, blk)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		if err := chain[i].Verify(ctx); err != nil {
			return fmt.Errorf("verifying block %d: %w", chain[i].Height(), err)
		}
		x.addLocked(chain[i])
	}
	return nil
}

// ancestors answers a GetAncestors request: the block id and its
// ancestors, newest first, from the plugin.
func (x *node) ancestors(ctx context.Context, id ids.ID) ([][]byte, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.alive {
		return nil, errors.New("peer is down")
	}
	return x.client.GetAncestors(ctx, id, maxAncestors, maxAncestorBytes, 5*time.Second)
}

// dump describes the node's engine state, for failure messages.
func (x *node) dump() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := fmt.Sprintf("%s: alive %v height %d last %s built %d;", x.name, x.alive, x.height, x.lastID, x.built)
	for h := x.height + 1; len(x.byHeight[h]) > 0; h++ {
		out += fmt.Sprintf(" h%d %v pref %s;", h, x.byHeight[h], x.pref[h])
	}
	return out
}

// builtCount is the number of blocks this node built.
func (x *node) builtCount() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.built
}

// frontier answers a GetAcceptedFrontier request.
func (x *node) frontier() (ids.ID, uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lastID, x.height, x.alive
}

// blockIDAt answers GetAccepted for one height.
func (x *node) blockIDAt(ctx context.Context, h uint64) (ids.ID, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.alive {
		return ids.Empty, errors.New("peer is down")
	}
	return x.client.GetBlockIDAtHeight(ctx, h)
}

// bootstrap brings the node to the highest block a majority of the
// validators accepted and agree on: GetAcceptedFrontier, GetAccepted, then
// GetAncestors down to this node's last accepted block, and Parse + Verify
// + Accept in height order.
func (x *node) bootstrap(ctx context.Context) error {
	for {
		_, mine, alive := x.frontier()
		if !alive {
			return errors.New("node is down")
		}
		var heights []uint64
		var holders []*node
		for _, p := range x.net.peers(x) {
			if !p.validator {
				continue
			}
			if _, h, ok := p.frontier(); ok {
				heights = append(heights, h)
				holders = append(holders, p)
			}
		}
		// A majority of all validators, this one excluded (it does not
		// have the blocks it is asking for).
		need := x.net.majority()
		if len(heights) < need {
			return nil // not enough validators to follow
		}
		sorted := slices.Clone(heights)
		slices.Sort(sorted)
		slices.Reverse(sorted)
		target := sorted[need-1] // at least need peers accepted this height
		if target <= mine {
			return nil
		}
		// The block at target: a majority must name the same one.
		votes := map[ids.ID]int{}
		var tip ids.ID
		var source *node
		for i, p := range holders {
			if heights[i] < target {
				continue
			}
			id, err := p.blockIDAt(ctx, target)
			if err != nil {
				continue
			}
			votes[id]++
			if votes[id] >= need {
				tip, source = id, p
			}
		}
		if source == nil {
			return fmt.Errorf("no majority on the block at height %d", target)
		}
		// GetAncestors until the chain reaches this node's last accepted.
		var chain [][]byte
		next := tip
		for {
			raws, err := source.ancestors(ctx, next)
			if err != nil || len(raws) == 0 {
				return fmt.Errorf("GetAncestors(%s) from %s: %v", next, source.name, err)
			}
			done := false
			for _, raw := range raws {
				x.mu.Lock()
				blk, err := x.client.ParseBlock(ctx, raw)
				if err != nil {
					x.mu.Unlock()
					return err
				}
				h, parent := blk.Height(), blk.Parent()
				x.mu.Unlock()
				if h <= mine {
					done = true
					break
				}
				chain = append(chain, raw)
				next = parent
				if h == mine+1 {
					done = true
					break
				}
			}
			if done {
				break
			}
		}
		if err := x.acceptChain(ctx, chain); err != nil {
			return err
		}
		x.logf("bootstrapped from %s: height %d -> %d (%d blocks)", source.name, mine, target, len(chain))
	}
}

// acceptChain accepts blocks given newest first, each a child of the last
// accepted block.
func (x *node) acceptChain(ctx context.Context, chain [][]byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	for i := len(chain) - 1; i >= 0; i-- {
		blk, err := x.client.ParseBlock(ctx, chain[i])
		if err != nil {
			return err
		}
		if _, ok := x.accepted[blk.ID()]; ok {
			continue // accepted meanwhile by the engine
		}
		if blk.Parent() != x.lastID || blk.Height() != x.height+1 {
			return fmt.Errorf("block %d (%s) does not extend this node's chain at %d", blk.Height(), blk.ID(), x.height)
		}
		if err := blk.Verify(ctx); err != nil {
			return fmt.Errorf("verifying block %d: %w", blk.Height(), err)
		}
		if err := x.acceptLocked(ctx, blk); err != nil {
			return err
		}
	}
	return nil
}

// acceptLocked accepts blk (a child of the last accepted block) and
// rejects every undecided block that conflicts with it.
func (x *node) acceptLocked(ctx context.Context, blk block.Block) error {
	id, h := blk.ID(), blk.Height()
	if undecided, ok := x.blocks[id]; ok {
		blk = undecided
	}
	if err := blk.Accept(ctx); err != nil {
		return fmt.Errorf("accepting block %d: %w", h, err)
	}
	x.accepted[id], x.acceptedAt[h] = h, id
	x.lastID, x.height, x.tipSince, x.workSince = id, h, time.Now(), time.Time{}
	delete(x.blocks, id)
	// Siblings lose; so do their descendants (undecided blocks whose
	// parent is no longer known).
	for height := h; ; height++ {
		list := x.byHeight[height]
		if len(list) == 0 && height > h {
			break
		}
		var keep []ids.ID
		for _, other := range list {
			if other == id {
				continue
			}
			b := x.blocks[other]
			if height == h || !x.knownLocked(b.Parent()) {
				if err := b.Reject(ctx); err != nil {
					return fmt.Errorf("rejecting block %d: %w", height, err)
				}
				delete(x.blocks, other)
				x.rejected[other] = true
				x.net.rejected.Add(1)
				continue
			}
			keep = append(keep, other)
		}
		x.byHeight[height] = keep
		if height > h && x.pref[height] != ids.Empty && !slices.Contains(keep, x.pref[height]) {
			delete(x.pref, height)
			if len(keep) > 0 {
				x.pref[height] = keep[0]
			}
		}
	}
	delete(x.byHeight, h)
	delete(x.pref, h)
	return x.client.SetPreference(ctx, id)
}

// preferenceAt answers a poll about height h: the block this node accepted
// there, or the undecided one it prefers; ok false abstains (nothing seen).
func (x *node) preferenceAt(h uint64) (ids.ID, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.alive {
		return ids.Empty, false
	}
	if id, ok := x.acceptedAt[h]; ok {
		return id, true
	}
	id, ok := x.pref[h]
	return id, ok
}

// adopt makes item the preference at its height, if it is undecided here.
func (x *node) adopt(item ids.ID) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if b, ok := x.blocks[item]; ok {
		x.pref[b.Height()] = item
	}
}

// heightOf returns the height of an undecided block.
func (x *node) heightOf(item ids.ID) (uint64, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	b, ok := x.blocks[item]
	if !ok {
		return 0, false
	}
	return b.Height(), true
}

// appGossip hands a peer's gossip to the plugin (AppGossip over gRPC).
func (x *node) appGossip(from ids.NodeID, msg []byte) {
	x.mu.Lock()
	client, alive, gen := x.client, x.alive, x.gen
	x.mu.Unlock()
	if !alive || client == nil {
		return
	}
	if err := client.AppGossip(context.Background(), from, msg); err != nil {
		x.mu.Lock()
		same := x.alive && x.gen == gen
		x.mu.Unlock()
		if same {
			x.t.Errorf("%s: AppGossip: %v", x.name, err)
		}
	}
}

// transport carries nova's polls over the in-test network.
type transport struct{ x *node }

func (tr transport) RequestVotes(ctx context.Context, peers []types.NodeID, item ids.ID) <-chan wave.Photon[ids.ID] {
	x := tr.x
	out := make(chan wave.Photon[ids.ID], len(peers))
	h, known := x.heightOf(item)
	if !known {
		return out // decided meanwhile: the poll times out empty
	}
	go func() {
		// An atomic snapshot of the validators' preferences at h (every
		// preference change away from a block happens under the same lock).
		net := x.net
		net.voteMu.Lock()
		prefs := make([]ids.ID, len(peers))
		answered := make([]bool, len(peers))
		counts := map[ids.ID]int{}
		complete := true
		for i, id := range peers {
			p := net.node(id)
			if p == nil {
				complete = false
				continue
			}
			if prefs[i], answered[i] = p.preferenceAt(h); answered[i] {
				counts[prefs[i]]++
			} else {
				complete = false
			}
		}
		// The leader: most preferred, ties to the smallest ID.
		var leader ids.ID
		for id, c := range counts {
			if best := counts[leader]; c > best || (c == best && bytes.Compare(id[:], leader[:]) < 0) {
				leader = id
			}
		}
		// Follow a majority; with every validator answering and no
		// majority, follow the leader (the split cannot have decided
		// anything, and every node applies the same rule).
		if counts[leader] >= net.majority() || (complete && len(counts) > 0) {
			x.adopt(leader)
		}
		net.voteMu.Unlock()
		for i, id := range peers {
			if answered[i] {
				out <- wave.Photon[ids.ID]{Item: item, Prefer: prefs[i] == item, Sender: id, Timestamp: time.Now()}
			}
		}
	}()
	return out
}

func (tr transport) MakeLocalPhoton(item ids.ID, prefer bool) wave.Photon[ids.ID] {
	return wave.Photon[ids.ID]{Item: item, Prefer: prefer, Sender: tr.x.id, Timestamp: time.Now()}
}

// source offers nova the undecided blocks at the next height.
type source struct{ x *node }

func (s source) NextPending(_ context.Context, n int) []ids.ID {
	s.x.mu.Lock()
	defer s.x.mu.Unlock()
	list := s.x.byHeight[s.x.height+1]
	return slices.Clone(list[:min(n, len(list))])
}

// sink accepts what nova decided.
type sink struct{ x *node }

func (s sink) Decide(ctx context.Context, items []ids.ID, d types.Decision) error {
	if d != types.DecideAccept {
		return nil
	}
	x := s.x
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, id := range items {
		blk, ok := x.blocks[id]
		if !ok || blk.Height() != x.height+1 || blk.Parent() != x.lastID {
			continue // decided already (bootstrap), or no longer a child of the tip
		}
		if err := x.acceptLocked(ctx, blk); err != nil {
			return err
		}
	}
	return nil
}

// rpcError is a JSON-RPC error.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// callRaw makes a JSON-RPC call through the handler the plugin serves and
// returns the raw result.
func (x *node) callRaw(method string, params any) (json.RawMessage, error) {
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	h := x.rpc
	x.mu.Unlock()
	req := httptest.NewRequest(http.MethodPost, "/rpc", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	raw, _ := io.ReadAll(rec.Result().Body)
	var resp struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("%s: HTTP %d, body %q: %w", method, rec.Code, raw, err)
	}
	if resp.Error != nil {
		return nil, resp.Error
	}
	return resp.Result, nil
}

func (x *node) call(method string, params, result any) error {
	raw, err := x.callRaw(method, params)
	if err != nil {
		return err
	}
	if result != nil {
		return json.Unmarshal(raw, result)
	}
	return nil
}
