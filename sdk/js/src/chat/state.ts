// The local state of the protocol (docs/protocol.md sections 9 and 13):
// plain data (numbers, byte arrays, arrays), so a working copy is one
// structuredClone, and a versioned binary codec for each stored record.
// Every record starts with a format version and a kind byte; a reader
// refuses versions and kinds it does not know, and bounds every count.
// These formats are local: they need not interoperate with other clients.

import { CodecError, Reader, Writer } from '../bytes.js';
import { ChatError } from './errors.js';
import {
  MAX_CLAIMED_PREKEYS,
  MAX_HANDSHAKES,
  MAX_ONE_TIME_PREKEYS,
  MAX_OUTBOX,
  MAX_OWN_CHAINS,
  MAX_PARTICIPANTS,
  MAX_PEER_CHAINS,
  MAX_REMEMBERED_ENVELOPES,
  MAX_SKIPPED_KEYS,
  MAX_TREES,
} from './limits.js';

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
  /** Next slot index k and SK_k (undefined once deleted). */
  slotK: number;
  slotKey: Uint8Array | undefined;
  /** Messages sent in it (its next n); the current sending chain also keeps CK_n, its target and start time. */
  sendKey: Uint8Array | undefined;
  sendN: number;
  target: Uint8Array | undefined;
  start: number;
  /** The outbox sequence number of the envelope that started it (0: none, H). */
  startSeq: number;
  /** Its starting envelope died: never sent in again (the pair steps). */
  unusable: boolean;
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
  /** When a message of it was last opened. */
  at: number;
}

/** A peer chain not received yet although a later one was. */
export interface MissingChain {
  q: number;
  later: number;
}

/** The state of a tree: a handshake and everything derived from it (section 4). */
export interface Tree {
  id: Uint8Array;
  g: number;
  /** This device initiated it. */
  mine: boolean;
  /** The highest q this device used in the tree (dead envelopes included). */
  myQ: number;
  own: OwnChain[];
  peer: PeerChain[];
  /** The highest q of the peer received, and the chains below it still missing. */
  peerMaxQ: number;
  peerMissing: MissingChain[];
  /** When something was last sent or opened in it. */
  used: number;
}

/** A tombstone: every tree of the pair this device ever made or opened, for the life of the session (section 10.1). */
export interface Mark {
  id: Uint8Array;
  g: number;
  mine: boolean;
  /** Own handshake: its envelope died (excluded from the choice) / it landed. */
  dead: boolean;
  landed: boolean;
  /** The tree's state is kept (else a message in it is a replay). */
  kept: boolean;
  /** Own handshake: the outbox sequence number of its envelope. */
  seq: number;
}

/** A prekey bundle kept by the creator from CreateSession for its first handshake with a peer. */
export interface StoredBundle {
  spkId: number;
  spk: Uint8Array;
  expiresAt: number;
  opkId: number;
  opk: Uint8Array | undefined;
}

/** A kept message key (slot = false: (peer chain, n)) or slot (slot = true: (own chain, k)). */
export interface Skipped {
  tree: Uint8Array;
  chain: Uint8Array;
  index: number;
  slot: boolean;
  key: Uint8Array;
  at: number;
}

/** The state of one pair {me, peer}. */
export interface Pair {
  marks: Mark[];
  highestGen: number;
  trees: Tree[];
  /** The creator's bundle for its session claim, until its first handshake uses it. */
  bundle: StoredBundle | undefined;
  /** Responder side: the creator's session claim for this device was used by a handshake. */
  sessionClaimUsed: boolean;
  /** Step on the next send (a chain of the peer could not be opened); the chains already answered so. */
  forceStep: boolean;
  answered: Uint8Array[];
  /** Re-initiate on the next send (reset, or an own re-initiation died). */
  reset: boolean;
  /** The first position (a hint) of a message of this peer in a tree this device does not know (0: none). */
  unknownTreeAt: number;
  skipped: Skipped[];
}

