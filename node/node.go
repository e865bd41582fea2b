// Package node is the standalone SessionVM node that cmd/sessiond runs: the
// VM in-process on an on-disk database under a data directory, a block
// loop that builds a block whenever transactions are pending, and an HTTP
// server with the JSON-RPC API and Prometheus metrics. End-to-end tests and
// load generators start it with Start.
//
// # Data directory
//
//	<data dir>/
//	├── genesis.json   the chain's genesis, written at first start (without
//	│                  a genesis file: with a random nonce, so each new chain
//	│                  has its own chain ID); later starts use it and refuse
//	│                  a different one
//	└── db/            the chain database (package storage, see vm.OpenDB)
//
// # HTTP
//
//	POST /rpc                 JSON-RPC 2.0, the VM's CreateHandlers "/rpc"
//	POST /ext/bc/session/rpc  the same handler, at the path a Lux node would use
//	GET  /metrics             Prometheus metrics (namespace "sessiond")
//	GET  /health              the VM's health report as JSON (200 or 503)
//	GET  /                    the web messenger (package node/webui), unless DisableWebUI
//
// Every request passes the HTTP policy first (HTTPConfig): its Host must
// be an IP address, localhost, the listen host or an allowed name (no DNS
// rebinding), and a browser request from another origin must come from an
// allowed origin (CORS). At most HTTPConfig.MaxConns connections are open,
// each with bounded kernel buffers, and the handler bounds the bytes its
// requests hold (service.Options).
//
// # Blocks
//
// One validator, no consensus: the loop waits for the VM to report pending
// transactions (WaitForEvent), waits BuildDelay more so a burst lands in
// one block, then, while transactions keep arriving and fewer than
// BuildBatch are pending, keeps gathering in steps of BuildDelay until
// BuildWindow has passed since the first (so a steady trickle makes
// blocks of a window's worth, not of one delay's, and a commit's cost is
// shared by more messages); a step in which nothing arrived ends the wait
// at once. Then it runs BuildBlock → Verify → Accept → SetPreference.
// Transactions arriving while a block is being built wait for the next,
// so under load blocks grow (up to the protocol's MaxBlockTxs) instead of
// multiplying. Failed rounds back off exponentially up to a second. A
// failed Accept (a database error) stops the node: Err reports it.
//
// # Shutdown
//
// Shutdown stops the HTTP server (no new requests; in-flight ones finish),
// then lets the loop finish its block and build what is still pending (so
// a transaction reported pending is not lost), then shuts the VM down,
// which syncs and closes the database. On the next Start the VM resumes
// from its last accepted block with all history.
//
// # Disk space
//
// The node watches the free space of the filesystem that holds db/ with a
// vm.DiskGuard of vm.NewDBDiskGuard keeping its reserve free (at least the VM config's
// diskReserveBytes). Below it the node refuses new transactions
// (vm.ErrDiskFull, JSON-RPC code -32015), stops building blocks, reports
// why in the health report (/health answers 503), keeps serving reads, and
// resumes by itself when space returns. An Accept that fails with
// vm.ErrDiskFull or ENOSPC leaves the block verified and the state
// untouched; the loop retries that same block until it is accepted. Any
// other Accept failure stops the node (Err).
package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/luxfi/database"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/node/webui"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// Defaults of Config.
const (
	DefaultHTTPAddr   = "127.0.0.1:9652"
	DefaultBuildDelay = 2 * time.Millisecond
	// DefaultBuildWindow bounds how long a block gathers transactions
	// that keep arriving, from the first pending one.
	DefaultBuildWindow = 10 * time.Millisecond
	// DefaultBuildBatch is the pending count at which a block is built
	// without waiting further.
	DefaultBuildBatch = 512
	// DefaultSyncInterval is how often the database's logs are synced
	// (without SyncWrites): a power loss loses about this much of the
	// chain's tail, and the value log reaches the disk steadily instead
	// of in Linux's bursts of 30 s of writes.
	DefaultSyncInterval = time.Second
	// DefaultDrainTimeout bounds how long Shutdown keeps building blocks
	// for transactions still pending.
	DefaultDrainTimeout = 10 * time.Second
	// maxBackoff caps the wait after a failed block round.
	maxBackoff = time.Second
	// maxHeaderBytes, maxHeaderFields and the timeouts bound what a client
	// can hold open. net/http parses a request's header into a map that
	// lives as long as the request (up to the 30 s read timeout for a slow
	// body) at about 15 times its bytes when they are many tiny fields: 64
	// KiB of them held 1 MB per connection. Browsers send about 20 fields
	// in under 2 KiB.
	maxHeaderBytes  = 16 << 10
	maxHeaderFields = 100
)

