package service

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/maphash"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/luxfi/session/service/wsframe"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm"
)

// Push notifications (docs/stream.md section 6): session.subscribeInbox
// and session.unsubscribe, WebSocket only, and session.inboxChanged
// notifications carrying a position, never content.
const (
	// MaxSubscriptionsPerConn bounds one WebSocket's subscriptions.
	MaxSubscriptionsPerConn = 8
	// MaxSubscriptions bounds the node's.
	MaxSubscriptions = 4096
)

// Wire names of the push methods.
const (
	methodSubscribeInbox = Namespace + ".subscribeInbox"
	methodUnsubscribe    = Namespace + ".unsubscribe"
	methodInboxChanged   = Namespace + ".inboxChanged"
)

// SubscribeInboxArgs are session.subscribeInbox's params.
type SubscribeInboxArgs struct {
	SessionID string `json:"sessionId"`
	// After is the client's cursor: if the inbox holds entries above it,
	// the first notification follows at once.
	After uint64 `json:"after"`
}

// SubscribeInboxReply is its result.
type SubscribeInboxReply struct {
	Subscription string `json:"subscription"`
}

// UnsubscribeArgs are session.unsubscribe's params.
type UnsubscribeArgs struct {
	Subscription string `json:"subscription"`
}

// subscription is one subscribeInbox of one connection.
type subscription struct {
	id  string
	c   *wsConn
	key [state.SessionIDSize]byte
	// pending is the highest inbox position seen for it (raised by block
	// acceptance); sent, the highest notified (the connection's goroutine
	// only).
	pending atomic.Uint64
	sent    uint64
}

// subIndex finds the subscriptions of a recipient. Block acceptance reads
// it without a lock (copy-on-write maps), so it never waits on a
// connection. It is cut into subShards parts by a hash of the recipient
// under a per-process seed: subscribing and unsubscribing copy one part
// under its lock, about MaxSubscriptions/subShards recipients, not the
// node's whole index (docs/stream.md section 6, "copy-on-write or
// sharded").
type subIndex struct {
	mu     sync.Mutex // count
	count  int
	shards [subShards]subShard
}

// subShards is how many parts the index has.
const subShards = 256

type subShard struct {
	mu sync.Mutex
	m  atomic.Pointer[map[[state.SessionIDSize]byte][]*subscription]
}

// subSeed keys the parts' hash: a client cannot choose identities that
// share one.
var subSeed = maphash.MakeSeed()

func (x *subIndex) shard(key [state.SessionIDSize]byte) *subShard {
	return &x.shards[maphash.Comparable(subSeed, key)%subShards]
}

// subsOf are the subscriptions of key (not to be changed).
func (x *subIndex) subsOf(key [state.SessionIDSize]byte) []*subscription {
	if m := x.shard(key).m.Load(); m != nil {
		return (*m)[key]
	}
	return nil
}

// add registers s unless the node holds MaxSubscriptions.
func (x *subIndex) add(s *subscription) bool {
	x.mu.Lock()
	if x.count >= MaxSubscriptions {
		x.mu.Unlock()
		return false
	}
	x.count++
	x.mu.Unlock()
	x.shard(s.key).update(func(m map[[state.SessionIDSize]byte][]*subscription) {
		m[s.key] = append(m[s.key][:len(m[s.key]):len(m[s.key])], s)
	})
	return true
}

// remove unregisters s.
func (x *subIndex) remove(s *subscription) {
	x.shard(s.key).update(func(m map[[state.SessionIDSize]byte][]*subscription) {
		var kept []*subscription
		for _, o := range m[s.key] {
			if o != s {
				kept = append(kept, o)
			}
		}
		if len(kept) == 0 {
			delete(m, s.key)
		} else {
			m[s.key] = kept
		}
	})
	x.mu.Lock()
	x.count--
	x.mu.Unlock()
}

// update replaces the part's map with a changed copy.
func (p *subShard) update(f func(map[[state.SessionIDSize]byte][]*subscription)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.m.Load()
	m := make(map[[state.SessionIDSize]byte][]*subscription)
	if old != nil {
		for k, v := range *old {
			m[k] = v
		}
	}
	f(m)
	p.m.Store(&m)
}

// accepted is the VM's WatchInbox function: for each inbox entry of an
// accepted block, raise the matching subscriptions' pending positions and
// signal their connections, without blocking.
func (x *subIndex) accepted(entries []state.InboxWrite) {
	// The highest position of each watched recipient first, so that each
	// matching subscription is raised and signalled once per block,
	// however many of the block's entries are its (a block of 4,096
	// messages to an identity that 512 connections watch was 2 million
	// signals on the accepting goroutine).
	var high map[[state.SessionIDSize]byte]uint64
	for _, e := range entries {
		if len(x.subsOf(e.Recipient)) == 0 {
			continue
		}
		if high == nil {
			high = make(map[[state.SessionIDSize]byte]uint64)
		}
		high[e.Recipient] = max(high[e.Recipient], e.Position)
	}
	for k, pos := range high {
		for _, s := range x.subsOf(k) {
			for {
				p := s.pending.Load()
				if pos <= p || s.pending.CompareAndSwap(p, pos) {
					break
				}
			}
			s.c.signal()
		}
	}
}

