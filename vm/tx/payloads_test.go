package tx

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state/codec"
)

// TestPayloadParseErrors: the new payloads refuse non-canonical and
// out-of-range encodings while decoding.
func TestPayloadParseErrors(t *testing.T) {
	a, _ := ids2(t)
	// encode builds a signed-looking transaction with a raw payload.
	encode := func(typ Type, payload []byte) []byte {
		w := codec.NewWriter(0)
		w.U8(Version)
		w.Fixed(chainID[:])
		w.U8(uint8(typ))
		w.SessionID(mustSID(t, a))
		w.U64(0)
		w.Fixed(payload)
		w.Fixed(make([]byte, crypto.SignatureSize))
		return w.B
	}
	key := a.KEMPublicKey
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	u32 := func(v uint32) []byte { w := codec.NewWriter(4); w.U32(v); return w.B }
	session := make([]byte, 32)
	cases := []struct {
		name    string
		typ     Type
		payload []byte
		want    error
	}{
		{"join policy 0", TypeCreateChannel, cat(u32(1), []byte("n"), []byte{0}), ErrInvalidJoinPolicy},
		{"channel policy 0", TypeSetChannelPolicy, cat(session, []byte{0}), ErrInvalidJoinPolicy},
		{"decision 0", TypeAcceptSession, cat(session, []byte{0}), ErrInvalidDecision},
		{"hasSigned 2", TypePublishPrekeys, []byte{2, 0}, ErrMalformed},
		{"33 one-time prekeys", TypePublishPrekeys, []byte{0, 33}, ErrOversize},
		{"no members", TypeModerateChannel, cat(session, []byte{1, 0}), ErrMalformed},
		{"65 members", TypeModerateChannel, cat(session, []byte{1, 65}), ErrOversize},
		{"no posts", TypeDeletePosts, cat(session, []byte{0}), ErrMalformed},
		{"65 posts", TypeDeletePosts, cat(session, []byte{65}), ErrOversize},
		{"32 claims", TypeSendMessage, cat(session, []byte{32}), ErrOversize},
		{"truncated prekey", TypePublishPrekeys, cat([]byte{0, 1}, u32(1), key[:100]), ErrMalformed},
	}
	for _, tc := range cases {
		if _, err := Parse(encode(tc.typ, tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestPayloadChecks: every stateless rule of the new payloads, each with
// its sentinel.
func TestPayloadChecks(t *testing.T) {
	a, b := ids2(t)
	as, bs := mustSID(t, a), mustSID(t, b)
	legacy := bs
	legacy.Prefix = 0x05
	bad := bytes.Clone(a.KEMPublicKey)
	bad[0], bad[1] = 0xff, 0xff // a coefficient ≥ q
	cases := []struct {
		name string
		p    Payload
		want error
	}{
		{"claims not one per participant", &CreateSession{Participants: []crypto.SessionID{bs}, Claims: []uint32{1, 2}}, ErrClaimCount},
		{"claim of the author", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{as, 1}}, Ciphertext: []byte("x")}, ErrDuplicateParticipant},
		{"claim of prekey 0", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{bs, 0}}, Ciphertext: []byte("x")}, ErrInvalidPrekeyID},
		{"claim twice", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{bs, 1}, {bs, 2}}, Ciphertext: []byte("x")}, ErrDuplicateClaim},
		{"claim of a legacy ID", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{legacy, 1}}, Ciphertext: []byte("x")}, ErrInvalidSessionID},
		{"join policy 3", &CreateChannel{Name: "n", JoinPolicy: 3}, ErrInvalidJoinPolicy},
		{"no prekeys", &PublishPrekeys{}, ErrNoPrekeys},
		{"signed prekey ID 0", &PublishPrekeys{Signed: &SignedPrekey{ID: 0, ExpiresAt: 1, KEMPublicKey: a.KEMPublicKey}}, ErrInvalidPrekeyID},
		{"signed prekey not a key", &PublishPrekeys{Signed: &SignedPrekey{ID: 1, ExpiresAt: 1, KEMPublicKey: bad}}, ErrInvalidPrekey},
		{"one-time prekey not a key", &PublishPrekeys{OneTime: []OneTimePrekey{{ID: 1, KEMPublicKey: bad}}}, ErrInvalidPrekey},
		{"one-time prekey ID 0", &PublishPrekeys{OneTime: []OneTimePrekey{{ID: 0, KEMPublicKey: a.KEMPublicKey}}}, ErrInvalidPrekeyID},
		{"one-time IDs not increasing", &PublishPrekeys{OneTime: []OneTimePrekey{{ID: 2, KEMPublicKey: a.KEMPublicKey}, {ID: 2, KEMPublicKey: a.KEMPublicKey}}}, ErrPrekeyIDOrder},
		{"too many one-time prekeys", &PublishPrekeys{OneTime: make([]OneTimePrekey, config.MaxPrekeysPerTx+1)}, ErrTooManyPrekeys},
		{"decision 3", &AcceptSession{Session: ids.ID{1}, Decision: 3}, ErrInvalidDecision},
		{"contact with oneself", &SetContact{Peer: as, Status: ContactTrusted}, ErrSelfContact},
		{"contact status 3", &SetContact{Peer: bs, Status: 3}, ErrInvalidContactStatus},
		{"legacy contact", &SetContact{Peer: legacy, Status: ContactBlocked}, ErrInvalidSessionID},
		{"policy 7", &SetChannelPolicy{Channel: ids.ID{1}, JoinPolicy: 7}, ErrInvalidJoinPolicy},
		{"action 0", &ModerateChannel{Channel: ids.ID{1}, Action: 0, Members: []crypto.SessionID{bs}}, ErrInvalidModerationAction},
		{"action 8", &ModerateChannel{Channel: ids.ID{1}, Action: 8, Members: []crypto.SessionID{bs}}, ErrInvalidModerationAction},
		{"member twice", &ModerateChannel{Channel: ids.ID{1}, Action: ActionBan, Members: []crypto.SessionID{bs, bs}}, ErrDuplicateItem},
		{"no member", &ModerateChannel{Channel: ids.ID{1}, Action: ActionBan}, ErrMalformed},
		{"post 0", &DeletePosts{Channel: ids.ID{1}, Seqs: []uint64{0}}, ErrUnknownPost},
		{"post twice", &DeletePosts{Channel: ids.ID{1}, Seqs: []uint64{4, 4}}, ErrDuplicateItem},
	}
	for _, tc := range cases {
		u := Unsigned{ChainID: chainID, Author: as, Payload: tc.p}
		if err := (&Tx{Unsigned: u}).Check(chainID); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The zero policy and decision encode as open and accept.
	for _, p := range []Payload{&CreateChannel{Name: "n"}, &SetChannelPolicy{}, &AcceptSession{}} {
		s, err := Sign(a, chainID, 0, p)
		if err != nil {
			t.Fatal(err)
		}
		back, err := Parse(s.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", p.Type(), err)
		}
		switch q := back.Payload.(type) {
		case *CreateChannel:
			if q.JoinPolicy != PolicyOpen {
				t.Fatal("zero policy")
			}
		case *SetChannelPolicy:
			if q.JoinPolicy != PolicyOpen {
				t.Fatal("zero policy")
			}
		case *AcceptSession:
			if q.Decision != DecisionAccept {
				t.Fatal("zero decision")
			}
		}
	}
}

