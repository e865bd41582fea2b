package ratchet

import (
	"encoding/binary"
	"fmt"

	"github.com/luxfi/session/chat/internal/codec"
	"github.com/luxfi/session/chat/internal/errs"
	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/suite"
)

// StateVersion is the first byte of a marshalled State. The format is local
// to this implementation (docs/protocol.md, section 13) and described in
// LLM.md.
const StateVersion = 2

// Decoding bounds: a record that exceeds them is corrupt. They leave room
// above the limits the state machine enforces.
const (
	maxTreesDecoded   = limit.MaxTrees + 2
	maxChainsDecoded  = 64
	maxSkippedDecoded = limit.MaxSkippedKeys + 2*limit.MaxSkip + 64 // per pair
)

// MarshalBinary encodes the state.
func (s *State) MarshalBinary() ([]byte, error) {
	return s.AppendBinary(make([]byte, 0, 1024))
}

// AppendBinary appends the encoding of the state to w.
func (s *State) AppendBinary(w []byte) ([]byte, error) {
	w = append(w, StateVersion)
	w = binary.BigEndian.AppendUint64(w, s.Seen)
	w = append(w, byte(len(s.Pairs)))
	for _, p := range s.Pairs {
		if p == nil {
			w = append(w, 0)
			continue
		}
		w = append(w, 1, b2u(p.Reset))
		w = binary.BigEndian.AppendUint32(w, p.MaxGen)
		w = append(w, b2u(p.SessionClaimUsed), byte(len(p.Known)))
		for _, r := range p.Known {
			w = append(w, r.ID[:]...)
			w = binary.BigEndian.AppendUint32(w, r.Gen)
			w = append(w, b2u(r.Mine)|b2u(r.Dead)<<1)
			if r.Mine {
				w = append(w, r.Envelope[:]...)
			}
		}
		w = append(w, byte(len(p.Trees)))
		for _, t := range p.Trees {
			w = appendTree(w, t)
		}
		w = binary.BigEndian.AppendUint16(w, uint16(len(p.Skipped)))
		for _, k := range p.Skipped {
			w = append(w, k.Chain[:]...)
			w = append(w, b2u(k.Slot))
			w = binary.BigEndian.AppendUint32(w, k.Index)
			w = append(w, k.Key[:]...)
			w = binary.BigEndian.AppendUint64(w, uint64(k.At))
		}
	}
	return w, nil
}

