// SessionVM transactions (Go: package vm/tx; LLM.md, "Transactions"),
// built, signed, parsed and verified locally. The node never sees a secret.
//
//   unsigned = version u8 (1) | chainID [32] | type u8 | author [33] | nonce u64 | payload
//   signed   = unsigned | ML-DSA-65 signature [3309]  (context "luxfi/session/v1/tx")
//   tx ID    = SHA-256(signed), in CB58
//
// Each type is one entry of the Payloads interface and one defineTxType
// call (encode, decode, stateless check): new types slot in the same way.

import { sha256 } from '@noble/hashes/sha2.js';
import { CodecError, fromUtf8, Reader, utf8, Writer } from './bytes.js';
import { InvalidTransactionError } from './errors.js';
import { idFromString, idToString } from './ids.js';
import {
  DSA_PUBLIC_KEY_SIZE,
  deriveSessionId,
  type Identity,
  KEM_PUBLIC_KEY_SIZE,
  parseSessionId,
  PublicIdentity,
  SIGNATURE_SIZE,
  sessionIdFromBytes,
  sessionIdToBytes,
} from './identity.js';
import { MAX_CHANNEL_NAME_SIZE, MAX_CIPHERTEXT_SIZE, MAX_METADATA_SIZE, MAX_PARTICIPANTS, MAX_TX_SIZE } from './limits.js';

export const TX_VERSION = 1;
export const TX_SIGNATURE_CONTEXT = utf8('luxfi/session/v1/tx');
/** version, chain ID, type, author, nonce. */
export const TX_HEADER_SIZE = 1 + 32 + 1 + 33 + 8;

/** Payloads by type name. IDs are CB58 strings, identities Session ID strings. */
export interface Payloads {
  registerIdentity: { kemPublicKey: Uint8Array; dsaPublicKey: Uint8Array };
  createSession: { participants: string[]; metadata: Uint8Array };
  sendMessage: { session: string; ciphertext: Uint8Array };
  closeSession: { session: string };
  createChannel: { name: string };
  joinChannel: { channel: string };
  leaveChannel: { channel: string };
  postChannel: { channel: string; ciphertext: Uint8Array };
}
export type TxName = keyof Payloads;

/** How one transaction type is written, read and checked. */
export interface TxTypeSpec<N extends TxName = TxName> {
  readonly code: number;
  readonly name: N;
  encode(w: Writer, p: Payloads[N]): void;
  /** Reads the payload; throws CodecError or InvalidTransactionError. */
  decode(r: Reader): Payloads[N];
  /** The stateless rules (Go: Payload.check); throws InvalidTransactionError. */
  check(p: Payloads[N], author: string): void;
}

const byCode = new Map<number, TxTypeSpec>();
const byName = new Map<string, TxTypeSpec>();

/** Registers a transaction type. */
export function defineTxType<N extends TxName>(spec: TxTypeSpec<N>): TxTypeSpec<N> {
  if (byCode.has(spec.code) || byName.has(spec.name)) throw new Error(`transaction type ${spec.code}/${spec.name} defined twice`);
  byCode.set(spec.code, spec as unknown as TxTypeSpec);
  byName.set(spec.name, spec as unknown as TxTypeSpec);
  return spec;
}

/** The spec of a type, by name or code. */
export function txType<N extends TxName>(name: N): TxTypeSpec<N>;
export function txType(code: number): TxTypeSpec | undefined;
export function txType(k: string | number): TxTypeSpec | undefined {
  return typeof k === 'number' ? byCode.get(k) : byName.get(k);
}

function bad(msg: string): InvalidTransactionError {
  return new InvalidTransactionError(`invalid transaction: ${msg}`);
}

function id32(w: Writer, id: string): void {
  w.fixed(idFromString(id), 32);
}
function readID(r: Reader): string {
  return idToString(r.fixed(32));
}
function readSessionID(r: Reader): string {
  const b = r.fixed(33);
  try {
    return sessionIdFromBytes(b);
  } catch {
    throw bad('malformed Session ID');
  }
}
function checkCiphertext(c: Uint8Array): void {
  if (c.length === 0) throw bad('empty ciphertext');
  if (c.length > MAX_CIPHERTEXT_SIZE) throw bad(`ciphertext too large: ${c.length} bytes, at most ${MAX_CIPHERTEXT_SIZE}`);
}
const noCheck = (): void => {};

/** 1 to 64 bytes of UTF-8 without control characters (Go: tx.ValidChannelName). */
export function validChannelName(name: string): boolean {
  const b = utf8(name);
  // U+FFFD from a lone surrogate would not round-trip: refuse it.
  return b.length >= 1 && b.length <= MAX_CHANNEL_NAME_SIZE && !/[\u0000-\u001f\u007f-\u009f]/.test(name) && name.isWellFormed();
}

