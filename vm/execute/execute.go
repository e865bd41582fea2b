// Package execute is the SessionVM state transition: it applies a block's
// bounded retention pruning and its transactions to a state.State.
//
// docs/chain.md is the specification of every rule below; this comment is
// a summary.
//
// Execution reads only its Context (chain ID, config, the block's height and
// timestamp) and the state it is given: no clock, no randomness, no map
// iteration, so every node computes the same state from the same blocks.
//
// Each transaction is checked completely before its first write, so a
// refused transaction leaves the state untouched and the caller can go on
// with the next one (mempool admission and block building rely on this).
// Every refusal matches one of package tx's sentinels with errors.Is.
//
// Signatures and registration work are not verified here: the caller
// verifies each transaction's signature and, for a registration, its proof
// of work (once, with a cache) before executing it.
//
// # Rules (summary)
//
//   - Nonces: exactly the author's next. The author's account (nonce,
//     per-identity counts, rate-limit buckets) is read once and written
//     once per transaction; each type charges its bucket (ErrRateLimited).
//   - Consent: a session's participant is accepted if it has the creator
//     as a contact, pending (a message request) otherwise, refused if it
//     blocked the creator. Only accepted participants get inbox entries;
//     a pending one accepts with AcceptSession or by sending, and then
//     receives the session's first config.RequestBackfill messages.
//   - Channels: owner, moderators, members; open or invite-only; invite,
//     remove, ban, delete posts. A full channel evicts its oldest post.
//   - Prekeys: signed and one-time prekeys; claims consume a one-time
//     prekey atomically, bounded per claimer, per target for strangers,
//     and once per ordered pair and session.
//
// Retention: before a block's transactions, Prune removes up to
// config.MaxPrunePerBlock queued items (messages, posts, request entries)
// whose block time is more than retentionDays before the block's, oldest
// first. Blocks keep their bytes (a bootstrapping peer needs them).
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

// Prune removes the messages, posts and request entries whose retention
// ended before the block's timestamp, at most config.MaxPrunePerBlock of
// them. It runs before the block's transactions.
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
	e := executor{st: st, ctx: ctx, index: index, t: t, author: t.Author}
	acct, err := st.GetAccount(t.Author)
	if err != nil {
		return err
	}
	e.acct = acct
	if reg, ok := t.Payload.(*tx.RegisterIdentity); ok {
		return e.registerIdentity(reg)
	}
	// A nonce above 0 is written only by executing one of the author's own
	// transactions, which needs a registered author (RegisterIdentity sets
	// it to 1), and identities are never removed: only a 0 needs the
	// identity looked up.
	if acct.Nonce == 0 {
		registered, err := st.HasIdentity(t.Author)
		if err != nil {
			return err
		}
		if !registered {
			return ErrUnregistered(t.Author)
		}
	}
	if err := nonceError(t.Nonce, acct.Nonce); err != nil {
		return err
	}
	switch p := t.Payload.(type) {
	case *tx.CreateSession:
		return e.createSession(p)
	case *tx.SendMessage:
		return e.sendMessage(p)
	case *tx.CloseSession:
		return e.closeSession(p)
	case *tx.AcceptSession:
		return e.acceptSession(p)
	case *tx.SetContact:
		return e.setContact(p)
	case *tx.PublishPrekeys:
		return e.publishPrekeys(p)
	case *tx.CreateChannel:
		return e.createChannel(p)
	case *tx.JoinChannel:
		return e.joinChannel(p)
	case *tx.LeaveChannel:
		return e.leaveChannel(p)
	case *tx.PostChannel:
		return e.postChannel(p)
	case *tx.SetChannelPolicy:
		return e.setChannelPolicy(p)
	case *tx.ModerateChannel:
		return e.moderateChannel(p)
	case *tx.DeletePosts:
		return e.deletePosts(p)
	default:
		return fmt.Errorf("%w: %T", tx.ErrUnknownType, p)
	}
}

// ErrUnregistered returns tx.ErrUnregisteredAuthor naming the author.
func ErrUnregistered(id crypto.SessionID) error {
	return fmt.Errorf("%w: %s", tx.ErrUnregisteredAuthor, id)
}

