package service

import (
	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm"
)

// Wire types. Binary fields ([]byte) are standard base64 with padding, as
// encoding/json writes them. Session IDs (identities) are their 66-character
// hex strings. Transaction, block, session and channel IDs are ids.ID in its
// String form (CB58). Times are Unix milliseconds of block time.

// EmptyArgs are the params of methods without parameters: absent, null or {}.
type EmptyArgs struct{}

// TxArgs carries a signed transaction (tx.Tx.Bytes, base64).
type TxArgs struct {
	Tx []byte `json:"tx"`
}

// TxReply is the result of every write method.
type TxReply struct {
	TxID   ids.ID `json:"txID"`
	Type   string `json:"type"`   // "registerIdentity", "sendMessage", ... (tx.Type names)
	Author string `json:"author"` // Session ID
	Nonce  uint64 `json:"nonce"`
	// Session is the ID of the session a createSession transaction creates.
	Session ids.ID `json:"session,omitzero"`
	// Channel is the ID of the channel a createChannel transaction creates.
	Channel ids.ID `json:"channel,omitzero"`
}

// TxStatusArgs names a transaction.
type TxStatusArgs struct {
	TxID string `json:"txID"`
}

// Transaction states in TxStatusReply.Status.
const (
	TxUnknown  = "unknown"  // never seen, or forgotten
	TxPending  = "pending"  // in the mempool
	TxAccepted = "accepted" // in an accepted block (Height, Index)
	TxDropped  = "dropped"  // refused at admission, or admitted and then dropped (Reason)
)

// TxStatusReply is the fate of a transaction.
type TxStatusReply struct {
	TxID   ids.ID `json:"txID"`
	Status string `json:"status"`
	Height uint64 `json:"height"`           // accepted: block height
	Index  uint32 `json:"index"`            // accepted: index in the block
	Reason string `json:"reason,omitempty"` // dropped: why
	// Dead (dropped only): the author's nonce was consumed by another
	// accepted transaction; this one can never be accepted.
	Dead bool `json:"dead,omitempty"`
}

// SessionIDArgs names an identity.
type SessionIDArgs struct {
	SessionID string `json:"sessionId"`
}

// NonceReply is the nonce the author's next transaction must carry
// (pending transactions counted).
type NonceReply struct {
	SessionID string `json:"sessionId"`
	Nonce     uint64 `json:"nonce"`
}

// IdentityReply is a registered identity. Its JSON field names are those
// of crypto.Identity, so it unmarshals into one.
type IdentityReply struct {
	SessionID    string `json:"sessionId"`
	KEMPublicKey []byte `json:"kemPublicKey"`
	DSAPublicKey []byte `json:"dsaPublicKey"`
	Height       uint64 `json:"height"`    // registering block (0: genesis)
	Timestamp    int64  `json:"timestamp"` // its time
}

// SessionArgs names a session.
type SessionArgs struct {
	Session string `json:"session"`
}

// Session statuses in SessionReply.Status.
const (
	SessionActive  = "active"
	SessionClosed  = "closed"
	SessionExpired = "expired"
)

// SessionReply is a session, with its status at the last accepted block.
type SessionReply struct {
	Session      ids.ID   `json:"session"`
	Creator      string   `json:"creator"`
	Participants []string `json:"participants"` // creator first
	Metadata     []byte   `json:"metadata"`
	Height       uint64   `json:"height"`
	CreatedAt    int64    `json:"createdAt"`
	ExpiresAt    int64    `json:"expiresAt"`
	Status       string   `json:"status"`
	ClosedBy     string   `json:"closedBy,omitempty"`
	ClosedAt     int64    `json:"closedAt,omitempty"`
	LastSeq      uint64   `json:"lastSeq"` // sequence number of the latest message
	// Stored is how many messages the session stores now (at most the
	// chain's maxMessages; retention frees places).
	Stored uint64 `json:"stored"`
	// ParticipantStates is, per participant, "accepted", "pending" (a
	// message request) or "left".
	ParticipantStates []string `json:"participantStates"`
	// Position is the chain position of the creating transaction (the
	// listSessions cursor).
	Position uint64 `json:"position"`
	// CreateTx is the signed CreateSession transaction: the proof of the
	// participants and claims (VerifySessionReply checks it).
	CreateTx []byte `json:"createTx"`
}

// MessagesArgs pages through the messages of a session or the posts of a
// channel: exactly one of Session and Channel.
type MessagesArgs struct {
	Session string `json:"session,omitempty"`
	Channel string `json:"channel,omitempty"`
	After   uint64 `json:"after"` // sequence number; 0 from the start
	Limit   int    `json:"limit"` // 0: DefaultPageSize; at most MaxPageSize
}

