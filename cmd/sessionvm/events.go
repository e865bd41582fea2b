package main

import (
	"context"

	smblock "github.com/luxfi/consensus/engine/chain/block"
	vmpb "github.com/luxfi/node/proto/pb/vm"
	"github.com/luxfi/warp"

	"github.com/luxfi/session/vm"
)

// pluginVM adapts the VM's events to the plugin protocol. In-process, a Lux
// engine expects WaitForEvent to return block.PendingTxs (a uint32 value);
// across the plugin boundary, node v1.22.75's gRPC server forwards only
// int32 values, as the vmpb.Message enum, and reports anything else as
// MESSAGE_UNSPECIFIED. The adapter returns MESSAGE_BUILD_BLOCK so that a
// host which forwards events learns that transactions are pending.
type pluginVM struct{ *vm.VM }

// rpcchainvm's server hands a peer's app messages (transaction gossip) to
// the VM only if it is a warp.Handler.
var _ warp.Handler = pluginVM{}

func (p pluginVM) WaitForEvent(ctx context.Context) (interface{}, error) {
	ev, err := p.VM.WaitForEvent(ctx)
	if err != nil {
		return nil, err
	}
	if ev == any(smblock.PendingTxs) {
		return int32(vmpb.Message_MESSAGE_BUILD_BLOCK), nil
	}
	return ev, nil
}
