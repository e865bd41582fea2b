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
	return &handler{
		rpc:   srv,
		svc:   svc,
		opts:  o,
		resp:  newBudget(o.ResponseBudget),
		body:  newBudget(o.BodyBudget),
		slots: make(chan struct{}, o.MaxConcurrent),
	}, nil
}
