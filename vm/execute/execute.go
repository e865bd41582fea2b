// Package execute is the SessionVM state transition: it applies a block's
// bounded retention pruning and its transactions to a state.State.
//
// Execution reads only its Context (chain ID, config, the block's height and
// timestamp) and the state it is given: no clock, no randomness, no map
// iteration, so every node computes the same state from the same blocks.
//
// Each transaction is checked completely before its first write, so a
// refused transaction leaves the state untouched and the caller can go on
// with the next one (mempool admission and block building rely on this).
//
// Signatures are not verified here: the caller verifies each transaction's
// signature (once, with a cache) before executing it.
//
// # Rules
//
//   - Every transaction's nonce must be exactly its author's next nonce
//     (0 for the first); lower is ErrReplayedNonce, higher ErrSkippedNonce.
//   - RegisterIdentity: the author is not yet registered; the keys (which
//     derive the author's Session ID) are stored.
//   - CreateSession: every participant is registered; the session ID is
//     tx.SessionIDFor(chain, author, nonce); participants are the author
//     then the listed ones; the session accepts messages until
//     block time + sessionTTL.
//   - SendMessage: the author takes part in the session, which is neither
//     closed nor expired (block time ≥ expiry) and holds fewer than
//     maxMessages messages; the message gets the next sequence number and
//     an inbox entry for every other participant.
//   - CloseSession: by any participant of an open, unexpired session.
//   - Channels, join policy "open": any registered identity may create a
//     channel (while fewer than maxChannels exist; channels are permanent,
//     so maxChannels bounds the channels ever created) and becomes its
//     owner and first member; any registered identity may join any channel
//     of fewer than config.MaxChannelMembers members; members may leave,
//     except the owner; only members post, up to maxMessages posts. Posts
//     are read per channel; they do not go into inboxes. Confidentiality
//     is the application's: posts are ciphertexts for the members it chose.
//
// Retention: before a block's transactions, Prune removes up to
// config.MaxPrunePerBlock messages and posts whose block time is more than
// retentionDays before the block's, oldest first, with their inbox
// entries. It removes them from the message index; the blocks themselves,
// which hold the ciphertexts, stay in the block store (a peer bootstrapping
// the chain needs them).
package execute

import (
	"errors"
	"fmt"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/tx"
)

// Context is what execution may know besides the state.
type Context struct {
	ChainID   ids.ID
	Config    config.Config
	Height    uint64
	Timestamp int64 // block time, Unix milliseconds
}

// Prune removes the messages whose retention ended before the block's
// timestamp, at most config.MaxPrunePerBlock of them. It runs before the
// block's transactions.
func Prune(st *state.State, ctx Context) (int, error) {
	cutoff := ctx.Timestamp - ctx.Config.RetentionMillis()
	return st.PruneMessages(cutoff, config.MaxPrunePerBlock)
}

// Tx checks t against st and, if it is valid, applies it. index is t's
// position in its block. A refusal returns an error matching one of the tx
// package's sentinels and writes nothing; other errors come from the
// database.
func Tx(st *state.State, ctx Context, index uint32, t *tx.Tx) error {
	if err := t.Check(ctx.ChainID); err != nil {
		return err
	}
	e := executor{st: st, ctx: ctx, index: index, t: t}
	if reg, ok := t.Payload.(*tx.RegisterIdentity); ok {
		return e.registerIdentity(reg)
	}
	next, err := st.Nonce(t.Author)
	if err != nil {
		return err
	}
	// A nonce above 0 is written only by executing one of the author's own
	// transactions, which needs a registered author (RegisterIdentity sets
	// it to 1), and identities are never removed: only a 0 needs the
	// identity looked up.
	if next == 0 {
		registered, err := st.HasIdentity(t.Author)
		if err != nil {
			return err
		}
		if !registered {
			return ErrUnregistered(t.Author)
		}
	}
	if err := nonceError(t.Nonce, next); err != nil {
		return err
	}
	switch p := t.Payload.(type) {
	case *tx.CreateSession:
		return e.createSession(p)
	case *tx.SendMessage:
		return e.sendMessage(p)
	case *tx.CloseSession:
		return e.closeSession(p)
	case *tx.CreateChannel:
		return e.createChannel(p)
	case *tx.JoinChannel:
		return e.joinChannel(p)
	case *tx.LeaveChannel:
		return e.leaveChannel(p)
	case *tx.PostChannel:
		return e.postChannel(p)
	default:
		return fmt.Errorf("%w: %T", tx.ErrUnknownType, p)
	}
}

