package service

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/luxfi/ids"
	"golang.org/x/crypto/blake2b"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/crashpoint"
)

// What a Messenger keeps beside the chat store (package chat keeps the
// ratchets, the outbox and the archive): per session the sequence number
// it has read the session through, per peer the newest signed prekey ID it
// verified (so that a node cannot serve an older one afterwards), and, per
// envelope in the outbox, the signed transaction that carries it, written
// before the transaction leaves the device, so that a resend after a crash
// sends the same transaction and a transaction that may still land is never
// replaced by another. Nothing here is secret beyond what the chain
// shows, but it is sealed anyway (XChaCha20-Poly1305 under a key derived
// from the identity's secret key, each record bound to its name), so the
// directory reveals only its size and file count without the identity.

// sideStore keeps named records. Get returns errNoRecord for a missing one.
type sideStore interface {
	Get(name string) ([]byte, error)
	Put(name string, data []byte) error
	Delete(name string) error
	// List returns the names that start with prefix, sorted.
	List(prefix string) ([]string, error)
}

var errNoRecord = errors.New("service: no such messenger record")

// memSide is a sideStore in memory.
type memSide struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMemSide() *memSide { return &memSide{m: map[string][]byte{}} }

func (s *memSide) Get(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return nil, errNoRecord
	}
	return append([]byte(nil), b...), nil
}

func (s *memSide) Put(name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = append([]byte(nil), data...)
	return nil
}

func (s *memSide) Delete(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, name)
	return nil
}

func (s *memSide) List(prefix string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.m {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out, nil
}

// dirSide is a sideStore in a directory: one sealed file per record,
// written to a synced temporary file and renamed into place.
type dirSide struct {
	dir  string
	aead interface {
		Seal(dst, nonce, plaintext, ad []byte) []byte
		Open(dst, nonce, ciphertext, ad []byte) ([]byte, error)
	}
}

// Labels of the side store's key and record binding.
const (
	sideKeyLabel    = "luxfi/session/v1/messenger/state-key"
	sideRecordLabel = "luxfi/session/v1/messenger/record"
	sideFileVersion = 1
	sideTempPrefix  = ".tmp-messenger-"
	maxSideFileSize = 1 << 20 // a signed transaction is at most 80 KiB
)

// messengerDir is the directory of the Messenger's records inside a chat
// store directory.
func messengerDir(storeDir string) string { return filepath.Join(storeDir, "messenger") }

func openDirSide(dir string, id *crypto.Identity) (*dirSide, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	h, err := blake2b.New256(nil)
	if err != nil {
		return nil, err
	}
	h.Write([]byte(sideKeyLabel))
	h.Write(id.KEMSecretKey)
	key := h.Sum(nil)
	aead, err := chacha20poly1305.NewX(key)
	clear(key)
	if err != nil {
		return nil, err
	}
	s := &dirSide{dir: dir, aead: aead}
	// Temporary files a crash left behind.
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), sideTempPrefix) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return s, nil
}

func (s *dirSide) ad(name string) []byte {
	return append([]byte(sideRecordLabel+"\x00"), name...)
}

func validSideName(name string) bool {
	if name == "" || len(name) > 200 || strings.HasPrefix(name, ".") {
		return false
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

func (s *dirSide) Get(name string) ([]byte, error) {
	if !validSideName(name) {
		return nil, fmt.Errorf("service: bad messenger record name %q", name)
	}
	f, err := os.Open(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errNoRecord
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSideFileSize+1))
	if err != nil {
		return nil, err
	}
	if n := len(b); n > maxSideFileSize || n < 1+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || b[0] != sideFileVersion {
		return nil, fmt.Errorf("service: messenger record %s is corrupted", name)
	}
	nonce := b[1 : 1+chacha20poly1305.NonceSizeX]
	pt, err := s.aead.Open(nil, nonce, b[1+chacha20poly1305.NonceSizeX:], s.ad(name))
	if err != nil {
		return nil, fmt.Errorf("service: messenger record %s does not open (modified, or written by another identity)", name)
	}
	return pt, nil
}

func (s *dirSide) Put(name string, data []byte) error {
	if !validSideName(name) {
		return fmt.Errorf("service: bad messenger record name %q", name)
	}
	crashpoint.Hit("before writing " + name)
	defer crashpoint.Hit("after writing " + name)
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(data)+chacha20poly1305.Overhead)
	out[0] = sideFileVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return err
	}
	out = s.aead.Seal(out, out[1:], data, s.ad(name))
	f, err := os.CreateTemp(s.dir, sideTempPrefix+"*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(out)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(s.dir, name))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(s.dir)
}

