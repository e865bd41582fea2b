package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
)

var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// clientFrame is a test-only client writer: a masked frame with the
// length in minimal form.
func clientFrame(fin bool, op Opcode, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	switch {
	case n <= 125:
		return rawFrame(b0, true, byte(n), nil, payload)
	case n <= 0xFFFF:
		return rawFrame(b0, true, 126, binary.BigEndian.AppendUint16(nil, uint16(n)), payload)
	default:
		return rawFrame(b0, true, 127, binary.BigEndian.AppendUint64(nil, uint64(n)), payload)
	}
}

// rawFrame writes any header: b0 as given, the mask bit, the 7-bit length
// field and its extension as given, then the key (if masked) and the
// payload, masked with testKey.
func rawFrame(b0 byte, masked bool, len7 byte, ext []byte, payload []byte) []byte {
	b1 := len7
	if masked {
		b1 |= 0x80
	}
	out := append([]byte{b0, b1}, ext...)
	if !masked {
		return append(out, payload...)
	}
	out = append(out, testKey[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= testKey[i&3]
	}
	return out
}

// text and cont are frames of a fragmented text message; closeFrame is a
// close frame with a code and reason.
func text(fin bool, s string) []byte { return clientFrame(fin, OpText, []byte(s)) }
func cont(fin bool, s string) []byte { return clientFrame(fin, OpContinuation, []byte(s)) }
func closeFrame(code uint16, reason string) []byte {
	return clientFrame(true, OpClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tricklingReader hands out its data one byte per Read and counts what
// was taken: with it, bufio reads exactly what the Reader consumes.
type tricklingReader struct {
	data []byte
	read int
}

func (t *tricklingReader) Read(p []byte) (int, error) {
	if t.read == len(t.data) {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	p[0] = t.data[t.read]
	t.read++
	return 1, nil
}

// chunkReader hands out its data in reads of the given sizes, cycling.
type chunkReader struct {
	data  []byte
	sizes []int
	i     int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, max(1, c.sizes[c.i%len(c.sizes)]))
		c.i++
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// readAll calls Next until it fails, returning what it read and the error.
func readAll(r *Reader) ([]Message, error) {
	var out []Message
	for {
		m, err := r.Next()
		if err != nil {
			return out, err
		}
		m.Payload = append([]byte(nil), m.Payload...)
		out = append(out, m)
	}
}

// bufioFrom returns a bufio.Reader holding all of in already buffered.
func bufioFrom(in []byte) *bufio.Reader {
	br := bufio.NewReaderSize(bytes.NewReader(in), 4096)
	br.Peek(len(in))
	return br
}
