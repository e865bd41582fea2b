package chat

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"

	"github.com/luxfi/session/chat/internal/codec"
	"github.com/luxfi/session/chat/internal/suite"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// FileStore is a Store in a directory, encrypted at rest to the standard of
// the identity file: a random 32-byte data key, sealed in the key file with
// XChaCha20-Poly1305 under scrypt(passphrase); every record sealed under the
// data key, bound to its path. Files are written to a synced temporary file
// and renamed into place; a commit of several records goes through a
// journal, so a crash at any point leaves either the whole commit or none of
// it once the store is opened again. A store is locked (flock) while open.
//
// Layout (LLM.md has the byte formats):
//
//	key                      the key file (JSON)
//	lock                     held while open
//	journal                  only during a commit of several records
//	device                   the device record
//	s/<session hex>/state    a session's state
//	s/<session hex>/o/<id>   its outbox
//	s/<session hex>/a/<id>   its archive
type FileStore struct {
	mu     sync.Mutex
	dir    string
	key    [32]byte
	fsys   fileSystem
	lock   io.Closer
	failed error // set by a failed commit: reopen the store to recover
	logN   int   // scrypt work factor of a store created now (0: storeLogN)
}

var _ Store = (*FileStore)(nil)

// StoreDir is the conventional directory of the store of the identity file
// at identityPath: beside it, with ".chat" appended.
func StoreDir(identityPath string) string { return identityPath + ".chat" }

// Store file constants.
const (
	storeFileVersion = 1
	storeKeyLabel    = "luxfi/session/v1/chat/store-key"
	storeRecordLabel = "luxfi/session/v1/chat/store-record"
	storeSaltSize    = 32
	maxStoreFileSize = 1 << 26
	journalName      = "journal"
	keyName          = "key"
)

// scrypt parameters of new stores: those of the identity file. Tests lower
// storeLogN, and the crash test, which opens stores thousands of times,
// replaces scryptKey.
var (
	storeLogN = defaultStoreLogN
	scryptKey = scrypt.Key
)

// defaultStoreLogN is the identity file's work factor (crypto.Identity.Save
// writes N = 2^17, r = 8, p = 1); a test holds the two equal.
const defaultStoreLogN = 17

// OpenFileStore opens the store in dir with passphrase, creating it (and
// dir, mode 0700) if it does not exist. A wrong passphrase gives
// ErrWrongPassphrase; a store another process holds, ErrStoreLocked. An
// interrupted commit is completed or discarded here.
func OpenFileStore(dir, passphrase string) (*FileStore, error) {
	return openFileStore(dir, passphrase, osFS{})
}

// OpenFileStoreWorkFactor is OpenFileStore with the scrypt work factor
// (N = 2^logN, r = 8, p = 1; logN 10..22) of a store it creates: a store
// beside an identity file takes that file's, so guessing the passphrase of
// either costs the same. An existing store keeps the parameters it was
// written with.
func OpenFileStoreWorkFactor(dir, passphrase string, logN int) (*FileStore, error) {
	if logN < 10 || logN > 22 {
		return nil, fmt.Errorf("chat: scrypt work factor %d outside 10..22", logN)
	}
	return openFileStoreLogN(dir, passphrase, osFS{}, logN)
}

func openFileStore(dir, passphrase string, fsys fileSystem) (*FileStore, error) {
	return openFileStoreLogN(dir, passphrase, fsys, 0)
}