func (s *dirSide) Delete(name string) error {
	if !validSideName(name) {
		return fmt.Errorf("service: bad messenger record name %q", name)
	}
	crashpoint.Hit("before deleting " + name)
	defer crashpoint.Hit("after deleting " + name)
	err := os.Remove(filepath.Join(s.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return syncDir(s.dir)
}

func (s *dirSide) List(prefix string) ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasPrefix(e.Name(), prefix) && validSideName(e.Name()) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// sessionState is what a Messenger keeps per session.
type sessionState struct {
	// Read is the sequence number the session was read through.
	Read uint64 `json:"read"`
	// Protocol, when set, is the sequence number after which the session
	// uses the protocol (its first envelope of the protocol this device
	// sent or opened; 0 for a session created with the protocol): Seal
	// envelopes after it are refused (docs/protocol.md section 16).
	Protocol *uint64 `json:"protocol,omitempty"`
	// Retry holds the sequence numbers of messages whose chain or
	// handshake had not been seen when they were delivered (lost, or
	// withheld by the node), retried after other messages open
	// (docs/protocol.md section 10.3), at most maxRetry.
	Retry []uint64 `json:"retry,omitempty"`
	// Seals maps the Seal envelopes opened in the session (the first 16
	// bytes of each one's BLAKE2b-256, hex) to their sequence numbers, at
	// most maxSeals (the lowest sequence numbers go first): Seal has no
	// replay protection of its own, and a node listing one of them again
	// at another position is refused (docs/protocol.md section 16).
	Seals map[string]uint64 `json:"seals,omitempty"`
}

// maxRetry bounds a session's retry set (the oldest go first).
const maxRetry = 256

// maxSeals bounds the Seal envelopes a session remembers.
const maxSeals = 1024

// sealKey names a Seal envelope in sessionState.Seals.
func sealKey(envelope []byte) string {
	h := blake2b.Sum256(envelope)
	return hex.EncodeToString(h[:16])
}

// noteSeal records the Seal envelope opened at seq and returns the other
// sequence number it was opened at before, or 0.
func (ss *sessionState) noteSeal(envelope []byte, seq uint64) (replayOf uint64) {
	k := sealKey(envelope)
	if prev, ok := ss.Seals[k]; ok && prev != seq {
		return prev
	}
	if ss.Seals == nil {
		ss.Seals = map[string]uint64{}
	}
	ss.Seals[k] = seq
	if len(ss.Seals) > maxSeals {
		lowK, low := "", uint64(0)
		for k, v := range ss.Seals {
			if lowK == "" || v < low {
				lowK, low = k, v
			}
		}
		delete(ss.Seals, lowK)
	}
	return 0
}

// messengerState is the small record ("state") of a Messenger.
type messengerState struct {
	Version int `json:"version"`
	// Chain is the chain (CB58) the Messenger first opened on: its
	// sessions, pins and ratchets belong to it, and a node that names
	// another chain later is refused (a state from before the field
	// adopts the chain of its next open).
	Chain string `json:"chain,omitempty"`
	// Sessions: per session (CB58).
	Sessions map[string]*sessionState `json:"sessions"`
	// Pins: per peer (Session ID), the newest signed prekey ID verified.
	Pins map[string]uint32 `json:"pins"`
	// PrekeysChecked is when the chain's count of this identity's
	// prekeys was last checked (Unix ms).
	PrekeysChecked int64 `json:"prekeysChecked"`
	// HeldAtCheck is how many one-time prekey secrets the device held
	// then: fewer now means a handshake used one.
	HeldAtCheck int `json:"heldAtCheck"`
	// ClaimsRead is the position in the chain's claim log of this
	// identity's prekeys (getClaims) read through.
	ClaimsRead uint64 `json:"claimsRead,omitempty"`
}

const (
	stateName    = "state"
	stateVersion = 1
	// maxPins bounds the pinned peers (the oldest entries are not
	// tracked: the map is cut when it grows past the bound).
	maxPins = 100_000
)

func loadState(s sideStore) (*messengerState, error) {
	b, err := s.Get(stateName)
	if errors.Is(err, errNoRecord) {
		return &messengerState{Version: stateVersion, Sessions: map[string]*sessionState{}, Pins: map[string]uint32{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var st messengerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("service: messenger state: %w", err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("service: messenger state version %d, this build reads %d", st.Version, stateVersion)
	}
	if st.Sessions == nil {
		st.Sessions = map[string]*sessionState{}
	}
	if st.Pins == nil {
		st.Pins = map[string]uint32{}
	}
	return &st, nil
}

// session returns the state of a session, created empty.
func (st *messengerState) session(id ids.ID) *sessionState {
	k := id.String()
	ss := st.Sessions[k]
	if ss == nil {
		ss = &sessionState{}
		st.Sessions[k] = ss
	}
	return ss
}

// read returns the sequence number a session was read through.
func (st *messengerState) read(id ids.ID) uint64 {
	if ss := st.Sessions[id.String()]; ss != nil {
		return ss.Read
	}
	return 0
}

// useProtocol records that the session uses the protocol after seq,
// unless it did from an earlier point.
func (ss *sessionState) useProtocol(seq uint64) {
	if ss.Protocol == nil || seq < *ss.Protocol {
		ss.Protocol = &seq
	}
}

// sealRefused reports whether a Seal envelope at seq is refused.
func (ss *sessionState) sealRefused(seq uint64) bool {
	return ss != nil && ss.Protocol != nil && seq > *ss.Protocol
}

func (st *messengerState) save(s sideStore) error {
	if len(st.Pins) > maxPins {
		st.Pins = map[string]uint32{}
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return s.Put(stateName, b)
}

// txRecordName names the record of the signed transaction of an outbox
// envelope: "tx-<session hex>-<message ID hex>".
func txRecordName(session ids.ID, id chat.EnvelopeID) string {
	return txRecordPrefix(session) + id.String()
}

func txRecordPrefix(session ids.ID) string {
	return "tx-" + hex.EncodeToString(session[:]) + "-"
}
