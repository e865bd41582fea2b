package wsframe

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// serverFrame is an unmasked frame with the length in minimal form, as the
// node sends it (fragments included, which the node itself never sends).
func serverFrame(fin bool, op Opcode, payload []byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	switch {
	case n <= 125:
		return rawFrame(b0, false, byte(n), nil, payload)
	case n <= 0xFFFF:
		return rawFrame(b0, false, 126, u16(uint16(n)), payload)
	default:
		return rawFrame(b0, false, 127, u64(uint64(n)), payload)
	}
}

func stext(fin bool, s string) []byte { return serverFrame(fin, OpText, []byte(s)) }
func scont(fin bool, s string) []byte { return serverFrame(fin, OpContinuation, []byte(s)) }
func sclose(code uint16, reason string) []byte {
	return serverFrame(true, OpClose, append(u16(code), reason...))
}

// readAllClient calls Next until it fails, returning what it read.
func readAllClient(r *ClientReader) ([]Message, error) {
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

// TestClientRefusals: the mirror of TestFailingTheConnection for the
// node's frames. Each input is a valid prefix followed by one offending
// frame; a refusal the header decides must leave the payload unread.
func TestClientRefusals(t *testing.T) {
	cases := []struct {
		name   string
		prefix []byte
		header []byte // refused from the header: payloadAfter stays unread
		frame  []byte // refused after its payload
		max    int
		want   error
	}{
		{name: "masked text", header: []byte{0x81, 0x85, 1, 2, 3, 4}, want: ErrMasked},
		{name: "masked ping", header: []byte{0x89, 0x80}, want: ErrMasked},
		{name: "masked close", header: []byte{0x88, 0x82}, want: ErrMasked},
		{name: "masked continuation", prefix: stext(false, "a"), header: []byte{0x80, 0x85}, want: ErrMasked},
		{name: "RSV1", header: []byte{0xC1, 5}, want: ErrReservedBits},
		{name: "RSV2", header: []byte{0xA1, 5}, want: ErrReservedBits},
		{name: "RSV3", header: []byte{0x91, 5}, want: ErrReservedBits},
		{name: "RSV1 on pong", header: []byte{0xCA, 0}, want: ErrReservedBits},
		{name: "opcode 3", header: []byte{0x83, 5}, want: ErrBadOpcode},
		{name: "opcode 7", header: []byte{0x87, 5}, want: ErrBadOpcode},
		{name: "opcode 11", header: []byte{0x8B, 5}, want: ErrBadOpcode},
		{name: "opcode 15", header: []byte{0x8F, 5}, want: ErrBadOpcode},
		{name: "opcode 3 mid-message", prefix: stext(false, "a"), header: []byte{0x03, 5}, want: ErrBadOpcode},
		{name: "64-bit length top bit only", header: cat([]byte{0x81, 127}, u64(1<<63)), want: ErrLengthTopBit},
		{name: "64-bit length all ones", header: cat([]byte{0x81, 127}, u64(^uint64(0))), want: ErrLengthTopBit},
		{name: "16-bit length 0", header: cat([]byte{0x81, 126}, u16(0)), want: ErrNonMinimalLength},
		{name: "16-bit length 125", header: cat([]byte{0x81, 126}, u16(125)), want: ErrNonMinimalLength},
		{name: "64-bit length 0", header: cat([]byte{0x81, 127}, u64(0)), want: ErrNonMinimalLength},
		{name: "64-bit length 65535", header: cat([]byte{0x81, 127}, u64(65535)), want: ErrNonMinimalLength},
		{name: "16-bit length on continuation", prefix: stext(false, "a"), header: cat([]byte{0x80, 126}, u16(5)), want: ErrNonMinimalLength},
		{name: "ping FIN=0", header: []byte{0x09, 0}, want: ErrControlFragmented},
		{name: "close FIN=0", header: []byte{0x08, 2}, want: ErrControlFragmented},
		{name: "pong 126", header: cat([]byte{0x8A, 126}, u16(126)), want: ErrControlTooLong},
		{name: "ping 64-bit", header: cat([]byte{0x89, 127}, u64(1<<63|5)), want: ErrControlTooLong},
		{name: "continuation first", header: []byte{0x80, 1}, want: ErrUnexpectedContinuation},
		{name: "continuation after a whole message", prefix: stext(true, "{}"), header: []byte{0x80, 1}, want: ErrUnexpectedContinuation},
		{name: "text in a message", prefix: stext(false, "a"), header: []byte{0x81, 1}, want: ErrMessageInProgress},
		{name: "binary in a message", prefix: stext(false, "a"), header: []byte{0x82, 1}, want: ErrMessageInProgress},
		{name: "binary", header: []byte{0x82, 5}, want: ErrBinary},
		{name: "binary FIN=0", header: []byte{0x02, 5}, want: ErrBinary},
		{name: "over the bound", header: cat([]byte{0x81, 126}, u16(1001)), max: 1000, want: ErrClientTooBig},
		{name: "over the default bound", header: cat([]byte{0x81, 127}, u64(DefaultClientMaxMessage+1)), want: ErrClientTooBig},
		{name: "2^63-1", header: cat([]byte{0x81, 127}, u64(1<<63-1)), want: ErrClientTooBig},
		{name: "over the bound across fragments", prefix: stext(false, strings.Repeat("a", 600)), header: cat([]byte{0x80, 126}, u16(401)), max: 1000, want: ErrClientTooBig},
		{name: "close of one byte", frame: serverFrame(true, OpClose, []byte{3}), want: ErrCloseTooShort},
		{name: "close 1005", frame: sclose(1005, ""), want: ErrBadCloseCode},
		{name: "close 1006", frame: sclose(1006, ""), want: ErrBadCloseCode},
		{name: "close 1015", frame: sclose(1015, ""), want: ErrBadCloseCode},
		{name: "close 999", frame: sclose(999, ""), want: ErrBadCloseCode},
		{name: "close 5000", frame: sclose(5000, ""), want: ErrBadCloseCode},
		{name: "close reason not UTF-8", frame: sclose(1000, "\xff"), want: ErrCloseReasonUTF8},
		{name: "invalid UTF-8", frame: stext(true, "ab\xc0\xafcd"), want: ErrInvalidUTF8},
		{name: "surrogate", frame: stext(true, "\xed\xa0\x80"), want: ErrInvalidUTF8},
		{name: "ends inside a sequence", frame: stext(true, "ab\xe2\x82"), want: ErrTruncatedUTF8},
		{name: "ends inside a sequence across frames", prefix: stext(false, "\xe2"), frame: scont(true, "\x82"), want: ErrTruncatedUTF8},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, trickle := range []bool{false, true} {
				in := cat(c.prefix, c.header, c.frame, payloadAfter)
				var src io.Reader = bytes.NewReader(in)
				tr := &tricklingReader{data: in}
				if trickle {
					src = tr
				}
				r := NewClientReader(src, c.max)
				_, err := readAllClient(r)
				if err != c.want {
					t.Fatalf("trickled=%v: got %v, want %v", trickle, err, c.want)
				}
				var ce CloseError
				if !errors.As(err, &ce) || ce.Code < 1002 || ce.Code > 1009 {
					t.Fatalf("not a CloseError with a failure code: %v", err)
				}
				if trickle && c.header != nil {
					if consumed := tr.read - r.Buffered(); consumed > len(c.prefix)+len(c.header) {
						t.Fatalf("consumed %d bytes, the refused header ends at %d", consumed, len(c.prefix)+len(c.header))
					}
				}
				if _, again := r.Next(); again != err {
					t.Fatalf("second Next: %v", again)
				}
			}
		})
	}
}

