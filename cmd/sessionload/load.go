package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/service/wsclient"
	"github.com/luxfi/session/vm/tx"
)

// Config is one load run.
type Config struct {
	// URL is the node's JSON-RPC endpoint.
	URL string
	// Clients is the number of concurrent senders, each its own identity
	// with its own session (default 32).
	Clients int
	// Frames, if set, is the address of the framing prototype of a
	// `sessionload node --frames` (frames.go): the senders submit over it
	// (a batch's messages as pipelined frames) instead of HTTP; setup and
	// the watcher stay on URL. For weighing docs/stream.md only.
	Frames string
	// WebSocket makes the senders submit over the node's streaming
	// transport (docs/stream.md: one WebSocket each at URL, a batch's
	// messages as pipelined requests, not a JSON-RPC batch) instead of
	// HTTP POST, and the watcher read the sink's inbox over one when the
	// node notifies it (subscribeInbox) instead of every Poll; setup
	// stays on HTTP.
	WebSocket bool
	// Duration is how long the timed phase sends (default 10s).
	Duration time.Duration
	// Rate is the target messages/s over all clients; 0 sends as fast as
	// the node admits (open loop, bounded by Window).
	Rate float64
	// Payload is the ciphertext size of each message (default 256).
	Payload int
	// Window bounds each client's submitted-but-not-accepted messages
	// (default: 2 × Batch, at least 64, within the node's mempool
	// limits). A window far larger than what the node accepts in a
	// second only adds latency, and lets admission crowd out block
	// building until the mempool is full.
	Window int
	// MaxTxs bounds the messages signed in advance (default 60000 in
	// max-throughput mode, Rate × Duration × 1.1 in fixed-rate mode).
	MaxTxs int
	// Batch is the most messages a client sends in one request (a
	// JSON-RPC batch of issueTx calls); 1 or 0: one request per message.
	// In max-throughput mode a client sends a batch once its window has
	// room for one; in rate mode it sends what is due (see Linger).
	Batch int
	// Linger, in rate mode with Batch > 1, is how long a client waits
	// after a message is due for more to be due before it sends them
	// as one batch (0: at once). Latency is counted from each message's
	// scheduled time, so the wait is in the figures.
	Linger time.Duration
	// Poll is the interval between status polls of the watcher
	// (default 2ms); it bounds the resolution of the latencies.
	Poll time.Duration
	// Verify checks at the end, with getMessages, that the messages on
	// chain are exactly the accepted ones, in order.
	Verify bool
	// Log receives progress lines (nil: discarded).
	Log io.Writer
	// NodePID, when the node runs on this machine, lets the run report
	// the node's CPU time per message.
	NodePID int
}

