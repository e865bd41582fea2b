// Package vm is SessionVM: a Lux chain VM (block.ChainVM of
// github.com/luxfi/consensus v1.22.46) that stores post-quantum identities,
// sessions, end-to-end encrypted messages and channels.
//
// # Layout
//
// The VM follows avalanchego's xsvm: this package is the thin, typed
// boundary to the node; the work lives in subpackages.
//
//	vm/tx       transactions: wire format, signatures, named refusals
//	vm/block    block wire format and ID
//	vm/execute  the deterministic state transition (and retention pruning)
//	vm/genesis  genesis JSON, applied once
//	vm/mempool  bounded FIFO pool
//	state       the chain state over github.com/luxfi/database
//	config      chain configuration and protocol bounds
//
// # Blocks
//
// Verify executes a block on a versiondb overlay of its parent's state (the
// parent's own overlay while it is undecided), so competing siblings verify
// independently. Accept writes the block, its transaction index, its state
// and the last-accepted pointer through that overlay in one atomic batch.
// Reject drops the overlay; rejected blocks are never stored. Execution
// reads only the block and its parent's state: the wall clock is read only
// to stamp a block being built and to refuse timestamps more than
// config.MaxFutureBlockTime ahead; no map is iterated to order anything.
//
// Every block header commits to the state it produces: a SHA-256 chained
// from the parent's commitment over the block's writes in order, hashed as
// they pass to the overlay (commit.go). Verify refuses a block whose
// commitment is not the one this node computed (ErrStateMismatch).
//
// # Gossip
//
// Transactions admitted through the API are gossiped to peers through the
// node's app sender (when the node config turns it on), peers' gossip is
// admitted through IssueTx's checks, and pending transactions are
// re-gossiped in bounded rounds (gossip.go).
//
// # Signatures
//
// ML-DSA-65 verification dominates the cost of a transaction. Each
// signature is checked once, at mempool admission or when a block brings
// it first, and the verdict is cached by transaction ID (a hash of the
// signed bytes, signature included). A block's unseen signatures are
// checked in parallel on every core. Parsed public keys are cached by
// Session ID, which is a hash of the keys.
//
// # Mempool
//
// IssueTx admits a transaction only if it would apply after every pending
// one (see pool), so invalid transactions are refused up front with the
// named errors of package tx; the pool is bounded in count, bytes and per
// author, deduplicated, and ordered by admission. WaitForEvent returns
// block.PendingTxs while a pending transaction is in no processing block,
// and admission also sends on the engine's msgChan when one is given.
//
// # Standalone use
//
// A node without Lux consensus (one validator) runs Run, which loops
// WaitForEvent → BuildBlock → Verify → Accept → SetPreference. OpenDB opens
// the on-disk database.
package vm

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	consensusctx "github.com/luxfi/consensus/context"
	"github.com/luxfi/consensus/core/choices"
	smblock "github.com/luxfi/consensus/engine/chain/block"
	"github.com/luxfi/database"
	"github.com/luxfi/database/versiondb"
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"
	"github.com/luxfi/p2p"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/block"
	"github.com/luxfi/session/vm/genesis"
	"github.com/luxfi/session/vm/mempool"
)

// Name is the VM name; the Lux VM ID is these bytes zero-padded to 32.
const Name = "sessionvm"

// Version is reported by Version.
const Version = "sessionvm/0.1.0"

var _ smblock.ChainVM = (*VM)(nil)

// Initialization errors.
var (
	ErrBadDatabase     = errors.New("vm: db must be a github.com/luxfi/database.Database")
	ErrBadChainContext = errors.New("vm: unsupported chain context type")
	ErrBadMsgChan      = errors.New("vm: msgChan must be nil or a chan block.Message")
	ErrGenesisMismatch = errors.New("vm: the database holds a chain with another genesis")
	ErrDatabaseFormat  = errors.New("vm: the database was written in another format")
	ErrBadNodeConfig   = errors.New("vm: invalid node config")
	ErrBadAppSender    = errors.New("vm: appSender must be nil or a github.com/luxfi/p2p.Sender")
)

