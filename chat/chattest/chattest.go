// Package chattest provides deterministic entry points to package chat for
// known-answer tests, and the random streams of the vectors in testdata
// (docs/protocol.md, section 15).
//
// Never use it outside tests: a device whose randomness is known to anyone
// else has no security at all. This mirrors Go's crypto/mlkem/mlkemtest and
// this module's crypto/sealtest.
package chattest

import (
	"crypto/sha3"
	"io"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/chat/internal/options"
	"github.com/luxfi/session/crypto"
)

// StreamLabel prefixes the name of a party to make its random stream.
const StreamLabel = "luxfi/session/v1/chat/kat/"

// Stream returns the random stream of the known-answer vectors for a party
// named name: SHAKE256(StreamLabel || name).
func Stream(name string) io.Reader {
	h := sha3.NewSHAKE256()
	h.Write([]byte(StreamLabel + name))
	return h
}

// NewDevice is chat.NewDevice with every random value read from rand, in
// the order of docs/protocol.md section 7.4 (sends) and section 15
// (prekeys), and deterministic ML-DSA-65 signatures (rnd = 0).
func NewDevice(rand io.Reader, identity *crypto.Identity, chainID [32]byte, store chat.Store) (*chat.Device, error) {
	return chat.NewDevice(identity, chainID, store, chat.Option(func(c *options.Config) {
		c.Rand = rand
		c.Deterministic = true
	}))
}
