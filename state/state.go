// Package state is the SessionVM chain state: identities, sessions,
// messages, inboxes, channels, author nonces and the block index, stored in
// a github.com/luxfi/database.Database under prefixdb namespaces.
//
// A State is a thin, stateless view: New wraps any database (the node's base
// database, or a per-block versiondb overlay during verification), and every
// method reads or writes that database directly. Nothing is cached here, so
// two States over the same database always agree.
//
// Each namespace below is exactly prefixdb.New([]byte{prefix}, db) of
// github.com/luxfi/database (whose keys are the prefix followed by the key),
// implemented inline: prefixdb allocates a pooled buffer and a copy per
// operation, which showed up as the largest allocation source on the
// message hot path. TestNamespaceMatchesPrefixDB checks the equivalence.
//
// # Key layout
//
// docs/chain.md section 14 is the specification.
//
//	root
//	├── 'm' meta
//	│   ├── "lastAccepted"    → block ID (32)
//	│   ├── "genesis"         → SHA-256 of the genesis bytes (32)
//	│   ├── "config"          → chain config JSON
//	│   ├── "format"          → uint64 FormatVersion of the layout
//	│   ├── "retentionHead"   → int64 time of the oldest queued item
//	│   └── "count/<name>"    → uint64 (identities, sessions, channels, messages
//	│                           stored, messages total, pruned, deleted,
//	│                           transactions accepted)
//	├── 'i' identities        <sessionID 33>                → Identity
//	├── 'n' accounts          <sessionID 33>                → Account: nonce u64 | channels u32 | contacts u32
//	│                                                         | blocked u32 | memberships u32 | records u32
//	│                                                         | contactsOnly u8 | tat i64 × NumBuckets
//	├── 's' sessions          <session 32>                  → Session
//	├── 'c' target counters   <session|channel 32>          → last seq u64 | stored u64 | first u64
//	│                                                         [| stored per participant u32 × n]
//	├── 'g' messages          <session|channel 32><seq 8>   → Message
//	├── 'x' inbox             <recipient 33><pos 8>         → <session 32><seq 8>
//	├── 'r' retention queue   <pos 8>                       → <time 8> then items
//	│                                                         <kind 1><ref 32><n 8>
//	├── 'f' session queue     <pos 8>                       → <time 8><session 32>
//	├── 'p' participations    <sessionID 33><pos 8>         → session 32 (accepted; pos of creation)
//	├── 'q' requests          <recipient 33><creator 33>    → session 32 | pos u64
//	├── 'j' requests by time  <recipient 33><pos 8>         → creator 33 | session 32
//	├── 'l' contacts          <owner 33><peer 33>           → status u8
//	├── 'y' prekey records    <sessionID 33>                → PrekeyRecord
//	├── 'o' one-time prekeys  <sessionID 33><id 4>          → publishing tx ID (32)
//	├── 'w' claim log         <target 33><pos 8>            → Claim record
//	├── 'u' anchors           <height 8>                    → block ID (32)
//	├── 'h' channels          <channel 32>                  → Channel
//	├── 'e' channel members   <channel 32><sessionID 33>    → role u8 | last post i64
//	├── 'v' channel invites   <channel 32><sessionID 33>    → empty
//	├── 'z' channel bans      <channel 32><sessionID 33>    → role u8 of who banned
//	├── 'a' post authors      <channel 32><seq 8>           → author 33
//	├── 'b' blocks            <block ID 32><chunk 2>        → block bytes in chunks of
//	│                                                         BlockChunkSize (32 KiB)
//	├── 'k' heights           <height 8>                    → block ID (32)
//	└── 't' transactions      <tx ID 32>                    → <height 8><index 4><offset 4><length 4>
//
// Integers in keys are big-endian so iteration follows numeric order. A
// Session ID is stored as its prefix byte followed by its 32-byte digest.
// A position (pos) is Position(height, index) of the transaction that wrote
// the entry: it orders the inbox and the retention queue by chain order,
// which is also block-time order because block timestamps never decrease.
// Sequence numbers of a session or channel start at 1.
package state

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/luxfi/database"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
)

