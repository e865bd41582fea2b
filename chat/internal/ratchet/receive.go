package ratchet

import (
	"errors"
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
	// SessionClaim: the handshake's claim is the creator's session claim
	// (the caller checked it matches and is unused); the tree marks it used.
	SessionClaim bool
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
// key. ekX is the envelope header's ratchet key (nil if none). A handshake's
// claim must have been checked by the caller. Every check that refuses a
// replay, an unknown tree, chain or target, or an unknown prekey runs
// before any KEM operation. It mutates s even when it fails: callers undo.
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

// treeByTag finds the tree of the pair with peer that a stanza's tag names:
// its state, or errs.ErrReplay if only its tombstone is left (every key of
// a deleted tree is gone), or errs.ErrUnknownTree.
func (s *State) treeByTag(peer uint8, tag [wire.TreeTagSize]byte) (*Tree, error) {
	p := s.Pairs[peer]
	if p == nil {
		return nil, errs.ErrUnknownTree
	}
	for _, t := range p.Trees {
		if [wire.TreeTagSize]byte(t.ID[:wire.TreeTagSize]) == tag {
			return t, nil
		}
	}
	for _, r := range p.Known {
		if [wire.TreeTagSize]byte(r.ID[:wire.TreeTagSize]) == tag {
			return nil, errs.ErrReplay
		}
	}
	return nil, errs.ErrUnknownTree
}

func (s *State) receiveContinue(peer uint8, st *wire.Stanza, now int64) (mk Key, err error) {
	p := s.pair(peer)
	if k, ok := p.takeSkipped(st.Chain, false, st.N); ok {
		if t, _ := p.findPeerChain(st.Chain); t != nil {
			t.Active = now
		}
		return k, nil
	}
	t, err := s.treeByTag(peer, st.Tree)
	if err != nil {
		return mk, err
	}
	c := t.peer(st.Chain)
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
		p.addSkipped(Skipped{Chain: c.ID, Index: c.N, Key: skipped, At: now})
		c.N++
	}
	c.CK, mk = NextMessage(c.CK)
	c.N++
	c.Active, t.Active = now, now
	return mk, nil
}

