package service

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// Client-side verification: what a client uses comes from transactions its
// owners signed, never from the node's word (docs/chain.md section 10).
// These functions take a reply and the keys the client trusts and return
// only what the signed transactions say; a node that lies is refused with
// an error wrapping ErrUntrustedNode.

// Errors of the verification helpers.
var (
	// ErrUntrustedNode reports a reply that does not match the signed
	// transactions it comes with: the node lied or served another chain's
	// data. Do not use anything from it.
	ErrUntrustedNode = errors.New("service: the node's reply does not match the signed transactions")
	// ErrNoSignedPrekey reports an identity that has not published a
	// signed prekey (it cannot be sent to with the ratchet protocol yet).
	ErrNoSignedPrekey = errors.New("service: the identity has not published a signed prekey")
	// ErrPrekeyExpired reports a signed prekey past its expiry.
	ErrPrekeyExpired = errors.New("service: the identity's signed prekey has expired")
)

func untrusted(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUntrustedNode, fmt.Sprintf(format, args...))
}

// verifySigned parses a transaction the node returned and checks that it
// is for chainID, of type want, authored by author and signed by author's
// DSA key.
func verifySigned(raw []byte, chainID ids.ID, want tx.Type, author *crypto.Identity) (*tx.Tx, error) {
	if len(raw) == 0 {
		return nil, untrusted("no %s transaction in the reply", want)
	}
	t, err := tx.Parse(raw)
	if err != nil {
		return nil, untrusted("the %s transaction does not parse: %v", want, err)
	}
	if t.ChainID != chainID {
		return nil, untrusted("the %s transaction is for chain %s, not %s", want, t.ChainID, chainID)
	}
	if t.Type() != want {
		return nil, untrusted("a %s transaction where %s was expected", t.Type(), want)
	}
	if t.Author.String() != author.SessionID {
		return nil, untrusted("the %s transaction is by %s, not %s", want, t.Author, author.SessionID)
	}
	pk, err := crypto.ParseDSAPublicKey(author.DSAPublicKey)
	if err != nil {
		return nil, fmt.Errorf("service: identity %s: %w", author.SessionID, err)
	}
	if !t.VerifySignature(pk) {
		return nil, untrusted("the %s transaction's signature does not verify under %s's key", want, author.SessionID)
	}
	return t, nil
}

// PrekeyBundle is a verified prekey bundle: the identity (whose keys
// derive its Session ID), its current signed prekey and, if one was left,
// an unclaimed one-time prekey, each taken from a PublishPrekeys
// transaction the identity signed.
type PrekeyBundle struct {
	Identity     *crypto.Identity // public keys only
	SignedPrekey tx.SignedPrekey
	OneTime      *tx.OneTimePrekey // nil: none left; start with the signed prekey only
}

// VerifyPrekeyBundle checks a getPrekeyBundle reply for sessionID on
// chainID at time now: the keys derive the Session ID; each PublishPrekeys
// transaction is for the chain, by the identity, signed by its key, and
// holds the named prekey; the signed prekey has not expired. It returns
// the keys from the transactions. Errors: ErrIdentityMismatch,
// ErrUntrustedNode, ErrNoSignedPrekey, ErrPrekeyExpired.
func VerifyPrekeyBundle(chainID ids.ID, sessionID string, r *PrekeyBundleReply, now time.Time) (*PrekeyBundle, error) {
	id, err := crypto.NewPublicIdentity(r.KEMPublicKey, r.DSAPublicKey)
	if err != nil {
		return nil, untrusted("identity keys: %v", err)
	}
	if id.SessionID != sessionID {
		return nil, fmt.Errorf("%w: asked %s, keys derive %s", ErrIdentityMismatch, sessionID, id.SessionID)
	}
	if r.SignedPrekey == nil {
		return nil, fmt.Errorf("%w: %s", ErrNoSignedPrekey, sessionID)
	}
	t, err := verifySigned(r.SignedPrekey.Tx, chainID, tx.TypePublishPrekeys, id)
	if err != nil {
		return nil, err
	}
	p := t.Payload.(*tx.PublishPrekeys)
	if p.Signed == nil || p.Signed.ID != r.SignedPrekey.ID {
		return nil, untrusted("the transaction does not hold signed prekey %d", r.SignedPrekey.ID)
	}
	if p.Signed.ExpiresAt != r.SignedPrekey.ExpiresAt {
		return nil, untrusted("signed prekey %d expires at %d, not %d", p.Signed.ID, p.Signed.ExpiresAt, r.SignedPrekey.ExpiresAt)
	}
	if p.Signed.ExpiresAt <= now.UnixMilli() {
		return nil, fmt.Errorf("%w: prekey %d of %s expired at %s", ErrPrekeyExpired, p.Signed.ID, sessionID, time.UnixMilli(p.Signed.ExpiresAt).UTC().Format(time.RFC3339))
	}
	b := &PrekeyBundle{Identity: id, SignedPrekey: *p.Signed}
	b.SignedPrekey.KEMPublicKey = slices.Clone(p.Signed.KEMPublicKey)
	if o := r.OneTimePrekey; o != nil {
		t, err := verifySigned(o.Tx, chainID, tx.TypePublishPrekeys, id)
		if err != nil {
			return nil, err
		}
		for _, k := range t.Payload.(*tx.PublishPrekeys).OneTime {
			if k.ID == o.ID {
				b.OneTime = &tx.OneTimePrekey{ID: k.ID, KEMPublicKey: slices.Clone(k.KEMPublicKey)}
			}
		}
		if b.OneTime == nil {
			return nil, untrusted("the transaction does not hold one-time prekey %d", o.ID)
		}
	}
	return b, nil
}