// ErrNotFound is returned by the getters when a key is absent. It is
// database.ErrNotFound.
var ErrNotFound = database.ErrNotFound

// ErrCorrupt reports a stored record that does not decode.
var ErrCorrupt = errors.New("state: corrupt record")

// Namespace prefixes (see the key layout in the package comment).
const (
	prefixMeta      byte = 'm'
	prefixIdentity  byte = 'i'
	prefixNonce     byte = 'n'
	prefixSession   byte = 's'
	prefixCounter   byte = 'c'
	prefixMessage   byte = 'g'
	prefixInbox     byte = 'x'
	prefixRetention byte = 'r'
	prefixChannel   byte = 'h'
	prefixMember    byte = 'e'
	prefixBlock     byte = 'b'
	prefixHeight    byte = 'k'
	prefixTx        byte = 't'
	prefixParticip  byte = 'p'
	prefixRequest   byte = 'q'
	prefixContact   byte = 'l'
	prefixPrekey    byte = 'y'
	prefixOneTime   byte = 'o'
	prefixInvite    byte = 'v'
	prefixBan       byte = 'z'
	prefixPostAuth  byte = 'a'
	prefixReqTime   byte = 'j'
	prefixClaimLog  byte = 'w'
	prefixAnchor    byte = 'u'
	prefixSessQueue byte = 'f'
)

// Meta keys.
var (
	keyLastAccepted = []byte("lastAccepted")
	keyGenesis      = []byte("genesis")
	keyConfig       = []byte("config")
	keyFormat       = []byte("format")
	// keyRetentionHead holds the block time of the oldest message in the
	// retention queue (absent when the queue is empty).
	keyRetentionHead = []byte("retentionHead")
	// keySessionRetentionHead holds the creation time of the oldest session
	// in the session queue (absent when it is empty).
	keySessionRetentionHead = []byte("sessionRetentionHead")

	// The same keys with the meta namespace byte: keys of the root
	// database, made once.
	rootRetentionHead = append([]byte{prefixMeta}, keyRetentionHead...)
)

// SessionIDSize is the stored size of a Session ID: prefix byte + digest.
const SessionIDSize = 33

// MaxTxsPerPosition is the number of transaction indexes a height spans in
// a Position: positions are height<<PositionShift | index.
const (
	PositionShift     = 20
	MaxTxsPerPosition = 1 << PositionShift
)

// Position returns the chain position of the transaction at index of the
// block at height.
func Position(height uint64, index uint32) uint64 {
	return height<<PositionShift | uint64(index)
}

// SplitPosition is the inverse of Position.
func SplitPosition(pos uint64) (height uint64, index uint32) {
	return pos >> PositionShift, uint32(pos & (MaxTxsPerPosition - 1))
}

// TxWriteOnly reports whether key (a key of the root database) lies in a
// namespace that executing a transaction writes but never reads: messages,
// inbox entries, the retention and session queues, the requests' time
// index and the claim log. Only pruning and queries read them. A view that serves transaction execution alone (mempool admission)
// may therefore drop these writes without changing any outcome.
func TxWriteOnly(key []byte) bool {
	if len(key) == 0 {
		return false
	}
	switch key[0] {
	case prefixMessage, prefixInbox, prefixRetention, prefixSessQueue, prefixReqTime, prefixClaimLog:
		return true
	}
	return false
}

// TxWriteOnlyDropper is implemented by a database that discards every
// write to the TxWriteOnly namespaces (the mempool's admission view). State
// then skips encoding those records at all, and also skips the message
// counts and the retention head, which only pruning and queries read: the
// outcome of every transaction is the same on such a view.
type TxWriteOnlyDropper interface {
	DropsTxWriteOnly()
}

