package ratchet

import (
	"sort"

	"github.com/luxfi/session/chat/internal/limit"
)

// takeSkipped removes and returns a skipped key.
func (s *State) takeSkipped(peer uint8, chain ID, slot bool, index uint32) (Key, bool) {
	for i := range s.Skipped {
		k := &s.Skipped[i]
		if k.Peer == peer && k.Chain == chain && k.Slot == slot && k.Index == index {
			key := k.Key
			s.Skipped = append(s.Skipped[:i], s.Skipped[i+1:]...)
			return key, true
		}
	}
	return Key{}, false
}

func (s *State) addSkipped(k Skipped) {
	s.Skipped = append(s.Skipped, k)
}

// dropSkippedSlots deletes the skipped slots of an own chain that is
// deleted: without its secret key they are useless.
func (s *State) dropSkippedSlots(chain ID) {
	kept := s.Skipped[:0]
	for _, k := range s.Skipped {
		if !(k.Slot && k.Chain == chain) {
			kept = append(kept, k)
		}
	}
	s.Skipped = kept
}

func (s *State) dropTreeSlots(t *Tree) {
	for _, c := range t.Own {
		s.dropSkippedSlots(c.ID)
	}
}

// cleanup applies the deletion rules and bounds of docs/protocol.md,
// section 9, at time now.
func (s *State) cleanup(now int64) {
	age := limit.MaxSkipAge.Milliseconds()
	for _, p := range s.Pairs {
		if p == nil {
			continue
		}
		cur := p.Current()
		kept := p.Trees[:0]
		for _, t := range p.Trees {
			if t != cur && t.Position != 0 && now-t.Active > age {
				s.dropTreeSlots(t)
				continue
			}
			s.cleanTree(t, now)
			kept = append(kept, t)
		}
		p.Trees = kept
		for len(p.Trees) > limit.MaxTrees {
			// The oldest tree that is neither current nor an own
			// handshake not yet on chain.
			victim := -1
			for i, t := range p.Trees {
				if t == cur || t.Position == 0 {
					continue
				}
				if victim < 0 || t.Position < p.Trees[victim].Position {
					victim = i
				}
			}
			if victim < 0 {
				break
			}
			s.dropTreeSlots(p.Trees[victim])
			p.Trees = append(p.Trees[:victim], p.Trees[victim+1:]...)
		}
	}
	// Skipped keys: by age, then by count, oldest first.
	kept := s.Skipped[:0]
	for _, k := range s.Skipped {
		if now-k.At <= age {
			kept = append(kept, k)
		}
	}
	s.Skipped = kept
	if n := len(s.Skipped) - limit.MaxSkippedKeys; n > 0 {
		s.Skipped = append(s.Skipped[:0], s.Skipped[n:]...)
	}
}

func (s *State) cleanTree(t *Tree, now int64) {
	age := limit.MaxSkipAge.Milliseconds()
	kept := t.Own[:0]
	for _, c := range t.Own {
		if !c.Sending && c.Superseded != 0 &&
			(t.PeerContig+1 >= c.SupersededBy || now-c.Superseded > age) {
			s.dropSkippedSlots(c.ID)
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
			s.dropSkippedSlots(t.Own[i].ID)
			t.Own = append(t.Own[:i], t.Own[i+1:]...)
		}
	}
	keptPeer := t.Peer[:0]
	for _, c := range t.Peer {
		if !c.Latest && (!c.Open || now-c.Active > age) {
			continue // closed (its keys are skipped keys now) or idle
		}
		keptPeer = append(keptPeer, c)
	}
	t.Peer = keptPeer
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
