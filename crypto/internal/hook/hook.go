// Package hook carries test-only entry points from package crypto to
// package crypto/sealtest without putting them in crypto's public API (the
// arrangement of Go's crypto/mlkem and crypto/mlkem/mlkemtest).
package hook

import "io"

// DeterministicSeal is set by package crypto at init. It seals exactly as
// crypto.Seal does, but takes all randomness (content key, encapsulation
// seeds) from rand and signs deterministically. sender and recipients are
// *crypto.Identity values.
var DeterministicSeal func(rand io.Reader, sender any, recipients []any, plaintext, ad []byte) ([]byte, error)

// SetScryptLogN is set by package crypto at init. It sets the scrypt work
// factor of identity files written from now on and returns a function that
// restores the previous one.
var SetScryptLogN func(logN int) (restore func())
