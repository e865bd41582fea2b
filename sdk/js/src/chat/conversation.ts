// A conversation: one session's protocol state on one device, with send
// (sections 7 and 12) and open (section 8). Each call loads the state,
// works on a copy, and commits the copy, the outbox and the archive in one
// atomic store commit before it returns; a failure commits nothing but the
// hints the protocol keeps about failures (the highest position seen, a
// chain to answer with a step, a tree to re-initiate).

import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, equalBytes, toHex } from '../bytes.js';
import type { PublicIdentity } from '../identity.js';
import { sessionIdToBytes } from '../identity.js';
import { headerHash, SIGN_CONTEXT, signedTranscript, wrapKey } from './derive.js';
import type { ChatDevice, ChatSession, Directory, PrekeyBundle } from './device.js';
import { checkBundle, envelopeHash, recordNames } from './device.js';
import {
  ChatDecryptionError,
  ChatError,
  ChatSignatureError,
  MalformedEnvelopeError,
  NotAddressedError,
  ReplayError,
  UnclaimedPrekeyError,
  UnknownPrekeyError,
  WrongSenderError,
} from './errors.js';
import { MAX_ENVELOPE_SIZE, MAX_OUTBOX, MAX_PLAINTEXT_SIZE, UNKNOWN_TREE_WAIT } from './limits.js';
import {
  type Action,
  cleanupPair,
  cleanupSkipped,
  decide,
  type HandshakeBundle,
  kemFromSeed,
  noteUnknownTree,
  noteUnopenableChain,
  type PairContext,
  ratchetKeyFromSeed,
  type ReceiveContext,
  receiveContinue,
  receiveHandshake,
  receiveStep,
  sendContinue,
  sendHandshake,
  sendStep,
  stepChainId,
} from './ratchet.js';
import {
  type ArchiveEntry,
  type ConversationState,
  decodeArchive,
  decodeConversation,
  decodeOutbox,
  type DeviceState,
  encodeArchive,
  encodeConversation,
  encodeOutbox,
  type OutboxEntry,
  type Pair,
  STATE_VERSION,
  type Tree,
} from './state.js';
import {
  envelopeSize,
  Kind,
  marshalBody,
  marshalHeader,
  parseBody,
  parseEnvelope,
  type Stanza,
  stanzaPrefix,
  startsChain,
} from './wire.js';

const ZERO12 = new Uint8Array(12);
const ZERO24 = new Uint8Array(24);

/** A claim its transaction must carry: a one-time prekey of a participant, claimed for this message. */
export interface Claim {
  /** The participant's Session ID. */
  participant: string;
  prekeyId: number;
}

/** An envelope to submit as a SendMessage ciphertext, in order, with its claims. */
export interface Outgoing {
  envelope: Uint8Array;
  /** A setup message (handshakes only, no plaintext) that precedes the content message. */
  setup: boolean;
  claims: Claim[];
  /** The envelope's hash: its name in the outbox. */
  hash: Uint8Array;
}

/** A message of the session as the chain delivered it (docs/protocol.md section 3). */
export interface Delivery {
  /** The SendMessage ciphertext. */
  envelope: Uint8Array;
  /** The session's message sequence number (from 1). */
  position: number;
  /** The transaction's author, a Session ID ("07…"). */
  sender: string;
  /** The transaction's claims. */
  claims: readonly Claim[];
}

/** A message opened (or an own message confirmed). */
export interface OpenedChatMessage {
  position: number;
  /** The verified sender's Session ID and participant index. */
  sender: string;
  senderIndex: number;
  /** A setup message (no plaintext). */
  setup: boolean;
  plaintext: Uint8Array;
  /** The sender's clock at sending (Unix ms): for display only. */
  sentAt: number;
  /** This device sent it (found in the outbox). */
  own: boolean;
}

/** A message of the archive or the outbox, for history views. */
export interface HistoryEntry {
  /** 0 while it waits in the outbox. */
  position: number;
  sender: string;
  plaintext: Uint8Array;
  sentAt: number;
  own: boolean;
}

type Plan = { r: number; action: Action; bundle?: HandshakeBundle; claim?: Claim };

