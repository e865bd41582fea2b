// Package ratchet is the per-pair KEM double ratchet of the messaging
// protocol (docs/protocol.md, sections 4, 5, 7.2, 8, 9 and 10) as a pure
// state machine: no I/O, no clock (times are Unix milliseconds passed in),
// no chain. Randomness comes in as explicit seeds.
//
// A State holds, for each peer of a session, the trees of that pair (one per
// handshake), each with the chains of both sides. Callers work on a copy
// (Unmarshal of the committed bytes) and commit Marshal of it only when the
// whole message succeeded.
package ratchet

import (
	"slices"
	"sort"

	"github.com/luxfi/session/chat/internal/suite"
)

// ID is a chain or tree ID.
type ID = [suite.IDSize]byte

// Key is a 32-byte secret.
type Key = [32]byte

// Party names a participant: its index in the session and its identity ID.
type Party struct {
	Index uint8
	ID    [suite.IdentityIDSize]byte
}

// Keys memoizes expensive key parsing; it holds no state of its own.
type Keys interface {
	// Private returns the ratchet key pair made from a 64-byte seed.
	Private(seed *[suite.KEMSeedSize]byte) (*suite.KEMPrivate, error)
	// Public parses a ratchet public key.
	Public(ek []byte) (*suite.KEMPublic, error)
}

// Env is what the ratchet knows of the session and of this participant.
type Env struct {
	SC          Key // session context
	Self        Party
	IdentityKEM *suite.KEMPrivate // this participant's identity decapsulation key
	Keys        Keys
}

// Peer is the other side of a pair.
type Peer struct {
	Party
	// IK is its identity encapsulation key, parsed (through Env.Keys) only
	// when a handshake or a step against the virtual chain needs it.
	IK []byte
}

// State is the ratchet state of one participant in one session.
type State struct {
	// Seen is the highest session position this participant has seen.
	Seen uint64
	// Pairs is indexed by participant index; the entry of self is nil.
	Pairs []*Pair
	// Skipped holds message keys and slots passed over, oldest first.
	Skipped []Skipped
}

// Pair is the state of one pair: its trees.
type Pair struct {
	// Reset asks for a new handshake on the next send.
	Reset bool
	Trees []*Tree
}

// Tree is what one handshake started.
type Tree struct {
	ID       ID
	Mine     bool   // this participant initiated it
	Position uint64 // of the handshake message; 0: own, not yet seen on chain
	Sync     uint64 // the initiator's sync position s
	Envelope ID     // own trees: the envelope that carried the handshake
	Active   int64  // last send or receive in this tree
	// ForceStep makes the next send start a chain (the current sending
	// chain's first message was abandoned).
	ForceStep bool
	OwnQ      uint32 // sequence number of this participant's latest chain
	// PeerContig: every peer chain with q <= PeerContig was received;
	// PeerAhead: the received ones above PeerContig + 1.
	PeerContig uint32
	PeerAhead  []uint32
	Own        []*OwnChain
	Peer       []*PeerChain
}

// OwnChain is a chain this participant started (or, Virtual, the virtual
// chain H of a tree it responded to, whose key is its identity key).
type OwnChain struct {
	ID       ID
	Q        uint32
	Virtual  bool
	Seed     [suite.KEMSeedSize]byte // ratchet key seed (not Virtual)
	Envelope ID                      // the envelope that started it (own steps)
	// The slot chain: the next slot index and its slot chain key.
	SlotNext uint32
	SlotKey  Key
	// Superseded is when the peer first targeted a newer own chain, and
	// SupersededBy the q of the peer chain that did.
	Superseded   int64
	SupersededBy uint32
	// The message chain, only on the current sending chain.
	Sending bool
	N       uint32
	CK      Key
	Target  ID
	Start   int64
}

