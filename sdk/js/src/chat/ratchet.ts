// The per-pair KEM double ratchet of docs/protocol.md sections 4, 5, 7.2,
// 8, 9 and 10 as a pure state machine: functions of the pair's state (which
// they mutate: callers pass a working copy), the time and randomness the
// caller passes in, and the keys of the KeyOps the caller provides. No I/O,
// no clock.

import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { equalBytes } from '../bytes.js';
import { kemPublicKeyCanonical } from '../identity.js';
import {
  handshakeRoot,
  handshakeTranscript,
  keyHash,
  nextMessageKey,
  nextSlot,
  NONE,
  stepChain,
  treeId,
  H16,
  Label,
  u32,
} from './derive.js';
import {
  ChainNotStartedError,
  ChatError,
  MalformedEnvelopeError,
  ReplayError,
  TooManySkippedError,
  UnknownTargetError,
  UnknownTreeError,
} from './errors.js';
import {
  MAX_CHAIN_AGE_MS,
  MAX_CHAIN_MESSAGES,
  MAX_OWN_CHAINS,
  MAX_PEER_CHAINS,
  MAX_SKIP,
  MAX_SKIP_AGE_MS,
  MAX_SKIPPED_KEYS,
  MAX_TREES,
  MISSING_CHAIN_GIVE_UP,
} from './limits.js';
import type { ConversationState, OwnChain, Pair, PeerChain, Skipped, Tree } from './state.js';
import type { ContinueStanza, HandshakeStanza, StepStanza } from './wire.js';

/** The ML-KEM operations the ratchet needs; the secrets stay with the caller. */
export interface KeyOps {
  /** Decapsulates with this device's identity KEM key. */
  decapsulateIdentity(ct: Uint8Array): Uint8Array;
}