// Result is what a run measured.
type Result struct {
	Clients    int     `json:"clients"`
	Batch      int     `json:"batch,omitempty"`
	Payload    int     `json:"payloadBytes"`
	TxBytes    int     `json:"txBytes"`
	TargetRate float64 `json:"targetRate,omitempty"`

	Signed    int     `json:"signed"`
	SignSecs  float64 `json:"signSeconds"`
	Submitted int     `json:"submitted"`
	Accepted  int     `json:"accepted"`
	Errors    int     `json:"errors"`
	Requests  int     `json:"submitRequests"`     // HTTP requests that submitted messages
	Retries   int     `json:"mempoolFullRetries"` // and busy answers

	SendSecs float64 `json:"sendSeconds"` // the timed phase
	// Throughput is the messages accepted per second in the timed phase
	// after its first fifth (the warm-up: the first blocks, the window
	// filling), until sending stopped: the sustained rate. OverallRate
	// is all accepted messages over first submit → last acceptance.
	Throughput  float64 `json:"messagesPerSecond"`
	OverallRate float64 `json:"overallMessagesPerSecond"`

	// Submit → accepted (observed by the watcher), milliseconds. In
	// fixed-rate mode from the scheduled send time.
	P50 float64 `json:"p50ms"`
	P90 float64 `json:"p90ms"`
	P99 float64 `json:"p99ms"`
	Max float64 `json:"maxms"`
	// Submit → admitted (the issueTx round trip), milliseconds.
	AdmitP50 float64 `json:"admitP50ms"`
	AdmitP99 float64 `json:"admitP99ms"`

	// CPU time per accepted message, in microseconds, from the first
	// submit until the last message was seen accepted (every message
	// sent is admitted and accepted in that span, and nothing else
	// runs): of the node (when its PID is known) and of this generator
	// (signing is before: not counted; the acceptance watcher is
	// counted). How busy the whole machine was in that span (cores,
	// all processes), of which OtherCores was neither.
	NodeCPUPerMsg float64 `json:"nodeCPUMicrosPerMessage,omitempty"`
	GenCPUPerMsg  float64 `json:"generatorCPUMicrosPerMessage"`
	MachineCores  float64 `json:"machineBusyCores,omitempty"`
	NodeCores     float64 `json:"nodeCores,omitempty"`
	OtherCores    float64 `json:"otherBusyCores,omitempty"`
	// PredictedRate is what node and generator alone would sustain on
	// this machine's cores at the CPU cost measured: cores × 10⁶ /
	// (node + generator µs per message). Other processes' load
	// changes the measured rates, much less the CPU per message.
	PredictedRate float64 `json:"predictedMessagesPerSecond,omitempty"`
	Cores         int     `json:"cores"`
	// VerifyMicros is the raw primitive measured in this run: one
	// ML-DSA-65 verification of a message of this run (what the node does
	// once per message), by one goroutine, just before the timed phase
	// and just after it (the median of 5 rounds of 40 each time). This
	// machine's speed varies with its host by 1.4–1.8×, so
	// compare runs through VerifyBoundShare, the sustained rate over the
	// rate at which this machine's cores could do nothing but verify.
	VerifyMicrosBefore float64 `json:"mldsaVerifyMicrosBefore"`
	VerifyMicrosAfter  float64 `json:"mldsaVerifyMicrosAfter"`
	VerifyBoundShare   float64 `json:"verifyBoundShare,omitempty"`
	// FreshPageMicros is this host's cost of first touching a page of
	// fresh memory (freshPageMicros), measured before the timed phase:
	// what a node's memtable switches and flushes pay tens of thousands
	// of times each, so the host figure behind a latency tail.
	FreshPageMicros float64 `json:"freshPageMicros,omitempty"`

	Blocks    uint64  `json:"blocks"`
	TxsPerBlk float64 `json:"txsPerBlock"`
	Verified  bool    `json:"verified"`

	// Timeline is submit → accepted by the second of the timed phase in
	// which messages were submitted (scheduled, in fixed-rate mode): when
	// a tail comes from a few bad seconds (a stall, a burst of other
	// work) rather than from every second, this shows which.
	Timeline []Second `json:"timeline,omitempty"`
}

// Second is one second of the timed phase in Result.Timeline.
type Second struct {
	At       int     `json:"second"` // from the start of the timed phase
	Accepted int     `json:"accepted"`
	P50      float64 `json:"p50ms"`
	P99      float64 `json:"p99ms"`
	Max      float64 `json:"maxms"`
	// NodeFaults and NodeCores (when the node's PID is known, on Linux)
	// are what the node process did in this second of wall-clock time
	// (not only for the messages submitted in it): minor page faults,
	// and CPU time over the second's length. A stall that is the kernel
	// mapping fresh pages shows as a burst of faults (each costs about
	// 10 µs on some virtual machines).
	NodeFaults int64   `json:"nodeFaults,omitempty"`
	NodeCores  float64 `json:"nodeCores,omitempty"`
}

// writeBufferSize is the http.Client's write buffer (setup, the
// watcher): a request goes out in one write (net/http's default, 4 KiB,
// splits a one-message request, 5.1 KB, in two: one more system call on
// each side). Senders use rawConn, which writes a request at once.
const writeBufferSize = 64 << 10