// PeerChain is a chain of the peer this participant received (or, Virtual,
// the virtual chain H of a tree it initiated).
type PeerChain struct {
	ID      ID
	Q       uint32
	Virtual bool
	// The message chain, while Open.
	Open bool
	N    uint32
	CK   Key
	// Latest is set on the peer chain the next step targets; it carries
	// the ratchet key and this side's copy of the slot chain.
	Latest   bool
	EK       []byte
	SlotNext uint32
	SlotKey  Key
	Active   int64
}

// Skipped is a message key (Slot false) or a slot (Slot true) passed over.
type Skipped struct {
	Peer  uint8
	Chain ID
	Slot  bool
	Index uint32
	Key   Key
	At    int64
}

// NewState returns the state of a session of n participants.
func NewState(n int) *State {
	return &State{Pairs: make([]*Pair, n)}
}

// pair returns the pair with peer, creating it.
func (s *State) pair(peer uint8) *Pair {
	if s.Pairs[peer] == nil {
		s.Pairs[peer] = &Pair{}
	}
	return s.Pairs[peer]
}

// See records that position was seen.
func (s *State) See(position uint64) {
	if position > s.Seen {
		s.Seen = position
	}
}

// Current is the pair's current tree (docs/protocol.md, section 10.1), or
// nil.
func (p *Pair) Current() *Tree {
	if p == nil || len(p.Trees) == 0 {
		return nil
	}
	trees := append([]*Tree(nil), p.Trees...)
	sort.SliceStable(trees, func(i, j int) bool { return pos(trees[i]) < pos(trees[j]) })
	cur := trees[0]
	for _, t := range trees[1:] {
		if pos(cur) != inf && t.Sync >= cur.Position {
			cur = t
		}
	}
	return cur
}

const inf = ^uint64(0)

func pos(t *Tree) uint64 {
	if t.Position == 0 {
		return inf
	}
	return t.Position
}

// sending is the tree's current sending chain, or nil.
func (t *Tree) sending() *OwnChain {
	for _, c := range t.Own {
		if c.Sending {
			return c
		}
	}
	return nil
}

// latestPeer is the peer chain the next step targets, or nil.
func (t *Tree) latestPeer() *PeerChain {
	for _, c := range t.Peer {
		if c.Latest {
			return c
		}
	}
	return nil
}

func (t *Tree) maxPeerQ() (uint32, bool) {
	var m uint32
	found := false
	for _, c := range t.Peer {
		if !found || c.Q > m {
			m, found = c.Q, true
		}
	}
	return m, found
}

func (t *Tree) own(id ID) *OwnChain {
	for _, c := range t.Own {
		if c.ID == id {
			return c
		}
	}
	return nil
}

func (t *Tree) peer(id ID) *PeerChain {
	for _, c := range t.Peer {
		if c.ID == id {
			return c
		}
	}
	return nil
}

// seenPeerQ records that the peer chain q was received. A gap that stays
// open while maxGap later chains arrive is given up: the chain that would
// fill it is treated as lost (docs/protocol.md, section 9).
func (t *Tree) seenPeerQ(q uint32) {
	if q <= t.PeerContig || slices.Contains(t.PeerAhead, q) {
		return
	}
	t.PeerAhead = append(t.PeerAhead, q)
	slices.Sort(t.PeerAhead)
	for len(t.PeerAhead) > 0 && (t.PeerAhead[0] == t.PeerContig+1 || len(t.PeerAhead) > maxGap) {
		t.PeerContig = t.PeerAhead[0]
		t.PeerAhead = t.PeerAhead[1:]
	}
}

// maxGap is how many later peer chains may arrive before a missing one is
// given up.
const maxGap = 8

// maxAhead bounds PeerAhead when decoding.
const maxAhead = maxGap

// Tree returns the tree with the given ID in the pair with peer, or nil.
func (s *State) Tree(peer uint8, id ID) *Tree {
	p := s.Pairs[peer]
	if p == nil {
		return nil
	}
	for _, t := range p.Trees {
		if t.ID == id {
			return t
		}
	}
	return nil
}
