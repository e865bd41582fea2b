package service

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/vm/tx"
)

// authorNonce serializes one author's submissions and remembers the next
// nonce, so a burst of sends needs one getNonce, not one per transaction.
type authorNonce struct {
	mu    sync.Mutex
	next  uint64
	known bool
}

func (c *Client) author(sessionID string) *authorNonce {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.authors[sessionID]
	if !ok {
		a = &authorNonce{}
		c.authors[sessionID] = a
	}
	return a
}

// Submit signs payload as id with its next nonce and submits it with the
// write method of its type. Submissions of one author through one Client
// are serialized (the chain needs consecutive nonces); the nonce is fetched
// with getNonce once and then counted locally. After a bad-nonce refusal
// (another client used the key, or a transaction was dropped) it fetches
// the nonce again and retries once.
func (c *Client) Submit(ctx context.Context, id *crypto.Identity, payload tx.Payload) (*TxReply, error) {
	r, _, err := c.signSubmit(ctx, id, payload, nil)
	return r, err
}

// maxRegisterRetries bounds Register's retries when the node is busy
// verifying registrations; each adds a bit of excess (twice the work).
const maxRegisterRetries = 4

// Register publishes id's public keys (registerIdentity). It first solves
// the chain's registration proof of work on the node's last accepted block
// (RegistrationPayload); the context bounds it. When the node answers that
// its proof-of-work verifiers are busy, or its registration pool is full
// (a flood of registrations), it solves again with one more bit of excess
// (docs/chain.md section 3), up to 4 times, pausing a little more each
// time.
func (c *Client) Register(ctx context.Context, id *crypto.Identity) (*TxReply, error) {
	for extra := 0; ; extra++ {
		p, err := c.RegistrationPayloadWithExcess(ctx, id, extra)
		if err != nil {
			return nil, err
		}
		r, err := c.Submit(ctx, id, p)
		code, fromNode := CodeOf(err)
		if err == nil || !fromNode || (code != CodeBusy && code != CodeMempoolFull) || extra == maxRegisterRetries {
			return r, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Duration(extra+1) * 250 * time.Millisecond):
		}
	}
}

// RegistrationPayload returns id's RegisterIdentity payload with a solved
// proof of work for the node's chain, anchored to its last accepted block
// (docs/chain.md section 3: about a second of one core at the default
// parameters, spread over WithWorkers goroutines).
func (c *Client) RegistrationPayload(ctx context.Context, id *crypto.Identity) (*tx.RegisterIdentity, error) {
	return c.RegistrationPayloadWithExcess(ctx, id, 0)
}

// RegistrationPayloadWithExcess is RegistrationPayload with extra bits of
// excess (each doubles the expected work): priority when registrations
// compete.
func (c *Client) RegistrationPayloadWithExcess(ctx context.Context, id *crypto.Identity, extra int) (*tx.RegisterIdentity, error) {
	if id == nil {
		return nil, errors.New("service: Register needs an identity")
	}
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	reg, err := c.registration(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	return SolveRegistration(ctx, id, chainID, reg, Anchor{Height: st.Height, ID: st.LastAcceptedID}, extra, c.workWorkers)
}

// Anchor is the block a registration's work is bound to: a recent
// accepted block (session.status gives the last one). The chain accepts
// the registration while its block is at most registration.anchorWindow
// blocks above the anchor.
type Anchor struct {
	Height uint64
	ID     ids.ID
}

// SolveRegistration returns id's RegisterIdentity payload with a proof of
// work for chainID at the parameters p (a chain's config.Registration)
// anchored to anchor, with extra bits of excess, solved on workers
// goroutines (0: GOMAXPROCS) from a random starting point.
func SolveRegistration(ctx context.Context, id *crypto.Identity, chainID ids.ID, p config.Registration, anchor Anchor, extra, workers int) (*tx.RegisterIdentity, error) {
	author, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		return nil, err
	}
	var start [8]byte
	if _, err := rand.Read(start[:]); err != nil {
		return nil, err
	}
	seed := tx.WorkSeed(chainID, author, anchor.Height, anchor.ID)
	work, _, err := tx.SolveWork(ctx, chainID, seed, p, extra, binary.BigEndian.Uint64(start[:]), workers)
	if err != nil {
		return nil, fmt.Errorf("service: registration proof of work: %w", err)
	}
	return &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, AnchorHeight: anchor.Height, Work: work}, nil
}

