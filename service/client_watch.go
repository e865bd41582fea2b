package service

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/luxfi/session/service/wsclient"
)

// DefaultWatchPoll is how often an InboxWatch ticks without a
// notification: a node that withholds notifications delays a client by
// at most this much (docs/stream.md section 6).
const DefaultWatchPoll = time.Minute

// InboxWatch tells a client when to read an identity's inbox
// (WatchInbox). C receives a value whenever the inbox may have changed:
// a node's notification, a reconnection (notifications may have been
// missed) or the slow poll. Values do not queue: one waiting value stands
// for any number of changes. A value is only a hint: the client reads
// with getInbox from its own cursor, until more is false, and verifies
// what it reads, as when polling; a node that lies in a notification can
// only make it read early.
type InboxWatch struct {
	C <-chan struct{}

	c         chan struct{}
	client    *Client
	sessionID string
	stop      context.CancelFunc
	done      chan struct{}

	mu  sync.Mutex
	sub string         // the node's subscription id on conn
	on  *wsclient.Conn // the connection it is on
}

// WatchInbox watches sessionID's inbox. Over a ws:// or wss:// Client it
// subscribes (session.subscribeInbox) and subscribes again on each new
// WebSocket; over http(s), or while the WebSocket cannot be had, C ticks
// every poll (DefaultWatchPoll if 0) and when a connection is regained.
// C receives a first value at once, so the client reads what arrived
// before the watch. Close ends the watch.
func (c *Client) WatchInbox(ctx context.Context, sessionID string, poll time.Duration) (*InboxWatch, error) {
	if poll <= 0 {
		poll = DefaultWatchPoll
	}
	if _, err := parseSessionID("sessionId", sessionID); err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.Background())
	w := &InboxWatch{c: make(chan struct{}, 1), client: c, sessionID: sessionID, stop: cancel, done: make(chan struct{})}
	w.C = w.c
	w.kick()
	if c.stream != nil {
		c.stream.addWatch(w)
		if err := w.subscribe(ctx); err != nil && !errors.Is(err, errNoStream) {
			c.stream.removeWatch(w)
			cancel()
			return nil, err
		}
	}
	go w.run(wctx, poll)
	return w, nil
}

var errNoStream = errors.New("no WebSocket")

// kick makes C ready, without blocking.
func (w *InboxWatch) kick() {
	select {
	case w.c <- struct{}{}:
	default:
	}
}

// subscribe subscribes on the Client's current WebSocket, if it has one.
func (w *InboxWatch) subscribe(ctx context.Context) error {
	s := w.client.stream
	conn := s.get(ctx)
	if conn == nil {
		return errNoStream
	}
	var r SubscribeInboxReply
	reqID := w.client.reqID.Add(1)
	body, err := json.Marshal(clientRequest{JSONRPC: "2.0", Method: methodSubscribeInbox,
		Params: SubscribeInboxArgs{SessionID: w.sessionID}, ID: reqID})
	if err != nil {
		return err
	}
	var res clientResponse
	data, err := conn.Call(ctx, body, strconv.FormatUint(reqID, 10))
	if err != nil {
		s.failed(conn, err)
		return err
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return err
	}
	if res.Error != nil {
		return res.Error
	}
	if err := json.Unmarshal(res.Result, &r); err != nil || r.Subscription == "" {
		return errors.New("subscribeInbox: no subscription in the node's answer")
	}
	w.mu.Lock()
	w.sub, w.on = r.Subscription, conn
	w.mu.Unlock()
	return nil
}

// run keeps the watch: the slow poll, and resubscribing when the
// WebSocket it was on ends.
func (w *InboxWatch) run(ctx context.Context, poll time.Duration) {
	defer close(w.done)
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		w.mu.Lock()
		on := w.on
		w.mu.Unlock()
		var lost <-chan struct{}
		var retry <-chan time.Time
		var rt *time.Timer
		if on != nil {
			lost = on.Done()
		} else if w.client.stream != nil {
			// Not subscribed (no WebSocket now): try again each second;
			// the Client's backoff decides when it dials.
			rt = time.NewTimer(time.Second)
			retry = rt.C
		}
		w.wait(ctx, lost, retry, t.C)
		if rt != nil {
			rt.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// wait is one step of run: whichever of its events comes first.
func (w *InboxWatch) wait(ctx context.Context, lost <-chan struct{}, retry, tick <-chan time.Time) {
	select {
	case <-ctx.Done():
	case <-retry:
		if w.subscribe(ctx) == nil {
			w.kick() // changes while unsubscribed were not notified
		}
	case <-tick:
		w.kick()
	case <-lost:
		w.mu.Lock()
		w.on, w.sub = nil, ""
		w.mu.Unlock()
		w.kick() // notifications may have been missed
		_ = w.subscribe(ctx)
	}
}

// Close ends the watch (its subscription ends with it, or with its
// connection).
func (w *InboxWatch) Close() error {
	w.stop()
	<-w.done
	if s := w.client.stream; s != nil {
		s.removeWatch(w)
		w.mu.Lock()
		sub, on := w.sub, w.on
		w.mu.Unlock()
		if on != nil && sub != "" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			reqID := w.client.reqID.Add(1)
			body, _ := json.Marshal(clientRequest{JSONRPC: "2.0", Method: methodUnsubscribe,
				Params: UnsubscribeArgs{Subscription: sub}, ID: reqID})
			_, _ = on.Call(ctx, body, strconv.FormatUint(reqID, 10))
		}
	}
	return nil
}

// addWatch and removeWatch keep the watches notifications are routed to.
func (s *stream) addWatch(w *InboxWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.watches == nil {
		s.watches = make(map[*InboxWatch]struct{})
	}
	s.watches[w] = struct{}{}
}

func (s *stream) removeWatch(w *InboxWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.watches, w)
}

// onNotification routes an inboxChanged notification to its watch. One
// naming no watch of this client (an unsubscribe crossing it, or a lying
// node) is dropped: it can only have made a client read early.
func (s *stream) onNotification(msg []byte) {
	var n struct {
		Method string `json:"method"`
		Params struct {
			Subscription string `json:"subscription"`
		} `json:"params"`
	}
	if json.Unmarshal(msg, &n) != nil || n.Method != methodInboxChanged || n.Params.Subscription == "" {
		return
	}
	s.mu.Lock()
	var hit []*InboxWatch
	for w := range s.watches {
		w.mu.Lock()
		if w.sub == n.Params.Subscription {
			hit = append(hit, w)
		}
		w.mu.Unlock()
	}
	s.mu.Unlock()
	for _, w := range hit {
		w.kick()
	}
}