export const RegisterIdentity = defineTxType({
  code: 1,
  name: 'registerIdentity',
  encode(w, p) {
    w.fixed(p.kemPublicKey, KEM_PUBLIC_KEY_SIZE).fixed(p.dsaPublicKey, DSA_PUBLIC_KEY_SIZE);
  },
  decode(r) {
    return { kemPublicKey: r.fixed(KEM_PUBLIC_KEY_SIZE), dsaPublicKey: r.fixed(DSA_PUBLIC_KEY_SIZE) };
  },
  check(p, author) {
    if (deriveSessionId(p.kemPublicKey, p.dsaPublicKey) !== author) throw bad('the Session ID does not derive from the public keys');
  },
});

export const CreateSession = defineTxType({
  code: 2,
  name: 'createSession',
  encode(w, p) {
    w.u32(p.participants.length);
    for (const s of p.participants) w.fixed(sessionIdToBytes(s));
    w.bytes(p.metadata);
  },
  decode(r) {
    const n = r.count(MAX_PARTICIPANTS - 1, 'participants');
    const participants: string[] = [];
    for (let i = 0; i < n; i++) participants.push(readSessionID(r));
    return { participants, metadata: r.bytes(MAX_METADATA_SIZE, 'metadata') };
  },
  check(p, author) {
    if (p.participants.length === 0) throw bad('session needs at least one participant besides the creator');
    if (p.participants.length + 1 > MAX_PARTICIPANTS) throw bad('too many participants');
    if (p.metadata.length > MAX_METADATA_SIZE) throw bad('metadata too large');
    const seen = new Set<string>([author]);
    for (const s of p.participants) {
      if (!s.startsWith('07')) throw bad('participant is not a post-quantum Session ID');
      if (seen.has(s)) throw bad('participant listed twice (or the creator listed)');
      seen.add(s);
    }
  },
});

export const SendMessage = defineTxType({
  code: 3,
  name: 'sendMessage',
  encode(w, p) {
    id32(w, p.session);
    w.bytes(p.ciphertext);
  },
  decode(r) {
    return { session: readID(r), ciphertext: r.bytes(MAX_CIPHERTEXT_SIZE, 'ciphertext') };
  },
  check(p) {
    checkCiphertext(p.ciphertext);
  },
});

export const CloseSession = defineTxType({
  code: 4,
  name: 'closeSession',
  encode(w, p) {
    id32(w, p.session);
  },
  decode(r) {
    return { session: readID(r) };
  },
  check: noCheck,
});

export const CreateChannel = defineTxType({
  code: 5,
  name: 'createChannel',
  encode(w, p) {
    w.string(p.name);
  },
  decode(r) {
    const b = r.bytes(MAX_CHANNEL_NAME_SIZE, 'channel name');
    try {
      return { name: fromUtf8(b) };
    } catch {
      throw bad('channel name is not UTF-8');
    }
  },
  check(p) {
    if (!validChannelName(p.name)) throw bad('invalid channel name');
  },
});

export const JoinChannel = defineTxType({
  code: 6,
  name: 'joinChannel',
  encode(w, p) {
    id32(w, p.channel);
  },
  decode(r) {
    return { channel: readID(r) };
  },
  check: noCheck,
});

export const LeaveChannel = defineTxType({
  code: 7,
  name: 'leaveChannel',
  encode(w, p) {
    id32(w, p.channel);
  },
  decode(r) {
    return { channel: readID(r) };
  },
  check: noCheck,
});

export const PostChannel = defineTxType({
  code: 8,
  name: 'postChannel',
  encode(w, p) {
    id32(w, p.channel);
    w.bytes(p.ciphertext);
  },
  decode(r) {
    return { channel: readID(r), ciphertext: r.bytes(MAX_CIPHERTEXT_SIZE, 'ciphertext') };
  },
  check(p) {
    checkCiphertext(p.ciphertext);
  },
});

/** A transaction before signing. */
export interface UnsignedTx<N extends TxName = TxName> {
  chainID: string;
  author: string;
  nonce: number;
  type: N;
  payload: Payloads[N];
}

/** A signed transaction: its parts, its bytes and its ID. */
export interface SignedTx<N extends TxName = TxName> extends UnsignedTx<N> {
  /** The signed encoding, what the write methods take. */
  bytes: Uint8Array;
  /** The bytes the signature covers. */
  unsignedBytes: Uint8Array;
  signature: Uint8Array;
  /** SHA-256 of bytes, in CB58. */
  id: string;
}

function checkNonce(n: number): void {
  if (!Number.isSafeInteger(n) || n < 0) throw bad(`nonce must be a non-negative safe integer, got ${n}`);
}

