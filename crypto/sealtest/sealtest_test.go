package sealtest_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/sealtest"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/sha3"
)

// katVector is testdata/seal_kat.json, the known-answer vector documented
// in LLM.md.
type katVector struct {
	SenderSeed     string   `json:"senderSeed"`
	RecipientSeeds []string `json:"recipientSeeds"`
	RandomSeed     string   `json:"randomSeed"`
	Plaintext      string   `json:"plaintext"`
	AD             string   `json:"ad"`
	SenderID       string   `json:"senderSessionId"`
	EnvelopeHash   string   `json:"envelopeBlake2b256"`
	Envelope       string   `json:"envelope"`
}

func seedFromHex(t *testing.T, s string) [crypto.SeedSize]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != crypto.SeedSize {
		t.Fatalf("bad seed %q", s)
	}
	return [crypto.SeedSize]byte(b)
}

func TestSealKnownAnswer(t *testing.T) {
	data, err := os.ReadFile("testdata/seal_kat.json")
	if err != nil {
		t.Fatal(err)
	}
	var v katVector
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	sender, err := crypto.IdentityFromSeed(seedFromHex(t, v.SenderSeed))
	if err != nil {
		t.Fatal(err)
	}
	var recipients []*crypto.Identity
	var secrets []*crypto.Identity
	for _, s := range v.RecipientSeeds {
		id, err := crypto.IdentityFromSeed(seedFromHex(t, s))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, id)
		recipients = append(recipients, id.PublicIdentity())
	}
	pt, _ := hex.DecodeString(v.Plaintext)
	ad, _ := hex.DecodeString(v.AD)
	// The randomness is SHAKE256(randomSeed), read as a stream.
	rng := sha3.NewShake256()
	rng.Write([]byte(v.RandomSeed))

	env, err := sealtest.Seal(rng, sender, recipients, pt, ad)
	if err != nil {
		t.Fatal(err)
	}
	sum := blake2b.Sum256(env)
	if got := hex.EncodeToString(sum[:]); got != v.EnvelopeHash {
		t.Errorf("envelope hash %s, want %s", got, v.EnvelopeHash)
	}
	want, _ := hex.DecodeString(v.Envelope)
	if !bytes.Equal(env, want) {
		t.Errorf("envelope differs from the recorded one (%d vs %d bytes)", len(env), len(want))
	}
	// The recorded envelope opens for every recipient with the right sender.
	for i, r := range secrets {
		got, sid, err := crypto.Open(r, want, ad)
		if err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
		if !bytes.Equal(got, pt) || sid != v.SenderID || sid != sender.SessionID {
			t.Fatalf("recipient %d: wrong plaintext or sender %s", i, sid)
		}
	}
}

// TestSealDeterministic checks that the deterministic entry point depends
// only on its inputs, and that crypto.Seal does not (it is randomized).
func TestSealDeterministic(t *testing.T) {
	var s1, s2 [crypto.SeedSize]byte
	s2[0] = 1
	a, _ := crypto.IdentityFromSeed(s1)
	b, _ := crypto.IdentityFromSeed(s2)
	seal := func(seed string) []byte {
		rng := sha3.NewShake256()
		rng.Write([]byte(seed))
		env, err := sealtest.Seal(rng, a, []*crypto.Identity{b.PublicIdentity()}, []byte("m"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	if !bytes.Equal(seal("x"), seal("x")) {
		t.Fatal("same randomness, different envelopes")
	}
	if bytes.Equal(seal("x"), seal("y")) {
		t.Fatal("different randomness, same envelope")
	}
}