// TestClientRoundTrip: what the node's writers produce, the ClientReader
// reads back exactly, whole or one byte at a time.
func TestClientRoundTrip(t *testing.T) {
	sizes := []int{0, 1, 125, 126, 4095, 65535, 65536, 300000}
	var in []byte
	var want []Message
	for i, n := range sizes {
		p := bytes.Repeat([]byte{'a' + byte(i)}, n)
		if n > 3 {
			copy(p, "é€")
		}
		in = AppendText(in, p)
		want = append(want, Message{Op: OpText, Payload: p})
		if i == 2 {
			in, _ = AppendPing(in, []byte("ping"))
			in, _ = AppendPong(in, []byte("pong"))
			want = append(want, Message{Op: OpPing, Payload: []byte("ping")}, Message{Op: OpPong, Payload: []byte("pong")})
		}
	}
	in = AppendTextHeader(in, 3)
	in = append(in, "{}\n"...)
	want = append(want, Message{Op: OpText, Payload: []byte("{}\n")})
	in, _ = AppendClose(in, CloseTryAgainLater, "evicted")
	want = append(want, Message{Op: OpClose, Code: CloseTryAgainLater, Payload: []byte("evicted")})
	for _, name := range []string{"whole", "trickled", "chunked"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(in)
			switch name {
			case "trickled":
				src = &tricklingReader{data: in}
			case "chunked":
				src = &chunkReader{data: in, sizes: []int{7, 1, 3000, 2}}
			}
			got, err := readAllClient(NewClientReader(src, 0))
			if err != io.EOF {
				t.Fatalf("ended with %v", err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d messages, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Op != want[i].Op || got[i].Code != want[i].Code || !bytes.Equal(got[i].Payload, want[i].Payload) {
					t.Fatalf("message %d: op %d code %d len %d, want op %d code %d len %d", i, got[i].Op, got[i].Code, len(got[i].Payload), want[i].Op, want[i].Code, len(want[i].Payload))
				}
			}
		})
	}
}

