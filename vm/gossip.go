package vm

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/luxfi/ids"
	"github.com/luxfi/p2p"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// Transaction gossip.
//
// The node gives the VM an app sender at Initialize (through rpcchainvm,
// a p2p.Sender whose SendGossip goes to peers the node picks: the plugin
// cannot name them) and hands it the app messages of peers (Gossip).
//
//   - Push: a transaction admitted through the API (IssueTx, Issue) is
//     queued and sent within GossipBatchMs, batched with others into
//     messages of at most GossipMaxMessageBytes, within an outbound budget
//     of GossipBytesPerSecond.
//   - Admission: a gossiped transaction goes through the checks of IssueTx
//     in IssueTx's order (pool.admit: stateless checks, room, replay,
//     signature, execution on the pending state). The size (at most
//     MaxGossipMessageBytes) and framing of the message are checked first,
//     and no entry may be shorter than a transaction's header and
//     signature; then the inbound budgets (below) bound how many of its
//     transactions are looked at at all (every one counts, duplicates and
//     malformed ones too; the rest are dropped as throttled); then, per
//     transaction, the checks that cost no signature, then the
//     signatures in parallel, then admission. A bad signature from a
//     registered author drops the rest of the message and silences the
//     peer for gossipPenalty (a validator's reserved bucket too); so does
//     an entry no honest relay sends: one that does not parse or fails
//     the checks that need no state, or the same transaction twice in a
//     message (hosts throttle compressed bytes: such junk is ~0.5 byte
//     an entry on the wire).
//   - Inbound budgets: token buckets of transactions a second, each
//     holding one second of its rate (at least one token). An entry
//     costs ⌈its bytes / gossipTxUnit⌉ tokens (at least 1; gossipTxUnit
//     is 8 KiB, so every registration and every message of up to ~4.5 KB
//     of ciphertext costs 1, and one of the largest, MaxTxSize = 80 KiB,
//     costs 10): hashing and verifying an entry cost in proportion to
//     its bytes, and a budget of entries alone let the largest ones
//     through at ~20 times the bytes of typical ones. Entries are taken in
//     order, each whole from one bucket; an entry costing more than a
//     bucket can ever hold is taken when that bucket is full, leaving it
//     in debt (so the rate still holds on average). The total
//     T (GossipTxsPerSecond) is split, when the chain's validators are
//     known, into a validator part V = T × GossipValidatorPercent / 100
//     and a shared part S = T − V. V is divided among the validators by
//     stake: each has a reserved bucket of rate V × w / W (w its weight,
//     W the sum, every weight first raised to at least a quarter of the
//     mean, so none gets less than V / (5n) and the ratios above that
//     floor are exact; the rates sum to V). A validator's entries come
//     from its reserved bucket first, then from S under its per-peer
//     bucket (GossipPeerTxsPerSecond); every other node ID's come from S
//     only, under its per-peer bucket, first come first served. Reserved
//     capacity is never lent, so a flood from any number of node IDs
//     takes at most S and never a validator's share; it can still starve
//     non-validators (API nodes) of S. Without validator information (no
//     validator state, an empty set, GossipValidatorPercent 0) S = T:
//     the budgets are those of a single FCFS total. Validators' buckets
//     (at most maxGossipValidators, the largest stakes) are kept while
//     they are in the set; other peers' buckets are a FIFO of
//     maxGossipPeers.
//   - The validator set comes from the chain context's ValidatorState
//     (validatorSourceOf: consensus/validator.State, what a node and
//     rpcchainvm's plugin server pass, or the consensus context's own
//     ValidatorState interface), for the net GossipValidatorNetID at the
//     current height, this node left out. It is read at start and every
//     validatorRefresh in the background (a failure keeps the previous
//     set), never on the receive path. The operator's named peers
//     (GossipReservedPeers) join the set at the mean validator weight
//     (weight 1 without validator information, where they are the only
//     reserves), applied at start and at every reading.
//   - No loops: a node pushes only what its own API admitted; transactions
//     it learns from peers are never pushed on arrival. Nothing is sent in
//     reply to a message.
//   - Re-gossip: every GossipRegossipMs the node sends up to
//     GossipRegossipTxs pending transactions (in pending order, from after
//     where the previous round stopped) that it has not
//     sent or received within that interval, so a peer that connected
//     later, or missed a message, still gets them, and a transaction whose
//     first push was lost still reaches a validator. Transactions learned
//     from peers are included: this carries a transaction past a node that
//     its origin's sender did not reach. A duplicate received counts as
//     seen. Connected (when the node calls it; rpcchainvm at node v1.22.75
//     does not) triggers a round at once, at most once per interval.
//
// Peer misbehaviour never makes Gossip return an error (a node may treat
// an error as fatal for the chain): it is counted in GossipStats.

