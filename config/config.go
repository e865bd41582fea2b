// Package config holds the chain configuration of SessionVM: the consensus
// parameters every node of a chain must agree on (they are part of the
// genesis), and the fixed protocol bounds that keep every decoder and every
// block's work bounded.
//
// The JSON names and defaults of Config are:
//
//	sessionTTL     86400  seconds a session stays open after its creating block
//	maxMessages    10000  messages a session (posts a channel) stores at once
//	maxChannels    1000   channels one identity may own
//	retentionDays  30     days (by block timestamp) a message is kept
//	idPrefix       "07"   the Session ID prefix identities must carry
//
// and the objects "registration" (the registration proof of work),
// "rateLimits" (per-identity token buckets) and "prekeys" (stranger claims),
// whose fields and defaults docs/chain.md lists with their reasons.
//
// Parse fills omitted fields with these defaults and refuses unknown fields,
// zero, negative and absurd values, and unknown prefixes, with an error that
// wraps ErrInvalidConfig.
//
// This package imports only the standard library.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Defaults of Config.
const (
	DefaultSessionTTL    = 86400 // one day, in seconds
	DefaultMaxMessages   = 10000
	DefaultMaxChannels   = 1000
	DefaultRetentionDays = 30
	DefaultIDPrefix      = "07"
)

// Upper limits Parse accepts for Config fields. They exist to refuse
// obviously mistaken values (a TTL in milliseconds, a retention in seconds),
// and to keep every counter far from overflow.
const (
	MaxSessionTTL    = 10 * 365 * 86400 // ten years, in seconds
	MaxMaxMessages   = 1 << 32
	MaxMaxChannels   = 1 << 24
	MaxRetentionDays = 100 * 365

	// MaxRegistrationMemoryKiB bounds registration.memoryKiB (256 MiB):
	// every validator evaluates Argon2id with it.
	MaxRegistrationMemoryKiB = 256 << 10
	// MaxRegistrationIterations bounds registration.iterations.
	MaxRegistrationIterations = 16
	// MaxWorkBits bounds registration.prefilterBits and workBits each.
	MaxWorkBits = 32
	// MaxBucketBurst and MaxBucketRefillSeconds bound a bucket's values
	// (keeping burst × refill far from int64 overflow in milliseconds).
	MaxBucketBurst         = 1 << 30
	MaxBucketRefillSeconds = 10_000_000
	// MaxBucketSpan bounds burst × refillSeconds (about 31,700 years), so
	// a bucket's arithmetic in milliseconds never overflows.
	MaxBucketSpan = 1_000_000_000_000
	// MaxAnchorWindow bounds registration.anchorWindow (blocks).
	MaxAnchorWindow = 1 << 20
	// MaxBlockWorkKiB bounds maxPerBlock × memoryKiB × iterations, so the
	// Argon2id evaluations of one block stay under a second of one core.
	MaxBlockWorkKiB = 1 << 19
	// PrefilterThresholdKiB and MinCostlyPrefilterBits: an Argon2id of at
	// least PrefilterThresholdKiB × iterations (about a millisecond) needs
	// a pre-filter of at least MinCostlyPrefilterBits bits, so a bogus
	// registration cannot buy a costly Argon2id for a signature.
	PrefilterThresholdKiB  = 1024
	MinCostlyPrefilterBits = 12
)