// TestClientFragmented: a text message in fragments (allowed by the RFC),
// with control frames between them and code points split across frames,
// is returned whole after the control frames; any number of frames is
// accepted, and empty ones too.
func TestClientFragmented(t *testing.T) {
	in := cat(stext(true, "{}"),
		stext(false, "{\"a\":\"\xe2"), serverFrame(true, OpPing, []byte("p1")), scont(false, "\x82"),
		scont(false, ""), serverFrame(true, OpPong, nil), scont(false, "\xac\xf0\x9f"), scont(true, "\x98\x80\"}"),
		stext(false, "["))
	for range 200 { // more than the 64 frames the node accepts from a client
		in = append(in, scont(false, " ")...)
	}
	in = append(in, scont(true, "]")...)
	for _, trickle := range []bool{false, true} {
		var src io.Reader = bytes.NewReader(in)
		if trickle {
			src = &tricklingReader{data: in}
		}
		got, err := readAllClient(NewClientReader(src, 0))
		if err != io.EOF {
			t.Fatalf("ended with %v", err)
		}
		want := []Message{
			{Op: OpText, Payload: []byte("{}")},
			{Op: OpPing, Payload: []byte("p1")},
			{Op: OpPong, Payload: []byte{}},
			{Op: OpText, Payload: []byte(`{"a":"€😀"}`)},
			{Op: OpText, Payload: []byte("[" + strings.Repeat(" ", 200) + "]")},
		}
		if len(got) != len(want) {
			t.Fatalf("trickled=%v: %d messages, want %d", trickle, len(got), len(want))
		}
		for i := range want {
			if got[i].Op != want[i].Op || !bytes.Equal(got[i].Payload, want[i].Payload) {
				t.Fatalf("message %d: %d %q, want %d %q", i, got[i].Op, got[i].Payload, want[i].Op, want[i].Payload)
			}
		}
	}
}

