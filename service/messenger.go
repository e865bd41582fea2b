package service

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/luxfi/ids"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/internal/crashpoint"
	"github.com/luxfi/session/vm/tx"
)

// Messenger is one identity's messaging client: sessions with forward
// secrecy and post-compromise security (the protocol of package chat,
// docs/protocol.md) over a node it does not trust. It holds the identity,
// a chat.Device over its store (encrypted at rest beside the identity file,
// OpenMessenger) and a Client, and does what an app would otherwise have to:
//
//   - Register publishes the identity and its prekeys; prekeys are
//     replenished when they run low (ReplenishPrekeys, also run by Send,
//     Read and Inbox at most once an hour).
//   - CreateSession fetches and verifies the participants' prekey bundles,
//     claims their one-time prekeys and creates the session.
//   - Send encrypts, signs and submits the envelopes, waits for their
//     blocks and confirms them; after a crash it resends the outbox as the
//     same transactions; a transaction that died (refused, dropped, its
//     nonce taken) is abandoned and its text sent again with fresh keys.
//   - Read and Inbox verify every delivery against the signed SendMessage
//     transaction (getTx) and open it; what was opened before comes from the
//     archive (History), since its keys are deleted.
//
// Everything it uses from the node is checked against signed data: the
// participants of a session against the creator's signed CreateSession
// transaction, identity keys against their Session IDs, prekeys against the
// identity's signed PublishPrekeys transactions (and never older than one
// verified before), and a delivery's author, ciphertext and claims against
// its signed SendMessage transaction. A node that lies gets an error
// wrapping ErrUntrustedNode (or ErrIdentityMismatch) and nothing is sent.
//
// Sessions created before the protocol hold Seal envelopes: Read shows
// them (Received.Sealed), and a Messenger never sends Seal to a session.
// Channels stay on Seal (Client.Post).
//
// A Messenger is safe for concurrent use; its operations run one at a time.
// Close it to release the store (one process at a time may hold it).
type Messenger struct {
	c       *Client
	id      *crypto.Identity
	chainID ids.ID
	dev     *chat.Device
	store   chat.Store
	closer  io.Closer // the file store, or nil
	// storeLogN: WithStoreWorkFactor (read by OpenMessenger only)
	storeLogN int
	side      sideStore

	noWait      bool
	autoPrekeys bool
	onPrekeys   func(*PrekeyReport, error)

	mu    sync.Mutex
	st    *messengerState
	convs map[ids.ID]*conv
}

// conv is a verified session and this device's conversation in it.
type conv struct {
	id    ids.ID
	v     *VerifiedSession
	parts []*crypto.Identity // in chain order
	dsa   []*crypto.DSAPublicKey
	c     *chat.Conversation // nil if this identity is not a participant
}

// MessengerOption configures a Messenger.
type MessengerOption func(*Messenger)

// WithoutWaiting makes Send return once the node admitted each
// transaction, without waiting for its block (a later Send, Read or Resend
// confirms it, or resends it if it died).
func WithoutWaiting() MessengerOption { return func(m *Messenger) { m.noWait = true } }

// WithStoreWorkFactor sets the scrypt work factor (logN, 10..22) of a
// chat store OpenMessenger creates: sessionctl passes its identity file's,
// so the store beside it is as costly to guess (chat.OpenFileStoreWorkFactor).
func WithStoreWorkFactor(logN int) MessengerOption {
	return func(m *Messenger) { m.storeLogN = logN }
}

// WithoutAutoPrekeys stops Send, Read and Inbox from replenishing prekeys
// on their own; call ReplenishPrekeys instead.
func WithoutAutoPrekeys() MessengerOption { return func(m *Messenger) { m.autoPrekeys = false } }

// WithPrekeyReport sets a function that receives the outcome of each
// automatic prekey replenishment that published something or failed.
func WithPrekeyReport(f func(*PrekeyReport, error)) MessengerOption {
	return func(m *Messenger) { m.onPrekeys = f }
}