// Config configures a node. DataDir is required; everything else has a
// default.
type Config struct {
	// DataDir holds the genesis copy and the database; created if missing.
	DataDir string
	// HTTPAddr is the listen address ("127.0.0.1:0" picks a free port; see
	// Node.Addr). Default DefaultHTTPAddr.
	HTTPAddr string
	// Genesis is the genesis JSON. Nil: the copy stored in DataDir, or on
	// a new data directory a new chain's genesis (NewChainGenesis: the
	// built-in configuration with ChainOverrides, and a random nonce, so
	// the new chain has its own chain ID).
	Genesis []byte
	// ChainOverrides change the built-in genesis's chain configuration.
	ChainOverrides ChainOverrides
	// VMConfig is the VM's node-local configuration JSON (vm.NodeConfig:
	// mempoolTxs, mempoolBytes, maxPendingPerAuthor,
	// maxPendingBytesPerAuthor, diskReserveBytes, diskPath); empty for
	// defaults.
	VMConfig []byte
	// SyncWrites makes every database commit fsync (survives power loss)
	// on a BadgerDB data directory of an earlier version; a database made
	// by this version (package storage) fsyncs every commit always.
	SyncWrites bool
	// SyncInterval, without SyncWrites, syncs the database's logs this
	// often from a goroutine of its own (BadgerDB: the value log and the
	// memtable's write-ahead log, both memory-mapped; for package storage
	// a sync finds nothing to do). Default
	// DefaultSyncInterval; negative: never (Linux then writes them back by
	// itself, 30 s of writes at once, which on two cores stalls block
	// acceptance for seconds).
	SyncInterval time.Duration
	// BuildDelay is how long the loop waits after the first pending
	// transaction before building, to batch bursts. Default
	// DefaultBuildDelay; negative means no wait.
	BuildDelay time.Duration
	// BuildWindow is the longest the loop keeps gathering, from the first
	// pending transaction, while transactions keep arriving (each step of
	// BuildDelay must bring more) and fewer than BuildBatch are pending.
	// Default DefaultBuildWindow; negative, or not above BuildDelay,
	// means no gathering beyond BuildDelay.
	BuildWindow time.Duration
	// BuildBatch is the pending count at which the loop builds without
	// gathering further. Default DefaultBuildBatch.
	BuildBatch int
	// DrainTimeout bounds the building of pending transactions at
	// Shutdown. Default DefaultDrainTimeout; negative means none.
	DrainTimeout time.Duration
	// HTTP is the HTTP policy: allowed hosts and origins, bounds on
	// connections and on what clients can make the node hold.
	HTTP HTTPConfig
	// Handler makes the JSON-RPC handler; nil means the service's, with
	// HTTP.Service's bounds (the handler the plugin serves).
	Handler func(vm.API) (http.Handler, error)
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// VMOptions are extra options for vm.New (tests: a clock).
	VMOptions []vm.Option
	// DisableWebUI turns off the web messenger served at / (package
	// node/webui).
	DisableWebUI bool
	// WrapDB, when set, wraps the opened database before the VM gets it
	// (tests: fault injection).
	WrapDB func(database.Database) database.Database
}

// Node is a running standalone node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	rpc     http.Handler
	vm      *vm.VM
	chainID ids.ID
	metrics *metrics

	ln  net.Listener
	srv *http.Server

	loopCancel context.CancelFunc
	loopDone   chan struct{}
	syncDone   chan struct{}
	httpDone   chan struct{}

	// pendingAccept is a verified block whose Accept failed for lack of
	// disk space; the loop accepts it before building anything else.
	pendingAccept *vm.Block
	diskLow       bool // the last round was refused for lack of disk space

	errOnce sync.Once
	errCh   chan error // receives the first fatal error, then is closed

	shutdownOnce sync.Once
	shutdownErr  error
}

