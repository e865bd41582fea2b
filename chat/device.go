package chat

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/luxfi/session/chat/internal/limit"
	"github.com/luxfi/session/chat/internal/options"
	"github.com/luxfi/session/chat/internal/ratchet"
	"github.com/luxfi/session/chat/internal/suite"
	"github.com/luxfi/session/crypto"
)

// Device is one identity's end of the protocol on this device: its prekey
// secrets and its conversations, kept in a Store. Its methods, and those of
// its conversations, are safe for concurrent use (they take one lock).
type Device struct {
	mu       sync.Mutex
	identity *crypto.Identity
	selfID   [suite.IdentityIDSize]byte
	chainID  [32]byte
	store    Store
	rand     io.Reader
	signer   *suite.Signer
	ikem     *suite.KEMPrivate
	rec      *deviceRecord
	keys     *keyCache
	convs    map[[32]byte]*Conversation
	// clock is the latest time (Unix ms) the device was given: the times
	// callers pass in are made monotonic with it (docs/protocol.md,
	// section 2).
	clock int64
}

// NewDevice opens the device of identity (which must hold its secret keys)
// on the chain chainID, with its records in store. A store that has no
// device record yet starts empty: generate prekeys with GeneratePrekeys and
// publish them.
func NewDevice(identity *crypto.Identity, chainID [32]byte, store Store, opts ...Option) (*Device, error) {
	var cfg options.Config
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if identity == nil || identity.KEMSecretKey == nil || identity.DSASecretKey == nil {
		return nil, fmt.Errorf("%w: the device needs an identity with its secret keys", crypto.ErrInvalidSecretKey)
	}
	if err := identity.Validate(); err != nil {
		return nil, err
	}
	sid, err := crypto.ParseSessionID(identity.SessionID)
	if err != nil {
		return nil, err
	}
	signer, err := suite.NewSigner(identity.DSASecretKey, cfg.Deterministic)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", crypto.ErrInvalidSecretKey, err)
	}
	ikem, err := suite.ParseKEMPrivate(identity.KEMSecretKey)
	if err != nil || !bytes.Equal(ikem.Public, identity.KEMPublicKey) {
		return nil, fmt.Errorf("%w: ML-KEM secret key", crypto.ErrInvalidSecretKey)
	}
	d := &Device{
		identity: identity, selfID: idBytes(sid), chainID: chainID, store: store,
		rand: cfg.Rand, signer: signer, ikem: ikem,
		keys: newKeyCache(), convs: map[[32]byte]*Conversation{},
	}
	b, err := store.LoadDevice()
	switch {
	case errors.Is(err, ErrNotFound):
		d.rec = &deviceRecord{nextSigned: 1, nextOneTime: 1}
	case err != nil:
		return nil, err
	default:
		if d.rec, err = parseDeviceRecord(b); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Identity returns the device's identity.
func (d *Device) Identity() *crypto.Identity { return d.identity }

func idBytes(s crypto.SessionID) (b [suite.IdentityIDSize]byte) {
	b[0] = s.Prefix
	copy(b[1:], s.Digest[:])
	return b
}

func ms(t time.Time) int64 { return t.UnixMilli() }

// monotonic makes the caller's clock reading monotonic: a reading before
// the latest one the device was given (in this process, or signed as a
// message's time in a conversation it loaded) is replaced by that one, so
// that a clock set back never makes an expired prekey valid again, keeps a
// key past its deletion, or orders a message before an earlier one.
func (d *Device) monotonic(now time.Time) time.Time {
	if t := ms(now); t > d.clock {
		d.clock = t
		return now
	}
	return time.UnixMilli(d.clock)
}

// GeneratePrekeys makes a new signed prekey (if signed) and oneTime one-time
// prekeys, stores their secrets, and returns the public parts to publish in
// a PublishPrekeys transaction (with the upload's RetireThrough). Publish
// the upload after this returns: the secrets are committed first, so no
// published prekey lacks its secret. Secrets past their deadlines (signed
// prekeys past SignedPrekeyGrace, claimed one-time prekeys past theirs)
// are deleted.
func (d *Device) GeneratePrekeys(now time.Time, signed bool, oneTime int) (*PrekeyUpload, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now = d.monotonic(now)
	if oneTime < 0 || oneTime > limit.MaxPrekeysPerUpload {
		return nil, fmt.Errorf("%w: %d one-time prekeys in one upload, at most %d", ErrTooManyPrekeys, oneTime, limit.MaxPrekeysPerUpload)
	}
	rec := d.rec.clone()
	rec.prune(ms(now))
	if held := rec.unclaimed(); held+oneTime > limit.MaxOneTimePrekeys {
		return nil, fmt.Errorf("%w: %d unclaimed held, at most %d", ErrTooManyPrekeys, held, limit.MaxOneTimePrekeys)
	}
	up := &PrekeyUpload{RetireThrough: rec.retireThrough}
	if signed {
		var s signedSecret
		if err := suite.Read(d.rand, s.seed[:]); err != nil {
			return nil, err
		}
		k, err := suite.NewKEMFromSeed(s.seed[:])
		if err != nil {
			return nil, err
		}
		s.id, s.created = rec.nextSigned, ms(now)
		s.expires = ms(now.Add(limit.SignedPrekeyLifetime))
		rec.nextSigned++
		rec.signed = append(rec.signed, s)
		if len(rec.signed) > limit.MaxSignedPrekeys {
			rec.signed = rec.signed[len(rec.signed)-limit.MaxSignedPrekeys:]
		}
		up.SignedPrekey = &SignedPrekey{ID: s.id, ExpiresAt: time.UnixMilli(s.expires), PublicKey: k.Public}
	}
	for range oneTime {
		var o oneTimeSecret
		if err := suite.Read(d.rand, o.seed[:]); err != nil {
			return nil, err
		}
		k, err := suite.NewKEMFromSeed(o.seed[:])
		if err != nil {
			return nil, err
		}
		o.id = rec.nextOneTime
		rec.nextOneTime++
		rec.oneTime = append(rec.oneTime, o)
		up.OneTimePrekeys = append(up.OneTimePrekeys, OneTimePrekey{ID: o.id, PublicKey: k.Public})
	}
	if err := d.commitDevice(rec); err != nil {
		return nil, err
	}
	return up, nil
}

func (d *Device) commitDevice(rec *deviceRecord) error {
	if err := d.store.Commit(&Batch{Device: rec.marshal()}); err != nil {
		return err
	}
	d.rec = rec
	return nil
}

// NoteClaims records entries of the chain's claim log for this identity
// (docs/protocol.md, section 11.3): each claimed one-time prekey's secret is
// kept until a handshake uses it or until MaxSkipAge after the end of the
// session it was claimed in, whichever comes first, and no longer counts
// against MaxOneTimePrekeys. Beyond MaxClaimedPrekeys claimed secrets, the
// earliest deadlines go first. Entries for prekeys this device does not
// hold are ignored; noting a claim again keeps the earlier deadline.
func (d *Device) NoteClaims(now time.Time, claims []ClaimedPrekey) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	now = d.monotonic(now)
	rec := d.rec.clone()
	changed := false
	for _, c := range claims {
		deadline := max(ms(c.SessionEnd.Add(limit.MaxSkipAge)), 1)
		for i := range rec.oneTime {
			o := &rec.oneTime[i]
			if o.id == c.ID && (o.deadline == 0 || deadline < o.deadline) {
				o.deadline, changed = deadline, true
			}
		}
	}
	if rec.prune(ms(now)) {
		changed = true
	}
	if !changed {
		return nil
	}
	return d.commitDevice(rec)
}