// NodeConfig is the node-local configuration (Initialize's configBytes):
// settings that need not agree between nodes. Omitted fields take the
// defaults of package config (mempool) and of this package (gossip; see
// gossip.go for what each one bounds).
type NodeConfig struct {
	MempoolTxs          int `json:"mempoolTxs"`
	MempoolBytes        int `json:"mempoolBytes"`
	MaxPendingPerAuthor int `json:"maxPendingPerAuthor"`
	// MaxPendingRegistrations bounds the registrations waiting in the
	// mempool (docs/chain.md section 3); default
	// config.DefaultMaxPendingRegistrations.
	MaxPendingRegistrations int `json:"maxPendingRegistrations"`
	// MaxPendingBytesPerAuthor defaults to mempoolBytes / 16 (at least
	// config.MaxTxSize).
	MaxPendingBytesPerAuthor int `json:"maxPendingBytesPerAuthor"`
	// DiskPath is a directory on the filesystem that holds the chain's
	// database, whose free space the VM watches (see DiskGuard). Default:
	// the chain data directory of the chain context (inside a Lux node);
	// the standalone node watches its own database directory.
	DiskPath string `json:"diskPath,omitempty"`
	// DiskReserveBytes is the free space kept on that filesystem. Default:
	// DefaultPluginDiskReserve inside a Lux node; the standalone node keeps
	// BadgerReserve of its database and takes this as a lower bound.
	DiskReserveBytes int `json:"diskReserveBytes,omitempty"`

	// Gossip turns on sending transaction gossip through the app sender
	// given to Initialize. Off by default: a host that passes no app sender
	// to a plugin (luxd v1.22.75's chain manager passes none) still serves
	// one to it over gRPC, and crashes with a nil pointer when the plugin
	// uses it. Turn it on where the node passes a sender. Gossip from peers
	// is admitted either way.
	Gossip bool `json:"gossip"`
	// GossipMaxMessageBytes bounds a gossip message, sent or received.
	GossipMaxMessageBytes int `json:"gossipMaxMessageBytes"`
	// GossipBatchMs is how long a transaction admitted through the API
	// waits for others to share its gossip message.
	GossipBatchMs int `json:"gossipBatchMs"`
	// GossipRegossipMs is the period of re-gossip rounds, and how long a
	// pending transaction goes unsent before a round sends it again.
	GossipRegossipMs int `json:"gossipRegossipMs"`
	// GossipRegossipTxs bounds the transactions of one round.
	GossipRegossipTxs int `json:"gossipRegossipTxs"`
	// GossipBytesPerSecond bounds the gossip this node sends.
	GossipBytesPerSecond int `json:"gossipBytesPerSecond"`
	// GossipPeerTxsPerSecond bounds the gossiped transactions this node
	// checks from one peer, GossipTxsPerSecond from all peers together,
	// a second; a transaction counts ⌈its bytes / 8 KiB⌉ (gossipCost).
	GossipPeerTxsPerSecond int `json:"gossipPeerTxsPerSecond"`
	GossipTxsPerSecond     int `json:"gossipTxsPerSecond"`
	// GossipValidatorPercent is the part of GossipTxsPerSecond reserved
	// for the chain's validators, divided among them by stake (0 to 100;
	// 0: the chain context's validator state is not read, and every peer
	// shares the whole budget). See gossip.go.
	GossipValidatorPercent int `json:"gossipValidatorPercent"`
	// GossipValidatorNetID is the net whose validators are asked for
	// (default: the primary network, ids.Empty; rpcchainvm does not tell
	// a plugin its chain's net).
	GossipValidatorNetID ids.ID `json:"gossipValidatorNetID"`
	// GossipReservedPeers are node IDs the operator names (its own API
	// nodes, the validators it peers with): each gets a reserved share
	// of the validator part as if it were a validator of the mean weight
	// (a validator among them keeps its stake if larger), with or without
	// validator information (under luxd v1.22.75, which gives none, they
	// are the only reserves). At most MaxGossipReservedPeers; needs
	// GossipValidatorPercent > 0.
	GossipReservedPeers []ids.NodeID `json:"gossipReservedPeers"`
}

// MaxGossipReservedPeers bounds NodeConfig.GossipReservedPeers.
const MaxGossipReservedPeers = 256

