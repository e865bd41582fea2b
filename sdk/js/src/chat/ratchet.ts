// The per-pair KEM double ratchet of docs/protocol.md sections 4, 5, 7.2,
// 8, 9 and 10 as a pure state machine: functions of a pair's state (which
// they mutate: callers pass a working copy), the time and randomness the
// caller passes in, and the keys of the KeyOps the caller provides. No I/O,
// no clock.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { equalBytes } from '../bytes.js';
import { H16, handshakeRoot, handshakeTranscript, keyHash, Label, nextMessageKey, nextSlot, NONE, stepChain, treeId, u32 } from './derive.js';
import {
  ChainNotStartedError,
  MalformedEnvelopeError,
  ReplayError,
  TooManyHandshakesError,
  TooManySkippedError,
  UnknownTargetError,
  UnknownTreeError,
} from './errors.js';
import {
  MAX_CHAIN_AGE_MS,
  MAX_CHAIN_MESSAGES,
  MAX_HANDSHAKES,
  MAX_OWN_CHAINS,
  MAX_PEER_CHAINS,
  MAX_SKIP,
  MAX_SKIP_AGE_MS,
  MAX_SKIPPED_KEYS,
  MAX_TREES,
  MISSING_CHAIN_GIVE_UP,
} from './limits.js';
import type { Mark, OwnChain, Pair, PeerChain, Tree } from './state.js';
import type { ContinueStanza, HandshakeStanza, StepStanza } from './wire.js';

/** The values of a pair that every derivation binds. */
export interface PairContext {
  sc: Uint8Array;
  /** 33-byte identity IDs of this device and of the peer. */
  me: Uint8Array;
  peer: Uint8Array;
}

/** An ML-KEM key pair made from a 64-byte seed d || z. */
export function kemFromSeed(seed: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array } {
  return ml_kem768.keygen(seed);
}

/** Decapsulates ct with the secret key of a 64-byte seed. */
export function decapsulateSeed(seed: Uint8Array, ct: Uint8Array): Uint8Array {
  const { secretKey } = ml_kem768.keygen(seed);
  try {
    return ml_kem768.decapsulate(ct, secretKey);
  } finally {
    secretKey.fill(0);
  }
}

/** Encapsulates to ek with the 32-byte seed m. */
export function encapsulate(ek: Uint8Array, m: Uint8Array): { ct: Uint8Array; K: Uint8Array } {
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(ek, m);
  return { ct: cipherText, K: sharedSecret };
}

const tagOf = (id: Uint8Array): Uint8Array => id.subarray(0, 4);

function compareIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

// ---- trees (section 10.1) ----

/** Whether a tree may be used: an own handshake that did not die, or a peer's handshake this device opened. */
function usable(m: Mark): boolean {
  return !m.mine || !m.dead;
}

/** Section 10.1's preference: higher generation first, then lower tree ID. */
function preferred(a: Mark, b: Mark): number {
  return b.g - a.g || compareIds(a.id, b.id);
}

/** The tombstone of the current tree: the usable tree with the highest generation, the lowest ID among equals. */
export function currentMark(pair: Pair): Mark | undefined {
  return pair.marks.filter(usable).sort(preferred)[0];
}

/** The state of the current tree, if it is kept. */
export function currentTree(pair: Pair): Tree | undefined {
  const m = currentMark(pair);
  return m && m.kept ? pair.trees.find((t) => equalBytes(t.id, m.id)) : undefined;
}

/** An own handshake of the pair whose envelope has neither landed nor died. */
export function hasPendingHandshake(pair: Pair): boolean {
  return pair.marks.some((m) => m.mine && !m.dead && !m.landed);
}

/** Own handshakes of the pair that did not die (the chain allows 4 claims per direction). */
export function liveOwnHandshakes(pair: Pair): number {
  return pair.marks.filter((m) => m.mine && !m.dead).length;
}

/** The peer's latest chain in a tree: the highest q received (H, q = 0, if none). */
export function latestPeerChain(tree: Tree): PeerChain | undefined {
  let best: PeerChain | undefined;
  for (const c of tree.peer) if (!best || c.q > best.q) best = c;
  return best;
}

