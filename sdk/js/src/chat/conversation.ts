// A conversation: one session's protocol state on one device, with send
// (sections 7 and 12), dead transactions (10.4), ratchet messages (7.6)
// and open (section 8, checks in its order). Each call loads the state,
// works on a copy, and commits the copy with the outbox, the archive and
// the device's prekeys in one atomic store commit before it returns; a
// failed open commits nothing but the hints the protocol keeps about
// failures (position hints, a generation seen, a chain to answer with a
// step, an unknown tree).

import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { concat, equalBytes, toHex } from '../bytes.js';
import { sessionIdToBytes } from '../identity.js';
import { contentKey, envelopeId as envelopeIdOf, headerHash, type MessageFields, messageId as messageIdOf, SIGN_CONTEXT, signedTranscript, wrapKey } from './derive.js';
import type { ChatDevice, ChatSession, Directory } from './device.js';
import { checkBundle, recordNames } from './device.js';
import {
  ChatDecryptionError,
  ChatError,
  ChatSignatureError,
  DuplicateError,
  MalformedEnvelopeError,
  NotAddressedError,
  NotFromThisDeviceError,
  ReplayError,
  TooManyHandshakesError,
  UnclaimedPrekeyError,
  UnknownPrekeyError,
  WrongSenderError,
} from './errors.js';
import {
  MAX_ENVELOPE_SIZE,
  MAX_HANDSHAKES_PER_PEER,
  MAX_OUTBOX,
  MAX_PLAINTEXT_SIZE,
  MAX_REMEMBERED_ENVELOPES,
  RATCHET_AFTER_MESSAGES,
  RATCHET_AFTER_MS,
  UNKNOWN_TREE_WAIT,
} from './limits.js';
import {
  type Action,
  checkHandshakeBound,
  checkHandshakeReplay,
  cleanupPair,
  currentTree,
  decide,
  type HandshakeBundle,
  handshakeTreeId,
  liveOwnHandshakes,
  markDead,
  markLanded,
  noteGeneration,
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
  type EnvelopeRole,
  type OutboxEntry,
  type OutboxMessage,
  type Pair,
  STATE_VERSION,
} from './state.js';
import { envelopeSize, Kind, marshalBody, marshalHeader, parseBody, parseEnvelope, type Stanza, stanzaPrefix, ZERO_MID } from './wire.js';

const ZERO12 = new Uint8Array(12);
const ZERO24 = new Uint8Array(24);

/** A claim (section 11.2): the on-chain record that an initiator used a participant's prekeys. */
export interface Claim {
  /** The participant's Session ID. */
  participant: string;
  signedPrekeyId: number;
  /** 0: no one-time prekey. */
  oneTimePrekeyId: number;
}

/** An envelope to submit as a SendMessage ciphertext, in order, with its claims. */
export interface Outgoing {
  envelope: Uint8Array;
  /** The envelope's ID (section 5.5): how the outcome of its transaction is reported. */
  envelopeId: Uint8Array;
  /** content; setup (handshakes that precede the content message); ratchet (section 7.6). */
  role: EnvelopeRole;
  /** The claims its SendMessage transaction must carry, in this order. */
  claims: Claim[];
  /** The signed transaction, once setTransaction stored it. */
  tx?: Uint8Array | undefined;
}

/** A message of the session as the caller verified it from its SendMessage transaction (section 3). */
export interface Delivery {
  /** The payload's ciphertext. */
  envelope: Uint8Array;
  /** The session's message sequence number as the node reports it: a hint. */
  position: number;
  /** The transaction's author, a Session ID ("07…"). */
  sender: string;
  /** The payload's claims, all of them, in order. */
  claims: readonly Claim[];
}

/** A message opened, or an own envelope that landed. */
export interface OpenedChatMessage {
  position: number;
  /** The verified sender's Session ID and participant index. */
  sender: string;
  senderIndex: number;
  /** A control message (setup or ratchet message): no plaintext. */
  control: boolean;
  plaintext: Uint8Array;
  /** The sender's clock (Unix ms), signed and strictly increasing per sender for content messages. */
  sentAt: number;
  /** The message's ID, and the ID of the last message its sender had seen (all zero: none). */
  messageId: Uint8Array;
  after: Uint8Array;
  /** This device sent it: it landed. */
  own: boolean;
}

/** A message of the archive or the outbox, for history views. */
export interface HistoryEntry {
  /** 0 while it waits in the outbox. */
  position: number;
  sender: string;
  plaintext: Uint8Array;
  sentAt: number;
  messageId: Uint8Array;
  after: Uint8Array;
  own: boolean;
}

