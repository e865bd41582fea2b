// Command sessiond is the standalone SessionVM node: the chain VM in-process
// on an on-disk database, one block whenever transactions are pending, and
// the JSON-RPC API on http://127.0.0.1:9652/rpc.
//
//	go run ./cmd/sessiond                       # default chain, data in ~/.sessiond
//	go run ./cmd/sessiond --data-dir /tmp/s1 --http 127.0.0.1:9700
//	go run ./cmd/sessiond --genesis genesis.json
//
// The first start stores the genesis in the data directory; later starts
// use it and refuse a different --genesis. SIGINT or SIGTERM stops the node
// cleanly: HTTP stops, pending transactions are built into blocks, the
// database is synced and closed. Run with --help for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	luxlog "github.com/luxfi/log"

	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, nil))
}

// options are the parsed command line.
type options struct {
	cfg         node.Config
	logLevel    slog.Level
	logJSON     bool
	showVersion bool
	shutdownTTL time.Duration
	debugHTTP   string // loopback address of the profiling endpoint, or ""
}

// defaultDataDir is $SESSIOND_DATA_DIR, else $XDG_DATA_HOME/sessiond, else
// ~/.sessiond.
func defaultDataDir() string {
	if d := os.Getenv("SESSIOND_DATA_DIR"); d != "" {
		return d
	}
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "sessiond")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".sessiond")
	}
	return ".sessiond"
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// int64Flag is an optional int64 flag: nil until set.
type int64Flag struct{ p **int64 }

func (f int64Flag) String() string {
	if f.p == nil || *f.p == nil {
		return ""
	}
	return strconv.FormatInt(**f.p, 10)
}

func (f int64Flag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return err
	}
	*f.p = &v
	return nil
}

