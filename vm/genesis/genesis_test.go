package genesis

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/luxfi/database/memdb"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
)

// TestExampleFile parses the example genesis shipped at the repository root.
func TestExampleFile(t *testing.T) {
	b, err := os.ReadFile("../../genesis.example.json")
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config != config.Default() || g.Timestamp != 1767225600 || len(g.Identities) != 2 {
		t.Fatalf("example genesis: %+v", g)
	}
}

func identityJSON(t *testing.T, seed byte) map[string]any {
	id, err := crypto.IdentityFromSeed([32]byte{seed})
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"sessionId": id.SessionID, "kemPublicKey": id.KEMPublicKey, "dsaPublicKey": id.DSAPublicKey}
}

func marshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseAndApply(t *testing.T) {
	a, b := identityJSON(t, 1), identityJSON(t, 2)
	raw := marshal(t, map[string]any{"timestamp": 100, "config": map[string]any{"maxChannels": 3}, "identities": []any{a, b}})
	g, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if g.Config.MaxChannels != 3 || g.Config.SessionTTL != config.DefaultSessionTTL || g.TimestampMillis() != 100_000 {
		t.Fatalf("%+v", g.Config)
	}
	st := state.New(memdb.New())
	if err := g.Apply(st); err != nil {
		t.Fatal(err)
	}
	sid, _ := crypto.ParseSessionID(a["sessionId"].(string))
	if id, err := st.GetIdentity(sid); err != nil || id.Height != 0 || id.Timestamp != 100_000 {
		t.Fatalf("identity %v", err)
	}
	if hash, cfg, err := st.Genesis(); err != nil || hash != g.Hash || !strings.Contains(string(cfg), `"maxChannels":3`) {
		t.Fatalf("stored genesis: %s %v", cfg, err)
	}
	// Whitespace changes the genesis hash, so the chain.
	g2, _ := Parse(append(raw, ' '))
	if g2.Hash == g.Hash {
		t.Fatal("hash ignores bytes")
	}
}

func TestParseInvalid(t *testing.T) {
	a := identityJSON(t, 1)
	wrongID := identityJSON(t, 1)
	wrongID["sessionId"] = identityJSON(t, 2)["sessionId"]
	shortKey := identityJSON(t, 1)
	shortKey["dsaPublicKey"] = []byte{1, 2, 3}
	cases := []struct {
		name    string
		in      []byte
		mention string
	}{
		{"empty", nil, "empty genesis"},
		{"not JSON", []byte("{"), "invalid genesis"},
		{"unknown field", marshal(t, map[string]any{"timestamp": 1, "chainId": 5}), "unknown field"},
		{"wrong case", []byte(`{"Timestamp": 1}`), "unknown field"},
		{"negative timestamp", marshal(t, map[string]any{"timestamp": -1}), "timestamp"},
		{"bad config", marshal(t, map[string]any{"config": map[string]any{"retentionDays": 0}}), "retentionDays"},
		{"unknown config field", marshal(t, map[string]any{"config": map[string]any{"ttl": 5}}), "unknown field"},
		{"ID not derived", marshal(t, map[string]any{"identities": []any{wrongID}}), "does not derive"},
		{"short key", marshal(t, map[string]any{"identities": []any{shortKey}}), "ML-DSA-65"},
		{"duplicate identity", marshal(t, map[string]any{"identities": []any{a, a}}), "repeats"},
		{"trailing data", []byte(`{} {}`), "trailing"},
		{"nonce not hex", marshal(t, map[string]any{"nonce": "xyz"}), "nonce"},
		{"nonce too long", marshal(t, map[string]any{"nonce": strings.Repeat("ab", MaxNonceSize+1)}), "nonce"},
	}
	for _, tc := range cases {
		_, err := Parse(tc.in)
		if !errors.Is(err, ErrInvalidGenesis) || !strings.Contains(err.Error(), tc.mention) {
			t.Errorf("%s: %v (want mention of %q)", tc.name, err, tc.mention)
		}
	}
}

// TestNonce: the nonce changes the genesis hash and nothing else.
func TestNonce(t *testing.T) {
	plain, err := Parse([]byte(`{"timestamp": 5}`))
	if err != nil {
		t.Fatal(err)
	}
	with, err := Parse([]byte(`{"timestamp": 5, "nonce": "00ff10"}`))
	if err != nil {
		t.Fatal(err)
	}
	other, err := Parse([]byte(`{"timestamp": 5, "nonce": "00ff11"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(with.Nonce, []byte{0, 0xff, 0x10}) || len(plain.Nonce) != 0 {
		t.Fatalf("nonce %x / %x", with.Nonce, plain.Nonce)
	}
	if with.Hash == plain.Hash || with.Hash == other.Hash {
		t.Fatal("the nonce does not change the genesis hash")
	}
	if with.Config != plain.Config || with.Timestamp != plain.Timestamp {
		t.Fatal("the nonce changed the chain")
	}
}
