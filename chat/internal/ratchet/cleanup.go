package ratchet

import (
	"sort"

	"github.com/luxfi/session/chat/internal/limit"
)

// takeSkipped removes and returns a skipped key of the pair.
func (p *Pair) takeSkipped(chain ID, slot bool, index uint32) (Key, bool) {
	for i := range p.Skipped {
		k := &p.Skipped[i]
		if k.Chain == chain && k.Slot == slot && k.Index == index {
			key := k.Key
			p.Skipped = append(p.Skipped[:i], p.Skipped[i+1:]...)
			return key, true
		}
	}
	return Key{}, false
}

func (p *Pair) addSkipped(k Skipped) {
	p.Skipped = append(p.Skipped, k)
}

// dropSkippedSlots deletes the skipped slots of an own chain that is
// deleted: without its secret key they are useless.
func (p *Pair) dropSkippedSlots(chain ID) {
	kept := p.Skipped[:0]
	for _, k := range p.Skipped {
		if !(k.Slot && k.Chain == chain) {
			kept = append(kept, k)
		}
	}
	p.Skipped = kept
}

func (p *Pair) dropTreeSlots(t *Tree) {
	for _, c := range t.Own {
		p.dropSkippedSlots(c.ID)
	}
}

// keep reports whether a tree's state must be kept whatever its age: the
// current tree, and an own handshake that may still land.
func (p *Pair) keep(t *Tree, cur *TreeRef) bool {
	if cur != nil && t.ID == cur.ID {
		return true
	}
	return t.Mine && t.Pending && !p.known(t.ID).Dead
}

// cleanup applies the deletion rules and bounds of docs/protocol.md,
// section 9, at time now. Deleting a tree's state keeps its tombstone, so
// the current tree does not change.
func (s *State) cleanup(now int64) {
	age := limit.MaxSkipAge.Milliseconds()
	for _, p := range s.Pairs {
		if p == nil {
			continue
		}
		cur := p.current()
		kept := p.Trees[:0]
		for _, t := range p.Trees {
			if !p.keep(t, cur) && now-t.Active > age {
				p.dropTreeSlots(t)
				continue
			}
			p.cleanTree(t, now)
			kept = append(kept, t)
		}
		p.Trees = kept
		for len(p.Trees) > limit.MaxTrees {
			// The least preferred tree (section 10.1's order, reversed)
			// that must not be kept.
			victim := -1
			for i, t := range p.Trees {
				if p.keep(t, cur) {
					continue
				}
				if victim < 0 || outranks(p.known(p.Trees[victim].ID), p.known(t.ID)) {
					victim = i
				}
			}
			if victim < 0 {
				break
			}
			p.dropTreeSlots(p.Trees[victim])
			p.Trees = append(p.Trees[:victim], p.Trees[victim+1:]...)
		}
		// Skipped keys: by age, then by count, oldest first, per pair.
		keptK := p.Skipped[:0]
		for _, k := range p.Skipped {
			if now-k.At <= age {
				keptK = append(keptK, k)
			}
		}
		p.Skipped = keptK
		if n := len(p.Skipped) - limit.MaxSkippedKeys; n > 0 {
			p.Skipped = append(p.Skipped[:0], p.Skipped[n:]...)
		}
	}
}

func (p *Pair) cleanTree(t *Tree, now int64) {
	age := limit.MaxSkipAge.Milliseconds()
	kept := t.Own[:0]
	for _, c := range t.Own {
		if !c.Sending && c.Superseded != 0 &&
			(t.PeerContig+1 >= c.SupersededBy || now-c.Superseded > age) {
			p.dropSkippedSlots(c.ID)
			continue
		}
		kept = append(kept, c)
	}
	t.Own = kept
	if len(t.Own) > limit.MaxOwnChains {
		sort.SliceStable(t.Own, func(i, j int) bool { return t.Own[i].Q < t.Own[j].Q })
		for len(t.Own) > limit.MaxOwnChains {
			i := 0
			for i < len(t.Own) && t.Own[i].Sending {
				i++
			}
			if i == len(t.Own) {
				break
			}
			p.dropSkippedSlots(t.Own[i].ID)
			t.Own = append(t.Own[:i], t.Own[i+1:]...)
		}
	}
	// A closed peer chain (its remaining keys are skipped keys now) stays as
	// a tombstone, so that a replay of its messages is refused as one; an
	// idle one is closed. MaxPeerChains bounds both.
	for _, c := range t.Peer {
		if !c.Latest && c.Open && now-c.Active > age {
			c.Open, c.N, c.CK = false, 0, Key{}
		}
	}
	if len(t.Peer) > limit.MaxPeerChains {
		sort.SliceStable(t.Peer, func(i, j int) bool { return t.Peer[i].Q < t.Peer[j].Q })
		for len(t.Peer) > limit.MaxPeerChains {
			i := 0
			for i < len(t.Peer) && t.Peer[i].Latest {
				i++
			}
			if i == len(t.Peer) {
				break
			}
			t.Peer = append(t.Peer[:i], t.Peer[i+1:]...)
		}
	}
}
