package chat

import (
	"encoding/hex"
	"time"

	"github.com/luxfi/session/crypto"
)

// Session is what the chain says about a session, as the caller verified it
// (docs/protocol.md, section 3): the CreateSession transaction's signature
// by its author, its chain ID, that its ID derives from it, and each
// participant's keys against its Session ID. The protocol trusts it.
type Session struct {
	// ChainID is the chain the session lives on.
	ChainID [32]byte
	// ID is the session's on-chain ID.
	ID [32]byte
	// Participants are the public identities of the participants in chain
	// order: the creator (the transaction's author), then the participants
	// it listed. 2 to MaxParticipants.
	Participants []*crypto.Identity
	// Claims are the one-time prekey IDs the creator claimed in
	// CreateSession, one per participant after the creator
	// (len(Participants)-1), 0 for none. ClaimsOf computes them from the
	// bundles the creator used.
	Claims []uint32
}

// SignedPrekey is a signed prekey as published in a PublishPrekeys
// transaction.
type SignedPrekey struct {
	ID        uint32
	ExpiresAt time.Time
	PublicKey []byte // ML-KEM-768, 1184 bytes
}

// OneTimePrekey is a one-time prekey as published in a PublishPrekeys
// transaction.
type OneTimePrekey struct {
	ID        uint32
	PublicKey []byte // ML-KEM-768, 1184 bytes
}

// PrekeyBundle is what a handshake with a participant needs, as the caller
// verified it: the PublishPrekeys transactions that carry the prekeys are
// signed by the identity, on this chain, and the signed prekey has not
// expired.
type PrekeyBundle struct {
	Identity      *crypto.Identity // public keys of the participant
	SignedPrekey  SignedPrekey
	OneTimePrekey *OneTimePrekey // nil if none is left
}

// Claim is a one-time prekey claim as a transaction carries it.
type Claim struct {
	Participant crypto.SessionID
	PrekeyID    uint32
}

// Directory gives the verified prekey bundle of a participant. Send calls
// it only for participants it must start a handshake with.
type Directory interface {
	PrekeyBundle(participant crypto.SessionID) (*PrekeyBundle, error)
}

// Delivery is a message as the chain delivered it.
type Delivery struct {
	// Envelope is the SendMessage transaction's ciphertext.
	Envelope []byte
	// Position is the message's sequence number in the session (from 1).
	Position uint64
	// Sender is the transaction's author.
	Sender crypto.SessionID
	// Claims are the transaction's one-time prekey claims.
	Claims []Claim
}

// MessageID identifies an envelope: 16 bytes of BLAKE2b over its header
// hash and its body's authentication tag.
type MessageID [16]byte

// String is the ID in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// Message is an opened (or sent) message.
type Message struct {
	ID MessageID
	// Position is the message's sequence number in the session, 0 for an
	// own message not yet seen on chain.
	Position uint64
	Sender   crypto.SessionID
	FromSelf bool
	// Setup marks a setup message: it only carried handshakes and has no
	// content. History never lists them.
	Setup bool
	// SentAt is the sender's clock when it sent the message, as the sender
	// signed it: information for display, not verified against anything.
	SentAt    time.Time
	Plaintext []byte
}

// Outgoing is an envelope to send in a SendMessage transaction, with the
// one-time prekey claims that transaction must carry. Send them in the order
// Send returned them.
type Outgoing struct {
	ID       MessageID
	Envelope []byte
	Claims   []Claim
	// Setup marks an envelope that only carries handshakes (Send made it
	// because they did not fit beside the content).
	Setup bool
}

// PrekeyUpload is the public part of freshly generated prekeys, for a
// PublishPrekeys transaction. The secrets are already stored.
type PrekeyUpload struct {
	SignedPrekey   *SignedPrekey // nil if none was asked for
	OneTimePrekeys []OneTimePrekey
}

// PrekeyStatus describes the prekeys a device holds.
type PrekeyStatus struct {
	// SignedPrekeyID and SignedPrekeyExpiresAt describe the newest signed
	// prekey (ID 0 if none).
	SignedPrekeyID        uint32
	SignedPrekeyExpiresAt time.Time
	// OneTimePrekeys is how many one-time prekey secrets are held (used or
	// not yet, the chain knows which are claimed).
	OneTimePrekeys int
	// NextOneTimePrekeyID is the ID the next one-time prekey will get.
	NextOneTimePrekeyID uint32
}

// ClaimsOf returns the claims a creator puts in CreateSession for the
// bundles it fetched, one per participant after the creator, in order.
func ClaimsOf(bundles []*PrekeyBundle) []uint32 {
	out := make([]uint32, len(bundles))
	for i, b := range bundles {
		if b != nil && b.OneTimePrekey != nil {
			out[i] = b.OneTimePrekey.ID
		}
	}
	return out
}
