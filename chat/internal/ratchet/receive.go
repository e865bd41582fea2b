package ratchet

import (
	"fmt"

	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
)

// Prekeys gives the secrets of this participant's prekeys.
type Prekeys interface {
	// Signed returns the signed prekey with this ID, or nil.
	Signed(id uint32) *suite.KEMPrivate
	// OneTime returns the unused one-time prekey with this ID, or nil.
	OneTime(id uint32) *suite.KEMPrivate
}

// Delivery is what the receiver knows of a message besides its bytes.
type Delivery struct {
	Position uint64
	Now      int64
	// Claimed reports whether the chain recorded a claim of this one-time
	// prekey of the receiver for this message (or the session's creation).
	Claimed func(opkID uint32) bool
}

// Received is the outcome of Receive.
type Received struct {
	MK Key
	// UsedOneTimePrekey is the one-time prekey a handshake consumed, 0 if
	// none: its secret must be deleted in the same commit.
	UsedOneTimePrekey uint32
}

// Receive processes the stanza of the peer's envelope addressed to this
// participant (docs/protocol.md, section 8, step 4) and returns the message
// key. ekX is the envelope header's ratchet key (nil if none). It mutates s
// even when it fails: callers work on a copy.
func (s *State) Receive(env *Env, peer *Peer, st *wire.Stanza, ekX []byte, pk Prekeys, d *Delivery) (r Received, err error) {
	s.See(d.Position)
	switch st.Type {
	case wire.Continue:
		r.MK, err = s.receiveContinue(peer.Index, st, d.Now)
	case wire.Step:
		r.MK, err = s.receiveStep(env, peer, st, ekX, d.Now)
	case wire.Handshake:
		r, err = s.receiveHandshake(env, peer, st, ekX, pk, d)
	default:
		return r, errs.ErrNotAddressed
	}
	if err == nil {
		s.cleanup(d.Now)
	}
	return r, err
}

func (s *State) receiveContinue(peer uint8, st *wire.Stanza, now int64) (mk Key, err error) {
	if k, ok := s.takeSkipped(peer, st.Chain, false, st.N); ok {
		if t, _ := s.findPeerChain(peer, st.Chain); t != nil {
			t.Active = now
		}
		return k, nil
	}
	if !s.knowsTree(peer, st.Tree) {
		return mk, errs.ErrUnknownTree
	}
	t, c := s.findPeerChain(peer, st.Chain)
	if c == nil || c.Virtual {
		return mk, errs.ErrChainNotStarted
	}
	if !c.Open || st.N < c.N {
		return mk, errs.ErrReplay
	}
	if st.N-c.N > limit.MaxSkip {
		return mk, errs.ErrTooManySkipped
	}
	for c.N < st.N {
		var skipped Key
		c.CK, skipped = NextMessage(c.CK)
		s.addSkipped(Skipped{Peer: peer, Chain: c.ID, Index: c.N, Key: skipped, At: now})
		c.N++
	}
	c.CK, mk = NextMessage(c.CK)
	c.N++
	c.Active, t.Active = now, now
	return mk, nil
}

func (s *State) receiveStep(env *Env, peer *Peer, st *wire.Stanza, ekX []byte, now int64) (mk Key, err error) {
	if !s.knowsTree(peer.Index, st.Tree) {
		return mk, errs.ErrUnknownTree
	}
	t, target := s.findOwnChain(peer.Index, st.Chain)
	if target == nil {
		return mk, errs.ErrUnknownTarget
	}
	if !suite.KEMPublicCanonical(ekX) {
		return mk, fmt.Errorf("%w: ratchet key", errs.ErrMalformed)
	}
	id := ChainID(target.ID, st.K, st.CT)
	if t.peer(id) != nil {
		return mk, errs.ErrReplay
	}
	slot, err := s.slot(peer.Index, target, st.K, now)
	if err != nil {
		return mk, err
	}
	var dk *suite.KEMPrivate
	if target.Virtual {
		dk = env.IdentityKEM
	} else if dk, err = env.Keys.Private(&target.Seed); err != nil {
		return mk, err
	}
	K, err := dk.Decapsulate(st.CT)
	if err != nil {
		return mk, fmt.Errorf("%w: ciphertext", errs.ErrMalformed)
	}
	cc := StepContext(env.SC, peer.ID[:], env.Self.ID[:], target.ID, st.K, st.Q, st.CT, ekX)
	root, ck := StepKeys(slot, K[:], cc)
	c := &PeerChain{ID: id, Q: st.Q, Open: true, Active: now}
	c.CK, mk = NextMessage(ck)
	c.N = 1

	// The previous chain of the peer is closed after pn messages.
	for _, prev := range t.Peer {
		if !prev.Virtual && prev.Open && prev.Q+1 == st.Q {
			if st.PN > prev.N && st.PN-prev.N > limit.MaxSkip {
				return mk, errs.ErrTooManySkipped
			}
			for prev.N < st.PN {
				var skipped Key
				prev.CK, skipped = NextMessage(prev.CK)
				s.addSkipped(Skipped{Peer: peer.Index, Chain: prev.ID, Index: prev.N, Key: skipped, At: now})
				prev.N++
			}
			prev.Open, prev.CK = false, Key{}
		}
	}
	// The newest peer chain is the one the next step targets.
	if maxQ, ok := t.maxPeerQ(); !ok || st.Q > maxQ {
		for _, o := range t.Peer {
			o.Latest, o.EK, o.SlotNext, o.SlotKey = false, nil, 0, Key{}
		}
		c.Latest, c.EK, c.SlotNext, c.SlotKey = true, append([]byte(nil), ekX...), 1, root
	}
	t.Peer = append(t.Peer, c)
	t.seenPeerQ(st.Q)
	// Own chains older than the target will not be targeted by newer peer
	// chains: they are superseded.
	for _, o := range t.Own {
		if o.Q < target.Q && o.Superseded == 0 {
			o.Superseded, o.SupersededBy = max(now, 1), st.Q
		}
	}
	t.Active = now
	return mk, nil
}

