package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// BatchCall is one call of Client.Batch.
type BatchCall struct {
	// Method is the wire name without the namespace ("getTxStatus").
	Method string
	// Params are encoded as the call's params (nil: none).
	Params any
	// Result, if not nil, receives the decoded result.
	Result any
	// Err is set by Batch: the node's *Error for this call (wrapped with
	// the method name), or why its response could not be used.
	Err error
}

// Batch sends the calls as JSON-RPC 2.0 batch requests, as few as the
// node's bounds allow (MaxBatchCalls calls and MaxBodySize bytes each), one
// after the other. The node runs the calls of a request in order, so
// transactions of one author may be submitted in nonce order in one batch.
// Each call's outcome is in its Err (and Result); an error the node gives
// for a whole request (too large, busy) is the Err of each of its calls.
// The error returned is a failure of the transport or a response that is
// not JSON-RPC; calls not answered then carry it too.
func (c *Client) Batch(ctx context.Context, calls []BatchCall) error {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	type req struct {
		JSONRPC string          `json:"jsonrpc"`
		Method  string          `json:"method"`
		Params  json.RawMessage `json:"params"`
		ID      uint64          `json:"id"`
	}
	encoded := make([][]byte, len(calls))
	ids := make([]uint64, len(calls))
	for i := range calls {
		params := calls[i].Params
		if params == nil {
			params = EmptyArgs{}
		}
		p, err := json.Marshal(params)
		if err != nil {
			calls[i].Err = fmt.Errorf("%s.%s: encoding params: %w", Namespace, calls[i].Method, err)
			continue
		}
		ids[i] = c.reqID.Add(1)
		b, err := json.Marshal(req{JSONRPC: "2.0", Method: Namespace + "." + calls[i].Method, Params: p, ID: ids[i]})
		if err != nil {
			calls[i].Err = fmt.Errorf("%s.%s: %w", Namespace, calls[i].Method, err)
			continue
		}
		encoded[i] = b
	}
	if err := c.sendBatches(ctx, calls, encoded, ids); err != nil {
		return err
	}
	// Calls answered busy (not run, or reads whose response the node
	// could not hold) go again, as Call does.
	for attempt := 0; attempt < c.busyRetries; attempt++ {
		again := make([][]byte, len(calls))
		n := 0
		for i := range calls {
			if encoded[i] != nil && errors.Is(calls[i].Err, ErrBusy) {
				again[i], calls[i].Err = encoded[i], nil
				n++
			}
		}
		if n == 0 {
			return nil
		}
		if !c.busyPause(ctx, attempt) {
			for i := range calls {
				if again[i] != nil {
					calls[i].Err = fmt.Errorf("%s.%s: %w", Namespace, calls[i].Method, ErrBusy)
				}
			}
			return nil
		}
		if err := c.sendBatches(ctx, calls, again, ids); err != nil {
			return err
		}
	}
	return nil
}

// sendBatches sends the encoded calls (nil: skipped) in as few requests as
// the node's bounds allow.
func (c *Client) sendBatches(ctx context.Context, calls []BatchCall, encoded [][]byte, ids []uint64) error {
	for start := 0; start < len(calls); {
		// The next request: as many calls as fit.
		var body bytes.Buffer
		body.WriteByte('[')
		var idx []int
		end := start
		for ; end < len(calls) && len(idx) < MaxBatchCalls; end++ {
			b := encoded[end]
			if b == nil {
				continue
			}
			if len(idx) > 0 && body.Len()+1+len(b)+1 > MaxBodySize {
				break
			}
			if len(idx) > 0 {
				body.WriteByte(',')
			}
			body.Write(b)
			idx = append(idx, end)
		}
		body.WriteByte(']')
		start = end
		if len(idx) == 0 {
			continue
		}
		if err := c.postBatch(ctx, body.Bytes(), calls, idx, ids); err != nil {
			for _, j := range idx {
				if calls[j].Err == nil {
					calls[j].Err = err
				}
			}
			for _, j := range encodedAfter(encoded, start) {
				calls[j].Err = err
			}
			return err
		}
		if allBusy(calls, idx) {
			// The node refused the whole request (busy reading it): the
			// calls after it wait, so an author's transactions stay in
			// nonce order when they are sent again.
			for _, j := range encodedAfter(encoded, start) {
				calls[j].Err = fmt.Errorf("%s.%s: %w", Namespace, calls[j].Method, ErrBusy)
			}
			return nil
		}
	}
	return nil
}