/** Options of a send. */
export interface SendOptions {
  /** Participants not to address (section 7.1: those whose departure the caller verified). */
  exclude?: readonly string[];
}

type Plan = { r: number; action: Action; bundle?: HandshakeBundle; claim?: Claim; sessionClaim?: boolean };
type Slot = Plan | 'none';

interface EnvelopePlan {
  role: EnvelopeRole;
  actions: Map<number, Slot>;
  claims: Claim[];
}

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
    for (let i = 0; i < n; i++) {
      pairs.push(
        i === this.me
          ? undefined
          : { marks: [], highestGen: 0, trees: [], bundle: undefined, sessionClaimUsed: false, forceStep: false, answered: [], reset: false, unknownTreeAt: 0, skipped: [] },
      );
    }
    const claims: ConversationState['claims'] = new Array(n).fill(undefined);
    for (const c of this.session.claims) {
      const i = this.session.participants.findIndex((p) => p.sessionId === c.participant);
      claims[i] = { spkId: c.signedPrekeyId, opkId: c.oneTimePrekeyId };
    }
    return {
      chainId: this.session.chainId.slice(),
      sessionId: this.session.id.slice(),
      pd: this.pd.slice(),
      me: this.me,
      n,
      claims,
      clock: 0,
      lastSentAt: 0,
      lastMessageId: new Uint8Array(16),
      highestSeen: 0,
      prefix: 0,
      above: [],
      pairs,
      outbox: [],
      nextSeq: 1,
      receivedSinceSend: 0,
      firstReceivedAt: 0,
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
    if (await this.device.store.get(this.names.state)) {
      await this.load();
      return;
    }
    await this.device.store.commit(new Map([[this.names.state, encodeConversation(this.fresh())]]), []);
  }

  /** @internal */
  async _create(now: number, bundles: ReadonlyMap<string, import('./device.js').PrekeyBundle>): Promise<void> {
    if (this.me !== 0) throw new ChatError('invalid-session', 'only the creator (the first participant) creates the conversation');
    if (await this.device.store.get(this.names.state)) throw new ChatError('invalid-session', 'this session already has state on this device');
    const s = this.fresh();
    for (const c of this.session.claims) {
      const r = this.session.participants.findIndex((p) => p.sessionId === c.participant);
      const b = bundles.get(c.participant);
      if (!b) throw new ChatError('no-prekey-bundle', `no bundle for the session claim of ${c.participant}`);
      checkBundle(b, this.session.participants[r]!, now);
      if (b.signedPrekey.id !== c.signedPrekeyId || (b.oneTimePrekey?.id ?? 0) !== c.oneTimePrekeyId) {
        throw new ChatError('no-prekey-bundle', `the bundle of ${c.participant} is not the one its session claim names`);
      }
      s.pairs[r]!.bundle = {
        spkId: b.signedPrekey.id,
        spk: b.signedPrekey.publicKey.slice(),
        expiresAt: b.signedPrekey.expiresAt,
        opkId: c.oneTimePrekeyId,
        opk: c.oneTimePrekeyId !== 0 ? b.oneTimePrekey!.publicKey.slice() : undefined,
      };
    }
    await this.device.store.commit(new Map([[this.names.state, encodeConversation(s)]]), []);
  }

  private pairContext(r: number): PairContext {
    return { sc: this.sc, me: this.ids[this.me]!, peer: this.ids[r]! };
  }

  private indexOf(sessionId: string): number {
    return this.session.participants.findIndex((p) => p.sessionId === sessionId);
  }

  /** The device's clock made monotonic (section 2). */
  private tick(work: ConversationState, now: number): number {
    if (!Number.isSafeInteger(now)) throw new TypeError('now must be Unix milliseconds');
    if (now > work.clock) work.clock = now;
    return work.clock;
  }

  // ---- sending ----

  /**
   * Encrypts plaintext to every addressed participant (section 7). Returns
   * the envelopes to submit, in order (setup messages first), each with the
   * claims its transaction must carry. Before it returns, the advanced
   * state and the envelopes are committed to the outbox: submit them as
   * they are (as consecutive transactions), resubmit the same transactions
   * after a crash (pending()), and report each outcome (open of the landed
   * envelope, or landed(), or dead()).
   */
  send(now: number, plaintext: Uint8Array, directory: Directory, opts: SendOptions = {}): Promise<Outgoing[]> {
    return this.device._serial(async () => {
      if (!(plaintext instanceof Uint8Array)) throw new TypeError('plaintext must be bytes');
      if (plaintext.length > MAX_PLAINTEXT_SIZE) throw new ChatError('plaintext-too-large', `plaintext of ${plaintext.length} bytes, at most ${MAX_PLAINTEXT_SIZE}`);
      const excluded: number[] = [];
      for (const s of opts.exclude ?? []) {
        const i = this.indexOf(s);
        if (i < 0 || i === this.me) throw new ChatError('not-participant', `cannot exclude ${s}: not another participant`);
        excluded.push(i);
      }
      const state = await this.load();
      const work = structuredClone(state);
      const t = this.tick(work, now);
      const mid = this.device._rng.read(16);
      const msg: OutboxMessage = { mid, sentAt: Math.max(t, work.lastSentAt + 1), after: work.lastMessageId.slice(), plaintext: plaintext.slice(), excluded };
      work.lastSentAt = msg.sentAt;
      work.lastMessageId = messageIdOf(this.ids[this.me]!, mid);
      const puts = new Map<string, Uint8Array>();
      const out = await this.compose(work, t, 'content', msg, directory, puts);
      await this.commitSend(work, t, puts);
      return out;
    });
  }

  /**
   * Whether a ratchet message is due (section 7.6): MaxChainMessages
   * content messages received since this device last sent, or a day since
   * the first of them.
   */
  ratchetDue(now: number): Promise<boolean> {
    return this.device._serial(async () => {
      const s = await this.load();
      return s.receivedSinceSend >= RATCHET_AFTER_MESSAGES || (s.firstReceivedAt !== 0 && now - s.firstReceivedAt >= RATCHET_AFTER_MS);
    });
  }

  /** A ratchet message (section 7.6): a step for every pair that has a tree to send in. Empty when there is none. */
  sendRatchet(now: number): Promise<Outgoing[]> {
    return this.device._serial(async () => {
      const work = structuredClone(await this.load());
      const t = this.tick(work, now);
      const puts = new Map<string, Uint8Array>();
      const out = await this.compose(work, t, 'ratchet', undefined, undefined, puts);
      if (out.length === 0) return out;
      await this.commitSend(work, t, puts);
      return out;
    });
  }

  private async commitSend(work: ConversationState, now: number, puts: Map<string, Uint8Array>): Promise<void> {
    work.receivedSinceSend = 0;
    work.firstReceivedAt = 0;
    const deletes = this.cleanup(work, now);
    puts.set(this.names.state, encodeConversation(work));
    await this.device.store.commit(puts, deletes);
  }

  /** Plans and builds the envelopes of one message (or ratchet message) into work, the outbox records into puts. */
  private async compose(work: ConversationState, now: number, role: 'content' | 'ratchet', msg: OutboxMessage | undefined, directory: Directory | undefined, puts: Map<string, Uint8Array>): Promise<Outgoing[]> {
    const ratchet = role === 'ratchet';
    const plans: Plan[] = [];
    const none: number[] = [];
    for (let r = 0; r < work.n; r++) {
      if (r === this.me) continue;
      const pair = work.pairs[r]!;
      if (msg?.excluded.includes(r)) {
        none.push(r);
        continue;
      }
      if (pair.unknownTreeAt !== 0 && (work.prefix >= pair.unknownTreeAt - 1 || work.highestSeen >= pair.unknownTreeAt + UNKNOWN_TREE_WAIT)) pair.reset = true;
      const action = decide(pair, now, ratchet);
      if (!action) {
        if (ratchet) {
          none.push(r);
          continue;
        }
        throw new ChatError('state-corrupt', `no tree to send in with ${this.session.participants[r]!.sessionId}`);
      }
      plans.push({ r, action });
    }
    if (ratchet && plans.length === 0) return [];
    // Bundles for the handshakes, in participant order (section 11.2).
    for (const p of plans) {
      if (p.action !== 'handshake') continue;
      const pair = work.pairs[p.r]!;
      const participant = this.session.participants[p.r]!;
      if (liveOwnHandshakes(pair) >= MAX_HANDSHAKES_PER_PEER) {
        throw new TooManyHandshakesError(`${MAX_HANDSHAKES_PER_PEER} handshakes with ${participant.sessionId} in this session: the pair needs a new session`);
      }
      const stored = pair.bundle;
      pair.bundle = undefined;
      if (stored && stored.expiresAt > now) {
        p.bundle = { identityKey: participant.kemPublicKey, spkId: stored.spkId, spk: stored.spk, opkId: stored.opkId, opk: stored.opk };
        p.sessionClaim = true;
        continue;
      }
      const b = await directory!.prekeyBundle(participant.sessionId);
      checkBundle(b, participant, now);
      const o = b.oneTimePrekey;
      p.bundle = { identityKey: participant.kemPublicKey, spkId: b.signedPrekey.id, spk: b.signedPrekey.publicKey, opkId: o?.id ?? 0, opk: o?.publicKey };
      p.claim = { participant: participant.sessionId, signedPrekeyId: b.signedPrekey.id, oneTimePrekeyId: o?.id ?? 0 };
    }
    const plaintextSize = msg && role === 'content' ? msg.plaintext.length : 0;
    const envelopes = planEnvelopes(plans, none, ratchet ? 'ratchet' : 'content', plaintextSize);
    const pending = work.outbox.filter((o) => o.status === 'pending').length;
    if (pending + envelopes.length > MAX_OUTBOX) throw new ChatError('outbox-full', `${pending} envelopes wait to land`);
    const out: Outgoing[] = [];
    for (const e of envelopes) {
      const seq = work.nextSeq++;
      const fields: MessageFields =
        e.role === 'content'
          ? { kind: Kind.content, sentAt: msg!.sentAt, mid: msg!.mid, after: msg!.after, plaintext: msg!.plaintext }
          : { kind: Kind.control, sentAt: e.role === 'setup' ? msg!.sentAt : now, mid: ZERO_MID, after: ZERO_MID, plaintext: new Uint8Array(0) };
      const built = this.build(work, now, seq, fields, e.actions);
      work.outbox.push({ seq, envelopeId: built.envelopeId, status: 'pending', trees: built.trees });
      const entry: OutboxEntry = {
        seq,
        envelopeId: built.envelopeId,
        envelope: built.envelope,
        role: e.role,
        claims: e.claims.map((c) => ({ participant: this.indexOf(c.participant), spkId: c.signedPrekeyId, opkId: c.oneTimePrekeyId })),
        message: e.role === 'ratchet' ? undefined : msg,
        tx: undefined,
      };
      puts.set(this.names.outbox + toHex(built.envelopeId), encodeOutbox(entry));
      puts.set(this.names.made + toHex(built.envelopeId), marker());
      out.push({ envelope: built.envelope, envelopeId: built.envelopeId, role: e.role, claims: e.claims });
    }
    return out;
  }

  /** Builds one envelope, advancing the ratchets of work (section 5.5; randomness in the order of 7.4). */
  private build(work: ConversationState, now: number, seq: number, f: MessageFields, actions: Map<number, Slot>): { envelope: Uint8Array; envelopeId: Uint8Array; trees: { pair: number; id: Uint8Array }[] } {
    const rng = this.device._rng;
    const nonce = rng.read(16);
    const ck = contentKey(rng.read(32), f);
    const needsKey = [...actions.values()].some((a) => a !== 'none' && (a.action === 'step' || a.action === 'handshake'));
    const rk = needsKey ? ratchetKeyFromSeed(rng.read(64)) : undefined;
    const stanzas: Stanza[] = [];
    const trees: { pair: number; id: Uint8Array }[] = [];
    for (let r = 0; r < work.n; r++) {
      if (r === this.me) continue;
      const a = actions.get(r) ?? 'none';
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
        const h = sendHandshake(ctx, pair, b, rk!, { m1, m2, m3 }, now, seq);
        st = h.stanza;
        mk = h.mk;
        trees.push({ pair: r, id: h.tree.id });
      } else if (a.action === 'step') {
        const s = sendStep(ctx, pair, rk!, rng.read(32), now, seq);
        st = s.stanza;
        mk = s.mk;
      } else {
        const c = sendContinue(pair, now);
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
    const sig = this.device._sign(signedTranscript(this.sc, this.ids[this.me]!, hh, f), SIGN_CONTEXT);
    const bodyPt = marshalBody(f.kind, f.sentAt, f.mid, f.after, sig, f.plaintext);
    const body = xchacha20poly1305(ck, ZERO24, hh).encrypt(bodyPt);
    bodyPt.fill(0);
    ck.fill(0);
    const envelope = concat(header, body);
    if (envelope.length > MAX_ENVELOPE_SIZE) throw new Error(`chat: planned envelope of ${envelope.length} bytes (a bug)`);
    return { envelope, envelopeId: envelopeIdOf(hh, body), trees };
  }

  /** The deletion rules of section 9 on every pair, and the local bounds; returns the records to delete. */
  private cleanup(work: ConversationState, now: number): string[] {
    for (const p of work.pairs) if (p) cleanupPair(p, now);
    // Remember a bounded number of dead and superseded envelopes (oldest forgotten first).
    const gone = work.outbox.filter((o) => o.status !== 'pending');
    const deletes: string[] = [];
    if (gone.length > MAX_REMEMBERED_ENVELOPES) {
      const drop = new Set(gone.slice(0, gone.length - MAX_REMEMBERED_ENVELOPES));
      for (const o of drop) deletes.push(this.names.outbox + toHex(o.envelopeId));
      work.outbox = work.outbox.filter((o) => !drop.has(o));
    }
    return deletes;
  }

  /** The envelopes waiting to land or die, in the order to submit them, with their transactions once stored. */
  pending(): Promise<Outgoing[]> {
    return this.device._serial(async () => {
      const state = await this.load();
      const out: Outgoing[] = [];
      for (const ref of state.outbox) {
        if (ref.status !== 'pending') continue;
        const e = await this.outboxEntry(ref.envelopeId);
        out.push({ envelope: e.envelope, envelopeId: e.envelopeId, role: e.role, claims: this.claimsOut(e), tx: e.tx });
      }
      return out;
    });
  }

  private claimsOut(e: OutboxEntry): Claim[] {
    return e.claims.map((c) => ({ participant: this.session.participants[c.participant]!.sessionId, signedPrekeyId: c.spkId, oneTimePrekeyId: c.opkId }));
  }

  private async outboxEntry(id: Uint8Array): Promise<OutboxEntry> {
    const b = await this.device.store.get(this.names.outbox + toHex(id));
    if (!b) throw new ChatError('state-corrupt', 'an outbox record is missing');
    return decodeOutbox(b);
  }

  /**
   * Stores the signed SendMessage transaction of a pending envelope beside
   * it (section 7.5), so that a resend after a crash re-submits the same
   * transaction (pending() returns it).
   */
  setTransaction(envelopeId: Uint8Array, tx: Uint8Array): Promise<void> {
    return this.device._serial(async () => {
      const state = await this.load();
      if (!state.outbox.some((o) => o.status === 'pending' && equalBytes(o.envelopeId, envelopeId))) throw new ChatError('unknown-envelope', 'no such envelope waits in the outbox');
      const e = await this.outboxEntry(envelopeId);
      e.tx = tx.slice();
      await this.device.store.commit(new Map([[this.names.outbox + toHex(envelopeId), encodeOutbox(e)]]), []);
    });
  }

  /**
   * An own envelope landed (the submission reply said the transaction was
   * accepted). Opening it when it comes back from the chain does the same,
   * with its position.
   */
  landed(envelopeId: Uint8Array, position = 0): Promise<void> {
    return this.device._serial(async () => {
      const state = await this.load();
      const ref = state.outbox.find((o) => equalBytes(o.envelopeId, envelopeId));
      if (ref) await this.land(state, ref.envelopeId, position);
      else if (!(await this.device.store.get(this.names.made + toHex(envelopeId)))) throw new ChatError('unknown-envelope', 'this device did not make that envelope');
    });
  }

  /** Section 10.4, and 8 step 2: an own envelope landed (also a dead or superseded one, which revives its trees). */
  private async land(state: ConversationState, id: Uint8Array, position: number): Promise<OpenedChatMessage> {
    const i = state.outbox.findIndex((o) => equalBytes(o.envelopeId, id));
    const ref = state.outbox[i]!;
    const name = this.names.outbox + toHex(id);
    const e = await this.outboxEntry(id);
    state.outbox.splice(i, 1);
    for (const p of state.pairs) if (p) markLanded(p, ref.seq);
    const puts = new Map<string, Uint8Array>();
    const deletes: string[] = [];
    let opened: OpenedChatMessage = {
      position,
      sender: this.device.identity.sessionId,
      senderIndex: this.me,
      control: true,
      plaintext: new Uint8Array(0),
      sentAt: 0,
      messageId: new Uint8Array(16),
      after: new Uint8Array(16),
      own: true,
    };
    deletes.push(name);
    if (e.role === 'content' && e.message) {
      const mid = messageIdOf(this.ids[this.me]!, e.message.mid);
      opened = { ...opened, control: false, plaintext: e.message.plaintext, sentAt: e.message.sentAt, messageId: mid, after: e.message.after };
      // A superseded copy may be unreadable to some pairs (its message was sent again): it does not count as delivered.
      if (ref.status !== 'superseded' && !(await this.device.store.get(this.names.messages + toHex(mid)))) {
          puts.set(this.names.messages + toHex(mid), marker());
        puts.set(this.archiveName(position, id), encodeArchive({ envelopeId: id, messageId: mid, position, sender: this.me, sentAt: e.message.sentAt, after: e.message.after, plaintext: e.message.plaintext }));
      }
    }
    puts.set(this.names.state, encodeConversation(state));
    await this.device.store.commit(puts, deletes);
    return opened;
  }

  /**
   * The transaction of a pending envelope is dead (section 10.4): it and
   * every later pending envelope are dropped, what they made is marked dead
   * or unusable, and their messages are sent again with fresh keys (same
   * message ID, time, reference and plaintext). Returns the new envelopes
   * to submit, from the dead transaction's nonce on. A superseded or
   * unknown envelope gives nothing to send.
   */
  dead(now: number, envelopeId: Uint8Array, directory: Directory): Promise<Outgoing[]> {
    return this.device._serial(async () => {
      const state = await this.load();
      const ref = state.outbox.find((o) => equalBytes(o.envelopeId, envelopeId));
      if (!ref || ref.status !== 'pending') return [];
      const work = structuredClone(state);
      const t = this.tick(work, now);
      const gone = work.outbox.filter((o) => o.status === 'pending' && o.seq >= ref.seq);
      const seqs = new Set(gone.map((o) => o.seq));
      const messages: OutboxMessage[] = [];
      for (const o of gone) {
        o.status = o.seq === ref.seq ? 'dead' : 'superseded';
        const e = await this.outboxEntry(o.envelopeId);
        if (e.message && !messages.some((m) => equalBytes(m.mid, e.message!.mid))) messages.push(e.message);
      }
      for (const p of work.pairs) if (p) markDead(p, seqs);
      const puts = new Map<string, Uint8Array>();
      const out: Outgoing[] = [];
      for (const m of messages) {
        // A copy of the message that landed needs no resend.
        if (await this.device.store.get(this.names.messages + toHex(messageIdOf(this.ids[this.me]!, m.mid)))) continue;
        out.push(...(await this.compose(work, t, 'content', m, directory, puts)));
      }
      const deletes = this.cleanup(work, t);
      puts.set(this.names.state, encodeConversation(work));
      await this.device.store.commit(puts, deletes);
      return out;
    });
  }

  // ---- receiving ----

  /**
   * Opens a delivered message (section 8), checks in the spec's order. An
   * own envelope from the outbox lands (and is returned with own = true).
   * Throws a ChatError whose `code` names the failure: then nothing changes
   * but the hints, except for 'duplicate', whose ratchet state is
   * committed.
   */
  open(now: number, d: Delivery): Promise<OpenedChatMessage> {
    return this.device._serial(() => this.openLocked(now, d));
  }

  private async openLocked(now: number, d: Delivery): Promise<OpenedChatMessage> {
    if (!d || !Number.isSafeInteger(d.position) || d.position < 1) throw new MalformedEnvelopeError('the position must be an integer from 1');
    // Step 1: parse, count, sender.
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
    const t = this.tick(state, now);
    seen(state, d.position);
    const saveHints = (): Promise<void> => this.device.store.commit(new Map([[this.names.state, encodeConversation(state)]]), []);
    const hh = headerHash(env.header);

    // Step 2: an own envelope.
    if (x === this.me) {
      const id = envelopeIdOf(hh, env.body);
      if (state.outbox.some((o) => equalBytes(o.envelopeId, id))) return this.land(state, id, d.position);
      if (await this.device.store.get(this.names.made + toHex(id))) {
        await saveHints();
        throw new ReplayError('replay: this own envelope landed before');
      }
      // Not made here: learn the generations of its handshakes whose claims check (section 10.5).
      env.stanzas.forEach((st, j) => {
        if (st.type !== 'handshake') return;
        const r = j < x ? j : j + 1;
        if (this.claimFor(state, d, r, x, st)) noteGeneration(state.pairs[r]!, st.gen);
      });
      await saveHints();
      throw new NotFromThisDeviceError();
    }

    // Step 3: this recipient's stanza.
    const stanza = env.stanzas[this.me < x ? this.me : this.me - 1]!;
    if (stanza.type === 'none') {
      await saveHints();
      throw new NotAddressedError();
    }

    // Step 4: the message key.
    const work = structuredClone(state);
    const pair = work.pairs[x]!;
    const ctx: ReceiveContext = {
      ...this.pairContext(x),
      decapsulateIdentity: (ct) => this.device.identity.decapsulate(ct),
      ratchetKey: env.ratchetKey,
      now: t,
    };
    let device: DeviceState | undefined;
    let body: ReturnType<typeof parseBody>;
    try {
      let mk: Uint8Array;
      switch (stanza.type) {
        case 'continue':
          mk = receiveContinue(ctx, pair, stanza);
          break;
        case 'step':
          mk = receiveStep(ctx, pair, stanza);
          break;
        case 'handshake': {
          const id = handshakeTreeId(ctx, stanza);
          checkHandshakeReplay(pair, id);
          const claim = this.claimFor(state, d, this.me, x, stanza);
          if (!claim) throw new UnclaimedPrekeyError();
          noteGeneration(state.pairs[x]!, stanza.gen);
          noteGeneration(pair, stanza.gen);
          device = await this.device._loadDevice();
          const spk = device.signed.find((s) => s.id === stanza.spkId);
          if (!spk) throw new UnknownPrekeyError('the handshake names a signed prekey this device does not hold');
          let opk: { seed: Uint8Array; kh: Uint8Array } | undefined;
          if (stanza.opkId !== 0) {
            const i = device.oneTime.findIndex((o) => o.id === stanza.opkId);
            if (i < 0) throw new UnknownPrekeyError('the handshake names a one-time prekey this device does not hold');
            opk = device.oneTime[i]!;
            device.oneTime.splice(i, 1);
          }
          checkHandshakeBound(pair);
          mk = receiveHandshake(ctx, pair, stanza, { spk, opk }, id).mk;
          if (claim === 'session') pair.sessionClaimUsed = true;
          break;
        }
      }
      // Step 5: unwrap the content key, decrypt and parse the body.
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
      let bodyPt: Uint8Array;
      try {
        bodyPt = xchacha20poly1305(ck, ZERO24, hh).decrypt(env.body);
      } catch {
        throw new ChatDecryptionError();
      } finally {
        ck.fill(0);
      }
      body = parseBody(bodyPt);
      // Step 6: the signature.
      if (!this.session.participants[x]!.verify(signedTranscript(this.sc, this.ids[x]!, hh, body), body.signature, SIGN_CONTEXT)) throw new ChatSignatureError();
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
    const sender = this.session.participants[x]!;

    // Steps 7 and 8: duplicate, commit (ratchet, consumed prekey, archive together).
    const control = body.kind === Kind.control;
    const mid = control ? new Uint8Array(16) : messageIdOf(this.ids[x]!, body.mid);
    const duplicate = !control && (await this.device.store.get(this.names.messages + toHex(mid))) !== undefined;
    const puts = new Map<string, Uint8Array>();
    if (device) puts.set(...this.device._deviceRecord(device));
    if (!control && !duplicate) {
      work.lastMessageId = mid;
      work.receivedSinceSend++;
      if (work.firstReceivedAt === 0) work.firstReceivedAt = t;
      const id = envelopeIdOf(hh, env.body);
      puts.set(this.names.messages + toHex(mid), marker());
      puts.set(this.archiveName(d.position, id), encodeArchive({ envelopeId: id, messageId: mid, position: d.position, sender: x, sentAt: body.sentAt, after: body.after, plaintext: body.plaintext }));
    }
    const deletes = this.cleanup(work, t);
    puts.set(this.names.state, encodeConversation(work));
    await this.device.store.commit(puts, deletes);
    if (duplicate) throw new DuplicateError();
    return { position: d.position, sender: sender.sessionId, senderIndex: x, control, plaintext: body.plaintext, sentAt: body.sentAt, messageId: mid, after: body.after, own: false };
  }

  /**
   * The claim of a handshake stanza from P[x] to P[r] (section 11.2): the
   * one transaction claim for P[r], or (none there, the sender the creator)
   * the creator's unused session claim; it must name the stanza's prekeys.
   */
  private claimFor(state: ConversationState, d: Delivery, r: number, x: number, st: { spkId: number; opkId: number }): 'tx' | 'session' | undefined {
    const rid = this.session.participants[r]!.sessionId;
    const mine = d.claims.filter((c) => c.participant === rid);
    if (mine.length > 1) return undefined;
    if (mine.length === 1) {
      const c = mine[0]!;
      return c.signedPrekeyId === st.spkId && c.oneTimePrekeyId === st.opkId ? 'tx' : undefined;
    }
    const sc = state.claims[r];
    if (x !== 0 || !sc || (r === this.me && state.pairs[x]!.sessionClaimUsed)) return undefined;
    return sc.spkId === st.spkId && sc.opkId === st.opkId ? 'session' : undefined;
  }

  private archiveName(position: number, envelopeId: Uint8Array): string {
    return `${this.names.archive}${position.toString().padStart(16, '0')}/${toHex(envelopeId)}`;
  }

  // ---- history and control ----

  /** The archived messages (in position order), then the ones waiting in the outbox. */
  history(): Promise<HistoryEntry[]> {
    return this.device._serial(async () => {
      const out: HistoryEntry[] = [];
      for (const name of await this.device.store.list(this.names.archive)) {
        const b = await this.device.store.get(name);
        if (!b) continue;
        const a: ArchiveEntry = decodeArchive(b);
        out.push({ position: a.position, sender: this.session.participants[a.sender]?.sessionId ?? '', plaintext: a.plaintext, sentAt: a.sentAt, messageId: a.messageId, after: a.after, own: a.sender === this.me });
      }
      const state = await this.load();
      for (const ref of state.outbox) {
        if (ref.status !== 'pending') continue;
        const e = await this.outboxEntry(ref.envelopeId);
        if (e.role === 'content' && e.message) {
          out.push({ position: 0, sender: this.device.identity.sessionId, plaintext: e.message.plaintext, sentAt: e.message.sentAt, messageId: messageIdOf(this.ids[this.me]!, e.message.mid), after: e.message.after, own: true });
        }
      }
      return out;
    });
  }

  /** Asks for a re-initiation with a participant (section 10.3): the next send makes a new handshake. */
  reset(participant: string): Promise<void> {
    return this.device._serial(async () => {
      const state = await this.load();
      const r = this.indexOf(participant);
      if (r < 0 || r === this.me) throw new ChatError('not-participant', 'not another participant of this session');
      state.pairs[r]!.reset = true;
      await this.device.store.commit(new Map([[this.names.state, encodeConversation(state)]]), []);
    });
  }

  /** @internal For tests: the current tree's ID with a participant, if any. */
  async _currentTree(participant: string): Promise<Uint8Array | undefined> {
    const state = await this.load();
    return currentTree(state.pairs[this.indexOf(participant)]!)?.id;
  }
}

/** Records a delivered position hint: the highest seen, and the delivered prefix (section 10.3). */
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

/** A small record marking that a message ID was opened or sent and landed. */
function marker(): Uint8Array {
  return Uint8Array.of(STATE_VERSION, 0x4d); // 'M'
}

/** Splits one message's stanzas into setup messages and the content message (section 7.3); a ratchet message is one envelope. */
export function planEnvelopes(plans: readonly Plan[], none: readonly number[], role: 'content' | 'ratchet', plaintextSize: number): EnvelopePlan[] {
  const stanzaOf = (p: Slot): Stanza => {
    if (p === 'none') return { type: 'none' };
    if (p.action === 'handshake') return { type: 'handshake', opkId: p.bundle!.opkId } as Stanza;
    return { type: p.action } as Stanza;
  };
  const withNone = (m: Map<number, Slot>): Map<number, Slot> => {
    for (const r of none) m.set(r, 'none');
    return m;
  };
  const sizeOf = (actions: Map<number, Slot>, p: number): number => envelopeSize([...actions.values()].map(stanzaOf), p);
  const claimsFor = (acts: Map<number, Slot>): Claim[] =>
    [...acts.entries()]
      .sort((a, b) => a[0] - b[0])
      .flatMap(([, a]) => (a !== 'none' && a.action === 'handshake' && a.claim ? [a.claim] : []));
  const content = withNone(new Map<number, Slot>(plans.map((p) => [p.r, p])));
  if (role === 'ratchet' || sizeOf(content, plaintextSize) <= MAX_ENVELOPE_SIZE) return [{ role, actions: content, claims: claimsFor(content) }];

  const hs = plans.filter((p) => p.action === 'handshake');
  // The content message keeps the longest prefix of the handshakes that fits; the rest continue A1 (n = 1).
  const contentWith = (k: number): Map<number, Slot> => {
    const m = new Map<number, Slot>();
    for (const p of plans) m.set(p.r, p.action === 'handshake' && hs.indexOf(p) >= k ? { r: p.r, action: 'continue' } : p);
    return withNone(m);
  };
  let keep = hs.length;
  while (keep > 0 && sizeOf(contentWith(keep), plaintextSize) > MAX_ENVELOPE_SIZE) keep--;
  const rest = hs.slice(keep);
  const setups: EnvelopePlan[] = [];
  while (rest.length > 0) {
    const setupWith = (k: number): Map<number, Slot> => {
      const chosen = new Set(rest.slice(0, k).map((p) => p.r));
      const m = new Map<number, Slot>();
      for (const p of plans) m.set(p.r, chosen.has(p.r) ? p : 'none');
      return withNone(m);
    };
    let take = rest.length;
    while (take > 1 && sizeOf(setupWith(take), 0) > MAX_ENVELOPE_SIZE) take--;
    const acts = setupWith(take);
    setups.push({ role: 'setup', actions: acts, claims: claimsFor(acts) });
    rest.splice(0, take);
  }
  const c = contentWith(keep);
  return [...setups, { role: 'content', actions: c, claims: claimsFor(c) }];
}
