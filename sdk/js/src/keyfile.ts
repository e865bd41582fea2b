// The identity file of Go's Identity.Save / crypto.LoadIdentity (LLM.md,
// "Identity file"): JSON with the public keys in the clear and the secret
// (master seed, or the expanded secret keys) sealed with XChaCha20-Poly1305
// under scrypt(passphrase), every cleartext field bound as associated data.

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { scryptAsync } from '@noble/hashes/scrypt.js';
import { concat, equalBytes, fromBase64, randomBytes, toBase64, utf8, Writer } from './bytes.js';
import { EmptyPassphraseError, InvalidIdentityFileError, InvalidSecretKeyError, SessionError, WrongPassphraseError } from './errors.js';
import {
  DSA_SECRET_KEY_SIZE,
  Identity,
  identityFromSecretKeys,
  identityFromSeed,
  KEM_SECRET_KEY_SIZE,
  PublicIdentity,
  SEED_SIZE,
} from './identity.js';

const FILE_VERSION = 1;
const FILE_LABEL = 'luxfi/session/v1/identity-file';
const SECRET_SEED = 0x01;
const SECRET_KEYS = 0x02;
const SALT_SIZE = 32;
const NONCE_SIZE = 24;
const TAG_SIZE = 16;

/** Bounds on the scrypt parameters a file may ask for (Go refuses the same). */
export const SCRYPT_LIMITS = { minLogN: 10, maxLogN: 22, maxR: 32, maxP: 16, maxMemory: 256 << 20 } as const;

/**
 * What Go writes (crypto/keyfile.go, since issue 9): N = 2^17, r = 8, p = 1,
 * 128 MiB of memory, OWASP's minimum for scrypt. Files written before with
 * N = 2^15 (or any parameters within SCRYPT_LIMITS) still load: the
 * parameters are read from the file. Tests lower the cost by passing
 * `scrypt` explicitly; the default is never lowered.
 */
export const DEFAULT_SCRYPT: Readonly<ScryptParams> = Object.freeze({ logN: 17, r: 8, p: 1 });

/** The largest identity file accepted (Go: MaxIdentityFileSize). */
export const MAX_IDENTITY_FILE_SIZE = 64 << 10;

export interface ScryptParams {
  logN: number;
  r: number;
  p: number;
}

export interface KeyFileOptions {
  /** scrypt parameters for the new file (default DEFAULT_SCRYPT); checked against SCRYPT_LIMITS. */
  scrypt?: ScryptParams;
  /** Called with the scrypt progress, 0 to 1 (the built-in scrypt only). */
  onProgress?: (fraction: number) => void;
  /**
   * Runs scrypt elsewhere (a Web Worker, native code): given the passphrase
   * bytes, the salt and the file's parameters, returns the 32-byte key.
   * Default: noble's scryptAsync on this thread.
   */
  kdf?: ScryptFunction;
}

/** scrypt(passphrase, salt, N = 2^logN, r, p, dkLen = 32). */
export type ScryptFunction = (passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams) => Promise<Uint8Array>;

/**
 * The built-in scrypt (noble's scryptAsync, which yields to the event
 * loop), with its progress (0 to 1) to onProgress if given: a worker
 * running it for a page can report how far it is.
 */
export const nobleScrypt = (passphrase: Uint8Array, salt: Uint8Array, params: ScryptParams, onProgress?: (fraction: number) => void): Promise<Uint8Array> =>
  scryptParams(passphrase, salt, params, onProgress);

function scryptParams(passphrase: Uint8Array, salt: Uint8Array, s: ScryptParams, onProgress?: (x: number) => void): Promise<Uint8Array> {
  const bad = checkScrypt(s);
  if (bad) return Promise.reject(new InvalidIdentityFileError(`invalid identity file: ${bad}`));
  return scryptAsync(passphrase, salt, {
    N: 2 ** s.logN,
    r: s.r,
    p: s.p,
    dkLen: 32,
    maxmem: SCRYPT_LIMITS.maxMemory + (1 << 20) + 128 * s.r * s.p,
    ...(onProgress ? { onProgress } : {}),
  });
}

