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
