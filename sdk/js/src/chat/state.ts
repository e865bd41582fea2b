// The local state of the protocol (docs/protocol.md sections 9 and 13):
// plain data (numbers, byte arrays, arrays), so a working copy is one
// structuredClone, and a versioned binary codec for each stored record.
// Every record starts with a format version and a kind byte; a reader
// refuses versions and kinds it does not know, and bounds every count.
// These formats are local: they need not interoperate with other clients.

import { CodecError, Reader, Writer } from '../bytes.js';
import { ChatError } from './errors.js';
import { MAX_ONE_TIME_PREKEYS, MAX_OUTBOX, MAX_OWN_CHAINS, MAX_PARTICIPANTS, MAX_PEER_CHAINS, MAX_SKIPPED_KEYS, MAX_TREES } from './limits.js';

/** The format version of every record written by this code. */
export const STATE_VERSION = 1;

const KIND_DEVICE = 0x44; // 'D'
const KIND_CONVERSATION = 0x43; // 'C'
const KIND_OUTBOX = 0x4f; // 'O'
const KIND_ARCHIVE = 0x41; // 'A'

/** A chain of this device in a pair (section 9). q = 0 is the virtual H of a tree this device responded to. */
export interface OwnChain {
  id: Uint8Array;
  q: number;
  /** The 64-byte ML-KEM seed of the ratchet secret key; undefined for H (the identity key). */
  seed: Uint8Array | undefined;
  /** Next slot index k and SK_k; slotKey undefined once deleted. */
  slotK: number;
  slotKey: Uint8Array | undefined;
  /** The sending chain (only the current one): next n and CK_n. */
  sendKey: Uint8Array | undefined;
  sendN: number;
  target: Uint8Array | undefined;
  start: number;
  /** When the peer targeted a later own chain (0: not superseded), and with which of its chains (q). */
  supersededAt: number;
  supersededBy: number;
}

/** A chain of the peer (section 9). q = 0 is the virtual H of a tree this device initiated. */
export interface PeerChain {
  id: Uint8Array;
  q: number;
  /** Next message index and CK_n; ck undefined when closed (or for H). */
  n: number;
  ck: Uint8Array | undefined;
  /** The latest peer chain only: its public ratchet key and the sender-side copy of its slot chain. */
  ek: Uint8Array | undefined;
  slotK: number;
  slotKey: Uint8Array | undefined;
}

/** The pn of a peer chain that had not arrived when the peer's next chain did. */
export interface PendingClose {
  q: number;
  pn: number;
}

/** A peer chain not received yet although a later one was. */
export interface MissingChain {
  q: number;
  later: number;
}

/** A handshake and everything derived from it (section 4). */
export interface Tree {
  id: Uint8Array;
  /** This device initiated it. */
  mine: boolean;
  /** The handshake's position; 0 for an own handshake not yet seen on chain (+∞). */
  p: number;
  /** The initiator's sync position. */
  s: number;
  /** This device's highest chain sequence number in the tree. */
  myQ: number;
  own: OwnChain[];
  peer: PeerChain[];
  closes: PendingClose[];
  /** The highest q of the peer received, and the chains below it still missing with how many later ones arrived since. */
  peerMaxQ: number;
  peerMissing: MissingChain[];
  created: number;
  lastRecv: number;
}

/** A prekey bundle kept by the creator from CreateSession for its first handshake with a peer. */
export interface StoredBundle {
  spkId: number;
  spk: Uint8Array;
  opkId: number;
  opk: Uint8Array | undefined;
}

/** The state of one pair {me, peer}. */
export interface Pair {
  trees: Tree[];
  bundle: StoredBundle | undefined;
  /** Step on the next send (a chain of the peer could not be opened); the chains already answered so. */
  forceStep: boolean;
  answered: Uint8Array[];
  /** Re-initiate on the next send. */
  reset: boolean;
  /** The first position of a message of this peer in a tree this device does not have (0: none). */
  unknownTreeAt: number;
}

