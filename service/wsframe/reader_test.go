package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// payloadAfter is what follows a refused header in the table: if the
// Reader read any of it, the test sees it.
var payloadAfter = bytes.Repeat([]byte("P"), 300)

func u16(n uint16) []byte { return binary.BigEndian.AppendUint16(nil, n) }
func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// TestFailingTheConnection walks every item of docs/stream.md section 4
// "Failing the connection": each input is a valid prefix followed by one
// offending frame. For a refusal the header decides, the Reader must stop
// with the spec's code having consumed the prefix and the header only.
func TestFailingTheConnection(t *testing.T) {
	tooMany := []byte{}
	tooMany = append(tooMany, text(false, "[")...)
	for range MaxFramesPerMessage - 1 {
		tooMany = append(tooMany, cont(false, " ")...)
	}
	big := bytes.Repeat([]byte(" "), 100)
	cases := []struct {
		name   string
		prefix []byte // valid frames before the offending one
		header []byte // the offending frame's header (refused before its payload)
		frame  []byte // or a whole offending frame (refused after its payload)
		want   error
	}{
		{name: "unmasked text", header: []byte{0x81, 5}, want: ErrUnmasked},
		{name: "unmasked ping", header: []byte{0x89, 0}, want: ErrUnmasked},
		{name: "unmasked continuation", prefix: text(false, "a"), header: []byte{0x80, 5}, want: ErrUnmasked},
		{name: "RSV1", header: []byte{0xC1, 0x85, 1, 2, 3, 4}, want: ErrReservedBits},
		{name: "RSV2", header: []byte{0xA1, 0x85, 1, 2, 3, 4}, want: ErrReservedBits},
		{name: "RSV3", header: []byte{0x91, 0x85, 1, 2, 3, 4}, want: ErrReservedBits},
		{name: "RSV1 on ping", header: []byte{0xC9, 0x80, 1, 2, 3, 4}, want: ErrReservedBits},
		{name: "opcode 3", header: []byte{0x83, 0x85, 1, 2, 3, 4}, want: ErrBadOpcode},
		{name: "opcode 7", header: []byte{0x87, 0x85, 1, 2, 3, 4}, want: ErrBadOpcode},
		{name: "opcode 11", header: []byte{0x8B, 0x85, 1, 2, 3, 4}, want: ErrBadOpcode},
		{name: "opcode 15", header: []byte{0x8F, 0x85, 1, 2, 3, 4}, want: ErrBadOpcode},
		{name: "opcode 3 mid-message", prefix: text(false, "a"), header: []byte{0x03, 0x85, 1, 2, 3, 4}, want: ErrBadOpcode},
		{name: "64-bit length top bit only", header: cat([]byte{0x81, 0xFF}, u64(1<<63)), want: ErrLengthTopBit},
		{name: "64-bit length all ones", header: cat([]byte{0x81, 0xFF}, u64(^uint64(0))), want: ErrLengthTopBit},
		{name: "64-bit length top bit on ping", header: cat([]byte{0x89, 0xFF}, u64(1<<63|5)), want: ErrControlTooLong},
		{name: "16-bit length 0", header: cat([]byte{0x81, 0xFE}, u16(0)), want: ErrNonMinimalLength},
		{name: "16-bit length 125", header: cat([]byte{0x81, 0xFE}, u16(125)), want: ErrNonMinimalLength},
		{name: "64-bit length 0", header: cat([]byte{0x81, 0xFF}, u64(0)), want: ErrNonMinimalLength},
		{name: "64-bit length 126", header: cat([]byte{0x81, 0xFF}, u64(126)), want: ErrNonMinimalLength},
		{name: "64-bit length 65535", header: cat([]byte{0x81, 0xFF}, u64(65535)), want: ErrNonMinimalLength},
		{name: "16-bit length 5 on continuation", prefix: text(false, "a"), header: cat([]byte{0x80, 0xFE}, u16(5)), want: ErrNonMinimalLength},
		{name: "ping FIN=0", header: []byte{0x09, 0x80}, want: ErrControlFragmented},
		{name: "pong FIN=0", header: []byte{0x0A, 0x80}, want: ErrControlFragmented},
		{name: "close FIN=0", header: []byte{0x08, 0x82}, want: ErrControlFragmented},
		{name: "ping FIN=0 mid-message", prefix: text(false, "a"), header: []byte{0x09, 0x80}, want: ErrControlFragmented},
		{name: "ping length 126", header: cat([]byte{0x89, 0xFE}, u16(126)), want: ErrControlTooLong},
		{name: "close length 126 (16-bit)", header: cat([]byte{0x88, 0xFE}, u16(200)), want: ErrControlTooLong},
		{name: "pong 64-bit length", header: cat([]byte{0x8A, 0xFF}, u64(1<<20)), want: ErrControlTooLong},
		{name: "continuation with no message", header: []byte{0x80, 0x85, 1, 2, 3, 4}, want: ErrUnexpectedContinuation},
		{name: "continuation after a whole message", prefix: text(true, "{}"), header: []byte{0x80, 0x85, 1, 2, 3, 4}, want: ErrUnexpectedContinuation},
		{name: "text while a message is in progress", prefix: text(false, "["), header: []byte{0x81, 0x85, 1, 2, 3, 4}, want: ErrMessageInProgress},
		{name: "text after a ping mid-message", prefix: cat(text(false, "["), clientFrame(true, OpPing, nil)), header: []byte{0x81, 0x85, 1, 2, 3, 4}, want: ErrMessageInProgress},
		{name: "binary while a message is in progress", prefix: text(false, "["), header: []byte{0x82, 0x85, 1, 2, 3, 4}, want: ErrMessageInProgress},
		{name: "65th frame", prefix: tooMany, header: []byte{0x80, 0x81, 1, 2, 3, 4}, want: ErrTooManyFrames},
		{name: "65th frame empty and final", prefix: tooMany, header: []byte{0x80, 0x80, 1, 2, 3, 4}, want: ErrTooManyFrames},
		{name: "binary message", header: []byte{0x82, 0x85, 1, 2, 3, 4}, want: ErrBinary},
		{name: "binary message, not final", header: []byte{0x02, 0x85, 1, 2, 3, 4}, want: ErrBinary},
		{name: "binary after a text message", prefix: text(true, "{}"), header: []byte{0x82, 0x80, 1, 2, 3, 4}, want: ErrBinary},
		{name: "length 1 MiB + 1", header: cat([]byte{0x81, 0xFF}, u64(MaxMessageSize+1), []byte{1, 2, 3, 4}), want: ErrTooBig},
		{name: "length 2^63-1", header: cat([]byte{0x81, 0xFF}, u64(1<<63-1)), want: ErrTooBig},
		{name: "length 1 MiB - received + 1", prefix: clientFrame(false, OpText, big), header: cat([]byte{0x80, 0xFF}, u64(MaxMessageSize-100+1)), want: ErrTooBig},
		{name: "length 2^63-1 after bytes received", prefix: clientFrame(false, OpText, big), header: cat([]byte{0x80, 0xFF}, u64(1<<63-1)), want: ErrTooBig},
		{name: "close payload of one byte", frame: clientFrame(true, OpClose, []byte{3}), want: ErrCloseTooShort},
		{name: "close code 1004", frame: closeFrame(1004, ""), want: ErrBadCloseCode},
		{name: "close code 1005", frame: closeFrame(1005, ""), want: ErrBadCloseCode},
		{name: "close code 1006", frame: closeFrame(1006, ""), want: ErrBadCloseCode},
		{name: "close code 1015", frame: closeFrame(1015, ""), want: ErrBadCloseCode},
		{name: "close code 0", frame: closeFrame(0, ""), want: ErrBadCloseCode},
		{name: "close code 999", frame: closeFrame(999, ""), want: ErrBadCloseCode},
		{name: "close code 1016", frame: closeFrame(1016, ""), want: ErrBadCloseCode},
		{name: "close code 2999", frame: closeFrame(2999, ""), want: ErrBadCloseCode},
		{name: "close code 5000", frame: closeFrame(5000, ""), want: ErrBadCloseCode},
		{name: "close code 65535", frame: closeFrame(65535, "x"), want: ErrBadCloseCode},
		{name: "close mid-message, bad code", prefix: text(false, "["), frame: closeFrame(1004, ""), want: ErrBadCloseCode},
		{name: "invalid UTF-8 byte", frame: text(true, "{\"a\":\"\xff\"}"), want: ErrInvalidUTF8},
		{name: "invalid UTF-8 in a continuation", prefix: text(false, "[1,"), frame: cont(true, "\xc0\xaf]"), want: ErrInvalidUTF8},
		{name: "final frame ends inside a sequence", frame: text(true, "\"\xe2\x82"), want: ErrTruncatedUTF8},
		{name: "final continuation ends inside a sequence", prefix: text(false, "\"\xf0"), frame: cont(true, "\x9f\x98"), want: ErrTruncatedUTF8},
		{name: "close reason not UTF-8", frame: closeFrame(1000, "bye \xed\xa0\x80"), want: ErrCloseReasonUTF8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input := cat(tc.prefix, tc.header, tc.frame, payloadAfter)
			src := &tricklingReader{data: input}
			r := NewReader(src, nil)
			_, err := readAll(r)
			var ce CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if error(ce) != tc.want || !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", ce, tc.want)
			}
			if got := spec(ce.Code); !got {
				t.Fatalf("code %d is not one the spec assigns to a client's fault", ce.Code)
			}
			consumed := len(tc.prefix) + len(tc.header) + len(tc.frame)
			if tc.header != nil {
				// Refused from the header: nothing of the payload (nor,
				// where the length decided, the mask key) was read.
				if src.read > consumed+4 {
					t.Fatalf("read %d bytes, header ends at %d: payload read", src.read, consumed)
				}
			} else if src.read > consumed {
				t.Fatalf("read %d bytes, the offending frame ends at %d", src.read, consumed)
			}
			// The failure sticks.
			if _, err2 := r.Next(); err2 != err {
				t.Fatalf("second Next: %v, want %v", err2, err)
			}
		})
	}
}

