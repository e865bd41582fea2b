package chattest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// negativeFile is negative_kat.json: altered versions of the envelope at
// position 1 of conversation_kat.json, each opened by bob in the state he
// has after step 6 of that script (before he opened anything), with the
// error each must give. None of them changes bob's state: after all of
// them, the unaltered envelope opens.
type negativeFile struct {
	Description string         `json:"description"`
	Cases       []negativeCase `json:"cases"`
}

type negativeCase struct {
	Name     string     `json:"name"`
	Hex      string     `json:"hex"`
	Position uint64     `json:"position"`
	Sender   string     `json:"sender"`              // the delivery's author
	Claims   []katClaim `json:"claims,omitempty"`    // the delivery's claims (none: the creator's session claim applies)
	Session  string     `json:"sessionId,omitempty"` // bob opens it in this session instead
	Error    string     `json:"error"`
}

const negativePath = "testdata/negative_kat.json"

// negativeCases derives the cases from the original envelope env. ck and hh
// are its content key and header hash (from derivation_kat.json), used to
// make bodies only a recipient could make.
func negativeCases(t *testing.T, f *katFile, env []byte, ck [32]byte, hh [32]byte) []negativeCase {
	e, err := wire.Parse(env)
	if err != nil {
		t.Fatal(err)
	}
	headerLen := len(env) - len(e.Body)
	bob0 := wire.FixedHeaderSize + suite.KEMPublicKeySize // bob's stanza
	hs := e.Stanzas[0]
	off := map[string]int{
		"type": bob0, "spkID": bob0 + 1, "opkID": bob0 + 5, "gen": bob0 + 9,
		"c1": bob0 + 13, "c2": bob0 + 13 + 1088, "c3": bob0 + 13 + 2176, "wrapped": bob0 + hs.Size() - 48,
	}
	carol0 := bob0 + hs.Size()
	flip := func(i int) []byte { b := bytes.Clone(env); b[i] ^= 0x01; return b }
	set32 := func(i int, v uint32) []byte { b := bytes.Clone(env); binary.BigEndian.PutUint32(b[i:], v); return b }
	reseal := func(mutate func(b *wire.Body)) []byte {
		pt, err := suite.OpenBody(&ck, e.Body, hh[:])
		if err != nil {
			t.Fatal(err)
		}
		b, err := wire.ParseBody(pt)
		if err != nil {
			t.Fatal(err)
		}
		b.Signature = bytes.Clone(b.Signature)
		mutate(b)
		return suite.SealBody(bytes.Clone(env[:headerLen]), &ck, b.Append(nil), hh[:])
	}
	alice, bobID, carol := f.Parties[0].SessionID, f.Parties[1].SessionID, f.Parties[2].SessionID
	other := bytes.Clone(mustHex(t, f.SessionID))
	other[0] ^= 0x01
	cs := []negativeCase{
		{Name: "truncated header", Hex: hex.EncodeToString(env[:wire.FixedHeaderSize-1])},
		{Name: "truncated in a stanza", Hex: hex.EncodeToString(env[:bob0+100])},
		{Name: "truncated body", Hex: hex.EncodeToString(env[:len(env)-1])},
		{Name: "body shorter than its minimum", Hex: hex.EncodeToString(env[:headerLen+wire.MinBodySize-1])},
		{Name: "extended", Hex: hex.EncodeToString(append(bytes.Clone(env), 0))},
		{Name: "magic", Hex: hex.EncodeToString(flip(0))},
		{Name: "version", Hex: hex.EncodeToString(flip(2))},
		{Name: "sender index claims bob", Hex: hex.EncodeToString(flip(3))},
		{Name: "stanza count", Hex: hex.EncodeToString(flip(4))},
		{Name: "flags", Hex: hex.EncodeToString(flip(5))},
		{Name: "nonce", Hex: hex.EncodeToString(flip(6))},
		{Name: "ratchet key", Hex: hex.EncodeToString(flip(wire.FixedHeaderSize + 600))},
		{Name: "stanza type", Hex: hex.EncodeToString(flip(off["type"]))},
		{Name: "signed prekey ID", Hex: hex.EncodeToString(set32(off["spkID"], 7))},
		{Name: "one-time prekey not claimed for this message", Hex: hex.EncodeToString(set32(off["opkID"], 2))},
		{Name: "one-time prekey unknown and unclaimed", Hex: hex.EncodeToString(set32(off["opkID"], 9))},
		{Name: "generation", Hex: hex.EncodeToString(set32(off["gen"], 2))},
		{Name: "signed prekey unknown, as claimed", Hex: hex.EncodeToString(set32(off["spkID"], 7)),
			Claims: []katClaim{{Participant: bobID, SignedPrekeyID: 7, OneTimePrekeyID: hs.OPKID}}},
		{Name: "one-time prekey unknown, as claimed", Hex: hex.EncodeToString(set32(off["opkID"], 9)),
			Claims: []katClaim{{Participant: bobID, SignedPrekeyID: hs.SPKID, OneTimePrekeyID: 9}}},
		{Name: "generation zero", Hex: hex.EncodeToString(set32(off["gen"], 0))},
		{Name: "a transaction claim with another signed prekey", Hex: hex.EncodeToString(env),
			Claims: []katClaim{{Participant: bobID, SignedPrekeyID: hs.SPKID + 1, OneTimePrekeyID: hs.OPKID}}},
		{Name: "a transaction claim without the one-time prekey (a downgrade)", Hex: hex.EncodeToString(env),
			Claims: []katClaim{{Participant: bobID, SignedPrekeyID: hs.SPKID}}},
		{Name: "two transaction claims for the responder", Hex: hex.EncodeToString(env),
			Claims: []katClaim{{Participant: bobID, SignedPrekeyID: hs.SPKID, OneTimePrekeyID: hs.OPKID}, {Participant: bobID, SignedPrekeyID: hs.SPKID, OneTimePrekeyID: hs.OPKID}}},
		{Name: "ciphertext to the identity key", Hex: hex.EncodeToString(flip(off["c1"] + 5))},
		{Name: "ciphertext to the signed prekey", Hex: hex.EncodeToString(flip(off["c2"] + 5))},
		{Name: "ciphertext to the one-time prekey", Hex: hex.EncodeToString(flip(off["c3"] + 5))},
		{Name: "wrapped content key", Hex: hex.EncodeToString(flip(off["wrapped"]))},
		{Name: "another recipient's stanza", Hex: hex.EncodeToString(flip(carol0 + 40))},
		{Name: "body", Hex: hex.EncodeToString(flip(headerLen + 10))},
		{Name: "body tag", Hex: hex.EncodeToString(flip(len(env) - 1))},
		{Name: "re-encrypted by a recipient: signature altered", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.Signature[100] ^= 1 }))},
		{Name: "re-encrypted by a recipient: plaintext altered", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.Plaintext = []byte("hello, this is mallory") }))},
		{Name: "re-encrypted by a recipient: time altered", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.SentAt++ }))},
		{Name: "re-encrypted by a recipient: message ID altered", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.MID[0] ^= 1 }))},
		{Name: "re-encrypted by a recipient: reference altered", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.After[0] ^= 1 }))},
		{Name: "re-encrypted by a recipient: kind control with content", Hex: hex.EncodeToString(reseal(func(b *wire.Body) { b.Kind = wire.KindControl }))},
		{Name: "transaction author is not the sender", Hex: hex.EncodeToString(env), Sender: carol},
		{Name: "another session", Hex: hex.EncodeToString(env), Session: hex.EncodeToString(other)},
		{Name: "position zero", Hex: hex.EncodeToString(env), Position: 0},
	}
	for i := range cs {
		if cs[i].Sender == "" {
			cs[i].Sender = alice
		}
		if cs[i].Name != "position zero" {
			cs[i].Position = 1
		}
	}
	return cs
}