func (c *Config) defaults() {
	if c.Clients <= 0 {
		c.Clients = 32
	}
	if c.Duration <= 0 {
		c.Duration = 10 * time.Second
	}
	if c.Payload <= 0 {
		c.Payload = 256
	}
	if c.Window <= 0 {
		c.Window = min(max(2*c.Batch, 64), config.DefaultMaxPendingPerAuthor/2, config.DefaultMempoolTxs*3/4/c.Clients)
	}
	if c.MaxTxs <= 0 {
		if c.Rate > 0 {
			c.MaxTxs = int(math.Ceil(c.Rate*c.Duration.Seconds()*1.1)) + c.Clients
		} else {
			c.MaxTxs = 60000
		}
	}
	if c.Poll <= 0 {
		c.Poll = 2 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
}

// sender is one client: an identity, its session and its signed messages.
type sender struct {
	id      *crypto.Identity
	session ids.ID
	// The pre-signed messages, in flat arrays without pointers: message
	// k's signed bytes are txBuf[k*txSlot:][:txLen[k]], its ID as the node
	// writes it idBuf[k*idSlot:][:idLen[k]]. A long fixed-rate run signs
	// hundreds of thousands in advance. Kept as a parsed *tx.Tx and an
	// encoded request each (~11 KB a message), a 120 s run held 10 GB;
	// kept as one allocation each, still 5.4 GB and 1.7 million objects,
	// which the runtime's forced collection (every two minutes) marked
	// with the senders stalled for ~0.7 s in the middle of the run. A
	// collection does not look inside flat arrays.
	n       int
	txBuf   []byte
	txLen   []uint16
	txSlot  int
	idBuf   []byte
	idLen   []uint8
	first   *tx.Tx // the first message, parsed (the raw-verify figure)
	reqBase uint64 // the JSON-RPC id of message k is reqBase + k*reqStep
	reqStep uint64
	scratch []byte         // the requests being sent (one sender goroutine)
	submit  []atomic.Int64 // submit (or scheduled) time of each message, unix nanos
	admit   []time.Duration
	sent    atomic.Int64 // messages submitted
	acked   atomic.Int64 // messages seen accepted (a prefix, nonce order)
	wake    chan struct{}
}

// idSlot is the room for a transaction ID's text (CB58 of 36 bytes: at
// most 50 characters).
const idSlot = 56

// signedTx is message k's signed bytes.
func (s *sender) signedTx(k int) []byte {
	return s.txBuf[k*s.txSlot:][:s.txLen[k]]
}

// txID is message k's ID as the node writes it (compare with
// string(b) == x, which does not allocate).
func (s *sender) txID(k int) []byte {
	return s.idBuf[k*idSlot:][:s.idLen[k]]
}

// store keeps t as message k.
func (s *sender) store(k int, t *tx.Tx) error {
	b, id := t.Bytes(), t.ID().String()
	if len(b) > s.txSlot || len(id) > idSlot {
		return fmt.Errorf("sessionload: message %d is %d bytes (room for %d), its ID %d characters", k, len(b), s.txSlot, len(id))
	}
	s.txLen[k] = uint16(copy(s.txBuf[k*s.txSlot:], b))
	s.idLen[k] = uint8(copy(s.idBuf[k*idSlot:], id))
	return nil
}

// bodies appends to dst the issueTx requests of messages k..k+m-1,
// encoded into s.scratch, which they alias until the next call.
func (s *sender) bodies(dst [][]byte, k, m int) [][]byte {
	s.scratch = s.scratch[:0]
	var ends [64]int
	offs := ends[:0]
	for j := k; j < k+m; j++ {
		s.scratch = appendIssueBody(s.scratch, s.reqBase+uint64(j)*s.reqStep, s.signedTx(j))
		offs = append(offs, len(s.scratch))
	}
	start := 0
	for _, end := range offs {
		dst = append(dst, s.scratch[start:end:end])
		start = end
	}
	return dst
}

// Run runs the load: setup (identities, sessions, signing), the timed
// phase, then the drain until every submitted message is accepted.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	if cfg.Clients < 1 {
		return nil, errors.New("sessionload: at least one client")
	}
	log := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4 * cfg.Clients,
		MaxIdleConnsPerHost: 4 * cfg.Clients,
		IdleConnTimeout:     time.Minute,
		WriteBufferSize:     writeBufferSize,
	}
	defer tr.CloseIdleConnections()
	p := &poster{url: cfg.URL, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	c := service.NewClient(cfg.URL, service.WithHTTPClient(&http.Client{Transport: tr}),
		service.WithTimeout(30*time.Second), service.WithPollInterval(5*time.Millisecond))

	conf, err := c.Config(ctx)
	if err != nil {
		return nil, fmt.Errorf("node %s: %w", cfg.URL, err)
	}
	perClient := cfg.MaxTxs / cfg.Clients
	if int64(perClient) > conf.MaxMessages {
		perClient = int(conf.MaxMessages) // one session per sender
	}
	if perClient < 1 {
		return nil, errors.New("sessionload: fewer messages than clients")
	}

	// Setup: identities, registered; each sender opens a session with the
	// sink, an identity that never sends: its inbox is every message, in
	// chain order, which the watcher reads with one call per poll.
	t0 := time.Now()
	sink, err := crypto.GenerateIdentity()
	if err != nil {
		return nil, err
	}
	if err := parallelWait(ctx, c, 1, func(int) (*service.TxReply, error) { return c.Register(ctx, sink) }); err != nil {
		return nil, fmt.Errorf("registering: %w", err)
	}
	senders := make([]*sender, cfg.Clients)
	if err := parallel(cfg.Clients, func(i int) error {
		id, err := crypto.GenerateIdentity()
		senders[i] = &sender{id: id, wake: make(chan struct{}, 1)}
		return err
	}); err != nil {
		return nil, err
	}
	if err := parallelWait(ctx, c, cfg.Clients, func(i int) (*service.TxReply, error) {
		return c.Register(ctx, senders[i].id)
	}); err != nil {
		return nil, fmt.Errorf("registering: %w", err)
	}
	// The sink takes every sender as a contact, so their sessions reach its
	// inbox without a message request.
	if err := parallelWait(ctx, c, cfg.Clients, func(i int) (*service.TxReply, error) {
		return c.SetContact(ctx, sink, senders[i].id.SessionID, tx.ContactTrusted)
	}); err != nil {
		return nil, fmt.Errorf("adding contacts: %w", err)
	}
	if err := parallelWait(ctx, c, cfg.Clients, func(i int) (*service.TxReply, error) {
		r, err := c.CreateSession(ctx, senders[i].id, sink.SessionID)
		if err == nil {
			senders[i].session = r.Session
		}
		return r, err
	}); err != nil {
		return nil, fmt.Errorf("creating sessions: %w", err)
	}
	log("setup: %d identities registered, %d sessions, %v", cfg.Clients, cfg.Clients, time.Since(t0).Round(time.Millisecond))

	// Sign every message before the timed phase. A message's size does
	// not depend on its content (the payload's length is fixed; the
	// largest nonce is the longest): the room for each is a sample's.
	t0 = time.Now()
	sample, err := tx.Sign(senders[0].id, conf.ChainID, uint64(2+perClient), &tx.SendMessage{Session: senders[0].session, Ciphertext: make([]byte, cfg.Payload)})
	if err != nil {
		return nil, err
	}
	slot := sample.Size() + 16
	for _, s := range senders {
		s.n = perClient
		s.txSlot = slot
		s.txBuf = make([]byte, perClient*slot)
		s.txLen = make([]uint16, perClient)
		s.idBuf = make([]byte, perClient*idSlot)
		s.idLen = make([]uint8, perClient)
		s.submit = make([]atomic.Int64, perClient)
		s.admit = make([]time.Duration, perClient)
	}
	workers := runtime.GOMAXPROCS(0)
	var next atomic.Int64
	var signErr error
	var signMu sync.Mutex
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= perClient*cfg.Clients {
					return
				}
				s, k := senders[j%cfg.Clients], j/cfg.Clients
				payload := make([]byte, cfg.Payload)
				_, _ = rand.Read(payload)
				t, err := tx.Sign(s.id, conf.ChainID, uint64(2+k), &tx.SendMessage{Session: s.session, Ciphertext: payload})
				if err == nil {
					err = s.store(k, t)
				}
				if err != nil {
					signMu.Lock()
					signErr = err
					signMu.Unlock()
					return
				}
				if k == 0 {
					s.first = t
				}
			}
		}()
	}
	wg.Wait()
	if signErr != nil {
		return nil, signErr
	}
	for i, s := range senders {
		s.reqBase, s.reqStep = uint64(i+1), uint64(cfg.Clients)
	}
	// Collect the signing's garbage now, not in the timed phase.
	runtime.GC()
	res := &Result{
		Clients: cfg.Clients, Batch: cfg.Batch, Payload: cfg.Payload, TxBytes: len(senders[0].signedTx(0)), TargetRate: cfg.Rate,
		Signed: perClient * cfg.Clients, SignSecs: time.Since(t0).Seconds(),
	}
	log("signed %d messages (%d bytes each) in %.1fs", res.Signed, res.TxBytes, res.SignSecs)
	if res.VerifyMicrosBefore, err = verifyMicros(senders[0]); err != nil {
		return nil, err
	}
	res.FreshPageMicros = freshPageMicros()

	before, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}

	// The watcher reads the sink's inbox: every accepted message, in chain
	// order; an author's messages are accepted in nonce order.
	var (
		latMu     sync.Mutex
		latencies []float64
		submitted []int64 // unix nanos each latency is measured from
		accepted  atomic.Int64
		warmEnd   atomic.Int64 // unix nanos when the warm-up ends
		sendEnd   atomic.Int64 // unix nanos when sending stopped; 0 while sending
		inWindow  atomic.Int64 // accepted after the warm-up while sending
		lastAccNs atomic.Int64
	)
	warmEnd.Store(math.MaxInt64)
	byAuthor := make(map[string]*sender, len(senders))
	for _, s := range senders {
		byAuthor[s.id.SessionID] = s
	}
	if cfg.WebSocket {
		// The watcher on the streaming transport: its reads, and push
		// notifications instead of a poll every cfg.Poll.
		wsURL := "ws" + strings.TrimPrefix(cfg.URL, "http")
		p.notes = make(chan struct{}, 1)
		opts := wsclient.Options{OnNotification: func([]byte) {
			select {
			case p.notes <- struct{}{}:
			default:
			}
		}}
		if p.ws, err = wsclient.Dial(ctx, wsURL, opts); err != nil {
			return nil, fmt.Errorf("the watcher's WebSocket: %w", err)
		}
		defer p.ws.Close()
		sub := `{"jsonrpc":"2.0","id":2,"method":"session.subscribeInbox","params":{"sessionId":"` + sink.SessionID + `"}}`
		if data, err := p.ws.Call(ctx, []byte(sub), "2"); err != nil || !bytes.Contains(data, []byte(`"subscription"`)) {
			return nil, fmt.Errorf("subscribing to the sink's inbox: %v %.200s", err, data)
		}
	}
	cursor, err := inboxEnd(ctx, p, sink.SessionID)
	if err != nil {
		return nil, err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- watch(watchCtx, p, cfg.Poll, sink.SessionID, cursor, func(page []inboxMessage, now time.Time) error {
			local := make([]float64, 0, len(page))
			from := make([]int64, 0, len(page))
			for i := range page {
				m := &page[i]
				s := byAuthor[m.Author]
				if s == nil {
					return fmt.Errorf("message %s from unknown author %s", m.TxID, m.Author)
				}
				k := s.acked.Load()
				if k >= int64(s.n) || string(s.txID(int(k))) != m.TxID {
					return fmt.Errorf("message %s of %s accepted out of nonce order (expected message %d)", m.TxID, m.Author, k)
				}
				at := s.submit[k].Load()
				local = append(local, float64(now.UnixNano()-at)/1e6)
				from = append(from, at)
				s.acked.Store(k + 1)
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
			latMu.Lock()
			latencies = append(latencies, local...)
			submitted = append(submitted, from...)
			latMu.Unlock()
			n := int64(len(page))
			accepted.Add(n)
			if sendEnd.Load() == 0 && now.UnixNano() >= warmEnd.Load() {
				inWindow.Add(n)
			}
			lastAccNs.Store(now.UnixNano())
			return nil
		})
	}()

	// The timed phase.
	var retries, errCount, requests atomic.Int64
	var firstErr atomic.Value
	cpu0 := sampleCPU(cfg.NodePID)
	start := time.Now()
	// The node's faults and CPU by the second, for the timeline.
	secsCtx, stopSecs := context.WithCancel(ctx)
	defer stopSecs() // on every early return too
	secs := make(chan []nodeStat, 1)
	if cfg.NodePID > 0 {
		go func() { secs <- nodeSeconds(cfg.NodePID, start, secsCtx.Done()) }()
	}
	stopAt := start.Add(cfg.Duration)
	warmup := cfg.Duration / 5
	warmEnd.Store(start.Add(warmup).UnixNano())
	sendCtx, stopSend := context.WithDeadline(ctx, stopAt)
	defer stopSend()
	var perSenderRate float64
	if cfg.Rate > 0 {
		perSenderRate = cfg.Rate / float64(cfg.Clients)
	}
	batch := max(cfg.Batch, 1)
	var sendWG sync.WaitGroup
	for i, s := range senders {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			rc := newRawConn(ctx, cfg.URL) // nil: the http.Client
			if rc != nil {
				defer rc.close()
			}
			var fc pipe
			var err error
			switch {
			case cfg.Frames != "":
				fc, err = dialFrames(cfg.Frames)
			case cfg.WebSocket:
				fc, err = dialWS(ctx, cfg.URL)
			}
			if err != nil {
				errCount.Add(1)
				firstErr.CompareAndSwap(nil, fmt.Errorf("client %d: %w", i, err))
				return
			}
			if fc != nil {
				defer fc.close()
			}
			offset := time.Duration(float64(i) / math.Max(cfg.Rate, 1) * float64(time.Second))
			due := func(k int) time.Time { // scheduled send time of message k (rate mode)
				return start.Add(offset + time.Duration(float64(k)/perSenderRate*float64(time.Second)))
			}
			sleepUntil := func(at time.Time) bool {
				if d := time.Until(at); d > 0 {
					t := time.NewTimer(d)
					defer t.Stop()
					select {
					case <-t.C:
					case <-sendCtx.Done():
						return false
					}
				}
				return true
			}
			bodies := make([][]byte, 0, batch)
			for k := 0; k < s.n; {
				// Wait for the window: room for one message in rate mode,
				// for a whole batch (or what is left) in max-throughput
				// mode, so requests stay full batches.
				need := int64(1)
				if perSenderRate == 0 {
					need = int64(min(batch, cfg.Window, s.n-k))
				}
				for int64(cfg.Window)-(int64(k)-s.acked.Load()) < need {
					select {
					case <-s.wake:
					case <-sendCtx.Done():
						return
					}
				}
				if perSenderRate > 0 {
					at := due(k)
					if at.After(stopAt) {
						return
					}
					if batch > 1 && cfg.Linger > 0 {
						at = at.Add(cfg.Linger)
					}
					if !sleepUntil(at) {
						return
					}
				}
				if sendCtx.Err() != nil {
					return
				}
				// The messages to send now: k, and those after it that are
				// due (rate mode) or simply next (max throughput), up to
				// the batch size and the window.
				now := time.Now()
				m := 1
				room := int64(cfg.Window) - (int64(k) - s.acked.Load())
				for m < batch && k+m < s.n && int64(m) < room && (perSenderRate == 0 || !due(k+m).After(now)) {
					m++
				}
				for j := k; j < k+m; j++ {
					t := now
					if perSenderRate > 0 {
						if d := due(j); d.Before(now) {
							t = d
						}
					}
					s.submit[j].Store(t.UnixNano())
				}
				for m > 0 {
					var n int
					var err error
					requests.Add(1)
					bodies = s.bodies(bodies[:0], k, m)
					if fc != nil {
						n, err = fc.issue(bodies)
					} else if batch == 1 {
						if err = p.issue(ctx, rc, bodies[0]); err == nil {
							n = 1
						}
					} else {
						n, err = p.issueBatch(ctx, rc, bodies)
					}
					for j := k; j < k+n; j++ {
						s.admit[j] = time.Since(now)
					}
					k += n
					m -= n
					s.sent.Store(int64(k))
					if err == nil {
						break
					}
					if errors.Is(err, service.ErrMempoolFull) || errors.Is(err, service.ErrBusy) {
						if sendCtx.Err() != nil {
							return // sending has stopped: not submitted, not an error
						}
						retries.Add(1)
						time.Sleep(time.Millisecond)
						continue
					}
					errCount.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Errorf("client %d message %d: %w", i, k, err))
					return
				}
			}
		}()
	}
	sendWG.Wait()
	end := time.Now()
	sendEnd.Store(end.UnixNano())
	res.SendSecs = end.Sub(start).Seconds()
	for _, s := range senders {
		res.Submitted += int(s.sent.Load())
	}
	log("sent %d messages in %.2fs; waiting for the rest to be accepted", res.Submitted, res.SendSecs)

	// Drain: wait until every submitted message is accepted.
	drainDeadline := time.Now().Add(30 * time.Second)
	var watchErr error
	watching := true
	for watching && accepted.Load() < int64(res.Submitted) && time.Now().Before(drainDeadline) && ctx.Err() == nil {
		select {
		case watchErr = <-watchDone:
			watching = false
		case <-time.After(5 * time.Millisecond):
		}
	}
	cpu1 := sampleCPU(cfg.NodePID) // the last acceptance was seen (or the drain gave up)
	cpuEnd := time.Now()
	stopSecs()
	var nodeSecs []nodeStat
	if cfg.NodePID > 0 {
		nodeSecs = <-secs
	}
	stopWatch()
	if watching {
		watchErr = <-watchDone
	}
	if watchErr != nil && !errors.Is(watchErr, context.Canceled) {
		return nil, fmt.Errorf("watcher: %w", watchErr)
	}
	res.Accepted = int(accepted.Load())
	res.Errors = int(errCount.Load())
	res.Retries = int(retries.Load())
	res.Requests = int(requests.Load())
	if res.Accepted < res.Submitted {
		return res, fmt.Errorf("only %d of %d submitted messages accepted within 30s of the end", res.Accepted, res.Submitted)
	}
	if measured := end.Sub(start) - warmup; measured > 0 {
		res.Throughput = float64(inWindow.Load()) / measured.Seconds()
	}
	res.Cores = runtime.NumCPU()
	if res.VerifyMicrosAfter, err = verifyMicros(senders[0]); err != nil {
		return res, err
	}
	if v := (res.VerifyMicrosBefore + res.VerifyMicrosAfter) / 2; v > 0 {
		res.VerifyBoundShare = res.Throughput / (float64(res.Cores) * 1e6 / v)
	}
	if n := float64(res.Accepted); n > 0 {
		wall := cpuEnd.Sub(start)
		gen := cpu1.self - cpu0.self
		res.GenCPUPerMsg = float64(gen.Microseconds()) / n
		var node time.Duration
		if cpu0.haveNode && cpu1.haveNode {
			node = cpu1.node - cpu0.node
			res.NodeCPUPerMsg = float64(node.Microseconds()) / n
			res.NodeCores = node.Seconds() / wall.Seconds()
			if per := res.NodeCPUPerMsg + res.GenCPUPerMsg; per > 0 {
				res.PredictedRate = float64(res.Cores) * 1e6 / per
			}
		}
		if cpu0.haveOS && cpu1.haveOS {
			busy := cpu1.busy - cpu0.busy
			res.MachineCores = busy.Seconds() / wall.Seconds()
			if cpu0.haveNode {
				res.OtherCores = max(0, (busy-gen-node).Seconds()/wall.Seconds())
			}
		}
	}
	if last := lastAccNs.Load(); last > 0 {
		res.OverallRate = float64(res.Accepted) / time.Unix(0, last).Sub(start).Seconds()
	}
	res.Timeline = timeline(start, latencies, submitted)
	for i := range res.Timeline {
		if k := res.Timeline[i].At; k+1 < len(nodeSecs) {
			a, b := nodeSecs[k], nodeSecs[k+1]
			res.Timeline[i].NodeFaults = b.faults - a.faults
			res.Timeline[i].NodeCores = (b.cpu - a.cpu).Seconds()
		}
	}
	slices.Sort(latencies)
	res.P50, res.P90, res.P99 = percentile(latencies, 50), percentile(latencies, 90), percentile(latencies, 99)
	if len(latencies) > 0 {
		res.Max = latencies[len(latencies)-1]
	}
	var admits []float64
	for _, s := range senders {
		for k := range int(s.sent.Load()) {
			admits = append(admits, float64(s.admit[k].Microseconds())/1000)
		}
	}
	slices.Sort(admits)
	res.AdmitP50, res.AdmitP99 = percentile(admits, 50), percentile(admits, 99)
	after, err := c.Status(ctx)
	if err != nil {
		return res, err
	}
	res.Blocks = after.Height - before.Height
	if res.Blocks > 0 {
		res.TxsPerBlk = float64(res.Accepted) / float64(res.Blocks)
	}
	if v := firstErr.Load(); v != nil {
		return res, v.(error)
	}
	if cfg.Verify {
		if err := verify(ctx, c, senders); err != nil {
			return res, err
		}
		res.Verified = true
	}
	return res, nil
}