/** One session's protocol on a device. Get it from ChatDevice.conversation or createConversation. */
export class Conversation {
  /** @internal */
  constructor(
    private readonly device: ChatDevice,
    readonly session: ChatSession,
    private readonly ids: Uint8Array[],
    /** This device's index in the participant list. */
    readonly me: number,
    private readonly pd: Uint8Array,
    private readonly sc: Uint8Array,
  ) {}

  private get names(): ReturnType<typeof recordNames> {
    return recordNames(this.session.id);
  }

  private fresh(): ConversationState {
    const n = this.ids.length;
    const pairs: (Pair | undefined)[] = [];
    for (let i = 0; i < n; i++) pairs.push(i === this.me ? undefined : { trees: [], bundle: undefined, forceStep: false, answered: [], reset: false, unknownTreeAt: 0 });
    return {
      chainId: this.session.chainId.slice(),
      sessionId: this.session.id.slice(),
      pd: this.pd.slice(),
      me: this.me,
      n,
      claims: [0, ...this.session.claims],
      highestSeen: 0,
      prefix: 0,
      above: [],
      pairs,
      skipped: [],
      outbox: [],
      archived: 0,
    };
  }

  private async load(): Promise<ConversationState> {
    const b = await this.device.store.get(this.names.state);
    if (!b) throw new ChatError('unknown-conversation', 'no state for this session on this device');
    const s = decodeConversation(b);
    if (!equalBytes(s.pd, this.pd) || s.me !== this.me || !equalBytes(s.chainId, this.session.chainId)) {
      throw new ChatError('invalid-session', 'the session given is not the one of the stored state (participants differ)');
    }
    return s;
  }

  /** @internal */
  async _loadOrNew(): Promise<void> {
    const b = await this.device.store.get(this.names.state);
    if (b) {
      await this.load();
      return;
    }
    await this.device.store.commit(new Map([[this.names.state, encodeConversation(this.fresh())]]), []);
  }

  /** @internal */
  async _create(now: number, bundles: readonly PrekeyBundle[]): Promise<void> {
    if (this.me !== 0) throw new ChatError('invalid-session', 'only the creator (the first participant) creates the conversation');
    if (await this.device.store.get(this.names.state)) throw new ChatError('invalid-session', 'this session already has state on this device');
    const parts = this.session.participants;
    if (bundles.length !== parts.length - 1) throw new ChatError('no-prekey-bundle', `${bundles.length} bundles for ${parts.length - 1} participants`);
    const s = this.fresh();
    bundles.forEach((b, i) => {
      const p = parts[i + 1]!;
      checkBundle(b, p, now);
      const claimed = this.session.claims[i]!;
      if ((b.oneTimePrekey?.id ?? 0) !== claimed) throw new ChatError('no-prekey-bundle', `the bundle of ${p.sessionId} is not the one claimed in the session`);
      s.pairs[i + 1]!.bundle = {
        spkId: b.signedPrekey.id,
        spk: b.signedPrekey.publicKey.slice(),
        opkId: claimed,
        opk: claimed !== 0 ? b.oneTimePrekey!.publicKey.slice() : undefined,
      };
    });
    await this.device.store.commit(new Map([[this.names.state, encodeConversation(s)]]), []);
  }

  private pairContext(r: number): PairContext {
    return { sc: this.sc, me: this.ids[this.me]!, peer: this.ids[r]!, peerIndex: r };
  }

  // ---- sending ----

  /**
   * Encrypts plaintext to every other participant (section 7). Returns the
   * envelopes to submit, in order (setup messages first), each with the
   * claims its transaction must carry. Before it returns, the advanced
   * state and the envelopes are committed to the outbox: submit them as
   * they are, and resubmit the same bytes after a crash (pending()).
   */
  send(now: number, plaintext: Uint8Array, directory: Directory): Promise<Outgoing[]> {
    return this.device._serial(() => this.sendLocked(now, plaintext, directory));
  }