/** A creator's session claim for a participant (section 11.2). */
export interface SessionClaim {
  spkId: number;
  opkId: number;
}

export type OutboxStatus = 'pending' | 'dead' | 'superseded';

/** What the conversation remembers of an envelope it made (the bytes are their own record). */
export interface OutboxRef {
  seq: number;
  envelopeId: Uint8Array;
  status: OutboxStatus;
  /** The handshakes it carries: pair and tree. */
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
  /** The creator's session claims, per participant index. */
  claims: (SessionClaim | undefined)[];
  /** The last time used (the clock is made monotonic), and the last content message's sentAt. */
  clock: number;
  lastSentAt: number;
  /** The messageID of the last content message sent or opened (the next `after`). */
  lastMessageId: Uint8Array;
  /** Position hints (section 10.3): the highest delivered, every position up to prefix, delivered ones beyond. */
  highestSeen: number;
  prefix: number;
  above: number[];
  pairs: (Pair | undefined)[];
  /** Pending envelopes in order, then dead and superseded ones still remembered (bounded). */
  outbox: OutboxRef[];
  nextSeq: number;
  /** Content messages received since this device last sent, and when the first of them came (section 7.6). */
  receivedSinceSend: number;
  firstReceivedAt: number;
}

/** A signed prekey secret kept by the device, with KH of its public key. */
export interface SignedPrekeySecret {
  id: number;
  expiresAt: number;
  seed: Uint8Array;
  kh: Uint8Array;
}

/** A one-time prekey secret kept by the device; deadline 0 while unclaimed as far as it knows. */
export interface OneTimePrekeySecret {
  id: number;
  seed: Uint8Array;
  kh: Uint8Array;
  deadline: number;
}

/** The device record: prekey secrets and counters. */
export interface DeviceState {
  nextSignedId: number;
  nextOneTimeId: number;
  signed: SignedPrekeySecret[];
  oneTime: OneTimePrekeySecret[];
  clock: number;
}

/** The message an outbox envelope carries (a content message, or the one a setup message precedes). */
export interface OutboxMessage {
  mid: Uint8Array;
  sentAt: number;
  after: Uint8Array;
  plaintext: Uint8Array;
  /** Participant indexes not addressed. */
  excluded: number[];
}

export type EnvelopeRole = 'content' | 'setup' | 'ratchet';

/** An envelope in the outbox: submitted as these same bytes (the same transaction) until it lands or dies. */
export interface OutboxEntry {
  seq: number;
  envelopeId: Uint8Array;
  envelope: Uint8Array;
  role: EnvelopeRole;
  /** Claims its transaction must carry. */
  claims: { participant: number; spkId: number; opkId: number }[];
  /** Content and setup: the message (setup messages repeat the content message's). */
  message: OutboxMessage | undefined;
  /** The caller's signed transaction, once it gives one (section 7.5). */
  tx: Uint8Array | undefined;
}