// timeline groups latencies (milliseconds) by the second after start of
// the submit time each is measured from.
func timeline(start time.Time, latencies []float64, submitted []int64) []Second {
	var by [][]float64
	for i, l := range latencies {
		sec := max(0, int(time.Duration(submitted[i]-start.UnixNano())/time.Second))
		for len(by) <= sec {
			by = append(by, nil)
		}
		by[sec] = append(by[sec], l)
	}
	out := make([]Second, 0, len(by))
	for sec, ls := range by {
		if len(ls) == 0 {
			continue
		}
		slices.Sort(ls)
		out = append(out, Second{At: sec, Accepted: len(ls), P50: percentile(ls, 50), P99: percentile(ls, 99), Max: ls[len(ls)-1]})
	}
	return out
}

// watch polls the sink's inbox after cursor every poll interval (at once
// again after a full page) and reports each page of new messages.
func watch(ctx context.Context, p *poster, poll time.Duration, sink string, cursor uint64,
	report func(page []inboxMessage, now time.Time) error) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	if p.notes != nil {
		// Pushed: read when the node says the inbox changed (and every
		// 100 ms in case a notification is lost).
		t.Reset(100 * time.Millisecond)
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-p.notes: // nil without push
		}
		for {
			page, err := p.inbox(ctx, sink, cursor)
			if err != nil {
				return err
			}
			if len(page.Messages) > 0 {
				if err := report(page.Messages, time.Now()); err != nil {
					return err
				}
				cursor = page.Next
			}
			if !page.More {
				break
			}
		}
	}
}

