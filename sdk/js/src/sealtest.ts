// Deterministic entry points for known-answer and cross-implementation
// tests, kept out of the main entry as Go keeps crypto/sealtest apart
// (import "@luxfi/session/sealtest"). Never use them outside tests: an
// envelope whose randomness is known to anyone else can be opened by them,
// and a deterministic signature leaks nothing but is needlessly predictable.

import { shake256 } from '@noble/hashes/sha3.js';
import { utf8 } from './bytes.js';
import type { Identity, PublicIdentity } from './identity.js';
import { _seal } from './seal.js';
import { _signTxDeterministic, type SignedTx, type TxName, type UnsignedTx } from './tx.js';
import { encryptToRecipient } from './envelope.js';

/** A source of test randomness: read(n) returns the next n bytes. */
export interface TestRandom {
  read(n: number): Uint8Array;
}

/** SHAKE256(seed) read as a stream, as the Go vectors use it. */
export function shakeStream(seed: string | Uint8Array): TestRandom {
  const xof = shake256.create({}).update(typeof seed === 'string' ? utf8(seed) : seed);
  return { read: (n) => xof.xof(n) };
}

/**
 * Seal with every random value read from rand (the 32-byte content key,
 * then one 32-byte ML-KEM encapsulation seed per recipient, in order) and
 * deterministic ML-DSA-65 signing: Go's sealtest.Seal, byte for byte.
 */
export function sealDeterministic(rand: TestRandom, sender: Identity, recipients: readonly PublicIdentity[], plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return _seal(
    { contentKey: () => rand.read(32), encapsulationSeed: () => rand.read(32), deterministicSignature: true },
    sender,
    recipients,
    plaintext,
    ad,
  );
}

/** A transaction signed deterministically (rnd = 0 in ML-DSA.Sign). */
export function signTxDeterministic<N extends TxName>(identity: Identity, u: UnsignedTx<N>): SignedTx<N> {
  return _signTxDeterministic(identity, u);
}

/** The reference envelope with the encapsulation seed (32) then the nonce (24) read from rand. */
export function encryptToRecipientDeterministic(rand: TestRandom, recipient: PublicIdentity, plaintext: Uint8Array): Uint8Array {
  return encryptToRecipient(recipient, plaintext, { encapsulationSeed: rand.read(32), nonce: rand.read(24) });
}