// Protocol bounds. They are constants, not configuration: they fix the
// wire format, and changing one is a protocol change.
const (
	// MaxCiphertextSize bounds the opaque payload of SendMessage and
	// ChannelPost.
	MaxCiphertextSize = 64 << 10
	// MaxParticipants bounds the participants of a session, creator
	// included.
	MaxParticipants = 32
	// MaxMetadataSize bounds the metadata of a session.
	MaxMetadataSize = 1 << 10
	// MaxChannelNameSize bounds a channel name (UTF-8 bytes).
	MaxChannelNameSize = 64
	// MaxChannelMembers bounds the members of a channel, owner included.
	MaxChannelMembers = 1024
	// MaxTxSize bounds the encoding of one signed transaction.
	MaxTxSize = 80 << 10
	// MaxBlockSize bounds the encoding of one block. It also keeps one
	// block's atomic commit well inside what the on-disk backend accepts in
	// a single batch.
	MaxBlockSize = 2 << 20
	// MaxBlockTxs bounds the transactions of one block.
	MaxBlockTxs = 4096
	// MaxPrunePerBlock bounds how many queued items (messages, posts,
	// request entries, claim log entries) one block's retention removes.
	// It exceeds what one block can queue (at most 32 items a
	// transaction, its own and 31 claims: about 14,300 in a full block);
	// MaxPruneWritesPerBlock is what bounds retention's work.
	MaxPrunePerBlock = 24_576
	// MaxBlockWrites and MaxBlockWriteBytes bound the state writes of one
	// block (its Put and Delete calls, and their key and value bytes plus
	// BlockWriteOverhead each): a block is accepted as one atomic batch,
	// and a database refuses a batch beyond its own limit (BadgerDB with
	// 64 MiB memtables: about 104,000 entries or 10 MB; see LLM.md,
	// "Write bounds"). Verify refuses a block beyond either bound, so no
	// node ever has to commit one. The overhead covers BadgerDB's own (12
	// bytes an entry) and the prefix a Lux node puts before a chain's keys
	// (34 bytes: the chain ID and "vm"), with room to spare.
	MaxBlockWrites     = 65_536
	MaxBlockWriteBytes = 8 << 20
	BlockWriteOverhead = 64
	// MaxPruneWritesPerBlock bounds the writes of one block's retention of
	// queued items (no item begins once they are spent; an item costs at
	// most 2 × (MaxParticipants − 1) writes: a request item). With
	// MaxSessionPruneWritesPerBlock, a block's retention stays under
	// 33,000 writes, leaving more than 30,000 for its transactions.
	MaxPruneWritesPerBlock = 24_576
	// MaxSessionPruneWritesPerBlock bounds the writes of one block's
	// retention of sessions (no session begins once they are spent; a
	// session costs at most 3 × MaxParticipants + 1).
	MaxSessionPruneWritesPerBlock = 8_192
	// MaxFutureBlockTime is how far (milliseconds) ahead of the local clock
	// a block timestamp may be.
	MaxFutureBlockTime = 10_000
	// MaxGenesisIdentities bounds the initial identities of a genesis.
	MaxGenesisIdentities = 10_000
	// MaxGenesisSize bounds the genesis JSON.
	MaxGenesisSize = 64 << 20

	// MaxPrekeysPerTx bounds the one-time prekeys of one PublishPrekeys.
	MaxPrekeysPerTx = 32
	// MaxUnclaimedPrekeys bounds the unclaimed one-time prekeys of an
	// identity.
	MaxUnclaimedPrekeys = 100
	// MaxSignedPrekeyLifetime is the longest a signed prekey may stay valid
	// after the block that publishes it (milliseconds): 30 days.
	MaxSignedPrekeyLifetime = 30 * 86400 * 1000
	// RequestBackfill is how many of a session's first messages enter a
	// participant's inbox when it accepts the session (a request's
	// contents: the handshake and a first text).
	RequestBackfill = 8
	// MaxContacts bounds the contacts (status 1) of one identity.
	MaxContacts = 10_000
	// MaxBlocked bounds the blocked peers (status 2) of one identity, apart
	// from its contacts: blocking never takes a contact's place.
	MaxBlocked = 10_000
	// MaxMemberships bounds the channels an identity belongs to without
	// owning them.
	MaxMemberships = 1_000
	// MaxModerationRecords bounds the invites and bans held in the
	// channels one identity owns, all together.
	MaxModerationRecords = 16_384
	// MaxSlowModeSeconds bounds a channel's slow mode.
	MaxSlowModeSeconds = 86_400
	// MaxClaimsPerPair bounds the claims one participant makes of another's
	// prekeys in one session (a handshake and its re-initiations).
	MaxClaimsPerPair = 4
	// MaxPrekeyIDStep bounds how far above the highest published ID of its
	// kind a new prekey ID may be, so an identity cannot exhaust its ID
	// space.
	MaxPrekeyIDStep = 1 << 20
	// MaxSessionPrunePerBlock bounds the sessions one block removes
	// (retention of sessions, each at most 35 deletes).
	MaxSessionPrunePerBlock = 256
	// BytesBucketUnit is the size (bytes) of one token of the bytes
	// bucket: a transaction costs ⌈size / BytesBucketUnit⌉.
	BytesBucketUnit = 4096
	// MaxModerationItems bounds the members of one ModerateChannel.
	MaxModerationItems = 64
	// MaxDeleteItems bounds the posts of one DeletePosts.
	MaxDeleteItems = 64
	// MaxChannelInvites bounds the outstanding invites of a channel.
	MaxChannelInvites = MaxChannelMembers
)

