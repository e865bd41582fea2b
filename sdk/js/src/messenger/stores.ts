// Where a Messenger keeps its state: a ChatStore (atomic multi-record
// commits) encrypted under a passphrase. openPassphraseStore wraps any
// ChatStore (MemoryStore, FileStore in Node, IndexedDBStore in a browser):
// a key from scrypt(passphrase) encrypts every record (EncryptedStore);
// one cleartext record holds the salt, the parameters and a check value,
// so a wrong passphrase is refused before anything is read.

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { fromBase64, randomBytes, toBase64, utf8 } from '../bytes.js';
import { type ChatStore, EncryptedStore } from '../chat/index.js';
import { EmptyPassphraseError, InvalidIdentityFileError, WrongPassphraseError } from '../errors.js';
import { checkScrypt, DEFAULT_SCRYPT, SCRYPT_LIMITS, type ScryptParams } from '../keyfile.js';

/** The cleartext record of a passphrase store. */
export const PASSPHRASE_RECORD = 'passphrase';
const CHECK_LABEL = utf8('luxfi/session/v1/messenger/store/check');

interface PassphraseRecord {
  v: 1;
  salt: string;
  logN: number;
  r: number;
  p: number;
  nonce: string;
  check: string;
}

/** A store whose cleartext record is invisible to the records above it. */
class Hidden implements ChatStore {
  constructor(private readonly inner: ChatStore) {}
  get(name: string): Promise<Uint8Array | undefined> {
    return this.inner.get(name);
  }
  async list(prefix: string): Promise<string[]> {
    return (await this.inner.list(prefix)).filter((n) => n !== PASSPHRASE_RECORD);
  }
  commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    if (puts.has(PASSPHRASE_RECORD) || deletes.includes(PASSPHRASE_RECORD)) throw new TypeError(`the record name ${PASSPHRASE_RECORD} is reserved`);
    return this.inner.commit(puts, deletes);
  }
}

/**
 * Opens inner under passphrase (set up the first time, with scrypt
 * parameters `scrypt`, by default DEFAULT_SCRYPT, what identity files use):
 * every record is encrypted under scrypt(passphrase) with its name bound.
 * WrongPassphraseError for another passphrase. The stored parameters are
 * checked as an identity file's are (checkScrypt) before any work, so a
 * planted record cannot ask for gigabytes.
 */
export async function openPassphraseStore(inner: ChatStore, passphrase: string, scrypt: ScryptParams = DEFAULT_SCRYPT): Promise<ChatStore> {
  if (passphrase === '') throw new EmptyPassphraseError('a store needs a passphrase');
  const raw = await inner.get(PASSPHRASE_RECORD);
  let rec: PassphraseRecord;
  let key: Uint8Array;
  if (raw === undefined) {
    if ((await inner.list('')).length > 0) throw new InvalidIdentityFileError('the store holds records but no passphrase record');
    const bad = checkScrypt(scrypt);
    if (bad) throw new InvalidIdentityFileError(`the store's passphrase record: ${bad}`);
    const salt = randomBytes(32);
    key = await derive(passphrase, salt, scrypt);
    const nonce = randomBytes(24);
    rec = { v: 1, salt: toBase64(salt), logN: scrypt.logN, r: scrypt.r, p: scrypt.p, nonce: toBase64(nonce), check: toBase64(xchacha20poly1305(key, nonce, CHECK_LABEL).encrypt(new Uint8Array(0))) };
    await inner.commit(new Map([[PASSPHRASE_RECORD, utf8(JSON.stringify(rec))]]), []);
  } else {
    try {
      rec = JSON.parse(new TextDecoder().decode(raw)) as PassphraseRecord;
    } catch {
      throw new InvalidIdentityFileError('the store\'s passphrase record does not parse');
    }
    const bad = typeof rec !== 'object' || rec === null || rec.v !== 1 ? 'not version 1' : checkScrypt(rec);
    if (bad) throw new InvalidIdentityFileError(`the store's passphrase record: ${bad}`);
    let salt: Uint8Array;
    try {
      salt = fromBase64(rec.salt);
      fromBase64(rec.nonce);
      fromBase64(rec.check);
    } catch {
      throw new InvalidIdentityFileError('the store\'s passphrase record: salt, nonce or check value not base64');
    }
    if (salt.length !== 32) throw new InvalidIdentityFileError('the store\'s passphrase record: the salt is not 32 bytes');
    key = await derive(passphrase, salt, { logN: rec.logN, r: rec.r, p: rec.p });
    try {
      xchacha20poly1305(key, fromBase64(rec.nonce), CHECK_LABEL).decrypt(fromBase64(rec.check));
    } catch {
      throw new WrongPassphraseError('wrong passphrase for this store');
    }
  }
  return new EncryptedStore(new Hidden(inner), key);
}

function derive(passphrase: string, salt: Uint8Array, p: ScryptParams): Promise<Uint8Array> {
  return scryptAsync(utf8(passphrase), salt, { N: 2 ** p.logN, r: p.r, p: p.p, dkLen: 32, maxmem: SCRYPT_LIMITS.maxMemory + (1 << 20) + 128 * p.r * p.p });
}

const DB_STORE = 'records';

/**
 * A ChatStore in IndexedDB: one object store, each commit one readwrite
 * transaction (atomic). Open one per identity (name).
 */
export class IndexedDBStore implements ChatStore {
  private constructor(private readonly db: IDBDatabase) {}

  static open(name: string): Promise<IndexedDBStore> {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(name, 1);
      req.onupgradeneeded = () => req.result.createObjectStore(DB_STORE);
      req.onsuccess = () => resolve(new IndexedDBStore(req.result));
      req.onerror = () => reject(req.error);
    });
  }

  get(name: string): Promise<Uint8Array | undefined> {
    return new Promise((resolve, reject) => {
      const req = this.db.transaction(DB_STORE, 'readonly').objectStore(DB_STORE).get(name);
      req.onsuccess = () => resolve(req.result === undefined ? undefined : new Uint8Array(req.result as ArrayBuffer));
      req.onerror = () => reject(req.error);
    });
  }

  list(prefix: string): Promise<string[]> {
    return new Promise((resolve, reject) => {
      const range = prefix === '' ? undefined : IDBKeyRange.bound(prefix, prefix + '\uffff');
      const req = this.db.transaction(DB_STORE, 'readonly').objectStore(DB_STORE).getAllKeys(range);
      req.onsuccess = () => resolve((req.result as string[]).filter((k) => k.startsWith(prefix)).sort());
      req.onerror = () => reject(req.error);
    });
  }

  commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    return new Promise((resolve, reject) => {
      const tx = this.db.transaction(DB_STORE, 'readwrite');
      const s = tx.objectStore(DB_STORE);
      for (const d of deletes) s.delete(d);
      for (const [k, v] of puts) s.put(v.slice().buffer, k);
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
    });
  }

  close(): void {
    this.db.close();
  }
}
