package tx

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/fuzzedit"
)

var (
	idsOnce sync.Once
	alice   *crypto.Identity
	bob     *crypto.Identity
)

func ids2(t testing.TB) (*crypto.Identity, *crypto.Identity) {
	idsOnce.Do(func() {
		var err error
		if alice, err = crypto.IdentityFromSeed([32]byte{1}); err != nil {
			panic(err)
		}
		if bob, err = crypto.IdentityFromSeed([32]byte{2}); err != nil {
			panic(err)
		}
	})
	return alice, bob
}

func mustSID(t testing.TB, id *crypto.Identity) crypto.SessionID {
	s, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var chainID = ids.ID{0xc4}

// samples returns one signed transaction of every type.
func samples(t testing.TB) []*Tx {
	a, b := ids2(t)
	bs := mustSID(t, b)
	as := mustSID(t, a)
	payloads := []Payload{
		&RegisterIdentity{KEMPublicKey: a.KEMPublicKey, DSAPublicKey: a.DSAPublicKey, AnchorHeight: 77, Work: 0x0102030405060708},
		&CreateSession{Participants: []crypto.SessionID{bs}, Metadata: []byte("m")},
		&CreateSession{Participants: []crypto.SessionID{bs}},
		&CreateSession{Participants: []crypto.SessionID{bs}, Claims: []Claim{{Participant: bs, SignedPrekeyID: 3, OneTimePrekeyID: 7}}},
		&SendMessage{Session: ids.ID{1}, Ciphertext: bytes.Repeat([]byte{7}, 256)},
		&SendMessage{Session: ids.ID{1}, Claims: []Claim{{Participant: bs, SignedPrekeyID: 2, OneTimePrekeyID: 9}}, Ciphertext: []byte("c")},
		&SendMessage{Session: ids.ID{1}, Claims: []Claim{{Participant: bs, SignedPrekeyID: 2}}, Ciphertext: []byte("d")},
		&CloseSession{Session: ids.ID{2}},
		&CreateChannel{Name: "général", JoinPolicy: PolicyOpen},
		&CreateChannel{Name: "private", JoinPolicy: PolicyInviteOnly},
		&JoinChannel{Channel: ids.ID{3}},
		&LeaveChannel{Channel: ids.ID{4}},
		&PostChannel{Channel: ids.ID{5}, Ciphertext: []byte("p")},
		&PublishPrekeys{Signed: &SignedPrekey{ID: 1, ExpiresAt: 1 << 40, KEMPublicKey: b.KEMPublicKey}},
		&PublishPrekeys{OneTime: []OneTimePrekey{{ID: 1, KEMPublicKey: a.KEMPublicKey}, {ID: 5, KEMPublicKey: b.KEMPublicKey}}},
		&PublishPrekeys{Signed: &SignedPrekey{ID: 2, ExpiresAt: 1 << 41, KEMPublicKey: a.KEMPublicKey}, OneTime: []OneTimePrekey{{ID: 6, KEMPublicKey: a.KEMPublicKey}}},
		&PublishPrekeys{RetireThrough: 5},
		&PublishPrekeys{RetireThrough: 6, OneTime: []OneTimePrekey{{ID: 7, KEMPublicKey: a.KEMPublicKey}}},
		&AcceptSession{Session: ids.ID{6}, Decision: DecisionAccept},
		&AcceptSession{Session: ids.ID{6}, Decision: DecisionDecline},
		&SetContact{Peer: bs, Status: ContactTrusted},
		&SetContact{Peer: bs, Status: ContactNone},
		&SetChannelPolicy{Channel: ids.ID{7}, JoinPolicy: PolicyInviteOnly},
		&SetChannelPolicy{Channel: ids.ID{7}, JoinPolicy: PolicyOpen, SlowModeSeconds: 60},
		&ModerateChannel{Channel: ids.ID{8}, Action: ActionBan, Members: []crypto.SessionID{bs, as}},
		&DeletePosts{Channel: ids.ID{9}, Seqs: []uint64{3, 1, 2}},
		&SetRequestPolicy{Policy: RequestsFromContacts},
		&SetRequestPolicy{Policy: RequestsFromAnyone},
	}
	var out []*Tx
	for i, p := range payloads {
		t2, err := Sign(a, chainID, uint64(i), p) // the registration is first: nonce 0
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, t2)
	}
	return out
}

