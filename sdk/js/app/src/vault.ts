// Storage in the browser (IndexedDB). The identity is kept as an identity
// file (the format sessionctl writes: scrypt + XChaCha20-Poly1305 under the
// passphrase). Everything else (contacts, conversations, history) is kept
// encrypted under a key derived from the unlocked identity's secret keys:
// each record is XChaCha20-Poly1305 with a random nonce, its name bound as
// associated data, and stored under a keyed hash of its name, so the
// database shows neither contents nor which conversations exist.

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { concat, fromBase64, fromUtf8, type Identity, randomBytes, toBase64, toHex, utf8 } from '../../src/index.js';

const DB_NAME = 'sessionvm';
const STORE = 'kv';
const VAULT_KEY = 'identity-file';
const STORE_LABEL = 'luxfi/session/v1/webapp/store';
const RECORD_LABEL = 'luxfi/session/v1/webapp/record/';

export class StorageUnavailableError extends Error {}

let dbp: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  dbp ??= new Promise((resolve, reject) => {
    if (typeof indexedDB === 'undefined') {
      reject(new StorageUnavailableError('this browser offers no IndexedDB: keys cannot be stored'));
      return;
    }
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new StorageUnavailableError(`cannot open the browser database: ${req.error?.message ?? 'unknown error'}`));
  });
  return dbp;
}

async function tx<T>(mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  const d = await db();
  return new Promise((resolve, reject) => {
    const t = d.transaction(STORE, mode);
    const req = f(t.objectStore(STORE));
    t.oncomplete = () => resolve(req.result);
    t.onerror = () => reject(t.error ?? new Error('IndexedDB transaction failed'));
    t.onabort = () => reject(t.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** The stored identity file, if any. */
export async function readIdentityFile(): Promise<string | undefined> {
  const v = await tx('readonly', (s) => s.get(VAULT_KEY));
  return typeof v === 'string' ? v : undefined;
}

export async function writeIdentityFile(text: string): Promise<void> {
  await tx('readwrite', (s) => s.put(text, VAULT_KEY));
}

/** The IndexedDB database of the forward-secret protocol's state (its records encrypted under chatStoreKey). */
export const CHAT_DB_NAME = 'sessionvm-chat';
const CHAT_LABEL = 'luxfi/session/v1/webapp/chat';

/** The key of the protocol's store: derived from the unlocked identity's secret keys, as SecureStore's. */
export function chatStoreKey(identity: Identity): Uint8Array {
  const { kemSecretKey, dsaSecretKey } = identity.exportSecretKeys();
  const key = blake2b(concat(utf8(CHAT_LABEL), kemSecretKey, dsaSecretKey), { dkLen: 32 });
  kemSecretKey.fill(0);
  dsaSecretKey.fill(0);
  return key;
}

/** Deletes everything this app stored. */
export async function forgetEverything(): Promise<void> {
  await new Promise<void>((resolve) => {
    const req = indexedDB.deleteDatabase(CHAT_DB_NAME);
    req.onsuccess = req.onerror = req.onblocked = () => resolve();
  });
  await tx('readwrite', (s) => s.clear());
}

/** Encrypted records under a key derived from the identity's secret keys. */
export class SecureStore {
  private readonly key: Uint8Array;

  constructor(identity: Identity) {
    const { kemSecretKey, dsaSecretKey } = identity.exportSecretKeys();
    this.key = blake2b(concat(utf8(STORE_LABEL), kemSecretKey, dsaSecretKey), { dkLen: 32 });
    kemSecretKey.fill(0);
    dsaSecretKey.fill(0);
  }

  private slot(name: string): string {
    return 'r:' + toHex(blake2b(utf8(name), { key: this.key, dkLen: 16 }));
  }

  async get<T>(name: string): Promise<T | undefined> {
    const v = (await tx('readonly', (s) => s.get(this.slot(name)))) as { n: string; c: string } | undefined;
    if (!v) return undefined;
    const pt = xchacha20poly1305(this.key, fromBase64(v.n), utf8(RECORD_LABEL + name)).decrypt(fromBase64(v.c));
    return JSON.parse(fromUtf8(pt)) as T;
  }

  async put(name: string, value: unknown): Promise<void> {
    const nonce = randomBytes(24);
    const c = xchacha20poly1305(this.key, nonce, utf8(RECORD_LABEL + name)).encrypt(utf8(JSON.stringify(value)));
    await tx('readwrite', (s) => s.put({ n: toBase64(nonce), c: toBase64(c) }, this.slot(name)));
  }

  /** Drops the key from memory. */
  close(): void {
    this.key.fill(0);
  }
}
