// Package chat is the client side of the SessionVM messaging protocol: a
// post-quantum handshake per pair of participants (ML-KEM-768 to the
// identity key, the signed prekey and a one-time prekey), a KEM double
// ratchet per pair (a fresh ML-KEM-768 ratchet key on every change of
// speaker, symmetric chains with a one-way derivation per message), and an
// envelope that encrypts each message once for up to 31 recipients, signed
// with ML-DSA-65 inside the encryption.
//
// The protocol is specified in docs/protocol.md at the root of the
// repository (https://github.com/luxfi/session/blob/main/docs/protocol.md);
// that document is normative, this package implements it. It gives forward
// secrecy (a message read and deleted stays closed to whoever later steals
// the device's keys and state, but not its archive), post-compromise
// security (one round trip with fresh randomness on both sides locks out
// an attacker that copied a device's state), post-quantum sender
// authentication, and refusal of replayed, altered or re-addressed
// messages. It does not hide metadata (who sends to which session, when,
// how much) and is not deniable. Channels keep using crypto.Seal.
//
// # Use
//
// A Device holds one identity's prekeys and conversations in a Store
// (FileStore on disk, encrypted under the passphrase beside the identity
// file; MemoryStore in tests). Publish the prekeys GeneratePrekeys returns;
// create or join a session's Conversation with the session as the chain
// says it is (verified by the caller: package chat never talks to a node);
// then Send and Open:
//
//	dev, _ := chat.NewDevice(identity, chainID, store)
//	upload, _ := dev.GeneratePrekeys(now, true, 32)     // publish with PublishPrekeys
//	conv, _ := dev.Conversation(session)                // session: verified chain data
//	outs, _ := conv.Send(now, []byte("hello"), directory) // one SendMessage tx per Outgoing
//	msg, _ := conv.Open(now, &chat.Delivery{Envelope: ct, Position: seq, Sender: author, Claims: claims})
//
// Time is always passed in. Every state change is committed atomically with
// what it produces: Send commits the advanced ratchet together with the
// envelopes in the outbox before returning them (after a crash, Outbox
// returns the same envelopes), and Open commits the advanced ratchet
// together with the plaintext in the archive (History). Decryption works on
// a copy of the state.
//
// Limits are in limits.go, each with its own error; errors are sentinels
// for errors.Is (errors.go). Known-answer vectors and their deterministic
// entry points are in package chat/chattest.
package chat