// State is a view of the chain state over one database. Views are cheap
// to make; one view is used by one goroutine at a time (it keeps scratch
// space for the keys it builds).
type State struct {
	db database.Database

	// Scratch for a key and a uint64 value handed to one database call:
	// the database interfaces copy what they keep (database.KeyValueWriter
	// lets callers reuse both), so building keys here instead of
	// allocating each saves an allocation per state access.
	key []byte
	num [8]byte
	val []byte // scratch for a record's value (putMessageRecords)

	// writes counts the Put and Delete calls this view made on its
	// database (Writes).
	writes int

	deferred   bool                   // see Defer
	deltas     [len(countNames)]int64 // deferred counter changes
	queued     []byte                 // deferred retention items
	queuedPos  uint64                 // position of the first of them
	queuedTime int64                  // their time
}

// New returns a view of the state stored in db. It allocates only the
// view itself.
func New(db database.Database) *State { return &State{db: db} }

// The namespaces (see the key layout in the package comment).
func (s *State) meta() ns       { return ns{s, prefixMeta} }
func (s *State) identities() ns { return ns{s, prefixIdentity} }
func (s *State) accounts() ns   { return ns{s, prefixNonce} }
func (s *State) sessions() ns   { return ns{s, prefixSession} }
func (s *State) counters() ns   { return ns{s, prefixCounter} }
func (s *State) messages() ns   { return ns{s, prefixMessage} }
func (s *State) inbox() ns      { return ns{s, prefixInbox} }
func (s *State) retention() ns  { return ns{s, prefixRetention} }
func (s *State) channels() ns   { return ns{s, prefixChannel} }
func (s *State) members() ns    { return ns{s, prefixMember} }
func (s *State) heights() ns    { return ns{s, prefixHeight} }
func (s *State) txs() ns        { return ns{s, prefixTx} }
func (s *State) particips() ns  { return ns{s, prefixParticip} }
func (s *State) requests() ns   { return ns{s, prefixRequest} }
func (s *State) contacts() ns   { return ns{s, prefixContact} }
func (s *State) prekeys() ns    { return ns{s, prefixPrekey} }
func (s *State) oneTimes() ns   { return ns{s, prefixOneTime} }
func (s *State) invites() ns    { return ns{s, prefixInvite} }
func (s *State) bans() ns       { return ns{s, prefixBan} }
func (s *State) postAuths() ns  { return ns{s, prefixPostAuth} }
func (s *State) reqTimes() ns   { return ns{s, prefixReqTime} }
func (s *State) claimLog() ns   { return ns{s, prefixClaimLog} }
func (s *State) anchors() ns    { return ns{s, prefixAnchor} }
func (s *State) sessQueue() ns  { return ns{s, prefixSessQueue} }

// put and del are the view's only writes to its database: every record
// goes through them, so Writes counts them all.
func (s *State) put(k, v []byte) error {
	s.writes++
	return s.db.Put(k, v)
}

func (s *State) del(k []byte) error {
	s.writes++
	return s.db.Delete(k)
}

// Writes returns how many Put and Delete calls this view has made on its
// database (deferred records count when Flush writes them). Retention
// bounds its work with it (PruneMessagesWithin).
func (s *State) Writes() int { return s.writes }

// dropsTxWriteOnly reports whether the view's database drops the
// TxWriteOnly namespaces (mempool admission): then their records need not
// be built, and cannot be read.
func (s *State) dropsTxWriteOnly() bool {
	_, ok := s.db.(TxWriteOnlyDropper)
	return ok
}

// u64 encodes v big-endian in the view's scratch: valid until the next
// call, for one database call.
func (s *State) u64(v uint64) []byte {
	binary.BigEndian.PutUint64(s.num[:], v)
	return s.num[:]
}

// ns is one namespace: prefixdb.New([]byte{p}, db) without per-operation
// pooling.
type ns struct {
	s *State
	p byte
}

// key returns the namespace's key of k in the view's scratch: valid until
// the next key is built, for one database call.
func (n ns) key(k []byte) []byte {
	b := append(n.s.key[:0], n.p)
	b = append(b, k...)
	n.s.key = b
	return b
}