func openFileStoreLogN(dir, passphrase string, fsys fileSystem, logN int) (*FileStore, error) {
	if passphrase == "" {
		return nil, fmt.Errorf("%w: empty passphrase", ErrWrongPassphrase)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := fsys.MkdirAll(dir); err != nil {
		return nil, err
	}
	lock, err := fsys.Lock(filepath.Join(dir, "lock"))
	if err != nil {
		return nil, err
	}
	s := &FileStore{dir: dir, fsys: fsys, lock: lock, logN: logN}
	if err := s.open(passphrase); err != nil {
		lock.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the store's lock.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

type storeKeyFile struct {
	Version int      `json:"version"`
	KDF     storeKDF `json:"kdf"`
	Nonce   []byte   `json:"nonce"`
	Sealed  []byte   `json:"sealed"`
}

type storeKDF struct {
	Name string `json:"name"`
	LogN int    `json:"logN"`
	R    int    `json:"r"`
	P    int    `json:"p"`
	Salt []byte `json:"salt"`
}

func (k *storeKeyFile) ad() []byte {
	var b []byte
	for _, v := range []int{k.Version, k.KDF.LogN, k.KDF.R, k.KDF.P} {
		b = binary.BigEndian.AppendUint64(b, uint64(v))
	}
	h := suite.H32(storeKeyLabel, b, []byte(k.KDF.Name), k.KDF.Salt)
	return h[:]
}

func (s *FileStore) open(passphrase string) error {
	keyPath := filepath.Join(s.dir, keyName)
	data, err := s.fsys.ReadFile(keyPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return s.create(keyPath, passphrase)
	case err != nil:
		return err
	}
	kf, err := parseStoreKeyFile(data)
	if err != nil {
		return err
	}
	pk, err := scryptKey([]byte(passphrase), kf.KDF.Salt, 1<<kf.KDF.LogN, kf.KDF.R, kf.KDF.P, 32)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	defer clear(pk)
	aead, _ := chacha20poly1305.NewX(pk)
	key, err := aead.Open(nil, kf.Nonce, kf.Sealed, kf.ad())
	if err != nil {
		return ErrWrongPassphrase
	}
	copy(s.key[:], key)
	clear(key)
	return s.recover()
}

// parseStoreKeyFile parses and checks a key file, before any work: its
// scrypt parameters are bounded as the identity file's are.
func parseStoreKeyFile(data []byte) (*storeKeyFile, error) {
	var kf storeKeyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil || dec.More() {
		return nil, fmt.Errorf("%w: store key file", ErrCorruptState)
	}
	switch {
	case kf.Version != storeFileVersion, kf.KDF.Name != "scrypt",
		kf.KDF.LogN < 10 || kf.KDF.LogN > 22 || kf.KDF.R < 1 || kf.KDF.R > 32 || kf.KDF.P < 1 || kf.KDF.P > 16,
		128*kf.KDF.R<<kf.KDF.LogN > 256<<20, kf.KDF.P*kf.KDF.R<<kf.KDF.LogN > 8<<22,
		len(kf.KDF.Salt) != storeSaltSize || len(kf.Nonce) != chacha20poly1305.NonceSizeX,
		len(kf.Sealed) != 32+chacha20poly1305.Overhead:
		return nil, fmt.Errorf("%w: store key file parameters", ErrCorruptState)
	}
	return &kf, nil
}

func (s *FileStore) create(keyPath, passphrase string) error {
	kf := storeKeyFile{
		Version: storeFileVersion,
		KDF:     storeKDF{Name: "scrypt", LogN: cmp.Or(s.logN, storeLogN), R: 8, P: 1, Salt: make([]byte, storeSaltSize)},
		Nonce:   make([]byte, chacha20poly1305.NonceSizeX),
	}
	if _, err := rand.Read(kf.KDF.Salt); err != nil {
		return err
	}
	if _, err := rand.Read(kf.Nonce); err != nil {
		return err
	}
	if _, err := rand.Read(s.key[:]); err != nil {
		return err
	}
	pk, err := scryptKey([]byte(passphrase), kf.KDF.Salt, 1<<kf.KDF.LogN, kf.KDF.R, kf.KDF.P, 32)
	if err != nil {
		return err
	}
	defer clear(pk)
	aead, _ := chacha20poly1305.NewX(pk)
	kf.Sealed = aead.Seal(nil, kf.Nonce, s.key[:], kf.ad())
	data, err := json.MarshalIndent(&kf, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.fsys, keyPath, data)
}

// recover completes an interrupted commit and removes temporary files.
func (s *FileStore) recover() error {
	jp := filepath.Join(s.dir, journalName)
	data, err := s.fsys.ReadFile(jp)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		ops, err := s.parseJournal(data)
		if err != nil {
			return err
		}
		if err := s.apply(ops); err != nil {
			return err
		}
		if err := s.fsys.Remove(jp); err != nil {
			return err
		}
		if err := s.fsys.SyncDir(s.dir); err != nil {
			return err
		}
	}
	return s.removeTemps(s.dir)
}

// removeTemps deletes the temporary files an interrupted write left, in
// every directory the store writes to.
func (s *FileStore) removeTemps(dir string) error {
	entries, err := s.fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		switch {
		case e.dir:
			if err := s.removeTemps(filepath.Join(dir, e.name)); err != nil {
				return err
			}
		case strings.HasPrefix(e.name, tempPrefix):
			if err := s.fsys.Remove(filepath.Join(dir, e.name)); err != nil {
				return err
			}
		}
	}
	return nil
}

// seal encrypts a record for the relative path rel.
func (s *FileStore) seal(rel string, data []byte) ([]byte, error) {
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(data)+chacha20poly1305.Overhead)
	out[0] = storeFileVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	ad := suite.H32(storeRecordLabel, []byte(rel))
	aead, _ := chacha20poly1305.NewX(s.key[:])
	return aead.Seal(out, out[1:1+chacha20poly1305.NonceSizeX], data, ad[:]), nil
}