type executor struct {
	st     *state.State
	ctx    Context
	index  uint32
	t      *tx.Tx
	author crypto.SessionID
	acct   state.Account // the author's account; written by finish
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

// finish writes the author's account with the next nonce: the last write
// of every transaction.
func (e *executor) finish() error {
	e.acct.Nonce = e.t.Nonce + 1
	return e.st.PutAccount(e.author, &e.acct)
}

// take charges n tokens of bucket b, whose state is *tat, at block time
// now (GCRA: docs/chain.md section 8). On refusal *tat is unchanged.
func take(tat *int64, b config.Bucket, n, now int64, name string) error {
	T := b.RefillMillis()
	next := max(*tat, now) + n*T
	if next-now > b.Burst*T {
		if n > b.Burst {
			return fmt.Errorf("%w: %s: %d tokens needed, the bucket holds %d", tx.ErrRateLimited, name, n, b.Burst)
		}
		return fmt.Errorf("%w: %s: %d tokens needed; enough at block time %d (Unix ms)", tx.ErrRateLimited, name, n, next-b.Burst*T)
	}
	*tat = next
	return nil
}

// charge takes n tokens of the author's bucket k (in e.acct, written by
// finish).
func (e *executor) charge(k config.BucketKind, n int) error {
	if n == 0 {
		return nil
	}
	return take(&e.acct.Buckets[k], e.ctx.Config.RateLimits.Bucket(k), int64(n), e.ctx.Timestamp, k.String())
}

// ---- identities ----

func (e *executor) registerIdentity(p *tx.RegisterIdentity) error {
	dup, err := e.st.HasIdentity(e.author)
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: %s", tx.ErrDuplicateRegistration, e.author)
	}
	if err := nonceError(e.t.Nonce, e.acct.Nonce); err != nil {
		return err
	}
	if _, err := crypto.ParseKEMPublicKey(p.KEMPublicKey); err != nil {
		return fmt.Errorf("%w: ML-KEM-768 key", tx.ErrInvalidPublicKey)
	}
	// The DSA key parsed when the signature was verified.
	if err := e.st.PutIdentity(&state.Identity{
		ID:           e.author,
		KEMPublicKey: p.KEMPublicKey,
		DSAPublicKey: p.DSAPublicKey,
		Height:       e.ctx.Height,
		Timestamp:    e.ctx.Timestamp,
	}); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) position() uint64 { return state.Position(e.ctx.Height, e.index) }

// ---- claims ----

// claimPlan is a checked claim of target's one-time prekey, applied by
// apply.
type claimPlan struct {
	target   crypto.SessionID
	prekeyID uint32
	rec      state.PrekeyRecord // target's record with the claim counted
}

// planClaim checks the author's claim of target's one-time prekey. status
// is target's contact status for the author.
func (e *executor) planClaim(target crypto.SessionID, prekeyID uint32, status uint8) (claimPlan, error) {
	if status == uint8(tx.ContactBlocked) {
		return claimPlan{}, fmt.Errorf("%w: %s blocked the claimer", tx.ErrBlocked, target)
	}
	rec, err := e.st.GetPrekeys(target)
	if err != nil {
		return claimPlan{}, err
	}
	_, ok, err := e.st.OneTime(target, prekeyID)
	if err != nil {
		return claimPlan{}, err
	}
	if !ok {
		if prekeyID <= rec.LastOneTimeID {
			return claimPlan{}, fmt.Errorf("%w: prekey %d of %s", tx.ErrPrekeyClaimed, prekeyID, target)
		}
		return claimPlan{}, fmt.Errorf("%w: prekey %d of %s", tx.ErrUnknownPrekey, prekeyID, target)
	}
	if status != uint8(tx.ContactTrusted) {
		if int64(rec.Unclaimed) <= e.ctx.Config.Prekeys.StrangerReserve {
			return claimPlan{}, fmt.Errorf("%w: %s has %d left", tx.ErrPrekeyReserved, target, rec.Unclaimed)
		}
		if err := take(&rec.StrangerTAT, e.ctx.Config.Prekeys.StrangerClaims, 1, e.ctx.Timestamp, "strangerClaims of "+target.String()); err != nil {
			return claimPlan{}, err
		}
	}
	rec.Unclaimed--
	return claimPlan{target: target, prekeyID: prekeyID, rec: rec}, nil
}

func (c *claimPlan) apply(st *state.State) error {
	if err := st.DeleteOneTime(c.target, c.prekeyID); err != nil {
		return err
	}
	return st.PutPrekeys(c.target, &c.rec)
}

// ---- sessions ----

