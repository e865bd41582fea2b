package chat

import (
	"fmt"
	"testing"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// attacker is a passive adversary that stole one participant's long-term
// keys and stored state (device and conversation records, not the archive)
// and recorded every envelope of the session. It computes the closure of
// everything the protocol's derivations give from those secrets: message
// chains forward from every chain key it holds, slot chains forward from
// every slot chain key, every skipped key, every handshake it can complete
// with the prekey secrets it holds, and every step whose slot it knows,
// trying every KEM secret key it holds on the step's ciphertext (the wrap
// tells it which one was right). A stanza it can unwrap is a message it
// reads.
type attacker struct {
	t      testing.TB
	victim uint8
	sc     ratchet.Key
	ids    [][suite.IdentityIDSize]byte
	// KEM secret keys: ratchet keys, the identity key, prekeys by ID.
	dks     []*suite.KEMPrivate
	ik      *suite.KEMPrivate
	signed  map[uint32]*suite.KEMPrivate
	oneTime map[uint32]*suite.KEMPrivate
	// What it knows of chains: chain keys and slot chain keys at an index.
	// public prekeys of every participant (public information)
	pub  func(owner uint8, kind string, id uint32) []byte
	ck   map[ratchet.ID]map[uint32]ratchet.Key // chain -> n -> CK_n
	sk   map[ratchet.ID]map[uint32]ratchet.Key // chain -> k -> SK_k
	mk   map[[2]any]ratchet.Key                // skipped message keys
	slot map[[2]any]ratchet.Key                // skipped slots
}

func newAttacker(t testing.TB, net *testNet, victim int, convRecord, devRecord []byte, identity *crypto.Identity) *attacker {
	t.Helper()
	a := &attacker{
		t: t, victim: uint8(victim), sc: net.convs[victim].env.SC,
		signed: map[uint32]*suite.KEMPrivate{}, oneTime: map[uint32]*suite.KEMPrivate{},
		ck: map[ratchet.ID]map[uint32]ratchet.Key{}, sk: map[ratchet.ID]map[uint32]ratchet.Key{},
		mk: map[[2]any]ratchet.Key{}, slot: map[[2]any]ratchet.Key{},
	}
	for i := range net.convs[victim].parts {
		a.ids = append(a.ids, net.convs[victim].parts[i].id)
	}
	a.pub = func(owner uint8, kind string, id uint32) []byte {
		return net.dir.published[[2]any{net.sid(int(owner)), kind + fmt.Sprint(id)}]
	}
	var err error
	if a.ik, err = suite.ParseKEMPrivate(identity.KEMSecretKey); err != nil {
		t.Fatal(err)
	}
	a.dks = append(a.dks, a.ik)
	dev, err := parseDeviceRecord(devRecord)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range dev.signed {
		k, _ := suite.NewKEMFromSeed(s.seed[:])
		a.signed[s.id] = k
		a.dks = append(a.dks, k)
	}
	for _, o := range dev.oneTime {
		k, _ := suite.NewKEMFromSeed(o.seed[:])
		a.oneTime[o.id] = k
		a.dks = append(a.dks, k)
	}
	rec, err := parseConversationRecord(convRecord)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rec.state.Pairs {
		if p == nil {
			continue
		}
		for _, tr := range p.Trees {
			for _, c := range tr.Own {
				if !c.Virtual {
					k, _ := suite.NewKEMFromSeed(c.Seed[:])
					a.dks = append(a.dks, k)
				}
				a.learnSK(c.ID, c.SlotNext, c.SlotKey)
				if c.Sending {
					a.learnCK(c.ID, c.N, c.CK)
				}
			}
			for _, c := range tr.Peer {
				if c.Open {
					a.learnCK(c.ID, c.N, c.CK)
				}
				if c.Latest {
					a.learnSK(c.ID, c.SlotNext, c.SlotKey)
				}
			}
		}
	}
	for _, p := range rec.state.Pairs {
		if p == nil {
			continue
		}
		for _, s := range p.Skipped {
			if s.Slot {
				a.slot[[2]any{s.Chain, s.Index}] = s.Key
			} else {
				a.mk[[2]any{s.Chain, s.Index}] = s.Key
			}
		}
	}
	// Every pending bundle the creator kept is public material: nothing.
	return a
}

func (a *attacker) learnCK(id ratchet.ID, n uint32, ck ratchet.Key) bool {
	if a.ck[id] == nil {
		a.ck[id] = map[uint32]ratchet.Key{}
	}
	if _, ok := a.ck[id][n]; ok {
		return false
	}
	a.ck[id][n] = ck
	return true
}

func (a *attacker) learnSK(id ratchet.ID, k uint32, sk ratchet.Key) bool {
	if a.sk[id] == nil {
		a.sk[id] = map[uint32]ratchet.Key{}
	}
	if _, ok := a.sk[id][k]; ok {
		return false
	}
	a.sk[id][k] = sk
	return true
}

// messageKey derives MK_n of a chain from what the attacker knows.
func (a *attacker) messageKey(id ratchet.ID, n uint32) (ratchet.Key, bool) {
	if k, ok := a.mk[[2]any{id, n}]; ok {
		return k, true
	}
	best, found := uint32(0), false
	for m := range a.ck[id] {
		if m <= n && (!found || m > best) {
			best, found = m, true
		}
	}
	if !found {
		return ratchet.Key{}, false
	}
	ck := a.ck[id][best]
	var mk ratchet.Key
	for m := best; m <= n; m++ {
		ck, mk = ratchet.NextMessage(ck)
	}
	return mk, true
}

// slotKey derives S_k of a chain from what the attacker knows.
func (a *attacker) slotKey(id ratchet.ID, k uint32) (ratchet.Key, bool) {
	if s, ok := a.slot[[2]any{id, k}]; ok {
		return s, true
	}
	best, found := uint32(0), false
	for m := range a.sk[id] {
		if m <= k && (!found || m > best) {
			best, found = m, true
		}
	}
	if !found || k-best > 10*limit.MaxSkip {
		return ratchet.Key{}, false
	}
	sk := a.sk[id][best]
	var s ratchet.Key
	for m := best; m <= k; m++ {
		sk, s = ratchet.NextSlot(sk)
	}
	return s, true
}

// unwraps reports whether mk opens stanza st of envelope e from x to r.
func unwraps(e *wire.Envelope, st *wire.Stanza, mk ratchet.Key, x, r uint8) bool {
	wk := wrapKey(mk, e.Nonce[:], x, r)
	_, err := suite.Unwrap(&wk, st.Wrapped[:], st.AppendPrefix(nil))
	return err == nil
}

// attack returns, for each recorded envelope, whether the attacker reads it
// (any of its stanzas).
func (a *attacker) attack(envelopes [][]byte) []bool {
	read := make([]bool, len(envelopes))
	parsed := make([]*wire.Envelope, len(envelopes))
	for i, b := range envelopes {
		e, err := wire.Parse(b)
		if err != nil {
			a.t.Fatal(err)
		}
		parsed[i] = e
	}
	for progress := true; progress; {
		progress = false
		for i, e := range parsed {
			x := e.Sender
			for j := range e.Stanzas {
				r := uint8(j)
				if r >= x {
					r++
				}
				st := &e.Stanzas[j]
				switch st.Type {
				case wire.Continue:
					if mk, ok := a.messageKey(st.Chain, st.N); ok && unwraps(e, st, mk, x, r) {
						read[i] = true
					}
				case wire.Step:
					slot, ok := a.slotKey(st.Chain, st.K)
					if !ok {
						continue
					}
					for _, dk := range a.dks {
						K, _ := dk.Decapsulate(st.CT)
						cc := ratchet.StepContext(a.sc, a.ids[x][:], a.ids[r][:], st.Chain, st.K, st.Q, st.CT, e.RatchetKey)
						root, ck := ratchet.StepKeys(slot, K[:], cc)
						_, mk := ratchet.NextMessage(ck)
						if unwraps(e, st, mk, x, r) {
							read[i] = true
							id := ratchet.ChainID(st.Chain, st.K, st.CT)
							progress = a.learnCK(id, 0, ck) || progress
							progress = a.learnSK(id, 1, root) || progress
						}
					}
				case wire.Handshake:
					// The transcript is public; the root needs the
					// responder's prekey secrets, or slot 1 of the tree.
					spkPub, opkPub := a.pub(r, "s", st.SPKID), a.pub(r, "o", st.OPKID)
					if st.OPKID == 0 {
						opkPub = nil
					}
					h := ratchet.Handshake{Initiator: a.ids[x][:], Responder: a.ids[r][:], SPKID: st.SPKID, OPKID: st.OPKID,
						Gen: st.Gen, SPK: spkPub, OPK: opkPub, C1: st.C1, C2: st.C2, C3: st.C3}
					th := h.Transcript(a.sc)
					tree := h.TreeID(a.sc)
					spk := a.signed[st.SPKID]
					opk := a.oneTime[st.OPKID]
					if r == a.victimIndex() && spk != nil && (st.OPKID == 0 || opk != nil) {
						k1, _ := a.ik.Decapsulate(st.C1)
						k2, _ := spk.Decapsulate(st.C2)
						var k3 []byte
						if opk != nil {
							kk, _ := opk.Decapsulate(st.C3)
							k3 = kk[:]
						}
						progress = a.learnSK(tree, 1, ratchet.HandshakeRoot(th, k1[:], k2[:], k3)) || progress
					}
					s1, ok := a.slotKey(tree, 1)
					if !ok {
						continue
					}
					cc := ratchet.StepContext(a.sc, a.ids[x][:], a.ids[r][:], tree, 1, 1, nil, e.RatchetKey)
					root, ck := ratchet.StepKeys(s1, nil, cc)
					_, mk := ratchet.NextMessage(ck)
					if unwraps(e, st, mk, x, r) {
						read[i] = true
						id := ratchet.ChainID(tree, 1, nil)
						progress = a.learnCK(id, 0, ck) || progress
						progress = a.learnSK(id, 1, root) || progress
					}
				}
			}
		}
	}
	return read
}

func (a *attacker) victimIndex() uint8 { return a.victim }