/** This device's sending chain in a tree, if any. */
export function sendingChain(tree: Tree): OwnChain | undefined {
  return tree.own.find((c) => c.sendKey !== undefined);
}

// ---- sending (section 7.2) ----

export type Action = 'handshake' | 'step' | 'continue';

/** Whether the pair re-initiates on the next send (section 10.3). */
export function needsHandshake(pair: Pair): boolean {
  if (hasPendingHandshake(pair)) return false;
  const tree = currentTree(pair);
  if (!tree) return true;
  if (pair.reset) return true;
  const latest = latestPeerChain(tree);
  return !latest || latest.ek === undefined || latest.slotKey === undefined;
}

/** What the next message needs for this pair, without changing anything; undefined: nothing can be sent now. */
export function decide(pair: Pair, now: number, ratchetMessage = false): Action | undefined {
  if (needsHandshake(pair)) return ratchetMessage ? undefined : 'handshake';
  const tree = currentTree(pair);
  if (!tree) return undefined;
  const mine = sendingChain(tree);
  const latest = latestPeerChain(tree);
  if (!latest || latest.ek === undefined || latest.slotKey === undefined) {
    // An own handshake is pending and the peer's chain to step against is gone: continue if possible.
    if (!ratchetMessage && mine && !mine.unusable && mine.sendN < MAX_CHAIN_MESSAGES) return 'continue';
    return undefined;
  }
  if (ratchetMessage) return 'step';
  if (!mine || mine.unusable) return 'step';
  if (mine.target === undefined || !equalBytes(mine.target, latest.id)) return 'step';
  if (mine.sendN >= MAX_CHAIN_MESSAGES) return 'step';
  if (now - mine.start >= MAX_CHAIN_AGE_MS) return 'step';
  if (pair.forceStep) return 'step';
  return 'continue';
}

/** The fresh ratchet key of an envelope: its seed, public key and KH. */
export interface RatchetKey {
  seed: Uint8Array;
  publicKey: Uint8Array;
  hash: Uint8Array;
}

export function ratchetKeyFromSeed(seed: Uint8Array): RatchetKey {
  const { publicKey, secretKey } = kemFromSeed(seed);
  secretKey.fill(0);
  return { seed: seed.slice(), publicKey, hash: keyHash(publicKey) };
}

/** A peer's prekeys for a handshake (verified by the caller). */
export interface HandshakeBundle {
  identityKey: Uint8Array;
  spkId: number;
  spk: Uint8Array;
  opkId: number;
  /** Undefined when opkId is 0. */
  opk: Uint8Array | undefined;
}

/** A stanza before its content key is wrapped, and its message key. */
export interface Planned<S> {
  stanza: Omit<S, 'wrapped'>;
  mk: Uint8Array;
}

function stopSending(pair: Pair): void {
  for (const t of pair.trees) {
    for (const c of t.own) {
      c.sendKey = undefined;
      c.target = undefined;
    }
  }
}

function newOwnChain(id: Uint8Array, q: number, seed: Uint8Array, root: Uint8Array, chainKey: Uint8Array, target: Uint8Array, now: number, seq: number): { chain: OwnChain; mk: Uint8Array } {
  const { next, mk } = nextMessageKey(chainKey);
  return {
    chain: {
      id,
      q,
      seed: seed.slice(),
      slotK: 1,
      slotKey: root,
      sendKey: next,
      sendN: 1,
      target: target.slice(),
      start: now,
      startSeq: seq,
      unusable: false,
      supersededAt: 0,
      supersededBy: 0,
    },
    mk,
  };
}

/**
 * The initiator's handshake (section 5.3), of generation one more than the
 * pair's highest: a new tree, its virtual chain H (the peer's, as seen from
 * here) and the first chain A1. Seeds m1, m2 and (with a one-time prekey)
 * m3 are 32 bytes each; seq is the outbox sequence number of the envelope.
 */