/** A kept message key (slot = false: (peer chain, n)) or slot (slot = true: (own chain, k)). */
export interface Skipped {
  pair: number;
  tree: Uint8Array;
  chain: Uint8Array;
  index: number;
  slot: boolean;
  key: Uint8Array;
  at: number;
}

/** What the conversation remembers of an envelope in its outbox (the bytes are their own record). */
export interface OutboxRef {
  hash: Uint8Array;
  /** The trees whose handshakes this envelope carries (their p is set when it is confirmed). */
  trees: { pair: number; id: Uint8Array }[];
}

/** The state of one conversation (an on-chain session) on this device. */
export interface ConversationState {
  chainId: Uint8Array;
  sessionId: Uint8Array;
  /** PD, to check that the session given at load is the one of the state. */
  pd: Uint8Array;
  me: number;
  n: number;
  /** Claims of the creator, per participant index (0 for the creator and for none). */
  claims: number[];
  highestSeen: number;
  /** Every position up to prefix was delivered; above: delivered positions beyond prefix + 1 (bounded). */
  prefix: number;
  above: number[];
  pairs: (Pair | undefined)[];
  skipped: Skipped[];
  outbox: OutboxRef[];
  /** Envelopes confirmed or opened, by hash (the archive holds them; bounded, oldest first). */
  archived: number;
}

/** A signed prekey secret kept by the device. */
export interface SignedPrekeySecret {
  id: number;
  expiresAt: number;
  seed: Uint8Array;
}

/** A one-time prekey secret kept by the device. */
export interface OneTimePrekeySecret {
  id: number;
  seed: Uint8Array;
}

/** The device record: prekey secrets and counters. */
export interface DeviceState {
  nextSignedId: number;
  nextOneTimeId: number;
  signed: SignedPrekeySecret[];
  oneTime: OneTimePrekeySecret[];
}

/** An envelope waiting in the outbox: sent as these same bytes until confirmed. */
export interface OutboxEntry {
  hash: Uint8Array;
  envelope: Uint8Array;
  setup: boolean;
  sentAt: number;
  plaintext: Uint8Array;
  /** Claims its transaction must carry: participant index and one-time prekey ID. */
  claims: { participant: number; prekeyId: number }[];
}

/** A message in the archive: sent and confirmed, or opened. */
export interface ArchiveEntry {
  hash: Uint8Array;
  position: number;
  sender: number;
  setup: boolean;
  sentAt: number;
  plaintext: Uint8Array;
}

// ---- codec ----

const MAX_KEY = 4096;
const MAX_ENV = 1 << 17;

function corrupt(what: string, cause?: unknown): ChatError {
  return new ChatError('state-corrupt', `stored state is corrupt: ${what}`, { cause });
}

function head(w: Writer, kind: number): void {
  w.u8(STATE_VERSION).u8(kind);
}

function readHead(r: Reader, kind: number, what: string): void {
  const v = r.u8();
  if (v !== STATE_VERSION) throw new ChatError('state-version', `${what} record of format version ${v}, this code reads ${STATE_VERSION}`);
  const k = r.u8();
  if (k !== kind) throw corrupt(`${what} record of kind ${k}`);
}

function num(w: Writer, x: number): void {
  w.u64(x);
}