func allBusy(calls []BatchCall, idx []int) bool {
	for _, j := range idx {
		if !errors.Is(calls[j].Err, ErrBusy) {
			return false
		}
	}
	return true
}

func encodedAfter(encoded [][]byte, start int) []int {
	var out []int
	for j := start; j < len(encoded); j++ {
		if encoded[j] != nil {
			out = append(out, j)
		}
	}
	return out
}

// postBatch sends one batch request and fills in the calls at idx.
func (c *Client) postBatch(ctx context.Context, body []byte, calls []BatchCall, idx []int, ids []uint64) error {
	status, data, err := c.exchange(ctx, body, "")
	if err != nil {
		return fmt.Errorf("%s batch: %w", Namespace, err)
	}
	data = bytes.TrimSpace(data)
	if len(data) > 0 && data[0] == '{' {
		// One error for the whole request (too large, busy, ...).
		var res clientResponse
		if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" || res.Error == nil {
			return fmt.Errorf("%s batch: HTTP %d, not a JSON-RPC 2.0 batch response: %.200q", Namespace, status, data)
		}
		for _, j := range idx {
			calls[j].Err = fmt.Errorf("%s.%s: %w", Namespace, calls[j].Method, res.Error)
		}
		return nil
	}
	var res []clientResponse
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("%s batch: HTTP %d, not a JSON-RPC 2.0 batch response: %.200q", Namespace, status, data)
	}
	byID := make(map[string]*clientResponse, len(res))
	for i := range res {
		if res[i].JSONRPC != "2.0" {
			return fmt.Errorf("%s batch: response %d is not JSON-RPC 2.0", Namespace, i)
		}
		byID[string(res[i].ID)] = &res[i]
	}
	for _, j := range idx {
		call := &calls[j]
		full := Namespace + "." + call.Method
		r := byID[strconv.FormatUint(ids[j], 10)]
		switch {
		case r == nil:
			call.Err = fmt.Errorf("%s: %w", full, errNoBatchResponse)
		case r.Error != nil:
			call.Err = fmt.Errorf("%s: %w", full, r.Error)
		case call.Result != nil:
			if err := decodeResult(r.Result, call.Result); err != nil {
				call.Err = fmt.Errorf("%s: decoding the result: %w", full, err)
			}
		}
	}
	return nil
}

var errNoBatchResponse = errors.New("the batch response has no response for this call")

// TxResult is the outcome of one transaction of IssueTxs.
type TxResult struct {
	Reply *TxReply
	Err   error
}

// IssueTxs submits signed transactions of any type with session.issueTx
// in batch requests (see Batch), in order, and returns one result per
// transaction. Transactions of one author must be in nonce order; one
// refused does not stop the others (a later one of the same author is
// then refused for its nonce).
func (c *Client) IssueTxs(ctx context.Context, signed [][]byte) ([]TxResult, error) {
	calls := make([]BatchCall, len(signed))
	replies := make([]TxReply, len(signed))
	for i, s := range signed {
		calls[i] = BatchCall{Method: "issueTx", Params: TxArgs{Tx: s}, Result: &replies[i]}
	}
	err := c.Batch(ctx, calls)
	out := make([]TxResult, len(signed))
	for i := range calls {
		if calls[i].Err != nil {
			out[i].Err = calls[i].Err
		} else {
			out[i].Reply = &replies[i]
		}
	}
	return out, err
}

// busyPause waits before the attempt+1-th retry of a busy call: 50 ms
// doubling, ± a quarter, so clients told to come back do not come back
// together. It returns false if ctx ends first.
func (c *Client) busyPause(ctx context.Context, attempt int) bool {
	d := 50 * time.Millisecond << min(attempt, 6)
	d += time.Duration(rand.Int64N(int64(d)/2)) - d/4
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