// spec reports whether code is one docs/stream.md section 4 lets a frame
// refusal carry.
func spec(code uint16) bool {
	switch code {
	case CloseProtocolError, CloseUnsupportedData, CloseInvalidPayload, CloseMessageTooBig:
		return true
	}
	return false
}

// TestHeaderRefusedBeforeMaskKey: when the length decides, the Reader does
// not even wait for the mask key, let alone the payload (a client that
// declares 2^63-1 bytes and stops gets its close at once).
func TestHeaderRefusedBeforeMaskKey(t *testing.T) {
	for _, h := range [][]byte{
		cat([]byte{0x81, 0xFF}, u64(1<<63-1)),
		cat([]byte{0x81, 0xFF}, u64(1<<63)),
		cat([]byte{0x81, 0xFE}, u16(3)),
	} {
		src := &tricklingReader{data: h} // ends right after the length
		_, err := NewReader(src, nil).Next()
		var ce CloseError
		if !errors.As(err, &ce) || src.read != len(h) {
			t.Fatalf("%x: %v after %d bytes", h, err, src.read)
		}
	}
}

// TestHugeLengthNoAllocation: refusing a declared length of 2^63-1 (or one
// with the top bit set, or just over 1 MiB) allocates nothing.
func TestHugeLengthNoAllocation(t *testing.T) {
	for _, n := range []uint64{1<<63 - 1, 1 << 63, MaxMessageSize + 1} {
		in := cat([]byte{0x81, 0xFF}, u64(n), testKey[:], payloadAfter)
		src := bytes.NewReader(in)
		r := NewReader(src, nil)
		allocs := testing.AllocsPerRun(100, func() {
			src.Reset(in)
			r.br.Reset(src)
			r.err, r.inMessage, r.frames = nil, false, 0
			if _, err := r.Next(); err == nil {
				t.Fatal("accepted")
			}
		})
		if allocs != 0 {
			t.Fatalf("length %d: %v allocations", n, allocs)
		}
	}
}