// ParseNodeConfig parses configBytes (empty means defaults). The mempool
// bounds must agree: a transaction of the largest size fits the pool and an
// author's share, and an author's share is at most the pool's.
func ParseNodeConfig(b []byte) (NodeConfig, error) {
	c := NodeConfig{
		MempoolTxs:               config.DefaultMempoolTxs,
		MempoolBytes:             config.DefaultMempoolBytes,
		MaxPendingPerAuthor:      config.DefaultMaxPendingPerAuthor,
		MaxPendingBytesPerAuthor: config.DefaultMaxPendingBytesPerAuthor,
		MaxPendingRegistrations:  config.DefaultMaxPendingRegistrations,

		GossipMaxMessageBytes:  DefaultGossipMaxMessageBytes,
		GossipBatchMs:          DefaultGossipBatchMs,
		GossipRegossipMs:       DefaultGossipRegossipMs,
		GossipRegossipTxs:      DefaultGossipRegossipTxs,
		GossipBytesPerSecond:   DefaultGossipBytesPerSecond,
		GossipPeerTxsPerSecond: DefaultGossipPeerTxsPerSecond,
		GossipTxsPerSecond:     DefaultGossipTxsPerSecond,
		GossipValidatorPercent: DefaultGossipValidatorPercent,
	}
	if len(b) == 0 || string(b) == "null" {
		return c, nil
	}
	var raw struct {
		MempoolTxs               *int    `json:"mempoolTxs"`
		MempoolBytes             *int    `json:"mempoolBytes"`
		MaxPendingPerAuthor      *int    `json:"maxPendingPerAuthor"`
		MaxPendingBytesPerAuthor *int    `json:"maxPendingBytesPerAuthor"`
		MaxPendingRegistrations  *int    `json:"maxPendingRegistrations"`
		DiskPath                 *string `json:"diskPath"`
		DiskReserveBytes         *int    `json:"diskReserveBytes"`

		Gossip                 *bool `json:"gossip"`
		GossipMaxMessageBytes  *int  `json:"gossipMaxMessageBytes"`
		GossipBatchMs          *int  `json:"gossipBatchMs"`
		GossipRegossipMs       *int  `json:"gossipRegossipMs"`
		GossipRegossipTxs      *int  `json:"gossipRegossipTxs"`
		GossipBytesPerSecond   *int  `json:"gossipBytesPerSecond"`
		GossipPeerTxsPerSecond *int  `json:"gossipPeerTxsPerSecond"`
		GossipTxsPerSecond     *int  `json:"gossipTxsPerSecond"`
		GossipValidatorPercent *int  `json:"gossipValidatorPercent"`

		GossipValidatorNetID *string  `json:"gossipValidatorNetID"`
		GossipReservedPeers  []string `json:"gossipReservedPeers"`
	}
	if err := config.DecodeStrict(b, &raw); err != nil {
		return c, fmt.Errorf("%w: %v", ErrBadNodeConfig, err)
	}
	if raw.Gossip != nil {
		c.Gossip = *raw.Gossip
	}
	if raw.DiskPath != nil {
		if *raw.DiskPath == "" {
			return c, fmt.Errorf("%w: diskPath must not be empty", ErrBadNodeConfig)
		}
		c.DiskPath = *raw.DiskPath
	}
	if raw.GossipValidatorNetID != nil {
		id, err := ids.FromString(*raw.GossipValidatorNetID)
		if err != nil {
			return c, fmt.Errorf("%w: gossipValidatorNetID %q: %v", ErrBadNodeConfig, *raw.GossipValidatorNetID, err)
		}
		c.GossipValidatorNetID = id
	}
	if len(raw.GossipReservedPeers) > MaxGossipReservedPeers {
		return c, fmt.Errorf("%w: gossipReservedPeers names %d node IDs, at most %d", ErrBadNodeConfig, len(raw.GossipReservedPeers), MaxGossipReservedPeers)
	}
	seen := make(map[ids.NodeID]bool, len(raw.GossipReservedPeers))
	for _, s := range raw.GossipReservedPeers {
		id, err := ids.NodeIDFromString(s)
		if err != nil {
			return c, fmt.Errorf("%w: gossipReservedPeers %q: %v", ErrBadNodeConfig, s, err)
		}
		if !seen[id] {
			seen[id] = true
			c.GossipReservedPeers = append(c.GossipReservedPeers, id)
		}
	}
	// A gossip message holds at least one transaction of the largest size.
	minMessage := gossipHeaderSize + 4 + config.MaxTxSize
	for _, f := range []struct {
		name     string
		src      *int
		dst      *int
		min, max int
	}{
		{"mempoolTxs", raw.MempoolTxs, &c.MempoolTxs, 1, 1 << 22},
		{"mempoolBytes", raw.MempoolBytes, &c.MempoolBytes, 1, 1 << 34},
		{"maxPendingPerAuthor", raw.MaxPendingPerAuthor, &c.MaxPendingPerAuthor, 1, 1 << 22},
		{"maxPendingBytesPerAuthor", raw.MaxPendingBytesPerAuthor, &c.MaxPendingBytesPerAuthor, 1, 1 << 34},
		{"maxPendingRegistrations", raw.MaxPendingRegistrations, &c.MaxPendingRegistrations, 1, 1 << 20},
		{"diskReserveBytes", raw.DiskReserveBytes, &c.DiskReserveBytes, 1, 1 << 50},
		{"gossipMaxMessageBytes", raw.GossipMaxMessageBytes, &c.GossipMaxMessageBytes, minMessage, 2 << 20},
		{"gossipBatchMs", raw.GossipBatchMs, &c.GossipBatchMs, 1, 1000},
		{"gossipRegossipMs", raw.GossipRegossipMs, &c.GossipRegossipMs, 10, 600_000},
		{"gossipRegossipTxs", raw.GossipRegossipTxs, &c.GossipRegossipTxs, 1, 1 << 16},
		{"gossipBytesPerSecond", raw.GossipBytesPerSecond, &c.GossipBytesPerSecond, 2 << 20, 1 << 34},
		{"gossipPeerTxsPerSecond", raw.GossipPeerTxsPerSecond, &c.GossipPeerTxsPerSecond, 1, 1 << 22},
		{"gossipTxsPerSecond", raw.GossipTxsPerSecond, &c.GossipTxsPerSecond, 1, 1 << 22},
		{"gossipValidatorPercent", raw.GossipValidatorPercent, &c.GossipValidatorPercent, 0, 100},
	} {
		if f.src == nil {
			continue
		}
		if *f.src < f.min || *f.src > f.max {
			return c, fmt.Errorf("%w: %s must be in [%d, %d], got %d", ErrBadNodeConfig, f.name, f.min, f.max, *f.src)
		}
		*f.dst = *f.src
	}
	if len(c.GossipReservedPeers) > 0 && c.GossipValidatorPercent == 0 {
		return c, fmt.Errorf("%w: gossipReservedPeers needs a reserved part (gossipValidatorPercent > 0)", ErrBadNodeConfig)
	}
	// Per-author defaults follow a smaller pool.
	if raw.MaxPendingBytesPerAuthor == nil {
		c.MaxPendingBytesPerAuthor = min(c.MempoolBytes, max(c.MempoolBytes/16, config.MaxTxSize))
	}
	if raw.MaxPendingPerAuthor == nil {
		c.MaxPendingPerAuthor = min(c.MaxPendingPerAuthor, c.MempoolTxs)
	}
	switch {
	case c.MempoolBytes < config.MaxTxSize:
		return c, fmt.Errorf("%w: mempoolBytes %d is below the largest transaction (%d bytes)", ErrBadNodeConfig, c.MempoolBytes, config.MaxTxSize)
	case c.MaxPendingBytesPerAuthor < config.MaxTxSize:
		return c, fmt.Errorf("%w: maxPendingBytesPerAuthor %d is below the largest transaction (%d bytes)", ErrBadNodeConfig, c.MaxPendingBytesPerAuthor, config.MaxTxSize)
	case c.MaxPendingBytesPerAuthor > c.MempoolBytes:
		return c, fmt.Errorf("%w: maxPendingBytesPerAuthor %d exceeds mempoolBytes %d", ErrBadNodeConfig, c.MaxPendingBytesPerAuthor, c.MempoolBytes)
	case c.MaxPendingPerAuthor > c.MempoolTxs:
		return c, fmt.Errorf("%w: maxPendingPerAuthor %d exceeds mempoolTxs %d", ErrBadNodeConfig, c.MaxPendingPerAuthor, c.MempoolTxs)
	}
	return c, nil
}

