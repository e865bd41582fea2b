package wire

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/suite"
)

// vectorEnvelopes returns the envelopes of the known-answer vectors.
func vectorEnvelopes(t testing.TB) [][]byte {
	b, err := os.ReadFile("../../chattest/testdata/conversation_kat.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Steps []struct {
			Envelopes []struct {
				Hex string `json:"hex"`
			} `json:"envelopes"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, s := range f.Steps {
		for _, e := range s.Envelopes {
			env, err := hex.DecodeString(e.Hex)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
	}
	if len(out) == 0 {
		t.Fatal("no vector envelopes")
	}
	return out
}

func TestStanzaSizes(t *testing.T) {
	ct := make([]byte, suite.KEMCiphertextSize)
	for _, s := range []Stanza{
		{Type: None},
		{Type: Continue, N: 1},
		{Type: Step, K: 1, Q: 1, CT: ct},
		{Type: Handshake, SPKID: 1, Gen: 1, C1: ct, C2: ct},
		{Type: Handshake, SPKID: 1, OPKID: 1, Gen: 1, C1: ct, C2: ct, C3: ct},
	} {
		if got := len(s.appendTo(nil)); got != s.Size() {
			t.Errorf("stanza type %d: encodes to %d bytes, Size says %d", s.Type, got, s.Size())
		}
	}
	// docs/protocol.md, section 6.2.
	for name, pair := range map[string][2]int{
		"continue": {ContinueSize, 73}, "step": {StepSize, 1169},
		"handshake": {HandshakeSize, 2237}, "handshake with one-time prekey": {HandshakeOPKSize, 3325},
		"fixed header": {FixedHeaderSize, 22}, "minimum body": {MinBodySize, 3366},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: %d bytes, the spec says %d", name, pair[0], pair[1])
		}
	}
}

func TestParseVectors(t *testing.T) {
	for i, env := range vectorEnvelopes(t) {
		e, err := Parse(env)
		if err != nil {
			t.Fatalf("vector envelope %d: %v", i, err)
		}
		if !bytes.Equal(e.Marshal(), env) {
			t.Fatalf("vector envelope %d: parse then marshal differs", i)
		}
		if e.HeaderSize()+len(e.Body) != len(env) {
			t.Fatalf("vector envelope %d: HeaderSize", i)
		}
	}
}

// TestTruncationsAndExtensions: every truncation of the header is refused
// (the body's length is the AEAD's to check), and nothing panics.
func TestTruncationsAndExtensions(t *testing.T) {
	env := vectorEnvelopes(t)[0]
	e, _ := Parse(env)
	header := e.HeaderSize()
	for n := 0; n < len(env); n++ {
		_, err := Parse(env[:n])
		if n < header+MinBodySize && !errors.Is(err, errs.ErrMalformed) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
	long := append(bytes.Clone(env), make([]byte, 70000)...)
	if _, err := Parse(long); !errors.Is(err, errs.ErrEnvelopeTooLarge) {
		t.Fatalf("oversized: %v", err)
	}
	for i := 0; i < header; i++ {
		b := bytes.Clone(env)
		b[i] ^= 0xff
		if e, err := Parse(b); err == nil && !bytes.Equal(e.Marshal(), b) {
			t.Fatalf("byte %d flipped: accepted but not canonical", i)
		}
	}
}

func TestBody(t *testing.T) {
	b := &Body{Kind: KindMessage, SentAt: -5, MID: [IDSize]byte{1}, After: [IDSize]byte{2}, Signature: make([]byte, suite.SignatureSize), Plaintext: []byte("x")}
	p, err := ParseBody(b.Append(nil))
	if err != nil || p.SentAt != -5 || string(p.Plaintext) != "x" || p.MID != b.MID || p.After != b.After {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParseBody((&Body{Kind: KindControl, SentAt: 7, Signature: make([]byte, suite.SignatureSize)}).Append(nil)); err != nil {
		t.Fatalf("control message: %v", err)
	}
	for _, bad := range []*Body{
		{Kind: 3, Signature: make([]byte, suite.SignatureSize)},
		{Kind: KindControl, Signature: make([]byte, suite.SignatureSize), Plaintext: []byte("content")},
		{Kind: KindControl, MID: [IDSize]byte{1}, Signature: make([]byte, suite.SignatureSize)},
		{Kind: KindControl, After: [IDSize]byte{1}, Signature: make([]byte, suite.SignatureSize)},
		{Kind: KindMessage, Signature: make([]byte, suite.SignatureSize), Plaintext: make([]byte, 16<<10+1)},
	} {
		if _, err := ParseBody(bad.Append(nil)); !errors.Is(err, errs.ErrMalformed) {
			t.Errorf("kind %d, %d bytes: %v", bad.Kind, len(bad.Plaintext), err)
		}
	}
	if _, err := ParseBody(make([]byte, BodyFixedSize-1)); err == nil {
		t.Error("short body accepted")
	}
}

func FuzzParse(f *testing.F) {
	for _, env := range vectorEnvelopes(f) {
		f.Add(env)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Parse(b)
		if err != nil {
			if !errors.Is(err, errs.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !bytes.Equal(e.Marshal(), b) {
			t.Fatal("parse then marshal differs")
		}
	})
}

func FuzzParseBody(f *testing.F) {
	f.Add((&Body{Kind: KindMessage, Signature: make([]byte, suite.SignatureSize), Plaintext: []byte("hello")}).Append(nil))
	f.Add((&Body{Kind: KindControl, Signature: make([]byte, suite.SignatureSize)}).Append(nil))
	f.Fuzz(func(t *testing.T, p []byte) {
		b, err := ParseBody(p)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Append(nil), p) {
			t.Fatal("parse then append differs")
		}
	})
}

// TestHandshakeGeneration: a handshake's generation is at least 1
// (docs/protocol.md, section 6.4).
func TestHandshakeGeneration(t *testing.T) {
	ct := make([]byte, suite.KEMCiphertextSize)
	e := &Envelope{
		RatchetKey: make([]byte, suite.KEMPublicKeySize),
		Stanzas:    []Stanza{{Type: Handshake, SPKID: 1, Gen: 1, C1: ct, C2: ct}},
		Body:       make([]byte, MinBodySize),
	}
	if _, err := Parse(e.Marshal()); err != nil {
		t.Fatalf("generation 1: %v", err)
	}
	e.Stanzas[0].Gen = 0
	if _, err := Parse(e.Marshal()); !errors.Is(err, errs.ErrMalformed) {
		t.Fatalf("generation 0: %v", err)
	}
}