func TestNegativeVectors(t *testing.T) {
	var f katFile
	readJSON(t, katPath, &f)
	var d derivationFile
	readJSON(t, derivationPath, &d)
	r := newRunner(t, &f)
	for i := range 7 { // prekeys, create, joins, alice's first send
		r.step(i, &f.Steps[i], false)
	}
	env := mustHex(t, envelopeAt(t, &f, 1))
	bob := r.party("bob")
	open := func(c negativeCase) string {
		d := &chat.Delivery{Envelope: mustHex(t, c.Hex), Position: c.Position}
		sid, err := crypto.ParseSessionID(c.Sender)
		if err != nil {
			t.Fatal(err)
		}
		d.Sender = sid
		for _, cl := range c.Claims { // none: position 1 was sent by the creator, its claims are the session's
			p, err := crypto.ParseSessionID(cl.Participant)
			if err != nil {
				t.Fatal(err)
			}
			d.Claims = append(d.Claims, chat.Claim{Participant: p, SignedPrekeyID: cl.SignedPrekeyID, OneTimePrekeyID: cl.OneTimePrekeyID})
		}
		conv := bob.conv
		if c.Session != "" {
			s := *r.session
			copy(s.ID[:], mustHex(t, c.Session))
			if conv, err = bob.dev.Conversation(&s); err != nil {
				t.Fatal(err)
			}
		}
		_, err = conv.Open(time.UnixMilli(f.Steps[7].Time), d)
		if err == nil {
			return ""
		}
		return errorName(err)
	}
	var cases []negativeCase
	if *update {
		cases = negativeCases(t, &f, env, [32]byte(mustHex(t, d.Handshake["ck"])), [32]byte(mustHex(t, d.Handshake["HH"])))
		for i := range cases {
			cases[i].Error = open(cases[i])
		}
		writeJSON(t, negativePath, &negativeFile{
			Description: "Altered versions of conversation_kat.json position 1 (alice's first message), each opened by bob after step 6 of that script, with the error class each must give. Failed opens change nothing: afterwards the original opens. Cases with a sessionId are opened in a session with that ID and the same participants.",
			Cases:       cases,
		})
	} else {
		var nf negativeFile
		readJSON(t, negativePath, &nf)
		cases = nf.Cases
		for _, c := range cases {
			if got := open(c); got != c.Error {
				t.Errorf("%s: %q, vector says %q", c.Name, got, c.Error)
			}
		}
	}
	if len(cases) < 38 {
		t.Fatalf("%d cases", len(cases))
	}
	for _, c := range cases {
		if c.Error == "" || c.Error[:min(5, len(c.Error))] == "other" {
			t.Errorf("%s: error %q is not a protocol error class", c.Name, c.Error)
		}
	}
	// Nothing above changed bob's state.
	r.step(7, &f.Steps[7], false)
}