// RetireOneTimePrekeys retires every one-time prekey this device has
// published: their unclaimed secrets are deleted, and the next upload's
// RetireThrough makes the chain remove them (docs/protocol.md, section
// 11.3). Do it after a suspected compromise, with a new signed prekey and a
// Reset of every pair. Claimed secrets stay until their handshakes or
// deadlines.
func (d *Device) RetireOneTimePrekeys() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.rec.clone()
	rec.retireThrough = rec.nextOneTime - 1
	rec.oneTime = slices.DeleteFunc(rec.oneTime, func(o oneTimeSecret) bool { return o.deadline == 0 })
	return d.commitDevice(rec)
}

// ResumePrekeyIDs makes a device that replaced a lost one continue the
// identity's prekey IDs above the highest the chain has (IDs are never
// reused: the chain refuses them), and retire every one-time prekey of the
// lost device with the next upload (docs/protocol.md, section 10.5).
func (d *Device) ResumePrekeyIDs(highestSigned, highestOneTime uint32) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if highestSigned == ^uint32(0) || highestOneTime == ^uint32(0) {
		return fmt.Errorf("%w: prekey IDs exhausted", ErrTooManyPrekeys)
	}
	rec := d.rec.clone()
	rec.nextSigned = max(rec.nextSigned, highestSigned+1)
	rec.nextOneTime = max(rec.nextOneTime, highestOneTime+1)
	rec.retireThrough = max(rec.retireThrough, highestOneTime)
	return d.commitDevice(rec)
}

