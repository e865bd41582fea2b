// Package wsframe is the server side of RFC 6455 (WebSocket, version 13)
// framing for the node's streaming transport, exactly as docs/stream.md
// specifies it: the Sec-WebSocket-Accept value of the handshake
// (section 3), reading client frames into whole text messages and control
// frames under every rule of section 4 "Frames and messages" ("Failing the
// connection", "Control frames") and the per-message bounds of section 5
// (1 MiB and 64 frames per message, bytes charged to a budget as they
// arrive), and writing the node's frames.
//
// The package does no networking and starts no goroutines or timers: the
// connection loop owns the socket, deadlines, rates and budgets, and calls
// [Reader.Next] when it is ready for the next message. Every refusal is a
// [CloseError] carrying the close code the spec assigns (1002, 1003, 1007
// or 1009), decided from the frame header before any payload byte is read
// whenever the header alone decides it. A [Reader] never allocates from a
// declared length: a message's buffer grows with the bytes received, to at
// most twice them.
//
// What the package does not check: that a message is JSON or a request
// (1007 and 1008 of section 4 are the caller's), control-frame rates, the
// time to receive a message, and anything of the handshake but the key.
package wsframe