/** A message in the archive: sent and landed, or opened. */
export interface ArchiveEntry {
  envelopeId: Uint8Array;
  messageId: Uint8Array;
  position: number;
  sender: number;
  sentAt: number;
  after: Uint8Array;
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

const num = (w: Writer, x: number): void => void w.i64(x);

function rnum(r: Reader): number {
  const x = r.i64();
  if (x > BigInt(Number.MAX_SAFE_INTEGER) || x < BigInt(Number.MIN_SAFE_INTEGER)) throw corrupt('number out of range');
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

const bool = (w: Writer, b: boolean): void => void w.u8(b ? 1 : 0);

function rbool(r: Reader): boolean {
  const b = r.u8();
  if (b > 1) throw corrupt('boolean');
  return b === 1;
}

function list<T>(w: Writer, xs: readonly T[], f: (x: T) => void): void {
  w.u32(xs.length);
  for (const x of xs) f(x);
}

function rlist<T>(r: Reader, max: number, what: string, f: () => T): T[] {
  const out: T[] = [];
  for (let i = r.count(max, what); i > 0; i--) out.push(f());
  return out;
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
  num(w, c.startSeq);
  bool(w, c.unusable);
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
    startSeq: rnum(r),
    unusable: rbool(r),
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
  num(w, c.at);
}

function readPeer(r: Reader): PeerChain {
  return { id: r.bytes(16, 'chain ID'), q: rnum(r), n: rnum(r), ck: ropt(r, 'chain key'), ek: ropt(r, 'ratchet key'), slotK: rnum(r), slotKey: ropt(r, 'slot key'), at: rnum(r) };
}

function writeTree(w: Writer, t: Tree): void {
  w.bytes(t.id);
  num(w, t.g);
  bool(w, t.mine);
  num(w, t.myQ);
  list(w, t.own, (c) => writeOwn(w, c));
  list(w, t.peer, (c) => writePeer(w, c));
  num(w, t.peerMaxQ);
  list(w, t.peerMissing, (m) => {
    num(w, m.q);
    num(w, m.later);
  });
  num(w, t.used);
}

function readTree(r: Reader): Tree {
  return {
    id: r.bytes(16, 'tree ID'),
    g: rnum(r),
    mine: rbool(r),
    myQ: rnum(r),
    own: rlist(r, MAX_OWN_CHAINS + 1, 'own chains', () => readOwn(r)),
    peer: rlist(r, MAX_PEER_CHAINS + 1, 'peer chains', () => readPeer(r)),
    peerMaxQ: rnum(r),
    peerMissing: rlist(r, MAX_PEER_CHAINS, 'missing chains', () => ({ q: rnum(r), later: rnum(r) })),
    used: rnum(r),
  };
}

function writePair(w: Writer, p: Pair): void {
  list(w, p.marks, (m) => {
    w.bytes(m.id);
    num(w, m.g);
    bool(w, m.mine);
    bool(w, m.dead);
    bool(w, m.landed);
    bool(w, m.kept);
    num(w, m.seq);
  });
  num(w, p.highestGen);
  list(w, p.trees, (t) => writeTree(w, t));
  if (p.bundle) {
    w.u8(1);
    num(w, p.bundle.spkId);
    w.bytes(p.bundle.spk);
    num(w, p.bundle.expiresAt);
    num(w, p.bundle.opkId);
    opt(w, p.bundle.opk);
  } else w.u8(0);
  bool(w, p.sessionClaimUsed);
  bool(w, p.forceStep);
  list(w, p.answered, (a) => w.bytes(a));
  bool(w, p.reset);
  num(w, p.unknownTreeAt);
  list(w, p.skipped, (k) => {
    w.bytes(k.tree).bytes(k.chain);
    num(w, k.index);
    bool(w, k.slot);
    w.bytes(k.key);
    num(w, k.at);
  });
}

function readPair(r: Reader): Pair {
  const marks = rlist(r, MAX_HANDSHAKES, 'tombstones', () => ({
    id: r.bytes(16, 'tree ID'),
    g: rnum(r),
    mine: rbool(r),
    dead: rbool(r),
    landed: rbool(r),
    kept: rbool(r),
    seq: rnum(r),
  }));
  const highestGen = rnum(r);
  const trees = rlist(r, MAX_TREES + 1, 'trees', () => readTree(r));
  const bundle = rbool(r) ? { spkId: rnum(r), spk: r.bytes(MAX_KEY, 'prekey'), expiresAt: rnum(r), opkId: rnum(r), opk: ropt(r, 'prekey') } : undefined;
  return {
    marks,
    highestGen,
    trees,
    bundle,
    sessionClaimUsed: rbool(r),
    forceStep: rbool(r),
    answered: rlist(r, 64, 'answered', () => r.bytes(16, 'chain ID')),
    reset: rbool(r),
    unknownTreeAt: rnum(r),
    skipped: rlist(r, MAX_SKIPPED_KEYS + 256, 'skipped keys', () => ({
      tree: r.bytes(16, 'tree ID'),
      chain: r.bytes(16, 'chain ID'),
      index: rnum(r),
      slot: rbool(r),
      key: r.bytes(32, 'key'),
      at: rnum(r),
    })),
  };
}

const STATUS: OutboxStatus[] = ['pending', 'dead', 'superseded'];
const ROLES: EnvelopeRole[] = ['content', 'setup', 'ratchet'];

export function encodeConversation(s: ConversationState): Uint8Array {
  const w = new Writer(4096);
  head(w, KIND_CONVERSATION);
  w.bytes(s.chainId).bytes(s.sessionId).bytes(s.pd);
  num(w, s.me);
  num(w, s.n);
  list(w, s.claims, (c) => {
    if (c) {
      w.u8(1);
      num(w, c.spkId);
      num(w, c.opkId);
    } else w.u8(0);
  });
  num(w, s.clock);
  num(w, s.lastSentAt);
  w.bytes(s.lastMessageId);
  num(w, s.highestSeen);
  num(w, s.prefix);
  list(w, s.above, (a) => num(w, a));
  list(w, s.pairs, (p) => {
    if (p) {
      w.u8(1);
      writePair(w, p);
    } else w.u8(0);
  });
  list(w, s.outbox, (o) => {
    num(w, o.seq);
    w.bytes(o.envelopeId);
    w.u8(STATUS.indexOf(o.status));
    list(w, o.trees, (t) => {
      num(w, t.pair);
      w.bytes(t.id);
    });
  });
  num(w, s.nextSeq);
  num(w, s.receivedSinceSend);
  num(w, s.firstReceivedAt);
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
    if (n < 2 || n > MAX_PARTICIPANTS || me < 0 || me >= n) throw corrupt('participants');
    const claims = rlist(r, MAX_PARTICIPANTS, 'claims', () => (rbool(r) ? { spkId: rnum(r), opkId: rnum(r) } : undefined));
    const clock = rnum(r);
    const lastSentAt = rnum(r);
    const lastMessageId = r.bytes(16, 'message ID');
    const highestSeen = rnum(r);
    const prefix = rnum(r);
    const above = rlist(r, 4096, 'positions', () => rnum(r));
    const pairs = rlist(r, MAX_PARTICIPANTS, 'pairs', () => (rbool(r) ? readPair(r) : undefined));
    const outbox = rlist(r, MAX_OUTBOX + MAX_REMEMBERED_ENVELOPES, 'outbox', () => {
      const seq = rnum(r);
      const envelopeId = r.bytes(16, 'envelope ID');
      const status = STATUS[r.u8()];
      if (!status) throw corrupt('outbox status');
      const trees = rlist(r, MAX_PARTICIPANTS, 'outbox trees', () => ({ pair: rnum(r), id: r.bytes(16, 'tree ID') }));
      return { seq, envelopeId, status, trees };
    });
    const nextSeq = rnum(r);
    const receivedSinceSend = rnum(r);
    const firstReceivedAt = rnum(r);
    if (claims.length !== n || pairs.length !== n) throw corrupt('participant count');
    return { chainId, sessionId, pd, me, n, claims, clock, lastSentAt, lastMessageId, highestSeen, prefix, above, pairs, outbox, nextSeq, receivedSinceSend, firstReceivedAt };
  });
}

