// Identities: an ML-KEM-768 key pair to receive and an ML-DSA-65 key pair
// to sign, derived from a 32-byte master seed exactly as Go's
// crypto.IdentityFromSeed does (LLM.md, "Identity from a master seed").

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import { concat, equalBytes, fromBase64, randomBytes, toBase64, toHex, utf8 } from './bytes.js';
import { InvalidPublicKeyError, InvalidSecretKeyError, InvalidSessionIDError } from './errors.js';

/** Sizes in bytes (FIPS 203 / FIPS 204). */
export const KEM_PUBLIC_KEY_SIZE = 1184;
export const KEM_SECRET_KEY_SIZE = 2400;
export const KEM_SEED_SIZE = 64;
export const KEM_CIPHERTEXT_SIZE = 1088;
export const KEM_SHARED_SECRET_SIZE = 32;
export const DSA_PUBLIC_KEY_SIZE = 1952;
export const DSA_SECRET_KEY_SIZE = 4032;
export const DSA_SEED_SIZE = 32;
export const SIGNATURE_SIZE = 3309;
export const SEED_SIZE = 32;

/** Session ID prefixes: "07" post-quantum, "05" legacy X25519/Ed25519 (parsed, never created). */
export const PREFIX_POST_QUANTUM = '07';
export const PREFIX_LEGACY = '05';
export const SESSION_ID_LENGTH = 66;

const SEED_LABEL_KEM = utf8('luxfi/session/v1/identity/ml-kem-768');
const SEED_LABEL_DSA = utf8('luxfi/session/v1/identity/ml-dsa-65');

/** A parsed Session ID: its kind byte (0x07 or 0x05) and 32-byte digest. */
export interface ParsedSessionID {
  prefix: number;
  digest: Uint8Array;
}

const HEX_LOWER = /^[0-9a-f]*$/;

/** Parses "07" or "05" followed by 64 lowercase hex characters. */
export function parseSessionId(s: string): ParsedSessionID {
  if (typeof s !== 'string' || s.length !== SESSION_ID_LENGTH) {
    throw new InvalidSessionIDError(`invalid Session ID: length ${typeof s === 'string' ? s.length : typeof s}, want ${SESSION_ID_LENGTH}`);
  }
  const p = s.slice(0, 2);
  if (p !== PREFIX_POST_QUANTUM && p !== PREFIX_LEGACY) {
    throw new InvalidSessionIDError(`invalid Session ID: prefix must be "07" or "05"`);
  }
  if (!HEX_LOWER.test(s.slice(2))) throw new InvalidSessionIDError('invalid Session ID: not lowercase hexadecimal');
  const digest = new Uint8Array(32);
  for (let i = 0; i < 32; i++) digest[i] = parseInt(s.slice(2 + 2 * i, 4 + 2 * i), 16);
  return { prefix: p === PREFIX_POST_QUANTUM ? 0x07 : 0x05, digest };
}

/** Whether s is a well-formed post-quantum ("07") Session ID. */
export function isSessionId(s: unknown): s is string {
  return typeof s === 'string' && s.length === SESSION_ID_LENGTH && s.startsWith(PREFIX_POST_QUANTUM) && HEX_LOWER.test(s.slice(2));
}

/** The 33-byte wire form of a Session ID (prefix byte, digest). */
export function sessionIdToBytes(s: string): Uint8Array {
  const id = parseSessionId(s);
  return concat(Uint8Array.of(id.prefix), id.digest);
}

/** The string form of a 33-byte wire Session ID. */
export function sessionIdFromBytes(b: Uint8Array): string {
  if (b.length !== 33 || (b[0] !== 0x07 && b[0] !== 0x05)) throw new InvalidSessionIDError('invalid Session ID bytes');
  return (b[0] === 0x07 ? PREFIX_POST_QUANTUM : PREFIX_LEGACY) + toHex(b.subarray(1));
}