// Defaults of the node-local gossip settings (NodeConfig).
const (
	DefaultGossipMaxMessageBytes  = 256 << 10
	DefaultGossipBatchMs          = 5
	DefaultGossipRegossipMs       = 1000
	DefaultGossipRegossipTxs      = 1024
	DefaultGossipBytesPerSecond   = 32 << 20
	DefaultGossipPeerTxsPerSecond = 16384
	DefaultGossipTxsPerSecond     = 65536
	DefaultGossipValidatorPercent = 50
	// maxGossipPeers bounds the per-peer budgets of non-validators kept
	// (FIFO eviction).
	maxGossipPeers = 4096
	// maxGossipValidators bounds the validators given a reserved budget
	// (the largest stakes; the others count as non-validators).
	maxGossipValidators = 4096
	// validatorRefresh is how often the validator set is read again, and
	// validatorQueryTimeout how long one reading may take.
	validatorRefresh      = 30 * time.Second
	validatorQueryTimeout = 10 * time.Second
	// MaxGossipMessageBytes is the largest gossip message any node
	// accepts, whatever its own GossipMaxMessageBytes (which bounds what it
	// sends): a node configured to send larger messages than its peers'
	// setting would otherwise have every message refused, for good.
	MaxGossipMessageBytes = 2 << 20
	// gossipPenalty is how long a peer that relayed a transaction with a
	// bad signature is not listened to. Honest nodes relay only what they
	// verified, so one such transaction shows the peer lying or broken;
	// without the penalty every forged signature cost this node a full
	// verification and the peer nothing.
	gossipPenalty = 30 * time.Second
	// gossipTxUnit is the bytes of gossiped transaction one inbound token
	// pays for (see the top of the file).
	gossipTxUnit = 8 << 10

	// minGossipTx is a floor on the size of any transaction: its header
	// and its signature.
	minGossipTx = tx.HeaderSize + crypto.SignatureSize
)

// errGossipRepeated: a gossip message carried the same transaction twice.
var errGossipRepeated = errors.New("vm: a transaction twice in one gossip message")

// gossipSendConfig is what SendGossip is asked for when the node honours
// it (rpcchainvm's client at node v1.22.75 drops it and the node picks).
var gossipSendConfig = p2p.SendConfig{Validators: 100}

// GossipStats are this node's gossip counters since the process started,
// and the number of validators sharing its inbound budget now.
type GossipStats struct {
	MessagesSent     uint64 `json:"messagesSent"`
	TxsSent          uint64 `json:"txsSent"`       // pushed and re-gossiped
	TxsRegossiped    uint64 `json:"txsRegossiped"` // of TxsSent, by re-gossip rounds
	SendErrors       uint64 `json:"sendErrors"`
	MessagesReceived uint64 `json:"messagesReceived"`
	MessagesRefused  uint64 `json:"messagesRefused"` // oversize or malformed framing
	TxsReceived      uint64 `json:"txsReceived"`
	TxsAdmitted      uint64 `json:"txsAdmitted"`
	TxsDuplicate     uint64 `json:"txsDuplicate"`   // already pending or accepted
	TxsRefused       uint64 `json:"txsRefused"`     // failed a check of IssueTx
	TxsThrottled     uint64 `json:"txsThrottled"`   // over a peer's or the total budget
	PeersPenalized   uint64 `json:"peersPenalized"` // peers silenced for relaying a bad signature
	// Sharing of the inbound budget (see the top of gossip.go).
	Validators             uint64 `json:"validators"`             // validators with a reserved budget now (this node left out); 0: none known
	TxsReceivedValidators  uint64 `json:"txsReceivedValidators"`  // of TxsReceived, from validators
	TxsThrottledValidators uint64 `json:"txsThrottledValidators"` // of TxsThrottled, from validators
	ValidatorRefreshErrors uint64 `json:"validatorRefreshErrors"` // readings of the validator set that failed
}

