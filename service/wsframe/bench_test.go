package wsframe

import (
	"bufio"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// cycle serves its data over and over, like a client pipelining the same
// request.
type cycle struct {
	data []byte
	off  int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.data[c.off:])
	c.off = (c.off + n) % len(c.data)
	return n, nil
}

// request5K is an issueTx request of about 5 KB, the size docs/stream.md
// section 10 measures (a transaction in base64).
func request5K() []byte {
	tx := make([]byte, 3650)
	for i := range tx {
		tx[i] = byte(i * 7)
	}
	s := `{"jsonrpc":"2.0","id":1,"method":"session.issueTx","params":{"tx":"` + base64.StdEncoding.EncodeToString(tx) + `"}}`
	return []byte(s + strings.Repeat(" ", 5000-len(s)))
}

// BenchmarkReadText5K reads a 5,000-byte masked text message: the frame
// parse, unmasking, incremental UTF-8 check and copy the transport adds
// per message. The sub-benchmarks beside it are the raw primitives on the
// same input: a 4-byte length and a copy through the same bufio.Reader
// (the framing prototype of section 10), and utf8.Valid alone.
func BenchmarkReadText5K(b *testing.B) {
	msg := request5K()
	b.Run("wsframe", func(b *testing.B) {
		r := NewReader(&cycle{data: clientFrame(true, OpText, msg)}, nil)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			m, err := r.Next()
			if err != nil || len(m.Payload) != len(msg) {
				b.Fatal(err)
			}
		}
	})
	b.Run("wsframe-fragmented-4", func(b *testing.B) {
		q := len(msg) / 4
		in := cat(clientFrame(false, OpText, msg[:q]), clientFrame(false, OpContinuation, msg[q:2*q]),
			clientFrame(false, OpContinuation, msg[2*q:3*q]), clientFrame(true, OpContinuation, msg[3*q:]))
		r := NewReader(&cycle{data: in}, nil)
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if m, err := r.Next(); err != nil || len(m.Payload) != len(msg) {
				b.Fatal(err)
			}
		}
	})
	b.Run("length-prefixed-copy", func(b *testing.B) {
		in := binary.BigEndian.AppendUint32(nil, uint32(len(msg)))
		br := bufio.NewReaderSize(&cycle{data: append(in, msg...)}, 4096)
		buf := make([]byte, 0, 16<<10)
		var hdr [4]byte
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				b.Fatal(err)
			}
			buf = buf[:binary.BigEndian.Uint32(hdr[:])]
			if _, err := io.ReadFull(br, buf); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("utf8.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(msg)))
		for b.Loop() {
			if !utf8.Valid(msg) {
				b.Fatal("invalid")
			}
		}
	})
}
