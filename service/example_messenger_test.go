package service_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/luxfi/session/chat"
	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
)

// The README's Messenger walk-through: the forward-secret protocol over a
// node the client does not trust, with no more code than Seal needs.
// Alice keeps her store beside her identity file; Bob's app keeps its
// state in memory.
func ExampleMessenger() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, _ := crypto.IdentityFromSeed([32]byte{'a'})
	bob, _ := crypto.IdentityFromSeed([32]byte{'b'})
	dir, err := os.MkdirTemp("", "example-messenger-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	identityPath := filepath.Join(dir, "alice.json")
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	c := service.NewClient(url)
	a, err := service.OpenMessenger(ctx, c, alice, chat.StoreDir(identityPath), "alice's passphrase")
	check(err)
	defer a.Close()
	_, err = a.Register(ctx) // the identity and its prekeys
	check(err)
	b, err := service.NewMessenger(ctx, c, bob, chat.NewMemoryStore())
	check(err)
	_, err = b.Register(ctx)
	check(err)
	s, err := a.CreateSession(ctx, []string{bob.SessionID}, nil) // verified bundles, claimed prekeys
	check(err)
	_, err = a.Send(ctx, s.Session, []byte("hi bob")) // encrypts, signs, waits for the block
	check(err)
	page, err := b.Read(ctx, s.Session, 0, 0) // checked against the signed transactions, opened
	check(err)

	m := page.Messages[0]
	fmt.Printf("%s (from alice: %v)\n", m.Text, m.Sender == alice.SessionID)
	// Output: hi bob (from alice: true)
}
