package benchmarks

// The messaging protocol (package chat, docs/protocol.md) beside the raw
// primitives it performs, in the same run (issue 8, section 5):
//
//	BenchmarkChatMessage/symmetric/send        a message with no asymmetric step
//	BenchmarkChatMessage/symmetric/raw         one ML-DSA-65 sign + the AEADs + the BLAKE2b derivations it does
//	BenchmarkChatMessage/symmetric/paired/send the send and the raw send alternating in one loop (x-raw)
//	BenchmarkChatMessage/symmetric/open        opening it
//	BenchmarkChatMessage/symmetric/open/raw    one verify + the AEADs + the derivations
//	BenchmarkChatMessage/step/send+open        a message with a ratchet step, sent and opened (ping-pong)
//	BenchmarkChatMessage/step/send             the send alone (the peer's open and the confirm untimed)
//	BenchmarkChatMessage/step/raw              ML-KEM keygen + parse + encaps + decaps + ML-DSA sign + verify + AEADs + derivations
//	BenchmarkChatMessage/step/raw/no-verify    the same without the verify (the list)
//	BenchmarkChatMessage/step/send/raw         the send's part: keygen + parse + encaps + sign + AEADs + derivations
//	BenchmarkChatMessage/step/paired/send      step/send and step/send/raw alternating in one loop: x-raw is their CPU ratio
//	BenchmarkChatMessage/step/paired/send+open the send and the peer's open against step/raw, alternating
//	BenchmarkChatGroup32/symmetric             a message to a 32-participant session, no steps
//	BenchmarkChatGroup32/all-steps             the same when every pair steps
//	BenchmarkChatGroup32/seal                  crypto.Seal to the same 31 recipients
//
// The chat benchmarks use an in-memory store (chat.MemoryStore's contract),
// so they include serialising and committing the state but no disk. Between
// rounds that would otherwise change what is measured (a chain filling up
// and stepping), the state is restored from a snapshot with the timers
// stopped. Every sub-benchmark also reports cpu-ns/op, the process's CPU
// time per operation (garbage collection included): on a shared machine it
// moves much less with other processes' load than ns/op, so compare those.

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
)

// snapStore is a chat.Store in memory that can be copied, to restore a
// conversation to a snapshot between rounds.
type snapStore struct {
	mu      sync.Mutex
	device  []byte
	conv    map[[32]byte][]byte
	outbox  map[[32]byte]map[[16]byte][]byte
	archive map[[32]byte]map[[16]byte][]byte
}

func newSnapStore() *snapStore {
	return &snapStore{conv: map[[32]byte][]byte{}, outbox: map[[32]byte]map[[16]byte][]byte{}, archive: map[[32]byte]map[[16]byte][]byte{}}
}

func (s *snapStore) copy() *snapStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newSnapStore()
	c.device = s.device
	for k, v := range s.conv {
		c.conv[k] = v
	}
	for k, m := range s.outbox {
		c.outbox[k] = map[[16]byte][]byte{}
		for id, v := range m {
			c.outbox[k][id] = v
		}
	}
	for k, m := range s.archive {
		c.archive[k] = map[[16]byte][]byte{}
		for id, v := range m {
			c.archive[k][id] = v
		}
	}
	return c
}

func (s *snapStore) LoadDevice() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.device == nil {
		return nil, chat.ErrNotFound
	}
	return s.device, nil
}

func (s *snapStore) LoadConversation(id [32]byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.conv[id]
	if !ok {
		return nil, chat.ErrNotFound
	}
	return b, nil
}

func (s *snapStore) LoadOutbox(id [32]byte) ([]chat.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.Record
	for k, v := range s.outbox[id] {
		out = append(out, chat.Record{ID: k, Data: v})
	}
	return out, nil
}

func (s *snapStore) LoadOutboxRecord(id [32]byte, m chat.EnvelopeID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.outbox[id][[16]byte(m)]
	if !ok {
		return nil, chat.ErrNotFound
	}
	return b, nil
}

func (s *snapStore) LoadArchive(id [32]byte) ([]chat.Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []chat.Record
	for k, v := range s.archive[id] {
		out = append(out, chat.Record{ID: k, Data: v})
	}
	return out, nil
}

func (s *snapStore) LoadArchiveRecord(id [32]byte, m chat.MessageID) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.archive[id][[16]byte(m)]
	if !ok {
		return nil, chat.ErrNotFound
	}
	return b, nil
}