func (e *executor) createSession(p *tx.CreateSession) error {
	n := len(p.Participants) + 1
	states := make([]state.ParticipantState, n)
	states[0] = state.ParticipantAccepted
	pending := 0
	var claims []claimPlan
	for i, id := range p.Participants {
		ok, err := e.st.HasIdentity(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: participant %d (%s)", tx.ErrUnknownParticipant, i, id)
		}
		status, err := e.st.Contact(id, e.author)
		if err != nil {
			return err
		}
		switch tx.ContactStatus(status) {
		case tx.ContactBlocked:
			return fmt.Errorf("%w: participant %d (%s)", tx.ErrBlocked, i, id)
		case tx.ContactTrusted:
			states[i+1] = state.ParticipantAccepted
		default:
			states[i+1] = state.ParticipantPending
			pending++
		}
		if i < len(p.Claims) && p.Claims[i] != 0 {
			c, err := e.planClaim(id, p.Claims[i], status)
			if err != nil {
				return fmt.Errorf("participant %d: %w", i, err)
			}
			claims = append(claims, c)
		}
	}
	sid := tx.SessionIDFor(e.ctx.ChainID, e.author, e.t.Nonce)
	if _, err := e.st.GetSession(sid); err == nil {
		return tx.ErrSessionAlreadyExisting
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if err := e.charge(config.BucketSessions, 1); err != nil {
		return err
	}
	if err := e.charge(config.BucketRequests, pending); err != nil {
		return err
	}
	if err := e.charge(config.BucketClaims, len(claims)); err != nil {
		return err
	}

	participants := make([]crypto.SessionID, 0, n)
	participants = append(participants, e.author)
	participants = append(participants, p.Participants...)
	s := &state.Session{
		ID:           sid,
		Creator:      e.author,
		Participants: participants,
		Metadata:     p.Metadata,
		Height:       e.ctx.Height,
		CreatedAt:    e.ctx.Timestamp,
		ExpiresAt:    e.ctx.Timestamp + e.ctx.Config.SessionTTLMillis(),
		Position:     e.position(),
		TxID:         e.t.ID(),
	}
	for i, st := range states {
		s.SetState(i, st)
	}
	for i := range p.Participants {
		if i < len(p.Claims) && p.Claims[i] != 0 {
			s.SetClaimed(0, i+1)
		}
	}
	if err := e.st.PutSession(s); err != nil {
		return err
	}
	if err := e.st.AddCount(state.CountSessions, 1); err != nil {
		return err
	}
	for i, id := range participants {
		if states[i] == state.ParticipantAccepted {
			if err := e.st.AddParticipation(id, s.Position, sid); err != nil {
				return err
			}
		} else if err := e.st.PutRequest(id, state.Request{Creator: e.author, Session: sid, Position: s.Position}); err != nil {
			return err
		}
	}
	if pending > 0 {
		if err := e.st.QueueRequest(sid, s.Position, e.ctx.Timestamp); err != nil {
			return err
		}
	}
	for i := range claims {
		if err := claims[i].apply(e.st); err != nil {
			return err
		}
	}
	return e.finish()
}

// session returns a session and the author's index in it.
func (e *executor) session(id ids.ID) (*state.Session, int, error) {
	s, err := e.st.GetSession(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", tx.ErrUnknownSession, id)
	}
	if err != nil {
		return nil, 0, err
	}
	i := s.Index(e.author)
	if i < 0 {
		return nil, 0, tx.ErrNotParticipant
	}
	return s, i, nil
}

// checkOpen refuses a closed or expired session.
func (e *executor) checkOpen(s *state.Session) error {
	switch s.StatusAt(e.ctx.Timestamp) {
	case state.SessionClosed:
		return tx.ErrSessionClosed
	case state.SessionExpired:
		return tx.ErrSessionExpired
	}
	return nil
}

// accept makes participant i (the author) accepted: listed for it, its
// request entry removed and, if it was pending, inbox entries for the
// session's first messages that others sent. The caller writes s.
func (e *executor) accept(s *state.Session, i int, c state.Counter) error {
	wasPending := s.State(i) == state.ParticipantPending
	s.SetState(i, state.ParticipantAccepted)
	if err := e.st.AddParticipation(e.author, s.Position, s.ID); err != nil {
		return err
	}
	if err := e.st.DeleteRequestFor(e.author, s.Creator, s.ID); err != nil {
		return err
	}
	if !wasPending {
		return nil
	}
	// The backfill: at most RequestBackfill reads and writes. A view that
	// drops inbox writes (admission) cannot read messages either.
	if _, dropped := e.st.Database().(state.TxWriteOnlyDropper); dropped {
		return nil
	}
	for seq := max(c.First, 1); seq <= min(c.Last, config.RequestBackfill); seq++ {
		m, err := e.st.GetMessage(s.ID, seq)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if m.Author == e.author {
			continue
		}
		if err := e.st.AddInboxEntry(e.author, m); err != nil {
			return err
		}
	}
	return nil
}

func (e *executor) sendMessage(p *tx.SendMessage) error {
	s, ai, err := e.session(p.Session)
	if err != nil {
		return err
	}
	if s.State(ai) == state.ParticipantLeft {
		return tx.ErrParticipantLeft
	}
	if err := e.checkOpen(s); err != nil {
		return err
	}
	c, err := e.st.GetCounter(s.ID)
	if err != nil {
		return err
	}
	if c.Stored >= uint64(e.ctx.Config.MaxMessages) {
		return fmt.Errorf("%w: %d messages stored", tx.ErrMaxMessages, c.Stored)
	}
	var claims []claimPlan
	var claimed []int
	for k, cl := range p.Claims {
		j := s.Index(cl.Participant)
		if j < 0 {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrNotParticipant, k, cl.Participant)
		}
		if s.State(j) == state.ParticipantLeft {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrParticipantLeft, k, cl.Participant)
		}
		if s.Claimed(ai, j) {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrDuplicateClaim, k, cl.Participant)
		}
		status, err := e.st.Contact(cl.Participant, e.author)
		if err != nil {
			return err
		}
		plan, err := e.planClaim(cl.Participant, cl.PrekeyID, status)
		if err != nil {
			return fmt.Errorf("claim %d: %w", k, err)
		}
		claims = append(claims, plan)
		claimed = append(claimed, j)
	}
	if err := e.charge(config.BucketMessages, 1); err != nil {
		return err
	}
	if err := e.charge(config.BucketClaims, len(claims)); err != nil {
		return err
	}

	changed := len(claims) > 0
	if s.State(ai) == state.ParticipantPending { // replying is consent
		if err := e.accept(s, ai, c); err != nil {
			return err
		}
		changed = true
	}
	for _, j := range claimed {
		s.SetClaimed(ai, j)
	}
	if changed {
		if err := e.st.PutSession(s); err != nil {
			return err
		}
	}
	recipients := make([]crypto.SessionID, 0, len(s.Participants)-1)
	for i, id := range s.Participants {
		if i != ai && s.State(i) == state.ParticipantAccepted {
			recipients = append(recipients, id)
		}
	}
	if _, err := e.st.AppendMessageAfter(state.KindSession, e.message(s.ID, p.Ciphertext), recipients, &c); err != nil {
		return err
	}
	for i := range claims {
		if err := claims[i].apply(e.st); err != nil {
			return err
		}
	}
	return e.finish()
}

