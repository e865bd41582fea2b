// The derivations of docs/protocol.md section 5: the hash H over
// length-prefixed inputs, the session values, the handshake, the
// asymmetric step, the message and slot chains and the envelope keys.
// Pure functions of their inputs.

import { blake2b } from '@noble/hashes/blake2.js';
import { utf8 } from '../bytes.js';

const PREFIX = 'luxfi/session/v1/chat/';

/** The labels of section 2, one per derivation. */
export const Label = {
  participants: utf8(PREFIX + 'participants'),
  session: utf8(PREFIX + 'session'),
  key: utf8(PREFIX + 'key'),
  handshakeTranscript: utf8(PREFIX + 'handshake-transcript'),
  handshake: utf8(PREFIX + 'handshake'),
  treeId: utf8(PREFIX + 'tree-id'),
  chainId: utf8(PREFIX + 'chain-id'),
  stepContext: utf8(PREFIX + 'step-context'),
  step: utf8(PREFIX + 'step'),
  slot: utf8(PREFIX + 'slot'),
  message: utf8(PREFIX + 'message'),
  wrap: utf8(PREFIX + 'wrap'),
  contentKey: utf8(PREFIX + 'content-key'),
  header: utf8(PREFIX + 'header'),
  transcript: utf8(PREFIX + 'transcript'),
  messageId: utf8(PREFIX + 'message-id'),
  envelopeId: utf8(PREFIX + 'envelope-id'),
} as const;

/** The ML-DSA-65 context string of message signatures. */
export const SIGN_CONTEXT = utf8('luxfi/session/v1/chat');

const EMPTY = new Uint8Array(0);

function lp(h: ReturnType<typeof blake2b.create>, x: Uint8Array): void {
  const n = x.length;
  h.update(Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  h.update(x);
}

/** H(label, x1, ..., xn) = BLAKE2b-512(lp(label) || lp(x1) || ... || lp(xn)). */
export function H(label: Uint8Array, ...xs: Uint8Array[]): Uint8Array {
  const h = blake2b.create({ dkLen: 64 });
  lp(h, label);
  for (const x of xs) lp(h, x);
  return h.digest();
}

/** The first 32 bytes of H. */
export function H32(label: Uint8Array, ...xs: Uint8Array[]): Uint8Array {
  return H(label, ...xs).slice(0, 32);
}

/** The first 16 bytes of H. */
export function H16(label: Uint8Array, ...xs: Uint8Array[]): Uint8Array {
  return H(label, ...xs).slice(0, 16);
}

/** L || R = H(...): the first and the last 32 bytes. */
export function split(h: Uint8Array): [Uint8Array, Uint8Array] {
  return [h.slice(0, 32), h.slice(32, 64)];
}

export function u8(x: number): Uint8Array {
  return Uint8Array.of(x & 0xff);
}

export function u32(x: number): Uint8Array {
  return Uint8Array.of(x >>> 24, (x >>> 16) & 0xff, (x >>> 8) & 0xff, x & 0xff);
}

export function u64(x: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(x));
  return b;
}

export function i64(x: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigInt64(0, BigInt(x));
  return b;
}

/** PD: the digest of the ordered participant list (33-byte identity IDs). */
export function participantsDigest(ids: readonly Uint8Array[]): Uint8Array {
  return H32(Label.participants, u8(ids.length), ...ids);
}

/** SC: the session context (version 1, chain ID, session ID, PD). */
export function sessionContext(chainId: Uint8Array, sessionId: Uint8Array, pd: Uint8Array): Uint8Array {
  return H32(Label.session, u8(1), chainId, sessionId, pd);
}

/** KH(ek): the hash of an ML-KEM public key. */
export function keyHash(ek: Uint8Array): Uint8Array {
  return H32(Label.key, ek);
}

/** The empty input of H (K3, c3 and KH(OPK) without a one-time prekey; K and ct of A1). */
export const NONE: Uint8Array = EMPTY;

/** The public inputs of a handshake transcript (section 5.3). */
export interface HandshakeInputs {
  sc: Uint8Array;
  initiator: Uint8Array;
  responder: Uint8Array;
  spkId: number;
  opkId: number;
  /** The generation g. */
  gen: number;
  spkHash: Uint8Array;
  /** KH(OPK), empty without a one-time prekey. */
  opkHash: Uint8Array;
  c1: Uint8Array;
  c2: Uint8Array;
  /** Empty without a one-time prekey. */
  c3: Uint8Array;
}

/** TH, the handshake transcript. */
export function handshakeTranscript(i: HandshakeInputs): Uint8Array {
  return H32(Label.handshakeTranscript, i.sc, i.initiator, i.responder, u32(i.spkId), u32(i.opkId), u32(i.gen), i.spkHash, i.opkHash, i.c1, i.c2, i.c3);
}

