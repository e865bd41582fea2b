package vm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/state"
	"github.com/luxfi/session/vm/execute"
	"github.com/luxfi/session/vm/tx"
)

// API is the read/write surface the JSON-RPC service and the standalone
// node use. It exposes no internals: values are copies, errors are the
// named sentinels of packages tx, mempool, state and vm. *VM implements it;
// a service should depend on this interface.
type API interface {
	// IssueTx admits signed transaction bytes into the mempool and returns
	// the transaction ID. Refusals match the sentinels of package tx (bad
	// signature, nonce, unknown session, ...), mempool.ErrFull,
	// mempool.ErrAuthorLimit, mempool.ErrDuplicate, ErrAlreadyAccepted or
	// ErrDiskFull. IssueTx copies b: the caller may reuse it as soon as
	// IssueTx returns.
	IssueTx(b []byte) (ids.ID, error)
	// Issue is IssueTx for a transaction the caller already parsed, without
	// the copy: the mempool keeps t, so its bytes must never change. A Tx
	// from tx.Parse or tx.Sign owns its bytes; one from tx.ParseOwned
	// aliases the buffer it was parsed from, which the caller hands over
	// (the JSON-RPC service does so with each request's decoded body).
	Issue(t *tx.Tx) error
	// TxStatus reports a transaction's fate.
	TxStatus(id ids.ID) (TxStatus, error)
	// NextNonce returns the nonce the author's next transaction must
	// carry, counting its pending transactions.
	NextNonce(author crypto.SessionID) (uint64, error)

	// Identity returns a registered identity, or state.ErrNotFound.
	Identity(id crypto.SessionID) (*state.Identity, error)
	// Session returns a session with its status at the last accepted
	// block's time, or state.ErrNotFound.
	Session(id ids.ID) (*SessionInfo, error)
	// Messages returns up to limit messages of a session or channel with
	// sequence numbers above after.
	Messages(target ids.ID, after uint64, limit int) ([]*state.Message, error)
	// Inbox returns up to limit session messages addressed to recipient
	// (sent by another participant) with positions above after; the
	// Position of the last one is the next cursor.
	Inbox(recipient crypto.SessionID, after uint64, limit int) ([]*state.Message, error)
	// Channel returns a channel, or state.ErrNotFound.
	Channel(id ids.ID) (*state.Channel, error)
	// ChannelMembers returns up to limit members with their roles after
	// the given one (nil: from the first), in Session ID byte order.
	ChannelMembers(id ids.ID, after *crypto.SessionID, limit int) ([]state.Member, error)
	// IsChannelMember reports whether member belongs to the channel.
	IsChannelMember(id ids.ID, member crypto.SessionID) (bool, error)
	// ChannelStanding returns an identity's role (0: not a member), invite
	// and ban in a channel.
	ChannelStanding(id ids.ID, member crypto.SessionID) (Standing, error)
	// Tx returns the signed bytes of an accepted transaction and where it
	// sits, or state.ErrNotFound.
	Tx(id ids.ID) ([]byte, state.TxLocation, error)
	// Prekeys returns an identity's prekey record and one of its
	// unclaimed one-time prekeys chosen at random (if any). With claimer,
	// only a one-time prekey claimer may claim (in a CreateSession, or in a
	// SendMessage in session when session is not nil).
	Prekeys(id crypto.SessionID, claimer *crypto.SessionID, session *ids.ID) (*Prekeys, error)
	// Claims returns up to limit entries of the identity's claim log
	// after position after, in chain order.
	Claims(id crypto.SessionID, after uint64, limit int) ([]state.ClaimRecord, error)
	// Sessions returns up to limit sessions the identity accepted (or
	// created), created after position after, in chain order.
	Sessions(id crypto.SessionID, after uint64, limit int) ([]state.Participation, error)
	// Requests returns up to limit pending message requests to the
	// identity whose sessions were created after position after, in chain
	// order.
	Requests(id crypto.SessionID, after uint64, limit int) ([]state.Request, error)
	// Contact returns owner's contact status for peer (0 none, 1 contact,
	// 2 blocked).
	Contact(owner, peer crypto.SessionID) (uint8, error)
	// Status returns chain-wide figures (from the state at the last
	// accepted block) and, named as such, node-local ones.
	Status() (Status, error)

	// ChainID is the chain ID transactions must carry.
	ChainID() ids.ID
	// Config is the chain configuration.
	Config() config.Config
	// AcceptedNotify returns a channel closed when the next block is
	// accepted.
	AcceptedNotify() <-chan struct{}
}