// CreateSession opens a session of id with the given participants (Session
// IDs, not including id). The reply's Session is the new session's ID.
func (c *Client) CreateSession(ctx context.Context, id *crypto.Identity, participants ...string) (*TxReply, error) {
	return c.CreateSessionWithMetadata(ctx, id, nil, participants...)
}

// CreateSessionWithMetadata is CreateSession with metadata (at most
// config.MaxMetadataSize bytes, public: encrypt it if it is private).
func (c *Client) CreateSessionWithMetadata(ctx context.Context, id *crypto.Identity, metadata []byte, participants ...string) (*TxReply, error) {
	return c.CreateSessionWithClaims(ctx, id, metadata, participants, nil)
}

// CreateSessionWithClaims is CreateSessionWithMetadata with the claims of
// the handshakes id starts (at most one per participant: its signed
// prekey and one-time prekey or 0, from a verified prekey bundle:
// PrekeyBundle.ClaimOf). A participant who does not have id as a contact
// receives the session as a message request.
func (c *Client) CreateSessionWithClaims(ctx context.Context, id *crypto.Identity, metadata []byte, participants []string, claims []tx.Claim) (*TxReply, error) {
	p := &tx.CreateSession{Metadata: metadata, Claims: claims}
	for _, s := range participants {
		sid, err := crypto.ParseSessionID(s)
		if err != nil {
			return nil, fmt.Errorf("service: participant: %w", err)
		}
		p.Participants = append(p.Participants, sid)
	}
	return c.Submit(ctx, id, p)
}

// SendWithClaims is Send with the claims of the handshakes the message
// starts (one per responder: its signed prekey and one-time prekey or 0).
func (c *Client) SendWithClaims(ctx context.Context, id *crypto.Identity, session ids.ID, claims []tx.Claim, ciphertext []byte) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.SendMessage{Session: session, Claims: claims, Ciphertext: ciphertext})
}

// AcceptSession accepts a session (a message request): its messages reach
// id's inbox from now on, the first few (config.RequestBackfill) at once.
func (c *Client) AcceptSession(ctx context.Context, id *crypto.Identity, session ids.ID) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.AcceptSession{Session: session, Decision: tx.DecisionAccept})
}

// DeclineSession declines a message request, or leaves an accepted
// session: no more inbox entries from it.
func (c *Client) DeclineSession(ctx context.Context, id *crypto.Identity, session ids.ID) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.AcceptSession{Session: session, Decision: tx.DecisionDecline})
}

// SetContact sets id's status for peer: tx.ContactTrusted (sessions from
// the peer skip the request step), tx.ContactBlocked (the peer can no
// longer include id in sessions), or tx.ContactNone. Contact lists are
// public on chain.
func (c *Client) SetContact(ctx context.Context, id *crypto.Identity, peer string, status tx.ContactStatus) (*TxReply, error) {
	sid, err := crypto.ParseSessionID(peer)
	if err != nil {
		return nil, fmt.Errorf("service: peer: %w", err)
	}
	return c.Submit(ctx, id, &tx.SetContact{Peer: sid, Status: status})
}

// PublishPrekeys publishes a signed prekey (nil: keep the current one)
// and one-time prekeys (IDs above every one published before).
func (c *Client) PublishPrekeys(ctx context.Context, id *crypto.Identity, signed *tx.SignedPrekey, oneTime ...tx.OneTimePrekey) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.PublishPrekeys{Signed: signed, OneTime: oneTime})
}

// RetirePrekeys removes every unclaimed one-time prekey of id with an ID
// at or below through (a lost device's dead keys), and publishes oneTime
// (IDs above through) in the same transaction.
func (c *Client) RetirePrekeys(ctx context.Context, id *crypto.Identity, through uint32, oneTime ...tx.OneTimePrekey) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.PublishPrekeys{RetireThrough: through, OneTime: oneTime})
}