func (s *State) receiveStep(env *Env, peer *Peer, st *wire.Stanza, ekX []byte, now int64) (mk Key, err error) {
	t, err := s.treeByTag(peer.Index, st.Tree)
	if err != nil {
		return mk, err
	}
	p := s.pair(peer.Index)
	target := t.own(st.Chain)
	if target == nil {
		return mk, errs.ErrUnknownTarget
	}
	if target.Virtual && st.Q < 2 {
		return mk, fmt.Errorf("%w: a step against the handshake's virtual chain has q >= 2", errs.ErrMalformed)
	}
	if !suite.KEMPublicCanonical(ekX) {
		return mk, fmt.Errorf("%w: ratchet key", errs.ErrMalformed)
	}
	id := ChainID(target.ID, st.K, st.CT)
	if t.peer(id) != nil || t.seenQ(st.Q) {
		return mk, errs.ErrReplay
	}
	// The previous chain of the peer, closed after pn messages.
	var prev *PeerChain
	for _, c := range t.Peer {
		if !c.Virtual && c.Open && c.Q+1 == st.Q {
			prev = c
		}
	}
	if prev != nil {
		if st.PN < prev.N {
			return mk, fmt.Errorf("%w: pn below the messages already received", errs.ErrMalformed)
		}
		if st.PN-prev.N > limit.MaxSkip {
			return mk, errs.ErrTooManySkipped
		}
	}
	slot, err := p.slot(target, st.K, now)
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
	if prev != nil {
		for prev.N < st.PN {
			var skipped Key
			prev.CK, skipped = NextMessage(prev.CK)
			p.addSkipped(Skipped{Chain: prev.ID, Index: prev.N, Key: skipped, At: now})
			prev.N++
		}
		prev.Open, prev.N, prev.CK = false, 0, Key{}
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
func (p *Pair) slot(c *OwnChain, k uint32, now int64) (slot Key, err error) {
	if sl, ok := p.takeSkipped(c.ID, true, k); ok {
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
		p.addSkipped(Skipped{Chain: c.ID, Slot: true, Index: c.SlotNext, Key: skipped, At: now})
		c.SlotNext++
	}
	c.SlotKey, slot = NextSlot(c.SlotKey)
	c.SlotNext++
	return slot, nil
}

// HandshakeTree returns the ID of the tree a handshake stanza from peer
// makes, from public values only, or errs.ErrReplay if the pair knows it.
func (s *State) HandshakeTree(env *Env, peer *Peer, st *wire.Stanza) (ID, error) {
	h := Handshake{Initiator: peer.ID[:], Responder: env.Self.ID[:], SPKID: st.SPKID, OPKID: st.OPKID, Gen: st.Gen,
		C1: st.C1, C2: st.C2, C3: st.C3}
	id := h.TreeID(env.SC)
	if p := s.Pairs[peer.Index]; p != nil && p.known(id) != nil {
		return id, errs.ErrReplay
	}
	return id, nil
}

func (s *State) receiveHandshake(env *Env, peer *Peer, st *wire.Stanza, ekX []byte, pk Prekeys, d *Delivery) (r Received, err error) {
	treeID, err := s.HandshakeTree(env, peer, st)
	if err != nil {
		return r, err
	}
	p := s.pair(peer.Index)
	if st.Gen > p.MaxGen {
		p.MaxGen = st.Gen
	}
	spk := pk.Signed(st.SPKID)
	if spk == nil {
		return r, errs.ErrUnknownPrekey
	}
	var opk *suite.KEMPrivate
	if st.OPKID != 0 {
		if opk = pk.OneTime(st.OPKID); opk == nil {
			return r, errs.ErrUnknownPrekey
		}
	}
	if !suite.KEMPublicCanonical(ekX) {
		return r, fmt.Errorf("%w: ratchet key", errs.ErrMalformed)
	}
	var opkRaw []byte
	if opk != nil {
		opkRaw = opk.Public
	}
	h := Handshake{
		Initiator: peer.ID[:], Responder: env.Self.ID[:],
		SPKID: st.SPKID, OPKID: st.OPKID, Gen: st.Gen,
		SPK: spk.Public, OPK: opkRaw, C1: st.C1, C2: st.C2, C3: st.C3,
	}
	th := h.Transcript(env.SC)
	if len(p.Known) >= limit.MaxHandshakes {
		return r, fmt.Errorf("%w: %d trees known", errs.ErrTooManyHandshakes, len(p.Known))
	}
	k1, err1 := env.IdentityKEM.Decapsulate(st.C1)
	k2, err2 := spk.Decapsulate(st.C2)
	if err1 != nil || err2 != nil {
		return r, fmt.Errorf("%w: ciphertext", errs.ErrMalformed)
	}
	var k3 []byte
	if opk != nil {
		kk, err := opk.Decapsulate(st.C3)
		if err != nil {
			return r, fmt.Errorf("%w: ciphertext", errs.ErrMalformed)
		}
		k3 = kk[:]
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
		ID: treeID, Gen: st.Gen, Active: d.Now, PeerContig: 1,
		Own:  []*OwnChain{{ID: treeID, Virtual: true, SlotNext: 2, SlotKey: sk2}},
		Peer: []*PeerChain{a1},
	}
	p.Trees = append(p.Trees, t)
	p.Known = append(p.Known, TreeRef{ID: treeID, Gen: st.Gen})
	if d.SessionClaim {
		p.SessionClaimUsed = true
	}
	r.UsedOneTimePrekey = st.OPKID
	return r, nil
}

// KnowsTree reports whether the pair with peer has a tree (state or
// tombstone) with this tag.
func (s *State) KnowsTree(peer uint8, tag [wire.TreeTagSize]byte) bool {
	_, err := s.treeByTag(peer, tag)
	return err == nil || errors.Is(err, errs.ErrReplay)
}

func (p *Pair) findPeerChain(id ID) (*Tree, *PeerChain) {
	for _, t := range p.Trees {
		if c := t.peer(id); c != nil {
			return t, c
		}
	}
	return nil, nil
}