// Start opens the data directory, initializes the VM (applying the genesis
// on a new chain, resuming on an existing one), starts the block loop and
// serves HTTP. Stop it with Shutdown.
func Start(cfg Config) (n *Node, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: data directory required")
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = DefaultHTTPAddr
	}
	if cfg.BuildDelay == 0 {
		cfg.BuildDelay = DefaultBuildDelay
	}
	if cfg.BuildWindow == 0 {
		cfg.BuildWindow = DefaultBuildWindow
	}
	if cfg.BuildBatch <= 0 {
		cfg.BuildBatch = DefaultBuildBatch
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	log := cfg.Logger

	// Everything that can be checked without touching the disk is checked
	// first, and the listen address is taken before the data directory is
	// created: a start that fails on a busy port or a bad argument leaves
	// no data directory and no stored genesis behind (which would bind
	// the directory to the built-in genesis and refuse a later --genesis).
	genesisBytes, storeGenesis, err := resolveGenesis(cfg.DataDir, cfg.Genesis, cfg.ChainOverrides)
	if err != nil {
		return nil, err
	}
	if _, err := vm.ParseNodeConfig(cfg.VMConfig); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("node: listening on %s: %w", cfg.HTTPAddr, err)
	}
	wsOrigin := wsOrigins(cfg.HTTP, ln.Addr().String())
	if cfg.Handler == nil {
		opts := cfg.HTTP.Service
		if !cfg.HTTP.DisableWebSocket {
			so := cfg.HTTP.Stream
			so.OriginAllowed = wsOrigin
			opts.Stream = &so
		}
		cfg.Handler = service.NewHandlerWith(opts)
	}
	defer func() {
		if err != nil {
			_ = ln.Close()
		}
	}()
	created, err := mkdirNew(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("node: creating data directory: %w", err)
	}
	dbDir := filepath.Join(cfg.DataDir, "db")
	defer func() {
		// A failed first start takes back the directory it made, so the
		// next start sees a new data directory again.
		if err != nil && created {
			_ = os.RemoveAll(dbDir)
			_ = os.Remove(cfg.DataDir)
		}
	}()

	db, err := vm.OpenDB(dbDir, vm.DBOptions{SyncWrites: cfg.SyncWrites})
	if err != nil {
		return nil, fmt.Errorf("node: %w (is another sessiond using %s?)", err, cfg.DataDir)
	}
	if cfg.WrapDB != nil {
		db = cfg.WrapDB(db)
	}
	var opts []vm.Option
	if cfg.Handler != nil {
		opts = append(opts, vm.WithHandler(cfg.Handler))
	}
	guard, gerr := vm.NewDBDiskGuard(dbDir)
	if gerr == nil {
		opts = append(opts, vm.WithDiskGuard(guard))
	} else {
		log.Warn("free disk space is not watched", "error", gerr)
	}
	v := vm.New(append(opts, cfg.VMOptions...)...)
	ctx := context.Background()
	if err := v.Initialize(ctx, nil, db, genesisBytes, nil, cfg.VMConfig, nil, nil, nil); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	defer func() {
		if err != nil {
			_ = v.Shutdown(context.Background())
		}
	}()
	if storeGenesis {
		if err := writeFileAtomic(filepath.Join(cfg.DataDir, GenesisFile), genesisBytes, 0o600); err != nil {
			return nil, fmt.Errorf("node: storing genesis: %w", err)
		}
	}

	handlers, err := v.CreateHandlers(ctx)
	if err != nil {
		return nil, fmt.Errorf("node: creating handlers: %w", err)
	}
	rpc := handlers["/rpc"]
	if rpc == nil {
		return nil, errors.New("node: the VM has no /rpc handler")
	}

	n = &Node{
		cfg:      cfg,
		log:      log,
		rpc:      rpc,
		vm:       v,
		chainID:  v.ChainID(),
		loopDone: make(chan struct{}),
		httpDone: make(chan struct{}),
		errCh:    make(chan error, 1),
	}
	n.metrics = newMetrics(v, guard, db, log)

	mux := http.NewServeMux()
	mux.Handle("/rpc", rpc)
	mux.Handle("/ext/bc/session/rpc", rpc)
	mux.Handle("/metrics", promhttp.HandlerFor(n.metrics.reg, promhttp.HandlerOpts{Registry: n.metrics.reg}))
	mux.HandleFunc("GET /health", n.serveHealth)
	if !cfg.DisableWebUI {
		mux.Handle("/", webui.Handler())
	}
	n.srv = &http.Server{
		Handler:           newPolicy(mux, cfg.HTTP, cfg.HTTPAddr, wsOrigin),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	n.ln = service.BoundListener(ln, cfg.HTTP.maxConns(), cfg.HTTP.socketBuffer())
	n.srv.ConnState = service.ConnStateHook(n.ln) // idle keep-alive connections make room for new ones

	st, err := v.Status()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	log.Info("sessiond started",
		"version", vm.Version,
		"dataDir", cfg.DataDir,
		"chainID", n.chainID.String(),
		"height", st.Height,
		"lastAccepted", st.LastAcceptedID.String(),
		"http", "http://"+n.ln.Addr().String()+"/rpc",
		"webUI", !cfg.DisableWebUI,
		"newChain", storeGenesis,
	)

	loopCtx, cancel := context.WithCancel(context.Background())
	n.loopCancel = cancel
	go n.loop(loopCtx)
	n.syncDone = make(chan struct{})
	go n.syncLoop(loopCtx, db, cfg.SyncInterval)
	go func() {
		defer close(n.httpDone)
		if err := n.srv.Serve(n.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.fail(fmt.Errorf("node: http: %w", err))
		}
	}()
	return n, nil
}