// VerifiedSession is a session as its creator signed it.
type VerifiedSession struct {
	ID           ids.ID
	Creator      string   // Session ID
	Participants []string // the creator, then the listed ones, in order
	// Claims are the creator's claims (one per handshake it starts: the
	// participant, the signed prekey and the one-time prekey or 0).
	Claims   []tx.Claim
	Metadata []byte
	CreateTx *tx.Tx
	// Reply is the node's reply; its other fields (status, states,
	// counts) are the node's word.
	Reply *SessionReply
}

// VerifySessionReply checks a getSession reply against its createTx: for
// chainID, a CreateSession signed by creator (an identity the caller
// verified, for example with PublicIdentity) whose ID derives the session,
// and the reply's creator and participants are the transaction's. It
// returns the participants from the transaction.
func VerifySessionReply(chainID ids.ID, r *SessionReply, creator *crypto.Identity) (*VerifiedSession, error) {
	t, err := verifySigned(r.CreateTx, chainID, tx.TypeCreateSession, creator)
	if err != nil {
		return nil, err
	}
	if sid := tx.SessionIDFor(chainID, t.Author, t.Nonce); sid != r.Session {
		return nil, untrusted("the CreateSession transaction creates %s, not %s", sid, r.Session)
	}
	p := t.Payload.(*tx.CreateSession)
	v := &VerifiedSession{
		ID:           r.Session,
		Creator:      t.Author.String(),
		Participants: make([]string, 0, len(p.Participants)+1),
		Claims:       slices.Clone(p.Claims),
		Metadata:     slices.Clone(p.Metadata),
		CreateTx:     t,
		Reply:        r,
	}
	v.Participants = append(v.Participants, v.Creator)
	for _, id := range p.Participants {
		v.Participants = append(v.Participants, id.String())
	}
	if r.Creator != v.Creator {
		return nil, untrusted("the reply names creator %s, the transaction %s", r.Creator, v.Creator)
	}
	if !slices.Equal(r.Participants, v.Participants) {
		return nil, untrusted("the reply lists participants %v, the signed transaction %v", r.Participants, v.Participants)
	}
	return v, nil
}

// createTxAuthor reads the author of a reply's createTx without trusting
// it (VerifySessionReply checks it against the author's key).
func createTxAuthor(r *SessionReply) (string, error) {
	if len(r.CreateTx) == 0 {
		return "", untrusted("getSession returned no createTx")
	}
	t, err := tx.Parse(r.CreateTx)
	if err != nil {
		return "", untrusted("the CreateSession transaction does not parse: %v", err)
	}
	return t.Author.String(), nil
}

// VerifiedSession fetches a session and verifies it (VerifySessionReply):
// the creator's keys are fetched with PublicIdentity, which checks them
// against the Session ID that signed the transaction.
func (c *Client) VerifiedSession(ctx context.Context, session ids.ID) (*VerifiedSession, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.Session(ctx, session)
	if err != nil {
		return nil, err
	}
	author, err := createTxAuthor(r)
	if err != nil {
		return nil, err
	}
	creator, err := c.PublicIdentity(ctx, author)
	if err != nil {
		return nil, err
	}
	return VerifySessionReply(chainID, r, creator)
}

// PrekeyBundle fetches an identity's prekey bundle and verifies it
// (VerifyPrekeyBundle) at the client's clock's time (WithClock).
func (c *Client) PrekeyBundle(ctx context.Context, sessionID string) (*PrekeyBundle, error) {
	return c.PrekeyBundleFor(ctx, PrekeyBundleArgs{SessionID: sessionID})
}

// PrekeyBundleFor is PrekeyBundle for a claimer (and session, for a claim
// in a sendMessage): the one-time prekey, if any, is one the chain lets
// that claimer claim, so a bundle without one means the claim names 0.
func (c *Client) PrekeyBundleFor(ctx context.Context, args PrekeyBundleArgs) (*PrekeyBundle, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	r, err := c.RawPrekeyBundleFor(ctx, args)
	if err != nil {
		return nil, err
	}
	return VerifyPrekeyBundle(chainID, args.SessionID, r, c.now())
}

// ClaimOf returns the claim entry for a handshake to b's identity: its
// signed prekey and its one-time prekey, or 0.
func (b *PrekeyBundle) ClaimOf() (tx.Claim, error) {
	sid, err := crypto.ParseSessionID(b.Identity.SessionID)
	if err != nil {
		return tx.Claim{}, err
	}
	c := tx.Claim{Participant: sid, SignedPrekeyID: b.SignedPrekey.ID}
	if b.OneTime != nil {
		c.OneTimePrekeyID = b.OneTime.ID
	}
	return c, nil
}
