// The envelope of docs/protocol.md section 6: parse and marshal, canonical
// (marshal(parse(e)) = e for every accepted e). Parsing checks every rule
// the format alone can check (section 6.4); the rules that need the session
// or the state are the receiver's.

import { KEM_CIPHERTEXT_SIZE, KEM_PUBLIC_KEY_SIZE, kemPublicKeyCanonical, SIGNATURE_SIZE } from '../identity.js';
import { MalformedEnvelopeError } from './errors.js';
import { MAX_CHAIN_MESSAGES, MAX_ENVELOPE_SIZE, MAX_PARTICIPANTS, MAX_PLAINTEXT_SIZE } from './limits.js';

export const MAGIC_0 = 0x43; // 'C'
export const MAGIC_1 = 0x48; // 'H'
export const VERSION = 0x01;
export const FLAG_RATCHET_KEY = 0x01;

export const NONCE_SIZE = 16;
export const TAG_SIZE = 4;
export const CHAIN_ID_SIZE = 16;
export const WRAPPED_SIZE = 48;
export const FIXED_HEADER_SIZE = 22;
export const BODY_TAG_SIZE = 16;
export const MID_SIZE = 16;
/** kind u8 | sentAt i64 | mid | after | sig | tag: the smallest body. */
export const MIN_BODY_SIZE = 1 + 8 + MID_SIZE + MID_SIZE + SIGNATURE_SIZE + BODY_TAG_SIZE; // 3366

export const StanzaType = { none: 0x00, continue: 0x01, step: 0x02, handshake: 0x03 } as const;

export const STANZA_SIZE = {
  none: 1,
  continue: 1 + TAG_SIZE + CHAIN_ID_SIZE + 4 + WRAPPED_SIZE, // 73
  step: 1 + TAG_SIZE + CHAIN_ID_SIZE + 4 + 4 + 4 + KEM_CIPHERTEXT_SIZE + WRAPPED_SIZE, // 1169
  handshake: 1 + 4 + 4 + 4 + 2 * KEM_CIPHERTEXT_SIZE + WRAPPED_SIZE, // 2237
  handshakeWithOneTime: 1 + 4 + 4 + 4 + 3 * KEM_CIPHERTEXT_SIZE + WRAPPED_SIZE, // 3325
} as const;

/** Body kinds (section 6.3): content, and control (setup and ratchet messages: no plaintext). */
export const Kind = { content: 0x01, control: 0x02 } as const;

export interface NoneStanza {
  type: 'none';
}
export interface ContinueStanza {
  type: 'continue';
  tree: Uint8Array;
  chain: Uint8Array;
  n: number;
  wrapped: Uint8Array;
}
export interface StepStanza {
  type: 'step';
  tree: Uint8Array;
  target: Uint8Array;
  k: number;
  q: number;
  pn: number;
  ct: Uint8Array;
  wrapped: Uint8Array;
}
export interface HandshakeStanza {
  type: 'handshake';
  spkId: number;
  opkId: number;
  /** The handshake's generation g (section 10.1). */
  gen: number;
  c1: Uint8Array;
  c2: Uint8Array;
  /** Empty when opkId is 0. */
  c3: Uint8Array;
  wrapped: Uint8Array;
}
export type Stanza = NoneStanza | ContinueStanza | StepStanza | HandshakeStanza;

/** A parsed envelope. `header` is the raw header (all stanzas included), the input of HH. */
export interface Envelope {
  sender: number;
  nonce: Uint8Array;
  /** The sender's fresh ratchet key (flags bit 0), or undefined. */
  ratchetKey: Uint8Array | undefined;
  stanzas: Stanza[];
  header: Uint8Array;
  body: Uint8Array;
}

/** The decrypted body. */
export interface Body {
  kind: number;
  sentAt: number;
  /** The message ID seed (0^16 in control messages). */
  mid: Uint8Array;
  /** The messageID of the last content message the sender had sent or opened (0^16: none, and in control messages). */
  after: Uint8Array;
  signature: Uint8Array;
  plaintext: Uint8Array;
}

/** Whether a stanza carries message 0 of a new chain (so the envelope needs a ratchet key). */
export function startsChain(s: Stanza): boolean {
  return s.type === 'step' || s.type === 'handshake';
}

