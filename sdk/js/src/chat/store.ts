// Where the protocol keeps its state: a small asynchronous key-value
// interface with atomic multi-record commits, which IndexedDB (one
// readwrite transaction over one object store), a file store or a database
// implements directly. Two implementations here: MemoryStore (tests, and
// the model of the semantics) and EncryptedStore, which encrypts every
// record of another store under a 32-byte key with its name bound.

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, randomBytes, utf8 } from '../bytes.js';
import { ChatError } from './errors.js';

/**
 * The store of a device's protocol state. Names are ASCII strings; values
 * are opaque bytes. `commit` applies every put and delete, or none of them
 * (a crash or an error leaves the store as it was): the protocol relies on
 * it to advance a ratchet and archive the plaintext together, and to save
 * an envelope in the outbox together with the state that made it.
 */
export interface ChatStore {
  /** The value of a record, or undefined. */
  get(name: string): Promise<Uint8Array | undefined>;
  /** The names that start with prefix, in ascending (code unit) order. */
  list(prefix: string): Promise<string[]>;
  /** Writes puts and removes deletes, atomically. */
  commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void>;
}

/** A ChatStore in memory. Values are copied in and out. */
export class MemoryStore implements ChatStore {
  readonly records = new Map<string, Uint8Array>();

  async get(name: string): Promise<Uint8Array | undefined> {
    const v = this.records.get(name);
    return v?.slice();
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.records.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    for (const d of deletes) this.records.delete(d);
    for (const [k, v] of puts) this.records.set(k, v.slice());
  }

  /** A copy of every record (a snapshot for crash tests). */
  snapshot(): MemoryStore {
    const s = new MemoryStore();
    for (const [k, v] of this.records) s.records.set(k, v.slice());
    return s;
  }
}

const RECORD_LABEL = 'luxfi/session/v1/chat/store/';
const ENC_VERSION = 1;
const NONCE = 24;

/**
 * Encrypts every record of another store: version byte, a random 24-byte
 * nonce, then XChaCha20-Poly1305 under `key` with the record's name as
 * associated data, so a record moved to another name, altered or truncated
 * is refused ('state-corrupt'). Names are not hidden: they hold session IDs
 * and positions, which the chain shows anyway. The key is the caller's: in
 * the web app it derives from the unlocked identity (which is stored under
 * the passphrase with scrypt), in Node it can be any 32 secret bytes.
 */
export class EncryptedStore implements ChatStore {
  readonly #key: Uint8Array;

  constructor(
    private readonly inner: ChatStore,
    key: Uint8Array,
  ) {
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new TypeError('EncryptedStore: the key must be 32 bytes');
    this.#key = key.slice();
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    const v = await this.inner.get(name);
    if (v === undefined) return undefined;
    if (v.length < 1 + NONCE + 16 || v[0] !== ENC_VERSION) throw new ChatError('state-corrupt', `record ${name}: not an encrypted record of version ${ENC_VERSION}`);
    try {
      return xchacha20poly1305(this.#key, v.subarray(1, 1 + NONCE), utf8(RECORD_LABEL + name)).decrypt(v.subarray(1 + NONCE));
    } catch {
      throw new ChatError('state-corrupt', `record ${name} does not decrypt (wrong key, or altered)`);
    }
  }

  list(prefix: string): Promise<string[]> {
    return this.inner.list(prefix);
  }

  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    const enc = new Map<string, Uint8Array>();
    for (const [k, v] of puts) {
      const nonce = randomBytes(NONCE);
      enc.set(k, concat(Uint8Array.of(ENC_VERSION), nonce, xchacha20poly1305(this.#key, nonce, utf8(RECORD_LABEL + k)).encrypt(v)));
    }
    await this.inner.commit(enc, deletes);
  }
}
