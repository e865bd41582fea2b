package node_test

import (
	"context"
	"fmt"
	"os"

	"github.com/luxfi/session/node"
	"github.com/luxfi/session/service"
)

// Start a node on a free loopback port with a temporary data directory, as
// end-to-end tests and load generators do, talk to it with the service
// client, and stop it.
func ExampleStart() {
	dir, err := os.MkdirTemp("", "sessiond-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)

	n, err := node.Start(node.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0"})
	if err != nil {
		panic(err)
	}
	defer n.Shutdown(context.Background())

	c := service.NewClient(n.URL())
	st, err := c.Status(context.Background())
	if err != nil {
		panic(err)
	}
	fmt.Println("height", st.Height, "chain", st.ChainID == n.ChainID())
	// Output: height 0 chain true
}