var _ API = (*VM)(nil)

// MaxPageSize bounds limit in Messages, Inbox and ChannelMembers.
const MaxPageSize = 1000

// MaxPageBytes bounds the ciphertext bytes Messages and Inbox load for one
// page (1000 messages of 64 KiB would be 64 MiB). A page stops after the
// message that crosses the bound, so a caller applying the same bound sees
// that the page was cut. One megabyte keeps what a reader can make the node
// hold small (the JSON-RPC service accounts for every page in flight)
// while a page still carries 16 messages of the largest size.
const MaxPageBytes = 1 << 20

// TxState is the fate of a transaction.
type TxState uint8

// Transaction states.
const (
	TxUnknown  TxState = iota // never seen, or forgotten
	TxPending                 // in the mempool
	TxAccepted                // in an accepted block
	TxDropped                 // refused at admission, or admitted and then dropped
)

// String returns "unknown", "pending", "accepted" or "dropped".
func (s TxState) String() string {
	switch s {
	case TxPending:
		return "pending"
	case TxAccepted:
		return "accepted"
	case TxDropped:
		return "dropped"
	default:
		return "unknown"
	}
}

// TxStatus reports a transaction's fate.
type TxStatus struct {
	Status TxState
	Height uint64 // accepted: block height
	Index  uint32 // accepted: index in the block
	Reason string // dropped: the refusal that dropped it
	// Dead (dropped only): the author's nonce was consumed by another
	// accepted transaction, so this one can never be accepted.
	Dead bool

	author crypto.SessionID
	nonce  uint64
}

// SessionInfo is a session with its status.
type SessionInfo struct {
	state.Session
	Status  state.SessionStatus
	LastSeq uint64 // sequence number of the latest message
	Stored  uint64 // messages stored now
}

// Standing is an identity's place in a channel.
type Standing struct {
	Role    uint8 // state.RoleMember, RoleModerator, RoleOwner; 0: not a member
	Invited bool
	Banned  bool
}

// Prekeys is an identity's prekey record with one of its unclaimed
// one-time prekeys.
type Prekeys struct {
	state.PrekeyRecord
	HasOneTime bool
	OneTimeID  uint32
	OneTimeTx  ids.ID // the PublishPrekeys transaction holding it
}

// Status holds the figures of session.status. Chain-wide ones describe the
// chain at this node's last accepted block: they come from the state, so
// every node that accepted that block reports the same, before and after a
// restart. Node-local ones describe this node now and differ between
// nodes; since-start ones reset when the process restarts.
type Status struct {
	// Chain-wide.
	ChainID          ids.ID
	LastAcceptedID   ids.ID
	Height           uint64
	LastAcceptedTime int64        // Unix ms
	AcceptedTxs      uint64       // transactions in accepted blocks, genesis to the tip (Counts.TxsAccepted)
	Counts           state.Counts // identities, sessions, channels, messages, transactions

	// Node-local.
	MempoolTxs       int // pending in this node's mempool
	MempoolBytes     int
	ProcessingBlocks int // verified, undecided blocks on this node

	// Since this process started.
	AcceptedTxsSinceStart uint64
}

func clampLimit(limit int) int {
	if limit > MaxPageSize {
		return MaxPageSize
	}
	return limit
}

func (v *VM) base() *state.State { return state.New(v.db) }

// IssueTx implements API. An admitted transaction is gossiped to peers.
func (v *VM) IssueTx(b []byte) (ids.ID, error) {
	if err := v.ready(); err != nil {
		return ids.Empty, err
	}
	// A copy: the caller keeps b and may reuse it at once (the copy of at
	// most config.MaxTxSize bytes costs far less than the signature check).
	t, err := tx.Parse(b)
	if err != nil {
		return ids.Empty, err
	}
	return t.ID(), v.issueLocal(t)
}

// Issue implements API. An admitted transaction is gossiped to peers.
func (v *VM) Issue(t *tx.Tx) error {
	if err := v.ready(); err != nil {
		return err
	}
	return v.issueLocal(t)
}

// issueLocal admits a transaction submitted to this node and queues it
// for gossip.
func (v *VM) issueLocal(t *tx.Tx) error {
	if err := v.pool.issueTx(t); err != nil {
		return err
	}
	v.gossip.local(t)
	return nil
}

