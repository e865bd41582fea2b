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
import { INVISIBLE } from './text.js';
import {
  DSA_PUBLIC_KEY_SIZE,
  deriveSessionId,
  type Identity,
  isSessionId,
  KEM_PUBLIC_KEY_SIZE,
  kemPublicKeyCanonical,
  parseSessionId,
  PublicIdentity,
  SIGNATURE_SIZE,
  sessionIdFromBytes,
  sessionIdToBytes,
} from './identity.js';
import {
  MAX_CHANNEL_NAME_SIZE,
  MAX_CIPHERTEXT_SIZE,
  MAX_DELETE_ITEMS,
  MAX_METADATA_SIZE,
  MAX_MODERATION_ITEMS,
  MAX_PARTICIPANTS,
  MAX_PREKEYS_PER_TX,
  MAX_TX_SIZE,
} from './limits.js';

export const TX_VERSION = 1;
export const TX_SIGNATURE_CONTEXT = utf8('luxfi/session/v1/tx');
/** version, chain ID, type, author, nonce. */
export const TX_HEADER_SIZE = 1 + 32 + 1 + 33 + 8;

/**
 * The claim entry of one pair handshake (CreateSession, SendMessage;
 * docs/chain.md section 7): the responder, the signed prekey the handshake
 * uses and the one-time prekey it uses, or 0 for none. The chain refuses a
 * signed prekey that is not the participant's current (or unexpired
 * previous) one, and 0 when a one-time prekey was claimable by the author.
 */
export interface Claim {
  /** A participant of the session, not the author. */
  participant: string;
  /** The participant's current signed prekey ID (≥ 1). */
  signedPrekeyId: number;
  /** One of its unclaimed one-time prekey IDs, or 0 for none. */
  oneTimePrekeyId: number;
}

/** A medium-term ML-KEM-768 prekey with an expiry (Unix ms of block time). */
export interface SignedPrekey {
  id: number;
  expiresAt: number;
  kemPublicKey: Uint8Array;
}

/** An ML-KEM-768 prekey used by at most one handshake. */
export interface OneTimePrekey {
  id: number;
  kemPublicKey: Uint8Array;
}

/** Who may join a channel. */
export const JoinPolicy = { Open: 1, InviteOnly: 2 } as const;
export type JoinPolicy = (typeof JoinPolicy)[keyof typeof JoinPolicy];

/** A participant's answer to a session (AcceptSession). */
export const Decision = { Accept: 1, Decline: 2 } as const;
export type Decision = (typeof Decision)[keyof typeof Decision];

/** An identity's status for a peer (SetContact). Contact lists are public on chain. */
export const ContactStatus = { None: 0, Contact: 1, Blocked: 2 } as const;
export type ContactStatus = (typeof ContactStatus)[keyof typeof ContactStatus];

/** Who may send an identity message requests (SetRequestPolicy). */
export const RequestPolicy = { Anyone: 1, ContactsOnly: 2 } as const;
export type RequestPolicy = (typeof RequestPolicy)[keyof typeof RequestPolicy];

/** The longest slow mode a channel may set, in seconds (a day). */
export const MAX_SLOW_MODE_SECONDS = 86400;

/** What ModerateChannel does to its members. */
export const ModerationAction = { Invite: 1, RevokeInvite: 2, Remove: 3, Ban: 4, Unban: 5, MakeModerator: 6, RevokeModerator: 7 } as const;
export type ModerationAction = (typeof ModerationAction)[keyof typeof ModerationAction];

/**
 * Payloads by type name. IDs are CB58 strings, identities Session ID
 * strings. Optional fields take their zero value when signing (no claims,
 * no metadata, open policy, accept); parseTx fills every field.
 */