// Node-local defaults (not part of consensus): mempool bounds. They are
// sized against each other so that each one binds for some traffic:
//
//   - bytes: 256 MiB is 128 full blocks (MaxBlockSize) of backlog;
//   - count: 65,536 of the smallest transactions (3.4 KB: a header, a
//     32-byte payload and the 3,309-byte signature) make 224 MB, so the
//     count binds for small transactions and the bytes for large ones;
//   - per author, bytes: 16 MiB, 1/16 of the pool, so one author (one free
//     identity) can never hold the whole pool: 16 authors are needed to
//     fill it (a transaction of the largest size, 80 KiB, always fits);
//   - per author, count: 4,096 of the smallest messages (3.4 KB) make
//     14 MB, just under the author's bytes, so a burst of small messages
//     meets the count and one of large messages (69 KB each: at most 243
//     of them) meets the bytes. Before this bound, 4,096 × 69 KB (283 MB)
//     exceeded the whole pool.
//
// With a full pool, a node's disk guard (package vm) needs 3 × 256 MiB free
// above its reserve to admit more.
const (
	// DefaultMempoolTxs bounds the transactions waiting in a mempool.
	DefaultMempoolTxs = 65536
	// DefaultMempoolBytes bounds the bytes waiting in a mempool.
	DefaultMempoolBytes = 256 << 20
	// DefaultMaxPendingPerAuthor bounds the transactions one author may
	// have waiting in a mempool.
	DefaultMaxPendingPerAuthor = 4096
	// DefaultMaxPendingBytesPerAuthor bounds the bytes one author may have
	// waiting in a mempool: DefaultMempoolBytes / 16.
	DefaultMaxPendingBytesPerAuthor = DefaultMempoolBytes / 16
	// DefaultMaxPendingRegistrations bounds the registrations waiting in a
	// mempool, apart from the other transactions: 16 blocks' worth at the
	// default maxPerBlock (docs/chain.md section 3).
	DefaultMaxPendingRegistrations = 256
)

// ErrInvalidConfig is wrapped by every error of Parse and Validate.
var ErrInvalidConfig = errors.New("invalid chain config")

// Config is the chain configuration. Every node of a chain must use the
// same values: they are part of the genesis. docs/chain.md explains every
// field, its default and why.
type Config struct {
	// SessionTTL is how long (seconds) a session accepts messages after the
	// timestamp of the block that created it.
	SessionTTL int64 `json:"sessionTTL"`
	// MaxMessages is the most messages one session, or posts one channel,
	// stores at once. Retention (and, for channels, deletion) frees their
	// places. A full session refuses messages; a full channel evicts its
	// oldest post.
	MaxMessages int64 `json:"maxMessages"`
	// MaxChannels is the most channels one identity may own. Channels are
	// permanent, so it bounds the channels an identity ever creates.
	MaxChannels int64 `json:"maxChannels"`
	// RetentionDays is how long (days of block time) a message is kept
	// before it is pruned.
	RetentionDays int64 `json:"retentionDays"`
	// IDPrefix is the Session ID prefix identities must carry. Only "07"
	// (ML-KEM-768 + ML-DSA-65) is supported.
	IDPrefix string `json:"idPrefix"`

	// Registration is the proof of work a RegisterIdentity transaction
	// carries.
	Registration Registration `json:"registration"`
	// RateLimits are the per-identity token buckets.
	RateLimits RateLimits `json:"rateLimits"`
	// Prekeys bounds the claiming of one-time prekeys by strangers.
	Prekeys Prekeys `json:"prekeys"`
}

// Registration is the registration proof of work (docs/chain.md section
// 3): a work value whose BLAKE2b pre-filter hash has PrefilterBits leading
// zero bits and whose Argon2id output (MemoryKiB, Iterations, one thread)
// has WorkBits leading zero bits, bound to a block at most AnchorWindow
// blocks below the one that executes it. A block holds at most
// MaxPerBlock registrations.
type Registration struct {
	MemoryKiB     int64 `json:"memoryKiB"`
	Iterations    int64 `json:"iterations"`
	PrefilterBits int64 `json:"prefilterBits"`
	WorkBits      int64 `json:"workBits"`
	MaxPerBlock   int64 `json:"maxPerBlock"`
	AnchorWindow  int64 `json:"anchorWindow"`
}