// Option configures a VM made by New.
type Option func(*VM)

// WithClock replaces the wall clock (tests). It is read only to stamp new
// blocks and to bound the timestamps of blocks being verified.
func WithClock(now func() time.Time) Option { return func(v *VM) { v.clock = now } }

// WithHandler sets the factory of the JSON-RPC handler that CreateHandlers
// mounts at "/rpc". Package service provides the full API this way
// (vm.WithHandler(service.NewHandler)); without it the VM serves a minimal
// handler with session.health and session.status. The factory is injected
// rather than imported so that dependencies point one way: service uses
// vm.API, and vm does not know service.
func WithHandler(f func(API) (http.Handler, error)) Option {
	return func(v *VM) { v.handlerFactory = f }
}

// WithDiskGuard makes the VM watch free disk space with g (see DiskGuard).
// Without it, a VM whose chain context names a chain data directory (a Lux
// node's) watches that directory's filesystem, and one without watches
// nothing.
func WithDiskGuard(g *DiskGuard) Option { return func(v *VM) { v.disk = g } }

// VM is the SessionVM chain VM. The zero value is ready for Initialize.
type VM struct {
	clock          func() time.Time
	handlerFactory func(API) (http.Handler, error)
	disk           *DiskGuard
	diskNote       string        // why free space is not watched, when it is not
	log            luxlog.Logger // never nil after New
	// Tests: the gossip budgets' clock, and the validator set's refresh
	// period (negative: read only when a test asks); see withGossipClock
	// and withValidatorRefresh in the tests.
	gossipNow        func() time.Time
	validatorRefresh time.Duration

	initialized bool
	db          database.Database
	chainID     ids.ID
	genesis     *genesis.Genesis
	nodeCfg     NodeConfig

	chain    *chain
	pool     *pool
	verifier *verifier
	gossip   *gossiper

	notifyMu sync.Mutex
	// inboxWatch is WatchInbox's function.
	inboxWatch atomic.Pointer[func([]state.InboxWrite)]
	notify     chan struct{} // closed and replaced on every accept

	shutdownOnce sync.Once
	done         chan struct{}
}

// New returns a VM with options applied.
func New(opts ...Option) *VM {
	v := &VM{}
	for _, o := range opts {
		o(v)
	}
	if v.log == nil {
		v.log = luxlog.NewNoOpLogger()
	}
	return v
}