/** The canonical unsigned encoding: the message the author signs. */
export function encodeUnsigned<N extends TxName>(u: UnsignedTx<N>): Uint8Array {
  const spec = txType(u.type);
  if (!spec) throw bad(`unknown type ${String(u.type)}`);
  checkNonce(u.nonce);
  const w = new Writer(TX_HEADER_SIZE + 256 + SIGNATURE_SIZE);
  w.u8(TX_VERSION).fixed(idFromString(u.chainID)).u8(spec.code).fixed(sessionIdToBytes(u.author)).u64(u.nonce);
  spec.encode(w, u.payload);
  return w.finish();
}

function assemble<N extends TxName>(u: UnsignedTx<N>, unsignedBytes: Uint8Array, signature: Uint8Array): SignedTx<N> {
  const bytes = new Uint8Array(unsignedBytes.length + signature.length);
  bytes.set(unsignedBytes);
  bytes.set(signature, unsignedBytes.length);
  if (bytes.length > MAX_TX_SIZE) throw bad(`transaction is ${bytes.length} bytes, at most ${MAX_TX_SIZE}`);
  return { ...u, bytes, unsignedBytes, signature, id: idToString(sha256(bytes)) };
}

/**
 * Builds and signs a transaction of `identity` (the author) with `nonce`.
 * The stateless rules are checked first, so a transaction the chain would
 * refuse for its shape is never signed.
 */
export function signTx<N extends TxName>(identity: Identity, chainID: string, nonce: number, type: N, payload: Payloads[N]): SignedTx<N> {
  const u: UnsignedTx<N> = { chainID, author: identity.sessionId, nonce, type, payload };
  txType(type).check(payload, identity.sessionId);
  const unsignedBytes = encodeUnsigned(u);
  return assemble(u, unsignedBytes, identity.sign(unsignedBytes, TX_SIGNATURE_CONTEXT));
}

/** @internal Deterministic signing for known-answer tests (sealtest entry point). */
export function _signTxDeterministic<N extends TxName>(identity: Identity, u: UnsignedTx<N>): SignedTx<N> {
  const unsignedBytes = encodeUnsigned(u);
  return assemble(u, unsignedBytes, identity._signDeterministic(unsignedBytes, TX_SIGNATURE_CONTEXT));
}

/**
 * Parses a signed transaction, refusing every non-canonical form (unknown
 * version or type, oversize fields, truncation, trailing bytes), as Go's
 * tx.Parse does. It does not verify the signature (verifyTx) or the
 * stateless rules (checkTx).
 */
export function parseTx(bytes: Uint8Array): SignedTx {
  if (!(bytes instanceof Uint8Array)) throw bad('not bytes');
  if (bytes.length > MAX_TX_SIZE) throw bad(`transaction is ${bytes.length} bytes, at most ${MAX_TX_SIZE}`);
  const r = new Reader(bytes);
  try {
    const version = r.u8();
    if (version !== TX_VERSION) throw bad(`unsupported version ${version}`);
    const chainID = idToString(r.fixed(32));
    const code = r.u8();
    const author = readSessionID(r);
    const nonce64 = r.u64();
    const spec = byCode.get(code);
    if (!spec) throw bad(`unknown type ${code}`);
    if (nonce64 > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('nonce beyond 2^53');
    const payload = spec.decode(r);
    const unsignedLen = r.offset;
    const signature = r.fixed(SIGNATURE_SIZE);
    r.done();
    const u = { chainID, author, nonce: Number(nonce64), type: spec.name, payload } as UnsignedTx;
    return assemble(u, bytes.slice(0, unsignedLen), signature);
  } catch (e) {
    if (e instanceof CodecError) throw bad(e.message);
    throw e;
  }
}

/** The stateless checks: chain ID, the author's prefix, the payload rules. */
export function checkTx(t: SignedTx, chainID: string): void {
  if (t.chainID !== chainID) throw bad('transaction is for another chain');
  if (parseSessionId(t.author).prefix !== 0x07) throw bad('author is not a post-quantum Session ID');
  txType(t.type).check(t.payload as never, t.author);
}

/**
 * Whether the signature verifies under `signer`, which must be the author:
 * a PublicIdentity whose Session ID is the author (checked here), or the
 * author's keys as they were registered.
 */
export function verifyTx(t: SignedTx, signer: PublicIdentity): boolean {
  if (signer.sessionId !== t.author) return false;
  return signer.verify(t.unsignedBytes, t.signature, TX_SIGNATURE_CONTEXT);
}

/** The type name of a type code ("sendMessage"), or undefined. */
export function txTypeName(code: number): TxName | undefined {
  return byCode.get(code)?.name;
}