// TestWork: a solved work value verifies; the pre-filter and the Argon2id
// difficulty are each enforced; the work binds the chain and the author.
func TestWork(t *testing.T) {
	a, b := ids2(t)
	as, bs := mustSID(t, a), mustSID(t, b)
	p := config.Registration{MemoryKiB: 64, Iterations: 1, PrefilterBits: 6, WorkBits: 3, MaxPerBlock: 16}
	work, stats, err := SolveWork(context.Background(), chainID, as, p, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckWork(chainID, as, work, p); err != nil {
		t.Fatalf("solved work: %v", err)
	}
	if stats.Argon2 == 0 || stats.Prefilter < stats.Argon2 {
		t.Fatalf("stats %+v", stats)
	}
	// Another chain, another author: the same work (almost surely) fails.
	failures := 0
	for _, c := range []struct {
		chain  ids.ID
		author crypto.SessionID
	}{{ids.ID{1}, as}, {chainID, bs}} {
		if err := CheckWork(c.chain, c.author, work, p); errors.Is(err, ErrInsufficientWork) {
			failures++
		}
	}
	if failures == 0 {
		t.Fatal("work does not bind the chain or the author")
	}
	// Count the values that pass each stage among the first 4096: about
	// 2^-6 pass the pre-filter, 2^-3 of those the Argon2id target.
	pre, full := 0, 0
	for w := uint64(0); w < 4096; w++ {
		if _, ok := WorkPrefilter(chainID, as, w, p); ok {
			pre++
			if CheckWork(chainID, as, w, p) == nil {
				full++
			}
		} else if err := CheckWork(chainID, as, w, p); !errors.Is(err, ErrInsufficientWork) {
			t.Fatalf("work %d fails the pre-filter but CheckWork says %v", w, err)
		}
	}
	if pre < 30 || pre > 110 || full == 0 || full >= pre/2 {
		t.Fatalf("%d of 4096 pass the pre-filter (want ~64), %d the difficulty (want ~8)", pre, full)
	}
	// Minimal work: every value passes.
	if err := CheckWork(chainID, as, 12345, config.MinimalRegistration()); err != nil {
		t.Fatal(err)
	}
	// A cancelled context stops the solver.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hard := p
	hard.WorkBits = 30
	if _, _, err := SolveWork(ctx, chainID, as, hard, 0, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled solve: %v", err)
	}
}

// BenchmarkRegistrationWork measures the two primitives of the proof of
// work at the default parameters and reports the expected cost of one
// registration, 2^workBits × (Argon2id + 2^prefilterBits × BLAKE2b), and
// of verifying one (one Argon2id). Run both sub-benchmarks:
//
//	go test ./vm/tx -run XXX -bench RegistrationWork
func BenchmarkRegistrationWork(b *testing.B) {
	a, _ := ids2(b)
	as := mustSID(b, a)
	p := config.DefaultRegistration()
	var pre [32]byte
	var blakeNs, argonNs float64
	b.Run("BLAKE2b-prefilter", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pre, _ = WorkPrefilter(chainID, as, uint64(i), p)
		}
		blakeNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	})
	b.Run("Argon2id", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pre[0] = byte(i)
			workArgon2(chainID, pre, p)
		}
		argonNs = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		perCandidate := argonNs + float64(uint64(1)<<p.PrefilterBits)*blakeNs
		b.ReportMetric(float64(uint64(1)<<p.WorkBits)*perCandidate/1e9, "s/registration")
		b.ReportMetric(float64(uint64(1)<<p.PrefilterBits)*blakeNs/argonNs, "prefilter/argon2")
	})
}

// FuzzPayload decodes a payload of any type on its own (no header, no
// signature: small inputs keep the fuzzer fast), and checks that every
// accepted payload re-encodes to itself and that the stateless checks
// never panic.
func FuzzPayload(f *testing.F) {
	for _, s := range samples(f) {
		w := codec.NewWriter(0)
		s.Payload.encode(w)
		f.Add(uint8(s.Type()), w.B)
	}
	a, _ := ids2(f)
	author := mustSID(f, a)
	f.Fuzz(func(t *testing.T, typ uint8, b []byte) {
		p := newPayload(Type(typ))
		if p == nil {
			return
		}
		r := codec.NewReader(b)
		p.decode(r)
		if r.Done() != nil {
			return
		}
		w := codec.NewWriter(len(b))
		p.encode(w)
		if !bytes.Equal(w.B, b) {
			t.Fatalf("%s: re-encoding differs", p.Type())
		}
		_ = p.check(author)
	})
}