func (e *executor) message(target ids.ID, ciphertext []byte) *state.Message {
	return &state.Message{
		Target:     target,
		Author:     e.author,
		TxID:       e.t.ID(),
		Height:     e.ctx.Height,
		Position:   e.position(),
		Timestamp:  e.ctx.Timestamp,
		Ciphertext: ciphertext,
	}
}

func (e *executor) closeSession(p *tx.CloseSession) error {
	s, ai, err := e.session(p.Session)
	if err != nil {
		return err
	}
	switch s.State(ai) {
	case state.ParticipantPending:
		return tx.ErrSessionNotAccepted
	case state.ParticipantLeft:
		return tx.ErrParticipantLeft
	}
	if err := e.checkOpen(s); err != nil {
		return err
	}
	s.Closed = true
	s.ClosedBy = e.author
	s.ClosedAt = e.ctx.Timestamp
	if err := e.st.PutSession(s); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) acceptSession(p *tx.AcceptSession) error {
	s, ai, err := e.session(p.Session)
	if err != nil {
		return err
	}
	if p.Decision == tx.DecisionDecline {
		if s.State(ai) == state.ParticipantLeft {
			return tx.ErrParticipantLeft
		}
		if err := e.charge(config.BucketContacts, 1); err != nil {
			return err
		}
		s.SetState(ai, state.ParticipantLeft)
		if err := e.st.PutSession(s); err != nil {
			return err
		}
		if err := e.st.RemoveParticipation(e.author, s.Position); err != nil {
			return err
		}
		if err := e.st.DeleteRequestFor(e.author, s.Creator, s.ID); err != nil {
			return err
		}
		return e.finish()
	}
	if err := e.checkOpen(s); err != nil {
		return err
	}
	if s.State(ai) == state.ParticipantAccepted {
		return tx.ErrSessionAlreadyAccepted
	}
	c, err := e.st.GetCounter(s.ID)
	if err != nil {
		return err
	}
	if err := e.charge(config.BucketContacts, 1); err != nil {
		return err
	}
	if err := e.accept(s, ai, c); err != nil {
		return err
	}
	if err := e.st.PutSession(s); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) setContact(p *tx.SetContact) error {
	cur, err := e.st.Contact(e.author, p.Peer)
	if err != nil {
		return err
	}
	next := uint8(p.Status)
	switch {
	case cur == 0 && next != 0:
		if e.acct.Contacts >= config.MaxContacts {
			return fmt.Errorf("%w: %d", tx.ErrMaxContacts, e.acct.Contacts)
		}
		e.acct.Contacts++
	case cur != 0 && next == 0:
		e.acct.Contacts--
	}
	if err := e.charge(config.BucketContacts, 1); err != nil {
		return err
	}
	if err := e.st.SetContact(e.author, p.Peer, next); err != nil {
		return err
	}
	if p.Status == tx.ContactBlocked {
		if err := e.st.DeleteRequest(e.author, p.Peer); err != nil {
			return err
		}
	}
	return e.finish()
}

