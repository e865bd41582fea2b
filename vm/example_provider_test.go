package vm_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sync"

	"github.com/luxfi/database"
	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	luxlog "github.com/luxfi/log"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	sessionvm "github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
)

// SessionProvider is the Pars node's SessionProvider (github.com/parsdao/node,
// vm/session.go), written against the reference implementation, rewritten
// against this one (MIGRATING.md explains each change). It embeds a
// single-validator chain in the process; on a Lux network the same VM runs
// as a chain of the node and the provider talks to it through
// service.Client instead.
type SessionProvider struct {
	vm   *sessionvm.VM
	stop context.CancelFunc
	mu   sync.Mutex // one transaction at a time: nonces are consecutive
}

// HealthStatus is what Health reports, as in Pars.
type HealthStatus struct {
	Healthy bool
	Message string
}

// NewSessionProvider creates the VM with the factory (as before), then
// initializes it on db with a genesis and runs its block loop.
func NewSessionProvider(logger luxlog.Logger, db database.Database, genesis []byte) (*SessionProvider, error) {
	factory := &sessionvm.Factory{}
	vm, err := factory.New(logger)
	if err != nil {
		return nil, fmt.Errorf("failed to create SessionVM: %w", err)
	}
	if err := vm.Initialize(context.Background(), nil, db, genesis, nil, nil, nil, nil, nil); err != nil {
		return nil, fmt.Errorf("failed to initialize SessionVM: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	go vm.Run(ctx) // a block whenever transactions are pending
	return &SessionProvider{vm: vm, stop: stop}, nil
}

// Shutdown gracefully stops the SessionVM.
func (sp *SessionProvider) Shutdown(ctx context.Context) error {
	sp.stop()
	return sp.vm.Shutdown(ctx)
}

// GenerateIdentity creates a new PQ identity (unchanged).
func (sp *SessionProvider) GenerateIdentity() (*crypto.Identity, error) {
	return crypto.GenerateIdentity()
}

// submit signs p as id with id's next nonce, admits it and waits until a
// block accepts it. Every write goes this way: only signed transactions
// change the chain's state.
func (sp *SessionProvider) submit(ctx context.Context, id *crypto.Identity, p tx.Payload) (*tx.Tx, error) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	author, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		return nil, err
	}
	nonce, err := sp.vm.NextNonce(author)
	if err != nil {
		return nil, err
	}
	t, err := tx.Sign(id, sp.vm.ChainID(), nonce, p)
	if err != nil {
		return nil, err
	}
	if _, err := sp.vm.IssueTx(t.Bytes()); err != nil {
		return nil, err
	}
	for {
		accepted := sp.vm.AcceptedNotify()
		st, err := sp.vm.TxStatus(t.ID())
		if err != nil {
			return nil, err
		}
		switch st.Status {
		case sessionvm.TxAccepted:
			return t, nil
		case sessionvm.TxDropped:
			return nil, errors.New("transaction dropped: " + st.Reason)
		}
		select {
		case <-accepted:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Register publishes id's public keys; a participant must be registered
// before a session can include it. (New: the reference kept no identities.)
func (sp *SessionProvider) Register(ctx context.Context, id *crypto.Identity) error {
	author, err := crypto.ParseSessionID(id.SessionID)
	if err != nil {
		return err
	}
	// The registration's proof of work, at the chain's parameters, bound
	// to the last accepted block.
	st, err := sp.vm.Status()
	if err != nil {
		return err
	}
	seed := tx.WorkSeed(sp.vm.ChainID(), author, st.Height, st.LastAcceptedID)
	work, _, err := tx.SolveWork(ctx, sp.vm.ChainID(), seed, sp.vm.Config().Registration, 0, 0, 0)
	if err != nil {
		return err
	}
	_, err = sp.submit(ctx, id, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey, AnchorHeight: st.Height, Work: work})
	return err
}

// CreateSession creates a session of creator with the participants (Session
// IDs, "07…"). Was: CreateSession(ctx, participantIDs []string, publicKeys [][]byte);
// the keys are the registered identities' now, and the creator signs.
func (sp *SessionProvider) CreateSession(ctx context.Context, creator *crypto.Identity, participantIDs ...string) (*sessionvm.Session, error) {
	p := &tx.CreateSession{}
	for _, s := range participantIDs {
		id, err := crypto.ParseSessionID(s)
		if err != nil {
			return nil, fmt.Errorf("invalid participant ID %s: %w", s, err)
		}
		p.Participants = append(p.Participants, id)
	}
	t, err := sp.submit(ctx, creator, p)
	if err != nil {
		return nil, err
	}
	return sp.vm.GetSession(tx.SessionIDFor(sp.vm.ChainID(), t.Author, t.Nonce))
}

// SendMessage seals plaintext to every participant of the session (the
// sender included) and sends it; it returns the message's sequence number.
// Was: SendMessage(ctx, sessionID, senderID string, ciphertext, signature []byte);
// the sender's signature is inside the sealed envelope, and the
// transaction's signature proves who sent it.
func (sp *SessionProvider) SendMessage(ctx context.Context, sender *crypto.Identity, sessionID string, plaintext []byte) (uint64, error) {
	sid, err := ids.FromString(sessionID)
	if err != nil {
		return 0, fmt.Errorf("invalid session ID: %w", err)
	}
	s, err := sp.vm.GetSession(sid)
	if err != nil {
		return 0, err
	}
	recipients := make([]*crypto.Identity, 0, len(s.Participants))
	for _, p := range s.Participants {
		pid, err := crypto.ParseSessionID(p)
		if err != nil {
			return 0, err
		}
		rec, err := sp.vm.Identity(pid)
		if err != nil {
			return 0, err
		}
		pub, err := crypto.NewPublicIdentity(rec.KEMPublicKey, rec.DSAPublicKey)
		if err != nil {
			return 0, err
		}
		recipients = append(recipients, pub)
	}
	envelope, err := crypto.Seal(sender, recipients, plaintext, service.MessageAD(sid))
	if err != nil {
		return 0, err
	}
	if _, err := sp.submit(ctx, sender, &tx.SendMessage{Session: sid, Ciphertext: envelope}); err != nil {
		return 0, err
	}
	s, err = sp.vm.GetSession(sid)
	if err != nil {
		return 0, err
	}
	return s.LastSeq, nil
}

// Messages returns the texts of a session's messages after sequence number
// after, opened as reader, each checked to be signed by its author. (New:
// the reference had no read path.)
func (sp *SessionProvider) Messages(reader *crypto.Identity, sessionID string, after uint64) ([]string, error) {
	sid, err := ids.FromString(sessionID)
	if err != nil {
		return nil, fmt.Errorf("invalid session ID: %w", err)
	}
	msgs, err := sp.vm.Messages(sid, after, 100)
	if err != nil {
		return nil, err
	}
	var texts []string
	for _, m := range msgs {
		pt, sender, err := crypto.Open(reader, m.Ciphertext, service.MessageAD(sid))
		if err != nil {
			return nil, fmt.Errorf("message %d: %w", m.Seq, err)
		}
		if sender != m.Author.String() {
			return nil, fmt.Errorf("message %d: signed by %s, sent by %s", m.Seq, sender, m.Author)
		}
		texts = append(texts, string(pt))
	}
	return texts, nil
}

// GetSession retrieves session information (unchanged).
func (sp *SessionProvider) GetSession(ctx context.Context, sessionID string) (*sessionvm.Session, error) {
	sid, err := ids.FromString(sessionID)
	if err != nil {
		return nil, fmt.Errorf("invalid session ID: %w", err)
	}
	return sp.vm.GetSession(sid)
}

// CloseSession closes a session. Was: CloseSession(ctx, sessionID); a
// participant closes it now, with a signed transaction.
func (sp *SessionProvider) CloseSession(ctx context.Context, participant *crypto.Identity, sessionID string) error {
	sid, err := ids.FromString(sessionID)
	if err != nil {
		return fmt.Errorf("invalid session ID: %w", err)
	}
	_, err = sp.submit(ctx, participant, &tx.CloseSession{Session: sid})
	return err
}

// Health returns the health status of the SessionVM (unchanged).
func (sp *SessionProvider) Health() HealthStatus {
	result, err := sp.vm.HealthCheck(context.Background())
	if err != nil {
		return HealthStatus{Healthy: false, Message: err.Error()}
	}

	health, ok := result.(map[string]interface{})
	if !ok {
		return HealthStatus{Healthy: false, Message: "invalid health response"}
	}

	healthy, _ := health["healthy"].(bool)
	return HealthStatus{Healthy: healthy}
}

// The Pars-style provider against the current API: create the VM, create
// a session, send, read, close, health.
func Example_sessionProvider() {
	ctx := context.Background()
	// A development chain: registering costs one small Argon2id here (the
	// default proof of work is about a second of one core per identity).
	genesis := []byte(`{"timestamp": 1767225600, "config": {"registration": {"memoryKiB": 8, "prefilterBits": 0, "workBits": 0}}}`)
	sp, err := NewSessionProvider(luxlog.NewNoOpLogger(), memdb.New(), genesis)
	if err != nil {
		log.Fatal(err)
	}
	alice, _ := crypto.IdentityFromSeed([32]byte{'a'})
	bob, _ := crypto.IdentityFromSeed([32]byte{'b'})
	for _, id := range []*crypto.Identity{alice, bob} {
		if err := sp.Register(ctx, id); err != nil {
			log.Fatal(err)
		}
	}

	session, err := sp.CreateSession(ctx, alice, bob.SessionID)
	if err != nil {
		log.Fatal(err)
	}
	sessionID := session.ID.String()
	fmt.Println(session.Status, len(session.Participants))

	seq, err := sp.SendMessage(ctx, alice, sessionID, []byte("hello bob"))
	if err != nil {
		log.Fatal(err)
	}
	texts, err := sp.Messages(bob, sessionID, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(seq, texts)

	if err := sp.CloseSession(ctx, alice, sessionID); err != nil { // bob has not accepted the session: alice closes it
		log.Fatal(err)
	}
	s, err := sp.GetSession(ctx, sessionID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Status)
	_, err = sp.SendMessage(ctx, alice, sessionID, []byte("too late"))
	fmt.Println(err)

	fmt.Println(sp.Health().Healthy)
	if err := sp.Shutdown(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println(sp.Health().Healthy)
	// Output:
	// active 2
	// 1 [hello bob]
	// closed
	// session is closed
	// true
	// false
}