type gossipCounters struct {
	messagesSent, txsSent, txsRegossiped, sendErrors    atomic.Uint64
	messagesReceived, messagesRefused, txsReceived      atomic.Uint64
	txsAdmitted, txsDuplicate, txsRefused, txsThrottled atomic.Uint64
	peersPenalized                                      atomic.Uint64
	validators, txsReceivedValidators                   atomic.Uint64
	txsThrottledValidators, validatorRefreshErrors      atomic.Uint64
}

func (c *gossipCounters) snapshot() GossipStats {
	return GossipStats{
		MessagesSent: c.messagesSent.Load(), TxsSent: c.txsSent.Load(), TxsRegossiped: c.txsRegossiped.Load(),
		SendErrors: c.sendErrors.Load(), MessagesReceived: c.messagesReceived.Load(),
		MessagesRefused: c.messagesRefused.Load(), TxsReceived: c.txsReceived.Load(),
		TxsAdmitted: c.txsAdmitted.Load(), TxsDuplicate: c.txsDuplicate.Load(),
		TxsRefused: c.txsRefused.Load(), TxsThrottled: c.txsThrottled.Load(),
		PeersPenalized: c.peersPenalized.Load(), Validators: c.validators.Load(),
		TxsReceivedValidators: c.txsReceivedValidators.Load(), TxsThrottledValidators: c.txsThrottledValidators.Load(),
		ValidatorRefreshErrors: c.validatorRefreshErrors.Load(),
	}
}

// tokenBucket is a rate limiter: rate tokens per second, up to burst.
// Not safe for concurrent use (the gossiper's lock guards it).
type tokenBucket struct {
	rate, burst, tokens float64
	last                time.Time
	silentUntil         time.Time // penalized: nothing available before
}

// newTokenBucket returns a full bucket holding one second of rate (at
// least one token when the rate is positive).
func newTokenBucket(rate float64, now time.Time) *tokenBucket {
	b := &tokenBucket{last: now}
	b.setRate(rate, now)
	b.tokens = b.burst
	return b
}

// setRate changes the rate (and the burst, one second of it) from now on;
// tokens over the new burst are dropped, a debt is kept.
func (b *tokenBucket) setRate(rate float64, now time.Time) {
	b.refill(now)
	b.rate, b.burst = rate, rate
	if rate > 0 && rate < 1 {
		b.burst = 1
	}
	b.tokens = min(b.tokens, b.burst)
}

func (b *tokenBucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+b.rate*d.Seconds())
		b.last = now
	}
}

// available returns the whole tokens there are now (none while the
// bucket is silenced: a penalized peer's).
func (b *tokenBucket) available(now time.Time) int {
	b.refill(now)
	if now.Before(b.silentUntil) {
		return 0
	}
	return max(0, int(b.tokens))
}

func (b *tokenBucket) take(n int) { b.tokens -= float64(n) }

// affords reports whether an entry of cost tokens may be taken now: the
// tokens are there, or the bucket is full and cost is more than it ever
// holds (the entry then leaves it in debt). A bucket of rate 0 affords
// nothing.
func (b *tokenBucket) affords(now time.Time, cost int) bool {
	a := b.available(now)
	return a >= cost || (b.burst > 0 && now.Compare(b.silentUntil) >= 0 && b.tokens >= b.burst && float64(cost) > b.burst)
}