// chainIDFrom converts the node's chain context. Accepted: the
// *context.Context of github.com/luxfi/consensus (what rpcchainvm passes),
// block.ChainContext (by value or pointer), or nil. When there is none, or
// its ChainID is empty, the chain ID is the SHA-256 of the genesis bytes,
// which is stable for a chain and distinct between chains.
func chainIDFrom(chainCtx interface{}, g *genesis.Genesis) (ids.ID, error) {
	c, err := consensusContext(chainCtx)
	if err != nil {
		return ids.Empty, err
	}
	if c != nil && c.ChainID != ids.Empty {
		return c.ChainID, nil
	}
	return ids.ID(g.Hash), nil
}

// consensusContext returns the consensus context of a chain context (nil
// when there is none); the types accepted are chainIDFrom's.
func consensusContext(chainCtx interface{}) (*consensusctx.Context, error) {
	switch x := chainCtx.(type) {
	case nil:
		return nil, nil
	case *consensusctx.Context:
		return x, nil
	case smblock.ChainContext:
		return x.Context, nil
	case *smblock.ChainContext:
		if x != nil {
			return x.Context, nil
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: %T (want *github.com/luxfi/consensus/context.Context)", ErrBadChainContext, chainCtx)
	}
}

// Initialize implements block.ChainVM. It converts its interface{}
// parameters once: db must be a database.Database (the VM owns it from
// here on and closes it at Shutdown); chainCtx as in chainIDFrom (its
// NodeID and ValidatorState, when set, share the gossip budget between
// the validators, see gossip.go); msgChan nil or a chan block.Message;
// appSender nil or a p2p.Sender of github.com/luxfi/p2p (what rpcchainvm
// passes; transaction gossip goes out through it when the node config
// turns gossip on, see gossip.go); fxs is unused. genesisBytes
// is the genesis JSON (package genesis) and configBytes the NodeConfig
// JSON. On a database that already holds the chain, genesis is not applied
// again; a different genesis is refused.
func (v *VM) Initialize(
	ctx context.Context,
	chainCtx interface{},
	dbIface interface{},
	genesisBytes []byte,
	upgradeBytes []byte,
	configBytes []byte,
	msgChanIface interface{},
	fxs []interface{},
	appSender interface{},
) error {
	if v.initialized {
		return errors.New("vm: Initialize called twice")
	}
	db, ok := dbIface.(database.Database)
	if !ok || db == nil {
		return fmt.Errorf("%w, got %T", ErrBadDatabase, dbIface)
	}
	var msgChan chan<- smblock.Message
	switch c := msgChanIface.(type) {
	case nil:
	case chan smblock.Message:
		msgChan = c
	case chan<- smblock.Message:
		msgChan = c
	default:
		return fmt.Errorf("%w, got %T", ErrBadMsgChan, msgChanIface)
	}
	var sender p2p.Sender
	if appSender != nil {
		s, ok := appSender.(p2p.Sender)
		if !ok {
			return fmt.Errorf("%w, got %T", ErrBadAppSender, appSender)
		}
		sender = s
	}
	g, err := genesis.Parse(genesisBytes)
	if err != nil {
		return fmt.Errorf("vm: %w", err)
	}
	chainID, err := chainIDFrom(chainCtx, g)
	if err != nil {
		return err
	}
	nodeCfg, err := ParseNodeConfig(configBytes)
	if err != nil {
		return err
	}
	if v.clock == nil {
		v.clock = time.Now
	}
	if err := v.setupDiskGuard(chainCtx, nodeCfg); err != nil {
		return err
	}

	v.db, v.chainID, v.genesis, v.nodeCfg = db, chainID, g, nodeCfg
	v.verifier = newVerifier(chainID, g.Config.Registration)
	v.done = make(chan struct{})
	v.notify = make(chan struct{})
	v.chain = &chain{
		db:         db,
		chainID:    chainID,
		cfg:        g.Config,
		verifier:   v.verifier,
		clock:      v.clock,
		cache:      newBaseCache(db),
		processing: make(map[ids.ID]*Block),
		onAccept:   v.accepted,
		disk:       v.disk,
		bounds:     defaultWriteBounds,
	}
	last, err := v.loadOrApplyGenesis()
	if err != nil {
		return err
	}
	v.chain.lastAccepted = last
	v.chain.tip.Store(last)
	v.chain.preferred = last.ID()
	v.pool = newPool(db, v.chain, mempool.New(mempool.Limits{
		MaxTxs:            nodeCfg.MempoolTxs,
		MaxBytes:          nodeCfg.MempoolBytes,
		MaxPerAuthor:      nodeCfg.MaxPendingPerAuthor,
		MaxBytesPerAuthor: nodeCfg.MaxPendingBytesPerAuthor,
	}), nodeCfg.MaxPendingRegistrations, msgChan)
	v.pool.tip = last
	v.chain.hooks = v.pool
	if !nodeCfg.Gossip {
		sender = nil // receive only
	}
	v.gossip = newGossiper(v.pool, chainID, sender, nodeCfg, v.done)
	if v.gossipNow != nil {
		v.gossip.now = v.gossipNow
	}
	if v.validatorRefresh != 0 {
		v.gossip.refreshEvery = v.validatorRefresh
	}
	if c, _ := consensusContext(chainCtx); c != nil && nodeCfg.GossipValidatorPercent > 0 {
		v.gossip.self = c.NodeID
		v.gossip.source = validatorSourceOf(c.ValidatorState, nodeCfg.GossipValidatorNetID)
	}
	v.gossip.named = nodeCfg.GossipReservedPeers
	v.gossip.start()
	v.initialized = true
	v.logger().Info("sessionvm initialized",
		"chainID", chainID.String(), "height", last.Height(), "lastAccepted", last.ID().String())
	return nil
}

// logger is the VM's logger; a VM made without New (the zero value) has
// none and logs nothing.
func (v *VM) logger() luxlog.Logger {
	if v.log == nil {
		v.log = luxlog.NewNoOpLogger()
	}
	return v.log
}

// loadOrApplyGenesis returns the last accepted block, writing the genesis
// state and block first (in one atomic batch) on an empty database.
func (v *VM) loadOrApplyGenesis() (*Block, error) {
	st := state.New(v.db)
	lastID, err := st.LastAccepted()
	switch {
	case err == nil:
		if v, err := st.StoredFormatVersion(); err != nil {
			return nil, fmt.Errorf("vm: reading the database format: %w", err)
		} else if v != state.FormatVersion {
			return nil, fmt.Errorf("%w: the database is in format %d, this build reads format %d; it must be recreated (resync the chain)", ErrDatabaseFormat, v, state.FormatVersion)
		}
		hash, _, err := st.Genesis()
		if err != nil {
			return nil, fmt.Errorf("vm: reading stored genesis: %w", err)
		}
		if hash != v.genesis.Hash {
			return nil, fmt.Errorf("%w: stored genesis %x, given %x", ErrGenesisMismatch, hash[:8], v.genesis.Hash[:8])
		}
		b, err := v.chain.getBlock(lastID)
		if err != nil {
			return nil, fmt.Errorf("vm: loading last accepted block: %w", err)
		}
		if b.counts, err = countsAfter(st); err != nil {
			return nil, fmt.Errorf("vm: %w", err)
		}
		return b, nil
	case errors.Is(err, database.ErrNotFound):
	default:
		return nil, fmt.Errorf("vm: reading last accepted block: %w", err)
	}
	// The genesis block commits to the genesis writes, chained from its
	// parent ID (the SHA-256 of the genesis bytes).
	overlay := versiondb.New(v.db)
	writes := newCommitDB(overlay, v.genesis.Hash, 0)
	if err := v.genesis.Apply(state.New(writes)); err != nil {
		return nil, fmt.Errorf("vm: applying genesis: %w", err)
	}
	blk, err := block.New(ids.ID(v.genesis.Hash), 0, v.genesis.TimestampMillis(), writes.sum(), nil)
	if err != nil {
		return nil, err
	}
	ost := state.New(overlay)
	if err := ost.PutBlock(blk.ID(), 0, blk.Bytes()); err != nil {
		return nil, err
	}
	if err := ost.SetLastAccepted(blk.ID()); err != nil {
		return nil, err
	}
	if err := ost.SetFormatVersion(); err != nil {
		return nil, err
	}
	counts, err := countsAfter(ost)
	if err != nil {
		return nil, fmt.Errorf("vm: %w", err)
	}
	if err := overlay.Commit(); err != nil {
		return nil, fmt.Errorf("vm: writing genesis: %w", err)
	}
	return &Block{Block: blk, chain: v.chain, status: choices.Accepted, counts: counts}, nil
}

func (v *VM) ready() error {
	if !v.initialized {
		return ErrNotInitialized
	}
	select {
	case <-v.done:
		return ErrShutdown
	default:
		return nil
	}
}

// accepted is called by the chain (under its lock) after each accept.
func (v *VM) accepted(b *Block) {
	v.notifyMu.Lock()
	close(v.notify)
	v.notify = make(chan struct{})
	v.notifyMu.Unlock()
	if len(b.inbox) > 0 {
		if f := v.inboxWatch.Load(); f != nil {
			(*f)(b.inbox)
		}
	}
	b.inbox = nil
}

// WatchInbox sets f to be called, on the accepting goroutine, with the
// inbox entries of each accepted block that writes any (messages to
// their recipients, and the entries a session's acceptance back-fills),
// in the order written; f replaces the previous one (nil: none). f must
// not block and must not keep the slice. The service's push
// notifications (docs/stream.md section 6) use it.
func (v *VM) WatchInbox(f func([]state.InboxWrite)) {
	if f == nil {
		v.inboxWatch.Store(nil)
		return
	}
	v.inboxWatch.Store(&f)
}

// InboxWatcher is implemented by *VM: a vm.API that can tell the service
// whose inbox each accepted block changed.
type InboxWatcher interface {
	WatchInbox(f func([]state.InboxWrite))
}

// AcceptedNotify returns a channel closed at the next accepted block.
func (v *VM) AcceptedNotify() <-chan struct{} {
	v.notifyMu.Lock()
	defer v.notifyMu.Unlock()
	return v.notify
}

// BuildBlock implements block.ChainVM: a verified block on the preferred
// block with pending transactions in build order (mempool.BuildOrder). It returns
// ErrNoPendingTxs when none can be included.
func (v *VM) BuildBlock(ctx context.Context) (smblock.Block, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	v.chain.mu.Lock()
	defer v.chain.mu.Unlock()
	needRebuild := false
	// Admission order when everything fits, rounds across authors
	// otherwise; registrations by excess when more wait than a block takes.
	order := v.pool.mempool.BuildOrder(config.MaxBlockTxs, config.MaxBlockSize-block.HeaderSize)
	regs := v.pool.allowedRegistrations(int(v.chain.cfg.Registration.MaxPerBlock))
	b, err := v.chain.build(order, v.pool.skipped(&needRebuild), regs)
	if needRebuild {
		// Drop what the builder refused on the tip, judged at the time the
		// block would have had, so WaitForEvent does not report it again.
		v.pool.mu.Lock()
		v.pool.rebuild(v.clock().UnixMilli())
		v.pool.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return b, nil
}

// ParseBlock implements block.ChainVM. Known blocks come back as the same
// object (so a verified block keeps its state); new bytes give an
// unverified block.
func (v *VM) ParseBlock(ctx context.Context, b []byte) (smblock.Block, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	v.chain.mu.Lock()
	defer v.chain.mu.Unlock()
	blk, err := v.chain.parseBlock(b)
	if err != nil {
		return nil, err
	}
	return blk, nil
}

// GetBlock implements block.ChainVM: a processing or accepted block, or an
// error wrapping database.ErrNotFound.
func (v *VM) GetBlock(ctx context.Context, id ids.ID) (smblock.Block, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	v.chain.mu.Lock()
	defer v.chain.mu.Unlock()
	b, err := v.chain.getBlock(id)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// SetPreference implements block.ChainVM: BuildBlock builds on id.
func (v *VM) SetPreference(ctx context.Context, id ids.ID) error {
	if err := v.ready(); err != nil {
		return err
	}
	v.chain.mu.Lock()
	defer v.chain.mu.Unlock()
	if _, err := v.chain.getBlock(id); err != nil {
		return fmt.Errorf("vm: preference: %w", err)
	}
	v.chain.preferred = id
	return nil
}

// LastAccepted implements block.ChainVM.
func (v *VM) LastAccepted(context.Context) (ids.ID, error) {
	if err := v.ready(); err != nil {
		return ids.Empty, err
	}
	v.chain.mu.Lock()
	defer v.chain.mu.Unlock()
	return v.chain.lastAccepted.ID(), nil
}

// GetBlockIDAtHeight implements block.ChainVM for accepted heights.
func (v *VM) GetBlockIDAtHeight(ctx context.Context, height uint64) (ids.ID, error) {
	if err := v.ready(); err != nil {
		return ids.Empty, err
	}
	return state.New(v.db).BlockIDAtHeight(height)
}

// WaitForEvent implements block.ChainVM: it returns block.PendingTxs as
// soon as a pending transaction is in no processing block, or the
// context's error.
func (v *VM) WaitForEvent(ctx context.Context) (interface{}, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	if err := v.pool.waitForWork(ctx, v.done); err != nil {
		return nil, err
	}
	return smblock.PendingTxs, nil
}

// MempoolLen returns the number of pending transactions (a cheap read for
// a block loop deciding when to build; 0 before Initialize).
func (v *VM) MempoolLen() int {
	if v.pool == nil || v.pool.mempool == nil {
		return 0
	}
	return v.pool.mempool.Len()
}

// SetState implements block.ChainVM; SessionVM needs no state sync, so
// every state is accepted.
func (v *VM) SetState(context.Context, uint32) error { return nil }

// Version implements block.ChainVM.
func (v *VM) Version(context.Context) (string, error) { return Version, nil }

// Connected implements block.ChainVM: pending transactions are gossiped
// again at once, so the new peer gets them. (rpcchainvm's server at node
// v1.22.75 does not forward Connected to a plugin; there, the periodic
// re-gossip rounds reach a peer that connected later.)
func (v *VM) Connected(context.Context, ids.NodeID, interface{}) error {
	if v.ready() == nil {
		v.gossip.peerConnected()
	}
	return nil
}

// Disconnected implements block.ChainVM.
func (v *VM) Disconnected(context.Context, ids.NodeID) error { return nil }

// NewHTTPHandler implements block.ChainVM. Lux nodes use CreateHandlers;
// this returns the same "/rpc" handler.
func (v *VM) NewHTTPHandler(ctx context.Context) (interface{}, error) {
	h, err := v.CreateHandlers(ctx)
	if err != nil {
		return nil, err
	}
	return h["/rpc"], nil
}

// HealthReport is what Health returns; HealthCheck returns it as a map
// (HealthReport.Map).
type HealthReport struct {
	Healthy          bool   `json:"healthy"`
	LastAcceptedID   string `json:"lastAcceptedID"`
	LastAcceptedTime int64  `json:"lastAcceptedTime"` // Unix ms
	Height           uint64 `json:"height"`
	ProcessingBlocks int    `json:"processingBlocks"`
	MempoolTxs       int    `json:"mempoolTxs"`
	MempoolBytes     int    `json:"mempoolBytes"`
	Database         string `json:"database"`
	// Signatures actually verified since start (cache misses).
	SignaturesVerified uint64 `json:"signaturesVerified"`
	// Disk is the free space of the database's filesystem; nil when it is
	// not watched (DiskNote says why).
	Disk     *DiskReport `json:"disk,omitempty"`
	DiskNote string      `json:"diskNote,omitempty"`
	// Gossip counters since start.
	Gossip GossipStats `json:"gossip"`
}

// HealthCheck implements block.ChainVM: the Health report as a
// map[string]interface{} keyed by its JSON names ("healthy" a bool,
// "height" a uint64, ...; see HealthReport.Map), the form Lux nodes and
// code written against the reference implementation read. It returns an
// error (and "healthy" false) when Health does.
func (v *VM) HealthCheck(ctx context.Context) (interface{}, error) {
	r, err := v.Health(ctx)
	return r.Map(), err
}

// Health returns the health report with real figures; it returns an error
// (and Healthy false) when the VM is not running, the database fails its
// check, or free disk space is too low to admit transactions or commit
// blocks (the error wraps ErrDiskFull and says how much is free and
// needed).
func (v *VM) Health(ctx context.Context) (HealthReport, error) {
	if err := v.ready(); err != nil {
		return HealthReport{}, err
	}
	tip := v.chain.tip.Load()
	processing := v.chain.processingCount()
	r := HealthReport{
		LastAcceptedID:   tip.ID().String(),
		LastAcceptedTime: tip.Block.Timestamp,
		Height:           tip.Block.Height,
		ProcessingBlocks: processing,
	}
	r.MempoolTxs = v.pool.mempool.Len()
	r.MempoolBytes = v.pool.mempool.Bytes()
	r.SignaturesVerified = v.verifier.verified.Load()
	r.Gossip = v.gossip.stats.snapshot()
	r.DiskNote = v.diskNote
	var diskErr error
	if v.disk != nil {
		var d DiskReport
		d, diskErr = v.disk.Report(r.MempoolBytes)
		r.Disk = &d
	}
	if _, err := v.db.HealthCheck(ctx); err != nil {
		r.Database = err.Error()
		return r, fmt.Errorf("vm: database unhealthy: %w", err)
	}
	r.Database = "ok"
	if p := v.chain.commitErr.Load(); p != nil {
		r.Database = "a block could not be committed: " + (*p).Error()
		return r, fmt.Errorf("vm: accepting a block failed (it stays verified; Accept may be retried): %w", *p)
	}
	if diskErr != nil {
		return r, fmt.Errorf("vm: %w", diskErr)
	}
	r.Healthy = true
	return r, nil
}

// Shutdown implements block.ChainVM: it stops WaitForEvent and Run, drops
// undecided blocks, syncs and closes the database. It is idempotent.
func (v *VM) Shutdown(context.Context) error {
	if !v.initialized {
		return nil
	}
	var err error
	v.shutdownOnce.Do(func() {
		close(v.done)
		v.gossip.wait()
		v.chain.mu.Lock()
		defer v.chain.mu.Unlock()
		v.chain.closed = true
		v.pool.mu.Lock()
		v.pool.overlay.Abort()
		v.pool.mu.Unlock()
		if serr := v.db.Sync(); serr != nil && !errors.Is(serr, database.ErrClosed) {
			err = serr
		}
		if cerr := v.db.Close(); cerr != nil && !errors.Is(cerr, database.ErrClosed) && err == nil {
			err = cerr
		}
	})
	return err
}

// CreateHandlers returns the HTTP handlers of the chain: JSON-RPC 2.0 at
// "/rpc" (see handlers.go).
func (v *VM) CreateHandlers(context.Context) (map[string]http.Handler, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	var (
		h   http.Handler
		err error
	)
	if v.handlerFactory != nil {
		h, err = v.handlerFactory(v)
	} else {
		h, err = newRPCHandler(v)
	}
	if err != nil {
		return nil, err
	}
	return map[string]http.Handler{"/rpc": h}, nil
}
