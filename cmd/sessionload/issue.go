package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/luxfi/session/service"
	"github.com/luxfi/session/service/wsclient"
)

// issueBody is the session.issueTx request for signed transaction bytes.
// The generator encodes each as it sends it (appendIssueBody, into a
// buffer each sender reuses): base64 of a 3.7 KB message costs it about
// 2 µs, and keeping every request encoded from the start tripled the
// memory a long run held.
func issueBody(id uint64, signed []byte) []byte {
	const head = `{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"`
	return appendIssueBody(make([]byte, 0, len(head)+base64.StdEncoding.EncodedLen(len(signed))+40), id, signed)
}

// appendIssueBody appends issueBody(id, signed) to b.
func appendIssueBody(b []byte, id uint64, signed []byte) []byte {
	const head = `{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"`
	b = append(b, head...)
	b = base64.StdEncoding.AppendEncode(b, signed)
	b = append(b, `"},"id":`...)
	b = strconv.AppendUint(b, id, 10)
	return append(b, '}')
}

// poster sends pre-encoded requests.
type poster struct {
	url string
	hc  *http.Client
	// ws, if set, carries the watcher's getInbox calls (--ws: the whole
	// client on the streaming transport).
	ws *wsclient.Conn
	// notes, with ws, is ready when the node notified that the sink's
	// inbox changed (session.subscribeInbox).
	notes chan struct{}
}

// issue posts a pre-encoded issueTx request and returns the node's error
// (*service.Error, usable with errors.Is) or a transport error.
func (p *poster) issue(ctx context.Context, rc *rawConn, body []byte) error {
	status, data, err := p.post(ctx, rc, body)
	if err != nil {
		return err
	}
	var res issueResponse
	if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" {
		return fmt.Errorf("issueTx: HTTP %d, not a JSON-RPC 2.0 response: %.200q", status, data)
	}
	if res.Error != nil {
		return fmt.Errorf("issueTx: %w", res.Error)
	}
	if status != http.StatusOK || res.Result == nil {
		return fmt.Errorf("issueTx: HTTP %d without a result", status)
	}
	return nil
}

// allAdmitted reports, without decoding, that a batch response answers
// each of n calls with a result: an array holding n results and no
// error. A key inside a JSON string has its quotes escaped, so a
// response of n admitted calls holds `"result":` exactly n times. When
// not, issueBatch decodes the response to find the first refusal.
func allAdmitted(data []byte, n int) bool {
	data = bytes.TrimSpace(data)
	return len(data) > 1 && data[0] == '[' && data[len(data)-1] == ']' &&
		bytes.Count(data, []byte(`"result":`)) == n && !bytes.Contains(data, []byte(`"error":`))
}

// issueResponse is what the generator reads of an issueTx response: an
// error, or that there is a result (decoded into struct{}, so its fields
// are only scanned).
type issueResponse struct {
	JSONRPC string         `json:"jsonrpc"`
	Error   *service.Error `json:"error"`
	Result  *struct{}      `json:"result"`
}

// issueBatch posts pre-encoded issueTx requests as one JSON-RPC batch and
// returns how many, from the first, were admitted, and the error of the
// first that was not (the rest of a client's batch follows it in nonce
// order, so they are refused too and are sent again).
func (p *poster) issueBatch(ctx context.Context, rc *rawConn, bodies [][]byte) (int, error) {
	size := 2
	for _, b := range bodies {
		size += len(b) + 1
	}
	body := make([]byte, 0, size)
	body = append(body, '[')
	for i, b := range bodies {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, b...)
	}
	body = append(body, ']')
	status, data, err := p.post(ctx, rc, body)
	if err != nil {
		return 0, err
	}
	if allAdmitted(data, len(bodies)) {
		return len(bodies), nil
	}
	var res []issueResponse
	if err := json.Unmarshal(data, &res); err != nil {
		var one struct {
			Error *service.Error `json:"error"`
		}
		if json.Unmarshal(data, &one) == nil && one.Error != nil {
			return 0, fmt.Errorf("issueTx batch: HTTP %d: %w", status, one.Error)
		}
		return 0, fmt.Errorf("issueTx batch: HTTP %d, not a JSON-RPC 2.0 batch response: %.200q", status, data)
	}
	if len(res) != len(bodies) {
		return 0, fmt.Errorf("issueTx batch: %d responses to %d calls", len(res), len(bodies))
	}
	for i, r := range res {
		if r.JSONRPC != "2.0" {
			return i, fmt.Errorf("issueTx batch: response %d is not JSON-RPC 2.0", i)
		}
		if r.Error != nil {
			return i, fmt.Errorf("issueTx: %w", r.Error)
		}
		if r.Result == nil {
			return i, fmt.Errorf("issueTx batch: response %d without a result", i)
		}
	}
	return len(res), nil
}

// inboxMessage is what the acceptance watcher reads of a message: the
// ciphertext and the other fields are only scanned, not decoded.
type inboxMessage struct {
	TxID   string `json:"txID"`
	Author string `json:"author"`
}

type inboxPage struct {
	Messages []inboxMessage `json:"messages"`
	Next     uint64         `json:"next"`
	More     bool           `json:"more"`
}