/** The size of a stanza on the wire. */
export function stanzaSize(s: Stanza | { type: 'handshake'; opkId: number }): number {
  switch (s.type) {
    case 'none':
      return STANZA_SIZE.none;
    case 'continue':
      return STANZA_SIZE.continue;
    case 'step':
      return STANZA_SIZE.step;
    case 'handshake':
      return s.opkId === 0 ? STANZA_SIZE.handshake : STANZA_SIZE.handshakeWithOneTime;
  }
}

class Out {
  readonly b: Uint8Array;
  off = 0;
  constructor(n: number) {
    this.b = new Uint8Array(n);
  }
  u8(v: number): void {
    this.b[this.off++] = v;
  }
  u32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`u32 out of range: ${v}`);
    new DataView(this.b.buffer).setUint32(this.off, v);
    this.off += 4;
  }
  fixed(x: Uint8Array, n: number): void {
    if (x.length !== n) throw new RangeError(`want ${n} bytes, got ${x.length}`);
    this.b.set(x, this.off);
    this.off += n;
  }
}

/**
 * The bytes of a stanza before `wrapped`: the associated data of its wrap.
 * Throws RangeError on fields of the wrong size (a bug of the caller).
 */
export function stanzaPrefix(s: Stanza): Uint8Array {
  const o = new Out(stanzaSize(s) - (s.type === 'none' ? 0 : WRAPPED_SIZE));
  writeStanzaPrefix(o, s);
  return o.b;
}

function writeStanzaPrefix(o: Out, s: Stanza): void {
  switch (s.type) {
    case 'none':
      o.u8(StanzaType.none);
      return;
    case 'continue':
      o.u8(StanzaType.continue);
      o.fixed(s.tree, TAG_SIZE);
      o.fixed(s.chain, CHAIN_ID_SIZE);
      o.u32(s.n);
      return;
    case 'step':
      o.u8(StanzaType.step);
      o.fixed(s.tree, TAG_SIZE);
      o.fixed(s.target, CHAIN_ID_SIZE);
      o.u32(s.k);
      o.u32(s.q);
      o.u32(s.pn);
      o.fixed(s.ct, KEM_CIPHERTEXT_SIZE);
      return;
    case 'handshake':
      o.u8(StanzaType.handshake);
      o.u32(s.spkId);
      o.u32(s.opkId);
      o.u32(s.gen);
      o.fixed(s.c1, KEM_CIPHERTEXT_SIZE);
      o.fixed(s.c2, KEM_CIPHERTEXT_SIZE);
      if (s.opkId !== 0) o.fixed(s.c3, KEM_CIPHERTEXT_SIZE);
      else if (s.c3.length !== 0) throw new RangeError('c3 without a one-time prekey');
      return;
  }
}

/** The header size of an envelope with these stanzas. */
export function headerSize(stanzas: readonly Stanza[], withRatchetKey: boolean): number {
  let n = FIXED_HEADER_SIZE + (withRatchetKey ? KEM_PUBLIC_KEY_SIZE : 0);
  for (const s of stanzas) n += stanzaSize(s);
  return n;
}

/** Marshals a header (magic to the last stanza). */
export function marshalHeader(sender: number, nonce: Uint8Array, ratchetKey: Uint8Array | undefined, stanzas: readonly Stanza[]): Uint8Array {
  const o = new Out(headerSize(stanzas, ratchetKey !== undefined));
  o.u8(MAGIC_0);
  o.u8(MAGIC_1);
  o.u8(VERSION);
  o.u8(sender);
  o.u8(stanzas.length);
  o.u8(ratchetKey !== undefined ? FLAG_RATCHET_KEY : 0);
  o.fixed(nonce, NONCE_SIZE);
  if (ratchetKey !== undefined) o.fixed(ratchetKey, KEM_PUBLIC_KEY_SIZE);
  for (const s of stanzas) {
    writeStanzaPrefix(o, s);
    if (s.type !== 'none') o.fixed(s.wrapped, WRAPPED_SIZE);
  }
  return o.b;
}

/** Marshals a parsed envelope (header, then body). */
export function marshalEnvelope(e: Envelope): Uint8Array {
  const h = marshalHeader(e.sender, e.nonce, e.ratchetKey, e.stanzas);
  const out = new Uint8Array(h.length + e.body.length);
  out.set(h);
  out.set(e.body, h.length);
  return out;
}