/** R_H, the handshake root. */
export function handshakeRoot(th: Uint8Array, k1: Uint8Array, k2: Uint8Array, k3: Uint8Array): Uint8Array {
  return H32(Label.handshake, th, k1, k2, k3);
}

/** The public fields of a handshake that name its tree. */
export interface TreeInputs {
  sc: Uint8Array;
  initiator: Uint8Array;
  responder: Uint8Array;
  spkId: number;
  opkId: number;
  gen: number;
  c1: Uint8Array;
  c2: Uint8Array;
  c3: Uint8Array;
}

/**
 * The 16-byte ID of a handshake's tree (and of its virtual chain H): from
 * the session and the stanza only, so anyone computes it from the chain.
 */
export function treeId(i: TreeInputs): Uint8Array {
  return H16(Label.treeId, i.sc, i.initiator, i.responder, u32(i.spkId), u32(i.opkId), u32(i.gen), i.c1, i.c2, i.c3);
}

/** The inputs of an asymmetric step (section 5.4). */
export interface StepInputs {
  sc: Uint8Array;
  sender: Uint8Array;
  peer: Uint8Array;
  targetId: Uint8Array;
  k: number;
  q: number;
  /** The KEM ciphertext; empty for A1. */
  ct: Uint8Array;
  /** KH of the sender's fresh ratchet key. */
  ekHash: Uint8Array;
  /** Slot k of the target. */
  slot: Uint8Array;
  /** The KEM shared secret; empty for A1. */
  kemSecret: Uint8Array;
}

/** A new chain's secrets and ID. */
export interface ChainSecrets {
  id: Uint8Array;
  root: Uint8Array;
  chainKey: Uint8Array;
  /** CC, for the known-answer tests. */
  context: Uint8Array;
}

/** Starts a chain: CC, R_C || CK_C and C.id. */
export function stepChain(s: StepInputs): ChainSecrets {
  const context = H32(Label.stepContext, s.sc, s.sender, s.peer, s.targetId, u32(s.k), u32(s.q), s.ct, s.ekHash);
  const [root, chainKey] = split(H(Label.step, s.slot, s.kemSecret, context));
  const id = H16(Label.chainId, s.targetId, u32(s.k), s.ct);
  return { id, root, chainKey, context };
}

/** One step of a message chain: CK_{n+1} || MK_n = H("…/message", CK_n). */
export function nextMessageKey(ck: Uint8Array): { next: Uint8Array; mk: Uint8Array } {
  const [next, mk] = split(H(Label.message, ck));
  return { next, mk };
}

/** One step of a slot chain: SK_{k+1} || S_k = H("…/slot", SK_k). */
export function nextSlot(sk: Uint8Array): { next: Uint8Array; slot: Uint8Array } {
  const [next, slot] = split(H(Label.slot, sk));
  return { next, slot };
}

/** HH, the hash of an envelope's header. */
export function headerHash(header: Uint8Array): Uint8Array {
  return H32(Label.header, header);
}

/** wk, the wrap key of the stanza of recipient r in a message from x. */
export function wrapKey(mk: Uint8Array, nonce: Uint8Array, x: number, r: number): Uint8Array {
  return H32(Label.wrap, mk, nonce, u8(x), u8(r));
}

/** The fields of a message the content key, the transcript and the body carry. */
export interface MessageFields {
  kind: number;
  sentAt: number;
  mid: Uint8Array;
  after: Uint8Array;
  plaintext: Uint8Array;
}

/** ck = H32("…/content-key", r, u8(kind), i64(sentAt), mid, plaintext): random r hashed with the message. */
export function contentKey(r: Uint8Array, m: MessageFields): Uint8Array {
  return H32(Label.contentKey, r, u8(m.kind), i64(m.sentAt), m.mid, m.plaintext);
}

/** M, the signed transcript (64 bytes). */
export function signedTranscript(sc: Uint8Array, sender: Uint8Array, hh: Uint8Array, m: MessageFields): Uint8Array {
  return H(Label.transcript, sc, sender, hh, u8(m.kind), i64(m.sentAt), m.mid, m.after, m.plaintext);
}

/** messageID = H16("…/message-id", id(sender), mid). */
export function messageId(sender: Uint8Array, mid: Uint8Array): Uint8Array {
  return H16(Label.messageId, sender, mid);
}

/** envelopeID = H16("…/envelope-id", HH, tag), tag the body's last 16 bytes. */
export function envelopeId(hh: Uint8Array, body: Uint8Array): Uint8Array {
  return H16(Label.envelopeId, hh, body.subarray(body.length - 16));
}
