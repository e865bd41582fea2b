package chat

import (
	"encoding/hex"
	"fmt"
	"time"

	"github.com/luxfi/session/chat/internal/wire"
	"github.com/luxfi/session/crypto"
)

// Session is what the chain says about a session, as the caller verified it
// (docs/protocol.md, section 3) from the session's CreateSession
// transaction (session.getSession's createTx): the transaction parses, is
// version 1 and type CreateSession, its chain ID is ChainID, its ML-DSA-65
// signature verifies under its author's DSA key, and
// SessionIDFor(ChainID, author, nonce) is ID; each participant's identity
// hashes to its Session ID. The protocol trusts it.
type Session struct {
	// ChainID is the chain the session lives on.
	ChainID [32]byte
	// ID is the session's on-chain ID.
	ID [32]byte
	// Participants are the public identities of the participants in chain
	// order: the creator (the transaction's author), then the participants
	// it listed. 2 to MaxParticipants.
	Participants []*crypto.Identity
	// Claims are the claim entries of the CreateSession transaction, as it
	// lists them: at most one per listed participant (the creator's session
	// claims). ClaimsOf computes them from the bundles the creator used.
	Claims []Claim
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
// verified it from session.getPrekeyBundle: each PublishPrekeys
// transaction that carries a prekey parses, is on this chain, is authored by
// the participant and signed by its DSA key, and holds the prekey; the
// signed prekey has not expired. Whether the one-time prekey is unclaimed is
// the node's word: a claimed one gets the transaction refused (then
// Conversation.Dead sends again with a new bundle).
type PrekeyBundle struct {
	Identity      *crypto.Identity // public keys of the participant
	SignedPrekey  SignedPrekey
	OneTimePrekey *OneTimePrekey // nil if none is left
}

// Claim is a claim entry of a CreateSession or SendMessage transaction
// (docs/protocol.md, section 11.2): the initiator of a handshake used the
// participant's signed prekey SignedPrekeyID and its one-time prekey
// OneTimePrekeyID (0: none).
type Claim struct {
	Participant     crypto.SessionID
	SignedPrekeyID  uint32
	OneTimePrekeyID uint32
}

// Directory gives the verified prekey bundle of a participant. Send calls
// it only for participants it must start a handshake with; each call should
// fetch a fresh bundle (the node picks a random unclaimed one-time prekey).
type Directory interface {
	PrekeyBundle(participant crypto.SessionID) (*PrekeyBundle, error)
}

// Delivery is a message from the chain. The caller builds it only from a
// verified SendMessage transaction (docs/protocol.md, section 3), never from
// fields of an RPC reply: the transaction parses, is version 1 and type
// SendMessage, its chain ID is the session's, its payload names this
// session, its author is a participant, and its ML-DSA-65 signature
// verifies under that participant's DSA key.
type Delivery struct {
	// Envelope is the transaction's ciphertext, byte for byte.
	Envelope []byte
	// Sender is the transaction's author.
	Sender crypto.SessionID
	// Claims are the transaction's claim entries, all of them, in order.
	Claims []Claim
	// Position is the message's sequence number in the session as the node
	// reports it (from 1). It is not verified: the protocol uses it only
	// for display and as a hint (docs/protocol.md, section 10.3).
	Position uint64
}

// MessageID identifies a message (what its sender wrote): the same in
// every envelope that carries it (a message sent again after a dead
// transaction keeps its ID) and on every device. Control messages have
// the zero ID.
type MessageID [16]byte

// String is the ID in hex.
func (id MessageID) String() string { return hex.EncodeToString(id[:]) }

// EnvelopeID identifies one envelope, from its public bytes: the sender
// confirms or declares dead its envelopes by it.
type EnvelopeID [16]byte

// String is the ID in hex.
func (id EnvelopeID) String() string { return hex.EncodeToString(id[:]) }

// Message is an opened (or sent) message.
type Message struct {
	ID MessageID
	// After is the message the sender had last sent or opened in the
	// session when it wrote this one (signed: "in reply to"), zero if none.
	After MessageID
	// Position is the message's sequence number in the session as the
	// node reported it, 0 for an own message not yet seen on chain: for
	// display only.
	Position uint64
	Sender   crypto.SessionID
	FromSelf bool
	// Control marks a control message: no content (it carried handshakes
	// that did not fit beside a message, or ratchet steps). History never
	// lists them.
	Control bool
	// SentAt is the sender's clock when it wrote the message, as it signed
	// it: strictly increasing over one sender's messages in a session, so
	// it orders them (docs/protocol.md, section 14.6).
	SentAt    time.Time
	Plaintext []byte
}

// Outgoing is an envelope to send in its own SendMessage transaction, with
// the claims that transaction must carry. Send them in the order returned,
// as consecutive transactions of the account, and report each one's fate
// with Confirm (it landed) or Dead (its transaction can never land).
type Outgoing struct {
	ID       EnvelopeID
	Message  MessageID // the message it carries (a setup message: the message it precedes)
	Envelope []byte
	Claims   []Claim
	// Control marks an envelope without content: a setup message (handshakes
	// that did not fit beside the content) or a ratchet message.
	Control bool
}

// PrekeyUpload is the public part of freshly generated prekeys, for a
// PublishPrekeys transaction. The secrets are already stored.
type PrekeyUpload struct {
	SignedPrekey   *SignedPrekey // nil if none was asked for
	OneTimePrekeys []OneTimePrekey
	// RetireThrough is the transaction's retireThrough: the chain removes
	// the identity's unclaimed one-time prekeys with IDs at or below it
	// (docs/protocol.md, section 11.3). 0 retires nothing.
	RetireThrough uint32
}

// PrekeyStatus describes the prekeys a device holds.
type PrekeyStatus struct {
	// SignedPrekeyID and SignedPrekeyExpiresAt describe the newest signed
	// prekey (ID 0 if none).
	SignedPrekeyID        uint32
	SignedPrekeyExpiresAt time.Time
	// OneTimePrekeys is how many one-time prekey secrets are held that no
	// claim was noted for (NoteClaims); ClaimedOneTimePrekeys how many
	// claimed ones wait for their handshake.
	OneTimePrekeys        int
	ClaimedOneTimePrekeys int
	// NextOneTimePrekeyID is the ID the next one-time prekey will get.
	NextOneTimePrekeyID uint32
}

// ClaimedPrekey is an entry of the chain's claim log for this identity
// (session.getClaims, each entry verified from its signed transaction): a
// one-time prekey claimed in a session that accepts no messages after
// SessionEnd (its expiry, or when it was closed).
type ClaimedPrekey struct {
	ID         uint32
	SessionEnd time.Time
}

// ClaimsOf returns the claims a creator puts in CreateSession for the
// bundles it fetched (one per participant after the creator, in order; a
// nil bundle makes no claim).
func ClaimsOf(bundles []*PrekeyBundle) ([]Claim, error) {
	var out []Claim
	for _, b := range bundles {
		if b == nil {
			continue
		}
		if b.Identity == nil {
			return nil, fmt.Errorf("%w: missing identity", ErrInvalidBundle)
		}
		sid, err := crypto.ParseSessionID(b.Identity.SessionID)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidBundle, err)
		}
		c := Claim{Participant: sid, SignedPrekeyID: b.SignedPrekey.ID}
		if b.OneTimePrekey != nil {
			c.OneTimePrekeyID = b.OneTimePrekey.ID
		}
		out = append(out, c)
	}
	return out, nil
}

// IsEnvelope reports whether b has this protocol's magic: such bytes are
// opened with Conversation.Open and never tried as a legacy format
// (docs/protocol.md, section 16).
func IsEnvelope(b []byte) bool {
	return len(b) >= 2 && b[0] == wire.Magic0 && b[1] == wire.Magic1
}
