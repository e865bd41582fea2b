package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// TestMain runs the node of BenchmarkIngest when this test binary is
// started as its child process.
func TestMain(m *testing.M) {
	if args := os.Getenv("SESSIONLOAD_CHILD_NODE"); args != "" {
		os.Exit(runNode(strings.Fields(args), os.Stderr))
	}
	os.Exit(m.Run())
}

// ingestAuthors is the number of identities sending: each its own
// session (with the next author), one client each over HTTP.
const ingestAuthors = 64

// BenchmarkIngest measures, in one run, the CPU a node spends per signed
// 256-byte SendMessage accepted, three ways:
//
//	inproc   the VM in this process on BadgerDB: IssueTx of the signed
//	         bytes (one goroutine per core), then BuildBlock → Verify →
//	         Accept until every message is accepted (full blocks)
//	single   a node (package node, what sessiond runs) in a child process,
//	         64 clients each posting one session.issueTx request per
//	         message over loopback HTTP, keep-alive
//	batch    the same, each request a JSON-RPC batch of 64 issueTx calls
//	http     the node's HTTP path alone, one request per message and in
//	http-batch  batches: the same node and requests, but its handler
//	         answers each transaction admitted once parsed, and the VM
//	         never sees it (sessionload node --stub-admission)
//
// and reports the node's CPU per message (from /proc/<pid>/stat) and its
// ratio to inproc. single − http is what the VM costs inside the node per
// message, to compare with inproc (smaller blocks cost more per message).
// One op is one message: run with a fixed count, e.g.
//
//	go test ./cmd/sessionload -run XXX -bench Ingest -benchtime 20000x
//
// In-process, every message is admitted first, then built into full
// blocks: the least CPU the VM spends per message. The clients run in
// this process, on the same cores as the node: the messages/s figures
// include that contention; the CPU figures are the node's alone.
// INGEST_ROUNDS=k runs the three phases k times, alternating, and reports
// medians (of the ratios: per round). SESSIONLOAD_NODE_PROFILE=<prefix>
// writes the child nodes' CPU profiles to <prefix>-single-<round>.prof
// and <prefix>-batch-<round>.prof.
func BenchmarkIngest(b *testing.B) {
	n := b.N
	if n < ingestAuthors {
		n = ingestAuthors
	}
	if n > 60000 {
		b.Fatalf("at most 60000 messages (the node's mempool holds 65536)")
	}
	if b.N == 1 {
		return // the framework's probe run; -benchtime Nx runs N next
	}
	authors := vmtest.Identities(0xa1, ingestAuthors)
	rounds := 1
	if r, err := strconv.Atoi(os.Getenv("INGEST_ROUNDS")); err == nil && r > 0 {
		rounds = r
	}
	// The HTTP-only phases take any signed messages: signed once.
	sessions := make([]ids.ID, len(authors))
	for i := range sessions {
		sessions[i] = ids.ID{byte(i), 0x5e}
	}
	stubTxs := signMessages(b, authors, ids.ID{0x5e}, sessions, 2, n)
	// Rounds alternate the phases, so load that other processes put on
	// the machine falls on all of them; the medians are reported.
	var inproc, single, batch, httpSingle, httpBatch []ingestResult
	for r := range rounds {
		inproc = append(inproc, ingestInProc(b, authors, n))
		single = append(single, ingestNode(b, authors, n, 1, fmt.Sprintf("single-%d", r)))
		batch = append(batch, ingestNode(b, authors, n, 64, fmt.Sprintf("batch-%d", r)))
		httpSingle = append(httpSingle, ingestHTTP(b, stubTxs, len(authors), 1, fmt.Sprintf("http-%d", r)))
		httpBatch = append(httpBatch, ingestHTTP(b, stubTxs, len(authors), 64, fmt.Sprintf("http-batch-%d", r)))
		b.Logf("round %d: CPU µs/msg in-process %.1f, node single %.1f (gen %.1f), node batch %.1f (gen %.1f), HTTP path alone %.1f, batches %.1f; msgs/block %.0f %.0f %.0f",
			r, inproc[r].nodeCPU, single[r].nodeCPU, single[r].genCPU, batch[r].nodeCPU, batch[r].genCPU,
			httpSingle[r].nodeCPU, httpBatch[r].nodeCPU, inproc[r].perBlk, single[r].perBlk, batch[r].perBlk)
	}
	med := func(rs []ingestResult, f func(ingestResult) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	ratio := func(rs []ingestResult) float64 { // median of the per-round ratios
		v := make([]float64, len(rs))
		for i := range rs {
			v[i] = rs[i].nodeCPU / inproc[i].nodeCPU
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	cpu := func(r ingestResult) float64 { return r.nodeCPU }
	b.ReportMetric(med(inproc, cpu), "inproc-µs/msg")
	b.ReportMetric(med(single, cpu), "single-µs/msg")
	b.ReportMetric(med(batch, cpu), "batch-µs/msg")
	b.ReportMetric(ratio(single), "single/inproc")
	b.ReportMetric(ratio(batch), "batch/inproc")
	b.ReportMetric(med(httpSingle, cpu), "http-single-µs/msg")
	b.ReportMetric(med(httpBatch, cpu), "http-batch-µs/msg")
	rate := func(r ingestResult) float64 { return r.rate }
	b.ReportMetric(med(inproc, rate), "inproc-msgs/s")
	b.ReportMetric(med(single, rate), "single-msgs/s")
	b.ReportMetric(med(batch, rate), "batch-msgs/s")
	gen := func(r ingestResult) float64 { return r.genCPU }
	b.ReportMetric(med(single, gen), "single-gen-µs/msg")
	b.ReportMetric(med(batch, gen), "batch-gen-µs/msg")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parallelDo runs f(0..n-1) on every core.
func parallelDo(n int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				f(i)
			}
		}()
	}
	wg.Wait()
}

// signMessages signs n messages round-robin over the authors (message i
// is author i%len's, with nonce first + i/len).
func signMessages(b *testing.B, authors []*crypto.Identity, chainID ids.ID, sessions []ids.ID, first uint64, n int) []*tx.Tx {
	payload := make([]byte, 256)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	txs := make([]*tx.Tx, n)
	var failed atomic.Value
	parallelDo(n, func(i int) {
		a := i % len(authors)
		t, err := tx.Sign(authors[a], chainID, first+uint64(i/len(authors)), &tx.SendMessage{Session: sessions[a], Ciphertext: payload})
		if err != nil {
			failed.Store(err)
			return
		}
		txs[i] = t
	})
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return txs
}

func ingestInProc(b *testing.B, authors []*crypto.Identity, n int) ingestResult {
	ctx := context.Background()
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, map[string]any{"maxMessages": 1 << 30}, authors...)
	if err != nil {
		b.Fatal(err)
	}
	db, err := vm.OpenDB(b.TempDir(), vm.DBOptions{})
	if err != nil {
		b.Fatal(err)
	}
	v := vm.New()
	if err := v.Initialize(ctx, nil, db, genesis, nil, []byte(`{"mempoolTxs":1000000,"mempoolBytes":8589934592,"maxPendingPerAuthor":1000000}`), nil, nil, nil); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = v.Shutdown(ctx) }()
	chainID := v.ChainID()
	sessions := make([]ids.ID, len(authors))
	for i, a := range authors {
		next, _ := crypto.ParseSessionID(authors[(i+1)%len(authors)].SessionID)
		t, err := tx.Sign(a, chainID, 0, &tx.CreateSession{Participants: []crypto.SessionID{next}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
		sessions[i] = tx.SessionIDFor(chainID, t.Author, 0)
	}
	for {
		if _, err := v.BuildAndAccept(ctx); errors.Is(err, vm.ErrNoPendingTxs) {
			break
		} else if err != nil {
			b.Fatal(err)
		}
	}
	txs := signMessages(b, authors, chainID, sessions, 1, n)

	// Admission of every message (one goroutine per core, each owning
	// whole authors so nonces arrive in order), then the blocks: the
	// cost per message with full blocks, the least the VM spends.
	cpu0, t0 := processCPU(), time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var issueErr atomic.Value
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				if (i%len(authors))%workers != w {
					continue
				}
				if _, err := v.IssueTx(txs[i].Bytes()); err != nil {
					issueErr.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, _ := issueErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	blocks := 0
	for accepted := 0; accepted < n; blocks++ {
		blk, err := v.BuildAndAccept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		accepted += len(blk.Txs)
	}
	elapsed, cpu := time.Since(t0), processCPU()-cpu0
	return ingestResult{
		nodeCPU: float64(cpu.Microseconds()) / float64(n),
		rate:    float64(n) / elapsed.Seconds(),
		perBlk:  float64(n) / float64(blocks),
	}
}

// ingestResult is one phase's figures: CPU µs per message of the node
// (or of this process, in-process), of the clients, messages/s, and
// messages per block.
type ingestResult struct{ nodeCPU, genCPU, rate, perBlk float64 }

// childNode runs a node (sessionload node, with extra arguments) in a
// child process on a free port with a temporary data directory, and
// returns its URL, its PID and what stops it.
func childNode(b *testing.B, name string, extra ...string) (url string, pid int, stop func()) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	args := "--data-dir " + b.TempDir() + " --http " + addr + " --max-messages 100000000 --log-level warn " + strings.Join(extra, " ")
	if p := os.Getenv("SESSIONLOAD_NODE_PROFILE"); p != "" {
		args += " --cpuprofile " + p + "-" + name + ".prof"
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), "SESSIONLOAD_CHILD_NODE="+args)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	url = "http://" + addr + "/rpc"
	if err := waitHealthy(url, 30*time.Second, exited); err != nil {
		stop()
		b.Fatal(err)
	}
	return url, cmd.Process.Pid, stop
}