// gossipCost is the inbound tokens an entry of n bytes costs.
func gossipCost(n int) int {
	return max(1, (n+gossipTxUnit-1)/gossipTxUnit)
}

// wait returns how long until n tokens are there (0: now).
func (b *tokenBucket) wait(now time.Time, n int) time.Duration {
	b.refill(now)
	if short := float64(n) - b.tokens; short > 0 {
		return time.Duration(short / b.rate * float64(time.Second))
	}
	return 0
}

// gossiper runs the VM's side of transaction gossip.
type gossiper struct {
	pool    *pool
	chainID ids.ID
	sender  p2p.Sender // nil: receive only
	cfg     NodeConfig
	done    <-chan struct{}

	mu          sync.Mutex
	queue       []*tx.Tx             // admitted through the API, not yet pushed
	queuedBytes int                  // their size
	seen        map[ids.ID]time.Time // pending transactions: last sent or received; lookups and pruning only
	out         *tokenBucket         // outbound bytes
	shared      *tokenBucket         // inbound transactions: the part not reserved for validators
	peers       *fifoCache[ids.NodeID, *tokenBucket]
	validators  map[ids.NodeID]*validatorBudget // empty: none known
	now         func() time.Time                // the inbound budgets' clock

	// The validator set: where it is read (nil: never), this node's ID
	// (left out of it), and how often (tests: negative, only when they
	// call refreshValidators). refreshMu orders the readings.
	source       validatorSource
	self         ids.NodeID
	named        []ids.NodeID // the operator's reserved peers (NodeConfig.GossipReservedPeers)
	refreshEvery time.Duration
	refreshMu    sync.Mutex

	wake      chan struct{} // something was queued
	connected chan struct{} // a peer connected: re-gossip now
	forced    time.Time     // the last round Connected forced
	cursor    ids.ID        // the last transaction a round sent: the next starts after it
	stats     gossipCounters
	wg        sync.WaitGroup
}

func newGossiper(p *pool, chainID ids.ID, sender p2p.Sender, cfg NodeConfig, done <-chan struct{}) *gossiper {
	now := time.Now()
	return &gossiper{
		pool:         p,
		chainID:      chainID,
		sender:       sender,
		cfg:          cfg,
		done:         done,
		seen:         make(map[ids.ID]time.Time),
		out:          newTokenBucket(float64(cfg.GossipBytesPerSecond), now),
		shared:       newTokenBucket(float64(cfg.GossipTxsPerSecond), now),
		peers:        newFIFOCache[ids.NodeID, *tokenBucket](maxGossipPeers),
		now:          time.Now,
		refreshEvery: validatorRefresh,
		wake:         make(chan struct{}, 1),
		connected:    make(chan struct{}, 1),
	}
}

// start runs the sending loop when there is a sender, and the validator
// set's readings when there is a validator state.
func (g *gossiper) start() {
	if g.source == nil && len(g.named) > 0 {
		// The named peers alone: nothing to read, applied once.
		g.refreshValidators(context.Background())
	}
	if g.source != nil && g.refreshEvery > 0 {
		g.wg.Add(1)
		go g.refreshLoop()
	}
	if g.sender == nil {
		return
	}
	g.wg.Add(1)
	go g.run()
}

// wait returns when the sending loop has stopped (after done is closed).
func (g *gossiper) wait() { g.wg.Wait() }

func (g *gossiper) run() {
	defer g.wg.Done()
	regossip := time.NewTicker(time.Duration(g.cfg.GossipRegossipMs) * time.Millisecond)
	defer regossip.Stop()
	for {
		select {
		case <-g.done:
			return
		case <-g.wake:
			// Let a burst of admissions share messages.
			select {
			case <-g.done:
				return
			case <-time.After(time.Duration(g.cfg.GossipBatchMs) * time.Millisecond):
			}
			g.pushQueued()
		case <-regossip.C:
			// The node's own pushes first: a round can take a while.
			select {
			case <-g.wake:
				g.pushQueued()
			default:
			}
			g.regossip(false)
		case <-g.connected:
			// At most one forced round per interval: a peer that
			// reconnects in a loop must not keep the node sending.
			now := time.Now()
			if now.Sub(g.forced) >= time.Duration(g.cfg.GossipRegossipMs)*time.Millisecond {
				g.forced = now
				g.regossip(true)
			}
		}
	}
}

