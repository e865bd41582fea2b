// Deterministic entry points of the messaging protocol for known-answer and
// cross-implementation tests (docs/protocol.md section 15), kept out of the
// main entry as Go keeps chat/chattest apart (import
// "@luxfi/session/chattest"). Never use them outside tests: a device whose
// randomness is known to anyone else has no security at all.

import { shake256 } from '@noble/hashes/sha3.js';
import { utf8 } from '../bytes.js';
import type { Identity } from '../identity.js';
import { ChatDevice, type Rng } from './device.js';
import type { ChatStore } from './store.js';

/** Prefixes a party's name to make its random stream. */
export const STREAM_LABEL = 'luxfi/session/v1/chat/kat/';

/** The random stream of the known-answer vectors for a party: SHAKE256(STREAM_LABEL || name). */
export function stream(name: string): Rng {
  const xof = shake256.create({}).update(utf8(STREAM_LABEL + name));
  return { read: (n) => xof.xof(n) };
}

/**
 * ChatDevice.open with every random value read from rng, in the order of
 * section 7.4 (sends) and section 15 (prekeys), and deterministic ML-DSA-65
 * signatures (rnd = 0).
 */
export function openDeterministicDevice(rng: Rng, identity: Identity, chainId: Uint8Array, store: ChatStore): Promise<ChatDevice> {
  return ChatDevice._open(identity, chainId, store, { rng, deterministic: true });
}

export { type Rng };