// ingestRequests encodes the issueTx requests of each author (message i
// is author i%authors's), batch calls per request.
func ingestRequests(txs []*tx.Tx, authors, batch int) [][][]byte {
	requests := make([][][]byte, authors)
	for a := range authors {
		var mine [][]byte
		for i := a; i < len(txs); i += authors {
			mine = append(mine, issueBody(uint64(i+1), txs[i].Bytes()))
		}
		for len(mine) > 0 {
			k := min(batch, len(mine))
			if batch == 1 {
				requests[a] = append(requests[a], mine[0])
			} else {
				requests[a] = append(requests[a], append(append([]byte("["), bytes.Join(mine[:k], []byte(","))...), ']'))
			}
			mine = mine[k:]
		}
	}
	return requests
}

// postAll posts each author's requests in order, one client per author.
func postAll(hc *http.Client, url string, requests [][][]byte) error {
	var postErr atomic.Value
	var wg sync.WaitGroup
	for a := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range requests[a] {
				if err := postIngest(hc, url, body); err != nil {
					postErr.Store(fmt.Errorf("author %d: %w", a, err))
					return
				}
			}
		}()
	}
	wg.Wait()
	err, _ := postErr.Load().(error)
	return err
}

func ingestClient() *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * ingestAuthors, MaxIdleConnsPerHost: 2 * ingestAuthors}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// ingestHTTP measures the node's HTTP path alone: a node whose handler
// parses each transaction and answers it admitted without giving it to
// the VM (--stub-admission), fed txs as the node phases are, batch calls
// per request; the node's CPU per message from the first request to the
// last response.
func ingestHTTP(b *testing.B, txs []*tx.Tx, authors, batch int, name string) ingestResult {
	url, pid, stop := childNode(b, name, "--stub-admission")
	defer stop()
	hc := ingestClient()
	defer hc.Transport.(*http.Transport).CloseIdleConnections()
	requests := ingestRequests(txs, authors, batch)
	cpu0, gen0, t0 := sampleCPU(pid), processCPU(), time.Now()
	if err := postAll(hc, url, requests); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(t0)
	cpu1, gen1 := sampleCPU(pid), processCPU()
	if !cpu0.haveNode || !cpu1.haveNode {
		b.Fatal("no CPU figures of the node process")
	}
	n := len(txs)
	return ingestResult{
		nodeCPU: float64((cpu1.node - cpu0.node).Microseconds()) / float64(n),
		genCPU:  float64((gen1 - gen0).Microseconds()) / float64(n),
		rate:    float64(n) / elapsed.Seconds(),
	}
}