// ---- prekeys ----

func (e *executor) publishPrekeys(p *tx.PublishPrekeys) error {
	rec, err := e.st.GetPrekeys(e.author)
	if err != nil {
		return err
	}
	now := e.ctx.Timestamp
	if s := p.Signed; s != nil {
		if rec.HasSigned && s.ID <= rec.SignedID {
			return fmt.Errorf("%w: signed prekey %d, the last was %d", tx.ErrPrekeyIDOrder, s.ID, rec.SignedID)
		}
		if s.ExpiresAt <= now || s.ExpiresAt-now > config.MaxSignedPrekeyLifetime {
			return fmt.Errorf("%w: expires at %d, block time %d", tx.ErrPrekeyExpiry, s.ExpiresAt, now)
		}
	}
	if n := len(p.OneTime); n > 0 {
		if p.OneTime[0].ID <= rec.LastOneTimeID {
			return fmt.Errorf("%w: one-time prekey %d, the last was %d", tx.ErrPrekeyIDOrder, p.OneTime[0].ID, rec.LastOneTimeID)
		}
		if int(rec.Unclaimed)+n > config.MaxUnclaimedPrekeys {
			return fmt.Errorf("%w: %d unclaimed and %d more, at most %d", tx.ErrTooManyPrekeys, rec.Unclaimed, n, config.MaxUnclaimedPrekeys)
		}
	}
	if err := e.charge(config.BucketPrekeys, 1); err != nil {
		return err
	}
	if s := p.Signed; s != nil {
		rec.HasSigned, rec.SignedID, rec.SignedExpiresAt, rec.SignedTx = true, s.ID, s.ExpiresAt, e.t.ID()
	}
	for _, k := range p.OneTime {
		if err := e.st.PutOneTime(e.author, k.ID, e.t.ID()); err != nil {
			return err
		}
	}
	if n := len(p.OneTime); n > 0 {
		rec.LastOneTimeID = p.OneTime[n-1].ID
		rec.Unclaimed += uint32(n)
	}
	if err := e.st.PutPrekeys(e.author, &rec); err != nil {
		return err
	}
	return e.finish()
}

// ---- channels ----

