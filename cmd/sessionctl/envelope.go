package main

import (
	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
)

// Channels keep crypto.Seal (docs/protocol.md section 16): a post is
// sealed to every current member, the poster included, with
// service.MessageAD(channel). Sessions use the forward-secret protocol
// (messaging.go); nothing new is sealed to a session.

// maxSealedText is the most bytes of text a Seal envelope to n recipients
// carries within the chain's ciphertext limit: config.MaxCiphertextSize
// less crypto.SealOverhead(n) (negative when n recipients do not fit at
// all).
func maxSealedText(n int) int { return config.MaxCiphertextSize - crypto.SealOverhead(n) }

// maxSealedRecipients is the most recipients a Seal envelope with one byte
// of text can have within the ciphertext limit.
func maxSealedRecipients() int {
	n := 1
	for maxSealedText(n+1) >= 1 {
		n++
	}
	return n
}