class In {
  off = 0;
  private readonly v: DataView;
  constructor(readonly b: Uint8Array) {
    this.v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }
  need(n: number, what: string): void {
    if (this.b.length - this.off < n) throw new MalformedEnvelopeError(`truncated ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.b[this.off++]!;
  }
  u32(what: string): number {
    this.need(4, what);
    const x = this.v.getUint32(this.off);
    this.off += 4;
    return x;
  }
  fixed(n: number, what: string): Uint8Array {
    this.need(n, what);
    const x = this.b.slice(this.off, this.off + n);
    this.off += n;
    return x;
  }
}

function parseStanza(r: In, i: number): Stanza {
  const where = `stanza ${i}`;
  const t = r.u8(where);
  switch (t) {
    case StanzaType.none:
      return { type: 'none' };
    case StanzaType.continue: {
      const tree = r.fixed(TAG_SIZE, where);
      const chain = r.fixed(CHAIN_ID_SIZE, where);
      const n = r.u32(where);
      if (n === 0 || n >= MAX_CHAIN_MESSAGES) throw new MalformedEnvelopeError(`${where}: continue with n = ${n}`);
      const wrapped = r.fixed(WRAPPED_SIZE, where);
      return { type: 'continue', tree, chain, n, wrapped };
    }
    case StanzaType.step: {
      const tree = r.fixed(TAG_SIZE, where);
      const target = r.fixed(CHAIN_ID_SIZE, where);
      const k = r.u32(where);
      const q = r.u32(where);
      const pn = r.u32(where);
      if (k === 0) throw new MalformedEnvelopeError(`${where}: step with k = 0`);
      if (q === 0) throw new MalformedEnvelopeError(`${where}: step with q = 0`);
      if (pn > MAX_CHAIN_MESSAGES) throw new MalformedEnvelopeError(`${where}: step with pn = ${pn}`);
      const ct = r.fixed(KEM_CIPHERTEXT_SIZE, where);
      const wrapped = r.fixed(WRAPPED_SIZE, where);
      return { type: 'step', tree, target, k, q, pn, ct, wrapped };
    }
    case StanzaType.handshake: {
      const spkId = r.u32(where);
      const opkId = r.u32(where);
      const gen = r.u32(where);
      if (spkId === 0) throw new MalformedEnvelopeError(`${where}: handshake with signed prekey ID 0`);
      if (gen === 0) throw new MalformedEnvelopeError(`${where}: handshake with generation 0`);
      const c1 = r.fixed(KEM_CIPHERTEXT_SIZE, where);
      const c2 = r.fixed(KEM_CIPHERTEXT_SIZE, where);
      const c3 = opkId !== 0 ? r.fixed(KEM_CIPHERTEXT_SIZE, where) : new Uint8Array(0);
      const wrapped = r.fixed(WRAPPED_SIZE, where);
      return { type: 'handshake', spkId, opkId, gen, c1, c2, c3, wrapped };
    }
    default:
      throw new MalformedEnvelopeError(`${where}: unknown type ${t}`);
  }
}

/**
 * Parses an envelope, refusing (MalformedEnvelopeError) everything section
 * 6.4 refuses, and a ratchet key that fails the FIPS 203 modulus check.
 * The body is not decrypted.
 */
export function parseEnvelope(e: Uint8Array): Envelope {
  if (!(e instanceof Uint8Array)) throw new MalformedEnvelopeError('not bytes');
  if (e.length > MAX_ENVELOPE_SIZE) throw new MalformedEnvelopeError(`${e.length} bytes, at most ${MAX_ENVELOPE_SIZE}`);
  const r = new In(e);
  r.need(FIXED_HEADER_SIZE, 'header');
  if (r.u8('magic') !== MAGIC_0 || r.u8('magic') !== MAGIC_1) throw new MalformedEnvelopeError('wrong magic');
  const version = r.u8('version');
  if (version !== VERSION) throw new MalformedEnvelopeError(`unknown version ${version}`);
  const sender = r.u8('sender');
  const count = r.u8('count');
  const flags = r.u8('flags');
  if (flags & ~FLAG_RATCHET_KEY) throw new MalformedEnvelopeError('unknown flags');
  if (count === 0 || count > MAX_PARTICIPANTS - 1) throw new MalformedEnvelopeError(`${count} stanzas`);
  if (sender > count) throw new MalformedEnvelopeError(`sender index ${sender} with ${count} stanzas`);
  const nonce = r.fixed(NONCE_SIZE, 'nonce');
  let ratchetKey: Uint8Array | undefined;
  if (flags & FLAG_RATCHET_KEY) {
    ratchetKey = r.fixed(KEM_PUBLIC_KEY_SIZE, 'ratchet key');
    if (!kemPublicKeyCanonical(ratchetKey)) throw new MalformedEnvelopeError('the ratchet key is not a valid ML-KEM-768 key');
  }
  const stanzas: Stanza[] = [];
  let starts = false;
  for (let i = 0; i < count; i++) {
    const s = parseStanza(r, i);
    starts ||= startsChain(s);
    stanzas.push(s);
  }
  if (starts !== (ratchetKey !== undefined)) throw new MalformedEnvelopeError('flags bit 0 disagrees with the stanzas');
  const header = e.slice(0, r.off);
  const body = e.slice(r.off);
  if (body.length < MIN_BODY_SIZE) throw new MalformedEnvelopeError(`body of ${body.length} bytes, at least ${MIN_BODY_SIZE}`);
  return { sender, nonce, ratchetKey, stanzas, header, body };
}

const ZERO_MID = new Uint8Array(MID_SIZE);

function isZero(b: Uint8Array): boolean {
  let x = 0;
  for (const v of b) x |= v;
  return x === 0;
}

/**
 * Parses a decrypted body and checks it (section 6.4): kind 1 or 2, a
 * control message without plaintext, mid or after, a plaintext of at most
 * MAX_PLAINTEXT_SIZE bytes. Throws MalformedEnvelopeError.
 */
export function parseBody(b: Uint8Array): Body {
  const fixed = 1 + 8 + 2 * MID_SIZE + SIGNATURE_SIZE;
  if (b.length < fixed) throw new MalformedEnvelopeError('truncated body');
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const kind = b[0]!;
  if (kind !== Kind.content && kind !== Kind.control) throw new MalformedEnvelopeError(`unknown kind ${kind}`);
  const t = v.getBigInt64(1);
  if (t > BigInt(Number.MAX_SAFE_INTEGER) || t < BigInt(Number.MIN_SAFE_INTEGER)) throw new MalformedEnvelopeError('sentAt out of range');
  const mid = b.slice(9, 9 + MID_SIZE);
  const after = b.slice(9 + MID_SIZE, 9 + 2 * MID_SIZE);
  const signature = b.slice(9 + 2 * MID_SIZE, fixed);
  const plaintext = b.slice(fixed);
  if (plaintext.length > MAX_PLAINTEXT_SIZE) throw new MalformedEnvelopeError(`plaintext of ${plaintext.length} bytes, at most ${MAX_PLAINTEXT_SIZE}`);
  if (kind === Kind.control && (plaintext.length !== 0 || !isZero(mid) || !isZero(after))) {
    throw new MalformedEnvelopeError('a control message with a plaintext, a message ID or a reference');
  }
  return { kind, sentAt: Number(t), mid, after, signature, plaintext };
}

/** The body's plaintext before encryption: kind | sentAt | mid | after | sig | plaintext. */
export function marshalBody(kind: number, sentAt: number, mid: Uint8Array, after: Uint8Array, signature: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (signature.length !== SIGNATURE_SIZE || mid.length !== MID_SIZE || after.length !== MID_SIZE) throw new RangeError('body field size');
  const fixed = 1 + 8 + 2 * MID_SIZE + SIGNATURE_SIZE;
  const b = new Uint8Array(fixed + plaintext.length);
  b[0] = kind;
  new DataView(b.buffer).setBigInt64(1, BigInt(sentAt));
  b.set(mid, 9);
  b.set(after, 9 + MID_SIZE);
  b.set(signature, 9 + 2 * MID_SIZE);
  b.set(plaintext, fixed);
  return b;
}

export { ZERO_MID };

/** The size of an envelope with these stanzas and a plaintext of p bytes. */
export function envelopeSize(stanzas: readonly Stanza[], plaintextSize: number): number {
  return headerSize(stanzas, stanzas.some(startsChain)) + MIN_BODY_SIZE + plaintextSize;
}