// keyU64 is key of k followed by v (big-endian), in the same scratch.
func (n ns) keyU64(k []byte, v uint64) []byte {
	b := append(n.s.key[:0], n.p)
	b = append(b, k...)
	b = binary.BigEndian.AppendUint64(b, v)
	n.s.key = b
	return b
}

// ownKey is key in a new slice, for an iterator bound (kept by the
// iterator, and two are built for one call).
func (n ns) ownKey(k []byte) []byte {
	out := make([]byte, 1+len(k))
	out[0] = n.p
	copy(out[1:], k)
	return out
}

func (n ns) Get(k []byte) ([]byte, error)   { return n.s.db.Get(n.key(k)) }
func (n ns) Has(k []byte) (bool, error)     { return n.s.db.Has(n.key(k)) }
func (n ns) Put(k, v []byte) error          { return n.s.put(n.key(k), v) }
func (n ns) Delete(k []byte) error          { return n.s.del(n.key(k)) }
func (n ns) NewIterator() database.Iterator { return n.NewIteratorWithStartAndPrefix(nil, nil) }

// NewIteratorWithStartAndPrefix iterates keys of the namespace that start
// with prefix, from start on; the iterator's keys have the namespace byte
// removed.
func (n ns) NewIteratorWithStartAndPrefix(start, prefix []byte) database.Iterator {
	return nsIterator{n.s.db.NewIteratorWithStartAndPrefix(n.ownKey(start), n.ownKey(prefix))}
}

type nsIterator struct{ database.Iterator }

func (it nsIterator) Key() []byte {
	k := it.Iterator.Key()
	if len(k) == 0 {
		return k
	}
	return k[1:]
}

// Database returns the database the view reads and writes.
func (s *State) Database() database.Database { return s.db }

// SessionIDKey returns the 33-byte stored form of a Session ID.
func SessionIDKey(id crypto.SessionID) [SessionIDSize]byte {
	var k [SessionIDSize]byte
	k[0] = id.Prefix
	copy(k[1:], id.Digest[:])
	return k
}

// InboxWrite is an inbox entry a block writes: the recipient's key
// (SessionIDKey) and the entry's position.
type InboxWrite struct {
	Recipient [SessionIDSize]byte
	Position  uint64
}

// InboxWriteOf reports whether k is the key of an inbox entry, and which.
// The VM reads it from a block's writes to tell the service whose inbox
// an accepted block changed (push notifications), without a query.
func InboxWriteOf(k []byte) (InboxWrite, bool) {
	var w InboxWrite
	if len(k) != 1+SessionIDSize+8 || k[0] != prefixInbox {
		return w, false
	}
	copy(w.Recipient[:], k[1:1+SessionIDSize])
	w.Position = binary.BigEndian.Uint64(k[1+SessionIDSize:])
	return w, true
}

// SessionIDFromKey is the inverse of SessionIDKey.
func SessionIDFromKey(b []byte) (crypto.SessionID, error) {
	var id crypto.SessionID
	if len(b) != SessionIDSize {
		return id, fmt.Errorf("%w: session ID of %d bytes", ErrCorrupt, len(b))
	}
	id.Prefix = b[0]
	copy(id.Digest[:], b[1:])
	return id, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// getU64 reads a counter under key (a key of db, namespace included);
// absent is 0.
func getU64(db database.KeyValueReader, key []byte) (uint64, error) {
	b, err := db.Get(key)
	if errors.Is(err, database.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: counter of %d bytes", ErrCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// getID reads an ID under key (a key of db, namespace included).
func getID(db database.KeyValueReader, key []byte) (ids.ID, error) {
	b, err := db.Get(key)
	if err != nil {
		return ids.Empty, err
	}
	if len(b) != ids.IDLen {
		return ids.Empty, fmt.Errorf("%w: ID of %d bytes", ErrCorrupt, len(b))
	}
	return ids.ID(b), nil
}

func cat(parts ...[]byte) []byte {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	out := make([]byte, 0, n)
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}
