package service_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/luxfi/database/memdb"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

// The README's client walk-through: register, open a session, send a
// sealed message, wait for its block, read it back and open it. A write
// returns when the node admits the transaction; reads see it only once it
// is accepted, hence WaitAccepted.
func ExampleClient() {
	url, stop := exampleNode()
	defer stop()
	ctx := context.Background()
	alice, _ := crypto.IdentityFromSeed([32]byte{'a'})
	bob, _ := crypto.IdentityFromSeed([32]byte{'b'})
	check := func(err error) {
		if err != nil {
			log.Fatal(err)
		}
	}

	c := service.NewClient(url)      // e.g. "http://127.0.0.1:9652/rpc"
	r, err := c.Register(ctx, alice) // signs locally, submits (bob registers too)
	check(err)
	_, err = c.WaitAccepted(ctx, r.TxID) // admitted is not accepted: wait for the block
	check(err)
	rb, err := c.Register(ctx, bob)
	check(err)
	_, err = c.WaitAccepted(ctx, rb.TxID)
	check(err)
	r, err = c.CreateSession(ctx, alice, bob.SessionID)
	check(err)
	_, err = c.WaitAccepted(ctx, r.TxID)
	check(err)
	session := r.Session
	r, err = c.SendSealed(ctx, alice, session, []byte("hi bob")) // Seal to every participant
	check(err)
	_, err = c.WaitAccepted(ctx, r.TxID) // before the block, getMessages does not show it
	check(err)
	page, err := c.Messages(ctx, session, 0, 100)
	check(err)
	text, err := service.OpenMessage(bob, &page.Messages[0]) // checks the sender is the author
	check(err)

	fmt.Printf("%s (from alice: %v)\n", text, page.Messages[0].Author == alice.SessionID)
	// Output: hi bob (from alice: true)
}

// exampleNode runs a single-validator chain in process behind an HTTP
// test server and returns its JSON-RPC URL.
func exampleNode() (url string, stop func()) {
	ctx := context.Background()
	v := vm.New(vm.WithHandler(service.NewHandler))
	// The least registration work (config.MinimalRegistration): the
	// default, Argon2id over 8 MiB with a pre-filter, costs about a second
	// of a core per identity, and under the race detector the examples'
	// registrations took most of their 10–15 s. Example shows the default
	// genesis.
	genesis := fmt.Sprintf(`{"timestamp": %d, "config": {"registration": {"memoryKiB": 8, "iterations": 1, "prefilterBits": 0, "workBits": 0}}}`, time.Now().Unix()-60)
	if err := v.Initialize(ctx, nil, memdb.New(), []byte(genesis), nil, nil, nil, nil, nil); err != nil {
		log.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	go v.Run(runCtx) // a block whenever transactions are pending
	handlers, err := v.CreateHandlers(ctx)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(handlers["/rpc"])
	return srv.URL, func() {
		srv.Close()
		cancel()
		_ = v.Shutdown(ctx)
	}
}