func (s *snapStore) Commit(b *chat.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b.Device != nil {
		s.device = append([]byte(nil), b.Device...)
	}
	for _, c := range b.Conversations {
		if c.Data == nil {
			delete(s.conv, c.Session)
			continue
		}
		s.conv[c.Session] = append([]byte(nil), c.Data...)
	}
	put := func(m map[[32]byte]map[[16]byte][]byte, ws []chat.RecordWrite) {
		for _, w := range ws {
			if m[w.Session] == nil {
				m[w.Session] = map[[16]byte][]byte{}
			}
			if w.Data == nil {
				delete(m[w.Session], w.ID)
			} else {
				m[w.Session][w.ID] = append([]byte(nil), w.Data...)
			}
		}
	}
	put(s.outbox, b.Outbox)
	put(s.archive, b.Archive)
	return nil
}

var _ chat.Store = (*snapStore)(nil)

// chatParty is one participant: identity, store, device, conversation.
type chatParty struct {
	id    *crypto.Identity
	sid   crypto.SessionID
	store *snapStore
	dev   *chat.Device
	conv  *chat.Conversation
}

// chatSession is n participants of one session with a directory of their
// prekeys and a simulated chain (positions).
type chatSession struct {
	b       *testing.B
	chainID [32]byte
	session *chat.Session
	parties []*chatParty
	bundles map[crypto.SessionID]*chat.PrekeyBundle
	pos     uint64
	now     time.Time
}

func (s *chatSession) PrekeyBundle(p crypto.SessionID) (*chat.PrekeyBundle, error) {
	b := s.bundles[p]
	if b == nil {
		return nil, fmt.Errorf("no bundle")
	}
	return b, nil // the signed prekey only: one-time prekeys are for the creator's claims
}