// Addr is the HTTP listen address (host:port).
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is the JSON-RPC endpoint, "http://<addr>/rpc".
func (n *Node) URL() string { return "http://" + n.Addr() + "/rpc" }

// API is the VM's read/write API.
func (n *Node) API() vm.API { return n.vm }

// ChainID is the chain's ID (transactions must carry it).
func (n *Node) ChainID() ids.ID { return n.chainID }

// Err returns a channel that receives the first fatal error of the node
// (the HTTP server failing, a block failing to be accepted). The caller
// should then call Shutdown.
func (n *Node) Err() <-chan error { return n.errCh }

func (n *Node) fail(err error) {
	n.errOnce.Do(func() {
		n.log.Error("fatal", "error", err)
		n.errCh <- err
		close(n.errCh)
	})
}

// Shutdown stops the node (see the package comment) and returns the first
// error of the database close. It is idempotent; ctx bounds the wait for
// in-flight HTTP requests.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutdownOnce.Do(func() {
		n.log.Info("sessiond stopping")
		if sd, ok := n.rpc.(service.StreamShutdowner); ok {
			// http.Server.Shutdown does not see WebSockets.
			if err := sd.ShutdownStreams(ctx); err != nil {
				n.log.Warn("websocket shutdown incomplete; connections closed", "error", err)
			}
		}
		if err := n.srv.Shutdown(ctx); err != nil {
			n.log.Warn("http shutdown incomplete; closing connections", "error", err)
			_ = n.srv.Close()
		}
		<-n.httpDone
		n.loopCancel()
		<-n.loopDone
		<-n.syncDone
		if err := n.vm.Shutdown(context.Background()); err != nil {
			n.shutdownErr = fmt.Errorf("node: closing the VM: %w", err)
			n.log.Error("vm shutdown", "error", err)
			return
		}
		n.log.Info("sessiond stopped")
	})
	return n.shutdownErr
}

func (n *Node) serveHealth(w http.ResponseWriter, r *http.Request) {
	rep, err := n.vm.Health(r.Context())
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(rep)
}

// syncLoop syncs db every interval until ctx ends (Config.SyncInterval).
func (n *Node) syncLoop(ctx context.Context, db database.Database, interval time.Duration) {
	defer close(n.syncDone)
	if interval <= 0 || n.cfg.SyncWrites {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := db.Sync(); err != nil {
				n.log.Warn("database sync", "error", err)
			}
		}
	}
}

// loop is the block loop; it returns after draining once ctx ends.
func (n *Node) loop(ctx context.Context) {
	defer close(n.loopDone)
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		if n.pendingAccept != nil {
			// A block waits for disk space: no new block before it.
		} else if _, err := n.vm.WaitForEvent(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, vm.ErrShutdown) {
				return
			}
			n.log.Warn("wait for event", "error", err)
			backoff = n.sleep(ctx, backoff)
			continue
		}
		if n.cfg.BuildDelay > 0 && n.pendingAccept == nil {
			gather(ctx, n.cfg.BuildDelay, n.cfg.BuildWindow, n.cfg.BuildBatch, n.vm.MempoolLen, time.Now, sleepCtx)
		}
		switch _, err := n.round(); {
		case err == nil, errors.Is(err, vm.ErrNoPendingTxs):
			backoff = 0
			if n.diskLow {
				n.diskLow = false
				n.log.Info("disk space recovered: building blocks again")
			}
		case errors.Is(err, errFatal):
			n.fail(err)
			return
		case isDiskFull(err):
			if !n.diskLow {
				n.diskLow = true
				n.log.Warn("disk space low: blocks wait until space is freed", "error", err)
			}
			backoff = n.sleep(ctx, backoff)
		default:
			n.metrics.buildErrors.Inc()
			n.log.Warn("block round failed", "error", err)
			backoff = n.sleep(ctx, backoff)
		}
	}
	n.drain()
}