interface FileFields {
  version: number;
  sessionId: string;
  kemPublicKey: Uint8Array;
  dsaPublicKey: Uint8Array;
  kdf: { name: string; logN: number; r: number; p: number; salt: Uint8Array };
  nonce: Uint8Array;
  sealed: Uint8Array;
}

/**
 * Why scrypt parameters are refused (out of SCRYPT_LIMITS, or more memory
 * or work than Go accepts), undefined when they are acceptable. Every
 * passphrase-derived key of the SDK checks its parameters with this
 * before any work.
 */
export function checkScrypt(s: ScryptParams): string | undefined {
  if (typeof s !== 'object' || s === null) return 'scrypt parameters missing';
  const ints = [s.logN, s.r, s.p].every((v) => Number.isInteger(v));
  if (!ints || s.logN < SCRYPT_LIMITS.minLogN || s.logN > SCRYPT_LIMITS.maxLogN || s.r < 1 || s.r > SCRYPT_LIMITS.maxR || s.p < 1 || s.p > SCRYPT_LIMITS.maxP) {
    return 'scrypt parameters out of range';
  }
  const n = 2 ** s.logN;
  if (128 * s.r * n > SCRYPT_LIMITS.maxMemory || s.p * s.r * n > 8 * 2 ** SCRYPT_LIMITS.maxLogN) return 'scrypt parameters too costly';
  return undefined;
}

/** The associated data: BLAKE2b-256 over the label, the integers and each length-prefixed field. */
function fileAD(f: FileFields): Uint8Array {
  const w = new Writer(256);
  w.fixed(utf8(FILE_LABEL));
  for (const v of [f.version, f.kdf.logN, f.kdf.r, f.kdf.p]) w.u64(v);
  for (const field of [utf8(f.kdf.name), f.kdf.salt, utf8(f.sessionId), f.kemPublicKey, f.dsaPublicKey]) {
    w.u64(field.length);
    w.fixed(field);
  }
  return blake2b(w.finish(), { dkLen: 32 });
}

async function deriveKey(passphrase: string, f: FileFields, opts: KeyFileOptions): Promise<Uint8Array> {
  const params = { logN: f.kdf.logN, r: f.kdf.r, p: f.kdf.p };
  const pw = utf8(passphrase);
  try {
    const key = opts.kdf ? await opts.kdf(pw, f.kdf.salt, params) : await scryptParams(pw, f.kdf.salt, params, opts.onProgress);
    if (!(key instanceof Uint8Array) || key.length !== 32) throw new InvalidIdentityFileError('invalid identity file: the KDF returned no 32-byte key');
    return key;
  } finally {
    pw.fill(0);
  }
}

/**
 * The identity file of `identity` under `passphrase`, as Go's Save writes
 * it (the JSON text; mode and atomic writing are the caller's). The secret
 * is the master seed when the identity has one, else the expanded keys.
 * The passphrase is used as its UTF-8 bytes, without normalization, as Go does.
 */
