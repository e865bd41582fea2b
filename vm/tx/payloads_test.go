package tx

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/luxfi/ids"
	"golang.org/x/crypto/blake2b"

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
		{"33 one-time prekeys", TypePublishPrekeys, cat([]byte{0}, u32(0), []byte{33}), ErrOversize},
		{"no retireThrough", TypePublishPrekeys, []byte{0}, ErrMalformed},
		{"request policy 0", TypeSetRequestPolicy, []byte{0}, ErrInvalidRequestPolicy},
		{"channel policy without slow mode", TypeSetChannelPolicy, cat(session, []byte{1}), ErrMalformed},
		{"32 claims at creation", TypeCreateSession, cat(u32(1), make([]byte, 33), []byte{32}), ErrOversize},
		{"truncated claim", TypeCreateSession, cat(u32(1), make([]byte, 33), []byte{1}, make([]byte, 40)), ErrMalformed},
		{"registration without anchor", TypeRegisterIdentity, cat(key, a.DSAPublicKey, u32(0), u32(1)), ErrMalformed},
		{"no members", TypeModerateChannel, cat(session, []byte{1, 0}), ErrMalformed},
		{"65 members", TypeModerateChannel, cat(session, []byte{1, 65}), ErrOversize},
		{"no posts", TypeDeletePosts, cat(session, []byte{0}), ErrMalformed},
		{"65 posts", TypeDeletePosts, cat(session, []byte{65}), ErrOversize},
		{"32 claims", TypeSendMessage, cat(session, []byte{32}), ErrOversize},
		{"truncated prekey", TypePublishPrekeys, cat([]byte{0}, u32(0), []byte{1}, u32(1), key[:100]), ErrMalformed},
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
	// A registration whose ML-KEM key fails the FIPS 203 check but whose
	// author derives from the keys: checked before any work.
	badKEM := bad
	badAuthor, err := crypto.DeriveSessionID(badKEM, a.DSAPublicKey)
	if err != nil {
		t.Fatal(err)
	}
	cs := mustSID(t, b)
	cs.Digest[0] ^= 1
	cases := []struct {
		name string
		p    Payload
		want error
	}{
		{"claim of an unlisted participant", &CreateSession{Participants: []crypto.SessionID{bs}, Claims: []Claim{{cs, 1, 0}}}, ErrNotParticipant},
		{"two claims of one participant at creation", &CreateSession{Participants: []crypto.SessionID{bs}, Claims: []Claim{{bs, 1, 0}, {bs, 1, 2}}}, ErrDuplicateClaim},
		{"32 claims", &SendMessage{Session: ids.ID{1}, Claims: make([]Claim, 32), Ciphertext: []byte("x")}, ErrOversize},
		{"claim of the author (creation)", &CreateSession{Participants: []crypto.SessionID{bs}, Claims: []Claim{{as, 1, 0}}}, ErrDuplicateParticipant},
		{"claim of the author", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{as, 1, 1}}, Ciphertext: []byte("x")}, ErrDuplicateParticipant},
		{"claim of signed prekey 0", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{bs, 0, 4}}, Ciphertext: []byte("x")}, ErrInvalidPrekeyID},
		{"claim twice", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{bs, 1, 1}, {bs, 1, 2}}, Ciphertext: []byte("x")}, ErrDuplicateClaim},
		{"claim of a legacy ID", &SendMessage{Session: ids.ID{1}, Claims: []Claim{{legacy, 1, 1}}, Ciphertext: []byte("x")}, ErrInvalidSessionID},
		{"registration with an invalid ML-KEM key", &RegisterIdentity{KEMPublicKey: badKEM, DSAPublicKey: a.DSAPublicKey}, ErrInvalidPublicKey},
		{"request policy 3", &SetRequestPolicy{Policy: 3}, ErrInvalidRequestPolicy},
		{"slow mode over a day", &SetChannelPolicy{Channel: ids.ID{1}, SlowModeSeconds: 86401}, ErrInvalidSlowMode},
		{"retire only", &PublishPrekeys{RetireThrough: 0}, ErrNoPrekeys},
		{"one-time prekey retired in the same transaction", &PublishPrekeys{RetireThrough: 4, OneTime: []OneTimePrekey{{ID: 4, KEMPublicKey: a.KEMPublicKey}}}, ErrPrekeyIDOrder},
		{"name with a bidi override", &CreateChannel{Name: "abc\u202edef"}, ErrInvalidChannelName},
		{"name with a zero-width space", &CreateChannel{Name: "a\u200bb"}, ErrInvalidChannelName},
		{"name with a tag character", &CreateChannel{Name: "a\U000E0041"}, ErrInvalidChannelName},
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
		author := as
		if _, reg := tc.p.(*RegisterIdentity); reg {
			author, _ = crypto.ParseSessionID(badAuthor)
		}
		u := Unsigned{ChainID: chainID, Author: author, Payload: tc.p}
		if err := (&Tx{Unsigned: u}).Check(chainID); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// A registration's nonce is 0.
	u := Unsigned{ChainID: chainID, Author: mustSID(t, a), Nonce: 1, Payload: &RegisterIdentity{KEMPublicKey: a.KEMPublicKey, DSAPublicKey: a.DSAPublicKey}}
	if err := (&Tx{Unsigned: u}).Check(chainID); !errors.Is(err, ErrRegistrationNonce) || !errors.Is(err, ErrBadNonce) {
		t.Errorf("registration nonce 1: %v", err)
	}
	// Names that are fine: letters of any script, emoji, spaces.
	for _, name := range []string{"général ✓", "日本語", "a b", "😀", "\u200a"} {
		if !ValidChannelName(name) {
			t.Errorf("%q refused", name)
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
// difficulty are each enforced; the work binds the chain, the author and
// the anchor; extra bits of excess are honoured.
func TestWork(t *testing.T) {
	a, b := ids2(t)
	as, bs := mustSID(t, a), mustSID(t, b)
	p := config.Registration{MemoryKiB: 64, Iterations: 1, PrefilterBits: 6, WorkBits: 3, MaxPerBlock: 16, AnchorWindow: 16}
	seed := WorkSeed(chainID, as, 5, ids.ID{0xab})
	work, stats, err := SolveWork(context.Background(), chainID, seed, p, 0, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckWork(chainID, seed, work, p); err != nil {
		t.Fatalf("solved work: %v", err)
	}
	if stats.Argon2 == 0 || stats.Prefilter < stats.Argon2 {
		t.Fatalf("stats %+v", stats)
	}
	// Another chain, author, anchor height or anchor block: the same work
	// (almost surely) fails; each seed differs.
	others := []struct {
		chain ids.ID
		seed  [32]byte
	}{
		{ids.ID{1}, WorkSeed(ids.ID{1}, as, 5, ids.ID{0xab})},
		{chainID, WorkSeed(chainID, bs, 5, ids.ID{0xab})},
		{chainID, WorkSeed(chainID, as, 6, ids.ID{0xab})},
		{chainID, WorkSeed(chainID, as, 5, ids.ID{0xac})},
	}
	failures := 0
	for _, o := range others {
		if o.seed == seed {
			t.Fatal("the seed ignores an input")
		}
		if err := CheckWork(o.chain, o.seed, work, p); errors.Is(err, ErrInsufficientWork) {
			failures++
		}
	}
	if failures < 2 {
		t.Fatalf("work binds too little: %d of 4 contexts refuse it", failures)
	}
	// Count the values that pass each stage among the first 4096: about
	// 2^-6 pass the pre-filter, 2^-3 of those the Argon2id target.
	pre, full := 0, 0
	for w := uint64(0); w < 4096; w++ {
		h := WorkPre(seed, w)
		if PrefilterPasses(h, p) {
			pre++
			if CheckWork(chainID, seed, w, p) == nil {
				full++
			}
		} else if err := CheckWork(chainID, seed, w, p); !errors.Is(err, ErrInsufficientWork) {
			t.Fatalf("work %d fails the pre-filter but CheckWork says %v", w, err)
		}
	}
	if pre < 30 || pre > 110 || full == 0 || full >= pre/2 {
		t.Fatalf("%d of 4096 pass the pre-filter (want ~64), %d the difficulty (want ~8)", pre, full)
	}
	// Extra excess: the solution has at least that many more bits.
	w2, st2, err := SolveWork(context.Background(), chainID, seed, p, 3, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if x := Excess(WorkPre(seed, w2), p); x < 3 {
		t.Fatalf("asked 3 bits of excess, got %d", x)
	}
	if st2.Prefilter < 8*uint64(1)<<p.PrefilterBits/4 {
		t.Fatalf("3 extra bits took only %d pre-filter evaluations", st2.Prefilter)
	}
	// Excess counts bits beyond the pre-filter, from the most significant
	// bit of byte 0, capped at MaxExcess.
	var h [32]byte
	h[1] = 0x10 // 8 + 3 = 11 leading zero bits
	if Excess(h, p) != 5 || Excess([32]byte{}, p) != MaxExcess || Excess([32]byte{0x80}, p) != 0 {
		t.Fatalf("excess %d %d %d", Excess(h, p), Excess([32]byte{}, p), Excess([32]byte{0x80}, p))
	}
	// Minimal work: every value passes.
	if err := CheckWork(chainID, seed, 12345, config.MinimalRegistration()); err != nil {
		t.Fatal(err)
	}
	// A cancelled context stops the solver.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hard := p
	hard.WorkBits = 30
	if _, _, err := SolveWork(ctx, chainID, seed, hard, 0, 0, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled solve: %v", err)
	}
}

// TestWorkVector pins the seed and pre-filter hashes (docs/chain.md
// section 3) for another implementation to check against.
func TestWorkVector(t *testing.T) {
	a, _ := ids2(t)
	seed := WorkSeed(ids.ID{1, 2, 3}, mustSID(t, a), 0x0102030405060708, ids.ID{9, 8, 7})
	// The same hashes, assembled by hand.
	in := []byte("luxfi/session/v1/register/seed")
	in = append(in, (&ids.ID{1, 2, 3})[:]...)
	as := mustSID(t, a)
	in = append(in, as.Prefix)
	in = append(in, as.Digest[:]...)
	in = append(in, 1, 2, 3, 4, 5, 6, 7, 8)
	in = append(in, (&ids.ID{9, 8, 7})[:]...)
	if seed != blake2b.Sum256(in) {
		t.Fatal("seed is not BLAKE2b-256 of label | chainID | author | anchorHeight | anchorID")
	}
	pre := WorkPre(seed, 0x1122334455667788)
	if pre != blake2b.Sum256(append(seed[:], 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88)) {
		t.Fatal("pre is not BLAKE2b-256 of seed | work")
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
	seed := WorkSeed(chainID, as, 1, ids.ID{1})
	var pre [32]byte
	var blakeNs, argonNs float64
	b.Run("BLAKE2b-prefilter", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			pre = WorkPre(seed, uint64(i))
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
