// Chain IDs (transactions, sessions, channels, blocks, the chain itself):
// 32 bytes, written in CB58 (base58 of the bytes and the last 4 bytes of
// their SHA-256) as Lux's ids.ID does; and the deterministic derivation of
// session and channel IDs (Go: tx.SessionIDFor / tx.ChannelIDFor).

import { sha256 } from '@noble/hashes/sha2.js';
import { concat, equalBytes, Writer } from './bytes.js';
import { SessionError } from './errors.js';
import { sessionIdToBytes } from './identity.js';

export class InvalidIDError extends SessionError {}

const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
const INDEX = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < ALPHABET.length; i++) t[ALPHABET.charCodeAt(i)] = i;
  return t;
})();

function base58Encode(b: Uint8Array): string {
  let zeros = 0;
  while (zeros < b.length && b[zeros] === 0) zeros++;
  let n = 0n;
  for (const x of b) n = (n << 8n) | BigInt(x);
  let s = '';
  while (n > 0n) {
    s = ALPHABET[Number(n % 58n)]! + s;
    n /= 58n;
  }
  return '1'.repeat(zeros) + s;
}

function base58Decode(s: string): Uint8Array {
  let zeros = 0;
  while (zeros < s.length && s[zeros] === '1') zeros++;
  let n = 0n;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const v = c < 128 ? INDEX[c]! : -1;
    if (v < 0) throw new InvalidIDError('invalid ID: not base58');
    n = n * 58n + BigInt(v);
  }
  const bytes: number[] = [];
  while (n > 0n) {
    bytes.unshift(Number(n & 0xffn));
    n >>= 8n;
  }
  return Uint8Array.from([...new Array<number>(zeros).fill(0), ...bytes]);
}

/** CB58 of 32 bytes. */
export function idToString(id: Uint8Array): string {
  if (id.length !== 32) throw new InvalidIDError(`invalid ID: ${id.length} bytes, want 32`);
  return base58Encode(concat(id, sha256(id).subarray(28)));
}

/** Parses a CB58 ID, checking its checksum. */
export function idFromString(s: string): Uint8Array {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) throw new InvalidIDError('invalid ID: bad length');
  const b = base58Decode(s);
  if (b.length !== 36) throw new InvalidIDError('invalid ID: wrong length');
  const id = b.subarray(0, 32);
  if (!equalBytes(sha256(id).subarray(28), b.subarray(32))) throw new InvalidIDError('invalid ID: bad checksum');
  if (idToString(id) !== s) throw new InvalidIDError('invalid ID: not canonical');
  return id.slice();
}

/** Whether s is a well-formed CB58 ID. */
export function isID(s: unknown): s is string {
  if (typeof s !== 'string') return false;
  try {
    idFromString(s);
    return true;
  } catch {
    return false;
  }
}

function derive(label: string, chainID: string, creator: string, nonce: bigint | number): string {
  const w = new Writer(128);
  w.string(label).fixed(idFromString(chainID)).fixed(sessionIdToBytes(creator)).u64(nonce);
  return idToString(sha256(w.finish()));
}

/** The ID of the session created by `creator`'s createSession transaction with `nonce` on `chainID`. */
export function sessionIdFor(chainID: string, creator: string, nonce: bigint | number): string {
  return derive('luxfi/session/v1/session', chainID, creator, nonce);
}

/** The ID of the channel created by `creator`'s createChannel transaction with `nonce` on `chainID`. */
export function channelIdFor(chainID: string, creator: string, nonce: bigint | number): string {
  return derive('luxfi/session/v1/channel', chainID, creator, nonce);
}
