package service_test

import (
	"context"
	"fmt"
	"log"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/luxfi/database/memdb"

	"github.com/luxfi/session/crypto"
	"github.com/luxfi/session/service"
	"github.com/luxfi/session/vm"
)

// Waiting for messages without polling: a Client of the node's WebSocket
// (ws://) watches bob's inbox; C is ready when a block adds to it, and bob
// then reads from his own cursor, as a poll would.
func ExampleClient_WatchInbox() {
	url, stop := exampleStreamNode()
	defer stop()
	ctx := context.Background()
	alice, _ := crypto.IdentityFromSeed([32]byte{'a'})
	bob, _ := crypto.IdentityFromSeed([32]byte{'b'})
	check := func(_ any, err error) {
		if err != nil {
			log.Fatal(err)
		}
	}
	c := service.NewClient("ws" + strings.TrimPrefix(url, "http")) // e.g. "ws://127.0.0.1:9652/rpc"
	defer c.Close()
	for _, id := range []*crypto.Identity{alice, bob} {
		r, err := c.Register(ctx, id)
		check(r, err)
		check(c.WaitAccepted(ctx, r.TxID))
	}
	r, err := c.CreateSession(ctx, alice, bob.SessionID)
	check(r, err)
	check(c.WaitAccepted(ctx, r.TxID))
	session := r.Session
	check(c.AcceptSession(ctx, bob, session)) // a stranger's session is a request until bob accepts it

	w, err := c.WatchInbox(ctx, bob.SessionID, time.Minute)
	check(w, err)
	defer w.Close()
	var cursor uint64
	readAll := func() (texts []string) {
		for {
			page, err := c.Inbox(ctx, bob.SessionID, cursor, 100)
			check(page, err)
			for i := range page.Messages {
				m := &page.Messages[i]
				if text, err := service.OpenMessage(bob, m); err == nil {
					texts = append(texts, string(text))
				}
				cursor = m.Position
			}
			if !page.More {
				return texts
			}
		}
	}
	<-w.C // at once: read what came before the watch
	readAll()

	check(c.SendSealed(ctx, alice, session, []byte("hi bob")))
	for {
		<-w.C // a notification (or the slow poll)
		if texts := readAll(); len(texts) > 0 {
			fmt.Println(texts[0])
			return
		}
	}
	// Output: hi bob
}

// exampleStreamNode is exampleNode with the WebSocket transport on.
func exampleStreamNode() (url string, stop func()) {
	ctx := context.Background()
	v := vm.New(vm.WithHandler(service.NewHandlerWith(service.Options{Stream: &service.StreamOptions{}})))
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
	go v.Run(runCtx)
	handlers, err := v.CreateHandlers(ctx)
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(handlers["/rpc"])
	return srv.URL + "/rpc", func() {
		srv.Close()
		cancel()
		_ = v.Shutdown(ctx)
	}
}