export async function saveIdentityFile(identity: Identity, passphrase: string, opts: KeyFileOptions = {}): Promise<string> {
  if (!passphrase) throw new EmptyPassphraseError('empty passphrase');
  const params = opts.scrypt ?? DEFAULT_SCRYPT;
  const bad = checkScrypt(params);
  if (bad) throw new InvalidIdentityFileError(`invalid identity file: ${bad}`);
  const seed = identity.seed;
  let secret: Uint8Array;
  if (seed) {
    secret = concat(Uint8Array.of(SECRET_SEED), seed);
    seed.fill(0);
  } else {
    const { kemSecretKey, dsaSecretKey } = identity.exportSecretKeys();
    secret = concat(Uint8Array.of(SECRET_KEYS), kemSecretKey, dsaSecretKey);
    kemSecretKey.fill(0);
    dsaSecretKey.fill(0);
  }
  const f: FileFields = {
    version: FILE_VERSION,
    sessionId: identity.sessionId,
    kemPublicKey: identity.kemPublicKey,
    dsaPublicKey: identity.dsaPublicKey,
    kdf: { name: 'scrypt', logN: params.logN, r: params.r, p: params.p, salt: randomBytes(SALT_SIZE) },
    nonce: randomBytes(NONCE_SIZE),
    sealed: new Uint8Array(0),
  };
  const key = await deriveKey(passphrase, f, opts);
  try {
    f.sealed = xchacha20poly1305(key, f.nonce, fileAD(f)).encrypt(secret);
  } finally {
    key.fill(0);
    secret.fill(0);
  }
  // Field order and indentation as Go's json.MarshalIndent(&f, "", "  ").
  const out = {
    version: f.version,
    sessionId: f.sessionId,
    kemPublicKey: toBase64(f.kemPublicKey),
    dsaPublicKey: toBase64(f.dsaPublicKey),
    kdf: { name: f.kdf.name, logN: f.kdf.logN, r: f.kdf.r, p: f.kdf.p, salt: toBase64(f.kdf.salt) },
    nonce: toBase64(f.nonce),
    sealed: toBase64(f.sealed),
  };
  return JSON.stringify(out, null, 2);
}

const TOP_FIELDS = ['version', 'sessionId', 'kemPublicKey', 'dsaPublicKey', 'kdf', 'nonce', 'sealed'];
const KDF_FIELDS = ['name', 'logN', 'r', 'p', 'salt'];

function invalid(why: string): InvalidIdentityFileError {
  return new InvalidIdentityFileError(`invalid identity file: ${why}`);
}

function b64(v: unknown, what: string): Uint8Array {
  if (typeof v !== 'string') throw invalid(`${what} is not a base64 string`);
  try {
    return fromBase64(v);
  } catch {
    throw invalid(`${what} is not base64`);
  }
}

