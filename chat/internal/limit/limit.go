// Package limit holds the numeric bounds of the messaging protocol
// (docs/protocol.md, section 9). Package chat re-exports them, with their
// documentation and errors, in chat/limits.go.
package limit

import "time"

// The bounds.
const (
	MaxParticipants      = 32
	MaxEnvelopeSize      = 64 << 10
	MaxPlaintextSize     = 16 << 10
	MaxChainMessages     = 50
	MaxChainAge          = 24 * time.Hour
	MaxSkip              = 100
	MaxSkippedKeys       = 250 // per pair
	MaxSkipAge           = 7 * 24 * time.Hour
	MaxOwnChains         = 16
	MaxPeerChains        = 16
	MaxTrees             = 8 // 2 × MaxHandshakesPerPeer: every handshake the chain allows a pair
	MaxHandshakes        = 16
	MaxHandshakesPerPeer = 4
	MaxClaimedPrekeys    = 256
	MaxDeadEnvelopes     = 64
	MaxOutbox            = 64
	MaxOneTimePrekeys    = 256
	MaxSignedPrekeys     = 8
	MaxPrekeysPerUpload  = 32
	SignedPrekeyLifetime = 7 * 24 * time.Hour
	SignedPrekeyGrace    = 14 * 24 * time.Hour
	MaxSignedPrekeyAhead = 30 * 24 * time.Hour
)