export function sendHandshake(
  ctx: PairContext,
  pair: Pair,
  b: HandshakeBundle,
  rk: RatchetKey,
  seeds: { m1: Uint8Array; m2: Uint8Array; m3: Uint8Array | undefined },
  now: number,
  seq: number,
): Planned<HandshakeStanza> & { tree: Tree } {
  if (pair.marks.length >= MAX_HANDSHAKES) throw new TooManyHandshakesError(`the pair knows ${pair.marks.length} trees, at most ${MAX_HANDSHAKES}`);
  const gen = pair.highestGen + 1;
  const e1 = encapsulate(b.identityKey, seeds.m1);
  const e2 = encapsulate(b.spk, seeds.m2);
  const e3 = b.opkId !== 0 ? encapsulate(b.opk!, seeds.m3!) : { ct: NONE, K: NONE };
  const th = handshakeTranscript({
    sc: ctx.sc,
    initiator: ctx.me,
    responder: ctx.peer,
    spkId: b.spkId,
    opkId: b.opkId,
    gen,
    spkHash: keyHash(b.spk),
    opkHash: b.opkId !== 0 ? keyHash(b.opk!) : NONE,
    c1: e1.ct,
    c2: e2.ct,
    c3: e3.ct,
  });
  const rh = handshakeRoot(th, e1.K, e2.K, e3.K);
  const id = treeId({ sc: ctx.sc, initiator: ctx.me, responder: ctx.peer, spkId: b.spkId, opkId: b.opkId, gen, c1: e1.ct, c2: e2.ct, c3: e3.ct });
  const s1 = nextSlot(rh);
  const a1 = stepChain({ sc: ctx.sc, sender: ctx.me, peer: ctx.peer, targetId: id, k: 1, q: 1, ct: NONE, ekHash: rk.hash, slot: s1.slot, kemSecret: NONE });
  stopSending(pair);
  const { chain, mk } = newOwnChain(a1.id, 1, rk.seed, a1.root, a1.chainKey, id, now, seq);
  const h: PeerChain = { id: id.slice(), q: 0, n: 0, ck: undefined, ek: b.identityKey.slice(), slotK: 2, slotKey: s1.next, at: now };
  const tree: Tree = { id, g: gen, mine: true, myQ: 1, own: [chain], peer: [h], peerMaxQ: 0, peerMissing: [], used: now };
  pair.trees.push(tree);
  pair.marks.push({ id: id.slice(), g: gen, mine: true, dead: false, landed: false, kept: true, seq });
  pair.highestGen = gen;
  pair.reset = false;
  pair.unknownTreeAt = 0;
  pair.forceStep = false;
  return {
    stanza: { type: 'handshake', spkId: b.spkId, opkId: b.opkId, gen, c1: e1.ct, c2: e2.ct, c3: e3.ct },
    mk,
    tree,
  };
}

/** An asymmetric step against the peer's latest chain of the current tree (section 5.4). */
export function sendStep(ctx: PairContext, pair: Pair, rk: RatchetKey, m: Uint8Array, now: number, seq: number): Planned<StepStanza> {
  const tree = currentTree(pair);
  const target = tree && latestPeerChain(tree);
  if (!tree || !target || target.ek === undefined || target.slotKey === undefined) throw new Error('chat: step without a target (a bug)');
  const k = target.slotK;
  const s = nextSlot(target.slotKey);
  target.slotK = k + 1;
  target.slotKey = s.next;
  const { ct, K } = encapsulate(target.ek, m);
  const q = tree.myQ + 1;
  const prev = tree.own.find((c) => c.q === q - 1 && c.q > 0);
  const pn = prev ? prev.sendN : 0;
  stopSending(pair);
  const c = stepChain({ sc: ctx.sc, sender: ctx.me, peer: ctx.peer, targetId: target.id, k, q, ct, ekHash: rk.hash, slot: s.slot, kemSecret: K });
  K.fill(0);
  const { chain, mk } = newOwnChain(c.id, q, rk.seed, c.root, c.chainKey, target.id, now, seq);
  tree.own.push(chain);
  tree.myQ = q;
  tree.used = now;
  pair.forceStep = false;
  return { stanza: { type: 'step', tree: tagOf(tree.id).slice(), target: target.id.slice(), k, q, pn, ct }, mk };
}

/** The next message of the current sending chain. */
export function sendContinue(pair: Pair, now: number): Planned<ContinueStanza> {
  const tree = currentTree(pair);
  const c = tree && sendingChain(tree);
  if (!tree || !c || c.sendKey === undefined) throw new Error('chat: continue without a sending chain (a bug)');
  const n = c.sendN;
  const { next, mk } = nextMessageKey(c.sendKey);
  c.sendKey = next;
  c.sendN = n + 1;
  tree.used = now;
  return { stanza: { type: 'continue', tree: tagOf(tree.id).slice(), chain: c.id.slice(), n }, mk };
}