// slot takes slot k of the own chain c (docs/protocol.md, section 8).
func (s *State) slot(peer uint8, c *OwnChain, k uint32, now int64) (slot Key, err error) {
	if sl, ok := s.takeSkipped(peer, c.ID, true, k); ok {
		return sl, nil
	}
	if k < c.SlotNext {
		return slot, errs.ErrReplay
	}
	if k-c.SlotNext > limit.MaxSkip {
		return slot, errs.ErrTooManySkipped
	}
	for c.SlotNext < k {
		var skipped Key
		c.SlotKey, skipped = NextSlot(c.SlotKey)
		s.addSkipped(Skipped{Peer: peer, Chain: c.ID, Slot: true, Index: c.SlotNext, Key: skipped, At: now})
		c.SlotNext++
	}
	c.SlotKey, slot = NextSlot(c.SlotKey)
	c.SlotNext++
	return slot, nil
}

func (s *State) receiveHandshake(env *Env, peer *Peer, st *wire.Stanza, ekX []byte, pk Prekeys, d *Delivery) (r Received, err error) {
	spk := pk.Signed(st.SPKID)
	if spk == nil {
		return r, errs.ErrUnknownPrekey
	}
	var opk *suite.KEMPrivate
	if st.OPKID != 0 {
		if opk = pk.OneTime(st.OPKID); opk == nil {
			return r, errs.ErrUnknownPrekey
		}
		if d.Claimed == nil || !d.Claimed(st.OPKID) {
			return r, errs.ErrUnclaimedPrekey
		}
	}
	if !suite.KEMPublicCanonical(ekX) {
		return r, fmt.Errorf("%w: ratchet key", errs.ErrMalformed)
	}
	k1, err1 := env.IdentityKEM.Decapsulate(st.C1)
	k2, err2 := spk.Decapsulate(st.C2)
	if err1 != nil || err2 != nil {
		return r, fmt.Errorf("%w: ciphertext", errs.ErrMalformed)
	}
	var k3, opkRaw []byte
	if opk != nil {
		kk, err := opk.Decapsulate(st.C3)
		if err != nil {
			return r, fmt.Errorf("%w: ciphertext", errs.ErrMalformed)
		}
		k3, opkRaw = kk[:], opk.Public
	}
	h := Handshake{
		Initiator: peer.ID[:], Responder: env.Self.ID[:],
		SPKID: st.SPKID, OPKID: st.OPKID, Sync: st.Sync,
		SPK: spk.Public, OPK: opkRaw, C1: st.C1, C2: st.C2, C3: st.C3,
	}
	th := h.Transcript(env.SC)
	treeID := TreeID(th)
	if s.Tree(peer.Index, treeID) != nil {
		return r, errs.ErrReplay
	}
	rh := HandshakeRoot(th, k1[:], k2[:], k3)
	sk2, s1 := NextSlot(rh)
	cc := StepContext(env.SC, peer.ID[:], env.Self.ID[:], treeID, 1, 1, nil, ekX)
	root, ck := StepKeys(s1, nil, cc)
	a1 := &PeerChain{
		ID: ChainID(treeID, 1, nil), Q: 1, Open: true, N: 1, Active: d.Now,
		Latest: true, EK: append([]byte(nil), ekX...), SlotNext: 1, SlotKey: root,
	}
	a1.CK, r.MK = NextMessage(ck)
	t := &Tree{
		ID: treeID, Position: d.Position, Sync: st.Sync, Active: d.Now, PeerContig: 1,
		Own:  []*OwnChain{{ID: treeID, Virtual: true, SlotNext: 2, SlotKey: sk2}},
		Peer: []*PeerChain{a1},
	}
	p := s.pair(peer.Index)
	p.Trees = append(p.Trees, t)
	r.UsedOneTimePrekey = st.OPKID
	return r, nil
}

// KnowsTree reports whether the pair with peer has a tree with this tag.
func (s *State) KnowsTree(peer uint8, tag [wire.TreeTagSize]byte) bool { return s.knowsTree(peer, tag) }

// knowsTree reports whether the pair with peer has a tree with this tag.
func (s *State) knowsTree(peer uint8, tag [wire.TreeTagSize]byte) bool {
	if p := s.Pairs[peer]; p != nil {
		for _, t := range p.Trees {
			if [wire.TreeTagSize]byte(t.ID[:wire.TreeTagSize]) == tag {
				return true
			}
		}
	}
	return false
}

func (s *State) findPeerChain(peer uint8, id ID) (*Tree, *PeerChain) {
	if p := s.Pairs[peer]; p != nil {
		for _, t := range p.Trees {
			if c := t.peer(id); c != nil {
				return t, c
			}
		}
	}
	return nil, nil
}

func (s *State) findOwnChain(peer uint8, id ID) (*Tree, *OwnChain) {
	if p := s.Pairs[peer]; p != nil {
		for _, t := range p.Trees {
			if c := t.own(id); c != nil {
				return t, c
			}
		}
	}
	return nil, nil
}