// watchInbox connects the handler's subscriptions to the VM, when the
// transport is on and the API can report accepted inbox entries.
func (h *handler) watchInbox(api vm.API) {
	if w, ok := api.(vm.InboxWatcher); ok && h.opts.Stream != nil {
		w.WatchInbox(h.subs.accepted)
	}
}

// signal tells the connection a subscription has something to say: if it
// waits for input, its read returns now (and it writes the notification);
// otherwise it writes it with its next write.
func (c *wsConn) signal() {
	c.notified.Store(true)
	// Under wakeMu (see setActive): a wake-up must not land on the
	// deadline of a message the connection has started reading.
	c.wakeMu.Lock()
	if c.state.Load() == stIdle {
		c.wake()
	}
	c.wakeMu.Unlock()
}

// appendNotifications turns pending positions into inboxChanged messages
// in the output buffer; it reports whether it added any. Not inside a
// batch's response: they wait for its last fragment.
func (c *wsConn) appendNotifications() bool {
	if c.inBatch || !c.notified.Swap(false) {
		return false
	}
	added := false
	for _, s := range c.subs {
		p := s.pending.Load()
		if p <= s.sent {
			continue
		}
		s.sent = p
		msg := make([]byte, 0, 128)
		msg = append(msg, `{"jsonrpc":"2.0","method":"`+methodInboxChanged+`","params":{"subscription":"`...)
		msg = append(msg, s.id...)
		msg = append(msg, `","position":`...)
		msg = strconv.AppendUint(msg, p, 10)
		msg = append(msg, "}}"...)
		c.out = wsframe.AppendText(c.out, msg)
		added = true
	}
	return added
}

// isPushMethod reports whether a call is one the connection answers
// itself.
func isPushMethod(method string) bool {
	return method == methodSubscribeInbox || method == methodUnsubscribe
}

// runPush answers subscribeInbox and unsubscribe.
func (c *wsConn) runPush(k *call) {
	var result any
	var err error
	switch k.method {
	case methodSubscribeInbox:
		result, err = c.subscribe(k)
	case methodUnsubscribe:
		result, err = c.unsubscribe(k)
	}
	if err == nil {
		var e *Error
		if k.out, e = encodeResult(k.responseID(), result); e == nil {
			return
		}
		err = e
	}
	k.out = encodeError(k.responseID(), toError(err))
}

func (c *wsConn) subscribe(k *call) (any, error) {
	var a SubscribeInboxArgs
	if err := decodeParams(k.params, &a); err != nil {
		return nil, err
	}
	id, err := parseSessionID("sessionId", a.SessionID)
	if err != nil {
		return nil, err
	}
	api := c.h.svc.api
	if _, err := api.Identity(id); errors.Is(err, state.ErrNotFound) {
		return nil, errorf(CodeUnknownIdentity, "unknown identity %s: not registered", id)
	} else if err != nil {
		return nil, err
	}
	key := state.SessionIDKey(id)
	for _, s := range c.subs {
		if s.key == key {
			return nil, errorf(CodeAlreadyExists, "this connection already subscribes to %s (subscription %s)", id, s.id)
		}
	}
	if len(c.subs) >= MaxSubscriptionsPerConn {
		return nil, errorf(CodeTooLarge, "a connection holds at most %d subscriptions", MaxSubscriptionsPerConn)
	}
	var raw [16]byte
	_, _ = rand.Read(raw[:])
	s := &subscription{id: hex.EncodeToString(raw[:]), c: c, key: key, sent: a.After}
	if !c.h.subs.add(s) {
		return nil, errorf(CodeLimitReached, "the node holds %d subscriptions: poll getInbox instead", MaxSubscriptions)
	}
	c.subs = append(c.subs, s)
	// Entries already above the client's cursor: the first notification
	// follows the response (its position is the first such entry's; a
	// position is a hint, never a cursor).
	if ms, err := api.Inbox(id, a.After, 1); err == nil && len(ms) > 0 {
		s.pending.Store(ms[0].Position)
		c.notified.Store(true)
	}
	return SubscribeInboxReply{Subscription: s.id}, nil
}

func (c *wsConn) unsubscribe(k *call) (any, error) {
	var a UnsubscribeArgs
	if err := decodeParams(k.params, &a); err != nil {
		return nil, err
	}
	for i, s := range c.subs {
		if s.id == a.Subscription {
			c.h.subs.remove(s)
			c.subs = append(c.subs[:i], c.subs[i+1:]...)
			return struct{}{}, nil
		}
	}
	return nil, errorf(CodeInvalidParams, "invalid params: no subscription %.40q on this connection", a.Subscription)
}

// dropSubscriptions ends the connection's subscriptions (it is closing).
func (c *wsConn) dropSubscriptions() {
	for _, s := range c.subs {
		c.h.subs.remove(s)
	}
	c.subs = nil
}