// ---- receiving (section 8, step 4) ----

/** What receiving a stanza needs besides the pair. */
export interface ReceiveContext extends PairContext {
  /** Decapsulates with this device's identity KEM key. */
  decapsulateIdentity(ct: Uint8Array): Uint8Array;
  /** The envelope's ratchet key (for steps and handshakes). */
  ratchetKey: Uint8Array | undefined;
  now: number;
}

function takeSkipped(pair: Pair, chain: Uint8Array, index: number, slot: boolean): Uint8Array | undefined {
  const i = pair.skipped.findIndex((k) => k.slot === slot && k.index === index && equalBytes(k.chain, chain));
  if (i < 0) return undefined;
  const [k] = pair.skipped.splice(i, 1);
  return k!.key;
}

/** The state of the tree a continue or step names by its tag: kept, deleted (replay) or unknown. */
function treeByTag(pair: Pair, tag: Uint8Array): Tree {
  const m = pair.marks.find((x) => equalBytes(tagOf(x.id), tag));
  if (!m) throw new UnknownTreeError();
  const t = m.kept ? pair.trees.find((x) => equalBytes(x.id, m.id)) : undefined;
  if (!t) throw new ReplayError('replay: the message belongs to a tree whose state was deleted');
  return t;
}

/** Derives message keys of a peer chain up to n, keeping the ones it passes; returns MK_n. */
function advancePeer(ctx: ReceiveContext, pair: Pair, tree: Tree, chain: PeerChain, n: number): Uint8Array {
  let ck = chain.ck!;
  for (let i = chain.n; i < n; i++) {
    const s = nextMessageKey(ck);
    pair.skipped.push({ tree: tree.id, chain: chain.id, index: i, slot: false, key: s.mk, at: ctx.now });
    ck = s.next;
  }
  const s = nextMessageKey(ck);
  chain.ck = s.next;
  chain.n = n + 1;
  chain.at = ctx.now;
  return s.mk;
}

/** Opens a continue stanza: its message key. */
export function receiveContinue(ctx: ReceiveContext, pair: Pair, st: ContinueStanza): Uint8Array {
  const kept = takeSkipped(pair, st.chain, st.n, false);
  if (kept) return kept;
  const tree = treeByTag(pair, st.tree);
  const chain = tree.peer.find((c) => equalBytes(c.id, st.chain));
  if (!chain) throw new ChainNotStartedError();
  if (chain.ck === undefined || st.n < chain.n) throw new ReplayError();
  if (st.n - chain.n > MAX_SKIP) throw new TooManySkippedError();
  tree.used = ctx.now;
  return advancePeer(ctx, pair, tree, chain, st.n);
}

/** The ID of the chain a step stanza starts (computable from public values). */
export function stepChainId(st: Pick<StepStanza, 'target' | 'k' | 'ct'>): Uint8Array {
  return H16(Label.chainId, st.target, u32(st.k), st.ct);
}