/** "07" + hex(BLAKE2b-256(kemPublicKey ‖ dsaPublicKey)); checks the lengths only. */
export function deriveSessionId(kemPublicKey: Uint8Array, dsaPublicKey: Uint8Array): string {
  if (kemPublicKey.length !== KEM_PUBLIC_KEY_SIZE || dsaPublicKey.length !== DSA_PUBLIC_KEY_SIZE) {
    throw new InvalidPublicKeyError('invalid public key: wrong length');
  }
  const h = blake2b.create({ dkLen: 32 }).update(kemPublicKey).update(dsaPublicKey).digest();
  return PREFIX_POST_QUANTUM + toHex(h);
}

/**
 * The FIPS 203 encapsulation key check: every 12-bit coefficient of t̂ is
 * below q = 3329 (the key's last 32 bytes are the seed ρ).
 */
export function kemPublicKeyCanonical(b: Uint8Array): boolean {
  if (b.length !== KEM_PUBLIC_KEY_SIZE) return false;
  const q = 3329;
  const n = KEM_PUBLIC_KEY_SIZE - 32;
  for (let i = 0; i + 3 <= n; i += 3) {
    const c0 = b[i]! | ((b[i + 1]! & 0x0f) << 8);
    const c1 = (b[i + 1]! >> 4) | (b[i + 2]! << 4);
    if (c0 >= q || c1 >= q) return false;
  }
  return true;
}

interface PreparedKEM {
  encapsulate(msg?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
}

const inspect = Symbol.for('nodejs.util.inspect.custom');

/**
 * The public half of an identity: its Session ID and public keys, checked
 * against each other at construction. Holds no secrets.
 */
export class PublicIdentity {
  readonly sessionId: string;
  readonly kemPublicKey: Uint8Array;
  readonly dsaPublicKey: Uint8Array;
  #prepared: PreparedKEM | undefined;

  /** Checks both keys (lengths, the ML-KEM modulus check) and derives the Session ID. */
  constructor(kemPublicKey: Uint8Array, dsaPublicKey: Uint8Array) {
    if (!(kemPublicKey instanceof Uint8Array) || !kemPublicKeyCanonical(kemPublicKey)) {
      throw new InvalidPublicKeyError('invalid public key: ML-KEM-768 encapsulation key');
    }
    if (!(dsaPublicKey instanceof Uint8Array) || dsaPublicKey.length !== DSA_PUBLIC_KEY_SIZE) {
      throw new InvalidPublicKeyError('invalid public key: ML-DSA-65 key');
    }
    this.kemPublicKey = kemPublicKey.slice();
    this.dsaPublicKey = dsaPublicKey.slice();
    this.sessionId = deriveSessionId(this.kemPublicKey, this.dsaPublicKey);
  }

  /** The 32-byte digest of the Session ID (BLAKE2b-256 of the public keys). */
  get digest(): Uint8Array {
    return parseSessionId(this.sessionId).digest;
  }

  /** Verifies an ML-DSA-65 signature (pure ML-DSA, the given context; empty by default). */
  verify(message: Uint8Array, signature: Uint8Array, context: Uint8Array = new Uint8Array(0)): boolean {
    if (signature.length !== SIGNATURE_SIZE) return false;
    try {
      return ml_dsa65.verify(signature, message, this.dsaPublicKey, { context });
    } catch {
      return false;
    }
  }