// SetRequestPolicy sets who may send id message requests:
// tx.RequestsFromAnyone or tx.RequestsFromContacts (every stranger's
// session listing id is then refused).
func (c *Client) SetRequestPolicy(ctx context.Context, id *crypto.Identity, policy tx.RequestPolicy) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.SetRequestPolicy{Policy: policy})
}

// Send posts an opaque ciphertext to a session (sendMessage). SendSealed
// encrypts for the participants first.
func (c *Client) Send(ctx context.Context, id *crypto.Identity, session ids.ID, ciphertext []byte) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.SendMessage{Session: session, Ciphertext: ciphertext})
}

// CloseSession closes a session (closeSession).
func (c *Client) CloseSession(ctx context.Context, id *crypto.Identity, session ids.ID) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.CloseSession{Session: session})
}

// CreateChannel creates an open channel owned by id (createChannel). The
// reply's Channel is the new channel's ID.
func (c *Client) CreateChannel(ctx context.Context, id *crypto.Identity, name string) (*TxReply, error) {
	return c.CreateChannelWithPolicy(ctx, id, name, tx.PolicyOpen)
}

// CreateChannelWithPolicy creates a channel with a join policy
// (tx.PolicyOpen or tx.PolicyInviteOnly).
func (c *Client) CreateChannelWithPolicy(ctx context.Context, id *crypto.Identity, name string, policy tx.JoinPolicy) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.CreateChannel{Name: name, JoinPolicy: policy})
}

// SetChannelPolicy sets a channel's join policy (the owner only), with no
// slow mode.
func (c *Client) SetChannelPolicy(ctx context.Context, id *crypto.Identity, channel ids.ID, policy tx.JoinPolicy) (*TxReply, error) {
	return c.SetChannelPolicyWithSlowMode(ctx, id, channel, policy, 0)
}

// SetChannelPolicyWithSlowMode sets a channel's join policy and slow mode:
// a plain member posts at most once every slowModeSeconds (0: no limit;
// at most 86,400).
func (c *Client) SetChannelPolicyWithSlowMode(ctx context.Context, id *crypto.Identity, channel ids.ID, policy tx.JoinPolicy, slowModeSeconds uint32) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.SetChannelPolicy{Channel: channel, JoinPolicy: policy, SlowModeSeconds: slowModeSeconds})
}

// ModerateChannel applies action to up to config.MaxModerationItems
// members (Session IDs) of a channel (owner or moderators).
func (c *Client) ModerateChannel(ctx context.Context, id *crypto.Identity, channel ids.ID, action tx.ModerationAction, members ...string) (*TxReply, error) {
	p := &tx.ModerateChannel{Channel: channel, Action: action}
	for _, m := range members {
		sid, err := crypto.ParseSessionID(m)
		if err != nil {
			return nil, fmt.Errorf("service: member: %w", err)
		}
		p.Members = append(p.Members, sid)
	}
	return c.Submit(ctx, id, p)
}

// DeletePosts deletes posts of a channel by sequence number: any post for
// the owner and moderators, one's own posts for anyone.
func (c *Client) DeletePosts(ctx context.Context, id *crypto.Identity, channel ids.ID, seqs ...uint64) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.DeletePosts{Channel: channel, Seqs: seqs})
}

// JoinChannel adds id to a channel (joinChannel).
func (c *Client) JoinChannel(ctx context.Context, id *crypto.Identity, channel ids.ID) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.JoinChannel{Channel: channel})
}

// LeaveChannel removes id from a channel (leaveChannel).
func (c *Client) LeaveChannel(ctx context.Context, id *crypto.Identity, channel ids.ID) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.LeaveChannel{Channel: channel})
}

// Post posts an opaque ciphertext to a channel (postChannel).
func (c *Client) Post(ctx context.Context, id *crypto.Identity, channel ids.ID, ciphertext []byte) (*TxReply, error) {
	return c.Submit(ctx, id, &tx.PostChannel{Channel: channel, Ciphertext: ciphertext})
}

// Errors of WaitAccepted.
var (
	ErrTxDropped = errors.New("service: transaction dropped")
	ErrTxUnknown = errors.New("service: transaction unknown to the node")
)

// unknownPolls is how many consecutive "unknown" answers WaitAccepted
// takes before giving up with ErrTxUnknown; transportRetries how many
// consecutive transport failures (connection refused, reset) it rides out.
const (
	unknownPolls     = 3
	transportRetries = 5
)

