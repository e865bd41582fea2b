package benchmarks

// The messaging protocol (package chat, docs/protocol.md) beside the raw
// primitives it performs, in the same run (issue 8, section 5):
//
//	BenchmarkChatMessage/symmetric/send        a message with no asymmetric step
//	BenchmarkChatMessage/symmetric/raw         one ML-DSA-65 sign + the AEADs + the BLAKE2b derivations it does
//	BenchmarkChatMessage/symmetric/open        opening it
//	BenchmarkChatMessage/symmetric/open/raw    one verify + the AEADs + the derivations
//	BenchmarkChatMessage/step/send+open        a message with a ratchet step, sent and opened (ping-pong)
//	BenchmarkChatMessage/step/raw              ML-KEM keygen + parse + encaps + decaps + ML-DSA sign + verify + AEADs + derivations
//	BenchmarkChatMessage/step/raw/no-verify    the same without the verify (the list)
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
	b.Run("symmetric/raw", func(b *testing.B) {
		// Per message: the message key, the wrap key, the header hash and
		// the transcript (BLAKE2b), the sign, the wrap and the body AEAD.
		b.ReportAllocs()
		cpu := startCPU(b)
		defer cpu.report()
		sig := make([]byte, mldsa65.SignatureSize)
		for b.Loop() {
			k := chatKDF(mk[:])
			w := chatKDF(k[:])
			hh := chatKDF(header)
			m := chatKDF(append(hh[:], pt...))
			if err := mldsa65.SignTo(raw.dsaSK, m[:], []byte("luxfi/session/v1/chat"), true, sig); err != nil {
				b.Fatal(err)
			}
			wa, _ := chacha20poly1305.New(w[:32])
			wa.Seal(nil, make([]byte, 12), ck[:], header[23:])
			ba, _ := chacha20poly1305.NewX(ck[:])
			copy(body[9:], sig)
			ba.Seal(nil, make([]byte, 24), body, hh[:32])
		}
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
	stepRaw := func(verify bool) func(b *testing.B) {
		return func(b *testing.B) {
			// The peer's newest ratchet public key arrives as bytes: it is
			// parsed (matrix expansion) before the encapsulation, as any
			// receiver of a fresh key must.
			_, peerSK, _ := mlkem768.GenerateKeyPair(rand.Reader)
			peerPK := make([]byte, mlkem768.PublicKeySize)
			peerSK.Public().(*mlkem768.PublicKey).Pack(peerPK)
			ct := make([]byte, mlkem768.CiphertextSize)
			ss := make([]byte, mlkem768.SharedKeySize)
			seed := make([]byte, mlkem768.KeySeedSize)
			eseed := make([]byte, 32)
			sig := make([]byte, mldsa65.SignatureSize)
			b.ReportAllocs()
			cpu := startCPU(b)
			defer cpu.report()
			for b.Loop() {
				rand.Read(seed)
				mlkem768.NewKeyFromSeed(seed) // the sender's fresh ratchet key pair
				var pk mlkem768.PublicKey
				if err := pk.Unpack(peerPK); err != nil {
					b.Fatal(err)
				}
				rand.Read(eseed)
				pk.EncapsulateTo(ct, ss, eseed)
				peerSK.DecapsulateTo(ss, ct)
				k := chatKDF(ss)
				hh := chatKDF(header)
				m := chatKDF(append(hh[:], pt...))
				if err := mldsa65.SignTo(raw.dsaSK, m[:], []byte("luxfi/session/v1/chat"), true, sig); err != nil {
					b.Fatal(err)
				}
				wa, _ := chacha20poly1305.New(k[:32])
				wr := wa.Seal(nil, make([]byte, 12), ck[:], header[23:])
				ba, _ := chacha20poly1305.NewX(ck[:])
				sealed := ba.Seal(nil, make([]byte, 24), body, hh[:32])
				if _, err := wa.Open(nil, make([]byte, 12), wr, header[23:]); err != nil {
					b.Fatal(err)
				}
				if _, err := ba.Open(nil, make([]byte, 24), sealed, hh[:32]); err != nil {
					b.Fatal(err)
				}
				if verify && !mldsa65.Verify(raw.dsaPK, m[:], []byte("luxfi/session/v1/chat"), sig) {
					b.Fatal("verify")
				}
			}
		}
	}
	b.Run("step/raw", stepRaw(true))
	b.Run("step/raw/no-verify", stepRaw(false))
	_ = peer
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
