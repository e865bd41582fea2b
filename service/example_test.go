package service_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/luxfi/database/memdb"
	"github.com/luxfi/ids"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

// Example runs a single-validator chain in process, serves the API with
// httptest, and has Alice send Bob a sealed message through the client.
func Example() {
	ctx := context.Background()
	v := vm.New(vm.WithHandler(service.NewHandler))
	genesis := fmt.Sprintf(`{"timestamp": %d}`, time.Now().Unix()-60)
	if err := v.Initialize(ctx, nil, memdb.New(), []byte(genesis), nil, nil, nil, nil, nil); err != nil {
		panic(err)
	}
	defer v.Shutdown(ctx)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go v.Run(runCtx) // a block whenever transactions are pending
	handlers, err := v.CreateHandlers(ctx)
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(handlers["/rpc"])
	defer srv.Close()

	c := service.NewClient(srv.URL)
	alice, _ := crypto.IdentityFromSeed([32]byte{1})
	bob, _ := crypto.IdentityFromSeed([32]byte{2})
	must := func(r *service.TxReply, err error) *service.TxReply {
		if err == nil {
			_, err = c.WaitAccepted(ctx, r.TxID)
		}
		if err != nil {
			panic(err)
		}
		return r
	}
	must(c.Register(ctx, alice))
	must(c.Register(ctx, bob))
	session := must(c.CreateSession(ctx, alice, bob.SessionID)).Session
	must(c.SendSealed(ctx, alice, session, []byte("hello bob")))

	page, err := c.Messages(ctx, session, 0, 10)
	if err != nil {
		panic(err)
	}
	plaintext, err := service.OpenMessage(bob, &page.Messages[0])
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (seq %d, from alice: %v)\n", plaintext, page.Messages[0].Seq, page.Messages[0].Author == alice.SessionID)

	_, err = c.Session(ctx, ids.Empty)
	var rpcErr *service.Error
	fmt.Println(service.IsNotFound(err), errors.As(err, &rpcErr) && rpcErr.Code == service.CodeUnknownSession)
	// Output:
	// hello bob (seq 1, from alice: true)
	// true true
}