// PrekeyStatus describes the prekeys the device holds, so that a caller can
// decide to publish new ones (a new signed prekey some days before the
// current one expires; one-time prekeys when few are left unclaimed on
// chain).
func (d *Device) PrekeyStatus() PrekeyStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := PrekeyStatus{NextOneTimePrekeyID: d.rec.nextOneTime}
	st.OneTimePrekeys = d.rec.unclaimed()
	st.ClaimedOneTimePrekeys = len(d.rec.oneTime) - st.OneTimePrekeys
	if n := len(d.rec.signed); n > 0 {
		s := d.rec.signed[n-1]
		st.SignedPrekeyID, st.SignedPrekeyExpiresAt = s.id, time.UnixMilli(s.expires)
	}
	return st
}

// DeleteConversation deletes the protocol state and the outbox of a session
// (its archive stays): do it once the session is closed or expired and
// MaxSkipAge has passed (docs/protocol.md, section 9). A Conversation of it
// made before must not be used again.
func (d *Device) DeleteConversation(session [32]byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	out, err := d.store.LoadOutbox(session)
	if err != nil {
		return err
	}
	b := &Batch{Conversations: []ConversationWrite{{Session: session}}}
	for _, r := range out {
		b.Outbox = append(b.Outbox, RecordWrite{Session: session, ID: r.ID})
	}
	if err := d.store.Commit(b); err != nil {
		return err
	}
	delete(d.convs, session)
	return nil
}

func (r *deviceRecord) clone() *deviceRecord {
	c := *r
	c.signed = slices.Clone(r.signed)
	c.oneTime = slices.Clone(r.oneTime)
	return &c
}

// unclaimed counts the one-time prekey secrets no claim was noted for.
func (r *deviceRecord) unclaimed() int {
	n := 0
	for _, o := range r.oneTime {
		if o.deadline == 0 {
			n++
		}
	}
	return n
}

// prune deletes signed prekey secrets past their grace period and claimed
// one-time prekey secrets past their deadlines, then the earliest-deadline
// claimed ones beyond MaxClaimedPrekeys. It reports whether it deleted any.
func (r *deviceRecord) prune(now int64) bool {
	before := len(r.signed) + len(r.oneTime)
	grace := limit.SignedPrekeyGrace.Milliseconds()
	r.signed = slices.DeleteFunc(r.signed, func(s signedSecret) bool { return now > s.expires+grace })
	r.oneTime = slices.DeleteFunc(r.oneTime, func(o oneTimeSecret) bool { return o.deadline != 0 && now > o.deadline })
	if claimed := len(r.oneTime) - r.unclaimed(); claimed > limit.MaxClaimedPrekeys {
		var order []oneTimeSecret
		for _, o := range r.oneTime {
			if o.deadline != 0 {
				order = append(order, o)
			}
		}
		slices.SortFunc(order, func(a, b oneTimeSecret) int {
			if a.deadline != b.deadline {
				return cmp.Compare(a.deadline, b.deadline)
			}
			return cmp.Compare(a.id, b.id)
		})
		drop := map[uint32]bool{}
		for _, o := range order[:claimed-limit.MaxClaimedPrekeys] {
			drop[o.id] = true
		}
		r.oneTime = slices.DeleteFunc(r.oneTime, func(o oneTimeSecret) bool { return drop[o.id] })
	}
	return len(r.signed)+len(r.oneTime) != before
}

// devicePrekeys gives the ratchet the device's prekey secrets.
type devicePrekeys struct {
	d   *Device
	rec *deviceRecord
	now int64
}