// ErrUnregistered returns tx.ErrUnregisteredAuthor naming the author.
func ErrUnregistered(id crypto.SessionID) error {
	return fmt.Errorf("%w: %s", tx.ErrUnregisteredAuthor, id)
}

type executor struct {
	st    *state.State
	ctx   Context
	index uint32
	t     *tx.Tx
}

func (e *executor) checkNonce() error {
	want, err := e.st.Nonce(e.t.Author)
	if err != nil {
		return err
	}
	return nonceError(e.t.Nonce, want)
}

// nonceError refuses a nonce other than want, the author's next.
func nonceError(got, want uint64) error {
	switch {
	case got < want:
		return fmt.Errorf("%w: got %d, next is %d", tx.ErrReplayedNonce, got, want)
	case got > want:
		return fmt.Errorf("%w: got %d, next is %d", tx.ErrSkippedNonce, got, want)
	}
	return nil
}

func (e *executor) bumpNonce() error { return e.st.SetNonce(e.t.Author, e.t.Nonce+1) }

func (e *executor) registerIdentity(p *tx.RegisterIdentity) error {
	dup, err := e.st.HasIdentity(e.t.Author)
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: %s", tx.ErrDuplicateRegistration, e.t.Author)
	}
	if err := e.checkNonce(); err != nil {
		return err
	}
	if _, err := crypto.ParseKEMPublicKey(p.KEMPublicKey); err != nil {
		return fmt.Errorf("%w: ML-KEM-768 key", tx.ErrInvalidPublicKey)
	}
	// The DSA key parsed when the signature was verified.
	if err := e.st.PutIdentity(&state.Identity{
		ID:           e.t.Author,
		KEMPublicKey: p.KEMPublicKey,
		DSAPublicKey: p.DSAPublicKey,
		Height:       e.ctx.Height,
		Timestamp:    e.ctx.Timestamp,
	}); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) createSession(p *tx.CreateSession) error {
	for i, id := range p.Participants {
		ok, err := e.st.HasIdentity(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: participant %d (%s)", tx.ErrUnknownParticipant, i, id)
		}
	}
	sid := tx.SessionIDFor(e.ctx.ChainID, e.t.Author, e.t.Nonce)
	if _, err := e.st.GetSession(sid); err == nil {
		return tx.ErrSessionAlreadyExisting
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	participants := make([]crypto.SessionID, 0, len(p.Participants)+1)
	participants = append(participants, e.t.Author)
	participants = append(participants, p.Participants...)
	if err := e.st.PutSession(&state.Session{
		ID:           sid,
		Creator:      e.t.Author,
		Participants: participants,
		Metadata:     p.Metadata,
		Height:       e.ctx.Height,
		CreatedAt:    e.ctx.Timestamp,
		ExpiresAt:    e.ctx.Timestamp + e.ctx.Config.SessionTTLMillis(),
	}); err != nil {
		return err
	}
	if err := e.st.AddCount(state.CountSessions, 1); err != nil {
		return err
	}
	return e.bumpNonce()
}

// openSession returns the session if the author may post to it now.
func (e *executor) openSession(id ids.ID) (*state.Session, error) {
	s, err := e.st.GetSession(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", tx.ErrUnknownSession, id)
	}
	if err != nil {
		return nil, err
	}
	if !s.IsParticipant(e.t.Author) {
		return nil, tx.ErrNotParticipant
	}
	switch s.StatusAt(e.ctx.Timestamp) {
	case state.SessionClosed:
		return nil, tx.ErrSessionClosed
	case state.SessionExpired:
		return nil, tx.ErrSessionExpired
	}
	return s, nil
}

// checkRoom refuses a message to a target holding maxMessages; it returns
// the target's last sequence number.
func (e *executor) checkRoom(target ids.ID) (uint64, error) {
	last, err := e.st.LastSeq(target)
	if err != nil {
		return 0, err
	}
	if last >= uint64(e.ctx.Config.MaxMessages) {
		return 0, fmt.Errorf("%w: %d messages", tx.ErrMaxMessages, last)
	}
	return last, nil
}

func (e *executor) message(target ids.ID, ciphertext []byte) *state.Message {
	return &state.Message{
		Target:     target,
		Author:     e.t.Author,
		TxID:       e.t.ID(),
		Height:     e.ctx.Height,
		Position:   state.Position(e.ctx.Height, e.index),
		Timestamp:  e.ctx.Timestamp,
		Ciphertext: ciphertext,
	}
}

func (e *executor) sendMessage(p *tx.SendMessage) error {
	s, err := e.openSession(p.Session)
	if err != nil {
		return err
	}
	last, err := e.checkRoom(s.ID)
	if err != nil {
		return err
	}
	recipients := make([]crypto.SessionID, 0, len(s.Participants)-1)
	for _, id := range s.Participants {
		if id != e.t.Author {
			recipients = append(recipients, id)
		}
	}
	if _, err := e.st.AppendMessageAfter(state.KindSession, e.message(s.ID, p.Ciphertext), recipients, last); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) closeSession(p *tx.CloseSession) error {
	s, err := e.openSession(p.Session)
	if err != nil {
		return err
	}
	s.Closed = true
	s.ClosedBy = e.t.Author
	s.ClosedAt = e.ctx.Timestamp
	if err := e.st.PutSession(s); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) createChannel(p *tx.CreateChannel) error {
	n, err := e.st.Count(state.CountChannels)
	if err != nil {
		return err
	}
	if n >= uint64(e.ctx.Config.MaxChannels) {
		return fmt.Errorf("%w: %d channels", tx.ErrMaxChannels, n)
	}
	cid := tx.ChannelIDFor(e.ctx.ChainID, e.t.Author, e.t.Nonce)
	if _, err := e.st.GetChannel(cid); err == nil {
		return tx.ErrChannelAlreadyExist
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if err := e.st.PutChannel(&state.Channel{
		ID:        cid,
		Owner:     e.t.Author,
		Name:      p.Name,
		Height:    e.ctx.Height,
		CreatedAt: e.ctx.Timestamp,
		Members:   1,
	}); err != nil {
		return err
	}
	if err := e.st.AddMember(cid, e.t.Author); err != nil {
		return err
	}
	if err := e.st.AddCount(state.CountChannels, 1); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) channel(id ids.ID) (*state.Channel, bool, error) {
	c, err := e.st.GetChannel(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, false, fmt.Errorf("%w: %s", tx.ErrUnknownChannel, id)
	}
	if err != nil {
		return nil, false, err
	}
	member, err := e.st.IsMember(id, e.t.Author)
	return c, member, err
}

func (e *executor) joinChannel(p *tx.JoinChannel) error {
	c, member, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if member {
		return tx.ErrAlreadyMember
	}
	if c.Members >= config.MaxChannelMembers {
		return tx.ErrChannelFull
	}
	c.Members++
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.AddMember(c.ID, e.t.Author); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) leaveChannel(p *tx.LeaveChannel) error {
	c, member, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if c.Owner == e.t.Author {
		return tx.ErrOwnerCannotLeave
	}
	if !member {
		return tx.ErrNotMember
	}
	c.Members--
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.RemoveMember(c.ID, e.t.Author); err != nil {
		return err
	}
	return e.bumpNonce()
}

func (e *executor) postChannel(p *tx.PostChannel) error {
	c, member, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if !member {
		return tx.ErrNotMember
	}
	last, err := e.checkRoom(c.ID)
	if err != nil {
		return err
	}
	if _, err := e.st.AppendMessageAfter(state.KindChannel, e.message(c.ID, p.Ciphertext), nil, last); err != nil {
		return err
	}
	return e.bumpNonce()
}