// InboxArgs pages through the messages addressed to an identity.
type InboxArgs struct {
	SessionID string `json:"sessionId"`
	After     uint64 `json:"after"` // position cursor; 0 from the start
	Limit     int    `json:"limit"`
}

// Message is a message of a session or a post of a channel.
type Message struct {
	Target     ids.ID `json:"target"` // the session or channel
	Seq        uint64 `json:"seq"`    // 1, 2, ... within Target
	Author     string `json:"author"` // Session ID
	TxID       ids.ID `json:"txID"`
	Height     uint64 `json:"height"`
	Position   uint64 `json:"position"`  // chain position; the inbox cursor
	Timestamp  int64  `json:"timestamp"` // block time
	Ciphertext []byte `json:"ciphertext"`
}

// MessagesReply is a page of messages. Next is the cursor to pass as After
// for the following page (a sequence number for getMessages, a position for
// getInbox); it equals the request's After when the page is empty. More
// reports that more messages may follow now: the page was full, or cut at
// the response size bound (1 MiB of ciphertext). More false means caught
// up; poll from Next later for new messages.
type MessagesReply struct {
	Messages []Message `json:"messages"`
	Next     uint64    `json:"next"`
	More     bool      `json:"more"`
}

// ChannelArgs names a channel and a page of its members.
type ChannelArgs struct {
	Channel      string `json:"channel"`
	MembersAfter string `json:"membersAfter,omitempty"` // Session ID; empty: from the first
	MembersLimit int    `json:"membersLimit"`           // 0: DefaultPageSize
}

// ChannelReply is a channel with a page of its members, in Session ID
// byte order.
type ChannelReply struct {
	Channel     ids.ID `json:"channel"`
	Owner       string `json:"owner"`
	Name        string `json:"name"`
	Height      uint64 `json:"height"`
	CreatedAt   int64  `json:"createdAt"`
	JoinPolicy  string `json:"joinPolicy"` // "open" or "invite-only"
	MemberCount uint32 `json:"memberCount"`
	InviteCount uint32 `json:"inviteCount"` // outstanding invites
	BanCount    uint32 `json:"banCount"`
	// Members is a page of members; MemberRoles their roles ("owner",
	// "moderator", "member"), in the same order.
	Members     []string `json:"members"`
	MemberRoles []string `json:"memberRoles"`
}

// MembershipArgs asks about an identity's place in a channel.
type MembershipArgs struct {
	Channel   string `json:"channel"`
	SessionID string `json:"sessionId"`
}

// MembershipReply answers MembershipArgs.
type MembershipReply struct {
	Member  bool   `json:"member"`
	Role    string `json:"role"` // "owner", "moderator", "member" or "none"
	Invited bool   `json:"invited"`
	Banned  bool   `json:"banned"`
}

// PrekeyBundleReply is what a client needs to start a session with an
// identity, with the signed transactions that prove it
// (VerifyPrekeyBundle checks them; use nothing else).
type PrekeyBundleReply struct {
	SessionID    string `json:"sessionId"`
	KEMPublicKey []byte `json:"kemPublicKey"`
	DSAPublicKey []byte `json:"dsaPublicKey"`
	// SignedPrekey is absent when the identity never published one.
	SignedPrekey *SignedPrekeyProof `json:"signedPrekey,omitempty"`
	// OneTimePrekey is an unclaimed one-time prekey the node chose at
	// random (one the claimer may claim, when the request named one);
	// absent when none is left (or claimable).
	OneTimePrekey *OneTimePrekeyProof `json:"oneTimePrekey,omitempty"`
	// Unclaimed is how many one-time prekeys are left.
	Unclaimed uint32 `json:"unclaimed"`
	// LastOneTimeID is the highest one-time prekey ID the identity ever
	// published (the node's word): a device that replaced a lost one
	// continues above it and retires the ones up to it.
	LastOneTimeID uint32 `json:"lastOneTimeId"`
}

// PrekeyBundleArgs asks for an identity's prekey bundle; with Claimer (a
// Session ID), the one-time prekey served is one that claimer may claim,
// in a createSession (no Session) or in a sendMessage in Session.
type PrekeyBundleArgs struct {
	SessionID string `json:"sessionId"`
	Claimer   string `json:"claimer,omitempty"`
	Session   string `json:"session,omitempty"`
}

// ClaimsArgs pages through the claim log of an identity's prekeys, after a
// position.
type ClaimsArgs struct {
	SessionID string `json:"sessionId"`
	After     uint64 `json:"after"`
	Limit     int    `json:"limit"`
}