// TestDeclaredLengthNotAllocated: a frame that declares 1 MiB and sends
// 10 bytes makes the Reader hold about 10 bytes, not 1 MiB.
func TestDeclaredLengthNotAllocated(t *testing.T) {
	in := cat([]byte{0x81, 0xFF}, u64(MaxMessageSize), testKey[:], bytes.Repeat([]byte{'a' ^ testKey[0]}, 1))
	var b recordingBudget
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := NewReader(bytes.NewReader(in), &b).Next()
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Fatalf("got %v", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<10 {
		t.Fatalf("allocated %d bytes for a frame that sent 1", got)
	}
	if b.starts != 1 || b.taken != 1 {
		t.Fatalf("budget: %d starts, %d bytes taken; want 1, 1", b.starts, b.taken)
	}
}

// recordingBudget records the charges and refuses past limit (0: none).
// With r set, it checks at every charge that the message buffer holds at
// most max(2 × the bytes taken, RetainedBuffer).
type recordingBudget struct {
	starts, taken, calls, limit int
	r                           *Reader
	overCap                     int // a capacity seen over the bound
}

func (b *recordingBudget) checkCap() {
	if b.r != nil && cap(b.r.msg) > max(2*b.taken, RetainedBuffer) {
		b.overCap = cap(b.r.msg)
	}
}

var errNoBudget = CloseError{CloseTryAgainLater, "no budget"}

func (b *recordingBudget) Start() error { b.starts++; return nil }
func (b *recordingBudget) Take(n int) error {
	if n <= 0 {
		panic("Take of nothing")
	}
	b.calls++
	b.checkCap()
	if b.limit > 0 && b.taken+n > b.limit {
		return errNoBudget
	}
	b.taken += n
	return nil
}

// TestBudget: a message's bytes are charged as they arrive, once each,
// and the buffer stays within twice them; a refusal stops the reading.
func TestBudget(t *testing.T) {
	msg := strings.Repeat("é", 30000) // 60,000 bytes
	frames := cat(text(false, msg[:20000]), clientFrame(true, OpPing, []byte("p")), cont(false, ""), cont(true, msg[20000:]), text(true, "{}"))
	for _, name := range []string{"whole", "trickled"} {
		t.Run(name, func(t *testing.T) {
			var src io.Reader = bytes.NewReader(frames)
			if name == "trickled" {
				src = &chunkReader{data: frames, sizes: []int{1, 7, 300, 5000}}
			}
			var b recordingBudget
			r := NewReader(src, &b)
			b.r = r
			for {
				m, err := r.Next()
				if err != nil {
					t.Fatal(err)
				}
				if m.Op == OpText {
					b.checkCap()
					if string(m.Payload) != msg {
						t.Fatal("message differs")
					}
					break
				}
			}
			if b.starts != 1 || b.taken != len(msg) {
				t.Fatalf("%d starts, %d bytes taken, want 1 and %d", b.starts, b.taken, len(msg))
			}
			if b.overCap > 0 {
				t.Fatalf("buffer capacity %d over twice the bytes taken", b.overCap)
			}
			if name == "trickled" && b.calls < 10 {
				t.Fatalf("only %d charges for a trickled message", b.calls)
			}
			m, err := r.Next()
			if err != nil || string(m.Payload) != "{}" || b.starts != 2 {
				t.Fatalf("next message: %q %v, %d starts", m.Payload, err, b.starts)
			}
		})
	}
	t.Run("refused", func(t *testing.T) {
		src := &tricklingReader{data: cat(text(true, msg), payloadAfter)}
		b := recordingBudget{limit: 1000}
		_, err := NewReader(src, &b).Next()
		if err != errNoBudget {
			t.Fatalf("got %v", err)
		}
		if src.read > 4+4+1000+1 { // header, then the bytes granted and the one refused
			t.Fatalf("read %d bytes past a refused budget", src.read)
		}
	})
}

// TestFragmentsWithControlFrames: control frames between fragments are
// returned as they are read, in stream order, and the message completes.
func TestFragmentsWithControlFrames(t *testing.T) {
	in := cat(
		clientFrame(true, OpPing, []byte("before")),
		text(false, `{"jsonrpc":"2.0",`),
		clientFrame(true, OpPing, []byte("one")),
		cont(false, ``),
		clientFrame(true, OpPong, []byte("unsolicited")),
		clientFrame(true, OpPing, nil),
		cont(false, `"id":1,`),
		cont(true, `"method":"session.status"}`),
		text(true, `[]`),
		closeFrame(1000, "done"),
		text(true, "never read"),
	)
	for _, sizes := range [][]int{nil, {1}, {3, 11}} {
		msgs, err := readAll(NewReader(&chunkReader{data: in, sizes: sizes}, nil))
		if err != io.EOF {
			t.Fatalf("sizes %v: %v", sizes, err)
		}
		want := []Message{
			{Op: OpPing, Payload: []byte("before")},
			{Op: OpPing, Payload: []byte("one")},
			{Op: OpPong, Payload: []byte("unsolicited")},
			{Op: OpPing, Payload: []byte{}},
			{Op: OpText, Payload: []byte(`{"jsonrpc":"2.0","id":1,"method":"session.status"}`)},
			{Op: OpText, Payload: []byte(`[]`)},
			{Op: OpClose, Payload: []byte("done"), Code: 1000},
		}
		if len(msgs) != len(want) {
			t.Fatalf("sizes %v: %d messages, want %d", sizes, len(msgs), len(want))
		}
		for i := range want {
			if msgs[i].Op != want[i].Op || msgs[i].Code != want[i].Code || !bytes.Equal(msgs[i].Payload, want[i].Payload) {
				t.Fatalf("sizes %v: message %d = %+v, want %+v", sizes, i, msgs[i], want[i])
			}
		}
	}
}

func TestCloseFrames(t *testing.T) {
	for _, tc := range []struct {
		frame  []byte
		code   uint16
		reason string
	}{
		{clientFrame(true, OpClose, nil), CloseNoStatus, ""},
		{closeFrame(1000, ""), 1000, ""},
		{closeFrame(1003, "x"), 1003, "x"},
		{closeFrame(1007, ""), 1007, ""},
		{closeFrame(1014, ""), 1014, ""},
		{closeFrame(3000, "ü"), 3000, "ü"},
		{closeFrame(4999, strings.Repeat("r", 123)), 4999, strings.Repeat("r", 123)},
	} {
		r := NewReader(bytes.NewReader(cat(tc.frame, text(true, "{}"))), nil)
		m, err := r.Next()
		if err != nil || m.Op != OpClose || m.Code != tc.code || string(m.Payload) != tc.reason {
			t.Fatalf("%x: %+v %v", tc.frame, m, err)
		}
		if _, err := r.Next(); err != io.EOF {
			t.Fatalf("after a close frame: %v, want io.EOF", err)
		}
	}
}

// TestLimitsAccepted: the largest inputs the spec allows are read.
func TestLimitsAccepted(t *testing.T) {
	t.Run("64 frames", func(t *testing.T) {
		in := text(false, "[")
		for range MaxFramesPerMessage - 2 {
			in = append(in, cont(false, "1,")...)
		}
		in = append(in, cont(true, "1]")...)
		m, err := NewReader(bytes.NewReader(in), nil).Next()
		if err != nil || len(m.Payload) != 1+2*63 {
			t.Fatalf("%d bytes, %v", len(m.Payload), err)
		}
	})
	t.Run("1 MiB in two frames", func(t *testing.T) {
		body := bytes.Repeat([]byte("a"), MaxMessageSize)
		in := cat(clientFrame(false, OpText, body[:70000]), clientFrame(true, OpContinuation, body[70000:]))
		m, err := NewReader(bytes.NewReader(in), nil).Next()
		if err != nil || !bytes.Equal(m.Payload, body) {
			t.Fatalf("%d bytes, %v", len(m.Payload), err)
		}
		// One byte more, in the last frame, is refused from its header.
		in = cat(clientFrame(false, OpText, body[:70000]), clientFrame(true, OpContinuation, append(body[70000:], 'a')))
		if _, err := NewReader(bytes.NewReader(in), nil).Next(); err != ErrTooBig {
			t.Fatalf("1 MiB + 1: %v", err)
		}
	})
	t.Run("control payload 125", func(t *testing.T) {
		p := bytes.Repeat([]byte{0xFF}, 125) // pings carry any bytes
		m, err := NewReader(bytes.NewReader(clientFrame(true, OpPing, p)), nil).Next()
		if err != nil || !bytes.Equal(m.Payload, p) {
			t.Fatalf("%v", err)
		}
	})
	t.Run("empty message", func(t *testing.T) {
		m, err := NewReader(bytes.NewReader(text(true, "")), nil).Next()
		if err != nil || m.Op != OpText || len(m.Payload) != 0 {
			t.Fatalf("%+v %v", m, err)
		}
	})
}

// TestUTF8AcrossFrames splits valid and invalid sequences at every
// position over two and three frames: the outcome is that of the whole.
func TestUTF8AcrossFrames(t *testing.T) {
	inputs := []string{
		"plain ascii",
		"é ü € 𝄞 \u07ff \u0800 \uffff \U00010000 \U0010ffff",
		"\"\xe2\x82\xac\"",             // €
		"\xf0\x9f\x98\x80",             // 😀
		"a\xffb",                       // never valid
		"a\x80b",                       // lone continuation
		"\xc0\xaf",                     // overlong '/'
		"\xc1\xbf",                     // overlong
		"\xe0\x80\xaf",                 // overlong three bytes
		"\xe0\x9f\xbf",                 // overlong U+07FF
		"\xf0\x80\x80\xaf",             // overlong four bytes
		"\xf0\x8f\xbf\xbf",             // overlong U+FFFF
		"\xed\xa0\x80",                 // surrogate U+D800
		"\xed\xbf\xbf",                 // surrogate U+DFFF
		"\xf4\x90\x80\x80",             // U+110000
		"\xf5\x80\x80\x80",             // lead over F4
		"\xe2\x82",                     // truncated at the end
		"x\xf0\x9f\x98",                // truncated four-byte
		"\xe2\x82x",                    // interrupted
		"\xed\x9f\xbf",                 // U+D7FF, valid
		"\xee\x80\x80",                 // U+E000, valid
		"\xf4\x8f\xbf\xbf",             // U+10FFFF, valid
		"\xe2\x82\xac\xe2\x82\xac\xe2", // truncated after valid ones
	}
	for _, s := range inputs {
		valid := utf8.ValidString(s)
		for i := 0; i <= len(s); i++ {
			for j := i; j <= len(s); j++ {
				in := cat(text(false, s[:i]), clientFrame(true, OpPing, nil), cont(false, s[i:j]), cont(true, s[j:]))
				msgs, err := readAll(NewReader(bytes.NewReader(in), nil))
				if valid {
					if err != io.ErrUnexpectedEOF && err != io.EOF || len(msgs) != 2 || string(msgs[1].Payload) != s {
						t.Fatalf("%q split %d,%d: %v", s, i, j, err)
					}
					continue
				}
				var ce CloseError
				if !errors.As(err, &ce) || ce.Code != CloseInvalidPayload {
					t.Fatalf("%q split %d,%d: %v, want 1007", s, i, j, err)
				}
			}
		}
	}
}

// TestUTF8FailsAtFirstInvalidByte: an invalid byte in an early fragment
// closes the connection at once, without waiting for the rest of the
// message (which here never arrives).
func TestUTF8FailsAtFirstInvalidByte(t *testing.T) {
	first := text(false, "[\"ok\xe2\x28")
	src := &tricklingReader{data: cat(first, cont(true, "\"]"))}
	_, err := NewReader(src, nil).Next()
	if err != ErrInvalidUTF8 || src.read != len(first) {
		t.Fatalf("%v after %d bytes (first frame %d)", err, src.read, len(first))
	}
	// Within one long frame too: the chunk holding the bad byte stops it.
	long := cat(clientFrame(true, OpText, append(append([]byte("\xff"), bytes.Repeat([]byte("a"), 100000)...), '"')))
	src = &tricklingReader{data: long}
	_, err = NewReader(src, nil).Next()
	if err != ErrInvalidUTF8 || src.read > 64 {
		t.Fatalf("%v after %d bytes", err, src.read)
	}
}

func TestEOF(t *testing.T) {
	whole := cat(text(false, "ab"), cont(true, "cd"))
	for i := range len(whole) + 1 {
		m, err := NewReader(bytes.NewReader(whole[:i]), nil).Next()
		switch {
		case i == 0 && err != io.EOF:
			t.Fatalf("empty stream: %v", err)
		case i == len(whole) && (err != nil || string(m.Payload) != "abcd"):
			t.Fatalf("whole: %q %v", m.Payload, err)
		case i > 0 && i < len(whole) && err != io.ErrUnexpectedEOF:
			t.Fatalf("cut at %d: %v", i, err)
		}
	}
}

// TestBufferRetention: between messages the Reader keeps at most
// RetainedBuffer of message buffer.
func TestBufferRetention(t *testing.T) {
	in := cat(clientFrame(true, OpText, bytes.Repeat([]byte("a"), 200000)), text(true, "{}"), clientFrame(true, OpPing, nil))
	r := NewReader(bytes.NewReader(in), nil)
	if m, err := r.Next(); err != nil || len(m.Payload) != 200000 {
		t.Fatal(err)
	}
	if m, err := r.Next(); err != nil || string(m.Payload) != "{}" {
		t.Fatal(err)
	}
	if cap(r.msg) > RetainedBuffer {
		t.Fatalf("kept %d bytes", cap(r.msg))
	}
}

func TestReady(t *testing.T) {
	msg := cat(text(false, "ab"), clientFrame(true, OpPing, nil), cont(true, "cd"))
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"empty", nil, false},
		{"one byte", msg[:1], false},
		{"a whole message", text(true, "{}"), true},
		{"a ping", clientFrame(true, OpPing, []byte("x")), true},
		{"first fragment only", text(false, "ab"), false},
		{"fragment then ping", msg[:len(msg)-len(cont(true, "cd"))], true},
		{"fragments", cat(text(false, "ab"), cont(true, "cd")), true},
		{"last fragment cut", cat(text(false, "ab"), cont(true, "cd"))[:13], false},
		{"refused header", []byte{0x81, 0x05}, true},
		{"huge length", cat([]byte{0x81, 0xFF}, u64(1<<63)), true},
		{"large message not all here", clientFrame(true, OpText, make([]byte, 1000))[:500], false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			br := bufioFrom(tc.in)
			r := NewReader(br, nil)
			if got := r.Ready(); got != tc.want {
				t.Fatalf("Ready = %v, want %v", got, tc.want)
			}
			if r.Buffered() != len(tc.in) {
				t.Fatalf("Ready consumed input")
			}
		})
	}
}

func TestInMessage(t *testing.T) {
	r := NewReader(bytes.NewReader(cat(text(false, "a"), clientFrame(true, OpPing, nil), cont(true, "b"))), nil)
	if r.InMessage() {
		t.Fatal("in a message before reading")
	}
	if m, err := r.Next(); err != nil || m.Op != OpPing || !r.InMessage() {
		t.Fatalf("after a fragment and a ping: %+v %v, InMessage=%v", m, err, r.InMessage())
	}
	if m, err := r.Next(); err != nil || string(m.Payload) != "ab" || r.InMessage() {
		t.Fatalf("after the last fragment: %q %v, InMessage=%v", m.Payload, err, r.InMessage())
	}
}