// local records a transaction admitted through the API and queues it for
// the next push. The queue is bounded by one second of the outbound budget:
// beyond it the oldest entries are dropped from the queue (not from the
// mempool; re-gossip sends them later).
func (g *gossiper) local(t *tx.Tx) {
	if g.sender == nil {
		return
	}
	g.mu.Lock()
	g.seen[t.ID()] = time.Now()
	g.queue = append(g.queue, t)
	g.queuedBytes += t.Size()
	limit := max(g.cfg.GossipBytesPerSecond, 4*g.cfg.GossipMaxMessageBytes)
	drop := 0
	for g.queuedBytes > limit && drop < len(g.queue)-1 {
		g.queuedBytes -= g.queue[drop].Size()
		g.queue[drop] = nil
		drop++
	}
	g.queue = g.queue[drop:]
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// remote records a transaction admitted from a peer's gossip: it is not
// pushed, and is re-gossiped only if still pending after a round.
func (g *gossiper) remote(t *tx.Tx) {
	if g.sender == nil {
		return
	}
	g.mu.Lock()
	g.seen[t.ID()] = time.Now()
	g.mu.Unlock()
}

// peerConnected asks for a re-gossip round now.
func (g *gossiper) peerConnected() {
	select {
	case g.connected <- struct{}{}:
	default:
	}
}

// pushQueued sends the queued transactions that are still pending.
func (g *gossiper) pushQueued() {
	g.mu.Lock()
	queue := g.queue
	g.queue, g.queuedBytes = nil, 0
	g.mu.Unlock()
	raws := make([][]byte, 0, len(queue))
	for _, t := range queue {
		if g.pool.mempool.Has(t.ID()) {
			raws = append(raws, t.Bytes())
		}
	}
	g.send(raws, false)
}

// regossip sends pending transactions not sent or received within the
// re-gossip interval (all of them, up to the round's bounds, when all is
// set), in pending order from after where the previous round stopped
// (wrapping), so that a backlog larger than one round is walked through
// rather than its oldest part sent again and again. A round sends at most
// GossipRegossipTxs transactions and half an interval's outbound budget.
func (g *gossiper) regossip(all bool) {
	pending := g.pool.mempool.Ordered()
	now := time.Now()
	interval := time.Duration(g.cfg.GossipRegossipMs) * time.Millisecond
	maxBytes := max(g.cfg.GossipMaxMessageBytes, int(float64(g.cfg.GossipBytesPerSecond)*interval.Seconds()/2))
	g.mu.Lock()
	for id := range g.seen { // pruning only: the order does not matter
		if !g.pool.mempool.Has(id) {
			delete(g.seen, id)
		}
	}
	start := 0
	for i, t := range pending {
		if t.ID() == g.cursor {
			start = i + 1
			break
		}
	}
	var raws [][]byte
	size := 0
	for k := range pending {
		t := pending[(start+k)%len(pending)]
		if len(raws) == g.cfg.GossipRegossipTxs || size+t.Size() > maxBytes {
			break
		}
		if last, ok := g.seen[t.ID()]; ok && !all && now.Sub(last) < interval {
			continue
		}
		g.seen[t.ID()] = now
		g.cursor = t.ID()
		raws = append(raws, t.Bytes())
		size += t.Size()
	}
	g.mu.Unlock()
	g.send(raws, true)
}

// send packs raws into messages and sends them within the outbound budget.
func (g *gossiper) send(raws [][]byte, regossip bool) {
	for _, msg := range encodeGossip(raws, g.cfg.GossipMaxMessageBytes) {
		for {
			g.mu.Lock()
			d := g.out.wait(time.Now(), len(msg))
			if d == 0 {
				g.out.take(len(msg))
			}
			g.mu.Unlock()
			if d == 0 {
				break
			}
			select {
			case <-g.done:
				return
			case <-time.After(d):
			}
		}
		n := uint64(countGossipTxs(msg))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := g.sender.SendGossip(ctx, gossipSendConfig, msg)
		cancel()
		if err != nil {
			g.stats.sendErrors.Add(1)
			continue
		}
		g.stats.messagesSent.Add(1)
		g.stats.txsSent.Add(n)
		if regossip {
			g.stats.txsRegossiped.Add(n)
		}
	}
}

// countGossipTxs reads the count of a message encodeGossip made.
func countGossipTxs(msg []byte) int {
	return int(msg[2])<<24 | int(msg[3])<<16 | int(msg[4])<<8 | int(msg[5])
}

// receive admits the transactions of a peer's message. See the comment at
// the top of the file for the order of the checks.
func (g *gossiper) receive(nodeID ids.NodeID, msg []byte) {
	g.stats.messagesReceived.Add(1)
	if len(msg) > MaxGossipMessageBytes {
		g.stats.messagesRefused.Add(1)
		return
	}
	raws, err := decodeGossip(msg, minGossipTx)
	if err != nil {
		g.stats.messagesRefused.Add(1)
		return
	}
	g.stats.txsReceived.Add(uint64(len(raws)))

	// The budgets (see the top of the file).
	now := g.now()
	g.mu.Lock()
	allowed, validator := g.allow(nodeID, raws, now)
	g.mu.Unlock()
	if validator {
		g.stats.txsReceivedValidators.Add(uint64(len(raws)))
	}
	if allowed < len(raws) {
		g.stats.txsThrottled.Add(uint64(len(raws) - allowed))
		if validator {
			g.stats.txsThrottledValidators.Add(uint64(len(raws) - allowed))
		}
		raws = raws[:allowed]
	}

	// The checks of IssueTx that cost no signature, for every transaction
	// first (as IssueTx does: a replay or a full pool costs no
	// verification), then the signatures on every core, then admission.
	accepted := state.New(g.pool.chain.cache)
	candidates := make([]*tx.Tx, 0, len(raws))
	inMessage := make(map[ids.ID]struct{}, len(raws))
	for _, raw := range raws {
		// What an honest relay never sends (it admitted each transaction
		// it sends, through these same checks, and sends each once): an
		// entry that does not parse or fails the checks that need no
		// state, or the same transaction twice in one message. Such junk
		// compresses to almost nothing on the wire, so it silences its
		// peer as a forged signature does.
		t, err := tx.Parse(raw) // a copy: the message is not kept
		if err == nil {
			err = t.Check(g.chainID)
		}
		if err == nil {
			if _, dup := inMessage[t.ID()]; dup {
				err = errGossipRepeated
			}
		}
		if err != nil {
			g.penalize(nodeID, len(raws))
			return
		}
		inMessage[t.ID()] = struct{}{}
		if g.pool.mempool.Has(t.ID()) {
			g.stats.txsDuplicate.Add(1)
			g.received(t.ID(), now)
			continue
		}
		if may, err := mayBeAccepted(accepted, t); err == nil && may {
			if _, err := accepted.GetTx(t.ID()); err == nil {
				g.stats.txsDuplicate.Add(1)
				continue
			}
		}
		if err := g.pool.mempool.CheckRoom(t); err != nil {
			g.stats.txsRefused.Add(1)
			continue
		}
		if t.Type() != tx.TypeRegisterIdentity {
			if _, _, err := g.pool.precheck(t); err != nil {
				g.stats.txsRefused.Add(1)
				continue
			}
		}
		candidates = append(candidates, t)
	}
	if g.pool.prefetchSignatures(candidates) {
		g.penalize(nodeID, len(candidates))
		return
	}
	for _, t := range candidates {
		// admit, not issueTx: a peer's refusals are not recorded for
		// getTxStatus (they would evict the reasons this node keeps for
		// its own clients' transactions).
		switch err := g.pool.admit(t); {
		case err == nil:
			g.stats.txsAdmitted.Add(1)
			g.remote(t)
		case errors.Is(err, mempool.ErrDuplicate), errors.Is(err, ErrAlreadyAccepted):
			g.stats.txsDuplicate.Add(1)
		case errors.Is(err, tx.ErrBadSignature):
			g.penalize(nodeID, 1)
			return
		default:
			g.stats.txsRefused.Add(1)
		}
	}
}

// allow takes the entries of nodeID's message from the inbound budgets,
// in order, each at its cost (gossipCost) from one bucket, and returns
// how many it may look at (the rest are throttled), and whether it is a
// validator: an entry comes from a validator's reserved bucket if that
// affords it, else from the shared bucket under the peer's own bucket.
// The caller holds g.mu.
func (g *gossiper) allow(nodeID ids.NodeID, raws [][]byte, now time.Time) (allowed int, validator bool) {
	var (
		peer    *tokenBucket
		reserve *tokenBucket
	)
	if v, ok := g.validators[nodeID]; ok {
		reserve, peer, validator = v.reserve, v.peer, true
	} else {
		var ok bool
		if peer, ok = g.peers.Get(nodeID); !ok {
			peer = newTokenBucket(float64(g.cfg.GossipPeerTxsPerSecond), now)
			g.peers.Put(nodeID, peer)
		}
	}
	for _, raw := range raws {
		cost := gossipCost(len(raw))
		switch {
		case reserve != nil && reserve.affords(now, cost):
			reserve.take(cost)
		case peer.affords(now, cost) && g.shared.affords(now, cost):
			peer.take(cost)
			g.shared.take(cost)
		default:
			return allowed, validator
		}
		allowed++
	}
	return allowed, validator
}

// received notes that a peer sent a pending transaction: the next
// re-gossip round skips it (its peers have it, or will from the sender).
func (g *gossiper) received(id ids.ID, now time.Time) {
	if g.sender == nil {
		return
	}
	g.mu.Lock()
	g.seen[id] = now
	g.mu.Unlock()
}

// penalize drops the rest of a message that relayed a transaction with a
// bad signature (refused counts n) and does not listen to its peer for
// gossipPenalty.
func (g *gossiper) penalize(nodeID ids.NodeID, n int) {
	g.stats.txsRefused.Add(uint64(n))
	g.stats.peersPenalized.Add(1)
	now := g.now()
	g.mu.Lock()
	if v, ok := g.validators[nodeID]; ok {
		v.reserve.penalize(now)
		v.peer.penalize(now)
	} else if peer, ok := g.peers.Get(nodeID); ok {
		peer.penalize(now)
	}
	g.mu.Unlock()
}

// penalize silences the bucket for gossipPenalty from now, whatever its
// rate does meanwhile (a refresh may change a validator's rate: a debt in
// tokens would shorten or lengthen the penalty with it), and empties it.
// A debt it owes for a large entry stays owed: the silence does not pay it.
func (b *tokenBucket) penalize(now time.Time) {
	b.refill(now)
	b.tokens = min(b.tokens, 0)
	b.silentUntil = now.Add(gossipPenalty)
}

// prefetchSignatures verifies the signatures of txs on every core, so that
// admitting them one by one, in order, finds every verdict cached. It
// stops at the first signature a registered author's key refuses and
// reports it (the sender relayed a forgery); other failures are left for
// admission to report (an author registered by a pending transaction is
// found there).
func (p *pool) prefetchSignatures(txs []*tx.Tx) (bad bool) {
	if len(txs) < 2 {
		return false
	}
	workers := min(runtime.GOMAXPROCS(0), len(txs))
	var next atomic.Int64
	var forged atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := state.New(p.chain.cache) // a view per goroutine
			for !forged.Load() {
				j := int(next.Add(1) - 1)
				if j >= len(txs) {
					return
				}
				if errors.Is(p.chain.verifier.prefetch(txs[j], st.GetIdentity), tx.ErrBadSignature) {
					forged.Store(true)
				}
			}
		}()
	}
	wg.Wait()
	return forged.Load()
}
