package main

import (
	"context"
	"testing"
	"time"

	"github.com/luxfi/database/memdb"
	vmpb "github.com/luxfi/node/proto/pb/vm"
	"github.com/luxfi/node/utils"
	"github.com/luxfi/node/vms/rpcchainvm"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/luxfi/session/vm/tx"
)

// TestWaitForEventThroughGRPCServer asks the node's own gRPC server
// (rpcchainvm.NewServer, what Serve runs) for the VM's event: with a
// transaction pending it must answer MESSAGE_BUILD_BLOCK, which the raw
// VM's block.PendingTxs would not produce across the boundary.
func TestWaitForEventThroughGRPCServer(t *testing.T) {
	genesis := testGenesis(t)
	v := newVM()
	ctx := context.Background()
	if err := v.Initialize(ctx, nil, memdb.New(), genesis, nil, nil, nil, nil, nil); err != nil {
		t.Fatal(err)
	}
	defer v.Shutdown(ctx)

	server := rpcchainvm.NewServer(pluginVM{v}, utils.NewAtomic(false))
	raw := rpcchainvm.NewServer(v, utils.NewAtomic(false))

	// Nothing pending: the call waits until its context ends. (Asked of the
	// adapter: the server's error path logs through a logger that only its
	// own Initialize sets.)
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if ev, err := (pluginVM{v}).WaitForEvent(short); err == nil {
		t.Fatalf("event %v with an empty mempool", ev)
	}

	id := testIdentity(t, 1)
	if _, err := v.IssueTx(sign(t, id, v.ChainID(), 0, &tx.RegisterIdentity{KEMPublicKey: id.KEMPublicKey, DSAPublicKey: id.DSAPublicKey}).Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := server.WaitForEvent(ctx, &emptypb.Empty{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetMessage() != vmpb.Message_MESSAGE_BUILD_BLOCK {
		t.Fatalf("event %v, want MESSAGE_BUILD_BLOCK", resp.GetMessage())
	}
	// The unadapted VM shows why the adapter exists.
	if resp, _ := raw.WaitForEvent(ctx, &emptypb.Empty{}); resp.GetMessage() != vmpb.Message_MESSAGE_UNSPECIFIED {
		t.Fatalf("unadapted VM: event %v; the adapter may no longer be needed", resp.GetMessage())
	}
}
