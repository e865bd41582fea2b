package service

import (
	"encoding/json"
	"net/http"
	"time"
)

// MaxBatchCalls bounds the calls of one batch request (JSON-RPC 2.0: an
// array of request objects). The body bound (MaxBodySize) applies to the
// whole batch.
const MaxBatchCalls = 256

// serveBatch answers a batch: the calls run one after the other, in
// order, and their responses are written as they are ready, as one JSON
// array in the order of the calls (notifications have none). An empty
// array, invalid JSON or more than MaxBatchCalls calls get one error
// response; an invalid element gets an error response in its place.
func (h *handler) serveBatch(w http.ResponseWriter, r *http.Request, b []byte) {
	calls, e := parseBatch(b)
	if e != nil {
		status := http.StatusBadRequest
		if e.Code == CodeTooLarge {
			status = http.StatusRequestEntityTooLarge
		}
		writeResponse(w, status, nullID, nil, e)
		return
	}
	wrote := false
	// The write deadline of a batch covers its whole response: the time
	// blocked writing it, all elements together, is at most WriteGrace
	// plus its bytes at MinWriteRate (as for one response). Extending it
	// per element gave each its own grace: 256 responses of 17 KB read at
	// 2 KB/s held a connection for 40 minutes.
	var sent int64
	var blocked time.Duration
	for _, c := range calls {
		if r.Context().Err() != nil {
			// The client is gone (or a response could not be written
			// in time): the calls not yet started do not run, so a
			// client that sends a batch and never reads gets no more work
			// done than one that reads.
			break
		}
		h.run(r, w, c)
		if !c.hasID && c.err == nil {
			h.resp.release(c.held) // a notification gets no response
			continue
		}
		sep := []byte{','}
		if !wrote {
			wrote = true
			setJSONHeaders(w)
			w.WriteHeader(http.StatusOK)
			sep[0] = '['
		}
		sent += int64(len(c.out)) + 1
		if len(c.out) > smallResponse {
			h.setWriteDeadline(w, h.writeAllowance(sent)-blocked)
		}
		start := time.Now()
		_, err1 := w.Write(sep)
		_, err2 := w.Write(c.out)
		blocked += time.Since(start)
		h.resp.release(c.held)
		c.out = nil
		if err1 != nil || err2 != nil {
			return // the connection is broken: nothing more can be answered
		}
	}
	if !wrote {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	_, _ = w.Write([]byte("]\n"))
}

// parseBatch splits a batch (b[0] == '[') into calls: each element by the
// fast path, or the general path when it declines; an element that is not
// a valid request object becomes a call that answers its error. The whole
// array is parsed before any call runs, so invalid JSON anywhere runs
// nothing.
func parseBatch(b []byte) ([]*call, *Error) {
	i := skipWS(b, 1)
	if i < len(b) && b[i] == ']' {
		if skipWS(b, i+1) != len(b) {
			return parseBatchGeneral(b)
		}
		return nil, errorf(CodeInvalidRequest, "empty batch: send at least one request object")
	}
	var calls []*call
	for {
		c := &call{}
		next, ok := 0, false
		if i < len(b) && b[i] == '{' {
			next, ok = c.parseFast(b, i)
		}
		if !ok {
			*c = call{}
			end, ok := skipValue(b, i, 1)
			if !ok {
				return parseBatchGeneral(b)
			}
			c.err = c.parseGeneral(b[i:end])
			next = end
		}
		if len(calls) == MaxBatchCalls {
			return nil, tooManyCalls()
		}
		calls = append(calls, c)
		i = skipWS(b, next)
		if i >= len(b) {
			return parseBatchGeneral(b)
		}
		if b[i] == ']' {
			if skipWS(b, i+1) != len(b) {
				return parseBatchGeneral(b)
			}
			return calls, nil
		}
		if b[i] != ',' {
			return parseBatchGeneral(b)
		}
		i = skipWS(b, i+1)
	}
}

func tooManyCalls() *Error {
	return errorf(CodeTooLarge, "batch has more than %d calls", MaxBatchCalls)
}

// parseBatchGeneral is parseBatch for what the fast scanner declines: it
// validates with encoding/json (the precise error for invalid JSON), then
// walks the elements in place (eachElement), so an array of a million
// small elements costs no more than its bytes before it is refused.
func parseBatchGeneral(b []byte) ([]*call, *Error) {
	if !json.Valid(b) {
		return nil, errorf(CodeParseError, "request body is not valid JSON")
	}
	var calls []*call
	tooMany := false
	eachElement(b, func(elem []byte) bool {
		if len(calls) == MaxBatchCalls {
			tooMany = true
			return false
		}
		c := &call{}
		c.err = c.parseGeneral(elem)
		calls = append(calls, c)
		return true
	})
	switch {
	case tooMany:
		return nil, tooManyCalls()
	case len(calls) == 0:
		return nil, errorf(CodeInvalidRequest, "empty batch: send at least one request object")
	}
	return calls, nil
}