// WaitAccepted polls getTxStatus until the transaction is accepted and
// returns its status. It returns an error wrapping ErrTxDropped (with the
// reason) if the node dropped it, ErrTxUnknown if the node keeps not
// knowing it, the node's error, the transport error after a few
// consecutive failures, or the context's error. Without a context deadline
// it waits at most the client's wait timeout (DefaultWaitTimeout).
func (c *Client) WaitAccepted(ctx context.Context, txID ids.ID) (*TxStatusReply, error) {
	if _, ok := ctx.Deadline(); !ok && c.waitTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.waitTimeout)
		defer cancel()
	}
	interval := c.pollInterval
	unknown, failures := 0, 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("service: waiting for %s: %w", txID, ctx.Err())
		case <-timer.C:
		}
		st, err := c.TxStatus(ctx, txID)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("service: waiting for %s: %w", txID, ctx.Err())
			}
			_, fromNode := CodeOf(err)
			if fromNode && !IsRetryable(err) {
				return nil, err
			}
			if !fromNode {
				// A transport failure: the node may be restarting.
				if failures++; failures >= transportRetries {
					return nil, err
				}
			}
		} else {
			failures = 0
			switch st.Status {
			case TxAccepted:
				return st, nil
			case TxDropped:
				return st, fmt.Errorf("%w: %s: %s", ErrTxDropped, txID, st.Reason)
			case TxUnknown:
				if unknown++; unknown >= unknownPolls {
					return st, fmt.Errorf("%w: %s", ErrTxUnknown, txID)
				}
			default:
				unknown = 0
			}
		}
		timer.Reset(interval)
		interval = min(interval*3/2, MaxPollInterval)
	}
}

// MessageAD returns the associated data SendSealed binds into a message's
// Seal envelope: the label "luxfi/session/v1/message" then the 32 bytes of
// the session or channel ID. Opening with another target's AD fails, so an
// envelope cannot be replayed into another conversation.
func MessageAD(target ids.ID) []byte {
	return append([]byte("luxfi/session/v1/message"), target[:]...)
}

// SendSealed encrypts plaintext with crypto.Seal to every participant of
// the session (id included, so its own history reads back), with
// MessageAD(session), and sends it. The participants come from the
// session's signed CreateSession transaction (VerifiedSession), never from
// the node's word, and their keys from PublicIdentity (checked against
// their Session IDs, cached): a node that adds a participant is refused
// with ErrUntrustedNode.
func (c *Client) SendSealed(ctx context.Context, id *crypto.Identity, session ids.ID, plaintext []byte) (*TxReply, error) {
	s, err := c.VerifiedSession(ctx, session)
	if err != nil {
		return nil, err
	}
	recipients := make([]*crypto.Identity, 0, len(s.Participants))
	for _, p := range s.Participants {
		if p == id.SessionID {
			recipients = append(recipients, id.PublicIdentity())
			continue
		}
		pub, err := c.PublicIdentity(ctx, p)
		if err != nil {
			return nil, err
		}
		recipients = append(recipients, pub)
	}
	env, err := crypto.Seal(id, recipients, plaintext, MessageAD(session))
	if err != nil {
		return nil, fmt.Errorf("service: sealing: %w", err)
	}
	return c.Send(ctx, id, session, env)
}

// ErrSenderMismatch reports a message whose envelope was signed by someone
// other than the transaction's author (a participant re-posting an envelope
// it received).
var ErrSenderMismatch = errors.New("service: envelope sender is not the message author")

// OpenMessage opens a message sent with SendSealed as recipient id and
// checks that the envelope's signer is the message's author. Errors are
// those of crypto.Open, or ErrSenderMismatch.
func OpenMessage(id *crypto.Identity, m *Message) ([]byte, error) {
	pt, sender, err := crypto.Open(id, m.Ciphertext, MessageAD(m.Target))
	if err != nil {
		return nil, err
	}
	if sender != m.Author {
		return nil, fmt.Errorf("%w: signed by %s, posted by %s", ErrSenderMismatch, sender, m.Author)
	}
	return pt, nil
}
