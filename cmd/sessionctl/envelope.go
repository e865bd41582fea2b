package main

import (
	"context"
	"fmt"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm/tx"
)

// sessionEnvelope is how sessionctl encrypts the messages of a session and
// opens them: the one seam between the commands (send, read, inbox, and
// their tx forms) and the message protocol. The commands ask it what fits,
// hand it the text and sign the payload it returns; they never see
// ciphertext formats. Replacing the protocol (for example by a
// forward-secret one with a local state store) means another
// implementation of this interface, not changes to the commands.
type sessionEnvelope interface {
	// prepare fetches what encrypting to the session needs (its
	// participants and their keys) and checks that from takes part.
	prepare(ctx context.Context, c *service.Client, from *crypto.Identity, session ids.ID) (outgoing, error)
	// open decrypts and authenticates a message of a session as id.
	open(id *crypto.Identity, m *service.Message) ([]byte, error)
}

// outgoing is one message being sent to a prepared session.
type outgoing interface {
	// participants is the number of participants, the sender included.
	participants() int
	// maxPlaintext is the most bytes of text one message can carry.
	maxPlaintext() int
	// payload encrypts text (at most maxPlaintext bytes) and returns the
	// transaction payload that carries it.
	payload(text []byte) (tx.Payload, error)
}

// sealedEnvelope is the protocol of today: crypto.Seal to every
// participant (the sender included, so its history reads back) with
// service.MessageAD(session), the format service.SendSealed writes and
// service.OpenMessage reads.
type sealedEnvelope struct{}

var _ sessionEnvelope = sealedEnvelope{}

func (sealedEnvelope) prepare(ctx context.Context, c *service.Client, from *crypto.Identity, session ids.ID) (outgoing, error) {
	s, err := c.Session(ctx, session)
	if err != nil {
		return nil, err
	}
	if s.Status != "active" {
		return nil, fmt.Errorf("session %s is %s: nothing can be sent to it", session, s.Status)
	}
	out := &sealedOutgoing{from: from, session: session}
	for _, p := range s.Participants {
		if p == from.SessionID {
			out.recipients = append(out.recipients, from.PublicIdentity())
			continue
		}
		pub, err := c.PublicIdentity(ctx, p)
		if err != nil {
			return nil, err
		}
		out.recipients = append(out.recipients, pub)
	}
	if !out.member() {
		return nil, fmt.Errorf("not a participant: you (%s) are not in session %s", from.SessionID, session)
	}
	return out, nil
}

func (sealedEnvelope) open(id *crypto.Identity, m *service.Message) ([]byte, error) {
	return service.OpenMessage(id, m)
}

type sealedOutgoing struct {
	from       *crypto.Identity
	session    ids.ID
	recipients []*crypto.Identity
}

func (o *sealedOutgoing) member() bool {
	for _, r := range o.recipients {
		if r.SessionID == o.from.SessionID {
			return true
		}
	}
	return false
}

func (o *sealedOutgoing) participants() int { return len(o.recipients) }

func (o *sealedOutgoing) maxPlaintext() int { return maxSealedText(len(o.recipients)) }

func (o *sealedOutgoing) payload(text []byte) (tx.Payload, error) {
	env, err := crypto.Seal(o.from, o.recipients, text, service.MessageAD(o.session))
	if err != nil {
		return nil, fmt.Errorf("sealing: %w", err)
	}
	return &tx.SendMessage{Session: o.session, Ciphertext: env}, nil
}

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