// Bucket is a token bucket: Burst tokens at most, one more every
// RefillSeconds of block time.
type Bucket struct {
	Burst         int64 `json:"burst"`
	RefillSeconds int64 `json:"refillSeconds"`
}

// RefillMillis returns the refill interval in milliseconds.
func (b Bucket) RefillMillis() int64 { return b.RefillSeconds * 1000 }

// RateLimits are the per-identity buckets, one per kind of action.
type RateLimits struct {
	Messages   Bucket `json:"messages"`   // SendMessage
	Posts      Bucket `json:"posts"`      // PostChannel
	Sessions   Bucket `json:"sessions"`   // CreateSession
	Requests   Bucket `json:"requests"`   // each pending participant of CreateSession
	Claims     Bucket `json:"claims"`     // each one-time prekey claimed
	Channels   Bucket `json:"channels"`   // CreateChannel
	Joins      Bucket `json:"joins"`      // JoinChannel
	Moderation Bucket `json:"moderation"` // SetChannelPolicy, ModerateChannel, DeletePosts
	Contacts   Bucket `json:"contacts"`   // SetContact, SetRequestPolicy, AcceptSession
	Prekeys    Bucket `json:"prekeys"`    // PublishPrekeys
	Bytes      Bucket `json:"bytes"`      // every transaction but RegisterIdentity: ⌈size / BytesBucketUnit⌉
}

// Prekeys bounds claims of an identity's one-time prekeys by identities
// that are not its contacts: a per-target bucket and a reserve they may
// not claim.
type Prekeys struct {
	StrangerClaims  Bucket `json:"strangerClaims"`
	StrangerReserve int64  `json:"strangerReserve"`
}

// BucketKind names a per-identity bucket: an index into an account's
// bucket state, in the order of RateLimits.
type BucketKind int

// Bucket kinds.
const (
	BucketMessages BucketKind = iota
	BucketPosts
	BucketSessions
	BucketRequests
	BucketClaims
	BucketChannels
	BucketJoins
	BucketModeration
	BucketContacts
	BucketPrekeys
	BucketBytes
	NumBuckets // the number of per-identity buckets
)

var bucketNames = [NumBuckets]string{"messages", "posts", "sessions", "requests", "claims", "channels", "joins", "moderation", "contacts", "prekeys", "bytes"}

// String returns the bucket's JSON name ("messages").
func (k BucketKind) String() string {
	if k >= 0 && k < NumBuckets {
		return bucketNames[k]
	}
	return fmt.Sprintf("bucket(%d)", int(k))
}

// Bucket returns the limit of kind k.
func (r RateLimits) Bucket(k BucketKind) Bucket {
	switch k {
	case BucketMessages:
		return r.Messages
	case BucketPosts:
		return r.Posts
	case BucketSessions:
		return r.Sessions
	case BucketRequests:
		return r.Requests
	case BucketClaims:
		return r.Claims
	case BucketChannels:
		return r.Channels
	case BucketJoins:
		return r.Joins
	case BucketModeration:
		return r.Moderation
	case BucketContacts:
		return r.Contacts
	case BucketPrekeys:
		return r.Prekeys
	case BucketBytes:
		return r.Bytes
	}
	return Bucket{}
}

// WriteCost is what one state write of a key and a value (0 for a delete)
// counts against MaxBlockWriteBytes: both lengths plus BlockWriteOverhead.
func WriteCost(keyLen, valueLen int) int { return keyLen + valueLen + BlockWriteOverhead }

