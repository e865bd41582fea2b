package service

import (
	"context"
	"net/http"

	"github.com/luxfi/session/vm/tx"
)

// txMethods are the write methods, whose params are TxArgs and whose
// result is a TxReply, with the transaction type each takes (0: any).
// When the fast path decoded a call's {"tx": ...} params, the handler
// runs these without gorilla/rpc (runTx): no request copy, no reflection,
// no allocation of args and reply. They are the ingestion path (one call
// per message). Their rpcService methods stay registered with gorilla/rpc
// for every other shape of params; TestDirectMatchesGorilla and
// FuzzDirectMatchesGorilla hold both paths to the same answers, and
// TestTxMethodsComplete to this list covering every TxArgs method.
var txMethods = map[string]tx.Type{
	Namespace + ".issueTx":          0,
	Namespace + ".registerIdentity": tx.TypeRegisterIdentity,
	Namespace + ".createSession":    tx.TypeCreateSession,
	Namespace + ".closeSession":     tx.TypeCloseSession,
	Namespace + ".sendMessage":      tx.TypeSendMessage,
	Namespace + ".createChannel":    tx.TypeCreateChannel,
	Namespace + ".joinChannel":      tx.TypeJoinChannel,
	Namespace + ".leaveChannel":     tx.TypeLeaveChannel,
	Namespace + ".postChannel":      tx.TypePostChannel,
	Namespace + ".publishPrekeys":   tx.TypePublishPrekeys,
	Namespace + ".acceptSession":    tx.TypeAcceptSession,
	Namespace + ".setContact":       tx.TypeSetContact,
	Namespace + ".setChannelPolicy": tx.TypeSetChannelPolicy,
	Namespace + ".moderateChannel":  tx.TypeModerateChannel,
	Namespace + ".deletePosts":      tx.TypeDeletePosts,
	Namespace + ".setRequestPolicy": tx.TypeSetRequestPolicy,
}

// runTx runs a write call whose tx the fast path decoded: what gorilla/rpc
// with this package's codec does for it (take an execution slot, call the
// method, encode the reply or the error, settle the response budget),
// directly.
func (h *handler) runTx(ctx context.Context, c *call, want tx.Type) {
	err := h.beginCall(ctx, c, nil)
	if err == nil {
		var t *tx.Tx
		if t, err = h.issue(c, want); err == nil {
			c.out = encodeTxResult(c.responseID(), t)
		}
	}
	if err != nil {
		c.out = encodeError(c.responseID(), toError(err))
	}
	h.endCall(c)
	h.account(c)
}

// issue is rpcService.issue with a panic answered as the general path
// answers it (run): an internal error.
func (h *handler) issue(c *call, want tx.Type) (t *tx.Tx, err error) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { //nolint:errorlint // sentinel value, as net/http compares it
				panic(p)
			}
			t, err = nil, &Error{Code: CodeInternal, Message: "internal error"}
		}
	}()
	return h.svc.issue(want, c.tx)
}
