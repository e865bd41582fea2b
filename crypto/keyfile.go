package crypto

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"

	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"

	"github.com/luxfi/session/crypto/internal/hook"
)

// Identity file constants. The format is documented in LLM.md.
const (
	identityFileVersion = 1
	identityFileLabel   = "luxfi/session/v1/identity-file"
	// MaxIdentityFileSize bounds what LoadIdentity reads.
	MaxIdentityFileSize = 64 << 10

	secretKindSeed = 0x01 // the 32-byte master seed of IdentityFromSeed
	secretKindKeys = 0x02 // the expanded ML-KEM (2400) and ML-DSA (4032) secret keys

	saltSize = 32

	// Bounds on the scrypt parameters a file may ask for, so that a hostile
	// file cannot make LoadIdentity use unbounded memory or time.
	minScryptLogN = 10
	maxScryptLogN = 22
	maxScryptR    = 32
	maxScryptP    = 16
	// maxScryptMemory bounds 128·r·N, the memory scrypt needs (256 MiB).
	maxScryptMemory = 256 << 20
)

// defaultScryptLogN is the work factor of new files: N = 2^17, r = 8, p = 1,
// 128 MiB of memory, the minimum OWASP's password storage guidance gives
// for scrypt. 2^15 (what files had before, and the "interactive login"
// figure of golang.org/x/crypto/scrypt's 2017 documentation) is a quarter
// of the work, in time and in memory, for someone guessing the passphrase
// of a stolen file, which holds the master seed of a long-term identity.
// 2^18 (age's choice) doubles it again, but 256 MiB is too much for the
// phones the web app will run on, and the file is opened at every
// sessionctl command. BenchmarkScrypt measures the cost (LLM.md has the
// figures). Files keep their parameters: older ones still load.
const defaultScryptLogN = 17

// scryptLogN is the work factor Save writes: defaultScryptLogN, unless a
// test lowered it (keyfiletest); atomic, since parallel tests may save
// files while one sets it.
var scryptLogN atomic.Int32

func init() {
	scryptLogN.Store(defaultScryptLogN)
	hook.SetScryptLogN = func(logN int) func() {
		old := scryptLogN.Swap(int32(logN))
		return func() { scryptLogN.Store(old) }
	}
}

// identityFile is the on-disk JSON form. Public keys are in the clear so
// that a file can be inspected without its passphrase; secrets are in
// Sealed, encrypted under a key derived from the passphrase, with every
// other field bound as associated data.
type identityFile struct {
	Version      int       `json:"version"`
	SessionID    string    `json:"sessionId"`
	KEMPublicKey []byte    `json:"kemPublicKey"`
	DSAPublicKey []byte    `json:"dsaPublicKey"`
	KDF          scryptKDF `json:"kdf"`
	Nonce        []byte    `json:"nonce"`
	Sealed       []byte    `json:"sealed"`
}

