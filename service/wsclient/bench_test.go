package wsclient

import (
	"context"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/luxfi/session/service/wsframe"
)

// The benchmarks' messages: a request of about 5 KB (an issueTx with a
// transaction in base64, as docs/stream.md section 10 measures) and a
// response of about 5 KB.
var (
	benchParam  = strings.Repeat("QUJD", 1220)
	benchResult = `"` + strings.Repeat("REVG", 1230) + `"`
)

func benchRequest(id string) []byte {
	return []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"session.issueTx","params":{"tx":"` + benchParam + `"}}`)
}

// fastEcho is a node that costs little: it answers each request with the
// 5 KB result and the request's id, coalescing its writes as the node does
// (it writes when the next message is not already buffered), allocating
// nothing per message.
func fastEcho(sc *serverConn) {
	var out []byte
	for {
		m, err := sc.rd.Next()
		if err != nil || m.Op == wsframe.OpClose {
			return
		}
		_, id, _ := scanTop(m.Payload)
		n := len(`{"jsonrpc":"2.0","result":`) + len(benchResult) + len(`,"id":`) + len(id) + 1
		out = wsframe.AppendTextHeader(out, n)
		out = append(out, `{"jsonrpc":"2.0","result":`...)
		out = append(out, benchResult...)
		out = append(out, `,"id":`...)
		out = append(out, id...)
		out = append(out, '}')
		if !sc.rd.Ready() || len(out) >= 16<<10 {
			if _, err := sc.nc.Write(out); err != nil {
				return
			}
			out = out[:0]
		}
	}
}

// BenchmarkRoundTrip: a 5 KB request and its 5 KB response through Conn
// over loopback TCP against fastEcho (in the same process, so its costs
// are in the figures too), one call at a time and 16 pipelined. "raw" is
// the same exchange with the frames prepared in advance and written and
// read straight on the socket: the floor the client's own cost adds to.
func BenchmarkRoundTrip(b *testing.B) {
	b.Run("raw", func(b *testing.B) {
		_, u := startNode(b, fastEcho)
		nc, br := rawDial(b, u)
		defer nc.Close()
		frame := wsframe.AppendMaskedText(nil, benchRequest("1"), [4]byte{1, 2, 3, 4})
		resp := make([]byte, len(wsframe.AppendText(nil, []byte(`{"jsonrpc":"2.0","result":`+benchResult+`,"id":1}`))))
		b.SetBytes(int64(len(frame) + len(resp)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := nc.Write(frame); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(br, resp); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serial", func(b *testing.B) {
		_, url := startNode(b, fastEcho)
		c := dial(b, url, Options{})
		req := benchRequest("1")
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Call(context.Background(), req, "1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("pipelined16", func(b *testing.B) {
		_, url := startNode(b, fastEcho)
		c := dial(b, url, Options{})
		var left atomic.Int64
		left.Store(int64(b.N))
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		for w := range 16 {
			id := string(rune('a' + w))
			id = `"` + id + `"`
			req := benchRequest(id)
			wg.Go(func() {
				for left.Add(-1) >= 0 {
					if _, err := c.Call(context.Background(), req, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}

// rawDial performs the handshake (the package's own) on a plain socket
// and returns it with the reader holding what followed the 101.
func rawDial(b *testing.B, rawURL string) (net.Conn, io.Reader) {
	u, err := url.Parse(rawURL)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		b.Fatal(err)
	}
	br, err := handshake(nc, u, nil)
	if err != nil {
		b.Fatal(err)
	}
	return nc, br
}