export function encodeDevice(d: DeviceState): Uint8Array {
  const w = new Writer(1024);
  head(w, KIND_DEVICE);
  num(w, d.nextSignedId);
  num(w, d.nextOneTimeId);
  list(w, d.signed, (s) => {
    num(w, s.id);
    num(w, s.expiresAt);
    w.bytes(s.seed).bytes(s.kh);
  });
  list(w, d.oneTime, (s) => {
    num(w, s.id);
    w.bytes(s.seed).bytes(s.kh);
    num(w, s.deadline);
  });
  num(w, d.clock);
  return w.finish();
}

export function decodeDevice(b: Uint8Array): DeviceState {
  return decode(b, 'device', (r) => {
    readHead(r, KIND_DEVICE, 'device');
    return {
      nextSignedId: rnum(r),
      nextOneTimeId: rnum(r),
      signed: rlist(r, 1024, 'signed prekeys', () => ({ id: rnum(r), expiresAt: rnum(r), seed: r.bytes(64, 'seed'), kh: r.bytes(32, 'key hash') })),
      oneTime: rlist(r, MAX_ONE_TIME_PREKEYS + MAX_CLAIMED_PREKEYS, 'one-time prekeys', () => ({ id: rnum(r), seed: r.bytes(64, 'seed'), kh: r.bytes(32, 'key hash'), deadline: rnum(r) })),
      clock: rnum(r),
    };
  });
}