// gather waits before a block is built: delay, then, while the pending
// count (pending) is below batch and grew during the last step, further
// steps of delay until window has passed since it began. A step that
// brought nothing ends it (a lone transaction waits only delay), and so
// does ctx. now and sleep are the clock (tests give their own).
func gather(ctx context.Context, delay, window time.Duration, batch int, pending func() int, now func() time.Time, sleep func(context.Context, time.Duration)) {
	start := now()
	sleep(ctx, delay)
	if window <= delay {
		return
	}
	last := pending()
	for last < batch && ctx.Err() == nil {
		left := window - now().Sub(start)
		if left <= 0 {
			return
		}
		sleep(ctx, min(delay, left))
		cur := pending()
		if cur <= last {
			return // nothing arrived: build now
		}
		last = cur
	}
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// drain builds blocks until nothing is pending, the drain timeout passes,
// or a round fails.
func (n *Node) drain() {
	deadline := time.Now().Add(n.cfg.DrainTimeout)
	for blocks := 0; ; blocks++ {
		if n.cfg.DrainTimeout > 0 && time.Now().After(deadline) {
			n.log.Warn("shutdown: drain timeout; pending transactions are dropped", "blocks", blocks)
			return
		}
		switch _, err := n.round(); {
		case err == nil:
		case errors.Is(err, vm.ErrNoPendingTxs):
			if blocks > 0 {
				n.log.Info("shutdown: built pending transactions", "blocks", blocks)
			}
			return
		default:
			if errors.Is(err, errFatal) {
				n.fail(err)
			}
			n.log.Warn("shutdown: drain stopped", "error", err)
			return
		}
	}
}

func (n *Node) sleep(ctx context.Context, backoff time.Duration) time.Duration {
	backoff = min(max(2*backoff, 10*time.Millisecond), maxBackoff)
	t := time.NewTimer(backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return backoff
}

var errFatal = errors.New("node: block accept failed")

// isDiskFull reports an error that more free disk space would cure.
func isDiskFull(err error) bool {
	return errors.Is(err, vm.ErrDiskFull) || errors.Is(err, syscall.ENOSPC)
}

// round builds, verifies and accepts one block, or accepts again the block
// whose Accept failed for lack of disk space. It returns vm.ErrNoPendingTxs
// when there was nothing to build, an error for which isDiskFull holds
// when building or accepting must wait for space (the block is then kept
// for the next round), and an error wrapping errFatal when a verified block
// could not be accepted for another reason.
func (n *Node) round() (*vm.Block, error) {
	ctx := context.Background()
	t0 := time.Now()
	b := n.pendingAccept
	if b == nil {
		sb, err := n.vm.BuildBlock(ctx)
		if err != nil {
			return nil, err
		}
		var ok bool
		if b, ok = sb.(*vm.Block); !ok {
			return nil, fmt.Errorf("node: BuildBlock returned %T", sb)
		}
	}
	t1 := time.Now()
	if err := b.Verify(ctx); err != nil {
		_ = b.Reject(ctx)
		n.pendingAccept = nil
		return nil, fmt.Errorf("node: verifying built block %s: %w", b.ID(), err)
	}
	t2 := time.Now()
	if err := b.Accept(ctx); err != nil {
		if isDiskFull(err) {
			n.pendingAccept = b
			return nil, fmt.Errorf("node: block %s at height %d waits for disk space: %w", b.ID(), b.Height(), err)
		}
		return nil, fmt.Errorf("%w: block %s at height %d: %w", errFatal, b.ID(), b.Height(), err)
	}
	n.pendingAccept = nil
	t3 := time.Now()
	if err := n.vm.SetPreference(ctx, b.ID()); err != nil {
		return nil, fmt.Errorf("%w: preferring accepted block %s: %w", errFatal, b.ID(), err)
	}
	var msgs int
	for _, t := range b.Txs {
		if tt := t.Type(); tt == tx.TypeSendMessage || tt == tx.TypePostChannel {
			msgs++
		}
	}
	m := n.metrics
	m.build.Observe(t1.Sub(t0).Seconds())
	m.verify.Observe(t2.Sub(t1).Seconds())
	m.accept.Observe(t3.Sub(t2).Seconds())
	m.blocks.Inc()
	m.txs.Add(float64(len(b.Txs)))
	m.messages.Add(float64(msgs))
	m.blockTxs.Observe(float64(len(b.Txs)))
	n.log.Debug("block accepted",
		"height", b.Height(), "id", b.ID().String(), "txs", len(b.Txs), "messages", msgs,
		"build", t1.Sub(t0), "verify", t2.Sub(t1), "accept", t3.Sub(t2))
	return b, nil
}

// mkdirNew creates dir (and its parents) with mode 0700 and reports
// whether dir itself did not exist before.
func mkdirNew(dir string) (created bool, err error) {
	if _, err := os.Stat(dir); err == nil {
		return false, os.MkdirAll(dir, 0o700) // exists: MkdirAll checks it is a directory
	} else if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	return true, os.MkdirAll(dir, 0o700)
}