// Errors of a Messenger.
var (
	// ErrStalePrekey reports a prekey bundle whose signed prekey is older
	// than one this Messenger verified for the same identity before: a
	// node replaying a superseded bundle. It wraps ErrUntrustedNode.
	ErrStalePrekey = fmt.Errorf("%w: the signed prekey is older than one verified before", ErrUntrustedNode)
	// ErrInOutbox reports a message that was encrypted and kept in the
	// outbox but not (yet) accepted on chain, for a reason that may pass
	// (node unreachable, busy, rate limited): Resend, or the next Send,
	// sends it as the same transaction.
	ErrInOutbox = errors.New("service: the message is in the outbox, not yet on chain")
	// ErrNotSent reports a message the chain refused for good (the session
	// is closed, the sender left it, ...): it was dropped from the outbox.
	ErrNotSent = errors.New("service: the chain refused the message")
)

// OpenMessenger opens the Messenger of id over the node of c, with its
// chat store in dir (conventionally chat.StoreDir(identity file path)),
// encrypted under passphrase, created if missing. It asks the node for the
// chain ID. Errors: chat.ErrWrongPassphrase, chat.ErrStoreLocked (another
// process holds the store), the node's.
func OpenMessenger(ctx context.Context, c *Client, id *crypto.Identity, dir, passphrase string, opts ...MessengerOption) (*Messenger, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	var pre Messenger // the options that act before the store opens
	for _, o := range opts {
		o(&pre)
	}
	var fs *chat.FileStore
	if pre.storeLogN != 0 {
		fs, err = chat.OpenFileStoreWorkFactor(dir, passphrase, pre.storeLogN)
	} else {
		fs, err = chat.OpenFileStore(dir, passphrase)
	}
	if err != nil {
		return nil, err
	}
	side, err := openDirSide(messengerDir(dir), id)
	if err != nil {
		fs.Close()
		return nil, err
	}
	m, err := newMessenger(c, id, chainID, crashStore{fs}, side, opts)
	if err != nil {
		fs.Close()
		return nil, err
	}
	m.closer = fs
	return m, nil
}

// NewMessenger returns a Messenger of id over the node of c with its
// protocol state in store (chat.NewMemoryStore for a Messenger that keeps
// nothing on disk) and its own small state in memory.
func NewMessenger(ctx context.Context, c *Client, id *crypto.Identity, store chat.Store, opts ...MessengerOption) (*Messenger, error) {
	chainID, err := c.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	return newMessenger(c, id, chainID, store, newMemSide(), opts)
}

func newMessenger(c *Client, id *crypto.Identity, chainID ids.ID, store chat.Store, side sideStore, opts []MessengerOption) (*Messenger, error) {
	if id == nil || id.KEMSecretKey == nil || id.DSASecretKey == nil {
		return nil, errors.New("service: a Messenger needs an identity with its secret keys")
	}
	dev, err := chat.NewDevice(id, chainID, store)
	if err != nil {
		return nil, err
	}
	st, err := loadState(side)
	if err != nil {
		return nil, err
	}
	// The node names the chain, and the Messenger signs for it: pin it, so
	// that a node cannot carry this identity's signed transactions, or its
	// sessions' state, to another chain across restarts.
	switch st.Chain {
	case chainID.String():
	case "":
		st.Chain = chainID.String()
		if err := st.save(side); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: the node serves chain %s, but this Messenger's store belongs to chain %s (use another store for another chain)",
			ErrUntrustedNode, chainID, st.Chain)
	}
	m := &Messenger{c: c, id: id, chainID: chainID, dev: dev, store: store, side: side, st: st, convs: map[ids.ID]*conv{}, autoPrekeys: true}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// crashStore marks each commit to the chat store as a crash point
// (internal/crashpoint: nothing outside crash-test builds).
type crashStore struct{ *chat.FileStore }

func (s crashStore) Commit(b *chat.Batch) error {
	crashpoint.Hit("before chat commit")
	err := s.FileStore.Commit(b)
	crashpoint.Hit("after chat commit")
	return err
}

// Close releases the store.
func (m *Messenger) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closer == nil {
		return nil
	}
	err := m.closer.Close()
	m.closer = nil
	return err
}

// Identity returns the Messenger's identity.
func (m *Messenger) Identity() *crypto.Identity { return m.id }

// Client returns the Messenger's client.
func (m *Messenger) Client() *Client { return m.c }

// ChainID returns the chain the Messenger works on.
func (m *Messenger) ChainID() ids.ID { return m.chainID }

func (m *Messenger) now() time.Time { return m.c.now() }

