// Package genesis parses the SessionVM genesis and applies it to an empty
// state.
//
// # Genesis JSON
//
//	{
//	  "timestamp": 1767225600,          // Unix seconds; the genesis block time (default 0)
//	  "config": {                        // chain config; see package config and docs/chain.md (defaults apply)
//	    "sessionTTL": 86400, "maxMessages": 10000, "maxChannels": 1000,
//	    "retentionDays": 30, "idPrefix": "07",
//	    "registration": {...}, "rateLimits": {...}, "prekeys": {...}
//	  },
//	  "identities": [                    // optional initial identities
//	    {"sessionId": "07…", "kemPublicKey": "<base64>", "dsaPublicKey": "<base64>"}
//	  ],
//	  "nonce": "<hex>"                   // optional, up to 32 bytes
//	}
//
// The nonce has no effect on execution: it only makes the genesis bytes,
// hence the genesis hash and (without a Lux chain context) the chain ID,
// differ between chains that are otherwise alike. sessiond writes 16
// random bytes into the genesis of every chain it creates without
// --genesis.
//
// Identities use the JSON form of crypto.Identity (public fields only, keys
// in standard base64), so the output of a public identity can be pasted in.
// They need no registration proof of work.
// Each Session ID must derive from its keys, and no identity may appear
// twice. Unknown fields are refused. Every error wraps ErrInvalidGenesis.
//
// The genesis block has height 0, no transactions, the genesis timestamp,
// and as parent the SHA-256 of the genesis bytes, so two different genesis
// files give two different chains.
package genesis

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
)

// ErrInvalidGenesis is wrapped by every error of Parse.
var ErrInvalidGenesis = errors.New("invalid genesis")

// Identity is an initial identity.
type Identity struct {
	SessionID    string `json:"sessionId"`
	KEMPublicKey []byte `json:"kemPublicKey"`
	DSAPublicKey []byte `json:"dsaPublicKey"`
}

// Genesis is a parsed genesis.
type Genesis struct {
	Timestamp  int64 // Unix seconds
	Config     config.Config
	Identities []Identity
	Nonce      []byte // at most MaxNonceSize bytes; no effect on execution

	// Hash is SHA-256 of the genesis bytes.
	Hash [32]byte
	// ConfigJSON is the canonical JSON of Config.
	ConfigJSON []byte

	ids []crypto.SessionID
}

// MaxTimestamp bounds the genesis timestamp (year 9999).
const MaxTimestamp = 253402300799

// MaxNonceSize bounds the genesis nonce (bytes).
const MaxNonceSize = 32

// Parse decodes and checks genesis bytes.
func Parse(b []byte) (*Genesis, error) {
	if len(b) > config.MaxGenesisSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrInvalidGenesis, len(b), config.MaxGenesisSize)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, fmt.Errorf("%w: empty genesis (an example is genesis.example.json)", ErrInvalidGenesis)
	}
	var raw struct {
		Timestamp  int64           `json:"timestamp"`
		Config     json.RawMessage `json:"config"`
		Identities []Identity      `json:"identities"`
		Nonce      string          `json:"nonce"`
	}
	if err := config.DecodeStrict(b, &raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidGenesis, err)
	}
	if raw.Timestamp < 0 || raw.Timestamp > MaxTimestamp {
		return nil, fmt.Errorf("%w: timestamp %d out of range [0, %d]", ErrInvalidGenesis, raw.Timestamp, MaxTimestamp)
	}
	cfg, err := config.Parse(raw.Config)
	if err != nil {
		return nil, fmt.Errorf("%w: config: %w", ErrInvalidGenesis, err)
	}
	if len(raw.Identities) > config.MaxGenesisIdentities {
		return nil, fmt.Errorf("%w: %d identities, at most %d", ErrInvalidGenesis, len(raw.Identities), config.MaxGenesisIdentities)
	}
	nonce, err := hex.DecodeString(raw.Nonce)
	if err != nil || len(nonce) > MaxNonceSize {
		return nil, fmt.Errorf("%w: nonce must be hex of at most %d bytes", ErrInvalidGenesis, MaxNonceSize)
	}
	g := &Genesis{Timestamp: raw.Timestamp, Config: cfg, Identities: raw.Identities, Nonce: nonce, Hash: sha256.Sum256(b)}
	seen := make(map[crypto.SessionID]int, len(raw.Identities)) // lookups only
	for i, id := range raw.Identities {
		derived, err := crypto.DeriveSessionID(id.KEMPublicKey, id.DSAPublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: identity %d: public keys must be %d-byte ML-KEM-768 and %d-byte ML-DSA-65 keys", ErrInvalidGenesis, i, crypto.KEMPublicKeySize, crypto.DSAPublicKeySize)
		}
		if id.SessionID != derived {
			return nil, fmt.Errorf("%w: identity %d: sessionId %q does not derive from its keys (want %s)", ErrInvalidGenesis, i, id.SessionID, derived)
		}
		if _, err := crypto.NewPublicIdentity(id.KEMPublicKey, id.DSAPublicKey); err != nil {
			return nil, fmt.Errorf("%w: identity %d: %v", ErrInvalidGenesis, i, err)
		}
		sid, err := crypto.ParseSessionID(derived)
		if err != nil {
			return nil, fmt.Errorf("%w: identity %d: %v", ErrInvalidGenesis, i, err)
		}
		if sid.Prefix != cfg.IDPrefixByte() {
			return nil, fmt.Errorf("%w: identity %d: prefix %02x, chain uses %s", ErrInvalidGenesis, i, sid.Prefix, cfg.IDPrefix)
		}
		if j, dup := seen[sid]; dup {
			return nil, fmt.Errorf("%w: identity %d repeats identity %d", ErrInvalidGenesis, i, j)
		}
		seen[sid] = i
		g.ids = append(g.ids, sid)
	}
	g.ConfigJSON, err = json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	return g, nil
}

// TimestampMillis returns the genesis block time in Unix milliseconds.
func (g *Genesis) TimestampMillis() int64 { return g.Timestamp * 1000 }

// Apply writes the genesis into st: the genesis hash, the config and the
// initial identities (height 0). It does not write the genesis block.
func (g *Genesis) Apply(st *state.State) error {
	if err := st.SetGenesis(g.Hash, g.ConfigJSON); err != nil {
		return err
	}
	for i, id := range g.Identities {
		if err := st.PutIdentity(&state.Identity{
			ID:           g.ids[i],
			KEMPublicKey: id.KEMPublicKey,
			DSAPublicKey: id.DSAPublicKey,
			Height:       0,
			Timestamp:    g.TimestampMillis(),
		}); err != nil {
			return err
		}
	}
	return nil
}