export interface Payloads {
  /** `work` is the registration proof of work (solveWork) bound to the block at `anchorHeight` (a recent one). */
  registerIdentity: { kemPublicKey: Uint8Array; dsaPublicKey: Uint8Array; anchorHeight: bigint; work: bigint };
  /** `claims`: at most one per listed participant, for the handshakes the creator starts. */
  createSession: { participants: string[]; claims?: Claim[]; metadata?: Uint8Array };
  sendMessage: { session: string; claims?: Claim[]; ciphertext: Uint8Array };
  closeSession: { session: string };
  createChannel: { name: string; joinPolicy?: JoinPolicy };
  joinChannel: { channel: string };
  leaveChannel: { channel: string };
  postChannel: { channel: string; ciphertext: Uint8Array };
  /**
   * A signed prekey (replacing the current one), and/or up to 32 one-time
   * prekeys (IDs increasing, above retireThrough), and/or retireThrough:
   * every unclaimed one-time prekey with an ID at or below it is removed.
   */
  publishPrekeys: { signed?: SignedPrekey | null; retireThrough?: number; oneTime?: OneTimePrekey[] };
  acceptSession: { session: string; decision?: Decision };
  setContact: { peer: string; status: ContactStatus };
  /** `slowModeSeconds`: 0 (none) to a day between a plain member's posts. */
  setChannelPolicy: { channel: string; joinPolicy: JoinPolicy; slowModeSeconds?: number };
  moderateChannel: { channel: string; action: ModerationAction; members: string[] };
  deletePosts: { channel: string; seqs: number[] };
  setRequestPolicy: { policy: RequestPolicy };
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
/** A u8 count in [min, max] (Go: smallCount). */
function smallCount(r: Reader, max: number, min: number, field: string): number {
  const n = r.u8();
  if (n > max) throw new CodecError(`${field} has ${n} elements, at most ${max}`);
  if (n < min) throw new CodecError(`${field} has ${n} elements, at least ${min}`);
  return n;
}
/** A u64 that must fit a JavaScript number (sequence numbers). */
function readSafeU64(r: Reader, field: string): number {
  const v = r.u64();
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${field} beyond 2^53`);
  return Number(v);
}
function readBool(r: Reader): boolean {
  const v = r.u8();
  if (v > 1) throw new CodecError(`invalid boolean ${v}`);
  return v === 1;
}
/** A known join policy (1 or 2); 0 is refused on the wire (the zero value encodes as open). */
function readPolicy(r: Reader): JoinPolicy {
  const v = r.u8();
  if (v === 0) throw bad('join policy 0');
  return v as JoinPolicy;
}
function checkPolicy(p: number | undefined): void {
  if (p !== undefined && p !== 0 && p !== JoinPolicy.Open && p !== JoinPolicy.InviteOnly) throw bad(`invalid join policy ${p}`);
}
function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}
function checkPrekeyID(n: unknown, what: string): void {
  if (!isU32(n) || n === 0) throw bad(`${what}: prekey ID must be 1 to 2^32-1, got ${String(n)}`);
}
function checkPostQuantum(s: string, what: string): void {
  if (!isSessionId(s)) throw bad(`${what} is not a post-quantum Session ID`);
}
function checkCiphertext(c: Uint8Array): void {
  if (c.length === 0) throw bad('empty ciphertext');
  if (c.length > MAX_CIPHERTEXT_SIZE) throw bad(`ciphertext too large: ${c.length} bytes, at most ${MAX_CIPHERTEXT_SIZE}`);
}
const noCheck = (): void => {};
const EMPTY = new Uint8Array(0);

/** 1 to 64 bytes of UTF-8 without the refused code points (Go: tx.ValidChannelName). */
export function validChannelName(name: string): boolean {
  const b = utf8(name);
  // U+FFFD from a lone surrogate would not round-trip: refuse it.
  return b.length >= 1 && b.length <= MAX_CHANNEL_NAME_SIZE && name.isWellFormed() && !INVISIBLE.test(name);
}

function writeClaims(w: Writer, claims: readonly Claim[]): void {
  w.u8(claims.length);
  for (const c of claims) w.fixed(sessionIdToBytes(c.participant)).u32(c.signedPrekeyId).u32(c.oneTimePrekeyId);
}
function readClaims(r: Reader): Claim[] {
  const n = smallCount(r, MAX_PARTICIPANTS - 1, 0, 'claims');
  const claims: Claim[] = [];
  for (let i = 0; i < n; i++) claims.push({ participant: readSessionID(r), signedPrekeyId: r.u32(), oneTimePrekeyId: r.u32() });
  return claims;
}
/** The claims' stateless rules (Go: checkClaims). */
function checkClaims(claims: readonly Claim[], author: string): void {
  if (claims.length > MAX_PARTICIPANTS - 1) throw bad(`${claims.length} claims, at most ${MAX_PARTICIPANTS - 1}`);
  const seen = new Set<string>();
  claims.forEach((c, i) => {
    checkPostQuantum(c.participant, `claim ${i}`);
    if (c.participant === author) throw bad(`claim ${i} names the author`);
    if (seen.has(c.participant)) throw bad(`claim ${i} names a participant claimed before`);
    seen.add(c.participant);
    checkPrekeyID(c.signedPrekeyId, `claim ${i}: signed prekey`);
    if (!isU32(c.oneTimePrekeyId)) throw bad(`claim ${i}: one-time prekey ID ${String(c.oneTimePrekeyId)} (0 for none)`);
  });
}

export const RegisterIdentity = defineTxType({
  code: 1,
  name: 'registerIdentity',
  encode(w, p) {
    w.fixed(p.kemPublicKey, KEM_PUBLIC_KEY_SIZE).fixed(p.dsaPublicKey, DSA_PUBLIC_KEY_SIZE).u64(p.anchorHeight).u64(p.work);
  },
  decode(r) {
    return { kemPublicKey: r.fixed(KEM_PUBLIC_KEY_SIZE), dsaPublicKey: r.fixed(DSA_PUBLIC_KEY_SIZE), anchorHeight: r.u64(), work: r.u64() };
  },
  check(p, author) {
    if (p.kemPublicKey.length !== KEM_PUBLIC_KEY_SIZE || p.dsaPublicKey.length !== DSA_PUBLIC_KEY_SIZE) throw bad('public keys of the wrong size');
    if (deriveSessionId(p.kemPublicKey, p.dsaPublicKey) !== author) throw bad('the Session ID does not derive from the public keys');
    if (!kemPublicKeyCanonical(p.kemPublicKey)) throw bad('the KEM public key is not an ML-KEM-768 public key');
    for (const [k, v] of [['anchorHeight', p.anchorHeight], ['work', p.work]] as const) {
      if (typeof v !== 'bigint' || v < 0n || v > 0xffffffffffffffffn) throw bad(`${k} must be a u64 bigint`);
    }
  },
});

export const CreateSession = defineTxType({
  code: 2,
  name: 'createSession',
  encode(w, p) {
    w.u32(p.participants.length);
    for (const s of p.participants) w.fixed(sessionIdToBytes(s));
    writeClaims(w, p.claims ?? []);
    w.bytes(p.metadata ?? EMPTY);
  },
  decode(r) {
    const n = r.count(MAX_PARTICIPANTS - 1, 'participants');
    const participants: string[] = [];
    for (let i = 0; i < n; i++) participants.push(readSessionID(r));
    const claims = readClaims(r);
    return { participants, claims, metadata: r.bytes(MAX_METADATA_SIZE, 'metadata') };
  },
  check(p, author) {
    if (p.participants.length === 0) throw bad('session needs at least one participant besides the creator');
    if (p.participants.length + 1 > MAX_PARTICIPANTS) throw bad('too many participants');
    if ((p.metadata?.length ?? 0) > MAX_METADATA_SIZE) throw bad('metadata too large');
    const seen = new Set<string>([author]);
    for (const s of p.participants) {
      checkPostQuantum(s, 'participant');
      if (seen.has(s)) throw bad('participant listed twice (or the creator listed)');
      seen.add(s);
    }
    const claims = p.claims ?? [];
    checkClaims(claims, author);
    claims.forEach((c, i) => {
      if (!p.participants.includes(c.participant)) throw bad(`claim ${i} names ${c.participant}, not a listed participant`);
    });
  },
});

export const SendMessage = defineTxType({
  code: 3,
  name: 'sendMessage',
  encode(w, p) {
    id32(w, p.session);
    writeClaims(w, p.claims ?? []);
    w.bytes(p.ciphertext);
  },
  decode(r) {
    const session = readID(r);
    const claims = readClaims(r);
    return { session, claims, ciphertext: r.bytes(MAX_CIPHERTEXT_SIZE, 'ciphertext') };
  },
  check(p, author) {
    checkClaims(p.claims ?? [], author);
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
    w.string(p.name).u8(p.joinPolicy || JoinPolicy.Open);
  },
  decode(r) {
    const b = r.bytes(MAX_CHANNEL_NAME_SIZE, 'channel name');
    let name: string;
    try {
      name = fromUtf8(b);
    } catch {
      throw bad('channel name is not UTF-8');
    }
    return { name, joinPolicy: readPolicy(r) };
  },
  check(p) {
    if (!validChannelName(p.name)) throw bad('invalid channel name');
    checkPolicy(p.joinPolicy);
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

export const PublishPrekeys = defineTxType({
  code: 9,
  name: 'publishPrekeys',
  encode(w, p) {
    const s = p.signed ?? null;
    w.u8(s ? 1 : 0);
    if (s) w.u32(s.id).i64(s.expiresAt).fixed(s.kemPublicKey, KEM_PUBLIC_KEY_SIZE);
    w.u32(p.retireThrough ?? 0);
    const keys = p.oneTime ?? [];
    w.u8(keys.length);
    for (const k of keys) w.u32(k.id).fixed(k.kemPublicKey, KEM_PUBLIC_KEY_SIZE);
  },
  decode(r) {
    let signed: SignedPrekey | null = null;
    if (readBool(r)) {
      const id = r.u32();
      const exp = r.i64();
      if (exp > BigInt(Number.MAX_SAFE_INTEGER) || exp < BigInt(Number.MIN_SAFE_INTEGER)) throw bad('signed prekey expiry beyond 2^53');
      signed = { id, expiresAt: Number(exp), kemPublicKey: r.fixed(KEM_PUBLIC_KEY_SIZE) };
    }
    const retireThrough = r.u32();
    const n = smallCount(r, MAX_PREKEYS_PER_TX, 0, 'one-time prekeys');
    const oneTime: OneTimePrekey[] = [];
    for (let i = 0; i < n; i++) oneTime.push({ id: r.u32(), kemPublicKey: r.fixed(KEM_PUBLIC_KEY_SIZE) });
    return { signed, retireThrough, oneTime };
  },
  check(p) {
    const keys = p.oneTime ?? [];
    const retire = p.retireThrough ?? 0;
    if (!isU32(retire)) throw bad(`retireThrough ${String(retire)} is not a u32`);
    if (!p.signed && keys.length === 0 && retire === 0) throw bad('no prekeys (nor any to retire)');
    if (keys.length > MAX_PREKEYS_PER_TX) throw bad(`${keys.length} one-time prekeys, at most ${MAX_PREKEYS_PER_TX}`);
    if (p.signed) {
      checkPrekeyID(p.signed.id, 'signed prekey');
      if (!Number.isSafeInteger(p.signed.expiresAt)) throw bad('signed prekey expiry is not an integer');
      if (!kemPublicKeyCanonical(p.signed.kemPublicKey)) throw bad(`signed prekey ${p.signed.id} is not an ML-KEM-768 public key`);
    }
    keys.forEach((k, i) => {
      checkPrekeyID(k.id, `one-time prekey ${i}`);
      if (i > 0 && k.id <= keys[i - 1]!.id) throw bad(`one-time prekey ${i} has ID ${k.id} after ${keys[i - 1]!.id}: IDs must increase`);
      if (k.id <= retire) throw bad(`one-time prekey ${k.id} is at or below retireThrough ${retire}`);
      if (!kemPublicKeyCanonical(k.kemPublicKey)) throw bad(`one-time prekey ${k.id} is not an ML-KEM-768 public key`);
    });
  },
});

export const AcceptSession = defineTxType({
  code: 10,
  name: 'acceptSession',
  encode(w, p) {
    id32(w, p.session);
    w.u8(p.decision || Decision.Accept);
  },
  decode(r) {
    const session = readID(r);
    const decision = r.u8();
    if (decision === 0) throw bad('decision 0');
    return { session, decision: decision as Decision };
  },
  check(p) {
    const d = p.decision as number | undefined;
    if (d !== undefined && d !== 0 && d !== Decision.Accept && d !== Decision.Decline) throw bad(`invalid decision ${d}`);
  },
});

export const SetContact = defineTxType({
  code: 11,
  name: 'setContact',
  encode(w, p) {
    w.fixed(sessionIdToBytes(p.peer)).u8(p.status);
  },
  decode(r) {
    return { peer: readSessionID(r), status: r.u8() as ContactStatus };
  },
  check(p, author) {
    checkPostQuantum(p.peer, 'peer');
    if (p.peer === author) throw bad('a contact status for oneself');
    if (p.status !== ContactStatus.None && p.status !== ContactStatus.Contact && p.status !== ContactStatus.Blocked) {
      throw bad(`invalid contact status ${String(p.status)}`);
    }
  },
});

export const SetChannelPolicy = defineTxType({
  code: 12,
  name: 'setChannelPolicy',
  encode(w, p) {
    id32(w, p.channel);
    w.u8(p.joinPolicy || JoinPolicy.Open).u32(p.slowModeSeconds ?? 0);
  },
  decode(r) {
    return { channel: readID(r), joinPolicy: readPolicy(r), slowModeSeconds: r.u32() };
  },
  check(p) {
    checkPolicy(p.joinPolicy);
    const s = p.slowModeSeconds ?? 0;
    if (!isU32(s) || s > MAX_SLOW_MODE_SECONDS) throw bad(`slow mode ${String(s)} s, at most ${MAX_SLOW_MODE_SECONDS}`);
  },
});

export const ModerateChannel = defineTxType({
  code: 13,
  name: 'moderateChannel',
  encode(w, p) {
    id32(w, p.channel);
    w.u8(p.action).u8(p.members.length);
    for (const m of p.members) w.fixed(sessionIdToBytes(m));
  },
  decode(r) {
    const channel = readID(r);
    const action = r.u8() as ModerationAction;
    const n = smallCount(r, MAX_MODERATION_ITEMS, 1, 'members');
    const members: string[] = [];
    for (let i = 0; i < n; i++) members.push(readSessionID(r));
    return { channel, action, members };
  },
  check(p) {
    if (!Number.isInteger(p.action) || p.action < ModerationAction.Invite || p.action > ModerationAction.RevokeModerator) {
      throw bad(`invalid moderation action ${String(p.action)}`);
    }
    if (p.members.length === 0 || p.members.length > MAX_MODERATION_ITEMS) throw bad(`${p.members.length} members, want 1 to ${MAX_MODERATION_ITEMS}`);
    const seen = new Set<string>();
    p.members.forEach((m, i) => {
      checkPostQuantum(m, `member ${i}`);
      if (seen.has(m)) throw bad(`member ${i} listed twice`);
      seen.add(m);
    });
  },
});

export const DeletePosts = defineTxType({
  code: 14,
  name: 'deletePosts',
  encode(w, p) {
    id32(w, p.channel);
    w.u8(p.seqs.length);
    for (const s of p.seqs) w.u64(s);
  },
  decode(r) {
    const channel = readID(r);
    const n = smallCount(r, MAX_DELETE_ITEMS, 1, 'posts');
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) seqs.push(readSafeU64(r, 'sequence number'));
    return { channel, seqs };
  },
  check(p) {
    if (p.seqs.length === 0 || p.seqs.length > MAX_DELETE_ITEMS) throw bad(`${p.seqs.length} posts, want 1 to ${MAX_DELETE_ITEMS}`);
    const seen = new Set<number>();
    for (const s of p.seqs) {
      if (!Number.isSafeInteger(s) || s < 1) throw bad(`invalid sequence number ${s}`);
      if (seen.has(s)) throw bad(`post ${s} listed twice`);
      seen.add(s);
    }
  },
});

export const SetRequestPolicy = defineTxType({
  code: 15,
  name: 'setRequestPolicy',
  encode(w, p) {
    w.u8(p.policy || RequestPolicy.Anyone);
  },
  decode(r) {
    const v = r.u8();
    if (v === 0) throw bad('request policy 0');
    return { policy: v as RequestPolicy };
  },
  check(p) {
    const v = p.policy as number | undefined;
    if (v !== undefined && v !== 0 && v !== RequestPolicy.Anyone && v !== RequestPolicy.ContactsOnly) throw bad(`invalid request policy ${v}`);
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
  if (t.type === 'registerIdentity' && t.nonce !== 0) throw bad(`a registration's nonce is 0, not ${t.nonce}`);
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
