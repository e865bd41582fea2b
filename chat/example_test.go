package chat_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
)

// Alice starts a session with Bob and they exchange a message each. On a
// real chain, the prekeys go out in a PublishPrekeys transaction, the
// session in CreateSession (with the claims), each envelope in a
// SendMessage transaction; the caller verifies what it reads back.
func Example() {
	chainID := [32]byte{1}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	alice, _ := crypto.GenerateIdentity()
	bob, _ := crypto.GenerateIdentity()
	aliceDev, _ := chat.NewDevice(alice, chainID, chat.NewMemoryStore())
	bobDev, _ := chat.NewDevice(bob, chainID, chat.NewMemoryStore())

	// Bob publishes prekeys.
	up, _ := bobDev.GeneratePrekeys(now, true, 1)

	// Alice creates the session with Bob, claiming his one-time prekey.
	bundles := []*chat.PrekeyBundle{{Identity: bob.PublicIdentity(), SignedPrekey: *up.SignedPrekey, OneTimePrekey: &up.OneTimePrekeys[0]}}
	claims, _ := chat.ClaimsOf(bundles) // the CreateSession transaction carries them
	session := &chat.Session{
		ChainID: chainID, ID: [32]byte{2},
		Participants: []*crypto.Identity{alice.PublicIdentity(), bob.PublicIdentity()},
		Claims:       claims,
	}
	aliceConv, _ := aliceDev.CreateConversation(now, session, bundles)
	bobConv, _ := bobDev.Conversation(session)
	aliceID, _ := crypto.ParseSessionID(alice.SessionID)
	bobID, _ := crypto.ParseSessionID(bob.SessionID)

	// Alice's first message carries the handshake.
	outs, _ := aliceConv.Send(now, []byte("hello, Bob"), nil)
	msg, err := bobConv.Open(now, &chat.Delivery{Envelope: outs[0].Envelope, Position: 1, Sender: aliceID})
	fmt.Println(string(msg.Plaintext), err)
	aliceConv.Confirm(outs[0].ID, 1)

	// Bob's answer steps the ratchet: a fresh ML-KEM-768 key pair.
	outs, _ = bobConv.Send(now.Add(time.Minute), []byte("hi, Alice"), nil)
	msg, err = aliceConv.Open(now, &chat.Delivery{Envelope: outs[0].Envelope, Position: 2, Sender: bobID})
	fmt.Println(string(msg.Plaintext), err)

	// A replay is refused.
	_, err = aliceConv.Open(now, &chat.Delivery{Envelope: outs[0].Envelope, Position: 3, Sender: bobID})
	fmt.Println(err)
	// Output:
	// hello, Bob <nil>
	// hi, Alice <nil>
	// replayed message
}

// directoryFunc is a chat.Directory from a function (on a real chain: the
// verified session.getPrekeyBundle).
type directoryFunc func(crypto.SessionID) (*chat.PrekeyBundle, error)

func (f directoryFunc) PrekeyBundle(p crypto.SessionID) (*chat.PrekeyBundle, error) { return f(p) }

// The README's walk through the API: Alice's device keeps its store beside
// her identity file; Bob has created a session with her.
func ExampleDevice() {
	dir, _ := os.MkdirTemp("", "chat-example")
	defer os.RemoveAll(dir)
	identityPath, passphrase := filepath.Join(dir, "alice.json"), "correct horse battery staple"
	identity, _ := crypto.GenerateIdentity()
	bob, _ := crypto.GenerateIdentity()
	chainID, now := [32]byte{1}, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

	store, err := chat.OpenFileStore(chat.StoreDir(identityPath), passphrase)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	dev, err := chat.NewDevice(identity, chainID, store) // store: chat.OpenFileStore(chat.StoreDir(identityPath), passphrase)
	upload, err := dev.GeneratePrekeys(now, true, 32)    // publish in a PublishPrekeys transaction

	// Bob publishes his prekeys and creates the session, claiming one of
	// Alice's one-time prekeys.
	bobDev, _ := chat.NewDevice(bob, chainID, chat.NewMemoryStore())
	bobUp, _ := bobDev.GeneratePrekeys(now, true, 1)
	bundles := []*chat.PrekeyBundle{{Identity: identity.PublicIdentity(), SignedPrekey: *upload.SignedPrekey, OneTimePrekey: &upload.OneTimePrekeys[0]}}
	sessionClaims, _ := chat.ClaimsOf(bundles)
	session := &chat.Session{ChainID: chainID, ID: [32]byte{3},
		Participants: []*crypto.Identity{bob.PublicIdentity(), identity.PublicIdentity()}, Claims: sessionClaims}
	bobConv, _ := bobDev.CreateConversation(now, session, bundles)
	directory := directoryFunc(func(crypto.SessionID) (*chat.PrekeyBundle, error) {
		return &chat.PrekeyBundle{Identity: bob.PublicIdentity(), SignedPrekey: *bobUp.SignedPrekey, OneTimePrekey: &bobUp.OneTimePrekeys[0]}, nil
	})

	conv, err := dev.Conversation(session)                  // the session as the chain says (verified by the caller)
	outs, err := conv.Send(now, []byte("hello"), directory) // one SendMessage transaction per envelope
	if err != nil {
		fmt.Println(err)
		return
	}
	alice, _ := crypto.ParseSessionID(identity.SessionID)
	got, _ := bobConv.Open(now, &chat.Delivery{Envelope: outs[0].Envelope, Position: 1, Sender: alice, Claims: outs[0].Claims})
	fmt.Println("bob reads:", string(got.Plaintext))

	reply, _ := bobConv.Send(now, []byte("hi"), nil)
	author, _ := crypto.ParseSessionID(bob.SessionID)
	ct, seq, claims := reply[0].Envelope, uint64(2), reply[0].Claims
	msg, err := conv.Open(now, &chat.Delivery{Envelope: ct, Position: seq, Sender: author, Claims: claims})
	fmt.Println("alice reads:", string(msg.Plaintext), err)
	// Output:
	// bob reads: hello
	// alice reads: hi <nil>
}