/** Opens a step stanza: starts the peer's new chain, returns its MK_0. Every refusal comes before the decapsulation. */
export function receiveStep(ctx: ReceiveContext, pair: Pair, st: StepStanza): Uint8Array {
  const tree = treeByTag(pair, st.tree);
  const target = tree.own.find((c) => equalBytes(c.id, st.target));
  if (!target) throw new UnknownTargetError();
  if (target.q === 0 && st.q < 2) throw new MalformedEnvelopeError('a step against H with q < 2');
  const id = stepChainId(st);
  if (tree.peer.some((c) => c.q === st.q) || pair.trees.some((t) => t.peer.some((c) => equalBytes(c.id, id)))) throw new ReplayError();
  let slot: Uint8Array;
  if (st.k < target.slotK) {
    const kept = takeSkipped(pair, st.target, st.k, true);
    if (!kept) throw new ReplayError();
    slot = kept;
  } else {
    if (target.slotKey === undefined) throw new ReplayError();
    if (st.k - target.slotK > MAX_SKIP) throw new TooManySkippedError();
    let sk = target.slotKey;
    for (let i = target.slotK; i < st.k; i++) {
      const s = nextSlot(sk);
      pair.skipped.push({ tree: tree.id, chain: target.id, index: i, slot: true, key: s.slot, at: ctx.now });
      sk = s.next;
    }
    const s = nextSlot(sk);
    target.slotKey = s.next;
    target.slotK = st.k + 1;
    slot = s.slot;
  }
  const prev = st.q > 1 ? tree.peer.find((c) => c.q === st.q - 1) : undefined;
  if (prev && prev.ck !== undefined) {
    if (st.pn < prev.n) throw new MalformedEnvelopeError(`pn = ${st.pn} below the ${prev.n} messages received in the previous chain`);
    if (st.pn - prev.n > MAX_SKIP) throw new TooManySkippedError();
  }
  if (ctx.ratchetKey === undefined) throw new MalformedEnvelopeError('a step without a ratchet key');
  const K = target.seed === undefined ? ctx.decapsulateIdentity(st.ct) : decapsulateSeed(target.seed, st.ct);
  const c = stepChain({ sc: ctx.sc, sender: ctx.peer, peer: ctx.me, targetId: target.id, k: st.k, q: st.q, ct: st.ct, ekHash: keyHash(ctx.ratchetKey), slot, kemSecret: K });
  K.fill(0);
  const { next, mk } = nextMessageKey(c.chainKey);
  // The peer's previous chain of this tree is closed after pn messages.
  if (prev && prev.ck !== undefined) {
    let ck = prev.ck;
    for (let i = prev.n; i < st.pn; i++) {
      const s = nextMessageKey(ck);
      pair.skipped.push({ tree: tree.id, chain: prev.id, index: i, slot: false, key: s.mk, at: ctx.now });
      ck = s.next;
    }
    prev.ck = undefined;
    prev.n = Math.max(prev.n, st.pn);
  }
  addPeerChain(tree, { id: c.id, q: st.q, n: 1, ck: next, ek: undefined, slotK: 0, slotKey: undefined, at: ctx.now }, ctx.ratchetKey, c.root);
  // Own chains older than the target are superseded.
  for (const o of tree.own) {
    if (o.q < target.q) {
      if (o.supersededAt === 0) o.supersededAt = ctx.now;
      o.supersededBy = o.supersededBy === 0 ? st.q : Math.min(o.supersededBy, st.q);
    }
  }
  tree.used = ctx.now;
  return mk;
}

/** Records the arrival of the peer's chain q (for the deletion rule of superseded own chains). */
function arrived(tree: Tree, q: number): void {
  tree.peerMissing = tree.peerMissing.filter((m) => m.q !== q);
  for (const m of tree.peerMissing) if (m.q < q) m.later++;
  if (q > tree.peerMaxQ) {
    for (let m = Math.max(tree.peerMaxQ + 1, q - MAX_PEER_CHAINS); m < q; m++) tree.peerMissing.push({ q: m, later: 0 });
    tree.peerMaxQ = q;
  }
  tree.peerMissing = tree.peerMissing.filter((m) => m.later < MISSING_CHAIN_GIVE_UP).slice(-MAX_PEER_CHAINS);
}

/** Adds a received chain; the latest (highest q) keeps the public key and the slot chain copy. */
function addPeerChain(tree: Tree, chain: PeerChain, ek: Uint8Array, root: Uint8Array): void {
  const latest = latestPeerChain(tree);
  if (!latest || chain.q > latest.q) {
    for (const c of tree.peer) {
      c.ek = undefined;
      c.slotKey = undefined;
    }
    chain.ek = ek.slice();
    chain.slotK = 1;
    chain.slotKey = root;
  }
  tree.peer.push(chain);
  arrived(tree, chain.q);
}

/** A responder's prekey secrets for a handshake, as the device holds them. */
export interface ResponderPrekeys {
  spk: { seed: Uint8Array; kh: Uint8Array };
  opk: { seed: Uint8Array; kh: Uint8Array } | undefined;
}