// ingestNode runs a node in a child process and submits n messages to it
// over HTTP, batch per request.
func ingestNode(b *testing.B, authors []*crypto.Identity, n, batch int, name string) ingestResult {
	ctx := context.Background()
	url, pid, stop := childNode(b, name)
	defer stop()
	hc := ingestClient()
	defer hc.Transport.(*http.Transport).CloseIdleConnections()
	c := service.NewClient(url, service.WithHTTPClient(hc), service.WithPollInterval(5*time.Millisecond))

	// Setup: register the authors, open a session each.
	chainID, err := c.ChainID(ctx)
	if err != nil {
		b.Fatal(err)
	}
	sessions := make([]ids.ID, len(authors))
	var setupErr atomic.Value
	var wg sync.WaitGroup
	for _, a := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.Register(ctx, a)
			if err == nil {
				_, err = c.WaitAccepted(ctx, r.TxID)
			}
			if err != nil {
				setupErr.Store(err)
			}
		}()
	}
	wg.Wait()
	for i, a := range authors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.CreateSession(ctx, a, authors[(i+1)%len(authors)].SessionID)
			if err == nil {
				sessions[i] = r.Session
				_, err = c.WaitAccepted(ctx, r.TxID)
			}
			if err != nil {
				setupErr.Store(err)
			}
		}()
	}
	wg.Wait()
	if err, _ := setupErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	txs := signMessages(b, authors, chainID, sessions, 2, n)
	requests := ingestRequests(txs, len(authors), batch) // encoded in advance
	st0, err := c.Status(ctx)
	if err != nil {
		b.Fatal(err)
	}
	var st *service.StatusReply

	cpu0, gen0, t0 := sampleCPU(pid), processCPU(), time.Now()
	var postErr atomic.Value
	posted := make(chan struct{})
	go func() {
		defer close(posted)
		if err := postAll(hc, url, requests); err != nil {
			postErr.Store(err)
		}
	}()
	for {
		if err, _ := postErr.Load().(error); err != nil {
			b.Fatal(err)
		}
		if st, err = c.Status(ctx); err != nil {
			b.Fatal(err)
		}
		if st.MessagesTotal >= st0.MessagesTotal+uint64(n) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(t0)
	cpu1, gen1 := sampleCPU(pid), processCPU()
	<-posted
	if !cpu0.haveNode || !cpu1.haveNode {
		b.Fatal("no CPU figures of the node process")
	}
	return ingestResult{
		nodeCPU: float64((cpu1.node - cpu0.node).Microseconds()) / float64(n),
		genCPU:  float64((gen1 - gen0).Microseconds()) / float64(n),
		rate:    float64(n) / elapsed.Seconds(),
		perBlk:  float64(n) / float64(max(st.Height-st0.Height, 1)),
	}
}

// postIngest posts one request (a call or a batch) and checks that every
// call was admitted.
func postIngest(hc *http.Client, url string, body []byte) error {
	resp, err := hc.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, data)
	}
	if body[0] == '[' {
		var rs []struct {
			Error *service.Error `json:"error"`
		}
		if err := json.Unmarshal(data, &rs); err != nil {
			return err
		}
		for _, r := range rs {
			if r.Error != nil {
				return r.Error
			}
		}
		return nil
	}
	var r struct {
		Error *service.Error `json:"error"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return err
	}
	if r.Error != nil {
		return r.Error
	}
	return nil
}