/** Parses and bounds-checks the JSON before any expensive work. */
function parseFields(text: string | Uint8Array): FileFields {
  const s = typeof text === 'string' ? text : new TextDecoder().decode(text);
  if (s.length > MAX_IDENTITY_FILE_SIZE) throw invalid(`larger than ${MAX_IDENTITY_FILE_SIZE} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    throw invalid('not JSON of the expected shape');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid('not JSON of the expected shape');
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!TOP_FIELDS.includes(k)) throw invalid('not JSON of the expected shape');
  const kdf = o.kdf;
  if (typeof kdf !== 'object' || kdf === null || Array.isArray(kdf)) throw invalid('not JSON of the expected shape');
  const k = kdf as Record<string, unknown>;
  for (const key of Object.keys(k)) if (!KDF_FIELDS.includes(key)) throw invalid('not JSON of the expected shape');
  if (o.version !== FILE_VERSION) throw invalid(`unsupported version ${String(o.version).slice(0, 20)}`);
  if (k.name !== 'scrypt') throw invalid('unsupported KDF');
  const params = { logN: k.logN as number, r: k.r as number, p: k.p as number };
  const bad = checkScrypt(params);
  if (bad) throw invalid(bad);
  if (typeof o.sessionId !== 'string') throw invalid('sessionId is not a string');
  const f: FileFields = {
    version: FILE_VERSION,
    sessionId: o.sessionId,
    kemPublicKey: b64(o.kemPublicKey, 'kemPublicKey'),
    dsaPublicKey: b64(o.dsaPublicKey, 'dsaPublicKey'),
    kdf: { name: 'scrypt', ...params, salt: b64(k.salt, 'salt') },
    nonce: b64(o.nonce, 'nonce'),
    sealed: b64(o.sealed, 'sealed'),
  };
  if (f.kdf.salt.length !== SALT_SIZE || f.nonce.length !== NONCE_SIZE) throw invalid('bad salt or nonce length');
  if (f.sealed.length !== 1 + SEED_SIZE + TAG_SIZE && f.sealed.length !== 1 + KEM_SECRET_KEY_SIZE + DSA_SECRET_KEY_SIZE + TAG_SIZE) {
    throw invalid('bad sealed length');
  }
  return f;
}

/** The scrypt parameters of an identity file, read without the passphrase (to show a cost estimate). */
export function identityFileParams(text: string | Uint8Array): ScryptParams {
  const f = parseFields(text);
  return { logN: f.kdf.logN, r: f.kdf.r, p: f.kdf.p };
}

/** Whether scrypt parameters cost less memory or less work than `than` (by default DEFAULT_SCRYPT, what new files get). */
export function weakerScrypt(p: ScryptParams, than: ScryptParams = DEFAULT_SCRYPT): boolean {
  const mem = (s: ScryptParams) => 128 * s.r * 2 ** s.logN;
  const work = (s: ScryptParams) => s.p * s.r * 2 ** s.logN;
  return mem(p) < mem(than) || work(p) < work(than);
}

/**
 * The identity file rewritten under `opts.scrypt` (by default
 * DEFAULT_SCRYPT) when its own parameters are weaker, else undefined: an
 * app that keeps a file it imported (Go's files from before issue 9 have
 * N = 2^15; the format allows 2^10) keeps it no weaker than what it
 * writes itself. `identity` is the file's, opened with `passphrase`.
 */
export async function upgradeIdentityFile(text: string | Uint8Array, identity: Identity, passphrase: string, opts: KeyFileOptions = {}): Promise<string | undefined> {
  const target = opts.scrypt ?? DEFAULT_SCRYPT;
  if (loadPublicIdentityFile(text).sessionId !== identity.sessionId) throw invalid('the file is another identity\'s');
  if (!weakerScrypt(identityFileParams(text), target)) return undefined;
  return saveIdentityFile(identity, passphrase, { ...opts, scrypt: target });
}

/**
 * Opens an identity file written by Go's Save (sessionctl's key file) or by
 * saveIdentityFile. A wrong passphrase or any changed field gives
 * WrongPassphraseError; anything that is not a valid file gives
 * InvalidIdentityFileError, before any scrypt work when the structure is
 * wrong. The scrypt parameters are read from the file.
 */
export async function loadIdentityFile(text: string | Uint8Array, passphrase: string, opts: Omit<KeyFileOptions, 'scrypt'> = {}): Promise<Identity> {
  const f = parseFields(text);
  const key = await deriveKey(passphrase, f, opts);
  let secret: Uint8Array;
  try {
    secret = xchacha20poly1305(key, f.nonce, fileAD(f)).decrypt(f.sealed);
  } catch {
    throw new WrongPassphraseError('wrong passphrase (or the identity file was changed)');
  } finally {
    key.fill(0);
  }
  let id: Identity;
  try {
    if (secret[0] === SECRET_SEED && secret.length === 1 + SEED_SIZE) {
      id = identityFromSeed(secret.subarray(1));
    } else if (secret[0] === SECRET_KEYS && secret.length === 1 + KEM_SECRET_KEY_SIZE + DSA_SECRET_KEY_SIZE) {
      id = identityFromSecretKeys(secret.subarray(1, 1 + KEM_SECRET_KEY_SIZE), secret.subarray(1 + KEM_SECRET_KEY_SIZE));
    } else {
      throw invalid('unknown secret kind');
    }
  } catch (e) {
    if (e instanceof InvalidIdentityFileError) throw e;
    if (e instanceof InvalidSecretKeyError || e instanceof SessionError) throw invalid(e.message);
    throw e;
  } finally {
    secret.fill(0);
  }
  if (id.sessionId !== f.sessionId || !equalBytes(id.kemPublicKey, f.kemPublicKey) || !equalBytes(id.dsaPublicKey, f.dsaPublicKey)) {
    throw invalid('public keys do not match the sealed secret');
  }
  return id;
}

/** The public part of an identity file, without the passphrase (Go: LoadPublicIdentity). */
export function loadPublicIdentityFile(text: string | Uint8Array): PublicIdentity {
  const f = parseFields(text);
  let id: PublicIdentity;
  try {
    id = new PublicIdentity(f.kemPublicKey, f.dsaPublicKey);
  } catch (e) {
    throw invalid((e as Error).message);
  }
  if (id.sessionId !== f.sessionId) throw invalid('Session ID does not derive from the public keys');
  return id;
}
