// Command sessionvm is the SessionVM plugin: a Lux node starts it as a
// subprocess and talks to it over gRPC (rpcchainvm). Install the binary in
// the node's plugin directory under the VM ID:
//
//	go build -o ~/.lux/plugins/current/$(go run ./cmd/sessionvm --vm-id) ./cmd/sessionvm
//
// Without flags it serves the VM; the node passes the runtime engine address
// in the environment (LUX_VM_RUNTIME_ENGINE_ADDR). It writes nothing to
// stdout while serving and logs to stderr.
//
// Flags:
//
//	--vm-id       print the VM ID (the name "sessionvm" zero-padded to 32 bytes, in CB58) and exit
//	--version     print the VM version and the VM ID and exit
//	--log-level   stderr log level while serving (env SESSIONVM_LOG_LEVEL; default info)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	luxlog "github.com/luxfi/log"
	"github.com/luxfi/node/vms/rpcchainvm"
	"github.com/luxfi/node/vms/rpcchainvm/runtime"

	"github.com/luxfi/session/vm"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessionvm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	printID := fs.Bool("vm-id", false, "print the VM ID and exit")
	printVersion := fs.Bool("version", false, "print the version and the VM ID and exit")
	logLevel := fs.String("log-level", envOr("SESSIONVM_LOG_LEVEL", "info"), "log level on stderr: debug, info, warn, error (env SESSIONVM_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sessionvm [--vm-id | --version]\n\n"+
			"sessionvm is a Lux rpcchainvm plugin; a Lux node runs it from its plugin\n"+
			"directory (file name: the VM ID, %s).\n\n", VMID())
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sessionvm: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	switch {
	case *printID:
		fmt.Fprintln(stdout, VMID())
		return 0
	case *printVersion:
		fmt.Fprintf(stdout, "%s vmID=%s\n", vm.Version, VMID())
		return 0
	}

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintf(stderr, "sessionvm: bad --log-level %q: %v\n", *logLevel, err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("vm", vm.Name)
	if os.Getenv(runtime.EngineAddressKey) == "" {
		fmt.Fprintf(stderr, "sessionvm: this is a Lux VM plugin; a Lux node starts it (%s is not set).\n"+
			"Install it as <plugin-dir>/%s; run the standalone node with `go run ./cmd/sessiond`.\n",
			runtime.EngineAddressKey, VMID())
		return 1
	}
	ctx := watchParent(context.Background(), os.Getppid, time.Second)
	if err := serve(ctx, logger); err != nil {
		logger.Error("plugin stopped", "error", err)
		return 1
	}
	return 0
}

// serve runs the VM as an rpcchainvm plugin until the node stops it.
func serve(ctx context.Context, logger *slog.Logger) error {
	// Libraries log through luxfi/log's global logger: same place, same
	// format, never stdout.
	luxlog.SetGlobalLogger(luxlog.NewLoggerFromHandler(logger.Handler()))
	v := newVM()
	logger.Info("serving", "version", vm.Version, "vmID", VMID().String(), "pid", os.Getpid())
	err := rpcchainvm.Serve(ctx, luxlog.NewLoggerFromHandler(logger.Handler()), pluginVM{v}, shutdownGuard(logger))
	// rpcchainvm's server does not call the VM's Shutdown when the node
	// shuts the plugin down (it only closes its connections, and the node
	// owns the database). Stop the VM's goroutines here; the database
	// connection is already closed, so errors about it are expected. When
	// the node died instead, its database connection is not closed but
	// gone, and the database client waits for it forever: give up after
	// a few seconds (there is nothing local to flush) and exit.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- v.Shutdown(sctx) }()
	select {
	case serr := <-stopped:
		if serr != nil {
			logger.Debug("vm shutdown after serve", "error", serr)
		}
	case <-sctx.Done():
		logger.Warn("vm shutdown did not finish: the node's database is unreachable (the node went away); exiting without it")
	}
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
