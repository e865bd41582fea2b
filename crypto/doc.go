// Package crypto provides the post-quantum primitives of SessionVM:
// identities made of an ML-KEM-768 (FIPS 203) key pair and an ML-DSA-65
// (FIPS 204) key pair, Session IDs, signatures, the reference-compatible
// KEM+AEAD envelope, and Seal/Open, an authenticated multi-recipient
// envelope for the messaging protocol.
//
// The package imports only the standard library, github.com/cloudflare/circl
// and golang.org/x/crypto. Byte formats are documented in LLM.md at the root
// of the repository.
//
// # Performance
//
// Parsing an ML-KEM public key or an ML-DSA key expands a matrix from its
// seed, which costs about as much as the operation itself. An [Identity]
// parses its keys once and keeps them. The byte-slice functions ([Encapsulate],
// [Decapsulate], [Sign], [Verify], ...) keep small bounded caches of parsed
// keys, so calling them repeatedly with the same key is as fast as the raw
// primitive. Secret keys in that cache live as long as the process or until
// evicted; call [ResetKeyCache] to drop them.
//
// # Safety
//
// No input of any length or content makes these functions panic: every
// length is checked before it reaches circl, which panics on wrong lengths.
// Errors are sentinels testable with errors.Is, and never contain key
// material.
package crypto