func (p devicePrekeys) Signed(id uint32) *suite.KEMPrivate {
	for i := range p.rec.signed {
		s := &p.rec.signed[i]
		if s.id == id && p.now <= s.expires+limit.SignedPrekeyGrace.Milliseconds() {
			k, err := p.d.keys.Private(&s.seed)
			if err != nil {
				return nil
			}
			return k
		}
	}
	return nil
}

func (p devicePrekeys) OneTime(id uint32) *suite.KEMPrivate {
	for i := range p.rec.oneTime {
		o := &p.rec.oneTime[i]
		if o.id == id {
			k, err := p.d.keys.Private(&o.seed)
			if err != nil {
				return nil
			}
			return k
		}
	}
	return nil
}

var _ ratchet.Prekeys = devicePrekeys{}

// keyCache memoizes ML-KEM key parsing (a key generation from a seed, a
// matrix expansion for a public key): bounded, first in first out, keyed by
// the bytes themselves. It is used under the device lock.
type keyCache struct {
	private map[[suite.KEMSeedSize]byte]*suite.KEMPrivate
	public  map[string]*suite.KEMPublic
	order   []any // [64]byte or string, oldest first
	// ratchet holds the ratchet key pairs this device made, by the session
	// whose state holds their seeds: forget drops each once that state no
	// longer does, so that a deleted ratchet secret does not stay in memory.
	ratchet map[[suite.KEMSeedSize]byte][32]byte
}

const keyCacheSize = 256

func newKeyCache() *keyCache {
	return &keyCache{private: map[[suite.KEMSeedSize]byte]*suite.KEMPrivate{}, public: map[string]*suite.KEMPublic{},
		ratchet: map[[suite.KEMSeedSize]byte][32]byte{}}
}

func (c *keyCache) remember(k any) {
	c.order = append(c.order, k)
	if len(c.order) > keyCacheSize {
		switch old := c.order[0].(type) {
		case [suite.KEMSeedSize]byte:
			delete(c.private, old)
			delete(c.ratchet, old)
		case string:
			delete(c.public, old)
		}
		c.order = c.order[1:]
	}
}

// Private implements ratchet.Keys.
func (c *keyCache) Private(seed *[suite.KEMSeedSize]byte) (*suite.KEMPrivate, error) {
	if k, ok := c.private[*seed]; ok {
		return k, nil
	}
	k, err := suite.NewKEMFromSeed(seed[:])
	if err != nil {
		return nil, err
	}
	c.private[*seed] = k
	c.remember(*seed)
	return k, nil
}

// Public implements ratchet.Keys.
func (c *keyCache) Public(ek []byte) (*suite.KEMPublic, error) {
	if k, ok := c.public[string(ek)]; ok {
		return k, nil
	}
	k, err := suite.ParseKEMPublic(ek)
	if err != nil {
		return nil, err
	}
	s := string(ek)
	c.public[s] = k
	c.remember(s)
	return k, nil
}

// Ephemeral implements ratchet.Keys: a peer's ratchet key is stepped
// against once (again only after MaxChainMessages messages to a silent
// peer), so keeping it parsed would only push out keys that are used again
// (this device's ratchet key pairs, which its peers' answers need).
func (c *keyCache) Ephemeral(ek []byte) (*suite.KEMPublic, error) {
	if k, ok := c.public[string(ek)]; ok {
		return k, nil
	}
	return suite.ParseKEMPublic(ek)
}

// put adds a ratchet key pair made by this device for session, so that
// decapsulating with it later costs no key generation.
func (c *keyCache) put(session [32]byte, seed *[suite.KEMSeedSize]byte, k *suite.KEMPrivate) {
	if _, ok := c.private[*seed]; !ok {
		c.private[*seed] = k
		c.remember(*seed)
	}
	c.ratchet[*seed] = session
}

// forget drops the ratchet key pairs of session whose seeds its committed
// state no longer holds.
func (c *keyCache) forget(session [32]byte, st *ratchet.State) {
	dropped := false
	for seed, s := range c.ratchet {
		if s == session && !st.HasSeed(&seed) {
			delete(c.ratchet, seed)
			delete(c.private, seed)
			dropped = true
		}
	}
	if dropped {
		c.order = slices.DeleteFunc(c.order, func(k any) bool {
			seed, ok := k.([suite.KEMSeedSize]byte)
			return ok && c.private[seed] == nil
		})
	}
}
