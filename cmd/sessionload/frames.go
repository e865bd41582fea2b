package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strconv"

	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/mempool"
	"github.com/luxfi/session/vm/tx"
)

// A framing prototype for benchmarks (sessionload node --frames ADDR,
// BenchmarkIngest/paired/frames*): what submitting a message costs the
// node over a persistent connection without HTTP, to weigh the streaming
// transport of docs/stream.md before it is built. It is not that
// transport and not an API: no handshake, no Host or Origin checks, no
// budgets, slots, deadlines or limits beyond the frame size, and only
// session.issueTx. Each frame is a 4-byte big-endian length and a
// JSON-RPC issueTx request object as sessionload sends it
// ({"jsonrpc":"2.0","id":N,"method":"session.issueTx","params":{"tx":"…"}});
// the answer is a frame holding {"jsonrpc":"2.0","id":N,"result":{"txID":"…"}}
// or an error object. Requests on a connection run one at a time, in
// order; answers are written when no further request is complete in the
// read buffer (so pipelined requests share a write), as section 4 of
// docs/stream.md specifies.

// maxFrame bounds a prototype frame (the API's body limit).
const maxFrame = 1 << 20

// serveFrames accepts connections on ln and serves each until it fails.
func serveFrames(ln net.Listener, api vm.API) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = serveFrameConn(c, api)
		}()
	}
}

func serveFrameConn(c io.ReadWriter, api vm.API) error {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 16<<10)
	var body, txb, out []byte
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return errors.New("frame too large")
		}
		body = grow(body, int(n))
		if _, err := io.ReadFull(br, body); err != nil {
			return err
		}
		out = answerFrame(out[:0], body, &txb, api)
		binary.BigEndian.PutUint32(hdr[:], uint32(len(out)))
		_, _ = bw.Write(hdr[:])
		_, _ = bw.Write(out)
		if !frameReady(br) {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
	}
}

// frameReady reports whether a whole next frame is already buffered.
func frameReady(br *bufio.Reader) bool {
	k := br.Buffered()
	if k < 4 {
		return false
	}
	hdr, _ := br.Peek(4)
	return k >= 4+int(binary.BigEndian.Uint32(hdr))
}

func grow(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n)
	}
	return b[:n]
}

// answerFrame appends the answer to the issueTx request in body.
func answerFrame(out, body []byte, txb *[]byte, api vm.API) []byte {
	id := []byte("null")
	if i := bytes.Index(body, []byte(`"id":`)); i >= 0 {
		j := i + 5
		k := j
		for k < len(body) && body[k] >= '0' && body[k] <= '9' {
			k++
		}
		if k > j {
			id = body[j:k]
		}
	}
	fail := func(code int, msg string) []byte {
		out = append(out, `{"jsonrpc":"2.0","id":`...)
		out = append(out, id...)
		out = append(out, `,"error":{"code":`...)
		out = strconv.AppendInt(out, int64(code), 10)
		out = append(out, `,"message":`...)
		out = strconv.AppendQuote(out, msg)
		return append(out, "}}"...)
	}
	i := bytes.Index(body, []byte(`"tx":"`))
	if i < 0 || !bytes.Contains(body, []byte(`"method":"session.issueTx"`)) {
		return fail(-32600, "the prototype takes session.issueTx only")
	}
	enc := body[i+6:]
	end := bytes.IndexByte(enc, '"')
	if end < 0 {
		return fail(-32700, "unterminated tx")
	}
	enc = enc[:end]
	*txb = grow(*txb, base64.StdEncoding.DecodedLen(len(enc)))
	n, err := base64.StdEncoding.Decode(*txb, enc)
	if err != nil {
		return fail(-32602, "tx: "+err.Error())
	}
	t, err := tx.Parse((*txb)[:n])
	if err != nil {
		return fail(-32013, err.Error())
	}
	if err := api.Issue(t); err != nil {
		if errors.Is(err, mempool.ErrFull) {
			return fail(int(service.CodeMempoolFull), err.Error())
		}
		return fail(-32013, err.Error())
	}
	out = append(out, `{"jsonrpc":"2.0","id":`...)
	out = append(out, id...)
	out = append(out, `,"result":{"txID":"`...)
	out = append(out, t.ID().String()...)
	return append(out, `"}}`...)
}

// frameConn is a sender's connection to the framing prototype
// (sessionload --frames).
type frameConn struct {
	c   net.Conn
	br  *bufio.Reader
	out []byte
}

func dialFrames(addr string) (*frameConn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return &frameConn{c: c, br: bufio.NewReaderSize(c, 16<<10)}, nil
}

// issue sends the pre-encoded issueTx requests as frames in one write
// (pipelined) and reads their answers: how many, from the first, were
// admitted, and the first refusal (*service.Error) or transport error.
func (f *frameConn) issue(bodies [][]byte) (int, error) {
	f.out = f.out[:0]
	for _, b := range bodies {
		f.out = binary.BigEndian.AppendUint32(f.out, uint32(len(b)))
		f.out = append(f.out, b...)
	}
	if _, err := f.c.Write(f.out); err != nil {
		return 0, err
	}
	var t tally
	for range bodies {
		var hdr [4]byte
		if _, err := io.ReadFull(f.br, hdr[:]); err != nil {
			return t.admitted, err
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > maxFrame {
			return t.admitted, errors.New("frame too large")
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(f.br, data); err != nil {
			return t.admitted, err
		}
		t.add(data)
	}
	return t.admitted, t.first
}

func (f *frameConn) close() { _ = f.c.Close() }