/** The tree ID of a received handshake stanza (public values only, section 5.3). */
export function handshakeTreeId(ctx: PairContext, st: HandshakeStanza): Uint8Array {
  return treeId({ sc: ctx.sc, initiator: ctx.peer, responder: ctx.me, spkId: st.spkId, opkId: st.opkId, gen: st.gen, c1: st.c1, c2: st.c2, c3: st.c3 });
}

/** A handshake whose tree this pair knows (state kept or deleted) is a replay. */
export function checkHandshakeReplay(pair: Pair, id: Uint8Array): void {
  if (pair.marks.some((m) => equalBytes(m.id, id))) throw new ReplayError();
}

/** The bound on trees a pair knows. */
export function checkHandshakeBound(pair: Pair): void {
  if (pair.marks.length >= MAX_HANDSHAKES) throw new TooManyHandshakesError();
}

/** Opens a checked handshake stanza: the new tree with H (own) and A1 (the peer's), and A1's MK_0. */
export function receiveHandshake(ctx: ReceiveContext, pair: Pair, st: HandshakeStanza, pk: ResponderPrekeys, id: Uint8Array): { mk: Uint8Array; tree: Tree } {
  if (ctx.ratchetKey === undefined) throw new MalformedEnvelopeError('a handshake without a ratchet key');
  const th = handshakeTranscript({
    sc: ctx.sc,
    initiator: ctx.peer,
    responder: ctx.me,
    spkId: st.spkId,
    opkId: st.opkId,
    gen: st.gen,
    spkHash: pk.spk.kh,
    opkHash: pk.opk ? pk.opk.kh : NONE,
    c1: st.c1,
    c2: st.c2,
    c3: st.c3,
  });
  const k1 = ctx.decapsulateIdentity(st.c1);
  const k2 = decapsulateSeed(pk.spk.seed, st.c2);
  const k3 = pk.opk ? decapsulateSeed(pk.opk.seed, st.c3) : NONE;
  const rh = handshakeRoot(th, k1, k2, k3);
  k1.fill(0);
  k2.fill(0);
  k3.fill(0);
  const s1 = nextSlot(rh);
  const a1 = stepChain({ sc: ctx.sc, sender: ctx.peer, peer: ctx.me, targetId: id, k: 1, q: 1, ct: NONE, ekHash: keyHash(ctx.ratchetKey), slot: s1.slot, kemSecret: NONE });
  const { next, mk } = nextMessageKey(a1.chainKey);
  const h: OwnChain = {
    id: id.slice(),
    q: 0,
    seed: undefined,
    slotK: 2,
    slotKey: s1.next,
    sendKey: undefined,
    sendN: 0,
    target: undefined,
    start: ctx.now,
    startSeq: 0,
    unusable: false,
    supersededAt: 0,
    supersededBy: 0,
  };
  const tree: Tree = { id, g: st.gen, mine: false, myQ: 0, own: [h], peer: [], peerMaxQ: 0, peerMissing: [], used: ctx.now };
  addPeerChain(tree, { id: a1.id, q: 1, n: 1, ck: next, ek: undefined, slotK: 0, slotKey: undefined, at: ctx.now }, ctx.ratchetKey, a1.root);
  pair.trees.push(tree);
  pair.marks.push({ id: id.slice(), g: st.gen, mine: false, dead: false, landed: true, kept: true, seq: 0 });
  if (st.gen > pair.highestGen) pair.highestGen = st.gen;
  pair.unknownTreeAt = 0;
  return { mk, tree };
}

// ---- hints kept when an open fails ----

/** Records that a chain of the peer could not be opened: the next send steps, once per such chain. */
export function noteUnopenableChain(pair: Pair, chainId: Uint8Array): void {
  if (pair.answered.some((a) => equalBytes(a, chainId))) return;
  pair.answered.push(chainId.slice());
  if (pair.answered.length > 16) pair.answered.splice(0, pair.answered.length - 16);
  pair.forceStep = true;
}

/** Records a message of the peer in a tree this device does not know, at this position hint. */
export function noteUnknownTree(pair: Pair, position: number): void {
  if (pair.unknownTreeAt === 0 || position < pair.unknownTreeAt) pair.unknownTreeAt = position;
}

/** Records the generation of a handshake whose claim checked (section 10.1). */
export function noteGeneration(pair: Pair, g: number): void {
  if (g > pair.highestGen) pair.highestGen = g;
}