func (e *executor) createChannel(p *tx.CreateChannel) error {
	if int64(e.acct.Channels) >= e.ctx.Config.MaxChannels {
		return fmt.Errorf("%w: %d channels", tx.ErrMaxChannels, e.acct.Channels)
	}
	cid := tx.ChannelIDFor(e.ctx.ChainID, e.author, e.t.Nonce)
	if _, err := e.st.GetChannel(cid); err == nil {
		return tx.ErrChannelAlreadyExist
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	if err := e.charge(config.BucketChannels, 1); err != nil {
		return err
	}
	policy := p.JoinPolicy
	if policy == 0 {
		policy = tx.PolicyOpen
	}
	if err := e.st.PutChannel(&state.Channel{
		ID:         cid,
		Owner:      e.author,
		Name:       p.Name,
		Height:     e.ctx.Height,
		CreatedAt:  e.ctx.Timestamp,
		Members:    1,
		JoinPolicy: uint8(policy),
	}); err != nil {
		return err
	}
	if err := e.st.AddMember(cid, e.author, state.RoleOwner); err != nil {
		return err
	}
	if err := e.st.AddCount(state.CountChannels, 1); err != nil {
		return err
	}
	e.acct.Channels++
	return e.finish()
}

// channel returns a channel and the author's role in it (0: not a
// member).
func (e *executor) channel(id ids.ID) (*state.Channel, uint8, error) {
	c, err := e.st.GetChannel(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", tx.ErrUnknownChannel, id)
	}
	if err != nil {
		return nil, 0, err
	}
	role, err := e.st.MemberRole(id, e.author)
	return c, role, err
}

func (e *executor) joinChannel(p *tx.JoinChannel) error {
	c, role, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if role != 0 {
		return tx.ErrAlreadyMember
	}
	banned, err := e.st.IsBanned(c.ID, e.author)
	if err != nil {
		return err
	}
	if banned {
		return tx.ErrBanned
	}
	invited, err := e.st.IsInvited(c.ID, e.author)
	if err != nil {
		return err
	}
	if tx.JoinPolicy(c.JoinPolicy) == tx.PolicyInviteOnly && !invited {
		return tx.ErrNotInvited
	}
	if c.Members >= config.MaxChannelMembers {
		return tx.ErrChannelFull
	}
	if err := e.charge(config.BucketJoins, 1); err != nil {
		return err
	}
	c.Members++
	if invited { // a join consumes the invite, whatever the policy
		c.Invites--
		if err := e.st.SetInvited(c.ID, e.author, false); err != nil {
			return err
		}
	}
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.AddMember(c.ID, e.author, state.RoleMember); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) leaveChannel(p *tx.LeaveChannel) error {
	c, role, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if c.Owner == e.author {
		return tx.ErrOwnerCannotLeave
	}
	if role == 0 {
		return tx.ErrNotMember
	}
	c.Members--
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.RemoveMember(c.ID, e.author); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) postChannel(p *tx.PostChannel) error {
	c, role, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if role == 0 {
		return tx.ErrNotMember
	}
	if err := e.charge(config.BucketPosts, 1); err != nil {
		return err
	}
	counter, err := e.st.GetCounter(c.ID)
	if err != nil {
		return err
	}
	if counter.Stored >= uint64(e.ctx.Config.MaxMessages) {
		// Full: evict the oldest stored post, so a channel never closes.
		seq, ok, err := e.st.OldestPost(c.ID, counter.First)
		if err != nil {
			return err
		}
		if ok {
			if _, err := e.st.RemoveMessage(state.KindChannel, c.ID, seq, true); err != nil {
				return err
			}
			if err := e.st.CountDeleted(1); err != nil {
				return err
			}
			if counter, err = e.st.GetCounter(c.ID); err != nil {
				return err
			}
		}
	}
	if _, err := e.st.AppendMessageAfter(state.KindChannel, e.message(c.ID, p.Ciphertext), nil, &counter); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) setChannelPolicy(p *tx.SetChannelPolicy) error {
	c, _, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if c.Owner != e.author {
		return tx.ErrNotOwner
	}
	if err := e.charge(config.BucketModeration, 1); err != nil {
		return err
	}
	policy := p.JoinPolicy
	if policy == 0 {
		policy = tx.PolicyOpen
	}
	c.JoinPolicy = uint8(policy)
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	return e.finish()
}

// target is a checked member of a ModerateChannel.
type target struct {
	id      crypto.SessionID
	role    uint8
	invited bool
}

func (e *executor) moderateChannel(p *tx.ModerateChannel) error {
	c, actor, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if actor != state.RoleOwner && actor != state.RoleModerator {
		return tx.ErrNotModerator
	}
	owner := actor == state.RoleOwner
	if (p.Action == tx.ActionMakeModerator || p.Action == tx.ActionRevokeModerator) && !owner {
		return tx.ErrNotOwner
	}
	targets := make([]target, len(p.Members))
	invites := c.Invites
	for i, m := range p.Members {
		fail := func(err error) error { return fmt.Errorf("member %d (%s): %w", i, m, err) }
		ok, err := e.st.HasIdentity(m)
		if err != nil {
			return err
		}
		if !ok {
			return fail(tx.ErrUnknownMember)
		}
		if m == c.Owner {
			return fail(tx.ErrTargetIsOwner)
		}
		role, err := e.st.MemberRole(c.ID, m)
		if err != nil {
			return err
		}
		invited, err := e.st.IsInvited(c.ID, m)
		if err != nil {
			return err
		}
		banned, err := e.st.IsBanned(c.ID, m)
		if err != nil {
			return err
		}
		switch p.Action {
		case tx.ActionInvite:
			switch {
			case role != 0:
				return fail(tx.ErrAlreadyMember)
			case banned:
				return fail(tx.ErrBanned)
			case invited:
				return fail(tx.ErrAlreadyInvited)
			case invites >= config.MaxChannelInvites:
				return fail(tx.ErrTooManyInvites)
			}
			invites++
		case tx.ActionRevokeInvite:
			if !invited {
				return fail(tx.ErrNotInvited)
			}
		case tx.ActionRemove:
			switch {
			case role == 0:
				return fail(tx.ErrNotMember)
			case role == state.RoleModerator && !owner:
				return fail(tx.ErrTargetIsModerator)
			}
		case tx.ActionBan:
			switch {
			case banned:
				return fail(tx.ErrAlreadyBanned)
			case role == state.RoleModerator && !owner:
				return fail(tx.ErrTargetIsModerator)
			}
		case tx.ActionUnban:
			if !banned {
				return fail(tx.ErrNotBanned)
			}
		case tx.ActionMakeModerator:
			switch role {
			case 0:
				return fail(tx.ErrNotMember)
			case state.RoleModerator:
				return fail(tx.ErrAlreadyModerator)
			}
		case tx.ActionRevokeModerator:
			if role != state.RoleModerator {
				return fail(tx.ErrNotAModerator)
			}
		}
		targets[i] = target{id: m, role: role, invited: invited}
	}
	if err := e.charge(config.BucketModeration, 1); err != nil {
		return err
	}

	for _, t := range targets {
		var err error
		switch p.Action {
		case tx.ActionInvite:
			c.Invites++
			err = e.st.SetInvited(c.ID, t.id, true)
		case tx.ActionRevokeInvite:
			c.Invites--
			err = e.st.SetInvited(c.ID, t.id, false)
		case tx.ActionRemove:
			c.Members--
			err = e.st.RemoveMember(c.ID, t.id)
		case tx.ActionBan:
			if t.role != 0 {
				c.Members--
				if err = e.st.RemoveMember(c.ID, t.id); err != nil {
					return err
				}
			}
			if t.invited {
				c.Invites--
				if err = e.st.SetInvited(c.ID, t.id, false); err != nil {
					return err
				}
			}
			c.Bans++
			err = e.st.SetBanned(c.ID, t.id, true)
		case tx.ActionUnban:
			c.Bans--
			err = e.st.SetBanned(c.ID, t.id, false)
		case tx.ActionMakeModerator:
			err = e.st.AddMember(c.ID, t.id, state.RoleModerator)
		case tx.ActionRevokeModerator:
			err = e.st.AddMember(c.ID, t.id, state.RoleMember)
		}
		if err != nil {
			return err
		}
	}
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) deletePosts(p *tx.DeletePosts) error {
	c, role, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	counter, err := e.st.GetCounter(c.ID)
	if err != nil {
		return err
	}
	privileged := role == state.RoleOwner || role == state.RoleModerator
	var present []uint64
	for _, seq := range p.Seqs {
		if seq > counter.Last {
			return fmt.Errorf("%w: %d, the channel's last is %d", tx.ErrUnknownPost, seq, counter.Last)
		}
		author, ok, err := e.st.PostAuthor(c.ID, seq)
		if err != nil {
			return err
		}
		if !ok {
			continue // already deleted, evicted or pruned
		}
		if !privileged && author != e.author {
			return fmt.Errorf("%w: post %d", tx.ErrNotPostAuthor, seq)
		}
		present = append(present, seq)
	}
	if err := e.charge(config.BucketModeration, 1); err != nil {
		return err
	}
	for _, seq := range present {
		if _, err := e.st.RemoveMessage(state.KindChannel, c.ID, seq, false); err != nil {
			return err
		}
	}
	if err := e.st.CountDeleted(len(present)); err != nil {
		return err
	}
	return e.finish()
}