// inboxEnd returns the cursor after the last message of an inbox.
func inboxEnd(ctx context.Context, p *poster, sink string) (uint64, error) {
	var cursor uint64
	for {
		page, err := p.inbox(ctx, sink, cursor)
		if err != nil {
			return 0, err
		}
		cursor = page.Next
		if !page.More {
			return cursor, nil
		}
	}
}

// verify checks that each session holds exactly the accepted messages of
// its sender, in nonce order.
func verify(ctx context.Context, c *service.Client, senders []*sender) error {
	return parallel(len(senders), func(i int) error {
		s := senders[i]
		var after uint64
		n := 0
		for {
			page, err := c.Messages(ctx, s.session, after, service.MaxPageSize)
			if err != nil {
				return err
			}
			for _, m := range page.Messages {
				if n >= s.n || m.TxID.String() != string(s.txID(n)) || m.Seq != uint64(n+1) || m.Author != s.id.SessionID {
					return fmt.Errorf("verify: session %d message %d (seq %d) is not the sender's message %d", i, n, m.Seq, n)
				}
				n++
			}
			if len(page.Messages) < service.MaxPageSize {
				break
			}
			after = page.Next
		}
		if int64(n) != s.acked.Load() {
			return fmt.Errorf("verify: session %d holds %d messages, %d seen accepted", i, n, s.acked.Load())
		}
		return nil
	})
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// parallel runs f(0..n-1) concurrently and returns the first error.
func parallel(n int, f func(i int) error) error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parallelWait submits with f concurrently, then waits for every
// transaction to be accepted.
func parallelWait(ctx context.Context, c *service.Client, n int, f func(i int) (*service.TxReply, error)) error {
	return parallel(n, func(i int) error {
		r, err := f(i)
		if err != nil {
			return err
		}
		_, err = c.WaitAccepted(ctx, r.TxID)
		return err
	})
}

// verifyMicros measures the raw primitive of the node's admission: the
// ML-DSA-65 verification of one of s's signed messages under s's key,
// µs per verification, the median of 5 rounds of 40.
func verifyMicros(s *sender) (float64, error) {
	pk, err := crypto.ParseDSAPublicKey(s.id.DSAPublicKey)
	if err != nil {
		return 0, err
	}
	t := s.first
	var rounds [5]float64
	for r := range rounds {
		t0 := time.Now()
		for range 40 {
			if !t.VerifySignature(pk) {
				return 0, errors.New("sessionload: a signed message does not verify under its author's key")
			}
		}
		rounds[r] = float64(time.Since(t0).Microseconds()) / 40
	}
	slices.Sort(rounds[:])
	return rounds[2], nil
}