// Default returns the default configuration.
func Default() Config {
	return Config{
		SessionTTL:    DefaultSessionTTL,
		MaxMessages:   DefaultMaxMessages,
		MaxChannels:   DefaultMaxChannels,
		RetentionDays: DefaultRetentionDays,
		IDPrefix:      DefaultIDPrefix,
		Registration:  DefaultRegistration(),
		RateLimits: RateLimits{
			Messages:   Bucket{Burst: 1000, RefillSeconds: 1},
			Posts:      Bucket{Burst: 100, RefillSeconds: 6},
			Sessions:   Bucket{Burst: 100, RefillSeconds: 300},
			Requests:   Bucket{Burst: 31, RefillSeconds: 1800},
			Claims:     Bucket{Burst: 100, RefillSeconds: 60},
			Channels:   Bucket{Burst: 10, RefillSeconds: 3600},
			Joins:      Bucket{Burst: 50, RefillSeconds: 120},
			Moderation: Bucket{Burst: 100, RefillSeconds: 10},
			Contacts:   Bucket{Burst: 500, RefillSeconds: 10},
			Prekeys:    Bucket{Burst: 20, RefillSeconds: 600},
			Bytes:      Bucket{Burst: 1024, RefillSeconds: 2},
		},
		Prekeys: Prekeys{
			StrangerClaims:  Bucket{Burst: 20, RefillSeconds: 3600},
			StrangerReserve: 20,
		},
	}
}

// DefaultRegistration returns the default registration proof of work:
// about 1.0 s of one core per identity, the pre-filter costing the sender
// 5.4 times the node's Argon2id (docs/chain.md section 3).
func DefaultRegistration() Registration {
	return Registration{MemoryKiB: 8192, Iterations: 1, PrefilterBits: 18, WorkBits: 4, MaxPerBlock: 16, AnchorWindow: 4096}
}

// MinimalRegistration returns the cheapest valid registration work (one
// Argon2id evaluation over 8 KiB, no pre-filter, no difficulty): for tests
// and development chains that are not about work.
func MinimalRegistration() Registration {
	return Registration{MemoryKiB: 8, Iterations: 1, PrefilterBits: 0, WorkBits: 0, MaxPerBlock: 16, AnchorWindow: 4096}
}

