// Package execute is the SessionVM state transition: it applies a block's
// bookkeeping (anchor records and bounded retention) and its transactions
// to a state.State.
//
// docs/chain.md is the specification of every rule below; this comment is
// a summary.
//
// Execution reads only its Context (chain ID, config, the block's height,
// timestamp and parent) and the state it is given: no clock, no
// randomness, no map iteration, so every node computes the same state from
// the same blocks. The state commitment hashes every write in order, so
// the order of writes below is part of the rules too (TestWriteOrder pins
// it).
//
// Each transaction is checked completely before its first write, so a
// refused transaction leaves the state untouched and the caller can go on
// with the next one (mempool admission and block building rely on this).
// Every refusal matches one of package tx's sentinels with errors.Is; when
// several checks fail, the first in the order of docs/chain.md is
// reported.
//
// Signatures and registration work are not verified here: the caller
// verifies each transaction's signature and, for a registration, its proof
// of work (once, with a cache keyed by the Argon2id input) before executing
// it. Execution checks a registration's anchor (AnchorID).
//
// # Rules (summary)
//
//   - Nonces: exactly the author's next. The author's account (nonce,
//     per-identity counts, request policy, rate-limit buckets) is read once
//     and written once per transaction, last; each type charges its
//     buckets (ErrRateLimited), every type but a registration the bytes
//     bucket.
//   - Consent: a session's participant is accepted if it has the creator
//     as a contact and blocked none of the other participants, pending (a
//     message request) otherwise, refused if it blocked the creator or
//     takes requests from contacts only. Only accepted participants get
//     inbox entries; a pending one accepts with AcceptSession or by
//     sending, and then receives the session's first
//     config.RequestBackfill messages. A request takes at most that many
//     messages.
//   - Channels: owner, moderators, members; open or invite-only; slow
//     mode; invite, remove, ban, delete posts. Posting sequence number q
//     evicts q − maxMessages.
//   - Prekeys and claims: signed (current and previous) and one-time
//     prekeys; every claim names the signed prekey and a one-time prekey
//     or 0 (0 only when none is claimable by the claimer), at most
//     config.MaxClaimsPerPair per ordered pair and session; claims enter
//     the target's claim log.
//
// Block bookkeeping (BeginBlock, before a block's transactions): the
// parent's ID is recorded as the anchor of its height (and the one that
// left the window removed), then retention removes up to
// config.MaxPrunePerBlock queued items (messages, posts, request entries,
// claim log entries) whose block time is more than retentionDays before
// the block's, oldest first, beginning none once
// config.MaxPruneWritesPerBlock writes are spent, then up to
// config.MaxSessionPrunePerBlock (and none once
// config.MaxSessionPruneWritesPerBlock writes are spent)
// sessions older than sessionTTL + retentionDays. Blocks keep their bytes
// (a bootstrapping peer needs them).
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
	Timestamp int64  // block time, Unix milliseconds
	ParentID  ids.ID // the block's parent: the anchor of height Height − 1
}

// BeginBlock runs a block's bookkeeping before its transactions: the
// anchor record of the parent (height − 1) and the removal of the one that
// left the anchor window, then retention of messages, posts, request
// entries and claim log entries, then retention of sessions.
func BeginBlock(st *state.State, ctx Context) error {
	if ctx.Height > 0 {
		parent := ctx.Height - 1
		if err := st.PutAnchor(parent, ctx.ParentID); err != nil {
			return err
		}
		if w := uint64(ctx.Config.Registration.AnchorWindow); parent >= w {
			if err := st.DeleteAnchor(parent - w); err != nil {
				return err
			}
		}
	}
	cutoff := ctx.Timestamp - ctx.Config.RetentionMillis()
	if _, err := st.PruneMessagesWithin(cutoff, config.MaxPrunePerBlock, config.MaxPruneWritesPerBlock); err != nil {
		return err
	}
	_, err := st.PruneSessionsWithin(cutoff-ctx.Config.SessionTTLMillis(), config.MaxSessionPrunePerBlock, config.MaxSessionPruneWritesPerBlock)
	return err
}