  /** ML-KEM-768 encapsulation to this identity; msg (32 bytes) only for known-answer tests. */
  encapsulate(msg?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
    const p: PreparedKEM = (this.#prepared ??= ml_kem768.prepare(this.kemPublicKey) as unknown as PreparedKEM);
    return p.encapsulate(msg);
  }

  /** The public identity JSON of Go's ExportPublic: sessionId and base64 keys. */
  toJSON(): PublicIdentityJSON {
    return { sessionId: this.sessionId, kemPublicKey: toBase64(this.kemPublicKey), dsaPublicKey: toBase64(this.dsaPublicKey) };
  }

  toString(): string {
    return `Identity(${this.sessionId})`;
  }

  [inspect](): string {
    return this.toString();
  }
}

/** The JSON of a public identity (Go: Identity.ExportPublic, the getIdentity reply). */
export interface PublicIdentityJSON {
  sessionId: string;
  kemPublicKey: string;
  dsaPublicKey: string;
}

/**
 * Reads the JSON of Go's ExportPublic: exactly sessionId, kemPublicKey and
 * dsaPublicKey, the Session ID deriving from the keys. Secret-key fields and
 * unknown fields are refused.
 */
export function parsePublicIdentity(json: string | unknown): PublicIdentity {
  let v: unknown = json;
  if (typeof json === 'string') {
    try {
      v = JSON.parse(json);
    } catch {
      throw new InvalidPublicKeyError('invalid public key: not a public identity (JSON)');
    }
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InvalidPublicKeyError('invalid public key: not a public identity');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k === 'kemSecretKey' || k === 'dsaSecretKey') throw new InvalidPublicKeyError('invalid public key: a public identity must not carry secret keys');
    if (k !== 'sessionId' && k !== 'kemPublicKey' && k !== 'dsaPublicKey') throw new InvalidPublicKeyError(`invalid public key: unknown field ${JSON.stringify(k).slice(0, 40)}`);
  }
  if (typeof o.kemPublicKey !== 'string' || typeof o.dsaPublicKey !== 'string' || typeof o.sessionId !== 'string') {
    throw new InvalidPublicKeyError('invalid public key: missing fields');
  }
  let id: PublicIdentity;
  try {
    id = new PublicIdentity(fromBase64(o.kemPublicKey), fromBase64(o.dsaPublicKey));
  } catch (e) {
    if (e instanceof InvalidPublicKeyError) throw e;
    throw new InvalidPublicKeyError('invalid public key: bad base64');
  }
  if (id.sessionId !== o.sessionId) throw new InvalidSessionIDError('invalid Session ID: does not derive from the public keys');
  return id;
}

/**
 * An identity with its secret keys. Secret keys live in private fields:
 * toString, toJSON and Node's inspect print only the Session ID and public
 * keys. Use exportSecretKeys or seed explicitly when a secret is needed.
 */
export class Identity extends PublicIdentity {
  #kemSecretKey: Uint8Array;
  #dsaSecretKey: Uint8Array;
  #seed: Uint8Array | undefined;

  /** Use identityFromSeed, generateIdentity or identityFromSecretKeys. */
  private constructor(kem: { publicKey: Uint8Array; secretKey: Uint8Array }, dsa: { publicKey: Uint8Array; secretKey: Uint8Array }, seed?: Uint8Array) {
    super(kem.publicKey, dsa.publicKey);
    this.#kemSecretKey = kem.secretKey;
    this.#dsaSecretKey = dsa.secretKey;
    this.#seed = seed?.slice();
  }

  /** @internal */
  static _fromSeed(seed: Uint8Array): Identity {
    if (!(seed instanceof Uint8Array) || seed.length !== SEED_SIZE) throw new InvalidSecretKeyError(`invalid secret key: seed must be ${SEED_SIZE} bytes`);
    const dz = blake2b(SEED_LABEL_KEM, { key: seed, dkLen: 64 });
    const xi = blake2b(SEED_LABEL_DSA, { key: seed, dkLen: 32 });
    const kem = ml_kem768.keygen(dz);
    const dsa = ml_dsa65.keygen(xi);
    dz.fill(0);
    xi.fill(0);
    return new Identity(kem, dsa, seed);
  }

  /** @internal */
  static _fromSecretKeys(kemSecretKey: Uint8Array, dsaSecretKey: Uint8Array): Identity {
    let kem: { publicKey: Uint8Array; secretKey: Uint8Array };
    let dsa: { publicKey: Uint8Array; secretKey: Uint8Array };
    if (kemSecretKey.length === KEM_SEED_SIZE) {
      kem = ml_kem768.keygen(kemSecretKey);
    } else if (kemSecretKey.length === KEM_SECRET_KEY_SIZE) {
      // dk = dkPKE (1152) ‖ ek (1184) ‖ H(ek) (32) ‖ z (32): the embedded
      // ek must be a valid key and match its hash (FIPS 203 §7.3).
      const ek = kemSecretKey.slice(1152, 1152 + KEM_PUBLIC_KEY_SIZE);
      if (!kemPublicKeyCanonical(ek) || !equalBytes(sha3_256(ek), kemSecretKey.subarray(2336, 2368))) {
        throw new InvalidSecretKeyError('invalid secret key: ML-KEM-768 decapsulation key');
      }
      kem = { publicKey: ek, secretKey: kemSecretKey.slice() };
    } else {
      throw new InvalidSecretKeyError('invalid secret key: ML-KEM-768 key must be 2400 or 64 bytes');
    }
    if (dsaSecretKey.length === DSA_SEED_SIZE) {
      dsa = ml_dsa65.keygen(dsaSecretKey);
    } else if (dsaSecretKey.length === DSA_SECRET_KEY_SIZE) {
      let pk: Uint8Array;
      try {
        pk = ml_dsa65.getPublicKey(dsaSecretKey);
      } catch {
        throw new InvalidSecretKeyError('invalid secret key: ML-DSA-65 key');
      }
      dsa = { publicKey: pk, secretKey: dsaSecretKey.slice() };
    } else {
      throw new InvalidSecretKeyError('invalid secret key: ML-DSA-65 key must be 4032 or 32 bytes');
    }
    const id = new Identity(kem, dsa);
    id.validate();
    return id;
  }