// inbox reads a page of the sink's inbox after cursor (session.getInbox,
// the largest page). It decodes only what the watcher needs: with the
// Go client's Message (two CB58 IDs, the ciphertext's base64) decoding
// cost the generator about 30 µs per message, a fifth of the node's
// cost of admitting and accepting it.
func (p *poster) inbox(ctx context.Context, sink string, after uint64) (*inboxPage, error) {
	body, err := json.Marshal(map[string]any{
		"jsonrpc": "2.0", "id": 1, "method": "session.getInbox",
		"params": service.InboxArgs{SessionID: sink, After: after, Limit: service.MaxPageSize},
	})
	if err != nil {
		return nil, err
	}
	var data []byte
	status := http.StatusOK
	if p.ws != nil {
		if data, err = p.ws.Call(ctx, body, "1"); err != nil {
			return nil, err
		}
	} else {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := p.hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err = io.ReadAll(io.LimitReader(resp.Body, 16<<20)) // to the end: the connection is reused
		if err != nil {
			return nil, err
		}
		status = resp.StatusCode
	}
	var res struct {
		JSONRPC string         `json:"jsonrpc"`
		Error   *service.Error `json:"error"`
		Result  *inboxPage     `json:"result"`
	}
	if page, ok := parseInbox(data); ok {
		return page, nil
	}
	if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" {
		return nil, fmt.Errorf("getInbox: HTTP %d, not a JSON-RPC 2.0 response: %.200q", status, data)
	}
	if res.Error != nil {
		return nil, fmt.Errorf("getInbox: %w", res.Error)
	}
	if res.Result == nil {
		return nil, fmt.Errorf("getInbox: HTTP %d without a result", status)
	}
	return res.Result, nil
}

// parseInbox reads a getInbox response in the node's encoding (members
// in the order docs/api.md shows them: target, seq, author, txID,
// height, position, timestamp, ciphertext) without decoding the rest:
// the authors and transaction IDs, next and more. It returns false for
// anything else (an error, another layout), which inbox then decodes
// with encoding/json. TestParseInbox holds it to encoding/json.
func parseInbox(b []byte) (*inboxPage, bool) {
	const head = `{"jsonrpc":"2.0","result":{"messages":`
	if !bytes.HasPrefix(b, []byte(head)) {
		return nil, false
	}
	b = b[len(head):]
	page := &inboxPage{}
	str := func(key string) (string, bool) { // "key":"value" at b
		if !bytes.HasPrefix(b, []byte(key)) {
			return "", false
		}
		b = b[len(key):]
		end := bytes.IndexByte(b, '"')
		if end < 0 || bytes.IndexByte(b[:end], '\\') >= 0 {
			return "", false
		}
		v := string(b[:end])
		b = b[end+1:]
		return v, true
	}
	num := func(key string) (uint64, bool) {
		if !bytes.HasPrefix(b, []byte(key)) {
			return 0, false
		}
		b = b[len(key):]
		i := 0
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		v, err := strconv.ParseUint(string(b[:i]), 10, 64)
		b = b[i:]
		return v, err == nil
	}
	switch {
	case bytes.HasPrefix(b, []byte("null")):
		b = b[4:]
	case len(b) > 1 && b[0] == '[' && b[1] == ']':
		b = b[2:]
	case len(b) > 0 && b[0] == '[':
		for {
			b = b[1:] // '[' or ','
			// {"target":"…","seq":N,"author":"…","txID":"…", then
			// numbers and the ciphertext (base64 or null): no brace.
			i := bytes.Index(b, []byte(`,"author":"`))
			if len(b) == 0 || b[0] != '{' || i < 0 || bytes.IndexByte(b[:i], '}') >= 0 {
				return nil, false
			}
			b = b[i+1:]
			var m inboxMessage
			var ok bool
			if m.Author, ok = str(`"author":"`); !ok {
				return nil, false
			}
			if m.TxID, ok = str(`,"txID":"`); !ok {
				return nil, false
			}
			end := bytes.IndexByte(b, '}')
			if end < 0 || bytes.ContainsAny(b[:end], "{[]") {
				return nil, false
			}
			b = b[end+1:]
			page.Messages = append(page.Messages, m)
			if len(b) == 0 || b[0] != ',' {
				break
			}
		}
		if len(b) == 0 || b[0] != ']' {
			return nil, false
		}
		b = b[1:]
	default:
		return nil, false
	}
	var ok bool
	if page.Next, ok = num(`,"next":`); !ok {
		return nil, false
	}
	switch {
	case bytes.HasPrefix(b, []byte(`,"more":true}`)):
		page.More, b = true, b[len(`,"more":true}`):]
	case bytes.HasPrefix(b, []byte(`,"more":false}`)):
		b = b[len(`,"more":false}`):]
	default:
		return nil, false
	}
	// The id, and the end of the response object.
	if !bytes.HasPrefix(b, []byte(`,"id":`)) {
		return nil, false
	}
	b = bytes.TrimSpace(b[len(`,"id":`):])
	if len(b) < 2 || b[len(b)-1] != '}' || bytes.ContainsAny(b[:len(b)-1], "{}[]:") {
		return nil, false
	}
	return page, true
}