func newChatSession(b *testing.B, n int) *chatSession {
	b.Helper()
	s := &chatSession{b: b, chainID: sha256.Sum256([]byte("bench chain")), bundles: map[crypto.SessionID]*chat.PrekeyBundle{},
		now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.session = &chat.Session{ChainID: s.chainID, ID: sha256.Sum256([]byte("bench session"))}
	var bundles []*chat.PrekeyBundle
	for i := range n {
		p := &chatParty{id: mustIdentity(b), store: newSnapStore()}
		p.sid, _ = crypto.ParseSessionID(p.id.SessionID)
		var err error
		if p.dev, err = chat.NewDevice(p.id, s.chainID, p.store); err != nil {
			b.Fatal(err)
		}
		up, err := p.dev.GeneratePrekeys(s.now, true, 1)
		if err != nil {
			b.Fatal(err)
		}
		bundle := &chat.PrekeyBundle{Identity: p.id.PublicIdentity(), SignedPrekey: *up.SignedPrekey}
		s.bundles[p.sid] = bundle
		if i > 0 {
			bundles = append(bundles, &chat.PrekeyBundle{Identity: bundle.Identity, SignedPrekey: bundle.SignedPrekey, OneTimePrekey: &up.OneTimePrekeys[0]})
		}
		s.session.Participants = append(s.session.Participants, p.id.PublicIdentity())
		s.parties = append(s.parties, p)
	}
	var err error
	if s.session.Claims, err = chat.ClaimsOf(bundles); err != nil {
		b.Fatal(err)
	}
	if s.parties[0].conv, err = s.parties[0].dev.CreateConversation(s.now, s.session, bundles); err != nil {
		b.Fatal(err)
	}
	for _, p := range s.parties[1:] {
		if p.conv, err = p.dev.Conversation(s.session); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// send has party i send pt; every other party in to opens it (nil: all),
// and the sender confirms it.
func (s *chatSession) send(i int, pt []byte, to []int) []chat.Outgoing {
	outs, err := s.parties[i].conv.Send(s.now, pt, s)
	if err != nil {
		s.b.Fatal(err)
	}
	for _, o := range outs {
		s.deliver(i, o, to)
	}
	return outs
}

func (s *chatSession) deliver(i int, o chat.Outgoing, to []int) {
	s.pos++
	if to == nil {
		for j := range s.parties {
			to = append(to, j)
		}
	}
	for _, j := range to {
		if j == i {
			continue
		}
		d := &chat.Delivery{Envelope: o.Envelope, Position: s.pos, Sender: s.parties[i].sid, Claims: o.Claims}
		if _, err := s.parties[j].conv.Open(s.now, d); err != nil && err != chat.ErrNotAddressed {
			s.b.Fatalf("participant %d opens from %d: %v", j, i, err)
		}
	}
	if err := s.parties[i].conv.Confirm(o.ID, s.pos); err != nil {
		s.b.Fatal(err)
	}
}

// restore rebuilds party i's device and conversation on a copy of snap.
func (s *chatSession) restore(i int, snap *snapStore) {
	p := s.parties[i]
	p.store = snap.copy()
	var err error
	if p.dev, err = chat.NewDevice(p.id, s.chainID, p.store); err != nil {
		s.b.Fatal(err)
	}
	if p.conv, err = p.dev.Conversation(s.session); err != nil {
		s.b.Fatal(err)
	}
}

// chatKDF is what the raw baselines do for the protocol's BLAKE2b-512
// derivations: one hash over a short input.
func chatKDF(in []byte) [64]byte { return blake2b.Sum512(in) }

func BenchmarkChatMessage(b *testing.B) {
	pt := testData(msgSize)
	s := newChatSession(b, 2)
	// Establish the pair: Alice's handshake, Bob's step, Alice's step.
	s.send(0, pt, nil)
	s.send(1, pt, nil)
	s.send(0, pt, nil) // Alice now has a chain with room for 48 more messages
	aliceSnap, bobSnap := s.parties[0].store.copy(), s.parties[1].store.copy()
	const batch = 40 // continues before the chain would fill and step

	b.Run("symmetric/send", func(b *testing.B) {
		b.ReportAllocs()
		s.restore(0, aliceSnap)
		cpu := startCPU(b)
		defer cpu.report()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%batch == 0 {
				cpu.pause()
				s.restore(0, aliceSnap)
				cpu.resume()
			}
			outs, err := s.parties[0].conv.Send(s.now, pt, s)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.parties[0].conv.Confirm(outs[0].ID, uint64(1000+i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("symmetric/open", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		s.restore(0, aliceSnap)
		var envs []*chat.Delivery
		for i := range batch {
			outs, err := s.parties[0].conv.Send(s.now, pt, s)
			if err != nil {
				b.Fatal(err)
			}
			envs = append(envs, &chat.Delivery{Envelope: outs[0].Envelope, Position: uint64(1000 + i), Sender: s.parties[0].sid})
		}
		s.restore(1, bobSnap)
		b.ResetTimer()
		cpu.total, cpu.started = 0, processCPU()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%batch == 0 {
				cpu.pause()
				s.restore(1, bobSnap)
				cpu.resume()
			}
			if _, err := s.parties[1].conv.Open(s.now, envs[i%batch]); err != nil {
				b.Fatal(err)
			}
		}
	})

	raw := parseRaw(b, s.parties[0].id)
	peer := parseRaw(b, s.parties[1].id)
	body := make([]byte, 1+8+16+16+mldsa65.SignatureSize+len(pt))
	var ck, mk [32]byte
	rand.Read(ck[:])
	header := testData(22 + 73)
	symSig := make([]byte, mldsa65.SignatureSize)
	// rawSymSend is what a message without a step does: the message key,
	// the wrap key, the header hash and the transcript (BLAKE2b), the
	// sign, the wrap and the body AEAD.
	rawSymSend := func(b *testing.B) {
		k := chatKDF(mk[:])
		w := chatKDF(k[:])
		hh := chatKDF(header)
		m := chatKDF(append(hh[:], pt...))
		if err := mldsa65.SignTo(raw.dsaSK, m[:], []byte("luxfi/session/v1/chat"), true, symSig); err != nil {
			b.Fatal(err)
		}
		wa, _ := chacha20poly1305.New(w[:32])
		wa.Seal(nil, make([]byte, 12), ck[:], header[23:])
		ba, _ := chacha20poly1305.NewX(ck[:])
		copy(body[9:], symSig)
		ba.Seal(nil, make([]byte, 24), body, hh[:32])
	}
	b.Run("symmetric/raw", func(b *testing.B) {
		// Per message: the message key, the wrap key, the header hash and
		// the transcript (BLAKE2b), the sign, the wrap and the body AEAD.
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			rawSymSend(b)
		}
	})
	// Paired (see step/paired below): Alice's send and the raw send
	// alternate in one loop; her chain is restored every batch messages
	// and each envelope confirmed, untimed.
	b.Run("symmetric/paired/send", func(b *testing.B) {
		s.restore(0, aliceSnap)
		var chatCPU, rawCPU time.Duration
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%batch == 0 {
				b.StopTimer()
				s.restore(0, aliceSnap)
				b.StartTimer()
			}
			var outs []chat.Outgoing
			var err error
			t0 := processCPU()
			if i%2 == 0 {
				outs, err = s.parties[0].conv.Send(s.now, pt, s)
				t1 := processCPU()
				rawSymSend(b)
				t2 := processCPU()
				chatCPU, rawCPU = chatCPU+t1-t0, rawCPU+t2-t1
			} else {
				rawSymSend(b)
				t1 := processCPU()
				outs, err = s.parties[0].conv.Send(s.now, pt, s)
				t2 := processCPU()
				rawCPU, chatCPU = rawCPU+t1-t0, chatCPU+t2-t1
			}
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if len(outs) != 1 || len(outs[0].Envelope) != 22+73+3366+len(pt) {
				b.Fatalf("not a symmetric message: %d envelopes", len(outs))
			}
			if err := s.parties[0].conv.Confirm(outs[0].ID, uint64(1000+i)); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(chatCPU.Nanoseconds())/float64(b.N), "chat-cpu-ns/op")
		b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(b.N), "raw-cpu-ns/op")
		b.ReportMetric(float64(chatCPU)/float64(rawCPU), "x-raw")
	})
	sig := make([]byte, mldsa65.SignatureSize)
	m := chatKDF(header)
	mldsa65.SignTo(raw.dsaSK, m[:], []byte("luxfi/session/v1/chat"), true, sig)
	ba, _ := chacha20poly1305.NewX(ck[:])
	sealed := ba.Seal(nil, make([]byte, 24), body, m[:32])
	w := chatKDF(mk[:])
	wa, _ := chacha20poly1305.New(w[:32])
	wrapped := wa.Seal(nil, make([]byte, 12), ck[:], header[23:])
	b.Run("symmetric/open/raw", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			k := chatKDF(mk[:])
			w := chatKDF(mk[:])
			_ = k
			hh := chatKDF(header)
			wa, _ := chacha20poly1305.New(w[:32])
			if _, err := wa.Open(nil, make([]byte, 12), wrapped, header[23:]); err != nil {
				b.Fatal(err)
			}
			ba, _ := chacha20poly1305.NewX(ck[:])
			if _, err := ba.Open(nil, make([]byte, 24), sealed, m[:32]); err != nil {
				b.Fatal(err)
			}
			tr := chatKDF(append(hh[:], pt...))
			_ = tr
			if !mldsa65.Verify(raw.dsaPK, m[:], []byte("luxfi/session/v1/chat"), sig) {
				b.Fatal("verify")
			}
		}
	})

	// A ratchet step in every message: Alice and Bob alternate, so each
	// message starts a chain (fresh ML-KEM-768 key pair, encapsulation to
	// the peer's newest ratchet key, its decapsulation, sign, verify).
	b.Run("step/send+open", func(b *testing.B) {
		b.ReportAllocs()
		s.restore(0, aliceSnap)
		s.restore(1, bobSnap)
		cpu := startCPU(b)
		defer cpu.report()
		for i := 0; i < b.N; i++ {
			s.send(i%2, pt, nil)
		}
	})
	// The send alone (issue 8's target): the same ping-pong, with the
	// timers stopped while the peer opens and the sender confirms.
	b.Run("step/send", func(b *testing.B) {
		b.ReportAllocs()
		s.restore(0, aliceSnap)
		s.restore(1, bobSnap)
		s.send(0, pt, nil) // Alice's chain steps; Bob's next send steps
		cpu := startCPU(b)
		defer cpu.report()
		for i := 0; i < b.N; i++ {
			from := 1 - i%2
			outs, err := s.parties[from].conv.Send(s.now, pt, s)
			if err != nil {
				b.Fatal(err)
			}
			cpu.pause()
			if len(outs) != 1 || len(outs[0].Envelope) != stepEnvelopeSize(len(pt)) {
				b.Fatalf("not a step message: %d envelopes", len(outs))
			}
			s.deliver(from, outs[0], nil)
			cpu.resume()
		}
	})
	r := newRawStep(b, raw, pt)
	b.Run("step/raw", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			r.send(b)
			r.open(b, true)
		}
	})
	b.Run("step/raw/no-verify", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			r.send(b)
			r.open(b, false)
		}
	})
	b.Run("step/send/raw", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			r.send(b)
		}
	})
	// Paired: the chat operation and its raw primitives alternate within
	// each iteration (in alternating order), each timed by the process CPU
	// clock, so that load from other processes, which comes and goes over
	// seconds on a shared machine, weighs on both alike. x-raw is the
	// ratio of the two sums. The send+open variant times the send and the
	// peer's open (the sender's Confirm, bookkeeping on another event, is
	// left out); the raw side verifies.
	paired := func(open bool) func(b *testing.B) {
		return func(b *testing.B) {
			s.restore(0, aliceSnap)
			s.restore(1, bobSnap)
			s.send(0, pt, nil) // from here on every message steps
			var chatCPU, rawCPU time.Duration
			chatOp := func(from int) chat.Outgoing {
				outs, err := s.parties[from].conv.Send(s.now, pt, s)
				if err != nil {
					b.Fatal(err)
				}
				if len(outs) != 1 || len(outs[0].Envelope) != stepEnvelopeSize(len(pt)) {
					b.Fatalf("not a step message: %d envelopes", len(outs))
				}
				if open {
					s.pos++
					d := &chat.Delivery{Envelope: outs[0].Envelope, Position: s.pos, Sender: s.parties[from].sid, Claims: outs[0].Claims}
					if _, err := s.parties[1-from].conv.Open(s.now, d); err != nil {
						b.Fatal(err)
					}
				}
				return outs[0]
			}
			rawOp := func() {
				r.send(b)
				if open {
					r.open(b, true)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				from := 1 - i%2
				var o chat.Outgoing
				t0 := processCPU()
				if i%4 < 2 {
					o = chatOp(from)
					t1 := processCPU()
					rawOp()
					t2 := processCPU()
					chatCPU, rawCPU = chatCPU+t1-t0, rawCPU+t2-t1
				} else {
					rawOp()
					t1 := processCPU()
					o = chatOp(from)
					t2 := processCPU()
					rawCPU, chatCPU = rawCPU+t1-t0, chatCPU+t2-t1
				}
				b.StopTimer()
				if open {
					if err := s.parties[from].conv.Confirm(o.ID, s.pos); err != nil {
						b.Fatal(err)
					}
				} else {
					s.deliver(from, o, nil)
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(chatCPU.Nanoseconds())/float64(b.N), "chat-cpu-ns/op")
			b.ReportMetric(float64(rawCPU.Nanoseconds())/float64(b.N), "raw-cpu-ns/op")
			b.ReportMetric(float64(chatCPU)/float64(rawCPU), "x-raw")
		}
	}
	b.Run("step/paired/send", paired(false))
	b.Run("step/paired/send+open", paired(true))
	_ = peer
}

// stepEnvelopeSize is the size of a two-party message with a step stanza:
// fixed header, ratchet key, the stanza, the body.
func stepEnvelopeSize(pt int) int { return 22 + 1184 + 1169 + 3366 + pt }

// rawStep is the raw primitives of a two-party message that performs a
// ratchet step (docs/protocol.md, sections 5 and 7), in circl and x/crypto
// calls written inline, buffers allocated once: what the protocol cannot
// avoid doing. The derivations are BLAKE2b-512 over the same lp-encoded
// inputs the protocol hashes, at their real sizes (the 2375-byte header,
// the 1184-byte ratchet key, the 1088-byte ciphertext, the plaintext).
type rawStep struct {
	dsaSK *mldsa65.PrivateKey
	dsaPK *mldsa65.PublicKey
	pt    []byte
	// The peer's newest ratchet key arrives as bytes (it is fresh, so it
	// is parsed before the encapsulation, as any receiver of it must);
	// peerSK decapsulates on the open side.
	peerPK []byte
	peerSK *mlkem768.PrivateKey
	// Working buffers and the sent message, kept for the open side.
	seed, m, rnd, nonce, mid []byte
	ek, ct, ss               []byte
	header, prefix, body     []byte
	wrapped, sealed, sig     []byte
	ckOut, bodyOut           []byte
	kdf                      []byte
	hh                       [64]byte
	ck                       [64]byte
}

func newRawStep(b *testing.B, keys rawKeys, pt []byte) *rawStep {
	_, peerSK, err := mlkem768.GenerateKeyPair(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawStep{
		dsaSK: keys.dsaSK, dsaPK: keys.dsaPK, pt: pt, peerSK: peerSK,
		peerPK: make([]byte, mlkem768.PublicKeySize),
		seed:   make([]byte, mlkem768.KeySeedSize), m: make([]byte, 32), rnd: make([]byte, 32),
		nonce: make([]byte, 16), mid: make([]byte, 16),
		ek: make([]byte, mlkem768.PublicKeySize), ct: make([]byte, mlkem768.CiphertextSize),
		ss:     make([]byte, mlkem768.SharedKeySize),
		header: make([]byte, 22+1184+1169), prefix: make([]byte, 1169-48),
		body: make([]byte, 1+8+16+16+mldsa65.SignatureSize+len(pt)),
		sig:  make([]byte, mldsa65.SignatureSize), kdf: make([]byte, 0, 4096),
		ckOut: make([]byte, 0, 32),
	}
	peerSK.Public().(*mlkem768.PublicKey).Pack(r.peerPK)
	return r
}

// h is the protocol's H: BLAKE2b-512 over lp(label) || lp(part)...
func (r *rawStep) h(parts ...[]byte) [64]byte {
	buf := r.kdf[:0]
	for _, p := range parts {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(p)))
		buf = append(buf, p...)
	}
	r.kdf = buf
	return blake2b.Sum512(buf)
}

