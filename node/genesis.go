package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/config"
	"github.com/luxfi/session/vm/genesis"
)

// DefaultGenesisTimestamp is the genesis time of the built-in genesis:
// 2026-01-01T00:00:00Z. It is fixed so that the default chain, and so its
// chain ID, is the same on every machine and every start.
const DefaultGenesisTimestamp = 1767225600

// GenesisFile is the name of the genesis copy kept in the data directory.
const GenesisFile = "genesis.json"

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
}

// Empty reports whether no field is set.
func (o ChainOverrides) Empty() bool {
	return o.SessionTTL == nil && o.MaxMessages == nil && o.MaxChannels == nil && o.RetentionDays == nil
}

// DefaultGenesis returns the built-in genesis (config defaults, no initial
// identities, DefaultGenesisTimestamp) with the overrides applied. The
// bytes are deterministic: the same overrides give the same chain.
func DefaultGenesis(o ChainOverrides) ([]byte, error) {
	c := config.Default()
	for _, f := range []struct {
		src *int64
		dst *int64
	}{
		{o.SessionTTL, &c.SessionTTL},
		{o.MaxMessages, &c.MaxMessages},
		{o.MaxChannels, &c.MaxChannels},
		{o.RetentionDays, &c.RetentionDays},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(struct {
		Timestamp int64         `json:"timestamp"`
		Config    config.Config `json:"config"`
	}{DefaultGenesisTimestamp, c}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ChainIDOf returns the chain ID a standalone node gives the chain of
// genesis bytes: their SHA-256 (there is no Lux chain context to name it).
func ChainIDOf(genesisBytes []byte) ids.ID { return ids.ID(sha256.Sum256(genesisBytes)) }

// resolveGenesis picks the genesis of the chain in dataDir: the stored copy
// if there is one (given must then be nil or identical), else given, else
// the built-in default with overrides. It returns the bytes and whether
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
	want := given
	if want == nil && (!o.Empty() || stored == nil) {
		if want, err = DefaultGenesis(o); err != nil {
			return nil, false, fmt.Errorf("node: chain config: %w", err)
		}
	}
	if stored != nil {
		if want != nil && !bytes.Equal(want, stored) {
			return nil, false, fmt.Errorf("%w: %s was created with genesis %s (chain %s), this start asks for genesis %s (chain %s); "+
				"start without --genesis and overrides to use the stored one, or use another --data-dir",
				ErrGenesisConflict, dataDir, shortHash(stored), ChainIDOf(stored), shortHash(want), ChainIDOf(want))
		}
		want = stored
	}
	if _, err := genesis.Parse(want); err != nil {
		return nil, false, fmt.Errorf("node: %w", err)
	}
	return want, stored == nil, nil
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
