package ratchet

import (
	"fmt"

	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
)

// Action is what a pair needs for the next message (docs/protocol.md, 7.2).
type Action int

// Actions.
const (
	ActHandshake Action = iota + 1
	ActStep
	ActContinue
)

// Plan says what the pair with peer needs for a message sent at now.
func (s *State) Plan(peer uint8, now int64) Action {
	p := s.Pairs[peer]
	if p == nil || p.Reset {
		return ActHandshake
	}
	t := p.Current()
	if t == nil {
		return ActHandshake
	}
	send := t.sending()
	latest := t.latestPeer()
	switch {
	case send == nil, t.ForceStep, latest == nil, latest.ID != send.Target,
		send.N >= limit.MaxChainMessages, now-send.Start >= limit.MaxChainAge.Milliseconds():
		return ActStep
	}
	return ActContinue
}

// PendingHandshake reports whether an own handshake with peer has not yet
// been seen to land (and did not die).
func (s *State) PendingHandshake(peer uint8) bool {
	p := s.Pairs[peer]
	if p == nil {
		return false
	}
	for _, t := range p.Trees {
		if t.Mine && t.Pending && !p.known(t.ID).Dead {
			return true
		}
	}
	return false
}

// ForceStep makes the next send start a new chain in the pair's current
// tree, if it has one.
func (s *State) ForceStep(peer uint8) {
	if t := s.Pairs[peer].Current(); t != nil {
		t.ForceStep = true
	}
}

// CanStep reports whether the pair has a current tree this participant can
// send in (a ratchet message steps only in such pairs).
func (s *State) CanStep(peer uint8) bool {
	p := s.Pairs[peer]
	return p != nil && !p.Reset && p.Current() != nil
}

// Reset asks for a new handshake with peer on the next send.
func (s *State) Reset(peer uint8) { s.pair(peer).Reset = true }

// Continue fills st (a continue stanza) with the next message of the
// current sending chain and returns its message key. Plan must have said
// ActContinue.
func (s *State) Continue(peer uint8, now int64, st *wire.Stanza) (mk Key, err error) {
	t := s.Pairs[peer].Current()
	c := t.sending()
	if c == nil || c.N >= limit.MaxChainMessages {
		return mk, fmt.Errorf("ratchet: no chain to continue")
	}
	st.Type, st.Chain, st.N = wire.Continue, c.ID, c.N
	copy(st.Tree[:], t.ID[:])
	c.CK, mk = NextMessage(c.CK)
	c.N++
	t.Active = now
	return mk, nil
}

// StepInput is the randomness and public key of a step or handshake.
type StepInput struct {
	// RatchetKey is the header's fresh ratchet public key ek_X and Seed
	// the seed it was made from.
	RatchetKey []byte
	Seed       *[suite.KEMSeedSize]byte
	// RatchetKeyHash is KH(RatchetKey), computed once for all stanzas
	// (nil: computed here).
	RatchetKeyHash []byte
	// Envelope tags what this message creates, for Confirm and Abandon.
	Envelope ID
}

func (in *StepInput) keyHash() []byte {
	if in.RatchetKeyHash == nil {
		in.RatchetKeyHash = suite.KeyHash(in.RatchetKey)
	}
	return in.RatchetKeyHash
}

// Step starts a new chain in the current tree against the peer's latest
// chain (docs/protocol.md, 5.4) and fills st. m is the 32-byte
// encapsulation seed.
func (s *State) Step(env *Env, peer *Peer, now int64, in *StepInput, m []byte, st *wire.Stanza) (mk Key, err error) {
	t := s.Pairs[peer.Index].Current()
	tp := t.latestPeer()
	if tp == nil {
		return mk, fmt.Errorf("ratchet: no chain to step against")
	}
	var ek *suite.KEMPublic
	if tp.Virtual {
		if ek, err = env.Keys.Public(peer.IK); err != nil {
			return mk, fmt.Errorf("%w: peer identity key", errs.ErrMalformed)
		}
	} else if ek, err = env.Keys.Ephemeral(tp.EK); err != nil {
		return mk, fmt.Errorf("%w: peer ratchet key", errs.ErrMalformed)
	}
	k := tp.SlotNext
	var slot Key
	tp.SlotKey, slot = NextSlot(tp.SlotKey)
	tp.SlotNext++
	K, ct, err := ek.Encapsulate(m)
	if err != nil {
		return mk, err
	}
	q := t.OwnQ + 1
	var pn uint32
	if old := t.sending(); old != nil {
		pn = old.N
		old.Sending, old.N, old.CK, old.Target, old.Start = false, 0, Key{}, ID{}, 0
	}
	cc := StepContextHashed(env.SC, env.Self.ID[:], peer.ID[:], tp.ID, k, q, ct, in.keyHash())
	root, ck := StepKeys(slot, K[:], cc)
	c := &OwnChain{
		ID: ChainID(tp.ID, k, ct), Q: q, Seed: *in.Seed, Envelope: in.Envelope,
		SlotNext: 1, SlotKey: root,
		Sending: true, N: 1, Target: tp.ID, Start: now,
	}
	c.CK, mk = NextMessage(ck)
	t.Own = append(t.Own, c)
	t.OwnQ, t.ForceStep, t.Active = q, false, now
	*st = wire.Stanza{Type: wire.Step, Chain: tp.ID, K: k, Q: q, PN: pn, CT: ct}
	copy(st.Tree[:], t.ID[:])
	s.cleanup(now)
	return mk, nil
}