var (
	rawLabel = []byte("luxfi/session/v1/chat/step-context") // labels are 34 to 44 bytes
	rawID    = make([]byte, 33)
	rawU32   = make([]byte, 4)
	rawU64   = make([]byte, 8)
	rawByte  = make([]byte, 1)
	rawNonce [24]byte
)

// send: the randomness, a key generation (with its encoded public key), the
// parse of the peer's ratchet key, an encapsulation, the twelve
// derivations of a step send, the signature, the stanza's wrap and the body
// AEAD.
func (r *rawStep) send(b *testing.B) {
	rand.Read(r.nonce)
	rand.Read(r.rnd)
	rand.Read(r.mid)
	rand.Read(r.seed)
	pk, _ := mlkem768.NewKeyFromSeed(r.seed)
	pk.Pack(r.ek)
	rand.Read(r.m)
	var peer mlkem768.PublicKey
	if err := peer.Unpack(r.peerPK); err != nil {
		b.Fatal(err)
	}
	peer.EncapsulateTo(r.ct, r.ss, r.m)
	r.ck = r.h(rawLabel, r.rnd, rawByte, rawU64, r.mid, r.pt)                           // content key
	r.h(rawLabel, rawID, r.mid)                                                         // message ID
	ekh := r.h(rawLabel, r.ek)                                                          // KH(ek_X)
	slot := r.h(rawLabel, r.ss)                                                         // slot chain
	cc := r.h(rawLabel, r.ck[:32], rawID, rawID, r.mid, rawU32, rawU32, r.ct, ekh[:32]) // CC
	st := r.h(rawLabel, slot[:32], r.ss, cc[:32])                                       // root, chain key
	r.h(rawLabel, r.mid, rawU32, r.ct)                                                  // chain ID
	mk := r.h(rawLabel, st[32:])                                                        // message key
	wk := r.h(rawLabel, mk[32:], r.nonce, rawByte, rawByte)                             // wrap key
	r.hh = r.h(rawLabel, r.header)                                                      // HH
	tr := r.h(rawLabel, r.ck[:32], rawID, r.hh[:32], rawByte, rawU64, r.mid, r.mid, r.pt)
	if err := mldsa65.SignTo(r.dsaSK, tr[:], []byte("luxfi/session/v1/chat"), true, r.sig); err != nil {
		b.Fatal(err)
	}
	wa, _ := chacha20poly1305.New(wk[:32])
	r.wrapped = wa.Seal(r.wrapped[:0], rawNonce[:12], r.ck[:32], r.prefix)
	copy(r.body[41:], r.sig)
	ba, _ := chacha20poly1305.NewX(r.ck[:32])
	r.sealed = ba.Seal(r.sealed[:0], rawNonce[:], r.body, r.hh[:32])
	r.h(rawLabel, r.hh[:32], r.sealed[len(r.sealed)-16:]) // envelope ID
}

