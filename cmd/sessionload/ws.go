package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/luxfi/session/service"
	"github.com/luxfi/session/service/wsframe"
)

// pipe is a sender's persistent connection that pipelines requests:
// the framing prototype's (frameConn) or a WebSocket (wsPipe).
type pipe interface {
	issue(bodies [][]byte) (int, error)
	close()
}

// wsPipe is a sender's WebSocket to the node (docs/stream.md): the
// messages of a batch go out as pipelined text frames in one write, and
// their answers are read in order.
type wsPipe struct {
	c   net.Conn
	rd  *wsframe.ClientReader
	out []byte
	key [4]byte
}

// dialWS opens a WebSocket to the node's JSON-RPC URL (http://…/rpc).
func dialWS(ctx context.Context, rawURL string) (*wsPipe, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "ws") || u.Host == "" {
		return nil, fmt.Errorf("websocket: need an http:// or ws:// URL, got %q", rawURL)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: " + service.Subprotocol + "\r\n\r\n"
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		c.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(c, 16<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	want, _ := wsframe.AcceptKey(key)
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != want {
		c.Close()
		return nil, fmt.Errorf("websocket handshake: HTTP %d", resp.StatusCode)
	}
	_ = c.SetDeadline(time.Time{})
	p := &wsPipe{c: c, rd: wsframe.NewClientReader(br, maxFrame)}
	_, _ = rand.Read(p.key[:])
	return p, nil
}

// issue sends the pre-encoded issueTx requests as frames in one write
// and reads their answers: how many, from the first, were admitted, and
// the first refusal (*service.Error) or transport error.
func (p *wsPipe) issue(bodies [][]byte) (int, error) {
	p.out = p.out[:0]
	for _, b := range bodies {
		p.out = wsframe.AppendMaskedText(p.out, b, p.key)
	}
	_ = p.c.SetDeadline(time.Now().Add(rawTimeout))
	if _, err := p.c.Write(p.out); err != nil {
		return 0, err
	}
	var t tally
	for range bodies {
		data, err := p.read()
		if err != nil {
			return t.admitted, err
		}
		t.add(data)
	}
	return t.admitted, t.first
}

// tally counts the answers to pipelined issueTx requests: how many, from
// the first, were admitted, and the first refusal (*service.Error).
type tally struct {
	admitted int
	first    error
}

func (t *tally) add(answer []byte) {
	if t.first != nil {
		return
	}
	if bytes.Contains(answer, []byte(`"result":`)) {
		t.admitted++
		return
	}
	var r struct {
		Error *service.Error `json:"error"`
	}
	if err := json.Unmarshal(answer, &r); err != nil || r.Error == nil {
		t.first = errors.New("not an answer")
	} else {
		t.first = r.Error
	}
}

// read reads the node's next text message (wsframe.ClientReader: every
// rule of the node's frames checked, pings and pongs skipped).
func (p *wsPipe) read() ([]byte, error) {
	for {
		m, err := p.rd.Next()
		if err != nil {
			return nil, err
		}
		switch m.Op {
		case wsframe.OpText:
			return m.Payload, nil
		case wsframe.OpClose:
			return nil, fmt.Errorf("websocket: closed by the node (%d)", m.Code)
		}
	}
}

func (p *wsPipe) close() { _ = p.c.Close() }