// TestClientEOF: the end of the stream between messages is io.EOF, inside
// a frame or a fragmented message io.ErrUnexpectedEOF.
func TestClientEOF(t *testing.T) {
	whole := stext(true, "hello")
	cases := map[string]struct {
		in   []byte
		want error
	}{
		"empty":             {nil, io.EOF},
		"after a message":   {whole, io.EOF},
		"half a header":     {whole[:1], io.ErrUnexpectedEOF},
		"inside a payload":  {whole[:4], io.ErrUnexpectedEOF},
		"between fragments": {stext(false, "a"), io.ErrUnexpectedEOF},
		"inside a length":   {[]byte{0x81, 126, 1}, io.ErrUnexpectedEOF},
		"inside a ping":     {[]byte{0x89, 3, 'a'}, io.ErrUnexpectedEOF},
	}
	for name, c := range cases {
		if _, err := readAllClient(NewClientReader(bytes.NewReader(c.in), 0)); err != c.want {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// TestClientHugeLengthNoAllocation: refusing any declared length allocates
// nothing.
func TestClientHugeLengthNoAllocation(t *testing.T) {
	for _, n := range []uint64{1<<63 - 1, 1 << 63, DefaultClientMaxMessage + 1} {
		in := cat([]byte{0x81, 127}, u64(n), payloadAfter)
		src := bytes.NewReader(in)
		r := NewClientReader(src, 0)
		allocs := testing.AllocsPerRun(100, func() {
			src.Reset(in)
			r.br.Reset(src)
			r.err, r.inMessage = nil, false
			if _, err := r.Next(); err == nil {
				t.Fatal("accepted")
			}
		})
		if allocs != 0 {
			t.Fatalf("length %d: %v allocations", n, allocs)
		}
	}
}

// TestClientDeclaredLengthNotAllocated: a frame that declares 100 MiB and
// sends 10 bytes makes the ClientReader allocate about 10 bytes.
func TestClientDeclaredLengthNotAllocated(t *testing.T) {
	in := cat([]byte{0x81, 127}, u64(100<<20), []byte("0123456789"))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewClientReader(bytes.NewReader(in), 0).Next()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("allocated %d bytes for a frame that sent 10", got)
	}
}

// TestClientBufferBound: while a large message arrives in small reads,
// the buffer's capacity stays within twice the bytes received.
func TestClientBufferBound(t *testing.T) {
	msg := bytes.Repeat([]byte("x"), 1<<20)
	in := AppendText(nil, msg)
	r := NewClientReader(&chunkReader{data: in, sizes: []int{1000, 17, 4096}}, 0)
	var n int
	h, err := r.readHeader()
	if err != nil {
		t.Fatal(err)
	}
	r.inMessage = true
	for remaining := int(h.length); remaining > 0; {
		if _, err := r.br.Peek(1); err != nil {
			t.Fatal(err)
		}
		k := min(r.br.Buffered(), remaining)
		src, _ := r.br.Peek(k)
		copy(r.grow(k), src)
		r.br.Discard(k)
		remaining -= k
		n += k
		if cap(r.msg) > max(2*n, 512) {
			t.Fatalf("capacity %d after %d bytes", cap(r.msg), n)
		}
	}
	if !bytes.Equal(r.msg, msg) {
		t.Fatal("message differs")
	}
}

// TestClientDetach: a detached payload is not overwritten by the next
// message; without Detach a small buffer is reused.
func TestClientDetach(t *testing.T) {
	in := cat(stext(true, "first"), stext(true, "other"), stext(true, "third"))
	r := NewClientReader(bytes.NewReader(in), 0)
	m1, _ := r.Next()
	r.Detach()
	m2, _ := r.Next()
	if string(m1.Payload) != "first" {
		t.Fatalf("detached payload overwritten: %q", m1.Payload)
	}
	m3, _ := r.Next()
	if string(m2.Payload) != "third" || string(m3.Payload) != "third" {
		t.Fatalf("buffer not reused: %q %q", m2.Payload, m3.Payload)
	}
}

// TestMaskedWriters: the client's frames read back through the node's
// Reader (which refuses unmasked frames) as what was written, each
// payload masked with the given key, the length in minimal form.
func TestMaskedWriters(t *testing.T) {
	key := [4]byte{0xA1, 0x02, 0xF3, 0x44}
	for _, n := range []int{0, 1, 7, 125, 126, 65535, 65536, 1 << 20} {
		p := bytes.Repeat([]byte("ab€"), n/5+1)[:0]
		p = append(p, bytes.Repeat([]byte("z"), n)...)
		out := AppendMaskedText([]byte("prefix"), p, key)
		if string(out[:6]) != "prefix" {
			t.Fatal("dst not appended to")
		}
		out = out[6:]
		hl := 2
		switch {
		case n > 0xFFFF:
			hl = 10
		case n > 125:
			hl = 4
		}
		if out[0] != 0x81 || out[1]&0x80 == 0 || !bytes.Equal(out[hl:hl+4], key[:]) || len(out) != hl+4+n {
			t.Fatalf("n=%d: header %x", n, out[:min(len(out), hl+4)])
		}
		for i := range n {
			if out[hl+4+i] != p[i]^key[i%4] {
				t.Fatalf("n=%d: byte %d not masked with key byte %d", n, i, i%4)
			}
		}
		msgs, err := readAll(NewReader(bytes.NewReader(out), nil))
		if n > MaxMessageSize {
			continue
		}
		if err != io.EOF || len(msgs) != 1 || !bytes.Equal(msgs[0].Payload, p) {
			t.Fatalf("n=%d: read back %v, %d messages", n, err, len(msgs))
		}
	}
	var out []byte
	out, err1 := AppendMaskedPing(out, []byte("are you there"), key)
	out, err2 := AppendMaskedPong(out, []byte("yes"), key)
	out, err3 := AppendMaskedClose(out, CloseNormal, strings.Repeat("é", 100), key)
	if err1 != nil || err2 != nil || err3 != nil {
		t.Fatal(err1, err2, err3)
	}
	msgs, err := readAll(NewReader(bytes.NewReader(out), nil))
	if err != io.EOF || len(msgs) != 3 {
		t.Fatalf("%v, %d messages", err, len(msgs))
	}
	if msgs[0].Op != OpPing || string(msgs[0].Payload) != "are you there" || msgs[1].Op != OpPong || string(msgs[1].Payload) != "yes" {
		t.Fatalf("ping/pong: %+v", msgs[:2])
	}
	if msgs[2].Op != OpClose || msgs[2].Code != CloseNormal || string(msgs[2].Payload) != strings.Repeat("é", 61) {
		t.Fatalf("close: %d %q", msgs[2].Code, msgs[2].Payload)
	}
	if _, err := AppendMaskedPing(nil, make([]byte, 126), key); err != ErrControlPayload {
		t.Fatal("ping of 126 bytes accepted")
	}
	if _, err := AppendMaskedPong(nil, make([]byte, 126), key); err != ErrControlPayload {
		t.Fatal("pong of 126 bytes accepted")
	}
	if _, err := AppendMaskedClose(nil, CloseNoStatus, "", key); err != ErrCloseCode {
		t.Fatal("close 1005 accepted")
	}
}

// refParseClient is a plain reading of the client's rules over a whole
// input: frame by frame, the rules in the order ClientReader checks them.
func refParseClient(in []byte, maxMsg int) ([]Message, error) {
	var out []Message
	var msg []byte
	inMsg := false
	for {
		if len(in) == 0 {
			if inMsg {
				return out, io.ErrUnexpectedEOF
			}
			return out, io.EOF
		}
		if len(in) < 2 {
			return out, io.ErrUnexpectedEOF
		}
		fin, rsv, op, mask, len7 := in[0]>>7 == 1, in[0]>>4&7, Opcode(in[0]&15), in[1]>>7 == 1, uint64(in[1]&127)
		control := op == OpClose || op == OpPing || op == OpPong
		switch {
		case rsv != 0:
			return out, ErrReservedBits
		case !control && op > OpBinary, op > OpPong:
			return out, ErrBadOpcode
		case mask:
			return out, ErrMasked
		case control && !fin:
			return out, ErrControlFragmented
		case control && len7 > 125:
			return out, ErrControlTooLong
		case !control && op == OpContinuation && !inMsg:
			return out, ErrUnexpectedContinuation
		case !control && op != OpContinuation && inMsg:
			return out, ErrMessageInProgress
		case !control && op == OpBinary:
			return out, ErrBinary
		}
		hl, length := 2, len7
		switch len7 {
		case 126:
			if len(in) < 4 {
				return out, io.ErrUnexpectedEOF
			}
			hl, length = 4, uint64(binary.BigEndian.Uint16(in[2:]))
			if length < 126 {
				return out, ErrNonMinimalLength
			}
		case 127:
			if len(in) < 10 {
				return out, io.ErrUnexpectedEOF
			}
			hl, length = 10, binary.BigEndian.Uint64(in[2:])
			if length >= 1<<63 {
				return out, ErrLengthTopBit
			}
			if length < 1<<16 {
				return out, ErrNonMinimalLength
			}
		}
		if !control && length+uint64(len(msg)) > uint64(maxMsg) {
			return out, ErrClientTooBig
		}
		in = in[hl:]
		avail := min(uint64(len(in)), length)
		p := append([]byte(nil), in[:avail]...)
		in = in[avail:]
		if control {
			if avail < length {
				return out, io.ErrUnexpectedEOF
			}
			if op != OpClose {
				out = append(out, Message{Op: op, Payload: p})
				continue
			}
			switch {
			case len(p) == 0:
				return append(out, Message{Op: OpClose, Payload: p, Code: CloseNoStatus}), io.EOF
			case len(p) == 1:
				return out, ErrCloseTooShort
			}
			code := int(p[0])<<8 | int(p[1])
			if !(code >= 1000 && code <= 1003 || code >= 1007 && code <= 1014 || code >= 3000 && code <= 4999) {
				return out, ErrBadCloseCode
			}
			if !utf8.Valid(p[2:]) {
				return out, ErrCloseReasonUTF8
			}
			return append(out, Message{Op: OpClose, Payload: p[2:], Code: uint16(code)}), io.EOF
		}
		inMsg = true
		msg = append(msg, p...)
		if !validPrefix(msg) {
			return out, ErrInvalidUTF8
		}
		if avail < length {
			return out, io.ErrUnexpectedEOF
		}
		if fin {
			if !utf8.Valid(msg) {
				return out, ErrTruncatedUTF8
			}
			out = append(out, Message{Op: OpText, Payload: msg})
			msg, inMsg = nil, false
		}
	}
}

// FuzzClientReader: on any input, read in chunks of any sizes and under
// any bound, the ClientReader never panics and agrees exactly with
// refParseClient.
func FuzzClientReader(f *testing.F) {
	seeds := [][]byte{
		cat(stext(false, "[\"\xe2\x82"), serverFrame(true, OpPing, []byte("hi")), scont(true, "\xac\"]"), sclose(1000, "ok")),
		cat(serverFrame(false, OpText, bytes.Repeat([]byte("a"), 300)), scont(true, "b")),
		cat([]byte{0x81, 127}, u64(1<<63-1)),
		cat([]byte{0x81, 126}, u16(5), []byte("hello")),
		{0x82, 0x00},
		{0x81, 0x85, 1, 2, 3, 4, 'h', 'e', 'l', 'l', 'o'},
		serverFrame(true, OpClose, []byte{3}),
		sclose(1005, ""),
		stext(true, "\xed\xa0\x80"),
	}
	for _, s := range seeds {
		f.Add(s, []byte{1, 5, 200}, uint16(0))
		f.Add(s, []byte{3}, uint16(300))
	}
	f.Fuzz(func(t *testing.T, in, chunks []byte, maxMsg uint16) {
		if len(in) > 1<<13 {
			return
		}
		sizes := make([]int, len(chunks))
		for i, c := range chunks {
			sizes[i] = int(c)
		}
		bound := int(maxMsg)
		if bound == 0 {
			bound = DefaultClientMaxMessage
		}
		got, err := readAllClient(NewClientReader(&chunkReader{data: in, sizes: sizes}, bound))
		for _, m := range got {
			if m.Op == OpText && (len(m.Payload) > bound || !utf8.Valid(m.Payload)) {
				t.Fatalf("text message of %d bytes, valid=%v", len(m.Payload), utf8.Valid(m.Payload))
			}
		}
		want, wantErr := refParseClient(in, bound)
		if err != wantErr {
			t.Fatalf("error %v, reference %v", err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages, reference %d", len(got), len(want))
		}
		for i := range want {
			if got[i].Op != want[i].Op || got[i].Code != want[i].Code || !bytes.Equal(got[i].Payload, want[i].Payload) {
				t.Fatalf("message %d: %+v, reference %+v", i, got[i], want[i])
			}
		}
	})
}

// BenchmarkAppendMaskedText5K: masking a 5,000-byte request into a reused
// buffer, beside a plain copy of it.
func BenchmarkAppendMaskedText5K(b *testing.B) {
	p := request5K()
	buf := make([]byte, 0, 8192)
	key := [4]byte{1, 2, 3, 4}
	b.Run("masked", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		b.ReportAllocs()
		for b.Loop() {
			buf = AppendMaskedText(buf[:0], p, key)
		}
	})
	b.Run("copy", func(b *testing.B) {
		b.SetBytes(int64(len(p)))
		b.ReportAllocs()
		for b.Loop() {
			buf = append(buf[:0], p...)
		}
	})
}

// BenchmarkClientReadText5K: reading a 5,000-byte server text message,
// the payload copied out and UTF-8 checked.
func BenchmarkClientReadText5K(b *testing.B) {
	frame := AppendText(nil, request5K())
	r := NewClientReader(bufio.NewReaderSize(&cycle{data: frame}, 64<<10), 0)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
