package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// session (with the next author, who accepted it), one client each over
// HTTP.
const ingestAuthors = 64

// BenchmarkIngest measures the CPU a node spends per signed 256-byte
// SendMessage accepted over JSON-RPC against what the VM spends on the
// same messages in-process, paired: each sub-benchmark alternates, in
// rounds of one chunk of messages each (64 authors × 16), the node's
// ingestion and the in-process baseline (in alternating order), times
// each by the CPU clock of the process doing the work, and reports
// x-raw, the ratio of the sums (node CPU / in-process CPU), and
// x-raw-med, the median of the rounds' ratios. Load that other
// processes put on a shared machine comes and goes over seconds and so
// weighs on both sides alike, as in benchmarks/chat_bench_test.go's
// paired benchmarks.
//
//	inproc       the baseline: the VM in this process on BadgerDB, IssueTx
//	             of the signed bytes (one goroutine per core), then
//	             BuildBlock → Verify → Accept until the chunk is accepted
//	             (full blocks: the least the VM spends per message); this
//	             process's CPU (getrusage)
//	paired/single  a node (package node, what sessiond runs) in a child
//	             process, 64 clients each posting one session.issueTx
//	             request per message over loopback HTTP, keep-alive,
//	             until the chunk is accepted; the node's CPU (the sum of
//	             its threads' run time, /proc/<pid>/task/*/schedstat)
//	paired/batch   the same, each request a JSON-RPC batch of 16 issueTx
//	             calls (all of an author's messages in the chunk)
//	paired/http  the node's HTTP path alone: the same requests as
//	             paired/single to a node whose handler answers each
//	             transaction admitted once parsed, and the VM never sees
//	             it (sessionload node --stub-admission)
//	paired/frames  the same requests as paired/single, each in a frame
//	             of the framing prototype (frames.go: a persistent TCP
//	             connection per author, no HTTP), one at a time: what a
//	             streaming transport (docs/stream.md) would cost per
//	             message when a client has one message at a time
//	paired/frames-pipelined  the same, each author sending all its
//	             frames of a round before reading the answers, which the
//	             node then writes several at a time
//	paired/stream  the same requests as paired/single, each a text
//	             message over the node's WebSocket transport
//	             (docs/stream.md: one WebSocket per author, the real
//	             handshake, bounds and checks), one at a time
//	paired/stream-pipelined  the same, each author sending all its
//	             messages of a round before reading the answers
//
// One op is one message of each side: run with a fixed count (a multiple
// of the chunk), e.g.
//
//	go test ./cmd/sessionload -run XXX -bench Ingest/paired -benchtime 10240x
//
// The clients run in this process, on the same cores as the node
// (gen-µs/msg is their CPU); a forced GC before each in-process chunk,
// untimed, keeps the clients' garbage out of the baseline (and collects
// the VM's own garbage of the chunk before, which favours the baseline).
// INGEST_CHUNK sets the messages per author per chunk (16; also the
// calls per batch). SESSIONLOAD_NODE_PROFILE=<prefix> writes the child
// node's CPU profile to <prefix>-<mode>.prof; SESSIONLOAD_NODE_ARGS adds
// flags to the child node (sessionload node), e.g. --max-concurrent 2.
func BenchmarkIngest(b *testing.B) {
	b.Run("paired/single", func(b *testing.B) { ingestPaired(b, "single") })
	b.Run("paired/batch", func(b *testing.B) { ingestPaired(b, "batch") })
	b.Run("paired/http", func(b *testing.B) { ingestPaired(b, "http") })
	b.Run("paired/frames", func(b *testing.B) { ingestPaired(b, "frames") })
	b.Run("paired/frames-pipelined", func(b *testing.B) { ingestPaired(b, "frames-pipelined") })
	b.Run("paired/stream", func(b *testing.B) { ingestPaired(b, "stream") })
	b.Run("paired/stream-pipelined", func(b *testing.B) { ingestPaired(b, "stream-pipelined") })
}