/** The values of a pair that every derivation binds. */
export interface PairContext {
  sc: Uint8Array;
  /** 33-byte identity IDs of this device and of the peer. */
  me: Uint8Array;
  peer: Uint8Array;
  /** The peer's index in the participant list (the pair's key in skipped keys). */
  peerIndex: number;
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

// ---- trees ----

/** The handshake position used in the fold: +∞ for an own handshake not yet seen on chain. */
function pos(t: Tree): number {
  return t.p === 0 ? Number.POSITIVE_INFINITY : t.p;
}

function compareIds(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length && i < b.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

/** The pair's trees by handshake position (ties, which only a lying node makes, by tree ID). */
function byPosition(trees: readonly Tree[]): Tree[] {
  return [...trees].sort((a, b) => pos(a) - pos(b) || compareIds(a.id, b.id));
}

/** The current tree of section 10.1, or undefined without trees. */
export function currentTree(pair: Pair): Tree | undefined {
  const sorted = byPosition(pair.trees);
  let cur = sorted[0];
  for (const t of sorted.slice(1)) if (cur && t.s >= pos(cur)) cur = t;
  return cur;
}

/** Whether this device has a handshake of its own in the pair not yet seen on chain. */
export function hasUnconfirmedHandshake(pair: Pair): boolean {
  return pair.trees.some((t) => t.mine && t.p === 0);
}

function findTreeByTag(pair: Pair, tag: Uint8Array): Tree | undefined {
  return pair.trees.find((t) => equalBytes(tagOf(t.id), tag));
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

// ---- sending ----

export type Action = 'handshake' | 'step' | 'continue';

/** What the next message needs for this pair (section 7.2), without changing anything. */
export function decide(pair: Pair, now: number): Action {
  const cur = currentTree(pair);
  if (!cur) return 'handshake';
  if (pair.reset && !hasUnconfirmedHandshake(pair)) return 'handshake';
  const mine = sendingChain(cur);
  const latest = latestPeerChain(cur);
  if (!latest || latest.ek === undefined || latest.slotKey === undefined) {
    // The peer's latest chain is gone (a bound deleted it): nothing to step against.
    if (mine && mine.sendN < MAX_CHAIN_MESSAGES && hasUnconfirmedHandshake(pair)) return 'continue';
    return 'handshake';
  }
  if (!mine) return 'step';
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

function newOwnChain(id: Uint8Array, q: number, seed: Uint8Array, root: Uint8Array, chainKey: Uint8Array, target: Uint8Array, now: number): { chain: OwnChain; mk: Uint8Array } {
  const { next, mk } = nextMessageKey(chainKey);
  return {
    chain: { id, q, seed: seed.slice(), slotK: 1, slotKey: root, sendKey: next, sendN: 1, target: target.slice(), start: now, supersededAt: 0, supersededBy: 0 },
    mk,
  };
}

/**
 * The initiator's handshake (section 5.3): a new tree, its virtual chain H
 * (the peer's, as seen from here) and the first chain A1. Seeds m1, m2 and
 * (with a one-time prekey) m3 are 32 bytes each.
 */
export function sendHandshake(
  ctx: PairContext,
  pair: Pair,
  b: HandshakeBundle,
  rk: RatchetKey,
  seeds: { m1: Uint8Array; m2: Uint8Array; m3: Uint8Array | undefined },
  sync: number,
  now: number,
): Planned<HandshakeStanza> & { tree: Tree } {
  const e1 = encapsulate(b.identityKey, seeds.m1);
  const e2 = encapsulate(b.spk, seeds.m2);
  const e3 = b.opkId !== 0 ? encapsulate(b.opk!, seeds.m3!) : { ct: NONE, K: NONE };
  const th = handshakeTranscript({
    sc: ctx.sc,
    initiator: ctx.me,
    responder: ctx.peer,
    spkId: b.spkId,
    opkId: b.opkId,
    sync,
    spkHash: keyHash(b.spk),
    opkHash: b.opkId !== 0 ? keyHash(b.opk!) : NONE,
    c1: e1.ct,
    c2: e2.ct,
    c3: e3.ct,
  });
  const rh = handshakeRoot(th, e1.K, e2.K, e3.K);
  const id = treeId(th);
  const s1 = nextSlot(rh);
  const a1 = stepChain({ sc: ctx.sc, sender: ctx.me, peer: ctx.peer, targetId: id, k: 1, q: 1, ct: NONE, ekHash: rk.hash, slot: s1.slot, kemSecret: NONE });
  const { chain, mk } = newOwnChain(a1.id, 1, rk.seed, a1.root, a1.chainKey, id, now);
  const h: PeerChain = { id: id.slice(), q: 0, n: 0, ck: undefined, ek: b.identityKey.slice(), slotK: 2, slotKey: s1.next };
  const tree: Tree = { id, mine: true, p: 0, s: sync, myQ: 1, own: [chain], peer: [h], closes: [], peerMaxQ: 0, peerMissing: [], created: now, lastRecv: now };
  for (const t of pair.trees) {
    const c = sendingChain(t);
    if (c) stopSending(c);
  }
  pair.trees.push(tree);
  pair.reset = false;
  pair.unknownTreeAt = 0;
  pair.forceStep = false;
  return {
    stanza: { type: 'handshake', spkId: b.spkId, opkId: b.opkId, sync, c1: e1.ct, c2: e2.ct, c3: e3.ct },
    mk,
    tree,
  };
}

function stopSending(c: OwnChain): void {
  c.sendKey = undefined;
  c.sendN = 0;
  c.target = undefined;
}

/** An asymmetric step against the peer's latest chain of the current tree (section 5.4). */
export function sendStep(ctx: PairContext, pair: Pair, rk: RatchetKey, m: Uint8Array, now: number): Planned<StepStanza> {
  const tree = currentTree(pair);
  const target = tree && latestPeerChain(tree);
  if (!tree || !target || target.ek === undefined || target.slotKey === undefined) throw new Error('chat: step without a target (a bug)');
  const k = target.slotK;
  const s = nextSlot(target.slotKey);
  target.slotK = k + 1;
  target.slotKey = s.next;
  const { ct, K } = encapsulate(target.ek, m);
  const q = tree.myQ + 1;
  const prev = sendingChain(tree);
  const pn = prev ? prev.sendN : 0;
  for (const t of pair.trees) {
    const c = sendingChain(t);
    if (c) stopSending(c);
  }
  const c = stepChain({ sc: ctx.sc, sender: ctx.me, peer: ctx.peer, targetId: target.id, k, q, ct, ekHash: rk.hash, slot: s.slot, kemSecret: K });
  K.fill(0);
  const { chain, mk } = newOwnChain(c.id, q, rk.seed, c.root, c.chainKey, target.id, now);
  tree.own.push(chain);
  tree.myQ = q;
  pair.forceStep = false;
  return { stanza: { type: 'step', tree: tagOf(tree.id).slice(), target: target.id.slice(), k, q, pn, ct }, mk };
}

/** The next message of the current sending chain. */
export function sendContinue(pair: Pair): Planned<ContinueStanza> {
  const tree = currentTree(pair);
  const c = tree && sendingChain(tree);
  if (!tree || !c || c.sendKey === undefined) throw new Error('chat: continue without a sending chain (a bug)');
  const n = c.sendN;
  const { next, mk } = nextMessageKey(c.sendKey);
  c.sendKey = next;
  c.sendN = n + 1;
  return { stanza: { type: 'continue', tree: tagOf(tree.id).slice(), chain: c.id.slice(), n }, mk };
}

// ---- receiving ----

/** What receiving a stanza needs besides the pair. */
export interface ReceiveContext extends PairContext {
  state: ConversationState;
  keys: KeyOps;
  /** The envelope's ratchet key (for steps and handshakes). */
  ratchetKey: Uint8Array | undefined;
  position: number;
  now: number;
}

function takeSkipped(state: ConversationState, pair: number, chain: Uint8Array, index: number, slot: boolean): Uint8Array | undefined {
  const i = state.skipped.findIndex((k) => k.pair === pair && k.slot === slot && k.index === index && equalBytes(k.chain, chain));
  if (i < 0) return undefined;
  const [k] = state.skipped.splice(i, 1);
  return k!.key;
}

function keep(state: ConversationState, k: Skipped): void {
  state.skipped.push(k);
}

function findPeerChain(pair: Pair, id: Uint8Array): { tree: Tree; chain: PeerChain } | undefined {
  for (const tree of pair.trees) for (const chain of tree.peer) if (equalBytes(chain.id, id)) return { tree, chain };
  return undefined;
}

/** Advances a peer chain to message n, keeping the keys it skips; returns MK_n. */
function advancePeer(ctx: ReceiveContext, tree: Tree, chain: PeerChain, n: number): Uint8Array {
  if (chain.ck === undefined || n < chain.n) throw new ReplayError();
  if (n - chain.n > MAX_SKIP) throw new TooManySkippedError();
  let ck = chain.ck;
  for (let i = chain.n; i < n; i++) {
    const s = nextMessageKey(ck);
    keep(ctx.state, { pair: ctx.peerIndex, tree: tree.id, chain: chain.id, index: i, slot: false, key: s.mk, at: ctx.now });
    ck = s.next;
  }
  const s = nextMessageKey(ck);
  chain.ck = s.next;
  chain.n = n + 1;
  return s.mk;
}

/** Closes a peer chain after its pn messages: the rest become skipped keys, the chain key goes. */
function closePeer(ctx: ReceiveContext, tree: Tree, chain: PeerChain, pn: number): void {
  if (chain.ck === undefined) return;
  if (pn - chain.n > MAX_SKIP) throw new TooManySkippedError();
  let ck = chain.ck;
  for (let i = chain.n; i < pn; i++) {
    const s = nextMessageKey(ck);
    keep(ctx.state, { pair: ctx.peerIndex, tree: tree.id, chain: chain.id, index: i, slot: false, key: s.mk, at: ctx.now });
    ck = s.next;
  }
  chain.ck = undefined;
  chain.n = Math.max(chain.n, pn);
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
function addPeerChain(ctx: ReceiveContext, tree: Tree, chain: PeerChain, ek: Uint8Array, root: Uint8Array): void {
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
  const pending = tree.closes.find((c) => c.q === chain.q);
  if (pending) {
    tree.closes = tree.closes.filter((c) => c !== pending);
    closePeer(ctx, tree, chain, pending.pn);
  }
}

/** Opens a continue stanza: its message key (section 8, step 4). */
export function receiveContinue(ctx: ReceiveContext, pair: Pair, st: ContinueStanza): Uint8Array {
  const kept = takeSkipped(ctx.state, ctx.peerIndex, st.chain, st.n, false);
  if (kept) return kept;
  if (!findTreeByTag(pair, st.tree)) throw new UnknownTreeError();
  const found = findPeerChain(pair, st.chain);
  if (!found) throw new ChainNotStartedError();
  found.tree.lastRecv = ctx.now;
  return advancePeer(ctx, found.tree, found.chain, st.n);
}

/** The ID of the chain a step stanza starts (computable from public values). */
export function stepChainId(st: StepStanza): Uint8Array {
  return H16(Label.chainId, st.target, u32(st.k), st.ct);
}

/** Opens a step stanza: starts the peer's new chain, returns its MK_0 (section 8, step 4). */
export function receiveStep(ctx: ReceiveContext, pair: Pair, st: StepStanza): Uint8Array {
  const tree = findTreeByTag(pair, st.tree);
  if (!tree) throw new UnknownTreeError();
  const target = tree.own.find((c) => equalBytes(c.id, st.target));
  if (!target) throw new UnknownTargetError();
  if (target.q === 0 && st.q < 2) throw new MalformedEnvelopeError('a step against H with q < 2');
  if (tree.peer.some((c) => c.q === st.q && c.q !== 0)) throw new ReplayError();
  // The slot: next, later (keeping the ones passed over), or a kept one.
  let slot: Uint8Array | undefined;
  if (st.k < target.slotK) {
    slot = takeSkipped(ctx.state, ctx.peerIndex, target.id, st.k, true);
    if (!slot) throw new ReplayError();
  } else {
    if (target.slotKey === undefined) throw new UnknownTargetError();
    if (st.k - target.slotK > MAX_SKIP) throw new TooManySkippedError();
    let sk = target.slotKey;
    for (let i = target.slotK; i < st.k; i++) {
      const s = nextSlot(sk);
      keep(ctx.state, { pair: ctx.peerIndex, tree: tree.id, chain: target.id, index: i, slot: true, key: s.slot, at: ctx.now });
      sk = s.next;
    }
    const s = nextSlot(sk);
    target.slotKey = s.next;
    target.slotK = st.k + 1;
    slot = s.slot;
  }
  if (ctx.ratchetKey === undefined) throw new MalformedEnvelopeError('a step without a ratchet key');
  const K = target.seed === undefined ? ctx.keys.decapsulateIdentity(st.ct) : decapsulateSeed(target.seed, st.ct);
  const c = stepChain({ sc: ctx.sc, sender: ctx.peer, peer: ctx.me, targetId: target.id, k: st.k, q: st.q, ct: st.ct, ekHash: keyHash(ctx.ratchetKey), slot, kemSecret: K });
  K.fill(0);
  if (findPeerChain(pair, c.id)) throw new ReplayError();
  const { next, mk } = nextMessageKey(c.chainKey);
  const chain: PeerChain = { id: c.id, q: st.q, n: 1, ck: next, ek: undefined, slotK: 0, slotKey: undefined };
  // The peer's previous chain of this tree is closed after pn messages.
  if (st.q > 1) {
    const prev = tree.peer.find((p) => p.q === st.q - 1);
    if (prev) closePeer(ctx, tree, prev, st.pn);
    else if (!tree.closes.some((p) => p.q === st.q - 1)) tree.closes.push({ q: st.q - 1, pn: st.pn });
    tree.closes = tree.closes.slice(-MAX_PEER_CHAINS);
  }
  addPeerChain(ctx, tree, chain, ctx.ratchetKey, c.root);
  // Own chains older than the target are superseded.
  for (const o of tree.own) {
    if (o.q < target.q) {
      if (o.supersededAt === 0) o.supersededAt = ctx.now;
      o.supersededBy = o.supersededBy === 0 ? st.q : Math.min(o.supersededBy, st.q);
    }
  }
  tree.lastRecv = ctx.now;
  return mk;
}

/** A prekey secret the responder holds, as the device gives it. */
export interface ResponderPrekeys {
  spk: { seed: Uint8Array; publicKey: Uint8Array };
  opk: { seed: Uint8Array; publicKey: Uint8Array } | undefined;
}

/** Opens a handshake stanza: the new tree with H (own) and A1 (the peer's), and A1's MK_0 (section 8, step 4). */
export function receiveHandshake(ctx: ReceiveContext, pair: Pair, st: HandshakeStanza, pk: ResponderPrekeys): { mk: Uint8Array; tree: Tree } {
  if (ctx.ratchetKey === undefined) throw new MalformedEnvelopeError('a handshake without a ratchet key');
  const k1 = ctx.keys.decapsulateIdentity(st.c1);
  const k2 = decapsulateSeed(pk.spk.seed, st.c2);
  const k3 = pk.opk ? decapsulateSeed(pk.opk.seed, st.c3) : NONE;
  const th = handshakeTranscript({
    sc: ctx.sc,
    initiator: ctx.peer,
    responder: ctx.me,
    spkId: st.spkId,
    opkId: st.opkId,
    sync: st.sync,
    spkHash: keyHash(pk.spk.publicKey),
    opkHash: pk.opk ? keyHash(pk.opk.publicKey) : NONE,
    c1: st.c1,
    c2: st.c2,
    c3: st.c3,
  });
  const rh = handshakeRoot(th, k1, k2, k3);
  k1.fill(0);
  k2.fill(0);
  k3.fill(0);
  const id = treeId(th);
  if (pair.trees.some((t) => equalBytes(t.id, id))) throw new ReplayError();
  const s1 = nextSlot(rh);
  const a1 = stepChain({ sc: ctx.sc, sender: ctx.peer, peer: ctx.me, targetId: id, k: 1, q: 1, ct: NONE, ekHash: keyHash(ctx.ratchetKey), slot: s1.slot, kemSecret: NONE });
  const { next, mk } = nextMessageKey(a1.chainKey);
  const h: OwnChain = { id: id.slice(), q: 0, seed: undefined, slotK: 2, slotKey: s1.next, sendKey: undefined, sendN: 0, target: undefined, start: ctx.now, supersededAt: 0, supersededBy: 0 };
  const tree: Tree = { id, mine: false, p: ctx.position, s: st.sync, myQ: 0, own: [h], peer: [], closes: [], peerMaxQ: 0, peerMissing: [], created: ctx.now, lastRecv: ctx.now };
  const chain: PeerChain = { id: a1.id, q: 1, n: 1, ck: next, ek: undefined, slotK: 0, slotKey: undefined };
  addPeerChain(ctx, tree, chain, ctx.ratchetKey, a1.root);
  pair.trees.push(tree);
  if (pair.unknownTreeAt !== 0) pair.unknownTreeAt = 0;
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

/** Records a message of the peer in a tree this device does not have. */
export function noteUnknownTree(pair: Pair, position: number): void {
  if (pair.unknownTreeAt === 0 || position < pair.unknownTreeAt) pair.unknownTreeAt = position;
}

// ---- cleanup (section 9) ----

function deleteSkippedOf(state: ConversationState, pair: number, chainOrTree: (k: Skipped) => boolean): void {
  state.skipped = state.skipped.filter((k) => !(k.pair === pair && chainOrTree(k)));
}

/** Applies the deletion rules and bounds of section 9 to a pair. */
export function cleanupPair(state: ConversationState, peerIndex: number, pair: Pair, now: number): void {
  const cur = currentTree(pair);
  for (const tree of pair.trees) {
    // Superseded own chains go once no peer chain that could target them can still arrive, or after MaxSkipAge.
    tree.own = tree.own.filter((c) => {
      if (c.supersededAt === 0) return true;
      const waiting = tree.peerMissing.some((m) => m.q < c.supersededBy);
      const gone = !waiting || now - c.supersededAt >= MAX_SKIP_AGE_MS;
      if (gone) deleteSkippedOf(state, peerIndex, (k) => k.slot && equalBytes(k.chain, c.id));
      return !gone;
    });
    if (tree.own.length > MAX_OWN_CHAINS) {
      tree.own.sort((a, b) => a.q - b.q);
      const drop = tree.own.splice(0, tree.own.length - MAX_OWN_CHAINS);
      for (const c of drop) deleteSkippedOf(state, peerIndex, (k) => k.slot && equalBytes(k.chain, c.id));
    }
    if (tree.peer.length > MAX_PEER_CHAINS) {
      tree.peer.sort((a, b) => a.q - b.q);
      tree.peer.splice(0, tree.peer.length - MAX_PEER_CHAINS);
    }
  }
  // Idle trees that are not current; then the bound on trees, oldest first.
  const dropTree = (t: Tree): void => {
    pair.trees = pair.trees.filter((x) => x !== t);
    deleteSkippedOf(state, peerIndex, (k) => equalBytes(k.tree, t.id));
  };
  for (const t of [...pair.trees]) if (t !== cur && now - t.lastRecv >= MAX_SKIP_AGE_MS) dropTree(t);
  while (pair.trees.length > MAX_TREES) {
    const victim = byPosition(pair.trees).find((t) => t !== cur && !(t.mine && t.p === 0));
    if (!victim) break;
    dropTree(victim);
  }
}

/** Applies the session-wide bounds on skipped keys: age, then count (oldest first). */
export function cleanupSkipped(state: ConversationState, now: number): void {
  state.skipped = state.skipped.filter((k) => now - k.at < MAX_SKIP_AGE_MS);
  if (state.skipped.length > MAX_SKIPPED_KEYS) {
    // Stable: equal times keep insertion order, so the earliest kept go first.
    const order = state.skipped.map((k, i) => ({ k, i })).sort((a, b) => a.k.at - b.k.at || a.i - b.i);
    const drop = new Set(order.slice(0, state.skipped.length - MAX_SKIPPED_KEYS).map((x) => x.k));
    state.skipped = state.skipped.filter((k) => !drop.has(k));
  }
}

/** Checks a ratchet key received from the wire (the parser did; this guards internal callers). */
export function checkRatchetKey(ek: Uint8Array): void {
  if (!kemPublicKeyCanonical(ek)) throw new MalformedEnvelopeError('the ratchet key is not a valid ML-KEM-768 key');
}

export { ChatError };