// ClaimsReply is a page of an identity's claim log in chain order; Next
// is the cursor (a position).
type ClaimsReply struct {
	Claims []ClaimEntry `json:"claims"`
	Next   uint64       `json:"next"`
	More   bool         `json:"more"`
}

// ClaimEntry is one claim of an identity's prekeys: who claimed, in which
// session and transaction, which signed prekey and which one-time prekey
// (0: none; then OneTimeTx is absent), at which position and block time.
type ClaimEntry struct {
	Position        uint64 `json:"position"`
	Claimer         string `json:"claimer"`
	Session         ids.ID `json:"session"`
	TxID            ids.ID `json:"txID"`
	SignedPrekeyID  uint32 `json:"signedPrekeyId"`
	OneTimePrekeyID uint32 `json:"oneTimePrekeyId"`
	OneTimeTx       ids.ID `json:"oneTimeTx,omitzero"`
	Timestamp       int64  `json:"timestamp"`
}

// SignedPrekeyProof names the current signed prekey and the PublishPrekeys
// transaction that holds it.
type SignedPrekeyProof struct {
	ID        uint32 `json:"id"`
	ExpiresAt int64  `json:"expiresAt"` // Unix ms
	Tx        []byte `json:"tx"`
}

// OneTimePrekeyProof names an unclaimed one-time prekey and the
// PublishPrekeys transaction that holds it.
type OneTimePrekeyProof struct {
	ID uint32 `json:"id"`
	Tx []byte `json:"tx"`
}

// GetTxArgs names an accepted transaction.
type GetTxArgs struct {
	TxID string `json:"txID"`
}

// GetTxReply is an accepted transaction's signed bytes and place.
type GetTxReply struct {
	TxID   ids.ID `json:"txID"`
	Type   string `json:"type"`
	Tx     []byte `json:"tx"`
	Height uint64 `json:"height"`
	Index  uint32 `json:"index"`
}

// SessionsArgs pages through the sessions an identity accepted or created,
// after a position.
type SessionsArgs struct {
	SessionID string `json:"sessionId"`
	After     uint64 `json:"after"`
	Limit     int    `json:"limit"`
}

// SessionsReply is a page of the sessions an identity accepted or created,
// in the order of their creation. Next is the cursor (a position).
type SessionsReply struct {
	Sessions []SessionEntry `json:"sessions"`
	Next     uint64         `json:"next"`
	More     bool           `json:"more"`
}

// SessionEntry is one listed session.
type SessionEntry struct {
	Session  ids.ID `json:"session"`
	Position uint64 `json:"position"` // of its creation
}

// RequestsArgs pages through an identity's message requests, after a
// position (0: from the first).
type RequestsArgs struct {
	SessionID string `json:"sessionId"`
	After     uint64 `json:"after"`
	Limit     int    `json:"limit"`
}

// RequestsReply is a page of pending message requests, one per creator,
// in the order of their sessions' creation (time); Next is the cursor (a
// position).
type RequestsReply struct {
	Requests []RequestEntry `json:"requests"`
	Next     uint64         `json:"next"`
	More     bool           `json:"more"`
}

// RequestEntry is the latest pending request of one creator.
type RequestEntry struct {
	Creator  string `json:"creator"`
	Session  ids.ID `json:"session"`
	Position uint64 `json:"position"` // of the session's creation
	Status   string `json:"status"`   // the session's: active, closed, expired
}

// ContactArgs asks for an identity's status for a peer.
type ContactArgs struct {
	SessionID string `json:"sessionId"`
	Peer      string `json:"peer"`
}

// ContactReply is an identity's status for a peer: "none", "contact" or
// "blocked".
type ContactReply struct {
	SessionID string `json:"sessionId"`
	Peer      string `json:"peer"`
	Status    string `json:"status"`
}