// open: the decapsulation, the derivations of a step receive, the unwrap,
// the body AEAD and (verify) the signature check.
func (r *rawStep) open(b *testing.B, verify bool) {
	r.peerSK.DecapsulateTo(r.ss, r.ct)
	hh := r.h(rawLabel, r.header)                                                       // HH
	slot := r.h(rawLabel, r.ss)                                                         // slot chain
	ekh := r.h(rawLabel, r.ek)                                                          // KH(ek_X)
	cc := r.h(rawLabel, r.ck[:32], rawID, rawID, r.mid, rawU32, rawU32, r.ct, ekh[:32]) // CC
	st := r.h(rawLabel, slot[:32], r.ss, cc[:32])                                       // root, chain key
	r.h(rawLabel, r.mid, rawU32, r.ct)                                                  // chain ID
	mk := r.h(rawLabel, st[32:])                                                        // message key
	wk := r.h(rawLabel, mk[32:], r.nonce, rawByte, rawByte)                             // wrap key
	wa, _ := chacha20poly1305.New(wk[:32])
	ck, err := wa.Open(r.ckOut[:0], rawNonce[:12], r.wrapped, r.prefix)
	if err != nil {
		b.Fatal(err)
	}
	ba, _ := chacha20poly1305.NewX(ck)
	if r.bodyOut, err = ba.Open(r.bodyOut[:0], rawNonce[:], r.sealed, hh[:32]); err != nil {
		b.Fatal(err)
	}
	tr := r.h(rawLabel, r.ck[:32], rawID, hh[:32], rawByte, rawU64, r.mid, r.mid, r.pt) // transcript
	r.h(rawLabel, rawID, r.mid)                                                         // message ID
	if verify && !mldsa65.Verify(r.dsaPK, tr[:], []byte("luxfi/session/v1/chat"), r.bodyOut[41:41+mldsa65.SignatureSize]) {
		b.Fatal("verify")
	}
}