// Bundle is the responder's prekeys as a handshake uses them.
type Bundle struct {
	SPKID  uint32
	SPK    *suite.KEMPublic
	SPKRaw []byte
	OPKID  uint32 // 0: none
	OPK    *suite.KEMPublic
	OPKRaw []byte
}

// Initiate makes a handshake with peer (docs/protocol.md, 5.3), creating a
// tree in which this participant sends next, and fills st. m holds the
// encapsulation seeds m1, m2 and, with a one-time prekey, m3.
func (s *State) Initiate(env *Env, peer *Peer, b *Bundle, now int64, in *StepInput, m [][]byte, st *wire.Stanza) (mk Key, err error) {
	if len(m) < 2 || (b.OPKID != 0 && len(m) < 3) {
		return mk, fmt.Errorf("ratchet: missing encapsulation seeds")
	}
	if err := s.CheckInitiate(peer.Index); err != nil {
		return mk, err
	}
	ik, err := env.Keys.Public(peer.IK)
	if err != nil {
		return mk, fmt.Errorf("%w: peer identity key", errs.ErrMalformed)
	}
	k1, c1, err := ik.Encapsulate(m[0])
	if err != nil {
		return mk, err
	}
	k2, c2, err := b.SPK.Encapsulate(m[1])
	if err != nil {
		return mk, err
	}
	var k3 []byte
	var c3, opkRaw []byte
	if b.OPKID != 0 {
		kk, cc, err := b.OPK.Encapsulate(m[2])
		if err != nil {
			return mk, err
		}
		k3, c3, opkRaw = kk[:], cc, b.OPKRaw
	}
	p := s.pair(peer.Index)
	gen := p.MaxGen + 1
	h := Handshake{
		Initiator: env.Self.ID[:], Responder: peer.ID[:],
		SPKID: b.SPKID, OPKID: b.OPKID, Gen: gen,
		SPK: b.SPKRaw, OPK: opkRaw, C1: c1, C2: c2, C3: c3,
	}
	th := h.Transcript(env.SC)
	rh := HandshakeRoot(th, k1[:], k2[:], k3)
	treeID := h.TreeID(env.SC)
	sk2, s1 := NextSlot(rh)
	cc := StepContextHashed(env.SC, env.Self.ID[:], peer.ID[:], treeID, 1, 1, nil, in.keyHash())
	root, ck := StepKeys(s1, nil, cc)
	a1 := &OwnChain{
		ID: ChainID(treeID, 1, nil), Q: 1, Seed: *in.Seed, Envelope: in.Envelope,
		SlotNext: 1, SlotKey: root,
		Sending: true, N: 1, Target: treeID, Start: now,
	}
	a1.CK, mk = NextMessage(ck)
	t := &Tree{
		ID: treeID, Gen: gen, Mine: true, Pending: true, Envelope: in.Envelope, Active: now, OwnQ: 1,
		Own:  []*OwnChain{a1},
		Peer: []*PeerChain{{ID: treeID, Virtual: true, Latest: true, SlotNext: 2, SlotKey: sk2, Active: now}},
	}
	p.Reset = false
	p.MaxGen = gen
	p.Trees = append(p.Trees, t)
	p.Known = append(p.Known, TreeRef{ID: treeID, Gen: gen, Mine: true, Envelope: in.Envelope})
	*st = wire.Stanza{Type: wire.Handshake, SPKID: b.SPKID, OPKID: b.OPKID, Gen: gen, C1: c1, C2: c2, C3: c3}
	s.cleanup(now)
	return mk, nil
}

// CheckInitiate reports whether a new handshake with peer is allowed: the
// pair knows fewer than MaxHandshakes trees and its generation does not
// overflow.
func (s *State) CheckInitiate(peer uint8) error {
	p := s.Pairs[peer]
	if p == nil {
		return nil
	}
	if len(p.Known) >= limit.MaxHandshakes || p.MaxGen == ^uint32(0) {
		return fmt.Errorf("%w: %d trees known", errs.ErrTooManyHandshakes, len(p.Known))
	}
	return nil
}

// Landed records that the envelope is on chain: the trees its handshakes
// made are no longer pending, and revived if their envelope was thought
// dead (docs/protocol.md, section 10.4).
func (s *State) Landed(envelope ID) {
	for _, p := range s.Pairs {
		if p == nil {
			continue
		}
		for i := range p.Known {
			if r := &p.Known[i]; r.Mine && r.Envelope == envelope {
				r.Dead = false
			}
		}
		for _, t := range p.Trees {
			if t.Mine && t.Envelope == envelope {
				t.Pending = false
			}
		}
	}
}

// Kill records that the envelope's transaction died, or that it was
// superseded by a new send of its message (docs/protocol.md, section 10.4):
// its handshakes' trees are dead (their state is kept, in case the envelope
// lands after all), and a chain it started is not sent in again (the pair
// steps on its next message). A dead re-initiation asks for a new one.
// Keys stay consumed.
func (s *State) Kill(envelope ID) {
	for _, p := range s.Pairs {
		if p == nil {
			continue
		}
		for i := range p.Known {
			r := &p.Known[i]
			if !r.Mine || r.Envelope != envelope || r.Dead {
				continue
			}
			if t := p.tree(r.ID); t != nil && !t.Pending {
				continue // it landed
			}
			wasCurrent := p.current() == r
			r.Dead = true
			if wasCurrent && p.current() != nil {
				// A re-initiation died: the reason for it stands.
				p.Reset = true
			}
		}
		for _, t := range p.Trees {
			for _, c := range t.Own {
				if c.Sending && c.Envelope == envelope {
					t.ForceStep = true
				}
			}
		}
	}
}
