package node

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/genesis"
)

// DefaultGenesisTimestamp is 2026-01-01T00:00:00Z, the genesis time of
// test chains (a new standalone chain takes the time it was created).
const DefaultGenesisTimestamp = 1767225600

// GenesisFile is the name of the genesis copy kept in the data directory.
const GenesisFile = "genesis.json"

// ChainNonceSize is the size of the random nonce in the genesis of a new
// standalone chain.
const ChainNonceSize = 16

// ErrGenesisConflict is returned when the genesis given for a data directory
// is not the one its chain was created with.
var ErrGenesisConflict = errors.New("genesis conflicts with the chain in the data directory")

// ChainOverrides replace fields of the built-in genesis's chain
// configuration. A nil field keeps the default of package config.
type ChainOverrides struct {
	SessionTTL    *int64 // seconds
	MaxMessages   *int64
	MaxChannels   *int64
	RetentionDays *int64
	// Registration replaces the registration proof of work (for example
	// config.MinimalRegistration for test and development chains).
	Registration *config.Registration
	// RateLimits replaces the per-identity rate limits (for example for a
	// load-test chain whose few identities send far more than a person).
	RateLimits *config.RateLimits
}

// Empty reports whether no field is set.
func (o ChainOverrides) Empty() bool {
	return o.SessionTTL == nil && o.MaxMessages == nil && o.MaxChannels == nil && o.RetentionDays == nil && o.Registration == nil && o.RateLimits == nil
}

// fields pairs each override with its field of a chain config.
func (o ChainOverrides) fields(c *config.Config) []struct {
	name string
	src  *int64
	dst  *int64
} {
	return []struct {
		name string
		src  *int64
		dst  *int64
	}{
		{"sessionTTL", o.SessionTTL, &c.SessionTTL},
		{"maxMessages", o.MaxMessages, &c.MaxMessages},
		{"maxChannels", o.MaxChannels, &c.MaxChannels},
		{"retentionDays", o.RetentionDays, &c.RetentionDays},
	}
}

// NewChainGenesis returns the genesis of a new standalone chain: the chain
// config defaults with the overrides applied, no initial identities, the
// creation time (now, in seconds) as its timestamp, and ChainNonceSize
// bytes from random as its nonce. The nonce makes the genesis bytes, so
// the chain ID (their SHA-256), differ from every other chain's: a
// transaction signed for one chain is invalid on all others. The bytes are
// written once into the data directory; later starts read them back, so
// the chain keeps its ID. A genesis file (--genesis) is used as given, and
// gives the same chain ID wherever it is used.
func NewChainGenesis(o ChainOverrides, now time.Time, random io.Reader) ([]byte, error) {
	c := config.Default()
	for _, f := range o.fields(&c) {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if o.Registration != nil {
		c.Registration = *o.Registration
	}
	if o.RateLimits != nil {
		c.RateLimits = *o.RateLimits
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	nonce := make([]byte, ChainNonceSize)
	if _, err := io.ReadFull(random, nonce); err != nil {
		return nil, fmt.Errorf("node: chain nonce: %w", err)
	}
	b, err := json.MarshalIndent(struct {
		Timestamp int64         `json:"timestamp"`
		Config    config.Config `json:"config"`
		Nonce     string        `json:"nonce"`
	}{now.Unix(), c, hex.EncodeToString(nonce)}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ChainIDOf returns the chain ID a standalone node gives the chain of
// genesis bytes: their SHA-256 (there is no Lux chain context to name it).
func ChainIDOf(genesisBytes []byte) ids.ID { return ids.ID(sha256.Sum256(genesisBytes)) }

// resolveGenesis picks the genesis of the chain in dataDir: the stored copy
// if there is one (a given genesis must then be identical, and overrides
// must match its config), else given, else a new chain's genesis
// (NewChainGenesis) with the overrides. It returns the bytes and whether
// they still have to be stored.
func resolveGenesis(dataDir string, given []byte, o ChainOverrides) (b []byte, store bool, err error) {
	if given != nil && !o.Empty() {
		return nil, false, errors.New("node: chain config overrides apply to the built-in genesis; with a genesis file, edit its \"config\" instead")
	}
	path := filepath.Join(dataDir, GenesisFile)
	stored, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		stored = nil
	case err != nil:
		return nil, false, fmt.Errorf("node: reading %s: %w", path, err)
	}
	if stored == nil {
		want := given
		if want == nil {
			if want, err = NewChainGenesis(o, time.Now(), rand.Reader); err != nil {
				return nil, false, fmt.Errorf("node: chain config: %w", err)
			}
		}
		if _, err := genesis.Parse(want); err != nil {
			return nil, false, fmt.Errorf("node: %w", err)
		}
		return want, true, nil
	}
	g, err := genesis.Parse(stored)
	if err != nil {
		return nil, false, fmt.Errorf("node: %s: %w", path, err)
	}
	conflict := func(what string) error {
		return fmt.Errorf("%w: %s holds chain %s (genesis %s); this start asks for %s; "+
			"start without --genesis and overrides to use the stored one, or use another --data-dir",
			ErrGenesisConflict, dataDir, ChainIDOf(stored), shortHash(stored), what)
	}
	if given != nil && !bytes.Equal(given, stored) {
		return nil, false, conflict(fmt.Sprintf("genesis %s (chain %s)", shortHash(given), ChainIDOf(given)))
	}
	want := g.Config
	for _, f := range o.fields(&want) {
		if f.src != nil && *f.src != *f.dst {
			return nil, false, conflict(fmt.Sprintf("%s %d where the chain has %d", f.name, *f.src, *f.dst))
		}
	}
	if o.Registration != nil && *o.Registration != want.Registration {
		return nil, false, conflict(fmt.Sprintf("registration work %+v where the chain has %+v", *o.Registration, want.Registration))
	}
	if o.RateLimits != nil && *o.RateLimits != want.RateLimits {
		return nil, false, conflict("other rate limits than the chain's")
	}
	return stored, false, nil
}

func shortHash(b []byte) string {
	h := sha256.Sum256(b)
	return fmt.Sprintf("%x", h[:8])
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
