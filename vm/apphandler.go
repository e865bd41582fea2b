package vm

import (
	"context"
	"time"

	"github.com/luxfi/ids"
	"github.com/luxfi/p2p"
)

// The app-message handler. rpcchainvm's server (node v1.22.75) forwards a
// peer's AppGossip, AppRequest, AppResponse and AppRequestFailed to a
// plugin's VM only if it implements warp.Handler of github.com/luxfi/warp
// (Request, Response, Gossip, RequestFailed, with p2p.Error), which these
// methods do; cmd/sessionvm checks it at compile time. SessionVM uses app
// gossip only (transactions, see gossip.go) and sends no requests.

// errNoRequests answers an app request: SessionVM serves none.
var errNoRequests = &p2p.Error{Code: -1, Message: "sessionvm serves no app requests"}

// Gossip handles a peer's app gossip: transactions, admitted through the
// checks of IssueTx. It returns nil whatever the peer sent (misbehaviour
// is counted in GossipStats), since a node may treat an error as fatal.
func (v *VM) Gossip(_ context.Context, nodeID ids.NodeID, msg []byte) error {
	if v.ready() != nil {
		return nil
	}
	v.gossip.receive(nodeID, msg)
	return nil
}

// AppGossip is Gossip under the name avalanchego-style engines call.
func (v *VM) AppGossip(ctx context.Context, nodeID ids.NodeID, msg []byte) error {
	return v.Gossip(ctx, nodeID, msg)
}

// Request answers a peer's app request with an error: SessionVM serves
// none (rpcchainvm at node v1.22.75 drops a returned response anyway).
func (v *VM) Request(context.Context, ids.NodeID, uint32, time.Time, []byte) ([]byte, *p2p.Error) {
	return nil, errNoRequests
}

// Response handles a response to an app request; SessionVM sends none, so
// it is ignored.
func (v *VM) Response(context.Context, ids.NodeID, uint32, []byte) error { return nil }

// RequestFailed handles a failed app request; SessionVM sends none.
func (v *VM) RequestFailed(context.Context, ids.NodeID, uint32, *p2p.Error) error { return nil }

// GossipStats returns this node's gossip counters since start.
func (v *VM) GossipStats() GossipStats {
	if v.gossip == nil {
		return GossipStats{}
	}
	return v.gossip.stats.snapshot()
}