// Parse decodes a JSON configuration. Omitted fields (at any depth) take
// their defaults; an empty input (or "null") gives Default(). Unknown or
// wrong-case fields, duplicate fields, wrong types, trailing data and
// invalid values are errors wrapping ErrInvalidConfig.
func Parse(b []byte) (Config, error) {
	c := Default()
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	// Decoding into the defaults keeps every omitted field; an explicit
	// zero is kept and refused by Validate.
	if err := DecodeStrict(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and returns an error wrapping
// ErrInvalidConfig that names the first invalid one.
func (c Config) Validate() error {
	for _, f := range []struct {
		name      string
		v, lo, hi int64
	}{
		{"sessionTTL", c.SessionTTL, 1, MaxSessionTTL},
		{"maxMessages", c.MaxMessages, 1, MaxMaxMessages},
		{"maxChannels", c.MaxChannels, 1, MaxMaxChannels},
		{"retentionDays", c.RetentionDays, 1, MaxRetentionDays},
		{"registration.memoryKiB", c.Registration.MemoryKiB, 8, MaxRegistrationMemoryKiB},
		{"registration.iterations", c.Registration.Iterations, 1, MaxRegistrationIterations},
		{"registration.prefilterBits", c.Registration.PrefilterBits, 0, MaxWorkBits},
		{"registration.workBits", c.Registration.WorkBits, 0, MaxWorkBits},
		{"registration.maxPerBlock", c.Registration.MaxPerBlock, 1, MaxBlockTxs},
		{"registration.anchorWindow", c.Registration.AnchorWindow, 1, MaxAnchorWindow},
		{"prekeys.strangerReserve", c.Prekeys.StrangerReserve, 0, MaxUnclaimedPrekeys},
	} {
		if err := inRange(f.name, f.v, f.lo, f.hi); err != nil {
			return err
		}
	}
	r := c.Registration
	if w := r.MaxPerBlock * r.MemoryKiB * r.Iterations; w > MaxBlockWorkKiB {
		return fmt.Errorf("%w: registration: maxPerBlock × memoryKiB × iterations must be at most %d (a block's Argon2id under a second), got %d", ErrInvalidConfig, MaxBlockWorkKiB, w)
	}
	if r.MemoryKiB*r.Iterations >= PrefilterThresholdKiB && r.PrefilterBits < MinCostlyPrefilterBits {
		return fmt.Errorf("%w: registration.prefilterBits must be at least %d when memoryKiB × iterations is %d or more (a costly Argon2id needs a pre-filter), got %d", ErrInvalidConfig, MinCostlyPrefilterBits, PrefilterThresholdKiB, r.PrefilterBits)
	}
	for k := BucketKind(0); k < NumBuckets; k++ {
		if err := c.RateLimits.Bucket(k).validate("rateLimits." + k.String()); err != nil {
			return err
		}
	}
	if err := c.Prekeys.StrangerClaims.validate("prekeys.strangerClaims"); err != nil {
		return err
	}
	switch c.IDPrefix {
	case "07":
	case "05":
		return fmt.Errorf("%w: idPrefix %q (legacy X25519/Ed25519 identities) is not supported; use \"07\"", ErrInvalidConfig, c.IDPrefix)
	default:
		return fmt.Errorf("%w: unknown idPrefix %q; use \"07\"", ErrInvalidConfig, c.IDPrefix)
	}
	return nil
}

func (b Bucket) validate(name string) error {
	if err := inRange(name+".burst", b.Burst, 1, MaxBucketBurst); err != nil {
		return err
	}
	if err := inRange(name+".refillSeconds", b.RefillSeconds, 1, MaxBucketRefillSeconds); err != nil {
		return err
	}
	if b.Burst*b.RefillSeconds > MaxBucketSpan {
		return fmt.Errorf("%w: %s: burst × refillSeconds must be at most %d, got %d", ErrInvalidConfig, name, int64(MaxBucketSpan), b.Burst*b.RefillSeconds)
	}
	return nil
}

func inRange(name string, v, lo, hi int64) error {
	if v < lo {
		if lo == 1 {
			return fmt.Errorf("%w: %s must be positive, got %d", ErrInvalidConfig, name, v)
		}
		return fmt.Errorf("%w: %s must be at least %d, got %d", ErrInvalidConfig, name, lo, v)
	}
	if v > hi {
		return fmt.Errorf("%w: %s must be at most %d, got %d", ErrInvalidConfig, name, hi, v)
	}
	return nil
}

// SessionTTLMillis returns SessionTTL in milliseconds, the unit of block
// timestamps.
func (c Config) SessionTTLMillis() int64 { return c.SessionTTL * 1000 }

// RetentionMillis returns RetentionDays in milliseconds.
func (c Config) RetentionMillis() int64 { return c.RetentionDays * 86400 * 1000 }

// IDPrefixByte returns the Session ID prefix as its byte value (0x07).
func (c Config) IDPrefixByte() byte {
	if c.IDPrefix == "05" {
		return 0x05
	}
	return 0x07
}

// DecodeStrict decodes one JSON value into v (a pointer to a struct with
// json tags), refusing unknown fields, fields whose name differs in case
// from the tag (encoding/json alone would accept "sessionttl" for
// "sessionTTL"), duplicate fields, and trailing data. The key checks apply
// to nested objects decoded into struct fields too.
func DecodeStrict(b []byte, v any) error {
	if json.Valid(b) {
		// Spelling first, so an unknown nested field is named by its path.
		t := reflect.TypeOf(v)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if err := checkKeys(json.NewDecoder(bytes.NewReader(b)), t, ""); err != nil {
			return err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// checkKeys walks one JSON value from dec; when it is an object decoded
// into struct type t, every key must be the exact json name of a field and
// appear once. It recurses into struct-typed fields.
func checkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar (or null)
	}
	switch {
	case d == '{' && t.Kind() == reflect.Struct:
		fields := jsonFields(t)
		seen := make(map[string]bool, len(fields)) // lookups only
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			k, _ := tok.(string)
			ft, known := fields[k]
			if !known {
				return fmt.Errorf("unknown field %q", path+k)
			}
			if seen[k] {
				return fmt.Errorf("duplicate field %q", path+k)
			}
			seen[k] = true
			if err := checkKeys(dec, ft, path+k+"."); err != nil {
				return err
			}
		}
		_, err := dec.Token() // }
		return err
	default:
		// Another object or an array: skip its contents.
		for dec.More() {
			if d == '{' {
				if _, err := dec.Token(); err != nil {
					return err
				}
			}
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
		}
		_, err := dec.Token()
		return err
	}
}

// jsonFields returns the json names of the fields of struct type t with
// their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	names := make(map[string]reflect.Type)
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = t.Field(i).Name
		}
		if name != "-" {
			names[name] = t.Field(i).Type
		}
	}
	return names
}