  private async sendLocked(now: number, plaintext: Uint8Array, directory: Directory): Promise<Outgoing[]> {
    if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be bytes');
    if (plaintext.length > MAX_PLAINTEXT_SIZE) throw new ChatError('plaintext-too-large', `plaintext of ${plaintext.length} bytes, at most ${MAX_PLAINTEXT_SIZE}`);
    const state = await this.load();
    if (state.outbox.length >= MAX_OUTBOX) throw new ChatError('outbox-full', `${state.outbox.length} envelopes wait for confirmation`);
    const work = structuredClone(state);
    const n = work.n;
    const plans: Plan[] = [];
    for (let r = 0; r < n; r++) {
      if (r === this.me) continue;
      const pair = work.pairs[r]!;
      if (pair.unknownTreeAt !== 0 && (work.prefix >= pair.unknownTreeAt - 1 || work.highestSeen >= pair.unknownTreeAt + UNKNOWN_TREE_WAIT)) pair.reset = true;
      plans.push({ r, action: decide(pair, now) });
    }
    // Bundles for the handshakes, in participant order.
    for (const p of plans) {
      if (p.action !== 'handshake') continue;
      const pair = work.pairs[p.r]!;
      const participant = this.session.participants[p.r]!;
      if (pair.bundle) {
        const b = pair.bundle;
        p.bundle = { identityKey: participant.kemPublicKey, spkId: b.spkId, spk: b.spk, opkId: b.opkId, opk: b.opk };
        pair.bundle = undefined;
        continue;
      }
      const b = await directory.prekeyBundle(participant.sessionId);
      checkBundle(b, participant, now);
      const o = b.oneTimePrekey;
      p.bundle = { identityKey: participant.kemPublicKey, spkId: b.signedPrekey.id, spk: b.signedPrekey.publicKey, opkId: o?.id ?? 0, opk: o?.publicKey };
      if (o) p.claim = { participant: participant.sessionId, prekeyId: o.id };
    }
    const envelopes = planEnvelopes(plans, n, plaintext.length);
    if (state.outbox.length + envelopes.length > MAX_OUTBOX) throw new ChatError('outbox-full', `${state.outbox.length} envelopes wait for confirmation`);
    const out: Outgoing[] = [];
    const puts = new Map<string, Uint8Array>();
    for (const e of envelopes) {
      const built = this.build(work, now, e.setup ? Kind.setup : Kind.content, e.actions, e.setup ? new Uint8Array(0) : plaintext);
      const hash = envelopeHash(built.envelope);
      const claims = e.claims;
      out.push({ envelope: built.envelope, setup: e.setup, claims, hash });
      work.outbox.push({ hash, trees: built.trees });
      const entry: OutboxEntry = {
        hash,
        envelope: built.envelope,
        setup: e.setup,
        sentAt: now,
        plaintext: e.setup ? new Uint8Array(0) : plaintext.slice(),
        claims: claims.map((c) => ({ participant: this.session.participants.findIndex((p) => p.sessionId === c.participant), prekeyId: c.prekeyId })),
      };
      puts.set(this.names.outbox + toHex(hash), encodeOutbox(entry));
    }
    this.cleanup(work, now);
    puts.set(this.names.state, encodeConversation(work));
    await this.device.store.commit(puts, []);
    return out;
  }

