// Package wsclient is the client side of the node's streaming transport
// (docs/stream.md): JSON-RPC 2.0 over one WebSocket (RFC 6455), with
// requests pipelined.
//
// What it guarantees:
//   - The handshake of section 3: the subprotocol session.jsonrpc.v1 is
//     required, no extension is accepted, the accept key is checked, and
//     the response is bounded (16 KiB, the ctx or 10 s). A refusal is a
//     [*HandshakeError] with the status, Retry-After and a bounded body.
//   - Every frame the client sends is masked with a fresh key; every frame
//     of the node is checked by [wsframe.ClientReader] (no mask, no RSV
//     bit, minimal lengths, text only, valid UTF-8, the size bound decided
//     from the frame header, memory growing only with bytes received).
//   - Correlation (section 4): requests are written in the order they
//     join the pending queue, and each response must carry the id of the
//     oldest pending request (compared byte for byte with the id the
//     caller gave), or be an array for a batch. Anything else — an
//     unknown, repeated or out-of-order id, a response with nothing
//     pending, an unexpected notification, a message that is not one JSON
//     object or array, a message over the bound, an invalid frame — is
//     [ErrUntrustedNode]: the connection is closed and every pending call
//     fails.
//   - A call whose context ends closes the connection, failing the other
//     pending calls with [ErrAbandoned]; a close frame of the node fails
//     them with a [*CloseError] carrying its code ([Retryable] tells the
//     reconnect rule's cases apart); [Conn.Close] lets responses already
//     on their way arrive for 2 s.
//   - Pings are answered with a pong carrying the latest ping's payload.
//   - Writes are bounded by a deadline; the reader goroutine never writes
//     a data frame, so a node that blocks writing to the client is always
//     read.
//
// What it does not do: it does not reconnect, retry or resend anything,
// and it does not decode responses beyond their top level (the caller
// decodes and checks the result, and for a batch the ids of its
// elements). The rules of docs/stream.md for what to do after a failure
// — resending unanswered requests elsewhere or later, treating them as
// "may have run", the pipelined-transaction rules, the reconnect backoff
// — are the caller's. It does not check that a notification names a
// subscription the client holds (OnNotification's job), nor bound the
// time a response takes (the caller's context does).
package wsclient
