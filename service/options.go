package service

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"time"

	"github.com/gorilla/rpc/v2"

	"github.com/luxfi/session/vm"
)

// Options bound what the handler holds at once, whatever its clients do.
// Zero fields take the defaults below. docs/api.md ("Memory and
// concurrency") explains the figures.
type Options struct {
	// ResponseBudget bounds the bytes of responses held at once: a
	// getMessages or getInbox call holds the most its page can take while
	// it runs (about 3.5 MB at limit 1000), then the size of its response
	// until the response is written to the connection; any other response
	// over 16 KiB holds its size until written. A call that cannot get its
	// bytes within BusyWait is answered with CodeBusy. Default
	// DefaultResponseBudget; at least the largest page's reservation.
	ResponseBudget int64
	// BodyBudget bounds the request bytes held at once: twice each body
	// buffer (the body and what is decoded from it), taken as the bytes
	// arrive. A request that cannot get them within BusyWait is answered
	// 503 with CodeBusy. Default DefaultBodyBudget; at least 2 ×
	// (MaxBodySize + 1).
	BodyBudget int64
	// MaxConcurrent bounds the calls executing at once (decoding params,
	// running the method, encoding the response; not reading requests or
	// writing responses). Default DefaultMaxConcurrent.
	MaxConcurrent int
	// BusyWait bounds how long a call waits for a slot or budget.
	// Default DefaultBusyWait.
	BusyWait time.Duration
	// WriteGrace and MinWriteRate set the write deadline of a response
	// over 16 KiB: WriteGrace plus its size at MinWriteRate bytes/s.
	// Defaults DefaultWriteGrace and DefaultMinWriteRate.
	WriteGrace   time.Duration
	MinWriteRate int64
	// Stream enables the streaming transport, JSON-RPC over one
	// WebSocket per client at the handler's path (docs/stream.md), and
	// bounds it; nil: off, and an upgrade request is answered 400. Only a
	// server whose connections can be hijacked (HTTP/1.1 net/http) can
	// serve it: the standalone node turns it on, a Lux plugin does not.
	Stream *StreamOptions
}

// StreamOptions bound the streaming transport (docs/stream.md section 5).
// Zero fields take the defaults below.
type StreamOptions struct {
	// MaxConns bounds the WebSockets open at once; an upgrade beyond it
	// is answered 503 with Retry-After. They also count in the HTTP
	// server's connection limit. Default DefaultStreamMaxConns.
	MaxConns int
	// CallRate and CallBurst are each connection's token bucket, one
	// token per call (a batch takes one per element): when it is empty
	// the node stops reading the connection. Defaults DefaultCallRate and
	// DefaultCallBurst.
	CallRate  float64
	CallBurst int
	// IdleTimeout closes a connection (1001) that sends no message for
	// this long. Default DefaultStreamIdle.
	IdleTimeout time.Duration
	// MessageTimeout bounds receiving one message, from its first byte
	// (1008). Default DefaultMessageTimeout.
	MessageTimeout time.Duration
	// PingInterval: when nothing has been read for this long the node
	// pings, and closes (1001) if nothing arrives for as long again.
	// Default DefaultPingInterval.
	PingInterval time.Duration
	// OriginAllowed reports whether a page of origin may open a
	// WebSocket (every browser sends Origin on the handshake; a WebSocket
	// is not subject to CORS, so this is the whole defence against
	// cross-site WebSocket hijacking). nil refuses every handshake that
	// carries an Origin; "null" is always refused. Requests without
	// Origin (non-browser clients) are not asked about.
	OriginAllowed func(origin string) bool
}

// Defaults of StreamOptions.
const (
	DefaultStreamMaxConns = DefaultMaxConns / 2
	DefaultCallRate       = 500
	DefaultCallBurst      = MaxBatchCalls
	DefaultStreamIdle     = 2 * time.Minute
	DefaultMessageTimeout = 30 * time.Second
	DefaultPingInterval   = 30 * time.Second
)