  /** Builds one envelope, advancing the ratchets of `work` (section 5.5, randomness in the order of 7.4). */
  private build(work: ConversationState, now: number, kind: number, actions: Map<number, Plan | 'none'>, plaintext: Uint8Array): { envelope: Uint8Array; trees: { pair: number; id: Uint8Array }[] } {
    const rng = this.device._rng;
    const nonce = rng.read(16);
    const ck = rng.read(32);
    const needsKey = [...actions.values()].some((a) => a !== 'none' && (a.action === 'step' || a.action === 'handshake'));
    const rk = needsKey ? ratchetKeyFromSeed(rng.read(64)) : undefined;
    const stanzas: Stanza[] = [];
    const trees: { pair: number; id: Uint8Array }[] = [];
    for (let r = 0; r < work.n; r++) {
      if (r === this.me) continue;
      const a = actions.get(r)!;
      if (a === 'none') {
        stanzas.push({ type: 'none' });
        continue;
      }
      const pair = work.pairs[r]!;
      const ctx = this.pairContext(r);
      let st: Omit<Exclude<Stanza, { type: 'none' }>, 'wrapped'>;
      let mk: Uint8Array;
      if (a.action === 'handshake') {
        const b = a.bundle!;
        const m1 = rng.read(32);
        const m2 = rng.read(32);
        const m3 = b.opkId !== 0 ? rng.read(32) : undefined;
        const h = sendHandshake(ctx, pair, b, rk!, { m1, m2, m3 }, work.highestSeen, now);
        st = h.stanza;
        mk = h.mk;
        trees.push({ pair: r, id: h.tree.id });
      } else if (a.action === 'step') {
        const s = sendStep(ctx, pair, rk!, rng.read(32), now);
        st = s.stanza;
        mk = s.mk;
      } else {
        const c = sendContinue(pair);
        st = c.stanza;
        mk = c.mk;
      }
      const prefix = stanzaPrefix({ ...st, wrapped: new Uint8Array(0) } as Stanza);
      const wk = wrapKey(mk, nonce, this.me, r);
      const wrapped = chacha20poly1305(wk, ZERO12, prefix).encrypt(ck);
      wk.fill(0);
      mk.fill(0);
      stanzas.push({ ...st, wrapped } as Stanza);
    }
    const header = marshalHeader(this.me, nonce, rk?.publicKey, stanzas);
    const hh = headerHash(header);
    const m = signedTranscript(this.sc, this.ids[this.me]!, hh, kind, now, plaintext);
    const sig = this.device._sign(m, SIGN_CONTEXT);
    const bodyPt = marshalBody(kind, now, sig, plaintext);
    const body = xchacha20poly1305(ck, ZERO24, hh).encrypt(bodyPt);
    bodyPt.fill(0);
    ck.fill(0);
    const envelope = concat(header, body);
    if (envelope.length > MAX_ENVELOPE_SIZE) throw new Error(`chat: planned envelope of ${envelope.length} bytes (a bug)`);
    return { envelope, trees };
  }

  private cleanup(work: ConversationState, now: number): void {
    for (let r = 0; r < work.n; r++) {
      const p = work.pairs[r];
      if (p) cleanupPair(work, r, p, now);
    }
    cleanupSkipped(work, now);
  }

  /** The envelopes waiting in the outbox (sent or not), in the order they were made: submit them in this order. */
  pending(): Promise<Outgoing[]> {
    return this.device._serial(async () => {
      const state = await this.load();
      const out: Outgoing[] = [];
      for (const ref of state.outbox) {
        const b = await this.device.store.get(this.names.outbox + toHex(ref.hash));
        if (!b) throw new ChatError('state-corrupt', 'an outbox record is missing');
        const e = decodeOutbox(b);
        out.push({
          envelope: e.envelope,
          setup: e.setup,
          hash: e.hash,
          claims: e.claims.map((c) => ({ participant: this.session.participants[c.participant]!.sessionId, prekeyId: c.prekeyId })),
        });
      }
      return out;
    });
  }

  // ---- receiving ----

  /**
   * Opens a delivered message (section 8). An own message (found in the
   * outbox) is confirmed at its position and returned. Throws a ChatError
   * whose `code` names the failure; then nothing changes but the hints.
   */
  open(now: number, d: Delivery): Promise<OpenedChatMessage> {
    return this.device._serial(() => this.openLocked(now, d));
  }