// AnchorID returns the ID of the block at height a, which a registration
// executing in the block of ctx may anchor its work to: 1 ≤ height − a ≤
// registration.anchorWindow, and its ID is known (the parent's is
// ctx.ParentID, older ones are the anchor records). Otherwise it returns
// tx.ErrAnchor.
func AnchorID(st *state.State, ctx Context, a uint64) (ids.ID, error) {
	w := uint64(ctx.Config.Registration.AnchorWindow)
	if a >= ctx.Height || ctx.Height-a > w {
		return ids.Empty, fmt.Errorf("%w: anchor height %d, block height %d, window %d", tx.ErrAnchor, a, ctx.Height, w)
	}
	if a == ctx.Height-1 {
		return ctx.ParentID, nil
	}
	id, ok, err := st.Anchor(a)
	if err != nil {
		return ids.Empty, err
	}
	if !ok {
		return ids.Empty, fmt.Errorf("%w: no block recorded at height %d", tx.ErrAnchor, a)
	}
	return id, nil
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
	if err := e.charge(config.BucketBytes, BytesCost(t.Size())); err != nil {
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
	case *tx.SetRequestPolicy:
		return e.setRequestPolicy(p)
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

// BytesCost is the number of tokens of the bytes bucket a transaction of
// size bytes costs: ⌈size / config.BytesBucketUnit⌉.
func BytesCost(size int) int {
	return (size + config.BytesBucketUnit - 1) / config.BytesBucketUnit
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

// take charges n ≥ 1 tokens of bucket b, whose state is *tat, at block
// time now (GCRA: docs/chain.md section 8). On refusal *tat is unchanged.
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

// hasToken reports whether bucket b (state tat) has a token at now,
// without taking it.
func hasToken(tat int64, b config.Bucket, now int64) bool {
	return take(&tat, b, 1, now, "") == nil
}

// charge takes n tokens of the author's bucket k (in e.acct, written by
// finish). A charge of 0 tokens neither checks nor changes the bucket.
func (e *executor) charge(k config.BucketKind, n int) error {
	if n == 0 {
		return nil
	}
	return take(&e.acct.Buckets[k], e.ctx.Config.RateLimits.Bucket(k), int64(n), e.ctx.Timestamp, k.String())
}

func (e *executor) position() uint64 { return state.Position(e.ctx.Height, e.index) }

// ---- identities ----

func (e *executor) registerIdentity(p *tx.RegisterIdentity) error {
	dup, err := e.st.HasIdentity(e.author)
	if err != nil {
		return err
	}
	if dup {
		return fmt.Errorf("%w: %s", tx.ErrDuplicateRegistration, e.author)
	}
	if _, err := AnchorID(e.st, e.ctx, p.AnchorHeight); err != nil {
		return err
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

// ---- claims ----

// claimPlan is a checked claim of target's prekeys, applied by apply.
type claimPlan struct {
	target crypto.SessionID
	j      int // the target's index in the session
	claim  tx.Claim
	rec    state.PrekeyRecord // the target's record with the claim counted
	otTx   ids.ID             // the one-time prekey's publishing transaction
}

// planClaim checks the author's claim c of a participant's prekeys
// (docs/chain.md section 7, checks 3 and 4; the caller checked the
// participant, its state, the block and the pair's count). status is the
// target's contact status for the author; request says whether, for a
// stranger, the claim comes with a request (the first request in a
// CreateSession, or a session the target accepted).
func (e *executor) planClaim(c tx.Claim, j int, status uint8, request bool) (claimPlan, error) {
	target := c.Participant
	rec, err := e.st.GetPrekeys(target)
	if err != nil {
		return claimPlan{}, err
	}
	now := e.ctx.Timestamp
	if !rec.SignedValid(c.SignedPrekeyID, now) {
		return claimPlan{}, fmt.Errorf("%w: signed prekey %d of %s", tx.ErrSignedPrekey, c.SignedPrekeyID, target)
	}
	cfg := e.ctx.Config.Prekeys
	contact := status == uint8(tx.ContactTrusted)
	plan := claimPlan{target: target, j: j, claim: c, rec: rec}
	if c.OneTimePrekeyID == 0 {
		claimable := rec.Unclaimed > 0 && (contact ||
			(int64(rec.Unclaimed) > cfg.StrangerReserve && hasToken(rec.StrangerTAT, cfg.StrangerClaims, now) && request))
		if claimable {
			return claimPlan{}, fmt.Errorf("%w: %s has %d unclaimed", tx.ErrPrekeyAvailable, target, rec.Unclaimed)
		}
		return plan, nil
	}
	otTx, ok, err := e.st.OneTime(target, c.OneTimePrekeyID)
	if err != nil {
		return claimPlan{}, err
	}
	if !ok {
		if c.OneTimePrekeyID <= rec.LastOneTimeID {
			return claimPlan{}, fmt.Errorf("%w: prekey %d of %s", tx.ErrPrekeyClaimed, c.OneTimePrekeyID, target)
		}
		return claimPlan{}, fmt.Errorf("%w: prekey %d of %s", tx.ErrUnknownPrekey, c.OneTimePrekeyID, target)
	}
	if !contact {
		if int64(rec.Unclaimed) <= cfg.StrangerReserve {
			return claimPlan{}, fmt.Errorf("%w: %s has %d left", tx.ErrPrekeyReserved, target, rec.Unclaimed)
		}
		if err := take(&plan.rec.StrangerTAT, cfg.StrangerClaims, 1, now, "strangerClaims of "+target.String()); err != nil {
			return claimPlan{}, err
		}
		if !request {
			return claimPlan{}, fmt.Errorf("%w: %s", tx.ErrStrangerClaim, target)
		}
	}
	plan.rec.Unclaimed--
	plan.otTx = otTx
	return plan, nil
}

// apply writes a checked claim made in session at the transaction's
// position: the one-time prekey is deleted and the target's record
// written (when one is claimed), then the claim log entry and its
// retention item.
func (c *claimPlan) apply(e *executor, session ids.ID) error {
	if c.claim.OneTimePrekeyID != 0 {
		if err := e.st.DeleteOneTime(c.target, c.claim.OneTimePrekeyID); err != nil {
			return err
		}
		if err := e.st.PutPrekeys(c.target, &c.rec); err != nil {
			return err
		}
	}
	pos := e.position()
	if err := e.st.PutClaim(c.target, &state.ClaimRecord{
		Position:        pos,
		Claimer:         e.author,
		Session:         session,
		Tx:              e.t.ID(),
		SignedPrekeyID:  c.claim.SignedPrekeyID,
		OneTimePrekeyID: c.claim.OneTimePrekeyID,
		OneTimeTx:       c.otTx,
		Time:            e.ctx.Timestamp,
	}); err != nil {
		return err
	}
	return e.st.QueueClaim(c.target, pos, e.ctx.Timestamp)
}

// Claimable reports whether target has a one-time prekey that claimer may
// claim at block time ctx.Timestamp (docs/chain.md section 7): in a
// CreateSession (session nil), or in a SendMessage in session. It is what
// a claim of 0 is checked against; getPrekeyBundle uses it to serve a
// one-time prekey only when the chain would accept its claim.
func Claimable(st *state.State, ctx Context, target, claimer crypto.SessionID, session *ids.ID) (bool, error) {
	rec, err := st.GetPrekeys(target)
	if err != nil || rec.Unclaimed == 0 {
		return false, err
	}
	status, err := st.Contact(target, claimer)
	if err != nil {
		return false, err
	}
	switch tx.ContactStatus(status) {
	case tx.ContactTrusted:
		return true, nil
	case tx.ContactBlocked:
		return false, nil
	}
	cfg := ctx.Config.Prekeys
	if int64(rec.Unclaimed) <= cfg.StrangerReserve || !hasToken(rec.StrangerTAT, cfg.StrangerClaims, ctx.Timestamp) {
		return false, nil
	}
	if session == nil {
		_, had, err := st.GetRequest(target, claimer)
		return !had, err
	}
	s, err := st.GetSession(*session)
	if errors.Is(err, state.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	j := s.Index(target)
	return j >= 0 && s.State(j) == state.ParticipantAccepted, nil
}

// ---- sessions ----

func (e *executor) createSession(p *tx.CreateSession) error {
	n := len(p.Participants) + 1
	states := make([]state.ParticipantState, n)
	statuses := make([]uint8, n) // each listed participant's status for the author
	states[0] = state.ParticipantAccepted
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
		statuses[i+1] = status
		switch tx.ContactStatus(status) {
		case tx.ContactBlocked:
			return fmt.Errorf("%w: participant %d (%s)", tx.ErrBlocked, i, id)
		case tx.ContactTrusted:
			states[i+1] = state.ParticipantAccepted // a candidate, checked below
		default:
			states[i+1] = state.ParticipantPending
			acct, err := e.st.GetAccount(id)
			if err != nil {
				return err
			}
			if acct.ContactsOnly != 0 {
				return fmt.Errorf("%w: participant %d (%s)", tx.ErrRequestsClosed, i, id)
			}
		}
	}
	// A contact who blocked another participant is pending: consent to a
	// contact never covers someone one blocked.
	for i, id := range p.Participants {
		if states[i+1] != state.ParticipantAccepted {
			continue
		}
		for k, other := range p.Participants {
			if k == i {
				continue
			}
			st, err := e.st.Contact(id, other)
			if err != nil {
				return err
			}
			if st == uint8(tx.ContactBlocked) {
				states[i+1] = state.ParticipantPending
				break
			}
		}
	}
	pending := 0
	for _, s := range states {
		if s == state.ParticipantPending {
			pending++
		}
	}
	sid := tx.SessionIDFor(e.ctx.ChainID, e.author, e.t.Nonce)
	if _, err := e.st.GetSession(sid); err == nil {
		return tx.ErrSessionAlreadyExisting
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	claims := make([]claimPlan, 0, len(p.Claims))
	for k, c := range p.Claims {
		j := 1
		for p.Participants[j-1] != c.Participant { // listed: tx.Check
			j++
		}
		// A stranger claims with its first request: no pending request
		// of the author's to the target before this transaction.
		request := false
		if states[j] == state.ParticipantPending && statuses[j] != uint8(tx.ContactTrusted) {
			_, had, err := e.st.GetRequest(c.Participant, e.author)
			if err != nil {
				return err
			}
			request = !had
		}
		plan, err := e.planClaim(c, j, statuses[j], request)
		if err != nil {
			return fmt.Errorf("claim %d: %w", k, err)
		}
		claims = append(claims, plan)
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
	for _, c := range claims {
		s.AddClaim(0, c.j)
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
	if err := e.st.QueueSession(sid, s.Position, e.ctx.Timestamp); err != nil {
		return err
	}
	for i := range claims {
		if err := claims[i].apply(e, sid); err != nil {
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
// request entry for this session removed and, if it was pending, inbox
// entries for the session's first messages that others sent (keyed by
// their positions). The caller writes s.
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

// share returns the most messages one participant of a session of n
// participants stores: ⌈maxMessages / n⌉.
func (e *executor) share(n int) uint64 {
	m := uint64(e.ctx.Config.MaxMessages)
	return (m + uint64(n) - 1) / uint64(n)
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
	n := len(s.Participants)
	if c.NShares == 0 {
		c.NShares = n // the session's first message
	}
	if c.Stored >= uint64(e.ctx.Config.MaxMessages) {
		return fmt.Errorf("%w: %d messages stored", tx.ErrMaxMessages, c.Stored)
	}
	if share := e.share(n); uint64(c.Shares[ai]) >= share {
		return fmt.Errorf("%w: the author stores its share, %d messages", tx.ErrMaxMessages, share)
	}
	pendingAuthor := s.State(ai) == state.ParticipantPending
	if !s.AcceptedOthers() && !(pendingAuthor && ai != 0) && c.Last >= config.RequestBackfill {
		return fmt.Errorf("%w: %d messages sent", tx.ErrRequestFull, c.Last)
	}
	var claims []claimPlan
	for k, cl := range p.Claims {
		j := s.Index(cl.Participant)
		if j < 0 {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrNotParticipant, k, cl.Participant)
		}
		if s.State(j) == state.ParticipantLeft {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrParticipantLeft, k, cl.Participant)
		}
		status, err := e.st.Contact(cl.Participant, e.author)
		if err != nil {
			return err
		}
		if status == uint8(tx.ContactBlocked) {
			return fmt.Errorf("%w: claim %d: %s blocked the claimer", tx.ErrBlocked, k, cl.Participant)
		}
		if s.ClaimCount(ai, j) >= config.MaxClaimsPerPair {
			return fmt.Errorf("%w: claim %d names %s", tx.ErrClaimLimit, k, cl.Participant)
		}
		plan, err := e.planClaim(cl, j, status, s.State(j) == state.ParticipantAccepted)
		if err != nil {
			return fmt.Errorf("claim %d: %w", k, err)
		}
		claims = append(claims, plan)
	}
	if err := e.charge(config.BucketMessages, 1); err != nil {
		return err
	}
	if err := e.charge(config.BucketClaims, len(claims)); err != nil {
		return err
	}

	changed := len(claims) > 0
	if pendingAuthor { // replying is consent
		if err := e.accept(s, ai, c); err != nil {
			return err
		}
		changed = true
	}
	for _, cl := range claims {
		s.AddClaim(ai, cl.j)
	}
	if changed {
		if err := e.st.PutSession(s); err != nil {
			return err
		}
	}
	recipients := make([]crypto.SessionID, 0, n-1)
	for i, id := range s.Participants {
		if i != ai && s.State(i) == state.ParticipantAccepted {
			recipients = append(recipients, id)
		}
	}
	c.Shares[ai]++
	if _, err := e.st.AppendMessageAfter(state.KindSession, e.message(s.ID, p.Ciphertext), recipients, &c); err != nil {
		return err
	}
	for i := range claims {
		if err := claims[i].apply(e, s.ID); err != nil {
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
	if ai != 0 && len(s.Participants) != 2 {
		return tx.ErrNotCreator
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
	if cur == next {
		return fmt.Errorf("%w: status %s", tx.ErrUnchanged, p.Status)
	}
	switch tx.ContactStatus(cur) {
	case tx.ContactTrusted:
		e.acct.Contacts--
	case tx.ContactBlocked:
		e.acct.Blocked--
	}
	switch p.Status {
	case tx.ContactTrusted:
		if e.acct.Contacts >= config.MaxContacts {
			return fmt.Errorf("%w: %d", tx.ErrMaxContacts, e.acct.Contacts)
		}
		e.acct.Contacts++
	case tx.ContactBlocked:
		if e.acct.Blocked >= config.MaxBlocked {
			return fmt.Errorf("%w: %d", tx.ErrMaxBlocked, e.acct.Blocked)
		}
		e.acct.Blocked++
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

func (e *executor) setRequestPolicy(p *tx.SetRequestPolicy) error {
	var next uint8
	if p.Policy == tx.RequestsFromContacts {
		next = 1
	}
	if e.acct.ContactsOnly == next {
		return fmt.Errorf("%w: requests from %s", tx.ErrUnchanged, p.Policy)
	}
	if err := e.charge(config.BucketContacts, 1); err != nil {
		return err
	}
	e.acct.ContactsOnly = next
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
		if uint64(s.ID) > uint64(rec.SignedID)+config.MaxPrekeyIDStep {
			return fmt.Errorf("%w: signed prekey %d is more than %d above %d", tx.ErrPrekeyIDOrder, s.ID, config.MaxPrekeyIDStep, rec.SignedID)
		}
		if s.ExpiresAt <= now || s.ExpiresAt-now > config.MaxSignedPrekeyLifetime {
			return fmt.Errorf("%w: expires at %d, block time %d", tx.ErrPrekeyExpiry, s.ExpiresAt, now)
		}
	}
	n := len(p.OneTime)
	if n > 0 {
		first := p.OneTime[0].ID
		if first <= rec.LastOneTimeID {
			return fmt.Errorf("%w: one-time prekey %d, the last was %d", tx.ErrPrekeyIDOrder, first, rec.LastOneTimeID)
		}
		if uint64(first) > uint64(rec.LastOneTimeID)+config.MaxPrekeyIDStep {
			return fmt.Errorf("%w: one-time prekey %d is more than %d above %d", tx.ErrPrekeyIDOrder, first, config.MaxPrekeyIDStep, rec.LastOneTimeID)
		}
	}
	var retired []state.OneTimePrekey
	if p.RetireThrough > 0 {
		if retired, err = e.st.OneTimes(e.author, p.RetireThrough); err != nil {
			return err
		}
	}
	if left := int(rec.Unclaimed) - len(retired); left+n > config.MaxUnclaimedPrekeys {
		return fmt.Errorf("%w: %d unclaimed and %d more, at most %d", tx.ErrTooManyPrekeys, left, n, config.MaxUnclaimedPrekeys)
	}
	if err := e.charge(config.BucketPrekeys, 1); err != nil {
		return err
	}
	for _, k := range retired {
		if err := e.st.DeleteOneTime(e.author, k.ID); err != nil {
			return err
		}
	}
	rec.Unclaimed -= uint32(len(retired))
	if s := p.Signed; s != nil {
		if rec.HasSigned {
			rec.HasPrevious, rec.PreviousID, rec.PreviousExpires, rec.PreviousTx = true, rec.SignedID, rec.SignedExpiresAt, rec.SignedTx
		}
		rec.HasSigned, rec.SignedID, rec.SignedExpiresAt, rec.SignedTx = true, s.ID, s.ExpiresAt, e.t.ID()
	}
	for _, k := range p.OneTime {
		if err := e.st.PutOneTime(e.author, k.ID, e.t.ID()); err != nil {
			return err
		}
	}
	if n > 0 {
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
	if err := e.st.PutMember(cid, e.author, state.RoleOwner, 0); err != nil {
		return err
	}
	if err := e.st.AddCount(state.CountChannels, 1); err != nil {
		return err
	}
	e.acct.Channels++
	return e.finish()
}

// channel returns a channel and the author's role in it (0: not a
// member) with the time of its last counted post.
func (e *executor) channel(id ids.ID) (*state.Channel, uint8, int64, error) {
	c, err := e.st.GetChannel(id)
	if errors.Is(err, state.ErrNotFound) {
		return nil, 0, 0, fmt.Errorf("%w: %s", tx.ErrUnknownChannel, id)
	}
	if err != nil {
		return nil, 0, 0, err
	}
	role, last, err := e.st.MemberRecord(id, e.author)
	return c, role, last, err
}

// otherAccount is the account of an identity other than the author that a
// rule updates (a channel's owner, a removed member).
type otherAccount struct {
	id   crypto.SessionID
	acct state.Account
}

func (e *executor) loadOther(id crypto.SessionID) (otherAccount, error) {
	a, err := e.st.GetAccount(id)
	return otherAccount{id: id, acct: a}, err
}

func (e *executor) storeOther(o *otherAccount) error { return e.st.PutAccount(o.id, &o.acct) }

func (e *executor) joinChannel(p *tx.JoinChannel) error {
	c, role, _, err := e.channel(p.Channel)
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
	if e.acct.Memberships >= config.MaxMemberships {
		return fmt.Errorf("%w: %d", tx.ErrMaxMemberships, e.acct.Memberships)
	}
	if err := e.charge(config.BucketJoins, 1); err != nil {
		return err
	}
	var owner otherAccount
	if invited { // a join consumes the invite, whatever the policy
		if owner, err = e.loadOther(c.Owner); err != nil {
			return err
		}
		owner.acct.Records--
		c.Invites--
	}
	c.Members++
	e.acct.Memberships++
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.PutMember(c.ID, e.author, state.RoleMember, 0); err != nil {
		return err
	}
	if invited {
		if err := e.st.SetInvited(c.ID, e.author, false); err != nil {
			return err
		}
		if err := e.storeOther(&owner); err != nil {
			return err
		}
	}
	return e.finish()
}

func (e *executor) leaveChannel(p *tx.LeaveChannel) error {
	c, role, _, err := e.channel(p.Channel)
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
	e.acct.Memberships--
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if err := e.st.RemoveMember(c.ID, e.author); err != nil {
		return err
	}
	return e.finish()
}

func (e *executor) postChannel(p *tx.PostChannel) error {
	c, role, last, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if role == 0 {
		return tx.ErrNotMember
	}
	now := e.ctx.Timestamp
	slow := c.SlowMode > 0 && role == state.RoleMember
	if slow && last != 0 && now-last < int64(c.SlowMode)*1000 {
		return fmt.Errorf("%w: next post at block time %d", tx.ErrSlowMode, last+int64(c.SlowMode)*1000)
	}
	if err := e.charge(config.BucketPosts, 1); err != nil {
		return err
	}
	counter, err := e.st.GetCounter(c.ID)
	if err != nil {
		return err
	}
	// Eviction by sequence number: the channel keeps the latest
	// maxMessages sequence numbers (one point delete, no iteration).
	if q := counter.Last + 1; q > uint64(e.ctx.Config.MaxMessages) {
		gone, err := e.st.RemoveMessage(state.KindChannel, c.ID, q-uint64(e.ctx.Config.MaxMessages), true)
		if err != nil {
			return err
		}
		if gone {
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
	if slow {
		if err := e.st.PutMember(c.ID, e.author, role, now); err != nil {
			return err
		}
	}
	return e.finish()
}

func (e *executor) setChannelPolicy(p *tx.SetChannelPolicy) error {
	c, _, _, err := e.channel(p.Channel)
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
	c.SlowMode = p.SlowModeSeconds
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
	c, actor, _, err := e.channel(p.Channel)
	if err != nil {
		return err
	}
	if actor != state.RoleOwner && actor != state.RoleModerator {
		return tx.ErrNotModerator
	}
	isOwner := actor == state.RoleOwner
	if (p.Action == tx.ActionMakeModerator || p.Action == tx.ActionRevokeModerator) && !isOwner {
		return tx.ErrNotOwner
	}
	// The owner's account holds the channel's invites and bans in its
	// records; it is the author's when the owner acts.
	records := &e.acct.Records
	var owner otherAccount
	if !isOwner {
		if owner, err = e.loadOther(c.Owner); err != nil {
			return err
		}
		records = &owner.acct.Records
	}
	targets := make([]target, len(p.Members))
	invites := c.Invites
	recs := *records
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
		banRole, err := e.st.BanRole(c.ID, m)
		if err != nil {
			return err
		}
		switch p.Action {
		case tx.ActionInvite:
			switch {
			case role != 0:
				return fail(tx.ErrAlreadyMember)
			case banRole != 0:
				return fail(tx.ErrBanned)
			case invited:
				return fail(tx.ErrAlreadyInvited)
			case invites >= config.MaxChannelInvites:
				return fail(tx.ErrTooManyInvites)
			case recs >= config.MaxModerationRecords:
				return fail(tx.ErrTooManyRecords)
			}
			invites++
			recs++
		case tx.ActionRevokeInvite:
			if !invited {
				return fail(tx.ErrNotInvited)
			}
			recs--
		case tx.ActionRemove:
			switch {
			case role == 0:
				return fail(tx.ErrNotMember)
			case role == state.RoleModerator && !isOwner:
				return fail(tx.ErrTargetIsModerator)
			}
		case tx.ActionBan:
			switch {
			case banRole != 0:
				return fail(tx.ErrAlreadyBanned)
			case role == state.RoleModerator && !isOwner:
				return fail(tx.ErrTargetIsModerator)
			case !invited && recs >= config.MaxModerationRecords:
				return fail(tx.ErrTooManyRecords)
			}
			if !invited {
				recs++
			}
		case tx.ActionUnban:
			switch {
			case banRole == 0:
				return fail(tx.ErrNotBanned)
			case banRole == state.RoleOwner && !isOwner:
				return fail(tx.ErrNotOwner)
			}
			recs--
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

	*records = recs
	for _, t := range targets {
		left := false // the target lost its membership
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
			left = true
			err = e.st.RemoveMember(c.ID, t.id)
		case tx.ActionBan:
			if t.role != 0 {
				c.Members--
				left = true
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
			err = e.st.SetBanned(c.ID, t.id, actor)
		case tx.ActionUnban:
			c.Bans--
			err = e.st.SetBanned(c.ID, t.id, 0)
		case tx.ActionMakeModerator:
			err = e.st.AddMember(c.ID, t.id, state.RoleModerator)
		case tx.ActionRevokeModerator:
			err = e.st.AddMember(c.ID, t.id, state.RoleMember)
		}
		if err != nil {
			return err
		}
		if left {
			m, err := e.loadOther(t.id)
			if err != nil {
				return err
			}
			m.acct.Memberships--
			if err := e.storeOther(&m); err != nil {
				return err
			}
		}
	}
	if err := e.st.PutChannel(c); err != nil {
		return err
	}
	if !isOwner {
		if err := e.storeOther(&owner); err != nil {
			return err
		}
	}
	return e.finish()
}

func (e *executor) deletePosts(p *tx.DeletePosts) error {
	c, role, _, err := e.channel(p.Channel)
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
