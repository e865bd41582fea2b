// Package service is the JSON-RPC 2.0 API of SessionVM and its typed Go
// client.
//
// The server (NewHandler) is a github.com/gorilla/rpc/v2 server in the
// "session" namespace, built only on the vm.API interface: it never reaches
// into the VM. A VM gets it with vm.WithHandler(service.NewHandler), and
// CreateHandlers mounts it at "/rpc", in the plugin and in the standalone
// node alike. docs/api.md lists every method, the encodings and the error
// codes; the short version:
//
//   - Methods are "session.<lowerCamel>" (session.getMessages).
//   - Writes take a transaction the client signed ({"tx": "<base64>"}): the
//     node never holds secret keys. Each typed write refuses a transaction of
//     another type (invalid params); issueTx takes any type.
//   - []byte fields are standard base64; Session IDs are 66-character hex;
//     transaction, block, session and channel IDs are CB58 (ids.ID).
//   - Errors carry the stable codes of errors.go.
//   - A request object or a batch (an array of up to MaxBatchCalls) per
//     POST, at most MaxBodySize bytes, Content-Type application/json;
//     notifications (no id) run without a response.
//   - What the handler holds at once is bounded (Options): response and
//     request bytes in flight, calls executing.
//
// The Client (NewClient) has a method per RPC method and helpers that sign
// locally (Register, CreateSession, Send, ...) and wait for acceptance
// (WaitAccepted).
package service

import (
	"context"
	"net/http"
	"unicode"
	"unicode/utf8"

	"github.com/luxfi/session/vm"
)

// Limits of the API.
const (
	// MaxBodySize bounds a request body. The largest transaction
	// (config.MaxTxSize, 80 KiB) is about 107 KiB in base64.
	MaxBodySize = 1 << 20
	// DefaultPageSize is the page size when a request gives no limit.
	DefaultPageSize = 100
	// MaxPageSize bounds every limit parameter.
	MaxPageSize = vm.MaxPageSize
)

// Namespace is the service name of every method.
const Namespace = "session"

// HealthChecker is implemented by backends that report their health
// (*vm.VM does). session.health uses it when the vm.API given to NewHandler
// implements it, and falls back to Status otherwise.
type HealthChecker interface {
	Health(context.Context) (vm.HealthReport, error)
}

// Methods lists the wire names of every method, in documentation order.
var Methods = []string{
	"health", "status", "getConfig",
	"issueTx", "getTxStatus", "getNonce",
	"registerIdentity", "getIdentity",
	"createSession", "getSession", "closeSession",
	"sendMessage", "getMessages", "getInbox",
	"createChannel", "joinChannel", "leaveChannel", "postChannel", "getChannel", "isChannelMember",
	"getTx", "publishPrekeys", "getPrekeyBundle", "getClaims",
	"acceptSession", "listSessions", "getRequests", "setContact", "getContact", "setRequestPolicy",
	"setChannelPolicy", "moderateChannel", "deletePosts",
}

// NewHandler returns the JSON-RPC handler over api with the default
// Options (NewHandlerWith sets them). It has the signature vm.WithHandler
// wants.
func NewHandler(api vm.API) (http.Handler, error) {
	return newHandler(api, Options{})
}

var methodSet = func() map[string]string {
	m := make(map[string]string, len(Methods))
	for _, name := range Methods {
		m[Namespace+"."+name] = Namespace + "." + goName(name)
	}
	return m
}()

func goName(wire string) string {
	r, n := utf8.DecodeRuneInString(wire)
	return string(unicode.ToUpper(r)) + wire[n:]
}