  private async openLocked(now: number, d: Delivery): Promise<OpenedChatMessage> {
    if (!d || !Number.isSafeInteger(d.position) || d.position < 1) throw new MalformedEnvelopeError('the position must be an integer from 1');
    const env = parseEnvelope(d.envelope);
    const state = await this.load();
    if (env.stanzas.length !== state.n - 1) throw new MalformedEnvelopeError(`${env.stanzas.length} stanzas for ${state.n} participants`);
    const x = env.sender;
    let author: Uint8Array;
    try {
      author = sessionIdToBytes(d.sender);
    } catch {
      throw new WrongSenderError('the delivery names no valid author');
    }
    if (!equalBytes(this.ids[x]!, author)) throw new WrongSenderError();
    const hash = envelopeHash(d.envelope);
    // From here on, the delivery counts as seen (opened or not).
    seen(state, d.position);
    const saveHints = (): Promise<void> => this.device.store.commit(new Map([[this.names.state, encodeConversation(state)]]), []);

    if (x === this.me) return this.confirmOwn(state, d, hash, saveHints);
    if (await this.device.store.get(this.names.seen + toHex(hash))) {
      await saveHints();
      throw new ReplayError();
    }
    const r = this.me < x ? this.me : this.me - 1;
    const stanza = env.stanzas[r]!;
    if (stanza.type === 'none') {
      await saveHints();
      throw new NotAddressedError();
    }

    const work = structuredClone(state);
    const pair = work.pairs[x]!;
    const ctx: ReceiveContext = {
      ...this.pairContext(x),
      state: work,
      keys: { decapsulateIdentity: (ct) => this.device.identity.decapsulate(ct) },
      ratchetKey: env.ratchetKey,
      position: d.position,
      now,
    };
    let mk: Uint8Array;
    let device: DeviceState | undefined;
    try {
      switch (stanza.type) {
        case 'continue':
          mk = receiveContinue(ctx, pair, stanza);
          break;
        case 'step':
          mk = receiveStep(ctx, pair, stanza);
          break;
        case 'handshake': {
          device = await this.device._loadDevice();
          const spk = device.signed.find((s) => s.id === stanza.spkId);
          if (!spk) throw new UnknownPrekeyError('the handshake names a signed prekey this device does not hold');
          let opk: { seed: Uint8Array; publicKey: Uint8Array } | undefined;
          if (stanza.opkId !== 0) {
            const i = device.oneTime.findIndex((o) => o.id === stanza.opkId);
            if (i < 0) throw new UnknownPrekeyError('the handshake names a one-time prekey this device does not hold');
            const claimed =
              d.claims.some((c) => c.participant === this.device.identity.sessionId && c.prekeyId === stanza.opkId) ||
              (x === 0 && state.claims[this.me] === stanza.opkId);
            if (!claimed) throw new UnclaimedPrekeyError();
            const seed = device.oneTime[i]!.seed;
            opk = { seed, publicKey: kemFromSeed(seed).publicKey };
            device.oneTime.splice(i, 1);
          }
          const spkPub = kemFromSeed(spk.seed).publicKey;
          mk = receiveHandshake(ctx, pair, stanza, { spk: { seed: spk.seed, publicKey: spkPub }, opk }).mk;
          break;
        }
      }
    } catch (e) {
      if (e instanceof ChatError) {
        const p = state.pairs[x]!;
        if (e.code === 'unknown-tree') noteUnknownTree(p, d.position);
        else if (e.code === 'chain-not-started' && stanza.type === 'continue') noteUnopenableChain(p, stanza.chain);
        else if (e.code === 'unknown-target' && stanza.type === 'step') noteUnopenableChain(p, stepChainId(stanza));
        await saveHints();
      }
      throw e;
    }

    // Unwrap the content key, decrypt and parse the body, verify the signature (section 8, steps 5 and 6).
    const wk = wrapKey(mk, env.nonce, x, this.me);
    mk.fill(0);
    let ck: Uint8Array;
    try {
      ck = chacha20poly1305(wk, ZERO12, stanzaPrefix(stanza)).decrypt(stanza.wrapped);
    } catch {
      throw new ChatDecryptionError();
    } finally {
      wk.fill(0);
    }
    const hh = headerHash(env.header);
    let bodyPt: Uint8Array;
    try {
      bodyPt = xchacha20poly1305(ck, ZERO24, hh).decrypt(env.body);
    } catch {
      throw new ChatDecryptionError();
    } finally {
      ck.fill(0);
    }
    const body = parseBody(bodyPt);
    if (body.kind !== Kind.content && body.kind !== Kind.setup) throw new MalformedEnvelopeError(`unknown kind ${body.kind}`);
    if (body.kind === Kind.setup && body.plaintext.length !== 0) throw new MalformedEnvelopeError('a setup message with a plaintext');
    if (body.kind === Kind.content && env.stanzas.some((s) => s.type === 'none')) throw new MalformedEnvelopeError('a content message with a none stanza');
    const m = signedTranscript(this.sc, this.ids[x]!, hh, body.kind, body.sentAt, body.plaintext);
    const sender: PublicIdentity = this.session.participants[x]!;
    if (!sender.verify(m, body.signature, SIGN_CONTEXT)) throw new ChatSignatureError();

    // Commit: the ratchet, the consumed prekey, the archive, together (step 7).
    this.cleanup(work, now);
    work.archived++;
    const setup = body.kind === Kind.setup;
    const puts = new Map<string, Uint8Array>();
    puts.set(this.names.state, encodeConversation(work));
    if (device) puts.set(...this.device._deviceRecord(device));
    puts.set(this.names.seen + toHex(hash), seenRecord(d.position));
    if (!setup) {
      const a: ArchiveEntry = { hash, position: d.position, sender: x, setup, sentAt: body.sentAt, plaintext: body.plaintext };
      puts.set(this.archiveName(d.position), encodeArchive(a));
    }
    await this.device.store.commit(puts, []);
    return { position: d.position, sender: sender.sessionId, senderIndex: x, setup, plaintext: body.plaintext, sentAt: body.sentAt, own: false };
  }