// conversation returns the verified session and this device's conversation
// in it, fetched and verified once per Messenger. A session this identity
// is not a participant of has no conversation (conv.c nil).
func (m *Messenger) conversation(ctx context.Context, session ids.ID) (*conv, error) {
	if cv := m.convs[session]; cv != nil {
		return cv, nil
	}
	v, err := m.c.VerifiedSession(ctx, session)
	if err != nil {
		return nil, err
	}
	cv := &conv{id: session, v: v}
	for _, p := range v.Participants {
		var pub *crypto.Identity
		if p == m.id.SessionID {
			pub = m.id.PublicIdentity()
		} else if pub, err = m.c.PublicIdentity(ctx, p); err != nil {
			return nil, err
		}
		dsa, err := crypto.ParseDSAPublicKey(pub.DSAPublicKey)
		if err != nil {
			return nil, untrusted("identity %s: %v", p, err)
		}
		cv.parts = append(cv.parts, pub)
		cv.dsa = append(cv.dsa, dsa)
	}
	if slices.Contains(v.Participants, m.id.SessionID) {
		cv.c, err = m.dev.Conversation(&chat.Session{
			ChainID: m.chainID, ID: session, Participants: cv.parts, Claims: chatClaims(v.Claims),
		})
		if err != nil {
			return nil, fmt.Errorf("service: session %s: %w", session, err)
		}
	}
	m.convs[session] = cv
	return cv, nil
}

// chatClaims converts a transaction's claim entries for package chat.
func chatClaims(in []tx.Claim) []chat.Claim {
	if len(in) == 0 {
		return nil
	}
	out := make([]chat.Claim, len(in))
	for i, c := range in {
		out[i] = chat.Claim(c)
	}
	return out
}

// participant returns the conversation of a session id takes part in, or
// an error wrapping ErrNotParticipant.
func (m *Messenger) participant(ctx context.Context, session ids.ID) (*conv, error) {
	cv, err := m.conversation(ctx, session)
	if err != nil {
		return nil, err
	}
	if cv.c == nil {
		return nil, fmt.Errorf("%w: you (%s) are not a participant of session %s", ErrNotParticipant, m.id.SessionID, session)
	}
	return cv, nil
}

// index returns the position of a Session ID among the participants, or -1.
func (cv *conv) index(sessionID string) int {
	return slices.Index(cv.v.Participants, sessionID)
}

// directory gives chat the verified prekey bundles of a session's
// participants for handshakes in SendMessage transactions, refusing any
// older than one verified before (pins).
type directory struct {
	ctx     context.Context
	m       *Messenger
	session ids.ID
}

func (d *directory) PrekeyBundle(p crypto.SessionID) (*chat.PrekeyBundle, error) {
	return d.m.bundle(d.ctx, p.String(), d.session.String())
}

// bundle fetches and verifies the prekey bundle of sessionID, with a
// one-time prekey this identity may claim (in a SendMessage of session, or
// in a CreateSession if session is empty), and checks it against the pin;
// the pin moves up to its signed prekey. The chain refuses a claim of no
// one-time prekey when one was there for this identity to claim, so a
// node that withholds them gets the transaction refused.
func (m *Messenger) bundle(ctx context.Context, sessionID, session string) (*chat.PrekeyBundle, error) {
	b, err := m.c.PrekeyBundleFor(ctx, PrekeyBundleArgs{SessionID: sessionID, Claimer: m.id.SessionID, Session: session})
	if err != nil {
		return nil, err
	}
	if pin := m.st.Pins[sessionID]; b.SignedPrekey.ID < pin {
		return nil, fmt.Errorf("%w: the node served signed prekey %d of %s, and this client verified prekey %d of it before",
			ErrStalePrekey, b.SignedPrekey.ID, sessionID, pin)
	}
	if b.SignedPrekey.ID > m.st.Pins[sessionID] {
		m.st.Pins[sessionID] = b.SignedPrekey.ID
		if err := m.st.save(m.side); err != nil {
			return nil, err
		}
	}
	out := &chat.PrekeyBundle{
		Identity: b.Identity,
		SignedPrekey: chat.SignedPrekey{
			ID: b.SignedPrekey.ID, ExpiresAt: time.UnixMilli(b.SignedPrekey.ExpiresAt), PublicKey: b.SignedPrekey.KEMPublicKey,
		},
	}
	if b.OneTime != nil {
		out.OneTimePrekey = &chat.OneTimePrekey{ID: b.OneTime.ID, PublicKey: b.OneTime.KEMPublicKey}
	}
	return out, nil
}