// TxStatus implements API.
func (v *VM) TxStatus(id ids.ID) (TxStatus, error) {
	if err := v.ready(); err != nil {
		return TxStatus{}, err
	}
	// The tip first: accepted means at or below the tip that Status shows
	// (read before the index, so a block published in between only makes
	// the answer "pending" once more).
	tip := v.chain.tip.Load().Height()
	loc, err := v.base().GetTx(id)
	if err == nil {
		return acceptedAt(loc, tip), nil
	}
	if !errors.Is(err, state.ErrNotFound) {
		return TxStatus{}, err
	}
	if s, ok := v.pool.status(id); ok {
		if s.Status == TxDropped {
			next, err := v.base().Nonce(s.author)
			if err != nil {
				return TxStatus{}, err
			}
			s.Dead = next > s.nonce
		}
		return s, nil
	}
	// It may have been accepted between the two reads.
	if loc, err := v.base().GetTx(id); err == nil {
		return acceptedAt(loc, tip), nil
	}
	return TxStatus{Status: TxUnknown}, nil
}

// acceptedAt is the status of a transaction the index places at loc, with
// the published tip at height tip. Accept writes the index before it
// publishes the tip (the pool moves in between): a transaction of the block
// being published is still pending, so that a client told "accepted" finds
// its block in session.status (height, chain-wide counts).
func acceptedAt(loc state.TxLocation, tip uint64) TxStatus {
	if loc.Height > tip {
		return TxStatus{Status: TxPending}
	}
	return TxStatus{Status: TxAccepted, Height: loc.Height, Index: loc.Index}
}

// NextNonce implements API.
func (v *VM) NextNonce(author crypto.SessionID) (uint64, error) {
	if err := v.ready(); err != nil {
		return 0, err
	}
	return v.pool.nextNonce(author)
}

// Identity implements API.
func (v *VM) Identity(id crypto.SessionID) (*state.Identity, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().GetIdentity(id)
}

// Session implements API.
func (v *VM) Session(id ids.ID) (*SessionInfo, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	st := v.base()
	s, err := st.GetSession(id)
	if err != nil {
		return nil, err
	}
	c, err := st.GetCounter(id)
	if err != nil {
		return nil, err
	}
	now := v.chain.tip.Load().Block.Timestamp
	return &SessionInfo{Session: *s, Status: s.StatusAt(now), LastSeq: c.Last, Stored: c.Stored}, nil
}

// Messages implements API.
func (v *VM) Messages(target ids.ID, after uint64, limit int) ([]*state.Message, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().MessagesBounded(target, after, clampLimit(limit), MaxPageBytes)
}

// Inbox implements API.
func (v *VM) Inbox(recipient crypto.SessionID, after uint64, limit int) ([]*state.Message, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	st := v.base()
	limit = clampLimit(limit)
	var out []*state.Message
	total := 0
	// An entry whose message is gone was pruned by a block accepted since
	// the index was read (pruning removes the message, then its entries):
	// skip it and read on, so the page is short only at the end.
	for len(out) < limit {
		want := limit - len(out)
		entries, err := st.Inbox(recipient, after, want)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			if total > MaxPageBytes {
				return out, nil
			}
			after = e.Position
			m, err := st.GetMessage(e.Session, e.Seq)
			if errors.Is(err, state.ErrNotFound) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("inbox entry %d: %w", e.Position, err)
			}
			total += len(m.Ciphertext)
			out = append(out, m)
		}
		if len(entries) < want {
			break // the index has no more
		}
	}
	return out, nil
}

// Channel implements API.
func (v *VM) Channel(id ids.ID) (*state.Channel, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().GetChannel(id)
}

// ChannelMembers implements API.
func (v *VM) ChannelMembers(id ids.ID, after *crypto.SessionID, limit int) ([]state.Member, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().Members(id, after, clampLimit(limit))
}

// ChannelStanding implements API.
func (v *VM) ChannelStanding(id ids.ID, member crypto.SessionID) (Standing, error) {
	if err := v.ready(); err != nil {
		return Standing{}, err
	}
	st := v.base()
	var s Standing
	var err error
	if s.Role, err = st.MemberRole(id, member); err != nil {
		return s, err
	}
	if s.Invited, err = st.IsInvited(id, member); err != nil {
		return s, err
	}
	s.Banned, err = st.IsBanned(id, member)
	return s, err
}

// Tx implements API.
func (v *VM) Tx(id ids.ID) ([]byte, state.TxLocation, error) {
	if err := v.ready(); err != nil {
		return nil, state.TxLocation{}, err
	}
	return v.base().TxBytes(id)
}