export function encodeOutbox(o: OutboxEntry): Uint8Array {
  const w = new Writer(o.envelope.length + (o.message?.plaintext.length ?? 0) + 256);
  head(w, KIND_OUTBOX);
  num(w, o.seq);
  w.bytes(o.envelopeId).bytes(o.envelope);
  w.u8(ROLES.indexOf(o.role));
  list(w, o.claims, (c) => {
    num(w, c.participant);
    num(w, c.spkId);
    num(w, c.opkId);
  });
  if (o.message) {
    w.u8(1);
    w.bytes(o.message.mid);
    num(w, o.message.sentAt);
    w.bytes(o.message.after).bytes(o.message.plaintext);
    list(w, o.message.excluded, (x) => num(w, x));
  } else w.u8(0);
  opt(w, o.tx);
  return w.finish();
}

export function decodeOutbox(b: Uint8Array): OutboxEntry {
  return decode(b, 'outbox', (r) => {
    readHead(r, KIND_OUTBOX, 'outbox');
    const seq = rnum(r);
    const envelopeId = r.bytes(16, 'envelope ID');
    const envelope = r.bytes(MAX_ENV, 'envelope');
    const role = ROLES[r.u8()];
    if (!role) throw corrupt('envelope role');
    const claims = rlist(r, MAX_PARTICIPANTS, 'claims', () => ({ participant: rnum(r), spkId: rnum(r), opkId: rnum(r) }));
    const message = rbool(r)
      ? { mid: r.bytes(16, 'mid'), sentAt: rnum(r), after: r.bytes(16, 'after'), plaintext: r.bytes(MAX_ENV, 'plaintext'), excluded: rlist(r, MAX_PARTICIPANTS, 'excluded', () => rnum(r)) }
      : undefined;
    const f = r.u8();
    if (f > 1) throw corrupt('transaction');
    const tx = f === 1 ? r.bytes(MAX_ENV * 2, 'transaction') : undefined;
    return { seq, envelopeId, envelope, role, claims, message, tx };
  });
}

export function encodeArchive(a: ArchiveEntry): Uint8Array {
  const w = new Writer(a.plaintext.length + 128);
  head(w, KIND_ARCHIVE);
  w.bytes(a.envelopeId).bytes(a.messageId);
  num(w, a.position);
  num(w, a.sender);
  num(w, a.sentAt);
  w.bytes(a.after).bytes(a.plaintext);
  return w.finish();
}

export function decodeArchive(b: Uint8Array): ArchiveEntry {
  return decode(b, 'archive', (r) => {
    readHead(r, KIND_ARCHIVE, 'archive');
    return {
      envelopeId: r.bytes(16, 'envelope ID'),
      messageId: r.bytes(16, 'message ID'),
      position: rnum(r),
      sender: rnum(r),
      sentAt: rnum(r),
      after: r.bytes(16, 'after'),
      plaintext: r.bytes(MAX_ENV, 'plaintext'),
    };
  });
}
