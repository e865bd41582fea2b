package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// masked turns server frames (unmasked) into the client's form, so the
// Reader, which refuses unmasked frames, can parse the writers' output:
// it sets the mask bit, inserts testKey and masks each payload.
func masked(t *testing.T, frames []byte) []byte {
	t.Helper()
	var out []byte
	for len(frames) > 0 {
		if len(frames) < 2 || frames[1]&0x80 != 0 {
			t.Fatalf("server frame malformed or masked: %x", frames[:min(len(frames), 16)])
		}
		n, hl := uint64(frames[1]&0x7F), 2
		switch n {
		case 126:
			n, hl = uint64(binary.BigEndian.Uint16(frames[2:])), 4
		case 127:
			n, hl = binary.BigEndian.Uint64(frames[2:]), 10
		}
		h := append([]byte(nil), frames[:hl]...)
		h[1] |= 0x80
		out = append(append(out, h...), testKey[:]...)
		p := frames[hl : hl+int(n)]
		start := len(out)
		out = append(out, p...)
		maskBytes(binary.LittleEndian.Uint32(testKey[:]), 0, out[start:])
		frames = frames[hl+int(n):]
	}
	return out
}

func TestWritersRoundTrip(t *testing.T) {
	var out []byte
	var texts [][]byte
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 200000} {
		p := bytes.Repeat([]byte("ü"), n/2)
		if n%2 == 1 {
			p = append(p, 'x')
		}
		texts = append(texts, p)
		out = AppendText(out, p)
	}
	var err error
	if out, err = AppendPing(out, []byte("ping")); err != nil {
		t.Fatal(err)
	}
	if out, err = AppendPong(out, bytes.Repeat([]byte{0}, 125)); err != nil {
		t.Fatal(err)
	}
	// A large response: header appended, payload written after it.
	large := bytes.Repeat([]byte("z"), 70000)
	out = append(AppendTextHeader(out, len(large)), large...)
	if out, err = AppendClose(out, CloseGoingAway, "shutting down"); err != nil {
		t.Fatal(err)
	}
	msgs, err := readAll(NewReader(bytes.NewReader(masked(t, out)), nil))
	if err.Error() != "EOF" {
		t.Fatal(err)
	}
	if len(msgs) != len(texts)+4 {
		t.Fatalf("%d messages", len(msgs))
	}
	for i, p := range texts {
		if msgs[i].Op != OpText || !bytes.Equal(msgs[i].Payload, p) {
			t.Fatalf("text %d (%d bytes) differs", i, len(p))
		}
	}
	rest := msgs[len(texts):]
	if rest[0].Op != OpPing || string(rest[0].Payload) != "ping" ||
		rest[1].Op != OpPong || len(rest[1].Payload) != 125 ||
		rest[2].Op != OpText || !bytes.Equal(rest[2].Payload, large) ||
		rest[3].Op != OpClose || rest[3].Code != CloseGoingAway || string(rest[3].Payload) != "shutting down" {
		t.Fatalf("control frames: %+v", rest)
	}
}

// TestWriterHeaders checks the exact bytes: FIN set, no mask, minimal
// lengths.
func TestWriterHeaders(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{65535, []byte{0x81, 126, 0xFF, 0xFF}},
		{65536, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		if got := AppendTextHeader(nil, tc.n); !bytes.Equal(got, tc.want) {
			t.Fatalf("%d: %x, want %x", tc.n, got, tc.want)
		}
	}
	if got, _ := AppendPong([]byte("x"), []byte("ab")); !bytes.Equal(got, []byte("x\x8a\x02ab")) {
		t.Fatalf("pong: %x", got)
	}
	if got, _ := AppendClose(nil, 1000, ""); !bytes.Equal(got, []byte{0x88, 2, 0x03, 0xE8}) {
		t.Fatalf("close: %x", got)
	}
}

func TestControlWritersRefuse(t *testing.T) {
	long := make([]byte, 126)
	if out, err := AppendPing([]byte("k"), long); !errors.Is(err, ErrControlPayload) || string(out) != "k" {
		t.Fatalf("ping 126: %v", err)
	}
	if out, err := AppendPong([]byte("k"), long); !errors.Is(err, ErrControlPayload) || string(out) != "k" {
		t.Fatalf("pong 126: %v", err)
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000} {
		if out, err := AppendClose([]byte("k"), code, ""); !errors.Is(err, ErrCloseCode) || string(out) != "k" {
			t.Fatalf("close %d: %v", code, err)
		}
	}
}

// TestCloseReasonTruncated: the reason is cut to fit 125 bytes at a code
// point boundary, and invalid UTF-8 in it is replaced, so the client's
// reader (and ours) accepts the frame.
func TestCloseReasonTruncated(t *testing.T) {
	for _, reason := range []string{
		strings.Repeat("a", 200),
		strings.Repeat("€", 60),       // 180 bytes, 3 per code point
		"a" + strings.Repeat("😀", 40), // 161 bytes; 123 falls inside one
		"bad \xff\xfe byte",
		strings.Repeat("\xff", 200),
		strings.Repeat("a", 123),
	} {
		out, err := AppendClose(nil, CloseProtocolError, reason)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 2+125 {
			t.Fatalf("%d-byte frame", len(out))
		}
		m, err := NewReader(bytes.NewReader(masked(t, out)), nil).Next()
		if err != nil || m.Code != CloseProtocolError {
			t.Fatalf("%q: %v", reason, err)
		}
		got := string(m.Payload)
		want := strings.ToValidUTF8(reason, "\uFFFD")
		if !utf8.ValidString(got) || !strings.HasPrefix(want, got) || len(want) > 123 && len(got) < 123-3 || len(want) <= 123 && got != want {
			t.Fatalf("%q → %q", reason, got)
		}
	}
}

func TestCloseErrorToFrame(t *testing.T) {
	var ce CloseError
	if !errors.As(ErrTooBig, &ce) {
		t.Fatal("ErrTooBig is not a CloseError")
	}
	out, err := AppendClose(nil, ce.Code, ce.Reason)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewReader(bytes.NewReader(masked(t, out)), nil).Next()
	if err != nil || m.Code != CloseMessageTooBig || string(m.Payload) != ce.Reason {
		t.Fatalf("%+v %v", m, err)
	}
	if got := ce.Error(); got != "websocket: close 1009: message over 1 MiB" {
		t.Fatalf("Error() = %q", got)
	}
}
