// Package sealtest provides a deterministic Seal for known-answer tests.
//
// It must never be used outside tests: an envelope whose randomness is
// known to anyone else can be opened by them. This mirrors Go's
// crypto/mlkem/mlkemtest.
package sealtest

import (
	"io"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/crypto/internal/hook"
)

// Seal is crypto.Seal with every random value read from rand (the 32-byte
// content key, then one 32-byte ML-KEM encapsulation seed per recipient, in
// order) and deterministic (rnd = 0) ML-DSA-65 signing.
func Seal(rand io.Reader, sender *crypto.Identity, recipients []*crypto.Identity, plaintext, ad []byte) ([]byte, error) {
	rs := make([]any, len(recipients))
	for i, r := range recipients {
		rs[i] = r
	}
	return hook.DeterministicSeal(rand, sender, rs, plaintext, ad)
}