// StatusReply is session.status (see vm.Status). Chain-wide figures
// describe the chain at this node's last accepted block and come from its
// state: every node that accepted that block reports them alike, before
// and after a restart. mempoolTxs, mempoolBytes and processingBlocks are
// this node's own; acceptedTxsSinceStart counts from this process's start.
type StatusReply struct {
	ChainID          ids.ID `json:"chainID"`
	LastAcceptedID   ids.ID `json:"lastAcceptedID"`
	Height           uint64 `json:"height"`
	LastAcceptedTime int64  `json:"lastAcceptedTime"`
	MempoolTxs       int    `json:"mempoolTxs"`       // node-local
	MempoolBytes     int    `json:"mempoolBytes"`     // node-local
	ProcessingBlocks int    `json:"processingBlocks"` // node-local
	AcceptedTxs      uint64 `json:"acceptedTxs"`      // chain-wide: transactions ever accepted
	// AcceptedTxsSinceStart is process-local: transactions this process
	// accepted since it started.
	AcceptedTxsSinceStart uint64 `json:"acceptedTxsSinceStart"`
	Identities            uint64 `json:"identities"`
	Sessions              uint64 `json:"sessions"`
	Channels              uint64 `json:"channels"`
	MessagesStored        uint64 `json:"messagesStored"`
	MessagesTotal         uint64 `json:"messagesTotal"`
	MessagesPruned        uint64 `json:"messagesPruned"`
	MessagesDeleted       uint64 `json:"messagesDeleted"`
}

// HealthReply is the node's health.
type HealthReply struct {
	Healthy            bool   `json:"healthy"`
	Error              string `json:"error,omitempty"` // why not healthy
	LastAcceptedID     string `json:"lastAcceptedID"`
	LastAcceptedTime   int64  `json:"lastAcceptedTime"`
	Height             uint64 `json:"height"`
	ProcessingBlocks   int    `json:"processingBlocks"`
	MempoolTxs         int    `json:"mempoolTxs"`
	MempoolBytes       int    `json:"mempoolBytes"`
	Database           string `json:"database,omitempty"`
	SignaturesVerified uint64 `json:"signaturesVerified"`
	// Disk is the free space of the database's filesystem (absent when
	// the node does not watch it; DiskNote then says why).
	Disk     *DiskReply `json:"disk,omitempty"`
	DiskNote string     `json:"diskNote,omitempty"`
	// Gossip holds the node's transaction gossip counters since start
	// (absent when the API does not report them).
	Gossip *vm.GossipStats `json:"gossip,omitempty"`
}

// DiskReply is the free space of the filesystem holding the node's
// database (vm.DiskReport). Below admitBytes the node refuses transactions
// of the largest size with CodeDiskFull (admitting is false); below
// reserveBytes it also stops building blocks (committing is false).
//
// It does not name the directory: the API is public, and an absolute path
// tells a stranger the operator's user name and layout (the node logs its
// data directory at start).
type DiskReply struct {
	FreeBytes    uint64 `json:"freeBytes"`
	ReserveBytes uint64 `json:"reserveBytes"`
	AdmitBytes   uint64 `json:"admitBytes"`
	Admitting    bool   `json:"admitting"`
	Committing   bool   `json:"committing"`
	Error        string `json:"error,omitempty"`
}

// ConfigReply is what a client needs to build transactions: the chain ID,
// the chain configuration and the protocol and API bounds.
type ConfigReply struct {
	ChainID           ids.ID `json:"chainID"`
	SessionTTL        int64  `json:"sessionTTL"` // seconds
	MaxMessages       int64  `json:"maxMessages"`
	MaxChannels       int64  `json:"maxChannels"`
	RetentionDays     int64  `json:"retentionDays"`
	IDPrefix          string `json:"idPrefix"`
	MaxCiphertextSize int    `json:"maxCiphertextSize"`
	MaxMetadataSize   int    `json:"maxMetadataSize"`
	MaxParticipants   int    `json:"maxParticipants"` // creator included
	MaxChannelName    int    `json:"maxChannelNameSize"`
	MaxChannelMembers int    `json:"maxChannelMembers"`
	MaxTxSize         int    `json:"maxTxSize"`
	MaxPageSize       int    `json:"maxPageSize"`
	MaxBodySize       int    `json:"maxBodySize"`

	// Abuse resistance (docs/chain.md).
	Registration            config.Registration `json:"registration"`
	RateLimits              config.RateLimits   `json:"rateLimits"`
	Prekeys                 config.Prekeys      `json:"prekeys"`
	MaxPrekeysPerTx         int                 `json:"maxPrekeysPerTx"`
	MaxUnclaimedPrekeys     int                 `json:"maxUnclaimedPrekeys"`
	MaxSignedPrekeyLifetime int64               `json:"maxSignedPrekeyLifetime"` // ms
	RequestBackfill         int                 `json:"requestBackfill"`
	MaxContacts             int                 `json:"maxContacts"`
	MaxBlocked              int                 `json:"maxBlocked"`
	MaxMemberships          int                 `json:"maxMemberships"`
	MaxModerationRecords    int                 `json:"maxModerationRecords"`
	MaxClaimsPerPair        int                 `json:"maxClaimsPerPair"`
	MaxSlowModeSeconds      int                 `json:"maxSlowModeSeconds"`
}
