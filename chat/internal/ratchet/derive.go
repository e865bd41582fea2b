package ratchet

import (
	"github.com/luxfi/session/chat/internal/suite"
)

// The derivations of docs/protocol.md, section 5.

// NextMessage advances a message chain: CK_{n+1} || MK_n = H("…/message", CK_n).
func NextMessage(ck Key) (next, mk Key) { return suite.Split(suite.LabelMessage, ck[:]) }

// NextSlot advances a slot chain: SK_{k+1} || S_k = H("…/slot", SK_k).
func NextSlot(sk Key) (next, slot Key) { return suite.Split(suite.LabelSlot, sk[:]) }

// StepContext is CC.
func StepContext(sc Key, sender, recipient []byte, target ID, k, q uint32, ct, ekX []byte) Key {
	return StepContextHashed(sc, sender, recipient, target, k, q, ct, suite.KeyHash(ekX))
}

// StepContextHashed is StepContext given KH(ek_X), which a message's
// stanzas share.
func StepContextHashed(sc Key, sender, recipient []byte, target ID, k, q uint32, ct, ekHash []byte) Key {
	return suite.H32(suite.LabelStepContext, sc[:], sender, recipient, target[:],
		suite.U32(k), suite.U32(q), ct, ekHash)
}

// StepKeys is R_C || CK_C = H("…/step", S_k(T), K, CC).
func StepKeys(slot Key, k []byte, cc Key) (root, ck Key) {
	return suite.Split(suite.LabelStep, slot[:], k, cc[:])
}

// ChainID is H16("…/chain-id", T.id, u32(k), ct).
func ChainID(target ID, k uint32, ct []byte) ID {
	return suite.H16(suite.LabelChainID, target[:], suite.U32(k), ct)
}

// Handshake holds the public values of a handshake.
type Handshake struct {
	Initiator, Responder []byte // identity IDs
	SPKID, OPKID         uint32
	Gen                  uint32
	SPK, OPK             []byte // the responder's prekey public keys (OPK nil if none)
	C1, C2, C3           []byte
}

// Transcript is TH.
func (h *Handshake) Transcript(sc Key) Key {
	return suite.H32(suite.LabelTranscriptHS, sc[:], h.Initiator, h.Responder,
		suite.U32(h.SPKID), suite.U32(h.OPKID), suite.U32(h.Gen),
		suite.KeyHash(h.SPK), suite.KeyHash(h.OPK), h.C1, h.C2, h.C3)
}

// HandshakeRoot is R_H = H32("…/handshake", TH, K1, K2, K3).
func HandshakeRoot(th Key, k1, k2, k3 []byte) Key {
	return suite.H32(suite.LabelHandshake, th[:], k1, k2, k3)
}

// TreeID is H16("…/tree-id", SC, id(A), id(B), u32(spkID), u32(opkID),
// u32(gen), c1, c2, c3): public values only.
func (h *Handshake) TreeID(sc Key) ID {
	return suite.H16(suite.LabelTreeID, sc[:], h.Initiator, h.Responder,
		suite.U32(h.SPKID), suite.U32(h.OPKID), suite.U32(h.Gen), h.C1, h.C2, h.C3)
}
