package vm_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"
	"github.com/luxfi/log"

	"github.com/luxfi/session/crypto"
	sessionvm "github.com/luxfi/session/vm"
	"github.com/luxfi/session/vm/tx"
	"github.com/luxfi/session/vm/vmtest"
)

// parsProvider mirrors, line for line, the calls the Pars node's
// integration (github.com/parsdao/node, vm/session.go) makes on the
// reference implementation (REFERENCE-API.md, "What the Pars integration
// calls"), written as Pars writes them. It compiles against this module:
// that is the test. The reference's unsigned writes, vm.CreateSession,
// vm.SendMessage and vm.CloseSession, have no equivalent that could
// compile (MIGRATING.md explains each replacement; Example_sessionProvider
// is the provider rewritten).
type parsProvider struct {
	vm     *sessionvm.VM
	logger log.Logger
}

func newParsProvider(logger log.Logger) (*parsProvider, error) {
	factory := &sessionvm.Factory{}
	vm, err := factory.New(logger)
	if err != nil {
		return nil, err
	}
	return &parsProvider{vm: vm, logger: logger}, nil
}

func (sp *parsProvider) Shutdown(ctx context.Context) error {
	return sp.vm.Shutdown(ctx)
}

func (sp *parsProvider) GetSession(ctx context.Context, sessionID string) (*sessionvm.Session, error) {
	sid, err := ids.FromString(sessionID)
	if err != nil {
		return nil, err
	}
	return sp.vm.GetSession(sid)
}

func (sp *parsProvider) Health() (bool, string) {
	result, err := sp.vm.HealthCheck(context.Background())
	if err != nil {
		return false, err.Error()
	}
	health, ok := result.(map[string]interface{})
	if !ok {
		return false, "invalid health response"
	}
	healthy, _ := health["healthy"].(bool)
	return healthy, ""
}

// parsSessionFields reads what Pars reads of a session.
func parsSessionFields(session *sessionvm.Session) (id, status string) {
	return session.ID.String(), session.Status
}

// parsSecureSession is Pars's SecureSession's crypto: the reference
// envelope and signed messages.
func parsSecureSession(local *crypto.Identity, remoteKEMPublicKey, plaintext []byte) (ciphertext, signed []byte, err error) {
	ciphertext, err = crypto.EncryptToRecipient(remoteKEMPublicKey, plaintext)
	if err != nil {
		return nil, nil, err
	}
	signed, err = local.SignMessage(plaintext)
	return ciphertext, signed, err
}

// TestParsCalls runs the mirrored calls: the crypto ones unchanged, the
// VM ones after the one step a chain needs that the reference did not
// (Initialize with a database and a genesis).
func TestParsCalls(t *testing.T) {
	ctx := context.Background()
	sp, err := newParsProvider(log.NewNoOpLogger())
	if err != nil {
		t.Fatal(err)
	}
	if healthy, msg := sp.Health(); healthy || msg == "" {
		t.Fatalf("an uninitialized VM reported healthy (%q)", msg)
	}
	local, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	remote, err := crypto.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	genesis, err := vmtest.GenesisJSON(1_767_225_600, nil, local, remote)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.vm.Initialize(ctx, nil, memdb.New(), genesis, nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	if healthy, msg := sp.Health(); !healthy {
		t.Fatalf("Health: %q", msg)
	}
	if _, err := sp.GetSession(ctx, ids.Empty.String()); err == nil {
		t.Fatal("GetSession of an unknown session succeeded")
	}
	// A session, created the only way there is now: a signed transaction.
	remoteID, _ := crypto.ParseSessionID(remote.SessionID)
	create, err := tx.Sign(local, sp.vm.ChainID(), 0, &tx.CreateSession{Participants: []crypto.SessionID{remoteID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.vm.IssueTx(create.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.vm.BuildAndAccept(ctx); err != nil {
		t.Fatal(err)
	}
	sessionID := tx.SessionIDFor(sp.vm.ChainID(), create.Author, 0).String()
	session, err := sp.GetSession(ctx, sessionID)
	if err != nil {
		t.Fatal(err)
	}
	if id, status := parsSessionFields(session); id != sessionID || status != sessionvm.SessionActive {
		t.Fatalf("session %s %s", id, status)
	}
	ct, signed, err := parsSecureSession(local, remote.KEMPublicKey, []byte("salam"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := remote.DecryptFrom(ct); err != nil || !bytes.Equal(pt, []byte("salam")) {
		t.Fatalf("DecryptFrom: %q, %v", pt, err)
	}
	if msg, ok := local.PublicIdentity().VerifyMessage(signed); !ok || string(msg) != "salam" {
		t.Fatalf("VerifyMessage: %q, %v", msg, ok)
	}
	if err := sp.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if healthy, _ := sp.Health(); healthy {
		t.Fatal("healthy after Shutdown")
	}
}