// Prekeys implements API. The one-time prekey is chosen at random among
// the unclaimed ones (at most config.MaxUnclaimedPrekeys), so concurrent
// initiators rarely pick the same one; with claimer, only if one is
// claimable by it at the last accepted block's time.
func (v *VM) Prekeys(id crypto.SessionID, claimer *crypto.SessionID, session *ids.ID) (*Prekeys, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	st := v.base()
	rec, err := st.GetPrekeys(id)
	if err != nil {
		return nil, err
	}
	p := &Prekeys{PrekeyRecord: rec}
	if claimer != nil {
		tip := v.chain.tip.Load()
		ctx := v.chain.execContext(tip.Block.Height+1, max(v.clock().UnixMilli(), tip.Block.Timestamp), tip.ID())
		ok, err := execute.Claimable(st, ctx, id, *claimer, session)
		if err != nil || !ok {
			return p, err
		}
	}
	list, err := st.OneTimes(id, math.MaxUint32)
	if err != nil || len(list) == 0 {
		return p, err
	}
	k := list[rand.IntN(len(list))]
	p.HasOneTime, p.OneTimeID, p.OneTimeTx = true, k.ID, k.Tx
	return p, nil
}

// Claims implements API.
func (v *VM) Claims(id crypto.SessionID, after uint64, limit int) ([]state.ClaimRecord, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().Claims(id, after, clampLimit(limit))
}

// Sessions implements API.
func (v *VM) Sessions(id crypto.SessionID, after uint64, limit int) ([]state.Participation, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().Participations(id, after, clampLimit(limit))
}

// Requests implements API.
func (v *VM) Requests(id crypto.SessionID, after uint64, limit int) ([]state.Request, error) {
	if err := v.ready(); err != nil {
		return nil, err
	}
	return v.base().Requests(id, after, clampLimit(limit))
}

// Contact implements API.
func (v *VM) Contact(owner, peer crypto.SessionID) (uint8, error) {
	if err := v.ready(); err != nil {
		return 0, err
	}
	return v.base().Contact(owner, peer)
}

// IsChannelMember implements API.
func (v *VM) IsChannelMember(id ids.ID, member crypto.SessionID) (bool, error) {
	if err := v.ready(); err != nil {
		return false, err
	}
	return v.base().IsMember(id, member)
}

// Status implements API.
func (v *VM) Status() (Status, error) {
	if err := v.ready(); err != nil {
		return Status{}, err
	}
	s := Status{
		ChainID:               v.chainID,
		ProcessingBlocks:      v.chain.processingCount(),
		AcceptedTxsSinceStart: v.chain.acceptedTxs.Load(),
		MempoolTxs:            v.pool.mempool.Len(),
		MempoolBytes:          v.pool.mempool.Bytes(),
	}
	// The tip carries the counts of its state, so both describe one block.
	tip := v.chain.tip.Load()
	s.LastAcceptedID, s.Height, s.LastAcceptedTime = tip.ID(), tip.Block.Height, tip.Block.Timestamp
	s.Counts, s.AcceptedTxs = tip.counts, tip.counts.TxsAccepted
	return s, nil
}

// ChainID implements API.
func (v *VM) ChainID() ids.ID { return v.chainID }

// Config implements API.
func (v *VM) Config() config.Config { return v.genesis.Config }

// BuildAndAccept runs one round of a single-validator chain: BuildBlock,
// Verify, Accept, SetPreference. It returns ErrNoPendingTxs when there was
// nothing to build.
func (v *VM) BuildAndAccept(ctx context.Context) (*Block, error) {
	sb, err := v.BuildBlock(ctx)
	if err != nil {
		return nil, err
	}
	b := sb.(*Block)
	if err := b.Verify(ctx); err != nil {
		return nil, err
	}
	if err := b.Accept(ctx); err != nil {
		return nil, err
	}
	return b, v.SetPreference(ctx, b.ID())
}

// Run is the block loop of a standalone, single-validator node:
// WaitForEvent → BuildBlock → Verify → Accept → SetPreference, until ctx
// ends or the VM shuts down. It returns nil on either.
func (v *VM) Run(ctx context.Context) error {
	for {
		if _, err := v.WaitForEvent(ctx); err != nil {
			if ctx.Err() != nil || errors.Is(err, ErrShutdown) {
				return nil
			}
			return err
		}
		if _, err := v.BuildAndAccept(ctx); err != nil && !errors.Is(err, ErrNoPendingTxs) {
			if errors.Is(err, ErrShutdown) {
				return nil
			}
			return err
		}
	}
}