func appendTree(w []byte, t *Tree) []byte {
	w = append(w, t.ID[:]...)
	w = binary.BigEndian.AppendUint32(w, t.Gen)
	w = append(w, b2u(t.Mine), b2u(t.Pending))
	w = append(w, t.Envelope[:]...)
	w = binary.BigEndian.AppendUint64(w, uint64(t.Active))
	w = append(w, b2u(t.ForceStep))
	w = binary.BigEndian.AppendUint32(w, t.OwnQ)
	w = binary.BigEndian.AppendUint32(w, t.PeerContig)
	w = append(w, byte(len(t.PeerAhead)))
	for _, q := range t.PeerAhead {
		w = binary.BigEndian.AppendUint32(w, q)
	}
	w = append(w, byte(len(t.Own)))
	for _, c := range t.Own {
		w = append(w, c.ID[:]...)
		w = binary.BigEndian.AppendUint32(w, c.Q)
		w = append(w, b2u(c.Virtual))
		if !c.Virtual {
			w = append(w, c.Seed[:]...)
		}
		w = append(w, c.Envelope[:]...)
		w = binary.BigEndian.AppendUint32(w, c.SlotNext)
		w = append(w, c.SlotKey[:]...)
		w = binary.BigEndian.AppendUint64(w, uint64(c.Superseded))
		w = binary.BigEndian.AppendUint32(w, c.SupersededBy)
		w = append(w, b2u(c.Sending))
		if c.Sending {
			w = binary.BigEndian.AppendUint32(w, c.N)
			w = append(w, c.CK[:]...)
			w = append(w, c.Target[:]...)
			w = binary.BigEndian.AppendUint64(w, uint64(c.Start))
		}
	}
	w = append(w, byte(len(t.Peer)))
	for _, c := range t.Peer {
		w = append(w, c.ID[:]...)
		w = binary.BigEndian.AppendUint32(w, c.Q)
		w = append(w, b2u(c.Virtual), b2u(c.Open))
		if c.Open {
			w = binary.BigEndian.AppendUint32(w, c.N)
			w = append(w, c.CK[:]...)
		}
		w = append(w, b2u(c.Latest))
		if c.Latest {
			if !c.Virtual {
				w = append(w, c.EK...)
			}
			w = binary.BigEndian.AppendUint32(w, c.SlotNext)
			w = append(w, c.SlotKey[:]...)
		}
		w = binary.BigEndian.AppendUint64(w, uint64(c.Active))
	}
	return w
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// UnmarshalBinary decodes a state made by MarshalBinary. Every count is
// bounded; trailing bytes, unknown versions and out-of-range fields are
// errors (errs.ErrCorruptState).
func (s *State) UnmarshalBinary(b []byte) error {
	d := codec.NewReader(b)
	if v := d.U8(); v != StateVersion {
		return fmt.Errorf("%w: ratchet state version %d", errs.ErrCorruptState, v)
	}
	*s = State{Seen: d.U64()}
	n := int(d.U8())
	if n > limit.MaxParticipants {
		return fmt.Errorf("%w: %d pairs", errs.ErrCorruptState, n)
	}
	s.Pairs = make([]*Pair, n)
	for i := range s.Pairs {
		switch d.U8() {
		case 0:
			continue
		case 1:
		default:
			d.Fail()
		}
		p := &Pair{Reset: d.Bool(), MaxGen: d.U32(), SessionClaimUsed: d.Bool()}
		nk := int(d.U8())
		if nk > limit.MaxHandshakes {
			d.Fail()
		}
		for j := 0; j < nk && d.Err() == nil; j++ {
			var r TreeRef
			d.Copy(r.ID[:])
			r.Gen = d.U32()
			flags := d.U8()
			if flags > 3 || r.Gen == 0 || r.Gen > p.MaxGen {
				d.Fail()
			}
			r.Mine, r.Dead = flags&1 != 0, flags&2 != 0
			if r.Mine {
				d.Copy(r.Envelope[:])
			}
			p.Known = append(p.Known, r)
		}
		nt := int(d.U8())
		if nt > maxTreesDecoded {
			d.Fail()
		}
		for j := 0; j < nt && d.Err() == nil; j++ {
			t := decodeTree(d)
			if p.known(t.ID) == nil {
				d.Fail() // every tree has its tombstone
			}
			p.Trees = append(p.Trees, t)
		}
		ns := int(d.U16())
		if ns > maxSkippedDecoded {
			d.Fail()
		}
		for j := 0; j < ns && d.Err() == nil; j++ {
			var k Skipped
			d.Copy(k.Chain[:])
			k.Slot = d.Bool()
			k.Index = d.U32()
			d.Copy(k.Key[:])
			k.At = int64(d.U64())
			p.Skipped = append(p.Skipped, k)
		}
		s.Pairs[i] = p
	}
	if d.Done() != nil {
		*s = State{}
		return fmt.Errorf("%w: ratchet state", errs.ErrCorruptState)
	}
	return nil
}

func decodeTree(d *codec.Reader) *Tree {
	t := &Tree{}
	d.Copy(t.ID[:])
	t.Gen = d.U32()
	t.Mine = d.Bool()
	t.Pending = d.Bool()
	d.Copy(t.Envelope[:])
	t.Active = int64(d.U64())
	t.ForceStep = d.Bool()
	t.OwnQ = d.U32()
	t.PeerContig = d.U32()
	na := int(d.U8())
	if na > maxAhead {
		d.Fail()
	}
	for i := 0; i < na && d.Err() == nil; i++ {
		t.PeerAhead = append(t.PeerAhead, d.U32())
	}
	no := int(d.U8())
	if no > maxChainsDecoded {
		d.Fail()
	}
	for i := 0; i < no && d.Err() == nil; i++ {
		c := &OwnChain{}
		d.Copy(c.ID[:])
		c.Q = d.U32()
		c.Virtual = d.Bool()
		if !c.Virtual {
			copy(c.Seed[:], d.Bytes(suite.KEMSeedSize))
		}
		d.Copy(c.Envelope[:])
		c.SlotNext = d.U32()
		d.Copy(c.SlotKey[:])
		c.Superseded = int64(d.U64())
		c.SupersededBy = d.U32()
		c.Sending = d.Bool()
		if c.Sending {
			c.N = d.U32()
			d.Copy(c.CK[:])
			d.Copy(c.Target[:])
			c.Start = int64(d.U64())
		}
		t.Own = append(t.Own, c)
	}
	np := int(d.U8())
	if np > maxChainsDecoded {
		d.Fail()
	}
	for i := 0; i < np && d.Err() == nil; i++ {
		c := &PeerChain{}
		d.Copy(c.ID[:])
		c.Q = d.U32()
		c.Virtual = d.Bool()
		c.Open = d.Bool()
		if c.Open {
			c.N = d.U32()
			d.Copy(c.CK[:])
		}
		c.Latest = d.Bool()
		if c.Latest {
			if !c.Virtual {
				c.EK = d.Bytes(suite.KEMPublicKeySize) // aliases b: keys are replaced, never changed in place
			}
			c.SlotNext = d.U32()
			d.Copy(c.SlotKey[:])
		}
		c.Active = int64(d.U64())
		t.Peer = append(t.Peer, c)
	}
	return t
}