// ---- dead envelopes (section 10.4) ----

/** Marks what dead or superseded envelopes made: their trees dead, the chains they started unusable. */
export function markDead(pair: Pair, seqs: ReadonlySet<number>): void {
  for (const m of pair.marks) {
    if (m.mine && seqs.has(m.seq)) {
      m.dead = true;
      pair.reset = true;
    }
  }
  for (const t of pair.trees) for (const c of t.own) if (c.startSeq !== 0 && seqs.has(c.startSeq)) c.unusable = true;
}

/** An own envelope landed: its trees are usable (again) and landed. */
export function markLanded(pair: Pair, seq: number): void {
  for (const m of pair.marks) {
    if (m.mine && m.seq === seq) {
      m.dead = false;
      m.landed = true;
    }
  }
}

// ---- cleanup (section 9) ----

/** Applies the deletion rules and bounds of section 9 to a pair. */
export function cleanupPair(pair: Pair, now: number): void {
  const cur = currentMark(pair);
  const dropSkipped = (f: (k: Pair['skipped'][number]) => boolean): void => {
    pair.skipped = pair.skipped.filter((k) => !f(k));
  };
  for (const tree of pair.trees) {
    // Superseded own chains go once no peer chain that could target them can still arrive, or after MaxSkipAge.
    tree.own = tree.own.filter((c) => {
      if (c.supersededAt === 0) return true;
      const waiting = tree.peerMissing.some((m) => m.q < c.supersededBy);
      const gone = !waiting || now - c.supersededAt >= MAX_SKIP_AGE_MS;
      if (gone) dropSkipped((k) => k.slot && equalBytes(k.chain, c.id));
      return !gone;
    });
    if (tree.own.length > MAX_OWN_CHAINS) {
      tree.own.sort((a, b) => a.q - b.q);
      for (const c of tree.own.splice(0, tree.own.length - MAX_OWN_CHAINS)) dropSkipped((k) => k.slot && equalBytes(k.chain, c.id));
    }
    // A chain that arrived after a later one stays open until idle for MaxSkipAge.
    const latest = latestPeerChain(tree);
    for (const c of tree.peer) if (c !== latest && c.ck !== undefined && now - c.at >= MAX_SKIP_AGE_MS) c.ck = undefined;
    if (tree.peer.length > MAX_PEER_CHAINS) {
      const keep = tree.peer.filter((c) => c === latest);
      const rest = tree.peer.filter((c) => c !== latest).sort((a, b) => a.q - b.q);
      tree.peer = [...rest.slice(rest.length - (MAX_PEER_CHAINS - keep.length)), ...keep];
    }
  }
  // Tree state: idle non-current trees and dead trees go after MaxSkipAge; then the bound, least preferred first.
  const dropTree = (id: Uint8Array): void => {
    pair.trees = pair.trees.filter((t) => !equalBytes(t.id, id));
    dropSkipped((k) => equalBytes(k.tree, id));
    const m = pair.marks.find((x) => equalBytes(x.id, id));
    if (m) m.kept = false;
  };
  for (const t of [...pair.trees]) {
    const m = pair.marks.find((x) => equalBytes(x.id, t.id));
    const isCurrent = cur !== undefined && equalBytes(cur.id, t.id);
    const pending = m !== undefined && m.mine && !m.dead && !m.landed;
    if (!isCurrent && !pending && now - t.used >= MAX_SKIP_AGE_MS) dropTree(t.id);
  }
  while (pair.trees.length > MAX_TREES) {
    const victims = pair.marks
      .filter((m) => m.kept && !(cur && equalBytes(cur.id, m.id)) && !(m.mine && !m.dead && !m.landed))
      .sort((a, b) => (usable(a) === usable(b) ? preferred(b, a) : usable(a) ? 1 : -1));
    const v = victims[0];
    if (!v) break;
    dropTree(v.id);
  }
  // Skipped keys: age, then the pair's bound (first skipped, first deleted).
  pair.skipped = pair.skipped.filter((k) => now - k.at < MAX_SKIP_AGE_MS);
  if (pair.skipped.length > MAX_SKIPPED_KEYS) pair.skipped.splice(0, pair.skipped.length - MAX_SKIPPED_KEYS);
}