func TestRoundTripAndSignature(t *testing.T) {
	a, b := ids2(t)
	for _, s := range samples(t) {
		p, err := Parse(s.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", s.Type(), err)
		}
		if p.ID() != s.ID() || !bytes.Equal(p.Bytes(), s.Bytes()) || p.Nonce != s.Nonce || p.Type() != s.Type() {
			t.Fatalf("%s: round trip differs", s.Type())
		}
		if err := p.Check(chainID); err != nil {
			t.Fatalf("%s: Check: %v", s.Type(), err)
		}
		pk, _ := crypto.ParseDSAPublicKey(a.DSAPublicKey)
		if !p.VerifySignature(pk) {
			t.Fatalf("%s: signature", s.Type())
		}
		other, _ := crypto.ParseDSAPublicKey(b.DSAPublicKey)
		if p.VerifySignature(other) {
			t.Fatalf("%s: verifies under another key", s.Type())
		}
		if err := p.Check(ids.ID{1}); !errors.Is(err, ErrWrongChainID) {
			t.Fatal("chain ID not checked")
		}
		// Every truncation and one extension are refused.
		raw := s.Bytes()
		for n := 0; n < len(raw); n += 1 + n/8 {
			if _, err := Parse(raw[:n]); err == nil {
				t.Fatalf("%s: truncated to %d accepted", s.Type(), n)
			}
		}
		if _, err := Parse(append(bytes.Clone(raw), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: trailing byte: %v", s.Type(), err)
		}
	}
}

// sampleOf returns the first sample of type typ.
func sampleOf(t testing.TB, typ Type) *Tx {
	for _, s := range samples(t) {
		if s.Type() == typ {
			return s
		}
	}
	t.Fatalf("no sample of %s", typ)
	return nil
}

func TestEveryTypeHasASample(t *testing.T) {
	for _, typ := range Types() {
		sampleOf(t, typ)
		if strings.HasPrefix(typ.String(), "type(") {
			t.Fatalf("type %d has no name", typ)
		}
	}
	if len(Types()) != 15 {
		t.Fatalf("%d types", len(Types()))
	}
}

func TestParseErrors(t *testing.T) {
	good := sampleOf(t, TypeSendMessage).Bytes()
	mut := func(f func(b []byte)) []byte { b := bytes.Clone(good); f(b); return b }
	cases := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"version", mut(func(b []byte) { b[0] = 2 }), ErrUnsupportedVersion},
		{"type 0", mut(func(b []byte) { b[33] = 0 }), ErrUnknownType},
		{"type 99", mut(func(b []byte) { b[33] = 99 }), ErrUnknownType},
		{"ciphertext length huge", mut(func(b []byte) { copy(b[HeaderSize+33:], []byte{0xff, 0xff, 0xff, 0xff}) }), ErrOversize},
		{"claim count 32", mut(func(b []byte) { b[HeaderSize+32] = 32 }), ErrOversize},
		{"too large", make([]byte, config.MaxTxSize+1), ErrOversize},
	}
	for _, tc := range cases {
		if _, err := Parse(tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestIDsAreDistinct(t *testing.T) {
	a, _ := ids2(t)
	s := mustSID(t, a)
	if SessionIDFor(chainID, s, 0) == SessionIDFor(chainID, s, 1) ||
		SessionIDFor(chainID, s, 0) == SessionIDFor(ids.ID{1}, s, 0) ||
		SessionIDFor(chainID, s, 0) == ChannelIDFor(chainID, s, 0) {
		t.Fatal("derived IDs collide")
	}
	if !IsRefusal(ErrReplayedNonce) || !errors.Is(ErrReplayedNonce, ErrBadNonce) || IsRefusal(errors.New("disk")) {
		t.Fatal("IsRefusal")
	}
}

// FuzzParse: no input panics, and every accepted input re-encodes to
// itself through the typed fields. The fuzzer edits a signed sample of
// each type (internal/fuzzedit) instead of mutating kilobytes itself,
// which kept it minimizing a RegisterIdentity for minutes (26 inputs in
// 20 s).
func FuzzParse(f *testing.F) {
	var bases [][]byte
	for _, s := range samples(f) {
		bases = append(bases, s.Bytes())
	}
	for i := range bases {
		f.Add(uint8(i), []byte(nil), int16(0))
		f.Add(uint8(i), []byte(nil), int16(-1))
		f.Add(uint8(i), []byte{1, 0, 0, 2}, int16(0))   // version
		f.Add(uint8(i), []byte{1, 0, 33, 99}, int16(0)) // type
	}
	f.Fuzz(func(t *testing.T, which uint8, edits []byte, resize int16) {
		b := fuzzedit.Apply(fuzzedit.Pick(bases, which), edits, resize)
		p, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(p.Bytes(), b) {
			t.Fatal("bytes differ")
		}
		re := p.Unsigned.Bytes()
		re = append(re, p.Signature...)
		if !bytes.Equal(re, b) {
			t.Fatal("re-encoding differs")
		}
		_ = p.Check(chainID)
	})
}

// Parse copies its input; ParseOwned keeps it. Both give the same
// transaction and the same errors.
func TestParseOwnership(t *testing.T) {
	for _, s := range samples(t) {
		in := bytes.Clone(s.Bytes())
		copied, err := Parse(in)
		if err != nil {
			t.Fatal(err)
		}
		owned, err := ParseOwned(in)
		if err != nil {
			t.Fatal(err)
		}
		if owned.ID() != copied.ID() || !bytes.Equal(owned.Bytes(), copied.Bytes()) {
			t.Fatalf("%s: ParseOwned differs from Parse", s.Type())
		}
		if &owned.Bytes()[0] != &in[0] {
			t.Fatalf("%s: ParseOwned copied its input", s.Type())
		}
		in[len(in)-1] ^= 1
		if !bytes.Equal(copied.Bytes(), s.Bytes()) {
			t.Fatalf("%s: Parse kept its input", s.Type())
		}
		if _, err := ParseOwned(append(bytes.Clone(s.Bytes()), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: ParseOwned trailing byte: %v", s.Type(), err)
		}
		if _, err := ParseOwned(make([]byte, config.MaxTxSize+1)); !errors.Is(err, ErrOversize) {
			t.Fatalf("ParseOwned oversize: %v", err)
		}
	}
}