func (s *StreamOptions) defaults() error {
	if s.MaxConns == 0 {
		s.MaxConns = DefaultStreamMaxConns
	}
	if s.CallRate == 0 {
		s.CallRate = DefaultCallRate
	}
	if s.CallBurst == 0 {
		s.CallBurst = DefaultCallBurst
	}
	if s.IdleTimeout == 0 {
		s.IdleTimeout = DefaultStreamIdle
	}
	if s.MessageTimeout == 0 {
		s.MessageTimeout = DefaultMessageTimeout
	}
	if s.PingInterval == 0 {
		s.PingInterval = DefaultPingInterval
	}
	if s.MaxConns < 1 || !(s.CallRate > 0) || s.CallBurst < 1 || s.IdleTimeout < 0 || s.MessageTimeout < 0 || s.PingInterval < 0 {
		return errors.New("service: invalid StreamOptions")
	}
	return nil
}

// Defaults of Options.
const (
	DefaultResponseBudget = 64 << 20
	DefaultBodyBudget     = 64 << 20
	DefaultMaxConcurrent  = 64
	DefaultBusyWait       = 2 * time.Second
	DefaultWriteGrace     = 10 * time.Second
	DefaultMinWriteRate   = 64 << 10
)

func (o *Options) defaults() error {
	if o.ResponseBudget == 0 {
		o.ResponseBudget = DefaultResponseBudget
	}
	if o.BodyBudget == 0 {
		o.BodyBudget = DefaultBodyBudget
	}
	if o.MaxConcurrent == 0 {
		o.MaxConcurrent = DefaultMaxConcurrent
	}
	if o.BusyWait == 0 {
		o.BusyWait = DefaultBusyWait
	}
	if o.WriteGrace == 0 {
		o.WriteGrace = DefaultWriteGrace
	}
	if o.MinWriteRate == 0 {
		o.MinWriteRate = DefaultMinWriteRate
	}
	switch {
	case o.ResponseBudget < maxPageReservation:
		return fmt.Errorf("service: ResponseBudget %d is below the largest page's reservation (%d)", o.ResponseBudget, maxPageReservation)
	case o.BodyBudget < 2*(MaxBodySize+1):
		return fmt.Errorf("service: BodyBudget %d is below 2 × (MaxBodySize + 1) = %d", o.BodyBudget, 2*(MaxBodySize+1))
	case o.MaxConcurrent < 1, o.BusyWait < 0, o.WriteGrace < 0, o.MinWriteRate < 1:
		return errors.New("service: invalid Options")
	}
	if o.Stream != nil {
		s := *o.Stream // the caller's value is not changed
		if err := s.defaults(); err != nil {
			return err
		}
		o.Stream = &s
	}
	return nil
}

// NewHandlerWith returns a handler factory for vm.WithHandler with the
// given Options. Invalid options make the factory fail.
func NewHandlerWith(o Options) func(vm.API) (http.Handler, error) {
	return func(api vm.API) (http.Handler, error) { return newHandler(api, o) }
}

func newHandler(api vm.API, o Options) (*handler, error) {
	if api == nil || (reflect.ValueOf(api).Kind() == reflect.Pointer && reflect.ValueOf(api).IsNil()) {
		return nil, errors.New("service: nil API")
	}
	if err := o.defaults(); err != nil {
		return nil, err
	}
	srv := rpc.NewServer()
	// One codec: gorilla also uses it when a request has no Content-Type.
	srv.RegisterCodec(codec{}, "application/json")
	svc := &rpcService{api: api}
	if err := srv.RegisterService(svc, Namespace); err != nil {
		return nil, fmt.Errorf("service: %w", err)
	}
	for _, m := range Methods {
		if !srv.HasMethod(Namespace + "." + goName(m)) {
			return nil, fmt.Errorf("service: method %s is not implemented", m)
		}
	}
	h := &handler{
		rpc:   srv,
		svc:   svc,
		opts:  o,
		resp:  newBudget(o.ResponseBudget),
		body:  newBudget(o.BodyBudget),
		slots: make(chan struct{}, o.MaxConcurrent),
		conns: make(map[*wsConn]struct{}),
	}
	h.watchInbox(api)
	return h, nil
}
