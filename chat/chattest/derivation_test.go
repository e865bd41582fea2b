package chattest

import (
	"encoding/hex"
	"io"
	"testing"

	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// derivationFile is derivation_kat.json: the intermediate values of
// docs/protocol.md section 5 for the first handshake (alice to bob, position
// 1) and the first step (bob to alice, position 2) of conversation_kat.json.
// They are recomputed here from the formulas of the spec, from the secrets
// the random streams give, independently of package chat's code paths.
type derivationFile struct {
	Description string            `json:"description"`
	Handshake   map[string]string `json:"handshake"`
	NoOneTime   map[string]string `json:"handshakeWithoutOneTimePrekey"`
	Step        map[string]string `json:"step"`
}

const derivationPath = "testdata/derivation_kat.json"

func streamBytes(name string, off, n int) []byte {
	r := Stream(name)
	b := make([]byte, off+n)
	io.ReadFull(r, b)
	return b[off:]
}

func TestDerivationVectors(t *testing.T) {
	var f katFile
	readJSON(t, katPath, &f)
	env1 := mustHex(t, envelopeAt(t, &f, 1))
	env2 := mustHex(t, envelopeAt(t, &f, 2))
	ids := map[string]*crypto.Identity{}
	idb := map[string][]byte{}
	for _, p := range f.Parties {
		id, err := crypto.IdentityFromSeed([32]byte(mustHex(t, p.Seed)))
		if err != nil {
			t.Fatal(err)
		}
		ids[p.Name] = id
		sid, _ := crypto.ParseSessionID(id.SessionID)
		idb[p.Name] = append([]byte{sid.Prefix}, sid.Digest[:]...)
	}
	h := map[string]string{}
	s := map[string]string{}
	put := func(m map[string]string, k string, v []byte) { m[k] = hex.EncodeToString(v) }

	// Session values.
	pd := suite.H32(suite.LabelParticipants, []byte{3}, idb["alice"], idb["bob"], idb["carol"])
	sc := suite.H32(suite.LabelSession, []byte{1}, mustHex(t, f.ChainID), mustHex(t, f.SessionID), pd[:])
	put(h, "PD", pd[:])
	put(h, "SC", sc[:])

	// Position 1, bob's stanza (index 0): a handshake with bob's signed
	// prekey 1 and one-time prekey 1 (bob's stream: the signed prekey seed,
	// then one-time prekey seeds, 64 bytes each).
	e1, err := wire.Parse(env1)
	if err != nil {
		t.Fatal(err)
	}
	st := &e1.Stanzas[0]
	if st.Type != wire.Handshake || st.SPKID != 1 || st.OPKID != 1 {
		t.Fatalf("position 1, bob's stanza: %+v", st.Type)
	}
	ik, err := suite.ParseKEMPrivate(ids["bob"].KEMSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	spk, _ := suite.NewKEMFromSeed(streamBytes("bob", 0, 64))
	opk, _ := suite.NewKEMFromSeed(streamBytes("bob", 64, 64))
	k1, _ := ik.Decapsulate(st.C1)
	k2, _ := spk.Decapsulate(st.C2)
	k3, _ := opk.Decapsulate(st.C3)
	put(h, "K1", k1[:])
	put(h, "K2", k2[:])
	put(h, "K3", k3[:])
	if st.Gen != 1 {
		t.Fatalf("position 1: generation %d", st.Gen)
	}
	th := suite.H32(suite.LabelTranscriptHS, sc[:], idb["alice"], idb["bob"], suite.U32(1), suite.U32(1), suite.U32(st.Gen),
		suite.KeyHash(spk.Public), suite.KeyHash(opk.Public), st.C1, st.C2, st.C3)
	rh := suite.H32(suite.LabelHandshake, th[:], k1[:], k2[:], k3[:])
	treeID := suite.H16(suite.LabelTreeID, sc[:], idb["alice"], idb["bob"], suite.U32(1), suite.U32(1), suite.U32(st.Gen), st.C1, st.C2, st.C3)
	sk2, s1 := suite.Split(suite.LabelSlot, rh[:])
	cc := suite.H32(suite.LabelStepContext, sc[:], idb["alice"], idb["bob"], treeID[:], suite.U32(1), suite.U32(1), nil, suite.KeyHash(e1.RatchetKey))
	rA1, ckA1 := suite.Split(suite.LabelStep, s1[:], nil, cc[:])
	a1 := suite.H16(suite.LabelChainID, treeID[:], suite.U32(1), nil)
	_, mk0 := suite.Split(suite.LabelMessage, ckA1[:])
	wk := suite.H32(suite.LabelWrap, mk0[:], e1.Nonce[:], []byte{0}, []byte{1})
	ck, err := suite.Unwrap(&wk, st.Wrapped[:], st.AppendPrefix(nil))
	if err != nil {
		t.Fatal("position 1: the wrap key of the spec does not open bob's stanza")
	}
	hh := suite.H32(suite.LabelHeader, env1[:len(env1)-len(e1.Body)])
	body, err := suite.OpenBody(&ck, e1.Body, hh[:])
	if err != nil {
		t.Fatal("position 1: the body does not open")
	}
	b, err := wire.ParseBody(body)
	if err != nil {
		t.Fatal(err)
	}
	m := suite.H(suite.LabelTranscript, sc[:], idb["alice"], hh[:], []byte{b.Kind}, suite.U64(uint64(b.SentAt)), b.MID[:], b.After[:], b.Plaintext)
	if !ids["alice"].VerifyContext([]byte(suite.SignContext), m[:], b.Signature) {
		t.Fatal("position 1: the signature does not verify over M")
	}
	// Alice's stream: her prekeys (3 × 64 bytes), then the send: mid (16),
	// the nonce (16), the content key randomness r (32), the ratchet key
	// seed (64), the encapsulation seeds.
	mid := streamBytes("alice", 3*64, 16)
	if string(mid) != string(b.MID[:]) || string(streamBytes("alice", 3*64+16, 16)) != string(e1.Nonce[:]) {
		t.Fatal("position 1: mid and the nonce are not where section 7.4 puts them in alice's stream")
	}
	r := streamBytes("alice", 3*64+32, 32)
	ckSpec := suite.H32(suite.LabelContentKey, r, []byte{b.Kind}, suite.U64(uint64(b.SentAt)), b.MID[:], b.Plaintext)
	if ckSpec != ck {
		t.Fatal("position 1: the content key is not H32(content-key, r, kind, sentAt, mid, plaintext)")
	}
	msgID := suite.H16(suite.LabelMessageID, idb["alice"], b.MID[:])
	envID := suite.H16(suite.LabelEnvelopeID, hh[:], e1.Body[len(e1.Body)-16:])
	for k, v := range map[string][]byte{
		"TH": th[:], "R_H": rh[:], "treeId": treeID[:], "S_1(H)": s1[:], "SK_2(H)": sk2[:], "CC(A1)": cc[:],
		"R_A1": rA1[:], "CK_A1": ckA1[:], "id(A1)": a1[:], "MK_0": mk0[:], "wk": wk[:], "r": r, "ck": ck[:], "HH": hh[:], "M": m[:],
		"mid": mid, "messageId": msgID[:], "envelopeId": envID[:],
	} {
		put(h, k, v)
	}

	// Position 2, carol's stanza (index 1): bob's handshake with carol,
	// without a one-time prekey (alice's session claim took carol's only
	// one): K3, c3 and KH(OPK) are empty, encoded as lp("") = 00000000.
	e2, err := wire.Parse(env2)
	if err != nil {
		t.Fatal(err)
	}
	n1 := map[string]string{}
	hc := &e2.Stanzas[1]
	if hc.Type != wire.Handshake || hc.OPKID != 0 || hc.C3 != nil {
		t.Fatal("position 2: carol's stanza is not a handshake without a one-time prekey")
	}
	ikC, err := suite.ParseKEMPrivate(ids["carol"].KEMSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	spkC, _ := suite.NewKEMFromSeed(streamBytes("carol", 0, 64))
	c1k, _ := ikC.Decapsulate(hc.C1)
	c2k, _ := spkC.Decapsulate(hc.C2)
	thC := suite.H32(suite.LabelTranscriptHS, sc[:], idb["bob"], idb["carol"], suite.U32(hc.SPKID), suite.U32(0), suite.U32(hc.Gen),
		suite.KeyHash(spkC.Public), nil, hc.C1, hc.C2, nil)
	rhC := suite.H32(suite.LabelHandshake, thC[:], c1k[:], c2k[:], nil)
	treeC := suite.H16(suite.LabelTreeID, sc[:], idb["bob"], idb["carol"], suite.U32(hc.SPKID), suite.U32(0), suite.U32(hc.Gen), hc.C1, hc.C2, nil)
	_, s1C := suite.Split(suite.LabelSlot, rhC[:])
	ccC := suite.H32(suite.LabelStepContext, sc[:], idb["bob"], idb["carol"], treeC[:], suite.U32(1), suite.U32(1), nil, suite.KeyHash(e2.RatchetKey))
	rB1C, ckB1C := suite.Split(suite.LabelStep, s1C[:], nil, ccC[:])
	_, mk0C := suite.Split(suite.LabelMessage, ckB1C[:])
	wkC := suite.H32(suite.LabelWrap, mk0C[:], e2.Nonce[:], []byte{1}, []byte{2})
	if _, err := suite.Unwrap(&wkC, hc.Wrapped[:], hc.AppendPrefix(nil)); err != nil {
		t.Fatal("position 2: the wrap key of the spec does not open carol's stanza")
	}
	for k, v := range map[string][]byte{
		"K1": c1k[:], "K2": c2k[:], "TH": thC[:], "R_H": rhC[:], "treeId": treeC[:], "S_1(H)": s1C[:], "CC(A1)": ccC[:],
		"R_A1": rB1C[:], "CK_A1": ckB1C[:], "MK_0": mk0C[:], "wk": wkC[:],
	} {
		put(n1, k, v)
	}

	// Position 2, alice's stanza (index 0): bob's first chain, a step
	// against A1 at slot 1. A1's ratchet key seed is in alice's stream after
	// her prekeys (3 × 64 bytes), position 1's mid (16), nonce (16) and
	// content key randomness (32).
	st2 := &e2.Stanzas[0]
	if st2.Type != wire.Step || st2.Chain != a1 || st2.K != 1 || st2.Q != 1 {
		t.Fatal("position 2: alice's stanza is not bob's first step against A1")
	}
	dkA1, _ := suite.NewKEMFromSeed(streamBytes("alice", 3*64+16+16+32, 64))
	if string(dkA1.Public) != string(e1.RatchetKey) {
		t.Fatal("A1's ratchet key is not where section 7.4 puts it in alice's stream")
	}
	kk, _ := dkA1.Decapsulate(st2.CT)
	_, slot := suite.Split(suite.LabelSlot, rA1[:])
	cc2 := suite.H32(suite.LabelStepContext, sc[:], idb["bob"], idb["alice"], a1[:], suite.U32(1), suite.U32(1), st2.CT, suite.KeyHash(e2.RatchetKey))
	rB1, ckB1 := suite.Split(suite.LabelStep, slot[:], kk[:], cc2[:])
	b1 := suite.H16(suite.LabelChainID, a1[:], suite.U32(1), st2.CT)
	_, mk := suite.Split(suite.LabelMessage, ckB1[:])
	wk2 := suite.H32(suite.LabelWrap, mk[:], e2.Nonce[:], []byte{1}, []byte{0})
	ck2, err := suite.Unwrap(&wk2, st2.Wrapped[:], st2.AppendPrefix(nil))
	if err != nil {
		t.Fatal("position 2: the wrap key of the spec does not open alice's stanza")
	}
	for k, v := range map[string][]byte{
		"K": kk[:], "S_1(A1)": slot[:], "CC(B1)": cc2[:], "R_B1": rB1[:], "CK_B1": ckB1[:], "id(B1)": b1[:],
		"MK_0": mk[:], "wk": wk2[:], "ck": ck2[:],
	} {
		put(s, k, v)
	}

	got := &derivationFile{
		Description: "Intermediate values of docs/protocol.md section 5 for conversation_kat.json: the handshake of position 1 (alice to bob, bob's stanza), the handshake without a one-time prekey of position 2 (bob to carol, carol's stanza; its chain values are bob's first chain B1, named as A1 in the spec's terms) and the step of position 2 (bob to alice, alice's stanza).",
		Handshake:   h, NoOneTime: n1, Step: s,
	}
	if *update {
		writeJSON(t, derivationPath, got)
		return
	}
	var want derivationFile
	readJSON(t, derivationPath, &want)
	for name, pair := range map[string][2]map[string]string{"handshake": {want.Handshake, h}, "handshake without one-time prekey": {want.NoOneTime, n1}, "step": {want.Step, s}} {
		if len(pair[0]) != len(pair[1]) {
			t.Fatalf("%s: %d values, vector has %d", name, len(pair[1]), len(pair[0]))
		}
		for k, v := range pair[0] {
			if pair[1][k] != v {
				t.Errorf("%s %s = %s, vector says %s", name, k, pair[1][k], v)
			}
		}
	}
}

func envelopeAt(t *testing.T, f *katFile, pos uint64) string {
	for _, s := range f.Steps {
		for _, e := range s.Envelopes {
			if e.Position == pos {
				return e.Hex
			}
		}
	}
	t.Fatalf("no envelope at position %d", pos)
	return ""
}