func ingestPaired(b *testing.B, mode string) {
	if b.N == 1 {
		return // the framework's probe run; -benchtime Nx runs N next
	}
	perAuthor := 16
	if k, err := strconv.Atoi(os.Getenv("INGEST_CHUNK")); err == nil && k > 0 {
		perAuthor = k
	}
	chunk := perAuthor * ingestAuthors
	rounds := max(1, (b.N+chunk-1)/chunk)
	if rounds*perAuthor > 100_000 {
		b.Fatalf("at most %d messages", 100_000*ingestAuthors)
	}
	authors := vmtest.Identities(0xa1, ingestAuthors)
	base := newIngestVM(b, authors)
	defer base.close()
	node := newIngestNode(b, authors, mode)
	defer node.stop()
	batch := 1
	if mode == "batch" {
		batch = perAuthor
	}
	// Signed and encoded before the clock starts.
	baseTxs := signMessages(b, authors, base.chainID, base.sessions, base.nonce, rounds*chunk)
	nodeTxs := node.txs
	if node.txs == nil {
		nodeTxs = signMessages(b, authors, node.chainID, node.sessions, node.nonce, rounds*chunk)
	}
	var nodeCPU, baseCPU, genCPU time.Duration
	ratios := make([]float64, rounds)
	b.ResetTimer()
	for r := range rounds {
		var n, g, v time.Duration
		var nb, vb int
		nodeOp := func() {
			var blocks uint64
			if mode == "http" {
				n, g, _ = node.post(b, ingestRequests(nodeTxs, ingestAuthors, batch), false)
			} else {
				n, g, blocks = node.post(b, ingestRequests(nodeTxs[r*chunk:(r+1)*chunk], ingestAuthors, batch), true)
			}
			nb = int(blocks)
		}
		baseOp := func() { v, vb = base.ingest(b, baseTxs[r*chunk:(r+1)*chunk]) }
		if r%2 == 0 {
			nodeOp()
			baseOp()
		} else {
			baseOp()
			nodeOp()
		}
		nodeCPU, baseCPU, genCPU = nodeCPU+n, baseCPU+v, genCPU+g
		ratios[r] = float64(n) / float64(v)
		b.Logf("round %d: node %.1f µs/msg (%d blocks), in-process %.1f µs/msg (%d blocks): %.2fx", r,
			float64(n.Microseconds())/float64(chunk), nb, float64(v.Microseconds())/float64(chunk), vb, ratios[r])
	}
	b.StopTimer()
	msgs := float64(rounds * chunk)
	slices.Sort(ratios)
	b.ReportMetric(float64(nodeCPU.Microseconds())/msgs, "node-µs/msg")
	b.ReportMetric(float64(baseCPU.Microseconds())/msgs, "inproc-µs/msg")
	b.ReportMetric(float64(genCPU.Microseconds())/msgs, "gen-µs/msg")
	b.ReportMetric(float64(nodeCPU)/float64(baseCPU), "x-raw")
	b.ReportMetric(ratios[len(ratios)/2], "x-raw-med")
}

// ingestVM is the in-process baseline: a VM on BadgerDB in this process
// whose authors (genesis identities) each opened a session with the next
// author, who accepted it.
type ingestVM struct {
	v        *vm.VM
	chainID  ids.ID
	sessions []ids.ID
	nonce    uint64 // the authors' next nonce
}

func newIngestVM(b *testing.B, authors []*crypto.Identity) *ingestVM {
	ctx := context.Background()
	unlimited := map[string]any{"burst": 1 << 30, "refillSeconds": 1}
	genesis, err := vmtest.GenesisJSON(time.Now().Unix()-60, map[string]any{
		"maxMessages": 1 << 30,
		"rateLimits":  map[string]any{"messages": unlimited, "bytes": unlimited},
	}, authors...)
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
	p := &ingestVM{v: v, chainID: v.ChainID(), sessions: make([]ids.ID, len(authors)), nonce: 2}
	issue := func(t *tx.Tx, err error) {
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.IssueTx(t.Bytes()); err != nil {
			b.Fatal(err)
		}
	}
	for i, a := range authors {
		next, _ := crypto.ParseSessionID(authors[(i+1)%len(authors)].SessionID)
		issue(tx.Sign(a, p.chainID, 0, &tx.CreateSession{Participants: []crypto.SessionID{next}}))
		p.sessions[i] = tx.SessionIDFor(p.chainID, mustSID(b, a), 0)
	}
	for i, a := range authors {
		prev := (i + len(authors) - 1) % len(authors)
		issue(tx.Sign(a, p.chainID, 1, &tx.AcceptSession{Session: p.sessions[prev], Decision: tx.DecisionAccept}))
	}
	for {
		if _, err := v.BuildAndAccept(ctx); errors.Is(err, vm.ErrNoPendingTxs) {
			break
		} else if err != nil {
			b.Fatal(err)
		}
	}
	return p
}

func mustSID(b *testing.B, id *crypto.Identity) crypto.SessionID {
	sid, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		b.Fatal(err)
	}
	return sid
}

