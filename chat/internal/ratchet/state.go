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
	"bytes"
	"slices"

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
	// Public parses a public key that is used again (an identity key, a
	// prekey), keeping it parsed.
	Public(ek []byte) (*suite.KEMPublic, error)
	// Ephemeral parses a peer's ratchet key, which a step uses once: a
	// parsed copy is reused if there is one, none is kept.
	Ephemeral(ek []byte) (*suite.KEMPublic, error)
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
	// Seen is the highest session position this participant has seen (a
	// hint for section 10.3, never a decision).
	Seen uint64
	// Pairs is indexed by participant index; the entry of self is nil.
	Pairs []*Pair
}

// Pair is the state of one pair: the tombstones of every tree it knows,
// the trees whose state it keeps, and its skipped keys.
type Pair struct {
	// Reset asks for a new handshake on the next send.
	Reset bool
	// MaxGen is the highest generation of any handshake of the pair this
	// participant made or saw (docs/protocol.md, section 10.1).
	MaxGen uint32
	// SessionClaimUsed: the creator's session claim for this participant
	// was used by a handshake (receiving side; the pair with the creator).
	SessionClaimUsed bool
	// Known holds a tombstone for every tree made or opened, oldest first;
	// it decides the current tree and is kept for the life of the session.
	Known []TreeRef
	// Trees holds the trees whose state is kept.
	Trees []*Tree
	// Skipped holds message keys and slots passed over, oldest first.
	Skipped []Skipped
}

// TreeRef is the tombstone of a tree.
type TreeRef struct {
	ID  ID
	Gen uint32
	// Mine: this participant initiated it; Envelope is the envelope that
	// carried the handshake. Dead: that envelope's transaction died, so the
	// tree is not used (docs/protocol.md, section 10.4).
	Mine     bool
	Dead     bool
	Envelope ID
}

// HasSeed reports whether an own chain of the state holds the ratchet key
// seed.
func (s *State) HasSeed(seed *[suite.KEMSeedSize]byte) bool {
	for _, p := range s.Pairs {
		if p == nil {
			continue
		}
		for _, t := range p.Trees {
			for _, c := range t.Own {
				if !c.Virtual && c.Seed == *seed {
					return true
				}
			}
		}
	}
	return false
}

// Tree is what one handshake started.
type Tree struct {
	ID   ID
	Gen  uint32
	Mine bool // this participant initiated it
	// Pending: an own handshake not yet known to have landed.
	Pending  bool
	Envelope ID    // own trees: the envelope that carried the handshake
	Active   int64 // last successful send or receive in this tree
	// ForceStep makes the next send start a chain (the current sending
	// chain's first message died, or a step was asked for).
	ForceStep bool
	OwnQ      uint32 // the highest q this participant used in the tree
	// PeerContig: every peer chain with q <= PeerContig was received (or
	// given up); PeerAhead: the received ones above PeerContig + 1.
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

// ObserveGen records that a handshake of generation gen exists in the pair
// with peer (docs/protocol.md, section 10.1), and reports whether that
// raised the pair's highest generation.
func (s *State) ObserveGen(peer uint8, gen uint32) bool {
	p := s.pair(peer)
	if gen <= p.MaxGen {
		return false
	}
	p.MaxGen = gen
	return true
}

// MaxGen is the highest generation of the pair with peer.
func (s *State) MaxGen(peer uint8) uint32 {
	if p := s.Pairs[peer]; p != nil {
		return p.MaxGen
	}
	return 0
}

// outranks reports whether a is preferred to b as the current tree: a
// higher generation, or the same and a lower tree ID.
func outranks(a, b *TreeRef) bool {
	if a.Gen != b.Gen {
		return a.Gen > b.Gen
	}
	return bytes.Compare(a.ID[:], b.ID[:]) < 0
}

// current is the pair's current tree (docs/protocol.md, section 10.1): the
// usable tree that outranks every other, or nil. It depends only on the
// tombstones, so deleting a tree's state never changes it.
func (p *Pair) current() *TreeRef {
	if p == nil {
		return nil
	}
	var cur *TreeRef
	for i := range p.Known {
		r := &p.Known[i]
		if !r.Dead && (cur == nil || outranks(r, cur)) {
			cur = r
		}
	}
	return cur
}

// Current is the state of the pair's current tree, or nil if the pair has
// none or its state was deleted.
func (p *Pair) Current() *Tree {
	r := p.current()
	if r == nil {
		return nil
	}
	return p.tree(r.ID)
}

// CurrentID is the ID of the current tree of the pair with peer.
func (s *State) CurrentID(peer uint8) (ID, bool) {
	if r := s.Pairs[peer].current(); r != nil {
		return r.ID, true
	}
	return ID{}, false
}

func (p *Pair) tree(id ID) *Tree {
	for _, t := range p.Trees {
		if t.ID == id {
			return t
		}
	}
	return nil
}

func (p *Pair) known(id ID) *TreeRef {
	for i := range p.Known {
		if p.Known[i].ID == id {
			return &p.Known[i]
		}
	}
	return nil
}

// OwnHandshakes counts this participant's handshakes in the pair with peer
// that did not die: the claims its transactions made on chain.
func (s *State) OwnHandshakes(peer uint8) int {
	p := s.Pairs[peer]
	if p == nil {
		return 0
	}
	n := 0
	for _, r := range p.Known {
		if r.Mine && !r.Dead {
			n++
		}
	}
	return n
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

// seenQ reports whether the peer chain q was received (or given up).
func (t *Tree) seenQ(q uint32) bool {
	return q <= t.PeerContig || slices.Contains(t.PeerAhead, q)
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

// Tree returns the state of the tree with the given ID in the pair with
// peer, or nil.
func (s *State) Tree(peer uint8, id ID) *Tree {
	if p := s.Pairs[peer]; p != nil {
		return p.tree(id)
	}
	return nil
}