func parseArgs(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("sessiond", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.cfg.DataDir, "data-dir", defaultDataDir(), "data directory (env SESSIOND_DATA_DIR; default $XDG_DATA_HOME/sessiond or ~/.sessiond)")
	fs.StringVar(&o.cfg.HTTPAddr, "http", envOr("SESSIOND_HTTP", node.DefaultHTTPAddr), "HTTP listen address for /rpc, /metrics and /health (env SESSIOND_HTTP)")
	genesisPath := fs.String("genesis", os.Getenv("SESSIOND_GENESIS"), "genesis JSON file for a new chain (env SESSIOND_GENESIS); default: the stored one, else the built-in genesis")
	vmConfig := fs.String("vm-config", "", "node-local VM config JSON file: mempoolTxs, mempoolBytes, maxPendingPerAuthor, maxPendingBytesPerAuthor, diskReserveBytes, diskPath")
	fs.Var(int64Flag{&o.cfg.ChainOverrides.SessionTTL}, "session-ttl", "built-in genesis: seconds a session stays open (default 86400)")
	fs.Var(int64Flag{&o.cfg.ChainOverrides.MaxMessages}, "max-messages", "built-in genesis: messages a session or channel stores (default 10000)")
	fs.Var(int64Flag{&o.cfg.ChainOverrides.MaxChannels}, "max-channels", "built-in genesis: channels one identity may own (default 1000)")
	fs.Var(int64Flag{&o.cfg.ChainOverrides.RetentionDays}, "retention-days", "built-in genesis: days a message is kept (default 30)")
	fs.BoolVar(&o.cfg.DisableWebUI, "no-web-ui", false, "do not serve the web messenger at /")
	allowedHosts := fs.String("http-allowed-hosts", os.Getenv("SESSIOND_HTTP_ALLOWED_HOSTS"), "comma-separated host names accepted in the Host header besides IP addresses, localhost and the --http host; * for any (env SESSIOND_HTTP_ALLOWED_HOSTS)")
	allowedOrigins := fs.String("http-allowed-origins", os.Getenv("SESSIOND_HTTP_ALLOWED_ORIGINS"), "comma-separated web origins (https://app.example) whose pages may call the node from a browser; * for any; default: none but the node's own (env SESSIOND_HTTP_ALLOWED_ORIGINS)")
	fs.IntVar(&o.cfg.HTTP.MaxConns, "http-max-conns", service.DefaultMaxConns, "most HTTP connections open at once")
	fs.Var(sizeFlag{&o.cfg.HTTP.Service.ResponseBudget}, "http-response-budget", "most bytes of responses held at once, e.g. 64MiB (default 64MiB)")
	fs.Var(sizeFlag{&o.cfg.HTTP.Service.BodyBudget}, "http-body-budget", "most bytes of request bodies held at once, e.g. 64MiB (default 64MiB)")
	wsOn := fs.Bool("ws", true, "serve the streaming transport, JSON-RPC over a WebSocket at /rpc (docs/stream.md); --ws=false answers upgrades 400")
	fs.IntVar(&o.cfg.HTTP.Stream.MaxConns, "ws-max-conns", service.DefaultStreamMaxConns, "most WebSockets open at once (they count in --http-max-conns too); more are answered 503")
	fs.Float64Var(&o.cfg.HTTP.Stream.CallRate, "ws-call-rate", service.DefaultCallRate, "calls per second one WebSocket may make (burst 256); a faster client is read more slowly")
	fs.BoolVar(&o.cfg.SyncWrites, "sync-writes", false, "BadgerDB data directories of earlier versions: fsync every block commit (survives power loss, slower); a database made by this version always does")
	fs.DurationVar(&o.cfg.SyncInterval, "sync-interval", node.DefaultSyncInterval, "BadgerDB data directories of earlier versions, without --sync-writes: sync the database's logs this often (a power loss loses about this much; writes reach the disk steadily); negative: never")
	fs.DurationVar(&o.cfg.BuildDelay, "build-delay", node.DefaultBuildDelay, "wait after the first pending transaction before building a block, to batch bursts")
	fs.DurationVar(&o.cfg.BuildWindow, "build-window", node.DefaultBuildWindow, "while transactions keep arriving, gather them into one block for up to this long after the first pending one (steps of --build-delay; 0: no gathering beyond --build-delay)")
	fs.IntVar(&o.cfg.BuildBatch, "build-batch", node.DefaultBuildBatch, "build at once when this many transactions are pending")
	fs.DurationVar(&o.shutdownTTL, "shutdown-timeout", 15*time.Second, "how long shutdown waits for in-flight HTTP requests")
	logLevel := fs.String("log-level", envOr("SESSIOND_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env SESSIOND_LOG_LEVEL)")
	fs.BoolVar(&o.logJSON, "log-json", false, "log JSON lines instead of text")
	fs.StringVar(&o.debugHTTP, "debug-http", "", "serve Go's CPU and heap profiles and execution traces (net/http/pprof, under /debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; off by default")
	fs.BoolVar(&o.showVersion, "version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sessiond [flags]\n\nThe standalone SessionVM node. Flags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := o.logLevel.UnmarshalText([]byte(*logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if o.debugHTTP != "" {
		if err := checkLoopback(o.debugHTTP); err != nil {
			return nil, fmt.Errorf("--debug-http: %w", err)
		}
	}
	o.cfg.HTTP.AllowedHosts = splitList(*allowedHosts)
	o.cfg.HTTP.AllowedOrigins = splitList(*allowedOrigins)
	o.cfg.HTTP.DisableWebSocket = !*wsOn
	if o.cfg.BuildDelay == 0 {
		o.cfg.BuildDelay = -1 // "no wait"; zero would mean the default
	}
	if o.cfg.BuildWindow == 0 {
		o.cfg.BuildWindow = -1 // "no gathering"; zero would mean the default
	}
	if *genesisPath != "" {
		b, err := os.ReadFile(*genesisPath)
		if err != nil {
			return nil, fmt.Errorf("--genesis: %w", err)
		}
		o.cfg.Genesis = b
	}
	if *vmConfig != "" {
		b, err := os.ReadFile(*vmConfig)
		if err != nil {
			return nil, fmt.Errorf("--vm-config: %w", err)
		}
		if _, err := vm.ParseNodeConfig(b); err != nil {
			return nil, fmt.Errorf("--vm-config %s: %w", *vmConfig, err)
		}
		o.cfg.VMConfig = b
	}
	return o, nil
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// sizeFlag is a byte size: a number with an optional KiB, MiB or GiB
// suffix.
type sizeFlag struct{ p *int64 }

func (f sizeFlag) String() string {
	if f.p == nil || *f.p == 0 {
		return ""
	}
	return strconv.FormatInt(*f.p, 10)
}

func (f sizeFlag) Set(s string) error {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if v, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = v, u.mult
			break
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > (1<<50)/mult {
		return errors.New("want a positive size such as 65536, 512KiB or 64MiB")
	}
	*f.p = v * mult
	return nil
}

// run is main with its effects injectable; stop, when non-nil, replaces
// SIGINT/SIGTERM (tests).
func run(args []string, stdout, stderr io.Writer, stop <-chan struct{}) int {
	o, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "sessiond: %v\n", err)
		return 2
	}
	if o.showVersion {
		fmt.Fprintf(stdout, "sessiond %s\n", vm.Version)
		return 0
	}
	// Two handlers (ours and the libraries') share stderr.
	stderr = &lockedWriter{w: stderr}
	newHandler := func(level slog.Level) slog.Handler {
		hopts := &slog.HandlerOptions{Level: level}
		if o.logJSON {
			return slog.NewJSONHandler(stderr, hopts)
		}
		return slog.NewTextHandler(stderr, hopts)
	}
	log := slog.New(newHandler(o.logLevel))
	o.cfg.Logger = log
	// Libraries (the database) log through luxfi/log's global logger; send
	// it to the same place, one level quieter: their info lines are noise
	// unless debugging.
	libLevel := slog.LevelWarn
	if o.logLevel <= slog.LevelDebug {
		libLevel = slog.LevelInfo
	}
	luxlog.SetGlobalLogger(luxlog.NewLoggerFromHandler(newHandler(max(libLevel, o.logLevel)).WithAttrs([]slog.Attr{slog.String("component", "lib")})))

	if stop == nil {
		// Before the node serves, so that a SIGTERM as soon as it answers
		// stops it cleanly instead of ending the process.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		defer signal.Stop(sig)
		ch := make(chan struct{})
		go func() {
			s := <-sig
			log.Info("signal received", "signal", s.String())
			close(ch)
		}()
		stop = ch
	}
	var debugLn net.Listener
	if o.debugHTTP != "" {
		// Listen before the node starts, so a taken port fails the start.
		if debugLn, err = net.Listen("tcp", o.debugHTTP); err != nil {
			log.Error("cannot start", "error", fmt.Errorf("--debug-http: %w", err))
			return 1
		}
	}
	n, err := node.Start(o.cfg)
	if err != nil {
		if debugLn != nil {
			debugLn.Close()
		}
		log.Error("cannot start", "error", err)
		return 1
	}
	if debugLn != nil {
		srv := debugServer()
		go func() { _ = srv.Serve(debugLn) }()
		defer srv.Close()
		log.Info("profiling endpoint", "url", "http://"+debugLn.Addr().String()+"/debug/pprof/")
	}
	code := 0
	select {
	case <-stop:
	case err := <-n.Err():
		log.Error("stopping after a fatal error", "error", err)
		code = 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.shutdownTTL)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		log.Error("shutdown", "error", err)
		code = 1
	}
	return code
}

