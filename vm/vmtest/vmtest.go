// Package vmtest holds test support shared by the tests of the VM and of
// the packages built on it: a genesis builder, a settable clock and
// deterministic signing. It is not for production use.
package vmtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/genesis"
	"github.com/luxfi/session/vm/tx"
)

// GenesisJSON returns a genesis with the given timestamp (Unix seconds),
// config object (nil: the defaults) and initial identities. Unless cfg sets
// "registration", the registration proof of work is the minimal one
// (config.MinimalRegistration: one Argon2id evaluation over 8 KiB, any work
// value passes), so tests that are not about work register identities in
// microseconds; everything else keeps the defaults.
func GenesisJSON(timestamp int64, cfg map[string]any, initial ...*crypto.Identity) ([]byte, error) {
	g := map[string]any{"timestamp": timestamp}
	c := map[string]any{}
	for k, v := range cfg {
		c[k] = v
	}
	if _, ok := c["registration"]; !ok {
		c["registration"] = config.MinimalRegistration()
	}
	g["config"] = c
	if len(initial) > 0 {
		list := make([]genesis.Identity, len(initial))
		for i, id := range initial {
			list[i] = genesis.Identity{SessionID: id.SessionID, KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}
		}
		g["identities"] = list
	}
	return json.Marshal(g)
}

// Clock is a settable clock for vm.WithClock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock set to now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Identities returns n test identities derived from fixed seeds: seed byte
// 0 is 1..n and byte 31 is tag, so packages that want identities distinct
// from another package's pass another tag. Deriving one costs about
// 150 µs; callers keep the result.
func Identities(tag byte, n int) []*crypto.Identity {
	out := make([]*crypto.Identity, n)
	for i := range out {
		var seed [32]byte
		seed[0] = byte(i + 1)
		seed[31] = tag
		id, err := crypto.IdentityFromSeed(seed)
		if err != nil {
			panic(err) // a fixed seed always derives
		}
		out[i] = id
	}
	return out
}

// SignDeterministic signs u with id's key as tx.Sign would, but with
// deterministic ML-DSA-65 (FIPS 204's rnd = 0; the chain accepts either
// variant), so that the transaction, its ID and everything derived from it
// are the same every run: for known-answer vectors and golden files. It
// checks that the signature verifies.
func SignDeterministic(id *crypto.Identity, u *tx.Unsigned) (*tx.Tx, error) {
	var sk mldsa65.PrivateKey
	if err := sk.UnmarshalBinary(id.DSASecretKey); err != nil {
		return nil, fmt.Errorf("vmtest: ML-DSA-65 secret key: %w", err)
	}
	msg := u.Bytes()
	sig := make([]byte, mldsa65.SignatureSize)
	if err := mldsa65.SignTo(&sk, msg, []byte(tx.SignatureContext), false, sig); err != nil {
		return nil, err
	}
	signed, err := tx.Parse(append(msg, sig...))
	if err != nil {
		return nil, err
	}
	pk, err := crypto.ParseDSAPublicKey(id.DSAPublicKey)
	if err != nil {
		return nil, err
	}
	if !signed.VerifySignature(pk) {
		return nil, errors.New("vmtest: a deterministic signature does not verify")
	}
	return signed, nil
}