  private archiveName(position: number): string {
    return this.names.archive + position.toString().padStart(16, '0');
  }

  /** Section 8, step 2: an own envelope, found in the outbox by its hash, is confirmed at this position. */
  private async confirmOwn(state: ConversationState, d: Delivery, hash: Uint8Array, saveHints: () => Promise<void>): Promise<OpenedChatMessage> {
    const i = state.outbox.findIndex((o) => equalBytes(o.hash, hash));
    if (i < 0) {
      await saveHints();
      if (await this.device.store.get(this.names.seen + toHex(hash))) throw new ReplayError('replay: this own message was already confirmed');
      throw new ChatError('unknown-own-message', 'an envelope of this identity that this device did not send (is the identity in use elsewhere?)');
    }
    const ref = state.outbox[i]!;
    const name = this.names.outbox + toHex(hash);
    const b = await this.device.store.get(name);
    if (!b) throw new ChatError('state-corrupt', 'an outbox record is missing');
    const e = decodeOutbox(b);
    state.outbox.splice(i, 1);
    for (const t of ref.trees) {
      const tree = state.pairs[t.pair]?.trees.find((x: Tree) => equalBytes(x.id, t.id));
      if (tree && tree.p === 0) tree.p = d.position;
    }
    state.archived++;
    const puts = new Map<string, Uint8Array>();
    puts.set(this.names.state, encodeConversation(state));
    puts.set(this.names.seen + toHex(hash), seenRecord(d.position));
    if (!e.setup) puts.set(this.archiveName(d.position), encodeArchive({ hash, position: d.position, sender: this.me, setup: false, sentAt: e.sentAt, plaintext: e.plaintext }));
    await this.device.store.commit(puts, [name]);
    return { position: d.position, sender: this.device.identity.sessionId, senderIndex: this.me, setup: e.setup, plaintext: e.plaintext, sentAt: e.sentAt, own: true };
  }

  // ---- history and control ----

  /** The archived messages (position order), then the ones waiting in the outbox. */
  history(): Promise<HistoryEntry[]> {
    return this.device._serial(async () => {
      const out: HistoryEntry[] = [];
      for (const name of await this.device.store.list(this.names.archive)) {
        const b = await this.device.store.get(name);
        if (!b) continue;
        const a = decodeArchive(b);
        out.push({ position: a.position, sender: this.session.participants[a.sender]?.sessionId ?? '', plaintext: a.plaintext, sentAt: a.sentAt, own: a.sender === this.me });
      }
      const state = await this.load();
      for (const ref of state.outbox) {
        const b = await this.device.store.get(this.names.outbox + toHex(ref.hash));
        if (!b) continue;
        const e = decodeOutbox(b);
        if (!e.setup) out.push({ position: 0, sender: this.device.identity.sessionId, plaintext: e.plaintext, sentAt: e.sentAt, own: true });
      }
      return out;
    });
  }

