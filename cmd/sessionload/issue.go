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
)

// issueBody is the session.issueTx request for signed transaction bytes,
// encoded once before the timed phase so the generator spends its CPU on
// the wire, not on JSON and base64.
func issueBody(id uint64, signed []byte) []byte {
	const head = `{"jsonrpc":"2.0","method":"session.issueTx","params":{"tx":"`
	b := make([]byte, 0, len(head)+base64.StdEncoding.EncodedLen(len(signed))+40)
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
}

// issue posts a pre-encoded issueTx request and returns the node's error
// (*service.Error, usable with errors.Is) or a transport error.
func (p *poster) issue(ctx context.Context, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	var res struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *service.Error  `json:"error"`
		Result  json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil || res.JSONRPC != "2.0" {
		return fmt.Errorf("issueTx: HTTP %d, not a JSON-RPC 2.0 response: %.200q", resp.StatusCode, data)
	}
	if res.Error != nil {
		return fmt.Errorf("issueTx: %w", res.Error)
	}
	if resp.StatusCode != http.StatusOK || len(res.Result) == 0 {
		return fmt.Errorf("issueTx: HTTP %d without a result", resp.StatusCode)
	}
	return nil
}

// issueBatch posts pre-encoded issueTx requests as one JSON-RPC batch and
// returns how many, from the first, were admitted, and the error of the
// first that was not (the rest of a client's batch follows it in nonce
// order, so they are refused too and are sent again).
func (p *poster) issueBatch(ctx context.Context, bodies [][]byte) (int, error) {
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
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return 0, err
	}
	var res []struct {
		JSONRPC string          `json:"jsonrpc"`
		Error   *service.Error  `json:"error"`
		Result  json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		var one struct {
			Error *service.Error `json:"error"`
		}
		if json.Unmarshal(data, &one) == nil && one.Error != nil {
			return 0, fmt.Errorf("issueTx batch: HTTP %d: %w", resp.StatusCode, one.Error)
		}
		return 0, fmt.Errorf("issueTx batch: HTTP %d, not a JSON-RPC 2.0 batch response: %.200q", resp.StatusCode, data)
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
		if len(r.Result) == 0 {
			return i, fmt.Errorf("issueTx batch: response %d without a result", i)
		}
	}
	return len(res), nil
}