func (p *ingestVM) close() { _ = p.v.Shutdown(context.Background()) }

// ingest admits every message of txs (one goroutine per core, each
// owning whole authors so nonces arrive in order), then builds and
// accepts blocks until all are accepted, and returns the CPU this
// process spent and the blocks.
func (p *ingestVM) ingest(b *testing.B, txs []*tx.Tx) (cpu time.Duration, blocks int) {
	ctx := context.Background()
	runtime.GC()
	cpu0 := processCPU()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	var issueErr atomic.Value
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range txs {
				if (i%ingestAuthors)%workers != w {
					continue
				}
				if _, err := p.v.IssueTx(txs[i].Bytes()); err != nil {
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
	for accepted := 0; accepted < len(txs); blocks++ {
		blk, err := p.v.BuildAndAccept(ctx)
		if err != nil {
			b.Fatal(err)
		}
		accepted += len(blk.Txs)
	}
	return processCPU() - cpu0, blocks
}

// ingestNode is a node in a child process (sessionload node) whose
// authors registered and each opened a session with the next author,
// who accepted it; with --stub-admission (mode http), no setup: txs holds
// messages the stub parses and answers admitted, posted every round.
type ingestNode struct {
	url      string
	pid      int
	stopNode func()
	hc       *http.Client
	conns    []*rawConn // one per author, as sessionload's senders
	frames   []pipe     // modes frames* and stream*: one per author
	pipeline bool       // modes *-pipelined
	c        *service.Client
	chainID  ids.ID
	sessions []ids.ID
	nonce    uint64
	txs      []*tx.Tx
}

func newIngestNode(b *testing.B, authors []*crypto.Identity, mode string) *ingestNode {
	ctx := context.Background()
	var extra []string
	var framesAddr string
	switch mode {
	case "http":
		extra = append(extra, "--stub-admission")
	case "frames", "frames-pipelined":
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		framesAddr = ln.Addr().String()
		ln.Close()
		extra = append(extra, "--frames", framesAddr)
	}
	url, pid, stop := childNode(b, mode, extra...)
	stream := mode == "stream" || mode == "stream-pipelined"
	hc := ingestClient()
	p := &ingestNode{url: url, pid: pid, stopNode: stop, hc: hc,
		c: service.NewClient(url, service.WithHTTPClient(hc), service.WithPollInterval(5*time.Millisecond))}
	for range authors {
		p.conns = append(p.conns, newRawConn(ctx, url))
		var fc pipe
		var err error
		switch {
		case framesAddr != "":
			fc, err = dialFrames(framesAddr)
		case stream:
			fc, err = dialWS(ctx, url)
		}
		if err != nil {
			stop()
			b.Fatal(err)
		}
		if fc != nil {
			p.frames = append(p.frames, fc)
		}
	}
	p.pipeline = strings.HasSuffix(mode, "-pipelined")
	ok := false
	defer func() {
		if !ok {
			p.stop()
		}
	}()
	if mode == "http" {
		sessions := make([]ids.ID, len(authors))
		for i := range sessions {
			sessions[i] = ids.ID{byte(i), 0x5e}
		}
		perAuthor := 16
		if k, err := strconv.Atoi(os.Getenv("INGEST_CHUNK")); err == nil && k > 0 {
			perAuthor = k
		}
		p.txs = signMessages(b, authors, ids.ID{0x5e}, sessions, 3, perAuthor*len(authors))
		ok = true
		return p
	}
	var err error
	if p.chainID, err = p.c.ChainID(ctx); err != nil {
		b.Fatal(err)
	}
	p.sessions = make([]ids.ID, len(authors))
	all := func(f func(i int, a *crypto.Identity) (*service.TxReply, error)) {
		var setupErr atomic.Value
		var wg sync.WaitGroup
		for i, a := range authors {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := f(i, a)
				if err == nil {
					_, err = p.c.WaitAccepted(ctx, r.TxID)
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
	}
	all(func(_ int, a *crypto.Identity) (*service.TxReply, error) { return p.c.Register(ctx, a) })
	all(func(i int, a *crypto.Identity) (*service.TxReply, error) {
		r, err := p.c.CreateSession(ctx, a, authors[(i+1)%len(authors)].SessionID)
		if err == nil {
			p.sessions[i] = r.Session
		}
		return r, err
	})
	all(func(i int, a *crypto.Identity) (*service.TxReply, error) {
		return p.c.AcceptSession(ctx, a, p.sessions[(i+len(authors)-1)%len(authors)])
	})
	for i, a := range authors {
		n, err := p.c.Nonce(ctx, a.SessionID)
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 && n != p.nonce {
			b.Fatalf("authors' nonces differ: %d and %d", p.nonce, n)
		}
		p.nonce = n
	}
	ok = true
	return p
}

func (p *ingestNode) stop() {
	p.hc.Transport.(*http.Transport).CloseIdleConnections()
	for _, rc := range p.conns {
		rc.close()
	}
	for _, fc := range p.frames {
		fc.close()
	}
	p.stopNode()
}

// post posts the requests (one client per author) and, with wait, waits
// until the node has accepted every message they hold; it returns the
// CPU the node and this process (the clients) spent meanwhile, and the
// blocks the node accepted.
func (p *ingestNode) post(b *testing.B, requests [][][]byte, wait bool) (node, gen time.Duration, blocks uint64) {
	n := 0
	for _, rs := range requests {
		for _, body := range rs {
			n += max(1, bytes.Count(body, []byte(`"method"`)))
		}
	}
	ctx := context.Background()
	var st0 *service.StatusReply
	var err error
	if wait {
		if st0, err = p.c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
	cpu0, gen0 := threadsCPU(p.pid), processCPU()
	post := func() error { return postAll(p.conns, requests) }
	if p.frames != nil {
		post = func() error { return frameAll(p.frames, requests, p.pipeline) }
	}
	if err := post(); err != nil {
		b.Fatal(err)
	}
	for wait {
		st, err := p.c.Status(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if st.MessagesTotal >= st0.MessagesTotal+uint64(n) {
			blocks = st.Height - st0.Height
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	cpu1, gen1 := threadsCPU(p.pid), processCPU()
	if cpu0 < 0 || cpu1 < 0 {
		b.Fatal("no CPU figures of the node process")
	}
	return cpu1 - cpu0, gen1 - gen0, blocks
}

// threadsCPU returns the CPU time process pid's threads have run, in
// nanoseconds (the sum of /proc/<pid>/task/*/schedstat's first fields;
// /proc/<pid>/stat counts in 10 ms ticks), or -1.
func threadsCPU(pid int) time.Duration {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	var sum time.Duration
	for _, t := range tasks {
		data, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // a thread that exited meanwhile
		}
		f, _, _ := strings.Cut(string(data), " ")
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return -1
		}
		sum += time.Duration(ns)
	}
	return sum
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

// childNode runs a node (sessionload node, with extra arguments) in a
// child process on a free port with a temporary data directory, and
// returns its URL, its PID and what stops it.
func childNode(b testing.TB, name string, extra ...string) (url string, pid int, stop func()) {
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
	if a := os.Getenv("SESSIONLOAD_NODE_ARGS"); a != "" {
		args += " " + a
	}
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

// postAll posts each author's requests in order, one client per author
// (its connection: sessionload's senders' rawConn).
func postAll(conns []*rawConn, requests [][][]byte) error {
	var postErr atomic.Value
	var wg sync.WaitGroup
	for a := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, body := range requests[a] {
				if err := postIngest(conns[a], body); err != nil {
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

// frameAll sends each author's requests in order over its connection to
// the framing prototype, one at a time or (pipelined) all before reading
// the answers, and checks that every one was admitted.
func frameAll(conns []pipe, requests [][][]byte, pipelined bool) error {
	var sendErr atomic.Value
	var wg sync.WaitGroup
	for a := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			groups := [][][]byte{requests[a]}
			if !pipelined {
				groups = groups[:0]
				for _, body := range requests[a] {
					groups = append(groups, [][]byte{body})
				}
			}
			for _, g := range groups {
				if n, err := conns[a].issue(g); err != nil || n != len(g) {
					sendErr.Store(fmt.Errorf("author %d: %d of %d admitted: %v", a, n, len(g), err))
					return
				}
			}
		}()
	}
	wg.Wait()
	err, _ := sendErr.Load().(error)
	return err
}

func ingestClient() *http.Client {
	tr := &http.Transport{MaxIdleConns: 2 * ingestAuthors, MaxIdleConnsPerHost: 2 * ingestAuthors, WriteBufferSize: writeBufferSize}
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// postIngest posts one request (a call or a batch) and checks that every
// call was admitted.
func postIngest(rc *rawConn, body []byte) error {
	status, data, err := rc.post(body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("HTTP %d: %.200s", status, data)
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