func (s *FileStore) unseal(rel string, file []byte) ([]byte, error) {
	if len(file) < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || file[0] != storeFileVersion {
		return nil, fmt.Errorf("%w: %s", ErrCorruptState, rel)
	}
	ad := suite.H32(storeRecordLabel, []byte(rel))
	aead, _ := chacha20poly1305.NewX(s.key[:])
	out, err := aead.Open(nil, file[1:1+chacha20poly1305.NonceSizeX], file[1+chacha20poly1305.NonceSizeX:], ad[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %s does not authenticate", ErrCorruptState, rel)
	}
	return out, nil
}

func (s *FileStore) read(rel string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return nil, s.failed
	}
	file, err := s.fsys.ReadFile(filepath.Join(s.dir, filepath.FromSlash(rel)))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if len(file) > maxStoreFileSize {
		return nil, fmt.Errorf("%w: %s too large", ErrCorruptState, rel)
	}
	return s.unseal(rel, file)
}

func sessionDir(session [32]byte) string { return "s/" + hex.EncodeToString(session[:]) }

func (s *FileStore) list(relDir string) ([]Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return nil, s.failed
	}
	entries, err := s.fsys.ReadDir(filepath.Join(s.dir, filepath.FromSlash(relDir)))
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, e := range entries {
		n := e.name
		if e.dir {
			continue
		}
		var id [16]byte
		if b, err := hex.DecodeString(n); err != nil || len(b) != len(id) {
			continue // temporary files and strangers
		} else {
			copy(id[:], b)
		}
		rel := relDir + "/" + n
		file, err := s.fsys.ReadFile(filepath.Join(s.dir, filepath.FromSlash(rel)))
		if err != nil {
			return nil, err
		}
		data, err := s.unseal(rel, file)
		if err != nil {
			return nil, err
		}
		out = append(out, Record{ID: id, Data: data})
	}
	return out, nil
}

// LoadDevice implements DeviceStore.
func (s *FileStore) LoadDevice() ([]byte, error) { return s.read("device") }

// LoadConversation implements ConversationStore.
func (s *FileStore) LoadConversation(session [32]byte) ([]byte, error) {
	return s.read(sessionDir(session) + "/state")
}

// LoadOutbox implements OutboxStore.
func (s *FileStore) LoadOutbox(session [32]byte) ([]Record, error) {
	return s.list(sessionDir(session) + "/o")
}

// LoadOutboxRecord implements OutboxStore.
func (s *FileStore) LoadOutboxRecord(session [32]byte, id EnvelopeID) ([]byte, error) {
	return s.read(sessionDir(session) + "/o/" + id.String())
}

// LoadArchive implements ArchiveStore.
func (s *FileStore) LoadArchive(session [32]byte) ([]Record, error) {
	return s.list(sessionDir(session) + "/a")
}

// LoadArchiveRecord implements ArchiveStore.
func (s *FileStore) LoadArchiveRecord(session [32]byte, id MessageID) ([]byte, error) {
	return s.read(sessionDir(session) + "/a/" + id.String())
}

// fileOp puts a file (data not nil: the sealed file) or deletes it.
type fileOp struct {
	rel  string
	data []byte
}