  /** Asks for a re-initiation with a participant (section 10.3): the next send makes a new handshake. */
  reset(participant: string): Promise<void> {
    return this.device._serial(async () => {
      const state = await this.load();
      const r = this.session.participants.findIndex((p) => p.sessionId === participant);
      if (r < 0 || r === this.me) throw new ChatError('not-participant', 'not another participant of this session');
      state.pairs[r]!.reset = true;
      await this.device.store.commit(new Map([[this.names.state, encodeConversation(state)]]), []);
    });
  }
}

/** Records a delivered position: the highest seen, and the delivered prefix (section 10.3). */
function seen(s: ConversationState, position: number): void {
  if (position > s.highestSeen) s.highestSeen = position;
  if (position <= s.prefix || s.above.includes(position)) return;
  s.above.push(position);
  s.above.sort((a, b) => a - b);
  while (s.above.length > 0 && s.above[0] === s.prefix + 1) {
    s.prefix++;
    s.above.shift();
  }
  // Bounded: beyond 4096 gaps, the oldest gap counts as delivered.
  while (s.above.length > 4096) s.prefix = s.above.shift()!;
}

function seenRecord(position: number): Uint8Array {
  const b = new Uint8Array(10);
  b[0] = STATE_VERSION;
  b[1] = 0x48; // 'H'
  new DataView(b.buffer).setBigUint64(2, BigInt(position));
  return b;
}

interface EnvelopePlan {
  setup: boolean;
  actions: Map<number, Plan | 'none'>;
  claims: Claim[];
}

/** Splits the stanzas of one send into setup messages and the content message (section 7.3). */
export function planEnvelopes(plans: readonly Plan[], n: number, plaintextSize: number): EnvelopePlan[] {
  const stanzaOf = (p: Plan | 'none'): Stanza => {
    if (p === 'none') return { type: 'none' };
    if (p.action === 'handshake') return { type: 'handshake', opkId: p.bundle!.opkId } as Stanza;
    return { type: p.action } as Stanza;
  };
  const sizeOf = (actions: Map<number, Plan | 'none'>, p: number): number => envelopeSize([...actions.values()].map(stanzaOf), p);
  const content = new Map<number, Plan | 'none'>(plans.map((p) => [p.r, p]));
  const claimsFor = (acts: Iterable<Plan | 'none'>): Claim[] => [...acts].flatMap((a) => (a !== 'none' && a.action === 'handshake' && a.claim ? [a.claim] : []));
  if (sizeOf(content, plaintextSize) <= MAX_ENVELOPE_SIZE) return [{ setup: false, actions: content, claims: claimsFor(content.values()) }];

  const hs = plans.filter((p) => p.action === 'handshake');
  // The content message keeps the longest prefix of the handshakes that fits; the rest continue A1 (n = 1).
  let keep = hs.length;
  const contentWith = (k: number): Map<number, Plan | 'none'> => {
    const m = new Map<number, Plan | 'none'>();
    for (const p of plans) m.set(p.r, p.action === 'handshake' && hs.indexOf(p) >= k ? { r: p.r, action: 'continue' } : p);
    return m;
  };
  while (keep > 0 && sizeOf(contentWith(keep), plaintextSize) > MAX_ENVELOPE_SIZE) keep--;
  const rest = hs.slice(keep);
  const setups: EnvelopePlan[] = [];
  while (rest.length > 0) {
    let take = rest.length;
    const setupWith = (k: number): Map<number, Plan | 'none'> => {
      const chosen = new Set(rest.slice(0, k).map((p) => p.r));
      const m = new Map<number, Plan | 'none'>();
      for (const p of plans) m.set(p.r, chosen.has(p.r) ? p : 'none');
      return m;
    };
    while (take > 1 && sizeOf(setupWith(take), 0) > MAX_ENVELOPE_SIZE) take--;
    const acts = setupWith(take);
    setups.push({ setup: true, actions: acts, claims: claimsFor(acts.values()) });
    rest.splice(0, take);
  }
  const c = contentWith(keep);
  return [...setups, { setup: false, actions: c, claims: claimsFor(c.values()) }];
}

export { startsChain };
