// Package config holds the chain configuration of SessionVM: the consensus
// parameters every node of a chain must agree on (they are part of the
// genesis), and the fixed protocol bounds that keep every decoder and every
// block's work bounded.
//
// The JSON names and defaults of Config are:
//
//	sessionTTL     86400  seconds a session stays open after its creating block
//	maxMessages    10000  messages per session (and per channel)
//	maxChannels    1000   channels that may exist on the chain at once
//	retentionDays  30     days (by block timestamp) a message is kept
//	idPrefix       "07"   the Session ID prefix identities must carry
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
	// MaxPrunePerBlock bounds how many expired messages one block removes
	// (retention). It exceeds MaxBlockTxs so pruning always catches up.
	MaxPrunePerBlock = 2 * MaxBlockTxs
	// MaxFutureBlockTime is how far (milliseconds) ahead of the local clock
	// a block timestamp may be.
	MaxFutureBlockTime = 10_000
	// MaxGenesisIdentities bounds the initial identities of a genesis.
	MaxGenesisIdentities = 10_000
	// MaxGenesisSize bounds the genesis JSON.
	MaxGenesisSize = 64 << 20
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
)

// ErrInvalidConfig is wrapped by every error of Parse and Validate.
var ErrInvalidConfig = errors.New("invalid chain config")

// Config is the chain configuration. Every node of a chain must use the
// same values: they are part of the genesis.
type Config struct {
	// SessionTTL is how long (seconds) a session accepts messages after the
	// timestamp of the block that created it.
	SessionTTL int64 `json:"sessionTTL"`
	// MaxMessages is the most messages one session (or channel) holds over
	// its life.
	MaxMessages int64 `json:"maxMessages"`
	// MaxChannels is the most channels that may exist on the chain.
	MaxChannels int64 `json:"maxChannels"`
	// RetentionDays is how long (days of block time) a message is kept
	// before it is pruned.
	RetentionDays int64 `json:"retentionDays"`
	// IDPrefix is the Session ID prefix identities must carry. Only "07"
	// (ML-KEM-768 + ML-DSA-65) is supported.
	IDPrefix string `json:"idPrefix"`
}

// Default returns the default configuration.
func Default() Config {
	return Config{
		SessionTTL:    DefaultSessionTTL,
		MaxMessages:   DefaultMaxMessages,
		MaxChannels:   DefaultMaxChannels,
		RetentionDays: DefaultRetentionDays,
		IDPrefix:      DefaultIDPrefix,
	}
}

// Parse decodes a JSON configuration. Omitted fields take their defaults;
// an empty input (or "null") gives Default(). Unknown fields, wrong types,
// trailing data and invalid values are errors wrapping ErrInvalidConfig.
func Parse(b []byte) (Config, error) {
	c := Default()
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	// Pointers tell an omitted field from an explicit zero.
	var raw struct {
		SessionTTL    *int64  `json:"sessionTTL"`
		MaxMessages   *int64  `json:"maxMessages"`
		MaxChannels   *int64  `json:"maxChannels"`
		RetentionDays *int64  `json:"retentionDays"`
		IDPrefix      *string `json:"idPrefix"`
	}
	if err := DecodeStrict(b, &raw); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if raw.SessionTTL != nil {
		c.SessionTTL = *raw.SessionTTL
	}
	if raw.MaxMessages != nil {
		c.MaxMessages = *raw.MaxMessages
	}
	if raw.MaxChannels != nil {
		c.MaxChannels = *raw.MaxChannels
	}
	if raw.RetentionDays != nil {
		c.RetentionDays = *raw.RetentionDays
	}
	if raw.IDPrefix != nil {
		c.IDPrefix = *raw.IDPrefix
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks every field and returns an error wrapping
// ErrInvalidConfig that names the first invalid one.
func (c Config) Validate() error {
	if err := inRange("sessionTTL", c.SessionTTL, MaxSessionTTL); err != nil {
		return err
	}
	if err := inRange("maxMessages", c.MaxMessages, MaxMaxMessages); err != nil {
		return err
	}
	if err := inRange("maxChannels", c.MaxChannels, MaxMaxChannels); err != nil {
		return err
	}
	if err := inRange("retentionDays", c.RetentionDays, MaxRetentionDays); err != nil {
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

func inRange(name string, v, max int64) error {
	if v <= 0 {
		return fmt.Errorf("%w: %s must be positive, got %d", ErrInvalidConfig, name, v)
	}
	if v > max {
		return fmt.Errorf("%w: %s must be at most %d, got %d", ErrInvalidConfig, name, max, v)
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
// "sessionTTL"), duplicate fields, and trailing data.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	// Check the exact spelling of the top-level keys.
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(b, &keys); err != nil || keys == nil {
		return nil // not an object (for example null): nothing to check
	}
	want := jsonNames(v)
	dec = json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil { // {
		return err
	}
	seen := make(map[string]bool, len(keys))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		k, _ := tok.(string)
		if !want[k] {
			return fmt.Errorf("unknown field %q", k)
		}
		if seen[k] {
			return fmt.Errorf("duplicate field %q", k)
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return nil
}

// jsonNames returns the json tag names of the fields of the struct v
// points to.
func jsonNames(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	names := make(map[string]bool)
	if t.Kind() != reflect.Struct {
		return names
	}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name == "" {
			name = t.Field(i).Name
		}
		if name != "-" {
			names[name] = true
		}
	}
	return names
}
