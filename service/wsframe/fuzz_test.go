package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// refParse is a second, deliberately plain reading of docs/stream.md
// section 4 over a whole input held in memory: frame by frame, the rules
// in the same order as the Reader checks them. The fuzz target compares
// the Reader (incremental, on chunked input) with it.
func refParse(in []byte) ([]Message, error) {
	var out []Message
	var msg []byte
	inMsg, frames := false, 0
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
		case !control && op > OpBinary:
			return out, ErrBadOpcode
		case op > OpPong:
			return out, ErrBadOpcode
		case !mask:
			return out, ErrUnmasked
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
		case !control && frames == 64:
			return out, ErrTooManyFrames
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
		if !control && length+uint64(len(msg)) > MaxMessageSize { // no overflow: length < 2^63
			return out, ErrTooBig
		}
		if len(in) < hl+4 {
			return out, io.ErrUnexpectedEOF
		}
		key := in[hl : hl+4]
		in = in[hl+4:]
		avail := min(uint64(len(in)), length)
		p := make([]byte, avail)
		for i := range p {
			p[i] = in[i] ^ key[i%4]
		}
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
		frames++
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
			msg, inMsg, frames = nil, false, 0
		}
	}
}

// fuzzSeeds are inputs the fuzzers start from: each rule's case and some
// well-formed streams.
func fuzzSeeds() [][]byte {
	big := bytes.Repeat([]byte("a"), 300) // a 16-bit length
	seeds := [][]byte{
		cat(text(false, "[\"\xe2\x82"), clientFrame(true, OpPing, []byte("hi")), cont(true, "\xac\"]"), closeFrame(1000, "ok")),
		cat(clientFrame(false, OpText, big), cont(true, "b")),
		cat([]byte{0x81, 0xFF}, u64(1<<63-1), testKey[:]),
		cat([]byte{0x81, 0xFE}, u16(5), testKey[:], []byte("hello")),
		{0x82, 0x80, 1, 2, 3, 4},
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},
		clientFrame(true, OpClose, []byte{3}),
		closeFrame(1005, ""),
		text(true, "\xed\xa0\x80"),
	}
	tooMany := text(false, "[")
	for range MaxFramesPerMessage {
		tooMany = append(tooMany, cont(false, " ")...)
	}
	return append(seeds, tooMany)
}

// FuzzReader: on any input, read in chunks of any sizes, the Reader never
// panics, returns only text messages of at most 1 MiB of valid UTF-8 and
// well-formed control frames, refuses only with the spec's codes, and
// agrees exactly with refParse.
func FuzzReader(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s, []byte{1, 5, 200})
	}
	f.Fuzz(func(t *testing.T, in, chunks []byte) {
		if len(in) > 1<<13 {
			// Lengths up to 2^63 are reached through the header alone;
			// large inputs only make minimizing slow.
			return
		}
		sizes := make([]int, len(chunks))
		for i, c := range chunks {
			sizes[i] = int(c)
		}
		var b recordingBudget
		r := NewReader(&chunkReader{data: in, sizes: sizes}, &b)
		var got []Message
		var err error
		for {
			var m Message
			m, err = r.Next()
			if err != nil {
				break
			}
			switch m.Op {
			case OpText:
				if len(m.Payload) > MaxMessageSize || !utf8.Valid(m.Payload) {
					t.Fatalf("text message of %d bytes, valid=%v", len(m.Payload), utf8.Valid(m.Payload))
				}
			case OpPing, OpPong:
				if len(m.Payload) > MaxControlPayload {
					t.Fatalf("control payload of %d bytes", len(m.Payload))
				}
			case OpClose:
				if m.Code != CloseNoStatus && !sendable(m.Code) || !utf8.Valid(m.Payload) {
					t.Fatalf("close %d %q", m.Code, m.Payload)
				}
			default:
				t.Fatalf("opcode %d returned", m.Op)
			}
			m.Payload = append([]byte(nil), m.Payload...)
			got = append(got, m)
		}
		var ce CloseError
		if errors.As(err, &ce) {
			if !spec(ce.Code) {
				t.Fatalf("refusal with code %d", ce.Code)
			}
		} else if err != io.EOF && err != io.ErrUnexpectedEOF {
			t.Fatalf("error %v", err)
		}
		if b.taken > len(in) {
			t.Fatalf("budget charged %d bytes of a %d-byte input", b.taken, len(in))
		}
		want, wantErr := refParse(in)
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

// FuzzUTF8: the incremental validator, fed in any split, finds the first
// invalid byte exactly where unicode/utf8 says the valid prefix ends, and
// accepts the whole exactly when utf8.Valid does.
func FuzzUTF8(f *testing.F) {
	f.Add([]byte("é€😀\xed\x9f\xbf"), byte(1), byte(2))
	f.Add([]byte("\xf0\x9f\x98"), byte(3), byte(0))
	f.Add([]byte("\xe0\x9f\xbf\xed\xa0\x80"), byte(1), byte(1))
	f.Fuzz(func(t *testing.T, b []byte, s1, s2 byte) {
		i, j := int(s1), int(s1)+int(s2)
		checkUTF8(t, b, []int{i, j})
	})
}

// FuzzWriters: what the writers produce, for any payload, code and
// reason, reads back (masked as a client would) as what was written, or
// the writer refuses with its error.
func FuzzWriters(f *testing.F) {
	f.Add([]byte("{\"id\":1}"), uint16(1000), "bye")
	f.Add(bytes.Repeat([]byte("€"), 50), uint16(1005), string(bytes.Repeat([]byte("😀"), 40)))
	f.Fuzz(func(t *testing.T, payload []byte, code uint16, reason string) {
		payload = bytes.ToValidUTF8(payload, []byte("?"))
		out := AppendText(nil, payload)
		out, pingErr := AppendPing(out, payload)
		out, closeErr := AppendClose(out, code, reason)
		if (pingErr != nil) != (len(payload) > MaxControlPayload) || (closeErr != nil) != !sendable(code) {
			t.Fatalf("ping %v (payload %d), close %v (code %d)", pingErr, len(payload), closeErr, code)
		}
		msgs, err := readAll(NewReader(bytes.NewReader(masked(t, out)), nil))
		if err != io.EOF {
			t.Fatalf("reading back: %v", err)
		}
		if len(msgs) == 0 || !bytes.Equal(msgs[0].Payload, payload) {
			t.Fatal("text differs")
		}
		msgs = msgs[1:]
		if pingErr == nil {
			if msgs[0].Op != OpPing || !bytes.Equal(msgs[0].Payload, payload) {
				t.Fatal("ping differs")
			}
			msgs = msgs[1:]
		}
		if closeErr == nil {
			if len(msgs) != 1 || msgs[0].Code != code || len(msgs[0].Payload) > 123 {
				t.Fatalf("close: %+v", msgs)
			}
		}
	})
}