// checkLoopback accepts host:port whose host is localhost or a loopback
// IP: the profiling endpoint shows the process's memory and takes its CPU,
// so it is never served to the network (reach it through SSH).
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address (127.0.0.1, [::1] or localhost)", addr)
	}
	return nil
}

// debugServer serves net/http/pprof's handlers: /debug/pprof/ (the index
// and the named profiles), profile (CPU), trace (execution trace), symbol
// and cmdline.
func debugServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// pprof refuses a ?seconds= beyond the write timeout.
	return &http.Server{Handler: debugGuard(mux), ReadHeaderTimeout: 10 * time.Second, WriteTimeout: 10 * time.Minute}
}

// debugGuard serves only what no web page of another site can make a
// browser on this machine send: a loopback address is no barrier to the
// browser. The Host must be localhost or a loopback IP (a DNS-rebinding
// page, whose own name resolves to 127.0.0.1, sends its name, and could
// then read the profiles); a request with an Origin (a script's fetch) or
// with Sec-Fetch-Site other than none (typed or bookmarked) or
// same-origin (the index's links) is refused too, so that an <img> on any
// site cannot start a ten-minute CPU profile or execution trace. go tool
// pprof and curl send none of these headers.
func debugGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		ip := net.ParseIP(host)
		switch site := r.Header.Get("Sec-Fetch-Site"); {
		case !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()):
			http.Error(w, "forbidden: Host must be localhost or a loopback address", http.StatusForbidden)
		case r.Header.Get("Origin") != "", site != "" && site != "none" && site != "same-origin":
			http.Error(w, "forbidden: requests from web pages of other sites are refused", http.StatusForbidden)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