function rnum(r: Reader): number {
  const x = r.u64();
  if (x > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt('number out of range');
  return Number(x);
}

function opt(w: Writer, b: Uint8Array | undefined): void {
  if (b === undefined) w.u8(0);
  else w.u8(1).bytes(b);
}

function ropt(r: Reader, what: string): Uint8Array | undefined {
  const f = r.u8();
  if (f === 0) return undefined;
  if (f !== 1) throw corrupt(what);
  return r.bytes(MAX_KEY, what);
}

function bool(w: Writer, b: boolean): void {
  w.u8(b ? 1 : 0);
}

function rbool(r: Reader): boolean {
  const b = r.u8();
  if (b > 1) throw corrupt('boolean');
  return b === 1;
}

function decode<T>(b: Uint8Array, what: string, f: (r: Reader) => T): T {
  try {
    const r = new Reader(b);
    const v = f(r);
    r.done();
    return v;
  } catch (e) {
    if (e instanceof ChatError) throw e;
    if (e instanceof CodecError || e instanceof RangeError) throw corrupt(what, e);
    throw e;
  }
}

function writeOwn(w: Writer, c: OwnChain): void {
  w.bytes(c.id);
  num(w, c.q);
  opt(w, c.seed);
  num(w, c.slotK);
  opt(w, c.slotKey);
  opt(w, c.sendKey);
  num(w, c.sendN);
  opt(w, c.target);
  num(w, c.start);
  num(w, c.supersededAt);
  num(w, c.supersededBy);
}

function readOwn(r: Reader): OwnChain {
  return {
    id: r.bytes(16, 'chain ID'),
    q: rnum(r),
    seed: ropt(r, 'seed'),
    slotK: rnum(r),
    slotKey: ropt(r, 'slot key'),
    sendKey: ropt(r, 'chain key'),
    sendN: rnum(r),
    target: ropt(r, 'target'),
    start: rnum(r),
    supersededAt: rnum(r),
    supersededBy: rnum(r),
  };
}

function writePeer(w: Writer, c: PeerChain): void {
  w.bytes(c.id);
  num(w, c.q);
  num(w, c.n);
  opt(w, c.ck);
  opt(w, c.ek);
  num(w, c.slotK);
  opt(w, c.slotKey);
}

function readPeer(r: Reader): PeerChain {
  return {
    id: r.bytes(16, 'chain ID'),
    q: rnum(r),
    n: rnum(r),
    ck: ropt(r, 'chain key'),
    ek: ropt(r, 'ratchet key'),
    slotK: rnum(r),
    slotKey: ropt(r, 'slot key'),
  };
}

function writeTree(w: Writer, t: Tree): void {
  w.bytes(t.id);
  bool(w, t.mine);
  num(w, t.p);
  num(w, t.s);
  num(w, t.myQ);
  w.u32(t.own.length);
  for (const c of t.own) writeOwn(w, c);
  w.u32(t.peer.length);
  for (const c of t.peer) writePeer(w, c);
  w.u32(t.closes.length);
  for (const c of t.closes) {
    num(w, c.q);
    num(w, c.pn);
  }
  num(w, t.peerMaxQ);
  w.u32(t.peerMissing.length);
  for (const m of t.peerMissing) {
    num(w, m.q);
    num(w, m.later);
  }
  num(w, t.created);
  num(w, t.lastRecv);
}

function readTree(r: Reader): Tree {
  const id = r.bytes(16, 'tree ID');
  const mine = rbool(r);
  const p = rnum(r);
  const s = rnum(r);
  const myQ = rnum(r);
  const own: OwnChain[] = [];
  for (let i = r.count(MAX_OWN_CHAINS + 1, 'own chains'); i > 0; i--) own.push(readOwn(r));
  const peer: PeerChain[] = [];
  for (let i = r.count(MAX_PEER_CHAINS + 1, 'peer chains'); i > 0; i--) peer.push(readPeer(r));
  const closes: PendingClose[] = [];
  for (let i = r.count(MAX_PEER_CHAINS, 'closes'); i > 0; i--) closes.push({ q: rnum(r), pn: rnum(r) });
  const peerMaxQ = rnum(r);
  const peerMissing: MissingChain[] = [];
  for (let i = r.count(MAX_PEER_CHAINS, 'missing chains'); i > 0; i--) peerMissing.push({ q: rnum(r), later: rnum(r) });
  return { id, mine, p, s, myQ, own, peer, closes, peerMaxQ, peerMissing, created: rnum(r), lastRecv: rnum(r) };
}

function writePair(w: Writer, p: Pair): void {
  w.u32(p.trees.length);
  for (const t of p.trees) writeTree(w, t);
  if (p.bundle) {
    w.u8(1);
    num(w, p.bundle.spkId);
    w.bytes(p.bundle.spk);
    num(w, p.bundle.opkId);
    opt(w, p.bundle.opk);
  } else w.u8(0);
  bool(w, p.forceStep);
  w.u32(p.answered.length);
  for (const a of p.answered) w.bytes(a);
  bool(w, p.reset);
  num(w, p.unknownTreeAt);
}

function readPair(r: Reader): Pair {
  const trees: Tree[] = [];
  for (let i = r.count(MAX_TREES + 1, 'trees'); i > 0; i--) trees.push(readTree(r));
  let bundle: StoredBundle | undefined;
  if (rbool(r)) bundle = { spkId: rnum(r), spk: r.bytes(MAX_KEY, 'prekey'), opkId: rnum(r), opk: ropt(r, 'prekey') };
  const forceStep = rbool(r);
  const answered: Uint8Array[] = [];
  for (let i = r.count(64, 'answered'); i > 0; i--) answered.push(r.bytes(16, 'chain ID'));
  return { trees, bundle, forceStep, answered, reset: rbool(r), unknownTreeAt: rnum(r) };
}

export function encodeConversation(s: ConversationState): Uint8Array {
  const w = new Writer(4096);
  head(w, KIND_CONVERSATION);
  w.bytes(s.chainId).bytes(s.sessionId).bytes(s.pd);
  num(w, s.me);
  num(w, s.n);
  w.u32(s.claims.length);
  for (const c of s.claims) w.u32(c);
  num(w, s.highestSeen);
  num(w, s.prefix);
  w.u32(s.above.length);
  for (const a of s.above) num(w, a);
  w.u32(s.pairs.length);
  for (const p of s.pairs) {
    if (p) {
      w.u8(1);
      writePair(w, p);
    } else w.u8(0);
  }
  w.u32(s.skipped.length);
  for (const k of s.skipped) {
    num(w, k.pair);
    w.bytes(k.tree).bytes(k.chain);
    num(w, k.index);
    bool(w, k.slot);
    w.bytes(k.key);
    num(w, k.at);
  }
  w.u32(s.outbox.length);
  for (const o of s.outbox) {
    w.bytes(o.hash);
    w.u32(o.trees.length);
    for (const t of o.trees) {
      num(w, t.pair);
      w.bytes(t.id);
    }
  }
  num(w, s.archived);
  return w.finish();
}

export function decodeConversation(b: Uint8Array): ConversationState {
  return decode(b, 'conversation', (r) => {
    readHead(r, KIND_CONVERSATION, 'conversation');
    const chainId = r.bytes(32, 'chain ID');
    const sessionId = r.bytes(32, 'session ID');
    const pd = r.bytes(32, 'participants digest');
    const me = rnum(r);
    const n = rnum(r);
    if (n < 2 || n > MAX_PARTICIPANTS || me >= n) throw corrupt('participants');
    const claims: number[] = [];
    for (let i = r.count(MAX_PARTICIPANTS, 'claims'); i > 0; i--) claims.push(r.u32());
    const highestSeen = rnum(r);
    const prefix = rnum(r);
    const above: number[] = [];
    for (let i = r.count(4096, 'positions'); i > 0; i--) above.push(rnum(r));
    const pairs: (Pair | undefined)[] = [];
    for (let i = r.count(MAX_PARTICIPANTS, 'pairs'); i > 0; i--) pairs.push(rbool(r) ? readPair(r) : undefined);
    const skipped: Skipped[] = [];
    for (let i = r.count(MAX_SKIPPED_KEYS + 256, 'skipped keys'); i > 0; i--) {
      skipped.push({ pair: rnum(r), tree: r.bytes(16, 'tree ID'), chain: r.bytes(16, 'chain ID'), index: rnum(r), slot: rbool(r), key: r.bytes(32, 'key'), at: rnum(r) });
    }
    const outbox: OutboxRef[] = [];
    for (let i = r.count(MAX_OUTBOX, 'outbox'); i > 0; i--) {
      const hash = r.bytes(32, 'hash');
      const trees: { pair: number; id: Uint8Array }[] = [];
      for (let j = r.count(MAX_PARTICIPANTS, 'outbox trees'); j > 0; j--) trees.push({ pair: rnum(r), id: r.bytes(16, 'tree ID') });
      outbox.push({ hash, trees });
    }
    if (claims.length !== n || pairs.length !== n) throw corrupt('participant count');
    return { chainId, sessionId, pd, me, n, claims, highestSeen, prefix, above, pairs, skipped, outbox, archived: rnum(r) };
  });
}

export function encodeDevice(d: DeviceState): Uint8Array {
  const w = new Writer(1024);
  head(w, KIND_DEVICE);
  num(w, d.nextSignedId);
  num(w, d.nextOneTimeId);
  w.u32(d.signed.length);
  for (const s of d.signed) {
    num(w, s.id);
    num(w, s.expiresAt);
    w.bytes(s.seed);
  }
  w.u32(d.oneTime.length);
  for (const s of d.oneTime) {
    num(w, s.id);
    w.bytes(s.seed);
  }
  return w.finish();
}

export function decodeDevice(b: Uint8Array): DeviceState {
  return decode(b, 'device', (r) => {
    readHead(r, KIND_DEVICE, 'device');
    const nextSignedId = rnum(r);
    const nextOneTimeId = rnum(r);
    const signed: SignedPrekeySecret[] = [];
    for (let i = r.count(1024, 'signed prekeys'); i > 0; i--) signed.push({ id: rnum(r), expiresAt: rnum(r), seed: r.bytes(64, 'seed') });
    const oneTime: OneTimePrekeySecret[] = [];
    for (let i = r.count(MAX_ONE_TIME_PREKEYS, 'one-time prekeys'); i > 0; i--) oneTime.push({ id: rnum(r), seed: r.bytes(64, 'seed') });
    return { nextSignedId, nextOneTimeId, signed, oneTime };
  });
}

export function encodeOutbox(o: OutboxEntry): Uint8Array {
  const w = new Writer(o.envelope.length + o.plaintext.length + 128);
  head(w, KIND_OUTBOX);
  w.bytes(o.hash).bytes(o.envelope);
  bool(w, o.setup);
  w.i64(o.sentAt);
  w.bytes(o.plaintext);
  w.u32(o.claims.length);
  for (const c of o.claims) {
    num(w, c.participant);
    w.u32(c.prekeyId);
  }
  return w.finish();
}

export function decodeOutbox(b: Uint8Array): OutboxEntry {
  return decode(b, 'outbox', (r) => {
    readHead(r, KIND_OUTBOX, 'outbox');
    const hash = r.bytes(32, 'hash');
    const envelope = r.bytes(MAX_ENV, 'envelope');
    const setup = rbool(r);
    const sentAt = Number(r.i64());
    const plaintext = r.bytes(MAX_ENV, 'plaintext');
    const claims: { participant: number; prekeyId: number }[] = [];
    for (let i = r.count(MAX_PARTICIPANTS, 'claims'); i > 0; i--) claims.push({ participant: rnum(r), prekeyId: r.u32() });
    return { hash, envelope, setup, sentAt, plaintext, claims };
  });
}

export function encodeArchive(a: ArchiveEntry): Uint8Array {
  const w = new Writer(a.plaintext.length + 96);
  head(w, KIND_ARCHIVE);
  w.bytes(a.hash);
  num(w, a.position);
  num(w, a.sender);
  bool(w, a.setup);
  w.i64(a.sentAt);
  w.bytes(a.plaintext);
  return w.finish();
}

export function decodeArchive(b: Uint8Array): ArchiveEntry {
  return decode(b, 'archive', (r) => {
    readHead(r, KIND_ARCHIVE, 'archive');
    return { hash: r.bytes(32, 'hash'), position: rnum(r), sender: rnum(r), setup: rbool(r), sentAt: Number(r.i64()), plaintext: r.bytes(MAX_ENV, 'plaintext') };
  });
}
