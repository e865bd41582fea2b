package chat_test

import (
	"fmt"
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
	session := &chat.Session{
		ChainID: chainID, ID: [32]byte{2},
		Participants: []*crypto.Identity{alice.PublicIdentity(), bob.PublicIdentity()},
		Claims:       chat.ClaimsOf(bundles),
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
	// replayed or duplicate message
}
