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
	"os"
	"os/signal"
	"runtime/pprof"
	"runtime/trace"
	"syscall"
	"time"

	luxlog "github.com/luxfi/log"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// runNode is "sessionload node": the standalone node (package node, what
// sessiond runs) in this process, with an optional CPU profile covering
// its whole life. --spawn runs it as a child process so the generator and
// the node are separate processes, as with sessiond.
func runNode(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessionload node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg node.Config
	fs.StringVar(&cfg.DataDir, "data-dir", "", "data directory (required)")
	fs.StringVar(&cfg.HTTPAddr, "http", "127.0.0.1:0", "HTTP listen address")
	maxMessages := fs.Int64("max-messages", 0, "messages per session (0: the default)")
	fs.DurationVar(&cfg.BuildDelay, "build-delay", 0, "wait before building a block (0: the node's default)")
	fs.DurationVar(&cfg.BuildWindow, "build-window", 0, "gather arriving transactions for up to this long before building (0: the node's default; negative: none)")
	fs.IntVar(&cfg.BuildBatch, "build-batch", 0, "build at once when this many are pending (0: the node's default)")
	fs.DurationVar(&cfg.SyncInterval, "sync-interval", 0, "sync the database's logs every interval (0: the node's default, 1s; negative: never)")
	logLevel := fs.String("log-level", "warn", "log level")
	libLevel := fs.String("lib-log-level", "", "log level of the libraries (the database); default one level quieter than --log-level, at least warn")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the node to this file")
	traceFile := fs.String("trace", "", "keep the last --trace-window of the node's execution trace in memory and write it to this file on SIGUSR1 (and at exit)")
	traceWindow := fs.Duration("trace-window", 20*time.Second, "how much execution trace --trace keeps")
	fs.IntVar(&cfg.HTTP.Service.MaxConcurrent, "max-concurrent", 0, "JSON-RPC calls executing at once (0: the service's default)")
	stubAdmission := fs.Bool("stub-admission", false, "benchmarks: the JSON-RPC handler parses each submitted transaction and answers it admitted without giving it to the VM (measures the HTTP path alone)")
	frames := fs.String("frames", "", "benchmarks: also serve the framing prototype (frames.go: issueTx over a persistent TCP connection without HTTP, no bounds) on this loopback address")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "sessionload node: %v\n", err)
		return 2
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	// The database logs through luxfi/log's global logger: as sessiond
	// does, one level quieter than ours.
	lib := max(level, slog.LevelWarn)
	if *libLevel != "" {
		if err := lib.UnmarshalText([]byte(*libLevel)); err != nil {
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			return 2
		}
	}
	luxlog.SetGlobalLogger(luxlog.NewLoggerFromHandler(slog.NewTextHandler(stderr,
		&slog.HandlerOptions{Level: lib})))
	cfg.ChainOverrides = loadChain()
	if *stubAdmission {
		cfg.Handler = func(api vm.API) (http.Handler, error) { return service.NewHandler(stubAdmissionAPI{api}) }
	}
	if *frames != "" {
		host, _, err := net.SplitHostPort(*frames)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			fmt.Fprintf(stderr, "sessionload node: --frames needs a loopback address (the prototype has no bounds)\n")
			return 2
		}
		ln, err := net.Listen("tcp", *frames)
		if err != nil {
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			return 1
		}
		defer ln.Close()
		cfg.Handler = func(api vm.API) (http.Handler, error) {
			go serveFrames(ln, api)
			return service.NewHandler(api)
		}
	}
	if *maxMessages > 0 {
		cfg.ChainOverrides.MaxMessages = maxMessages
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	var recorder *trace.FlightRecorder
	if *traceFile != "" {
		recorder = trace.NewFlightRecorder(trace.FlightRecorderConfig{MinAge: *traceWindow, MaxBytes: 2 << 30})
		if err := recorder.Start(); err != nil {
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			return 1
		}
		defer recorder.Stop()
	}
	// Before the node serves: a SIGUSR1 that found no handler would end
	// the process.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGUSR1)
	defer signal.Stop(sig)
	n, err := node.Start(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "sessionload node: %v\n", err)
		return 1
	}
	code := 0
wait:
	for {
		select {
		case s := <-sig:
			if recorder != nil {
				if err := writeTrace(recorder, *traceFile); err != nil {
					fmt.Fprintf(stderr, "sessionload node: %v\n", err)
				}
			}
			if s != syscall.SIGUSR1 {
				break wait
			}
		case err := <-n.Err():
			fmt.Fprintf(stderr, "sessionload node: %v\n", err)
			code = 1
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := n.Shutdown(ctx); err != nil {
		fmt.Fprintf(stderr, "sessionload node: %v\n", err)
		code = 1
	}
	return code
}

// writeTrace writes the flight recorder's window to path.
func writeTrace(recorder *trace.FlightRecorder, path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := recorder.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stubAdmissionAPI answers every transaction admitted without giving it
// to the VM (the service has parsed it: tx.ParseOwned, which hashes it);
// the rest of the API is the VM's.
type stubAdmissionAPI struct{ vm.API }

func (stubAdmissionAPI) Issue(*tx.Tx) error { return nil }

// loadChain is the chain configuration of a load test (the built-in
// node's overrides; a spawned sessiond gets it as a genesis file). It
// measures messages: its identities register with the minimal proof of
// work instead of about a second each, each sends far more than the
// per-identity message and bytes rate limits a person needs (the default
// bytes bucket, 4 MiB, holds about 1,100 load messages of 3.7 KB; the
// other limits stay the defaults: the setup stays within them), and a
// session stores 10⁷ messages (the default 10,000 would cap a sender).
func loadChain() node.ChainOverrides {
	maxMessages := int64(10_000_000)
	work := config.MinimalRegistration()
	limits := config.Default().RateLimits
	limits.Messages = config.Bucket{Burst: 1 << 30, RefillSeconds: 1}
	limits.Bytes = config.Bucket{Burst: 1 << 30, RefillSeconds: 1}
	return node.ChainOverrides{MaxMessages: &maxMessages, Registration: &work, RateLimits: &limits}
}

// waitHealthy polls session.health until the node is healthy, the timeout
// passes or exited is closed.
func waitHealthy(url string, timeout time.Duration, exited <-chan struct{}) error {
	c := service.NewClient(url, service.WithTimeout(time.Second))
	deadline := time.Now().Add(timeout)
	for {
		h, err := c.Health(context.Background())
		if err == nil && h.Healthy {
			return nil
		}
		select {
		case <-exited:
			return errors.New("the node exited while starting")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s not healthy after %v (last: %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
