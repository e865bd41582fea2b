package chat

import (
	"bytes"
	"testing"

	"github.com/luxfi/session/chat/internal/wire"
)

// TestTamperEveryByte alters a handshake, a step and a continue message in
// every byte of the fixed header and every few bytes of the rest (every
// one of the continue message's header), truncates them at many lengths
// and extends them: every altered envelope is refused with an error (no
// panic, no plaintext), and then the original opens (a failed Open changes
// nothing). The negative vectors and the fuzz targets cover the fields
// one by one.
func TestTamperEveryByte(t *testing.T) {
	net := newTestNet(t, 3, nil)
	headerStride, bodyStride := 3, 97
	if raceEnabled || testing.Short() {
		headerStride, bodyStride = 17, 401
	}
	check := func(name string, k, j int, want wire.StanzaType) {
		orig := net.chain[k].env
		e, err := wire.Parse(orig)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Stanzas[stanzaIndex(uint8(j), e.Sender)].Type; got != want {
			t.Fatalf("%s: stanza type %d, want %d", name, got, want)
		}
		header := len(orig) - len(e.Body)
		try := func(b []byte, what string) {
			d := net.delivery(k)
			d.Envelope = b
			if m, err := net.convs[j].Open(net.now, d); err == nil {
				t.Fatalf("%s message, %s: opened as %q", name, what, m.Plaintext)
			}
		}
		for i := range orig {
			stride := bodyStride
			if i < header {
				stride = headerStride
			}
			if i >= wire.FixedHeaderSize && i%stride != 0 && i != len(orig)-1 && !(want == wire.Continue && i < header) {
				continue
			}
			b := bytes.Clone(orig)
			b[i] ^= 0x01
			try(b, "bit flipped")
		}
		for n := 0; n < len(orig); n += max(1, len(orig)/300) {
			try(orig[:n], "truncated")
		}
		try(append(bytes.Clone(orig), 0), "extended")
		if _, err := net.open(j, k); err != nil {
			t.Fatalf("%s message: the original does not open after the altered ones: %v", name, err)
		}
	}
	m0 := net.send(0, "handshakes")[0]
	check("handshake", m0, 1, wire.Handshake)
	net.mustOpen(2, m0, "handshakes")
	m1 := net.send(1, "a step for alice")[0]
	m2 := net.send(1, "a continue for alice")[0]
	check("step", m1, 0, wire.Step)
	check("continue", m2, 0, wire.Continue)
}