// Commit implements Store. After a failed commit the store refuses every
// call: reopen it, which completes or discards the commit.
func (s *FileStore) Commit(b *Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed != nil {
		return s.failed
	}
	if s.lock == nil {
		return fmt.Errorf("chat: file store closed")
	}
	var ops []fileOp
	put := func(rel string, data []byte) error {
		if data == nil {
			ops = append(ops, fileOp{rel: rel})
			return nil
		}
		sealed, err := s.seal(rel, data)
		if err != nil {
			return err
		}
		ops = append(ops, fileOp{rel: rel, data: sealed})
		return nil
	}
	if b.Device != nil {
		if err := put("device", b.Device); err != nil {
			return err
		}
	}
	for _, c := range b.Conversations {
		if err := put(sessionDir(c.Session)+"/state", c.Data); err != nil {
			return err
		}
	}
	for _, w := range b.Outbox {
		if err := put(sessionDir(w.Session)+"/o/"+hex.EncodeToString(w.ID[:]), w.Data); err != nil {
			return err
		}
	}
	for _, w := range b.Archive {
		if err := put(sessionDir(w.Session)+"/a/"+hex.EncodeToString(w.ID[:]), w.Data); err != nil {
			return err
		}
	}
	if err := s.commit(ops); err != nil {
		s.failed = fmt.Errorf("chat: file store commit failed, reopen the store: %w", err)
		return s.failed
	}
	return nil
}

func (s *FileStore) commit(ops []fileOp) error {
	if len(ops) == 0 {
		return nil
	}
	if len(ops) == 1 && ops[0].data != nil {
		return s.apply(ops) // one atomic rename: no journal needed
	}
	journal, err := s.marshalJournal(ops)
	if err != nil {
		return err
	}
	jp := filepath.Join(s.dir, journalName)
	if err := writeAtomic(s.fsys, jp, journal); err != nil {
		return err
	}
	if err := s.apply(ops); err != nil {
		return err
	}
	if err := s.fsys.Remove(jp); err != nil {
		return err
	}
	return s.fsys.SyncDir(s.dir)
}

// apply performs ops; it is idempotent, so recovery can repeat it.
func (s *FileStore) apply(ops []fileOp) error {
	for _, op := range ops {
		name := filepath.Join(s.dir, filepath.FromSlash(op.rel))
		if op.data == nil {
			if err := s.fsys.Remove(name); err != nil {
				return err
			}
			if err := s.fsys.SyncDir(filepath.Dir(name)); err != nil {
				return err
			}
			continue
		}
		if err := s.fsys.MkdirAll(filepath.Dir(name)); err != nil {
			return err
		}
		if err := writeAtomic(s.fsys, name, op.data); err != nil {
			return err
		}
	}
	return nil
}

// The journal: version u8 | nonce [24] | XChaCha20-Poly1305(data key, nonce,
// count u32 | count × (rel bytes | sealed file bytes, empty to delete)).
func (s *FileStore) marshalJournal(ops []fileOp) ([]byte, error) {
	var p []byte
	p = binary.BigEndian.AppendUint32(p, uint32(len(ops)))
	for _, op := range ops {
		p = codec.AppendVarBytes(p, []byte(op.rel))
		p = codec.AppendBool(p, op.data != nil)
		p = codec.AppendVarBytes(p, op.data)
	}
	return s.seal(journalName, p)
}

func (s *FileStore) parseJournal(file []byte) ([]fileOp, error) {
	p, err := s.unseal(journalName, file)
	if err != nil {
		return nil, err
	}
	r := codec.NewReader(p)
	n := int(r.U32())
	r.Check(n <= 4096)
	var ops []fileOp
	for i := 0; i < n && r.Err() == nil; i++ {
		rel := string(r.VarBytes(1024))
		isPut := r.Bool()
		data := r.VarBytes(maxStoreFileSize)
		r.Check(validRel(rel))
		if !isPut {
			data = nil
		} else if data == nil {
			data = []byte{}
		}
		ops = append(ops, fileOp{rel: rel, data: data})
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: journal", ErrCorruptState)
	}
	return ops, nil
}

// validRel accepts only the paths the store writes.
func validRel(rel string) bool {
	if rel == "device" {
		return true
	}
	parts := strings.Split(rel, "/")
	hexOK := func(s string, n int) bool {
		b, err := hex.DecodeString(s)
		return err == nil && len(b) == n && hex.EncodeToString(b) == s
	}
	switch {
	case len(parts) == 3 && parts[0] == "s" && parts[2] == "state":
		return hexOK(parts[1], 32)
	case len(parts) == 4 && parts[0] == "s" && (parts[2] == "o" || parts[2] == "a"):
		return hexOK(parts[1], 32) && hexOK(parts[3], 16)
	}
	return false
}