type scryptKDF struct {
	Name string `json:"name"` // "scrypt"
	LogN int    `json:"logN"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
}

// ErrEmptyPassphrase is returned by Save for an empty passphrase.
var ErrEmptyPassphrase = errors.New("empty passphrase")

// Save writes the identity to path, readable by LoadIdentity with the same
// passphrase. The secret keys (or the master seed, when the identity has
// one) are sealed with XChaCha20-Poly1305 under a key derived from the
// passphrase with scrypt and a random salt. The file is written with mode
// 0600 to a temporary file in the same directory and renamed into place, so
// a crash leaves either the old file or the new one.
func (id *Identity) Save(path string, passphrase string) error {
	data, err := id.marshalFile(passphrase)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, data, 0o600)
}

func (id *Identity) marshalFile(passphrase string) ([]byte, error) {
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	if err := id.Validate(); err != nil {
		return nil, err
	}
	var secret []byte
	if id.seed != nil {
		secret = append([]byte{secretKindSeed}, id.seed[:]...)
	} else {
		if id.KEMSecretKey == nil || id.DSASecretKey == nil {
			return nil, fmt.Errorf("%w: identity has no secret keys to save", ErrInvalidSecretKey)
		}
		kem, err := id.kemSecret()
		if err != nil {
			return nil, err
		}
		dsa, err := id.dsaSecret()
		if err != nil {
			return nil, err
		}
		secret = append([]byte{secretKindKeys}, kem.Bytes()...)
		secret = append(secret, dsa.Bytes()...)
	}
	defer clear(secret)

	f := identityFile{
		Version:      identityFileVersion,
		SessionID:    id.SessionID,
		KEMPublicKey: id.KEMPublicKey,
		DSAPublicKey: id.DSAPublicKey,
		KDF:          scryptKDF{Name: "scrypt", LogN: int(scryptLogN.Load()), R: 8, P: 1, Salt: make([]byte, saltSize)},
		Nonce:        make([]byte, NonceSize),
	}
	if _, err := rand.Read(f.KDF.Salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(f.Nonce); err != nil {
		return nil, err
	}
	key, err := f.key(passphrase)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, _ := chacha20poly1305.NewX(key)
	f.Sealed = aead.Seal(nil, f.Nonce, secret, f.ad())
	return json.MarshalIndent(&f, "", "  ")
}

func (f *identityFile) key(passphrase string) ([]byte, error) {
	return scryptKey([]byte(passphrase), f.KDF.Salt, 1<<f.KDF.LogN, f.KDF.R, f.KDF.P, KeySize)
}

// scryptKey is scrypt.Key. Only FuzzParseIdentityFile replaces it (with a
// cheap stand-in), so that fuzzing the file format is not throttled to
// scrypt's speed.
var scryptKey = scrypt.Key

// ad binds every cleartext field of the file to the sealed secrets.
func (f *identityFile) ad() []byte {
	h, _ := blake2b.New256(nil)
	h.Write([]byte(identityFileLabel))
	var b [8]byte
	for _, v := range []int{f.Version, f.KDF.LogN, f.KDF.R, f.KDF.P} {
		binary.BigEndian.PutUint64(b[:], uint64(v))
		h.Write(b[:])
	}
	for _, field := range [][]byte{[]byte(f.KDF.Name), f.KDF.Salt, []byte(f.SessionID), f.KEMPublicKey, f.DSAPublicKey} {
		binary.BigEndian.PutUint64(b[:], uint64(len(field)))
		h.Write(b[:])
		h.Write(field)
	}
	return h.Sum(nil)
}

// LoadIdentity reads an identity saved with Save. A wrong passphrase, or a
// file changed in any field, gives ErrWrongPassphrase; a file that is not
// an identity file gives ErrInvalidIdentityFile.
func LoadIdentity(path string, passphrase string) (*Identity, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	return ParseIdentityFile(data, passphrase)
}

func readBounded(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxIdentityFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxIdentityFileSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrInvalidIdentityFile, MaxIdentityFileSize)
	}
	return data, nil
}

// ParseIdentityFile is LoadIdentity on the contents of a file.
func ParseIdentityFile(data []byte, passphrase string) (*Identity, error) {
	var f identityFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: not JSON of the expected shape", ErrInvalidIdentityFile)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrInvalidIdentityFile)
	}
	switch {
	case f.Version != identityFileVersion:
		return nil, fmt.Errorf("%w: unsupported version %d", ErrInvalidIdentityFile, f.Version)
	case f.KDF.Name != "scrypt":
		return nil, fmt.Errorf("%w: unsupported KDF", ErrInvalidIdentityFile)
	case f.KDF.LogN < minScryptLogN || f.KDF.LogN > maxScryptLogN ||
		f.KDF.R < 1 || f.KDF.R > maxScryptR || f.KDF.P < 1 || f.KDF.P > maxScryptP:
		return nil, fmt.Errorf("%w: scrypt parameters out of range", ErrInvalidIdentityFile)
	case 128*f.KDF.R<<f.KDF.LogN > maxScryptMemory || f.KDF.P*f.KDF.R<<f.KDF.LogN > 8<<maxScryptLogN:
		return nil, fmt.Errorf("%w: scrypt parameters too costly", ErrInvalidIdentityFile)
	case len(f.KDF.Salt) != saltSize || len(f.Nonce) != NonceSize:
		return nil, fmt.Errorf("%w: bad salt or nonce length", ErrInvalidIdentityFile)
	case len(f.Sealed) != 1+SeedSize+TagSize && len(f.Sealed) != 1+KEMSecretKeySize+DSASecretKeySize+TagSize:
		return nil, fmt.Errorf("%w: bad sealed length", ErrInvalidIdentityFile)
	}
	key, err := f.key(passphrase)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidIdentityFile, err)
	}
	defer clear(key)
	aead, _ := chacha20poly1305.NewX(key)
	secret, err := aead.Open(nil, f.Nonce, f.Sealed, f.ad())
	if err != nil {
		return nil, ErrWrongPassphrase
	}
	defer clear(secret)

	var id *Identity
	switch {
	case secret[0] == secretKindSeed && len(secret) == 1+SeedSize:
		id, err = IdentityFromSeed([SeedSize]byte(secret[1:]))
	case secret[0] == secretKindKeys && len(secret) == 1+KEMSecretKeySize+DSASecretKeySize:
		id, err = NewIdentity(secret[1:1+KEMSecretKeySize], secret[1+KEMSecretKeySize:])
	default:
		return nil, fmt.Errorf("%w: unknown secret kind", ErrInvalidIdentityFile)
	}
	if err == nil && secret[0] == secretKindKeys {
		err = id.Validate() // pairwise consistency of the stored keys
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIdentityFile, err)
	}
	// The cleartext public part must describe the sealed keys.
	if id.SessionID != f.SessionID || !bytes.Equal(id.KEMPublicKey, f.KEMPublicKey) || !bytes.Equal(id.DSAPublicKey, f.DSAPublicKey) {
		return nil, fmt.Errorf("%w: public keys do not match the sealed secret", ErrInvalidIdentityFile)
	}
	return id, nil
}

// LoadPublicIdentity reads the public part of an identity file written by
// Save, without the passphrase: the Session ID and public keys, checked
// against each other. Nothing secret is decrypted.
func LoadPublicIdentity(path string) (*Identity, error) {
	data, err := readBounded(path)
	if err != nil {
		return nil, err
	}
	var f identityFile
	if err := json.Unmarshal(data, &f); err != nil || f.Version != identityFileVersion {
		return nil, fmt.Errorf("%w: not an identity file", ErrInvalidIdentityFile)
	}
	id, err := NewPublicIdentity(f.KEMPublicKey, f.DSAPublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidIdentityFile, err)
	}
	if id.SessionID != f.SessionID {
		return nil, fmt.Errorf("%w: Session ID does not derive from the public keys", ErrInvalidIdentityFile)
	}
	return id, nil
}

// ExportPublic returns the JSON of the public identity: Session ID and
// public keys, nothing secret. ParsePublicIdentity reads it back.
func (id *Identity) ExportPublic() ([]byte, error) {
	pub := id.PublicIdentity()
	if err := pub.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(pub, "", "  ")
}

// ParsePublicIdentity reads the JSON made by ExportPublic, checks the keys
// and that the Session ID derives from them. Secret key fields, if present,
// are refused.
func ParsePublicIdentity(data []byte) (*Identity, error) {
	var raw Identity
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: not a public identity", ErrInvalidPublicKey)
	}
	if raw.KEMSecretKey != nil || raw.DSASecretKey != nil {
		return nil, fmt.Errorf("%w: a public identity must not carry secret keys", ErrInvalidPublicKey)
	}
	id, err := NewPublicIdentity(raw.KEMPublicKey, raw.DSAPublicKey)
	if err != nil {
		return nil, err
	}
	if id.SessionID != raw.SessionID {
		return nil, fmt.Errorf("%w: does not derive from the public keys", ErrInvalidSessionID)
	}
	return id, nil
}

// writeFileAtomic writes data to a temporary file beside path, syncs it and
// renames it over path, then syncs the directory.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(perm); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
