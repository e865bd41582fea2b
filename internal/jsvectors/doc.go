// Package jsvectors writes and checks the cross-implementation vectors that
// the TypeScript SDK (sdk/js) tests against: keys from seeds, identity
// files, transactions of every type (valid and refused), Session and
// channel IDs, Seal envelopes and reference envelopes. The Go
// implementation is the reference: every vector is made by it, or checked
// by it, in TestVectors.
//
//	go test ./internal/jsvectors              # regenerate and compare with sdk/js/test/vectors
//	go test ./internal/jsvectors -update      # rewrite sdk/js/test/vectors
//
// Deterministic vectors are regenerated and compared byte for byte.
// Identity files are made by crypto.Identity.Save, whose salt and nonce are
// random: they are checked by opening them with crypto.ParseIdentityFile.
//
// Signatures in the vectors are deterministic ML-DSA-65 (rnd = 0), as
// crypto/sealtest makes them, so that an independent implementation can
// reproduce every byte; the chain accepts hedged and deterministic
// signatures alike.
package jsvectors