  /**
   * The FIPS 140-3 pairwise consistency tests: encapsulate to the public key
   * and decapsulate with the secret key; sign and verify. Comparing
   * encodings would miss a corrupted ŝ or tr in an expanded key.
   */
  validate(): void {
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(this.kemPublicKey);
    let ok: boolean;
    try {
      ok = equalBytes(ml_kem768.decapsulate(cipherText, this.#kemSecretKey), sharedSecret);
    } catch {
      ok = false;
    }
    if (!ok) throw new InvalidSecretKeyError('invalid secret key: ML-KEM secret key does not match the public key');
    const msg = utf8('luxfi/session/v1/pairwise-consistency');
    if (!this.verify(msg, this.sign(msg))) {
      throw new InvalidSecretKeyError('invalid secret key: ML-DSA secret key does not match the public key');
    }
  }

  /** The 32-byte master seed, when the identity was derived from one. */
  get seed(): Uint8Array | undefined {
    return this.#seed?.slice();
  }

  /** The expanded secret keys (2400 and 4032 bytes), the forms Go's Identity JSON holds. */
  exportSecretKeys(): { kemSecretKey: Uint8Array; dsaSecretKey: Uint8Array } {
    return { kemSecretKey: this.#kemSecretKey.slice(), dsaSecretKey: this.#dsaSecretKey.slice() };
  }

  /** A hedged (randomized) pure ML-DSA-65 signature under the given context (empty by default). */
  sign(message: Uint8Array, context: Uint8Array = new Uint8Array(0)): Uint8Array {
    return ml_dsa65.sign(message, this.#dsaSecretKey, { context });
  }

  /** @internal Deterministic signing (rnd = 0): known-answer tests only. */
  _signDeterministic(message: Uint8Array, context: Uint8Array): Uint8Array {
    return ml_dsa65.sign(message, this.#dsaSecretKey, { context, extraEntropy: false });
  }

  /** ML-KEM-768 decapsulation (implicit rejection: a foreign ciphertext gives a pseudo-random secret). */
  decapsulate(cipherText: Uint8Array): Uint8Array {
    if (cipherText.length !== KEM_CIPHERTEXT_SIZE) throw new InvalidSecretKeyError('invalid ciphertext length');
    return ml_kem768.decapsulate(cipherText, this.#kemSecretKey);
  }

  /** A public copy without secrets. */
  publicIdentity(): PublicIdentity {
    return new PublicIdentity(this.kemPublicKey, this.dsaPublicKey);
  }
}

/** The identity of a 32-byte master seed, as Go's crypto.IdentityFromSeed derives it. */
export function identityFromSeed(seed: Uint8Array): Identity {
  return Identity._fromSeed(seed);
}

/** A new identity from 32 fresh random bytes (available as identity.seed for backup). */
export function generateIdentity(): Identity {
  const seed = randomBytes(SEED_SIZE);
  try {
    return Identity._fromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/**
 * An identity from its secret keys, each in expanded (2400 / 4032 bytes)
 * or seed (64 / 32 bytes) form, checked with the pairwise consistency tests.
 */
export function identityFromSecretKeys(kemSecretKey: Uint8Array, dsaSecretKey: Uint8Array): Identity {
  return Identity._fromSecretKeys(kemSecretKey, dsaSecretKey);
}
