// Command sessionload is a load generator for a SessionVM node. N
// concurrent clients, each its own registered identity sending into its own
// session, submit pre-signed SendMessage transactions over JSON-RPC
// (session.issueTx) and the tool reports the messages/s the node sustained
// and the submit → accepted latency (p50/p90/p99).
//
//	sessionload --spawn                           # start a node (separate process), max throughput for 10s
//	sessionload --spawn --then-half               # then a fixed-rate run at half the measured maximum
//	sessionload --node http://127.0.0.1:9652/rpc --rate 2500 --duration 20s
//	sessionload genesis > load.json              # the load chain, for sessiond --genesis load.json
//
// See README.md in this directory for the method and measured results.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/luxfi/session/node"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "node" {
		os.Exit(runNode(os.Args[2:], os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "genesis" {
		os.Exit(runGenesis(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("sessionload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	nodeURL := fs.String("node", envOr("SESSION_NODE", "http://127.0.0.1:9652/rpc"), "JSON-RPC endpoint of the node to load (env SESSION_NODE)")
	spawn := fs.Bool("spawn", false, "start a node as a child process on a free loopback port with a temporary data directory, instead of --node")
	sessiond := fs.String("sessiond", "", "with --spawn: the sessiond binary to run (default: this binary's built-in node, the same node package sessiond runs)")
	nodeProfile := fs.String("node-cpuprofile", "", "with --spawn and the built-in node: write the node's CPU profile to this file")
	buildDelay := fs.Duration("build-delay", 0, "with --spawn: the node's --build-delay (0: its default)")
	buildWindow := fs.Duration("build-window", 0, "with --spawn: the node's --build-window (0: its default; negative: no gathering)")
	var cfg Config
	fs.IntVar(&cfg.Clients, "clients", 32, "concurrent clients (identities, sessions)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the timed phase")
	fs.Float64Var(&cfg.Rate, "rate", 0, "target messages/s over all clients (0: as fast as possible)")
	fs.IntVar(&cfg.Payload, "payload", 256, "ciphertext bytes per message")
	fs.IntVar(&cfg.Batch, "batch", 1, "most messages per request (a JSON-RPC batch of issueTx calls; 1: one request per message)")
	fs.DurationVar(&cfg.Linger, "linger", 0, "rate mode with --batch: wait this long after a message is due for more to batch with it (counted in the latency)")
	fs.IntVar(&cfg.Window, "window", 0, "most unaccepted messages per client (0: 2 × --batch, at least 64)")
	fs.IntVar(&cfg.MaxTxs, "max-txs", 0, "messages to sign in advance (0: 60000, or rate × duration × 1.1)")
	fs.DurationVar(&cfg.Poll, "poll", 2*time.Millisecond, "status poll interval of the acceptance watcher")
	fs.BoolVar(&cfg.Verify, "verify", true, "check with getMessages at the end that the chain holds exactly the accepted messages")
	thenHalf := fs.Bool("then-half", false, "after a max-throughput run, run at half the measured rate (latency target)")
	jsonOut := fs.Bool("json", false, "print results as JSON")
	fs.BoolVar(&cfg.WebSocket, "ws", false, "submit over the node's WebSocket transport (docs/stream.md) instead of HTTP POST (a batch's messages as pipelined requests), and watch the sink's inbox by push instead of polling")
	fs.StringVar(&cfg.Frames, "frames", "", "benchmarks: submit over the framing prototype at this address (a `sessionload node --frames ADDR`; no HTTP, for weighing docs/stream.md) instead of HTTP")
	showTimeline := fs.Bool("timeline", false, "also print submit→accepted by the second of submission (where a tail comes from)")
	cpuProfile := fs.String("cpuprofile", "", "write the generator's CPU profile (timed phases included) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	cfg.Log = stderr
	if *spawn {
		var nodeArgs []string
		if *buildDelay != 0 {
			nodeArgs = append(nodeArgs, "--build-delay", buildDelay.String())
		}
		if *buildWindow > 0 {
			nodeArgs = append(nodeArgs, "--build-window", buildWindow.String())
		} else if *buildWindow < 0 {
			// sessiond takes 0 for none; the built-in node a negative value.
			w := "-1ns"
			if *sessiond != "" {
				w = "0"
			}
			nodeArgs = append(nodeArgs, "--build-window", w)
		}
		child, err := spawnNode(*sessiond, *nodeProfile, nodeArgs, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "sessionload: %v\n", err)
			return 1
		}
		defer child.stop(stderr)
		*nodeURL = child.url
		cfg.NodePID = child.cmd.Process.Pid
	}
	cfg.URL = *nodeURL
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "sessionload: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "sessionload: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	res, err := Run(ctx, cfg)
	if res != nil {
		report(stdout, res, *jsonOut, *showTimeline)
	}
	if err == nil && *thenHalf && cfg.Rate == 0 {
		half := cfg
		half.Rate = res.Throughput / 2
		half.MaxTxs = 0
		fmt.Fprintf(stderr, "fixed-rate run at %.0f messages/s\n", half.Rate)
		res, err = Run(ctx, half)
		if res != nil {
			report(stdout, res, *jsonOut, *showTimeline)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "sessionload: %v\n", err)
		return 1
	}
	return 0
}

func report(w io.Writer, r *Result, asJSON, showTimeline bool) {
	if !showTimeline {
		c := *r
		c.Timeline = nil
		r = &c
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(r)
		return
	}
	mode := "max throughput"
	if r.TargetRate > 0 {
		mode = fmt.Sprintf("fixed rate %.0f msgs/s", r.TargetRate)
	}
	batch := "one message per request"
	if r.Batch > 1 {
		batch = fmt.Sprintf("batches of up to %d", r.Batch)
	}
	fmt.Fprintf(w, "%s: %d clients, %d-byte payloads (%d-byte txs), %s\n", mode, r.Clients, r.Payload, r.TxBytes, batch)
	fmt.Fprintf(w, "  accepted %d of %d submitted in %.2fs: %.0f messages/s sustained (after the first fifth), %.0f overall\n",
		r.Accepted, r.Submitted, r.SendSecs, r.Throughput, r.OverallRate)
	fmt.Fprintf(w, "  submit→accepted  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n", r.P50, r.P90, r.P99, r.Max)
	fmt.Fprintf(w, "  submit→admitted  p50 %.2f ms  p99 %.2f ms\n", r.AdmitP50, r.AdmitP99)
	fmt.Fprintf(w, "  CPU per message: generator %.0f µs", r.GenCPUPerMsg)
	if r.NodeCPUPerMsg > 0 {
		fmt.Fprintf(w, ", node %.0f µs (node busy %.2f cores)", r.NodeCPUPerMsg, r.NodeCores)
	}
	if r.MachineCores > 0 {
		fmt.Fprintf(w, "; machine busy %.2f cores", r.MachineCores)
		if r.NodeCPUPerMsg > 0 {
			fmt.Fprintf(w, ", %.2f of them other processes", r.OtherCores)
		}
	}
	fmt.Fprintln(w)
	if r.PredictedRate > 0 {
		fmt.Fprintf(w, "  CPU bound: %d cores × 10⁶ / (%.0f + %.0f µs) = %.0f messages/s with node and generator alone on this machine\n",
			r.Cores, r.NodeCPUPerMsg, r.GenCPUPerMsg, r.PredictedRate)
	}
	if r.VerifyMicrosBefore > 0 {
		fmt.Fprintf(w, "  raw primitive in this run: ML-DSA-65 verify %.1f µs before, %.1f µs after (%d cores: %.0f verifications/s); sustained rate = %.3f of that\n",
			r.VerifyMicrosBefore, r.VerifyMicrosAfter, r.Cores, float64(r.Cores)*1e6/((r.VerifyMicrosBefore+r.VerifyMicrosAfter)/2), r.VerifyBoundShare)
	}
	if r.FreshPageMicros > 0 {
		fmt.Fprintf(w, "  host: first touch of fresh memory %.2f µs a 4 KiB page (a memtable switch and flush of BadgerDB, the database of earlier versions, touched ~70,000)\n", r.FreshPageMicros)
	}
	fmt.Fprintf(w, "  %d blocks, %.0f txs/block; %d mempool-full retries, %d errors; verified %v\n",
		r.Blocks, r.TxsPerBlk, r.Retries, r.Errors, r.Verified)
	if len(r.Timeline) > 0 {
		fmt.Fprintln(w, "  submitted in second   accepted   p50 ms   p99 ms   max ms   node faults   node cores")
		for _, s := range r.Timeline {
			fmt.Fprintf(w, "  %19d %10d %8.1f %8.1f %8.1f", s.At, s.Accepted, s.P50, s.P99, s.Max)
			if s.NodeFaults > 0 || s.NodeCores > 0 {
				fmt.Fprintf(w, " %13d %12.2f", s.NodeFaults, s.NodeCores)
			}
			fmt.Fprintln(w)
		}
	}
}

// runGenesis is "sessionload genesis": it prints a genesis of the load
// chain (loadChain: minimal registration work, the message and bytes
// rate limits lifted, 10⁷ messages per session; a fresh chain ID), for a
// sessiond that sessionload is to load with --node.
func runGenesis(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: sessionload genesis > load-genesis.json (then: sessiond --genesis load-genesis.json)")
		return 2
	}
	g, err := node.NewChainGenesis(loadChain(), time.Now(), rand.Reader)
	if err != nil {
		fmt.Fprintf(stderr, "sessionload genesis: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(append(g, '\n')); err != nil {
		return 1
	}
	return 0
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// child is a spawned node process.
type child struct {
	cmd     *exec.Cmd
	url     string
	dataDir string
	exited  chan struct{}
}

// spawnNode starts a node on a free loopback port with a temporary data
// directory, in its own process group, and waits until it is healthy.
// Its chain is a load-test chain (loadChain): the built-in node takes it
// as overrides, a sessiond binary as a genesis file.
func spawnNode(bin, cpuProfile string, nodeArgs []string, stderr io.Writer) (*child, error) {
	root, err := os.MkdirTemp("", "sessionload-node-")
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(root, "data")
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var args []string
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, err
		}
		args = append(args, "node")
		if cpuProfile != "" {
			args = append(args, "--cpuprofile", cpuProfile)
		}
	} else {
		if cpuProfile != "" {
			os.RemoveAll(root)
			return nil, errors.New("--node-cpuprofile needs the built-in node (no --sessiond)")
		}
		genesis, err := node.NewChainGenesis(loadChain(), time.Now(), rand.Reader)
		if err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		path := filepath.Join(root, "genesis.json")
		if err := os.WriteFile(path, genesis, 0o600); err != nil {
			os.RemoveAll(root)
			return nil, err
		}
		args = append(args, "--genesis", path)
	}
	args = append(args, "--data-dir", dir, "--http", addr, "--log-level", "warn")
	args = append(args, nodeArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		os.RemoveAll(root)
		return nil, err
	}
	c := &child{cmd: cmd, url: "http://" + addr + "/rpc", dataDir: root, exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.exited) }()
	if err := waitHealthy(c.url, 30*time.Second, c.exited); err != nil {
		c.stop(stderr)
		return nil, err
	}
	fmt.Fprintf(stderr, "spawned %s (pid %d) at %s, data in %s\n", bin, cmd.Process.Pid, c.url, dir)
	return c, nil
}

// stop ends the child with SIGTERM (so a profile is written), then SIGKILL
// to its group after 20s, and removes its data directory.
func (c *child) stop(stderr io.Writer) {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		fmt.Fprintln(stderr, "sessionload: node did not stop within 20s; killing it")
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.exited
	}
	os.RemoveAll(c.dataDir)
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