func BenchmarkChatGroup32(b *testing.B) {
	const n = 32
	pt := testData(msgSize)
	s := newChatSession(b, n)
	// Every pair gets a tree and chains: the creator's handshakes, then
	// every other participant speaks (handshakes among them, split into
	// setup messages as needed), everyone reading everything.
	for i := range n {
		s.send(i, pt, nil)
	}
	// Now the creator's next message steps with every pair (all spoke):
	stepSnap := s.parties[0].store.copy()
	// and after it, the creator's chains have room: symmetric messages.
	s.send(0, pt, []int{})
	symSnap := s.parties[0].store.copy()

	b.Run("symmetric", func(b *testing.B) {
		b.ReportAllocs()
		s.restore(0, symSnap)
		cpu := startCPU(b)
		defer cpu.report()
		for i := 0; i < b.N; i++ {
			if i > 0 && i%40 == 0 {
				cpu.pause()
				s.restore(0, symSnap)
				cpu.resume()
			}
			outs, err := s.parties[0].conv.Send(s.now, pt, s)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.parties[0].conv.Confirm(outs[0].ID, uint64(100000+i)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("all-steps", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for i := 0; i < b.N; i++ {
			cpu.pause()
			s.restore(0, stepSnap)
			cpu.resume()
			outs, err := s.parties[0].conv.Send(s.now, pt, s)
			if err != nil {
				b.Fatal(err)
			}
			if len(outs) != 1 || len(outs[0].Envelope) != 22+1184+31*1169+3366+len(pt) {
				b.Fatalf("not an all-steps message: %d envelopes, %d bytes", len(outs), len(outs[0].Envelope))
			}
		}
	})
	var recipients []*crypto.Identity
	for _, p := range s.parties[1:] {
		r, err := crypto.NewPublicIdentity(p.id.KEMPublicKey, p.id.DSAPublicKey)
		if err != nil {
			b.Fatal(err)
		}
		recipients = append(recipients, r)
	}
	b.Run("seal", func(b *testing.B) {
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		for b.Loop() {
			if _, err := crypto.Seal(s.parties[0].id, recipients, pt, s.session.ID[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
