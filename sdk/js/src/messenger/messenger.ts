// Messenger: one identity's client of the forward-secret protocol
// (docs/protocol.md, src/chat) over a node it does not trust, the
// TypeScript counterpart of Go's service.Messenger. It registers the
// identity with prekeys and keeps them replenished, creates sessions from
// verified prekey bundles with claims, sends (the signed transaction kept
// in the outbox before it leaves, so a crash resends the same bytes; a
// transaction that died is sent again with fresh keys), and reads every
// session in chain order, each delivery checked against its signed
// SendMessage transaction before the protocol opens it.
//
// Its state lives in one ChatStore beside the protocol's (records under
// "x/"): per session the read cursor and the messages waiting for an
// earlier one; the signed prekey pins; when prekeys were last checked.

import { utf8 } from '../bytes.js';
import { ChatDevice, type ChatSession, ChatError, type Conversation, type Directory, type HistoryEntry, type OpenedChatMessage, type PrekeyBundle, MAX_PLAINTEXT_SIZE, MAX_PREKEY_BATCH, MAX_RETRY, MAX_SKIP_AGE_MS, MAX_ONE_TIME_PREKEYS, MAX_UNCLAIMED_ON_CHAIN, ONE_TIME_PREKEY_LOW_WATER, SIGNED_PREKEY_RENEW_MS, sessionClaimsOf, type ChatStore } from '../chat/index.js';
import { IdentityMismatchError, NoSignedPrekeyError, SessionError, UntrustedNodeError } from '../errors.js';
import type { Identity } from '../identity.js';
import { idFromString } from '../ids.js';
import { openMessage } from '../rpc.js';
import { SEAL_SUITE, SEAL_VERSION } from '../seal.js';
import { DeadTxError, type MessengerNode, type NodeMessage, type NodeSession, type SignedTxBytes } from './node.js';

/** A message of a session as a Messenger read it: opened and verified, from the archive, or with why it could not be opened. */
export interface Received {
  session: string;
  seq: number;
  position: number;
  txID: string;
  /** Block time, Unix ms (the node's word). */
  timestamp: number;
  /** The verified author (the signed transaction's, and the signature inside the envelope). */
  sender: string;
  fromSelf: boolean;
  /** The sender's clock as it signed it (Unix ms; 0 when unknown). */
  sentAt: number;
  text: Uint8Array;
  /** A Seal envelope from before the session used the protocol: sender-authenticated, not forward secret. */
  sealed?: boolean;
  /** Why it could not be opened (text is then empty). */
  error?: Error;
}

/** A page of read or inbox. */
export interface ReceivedPage {
  messages: Received[];
  /** The cursor of the next page (a sequence number for read, a chain position for inbox). */
  next: number;
  more: boolean;
}

/** One transaction a send submitted. */
export interface SentTx {
  txID: string;
  nonce: number;
  /** A setup (handshakes that did not fit beside the text) or ratchet message. */
  control: boolean;
  /** From the outbox of an earlier call. */
  resent: boolean;
}

/** What prekeys the identity has, and what a replenishment published. */
export interface PrekeyReport {
  signedPrekeyId: number;
  signedExpiresAt: number;
  unclaimed: number;
  held: number;
  publishedSigned: number;
  publishedOneTime: number;
}

/** The message waits in the outbox (the node unreachable or busy): resend, or the next send, sends it as the same transaction. */
export class InOutboxError extends SessionError {}
/** The chain refused the message for good (the session closed, the sender left, ...): it left the outbox. */
export class NotSentError extends SessionError {}
/**
 * A Seal envelope in a session after it used the protocol (a message after
 * one this device sent or opened with it): Seal has no forward secrecy, so
 * taking it would be a downgrade (docs/protocol.md section 16).
 */
export class LegacyRefusedError extends SessionError {}
/** A prekey bundle older than one this Messenger verified before: a node replaying a superseded bundle. */
export class StalePrekeyError extends UntrustedNodeError {}

/** How often one text is encrypted and sent again after its transaction died. */
export const MAX_SEND_ATTEMPTS = 3;
/** How often send, read and inbox look at the chain's prekeys (more often when this device used one). */
export const PREKEY_CHECK_INTERVAL_MS = 60 * 60 * 1000;
/** How many unclaimed one-time prekeys a replenishment aims at. */
export const PREKEY_TARGET = 64;
const PAGE = 100;

interface SessionRecord {
  /** The highest sequence number processed. */
  read: number;
  /** Messages that wait for an earlier one (their chain or handshake not seen yet). */
  retry: number[];
  /** The session uses the protocol from this sequence number on (a Seal envelope after it is refused). */
  protocolFrom?: number;
}

interface Meta {
  /** The chain this store's state belongs to (the first node's word, then pinned). */
  chain?: string;
  pins: Record<string, number>;
  /** The claim log's position read through. */
  claimsRead?: number;
  prekeysChecked: number;
  heldAtCheck: number;
}

interface Conv {
  ns: NodeSession;
  chat: ChatSession;
  /** undefined: this identity is not a participant. */
  c: Conversation | undefined;
}

const META = 'x/meta';
const sessionRecord = (s: string): string => `x/s/${s}`;
const dec = new TextDecoder();

function isProtocolEnvelope(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === 0x43 && b[1] === 0x48;
}

function isSealEnvelope(b: Uint8Array): boolean {
  return b.length >= 2 && b[0] === SEAL_VERSION && b[1] === SEAL_SUITE;
}

function useProtocol(rec: SessionRecord, from: number): void {
  if (rec.protocolFrom === undefined || from < rec.protocolFrom) rec.protocolFrom = from;
}

/** Errors of a delivery that may pass once an earlier message opens. */
function waitsForEarlier(e: unknown): boolean {
  return e instanceof ChatError && (e.code === 'chain-not-started' || e.code === 'unknown-tree');
}

/**
 * One identity's messaging client. Open it with Messenger.open; every
 * method runs one at a time (one Messenger per store: two tabs or
 * processes on one store would use a ratchet key twice).
 */
export class Messenger {
  readonly identity: Identity;
  readonly node: MessengerNode;
  readonly device: ChatDevice;
  readonly store: ChatStore;
  readonly chainID: string;
  #meta: Meta;
  #convs = new Map<string, Conv>();
  #queue: Promise<unknown> = Promise.resolve();
  /** Replenish prekeys on its own from send, read and inbox. */
  autoPrekeys = true;
  /** Send a ratchet message from read and inbox when one is due. */
  autoRatchet = true;

  private constructor(identity: Identity, node: MessengerNode, device: ChatDevice, store: ChatStore, chainID: string, meta: Meta) {
    this.identity = identity;
    this.node = node;
    this.device = device;
    this.store = store;
    this.chainID = chainID;
    this.#meta = meta;
  }

  /** Opens the Messenger of identity over node with its state in store (created the first time). */
  static async open(node: MessengerNode, identity: Identity, store: ChatStore): Promise<Messenger> {
    const chainID = await node.chainID();
    const device = await ChatDevice.open(identity, idFromString(chainID), store);
    const raw = await store.get(META);
    const meta: Meta = raw ? (JSON.parse(dec.decode(raw)) as Meta) : { pins: {}, prekeysChecked: 0, heldAtCheck: 0 };
    // The state (ratchets, pins, prekey secrets) is one chain's: a node
    // that names another chain would have this identity sign transactions
    // for it (and carry them there). The first chain is kept.
    if (meta.chain !== undefined && meta.chain !== chainID) {
      throw new UntrustedNodeError(`the node serves chain ${chainID}; this store belongs to chain ${meta.chain}`);
    }
    const m = new Messenger(identity, node, device, store, chainID, meta);
    if (meta.chain === undefined) {
      meta.chain = chainID;
      await m.saveMeta();
    }
    return m;
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(f, f);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  private async saveMeta(): Promise<void> {
    await this.store.commit(new Map([[META, utf8(JSON.stringify(this.#meta))]]), []);
  }

  private async loadSession(s: string): Promise<SessionRecord> {
    const raw = await this.store.get(sessionRecord(s));
    return raw ? (JSON.parse(dec.decode(raw)) as SessionRecord) : { read: 0, retry: [] };
  }

  private async saveSession(s: string, r: SessionRecord): Promise<void> {
    await this.store.commit(new Map([[sessionRecord(s), utf8(JSON.stringify(r))]]), []);
  }

  // --- registration and prekeys ------------------------------------------------

  /**
   * Makes the identity reachable: registers it unless it is registered
   * with these keys already, then publishes its prekeys. Other keys under
   * the Session ID: IdentityMismatchError.
   */
  register(): Promise<{ already: boolean; prekeys: PrekeyReport }> {
    return this.serial(async () => {
      const r = await this.node.registration();
      if (r === 'other') throw new IdentityMismatchError(`the chain holds other keys under ${this.identity.sessionId}`);
      if (r === 'none') await this.node.register();
      return { already: r === 'same', prekeys: await this.replenish() };
    });
  }

  /** Publishes what the prekeys need (section 11): a signed prekey when none is current, it nears expiry, or this device lacks its secret; one-time prekeys when few are left. */
  replenishPrekeys(): Promise<PrekeyReport> {
    return this.serial(() => this.replenish());
  }

  /**
   * Follows the chain's claim log of this identity's one-time prekeys
   * (section 11.3): a claimed secret is kept until its handshake comes or
   * its session ends (plus MAX_SKIP_AGE_MS), and then deleted even for a
   * session this device never reads.
   */
  private async noteClaims(): Promise<void> {
    for (let pages = 0; pages < 10; pages++) {
      const after = this.#meta.claimsRead ?? 0;
      const page = await this.node.claimLog(after, PAGE);
      if (page.claims.length > 0) {
        await this.device.prekeysClaimed(this.node.now(), page.claims.map((c) => ({ prekeyId: c.prekeyId, deadline: c.sessionEnd + MAX_SKIP_AGE_MS })));
      }
      if (page.next <= after) return;
      this.#meta.claimsRead = page.next;
      await this.saveMeta();
      if (!page.more) return;
    }
  }

  private async replenish(): Promise<PrekeyReport> {
    await this.noteClaims();
    const own = await this.node.ownPrekeys();
    const now = this.node.now();
    const dev = await this.device.prekeyStatus(now);
    const rep: PrekeyReport = { signedPrekeyId: own.signedPrekeyId, signedExpiresAt: own.signedExpiresAt, unclaimed: own.unclaimed, held: dev.oneTimeHeld, publishedSigned: 0, publishedOneTime: 0 };
    let signed = own.signedPrekeyId === 0 || own.signedExpiresAt - now < SIGNED_PREKEY_RENEW_MS || own.signedPrekeyId !== dev.signedPrekeyId;
    let oneTime = 0;
    if (own.unclaimed < ONE_TIME_PREKEY_LOW_WATER) {
      oneTime = Math.max(0, Math.min(PREKEY_TARGET - own.unclaimed, MAX_UNCLAIMED_ON_CHAIN - own.unclaimed, MAX_ONE_TIME_PREKEYS - dev.oneTimeHeld));
    }
    this.#meta.prekeysChecked = now;
    this.#meta.heldAtCheck = dev.oneTimeHeld;
    await this.saveMeta();
    // IDs continue above the chain's (never reused); when the chain has
    // one-time prekeys this device never made (it replaces a lost one),
    // the first upload retires them.
    const above = { signed: Math.max(own.signedPrekeyId, own.chainSignedPrekeyId), oneTime: own.chainOneTimePrekeyId };
    let retire = own.chainOneTimePrekeyId > (await this.device.highestOneTimePrekeyId()) ? own.chainOneTimePrekeyId : 0;
    while (signed || oneTime > 0) {
      const n = Math.min(oneTime, MAX_PREKEY_BATCH);
      const up = await this.device.generatePrekeys(this.node.now(), signed, n, above);
      await this.node.publishPrekeys(up, retire);
      retire = 0;
      if (up.signedPrekey) {
        rep.publishedSigned = up.signedPrekey.id;
        rep.signedPrekeyId = up.signedPrekey.id;
        rep.signedExpiresAt = up.signedPrekey.expiresAt;
      }
      rep.publishedOneTime += n;
      rep.unclaimed += n;
      signed = false;
      oneTime -= n;
    }
    rep.held = (await this.device.prekeyStatus(this.node.now())).oneTimeHeld;
    return rep;
  }

  /** Replenishes when due; never fails the operation that ran it. */
  private async maintainPrekeys(): Promise<void> {
    if (!this.autoPrekeys) return;
    const now = this.node.now();
    const dev = await this.device.prekeyStatus(now);
    if (now - this.#meta.prekeysChecked < PREKEY_CHECK_INTERVAL_MS && dev.oneTimeHeld >= this.#meta.heldAtCheck && !dev.needSignedPrekey) return;
    try {
      await this.replenish();
    } catch {
      // The next operation tries again.
    }
  }

  /**
   * Sends a ratchet message when one is due (docs/protocol.md section 7.6:
   * a participant who only reads still moves its keys forward, so a
   * compromise of it heals). Unless autoRatchet is off; never fails the
   * read that ran it (what did not go waits in the outbox).
   */
  private async maintainRatchet(cv: Conv): Promise<void> {
    if (!this.autoRatchet || !cv.c) return;
    const c = cv as Conv & { c: Conversation };
    try {
      if (!(await c.c.ratchetDue(this.node.now()))) return;
      const outs = await c.c.sendRatchet(this.node.now());
      if (outs.length > 0) await this.submitAll(c, outs, [], false);
    } catch {
      // The next read tries again.
    }
  }

  /** A participant's verified prekey bundle, never older than one verified before (the pin moves up). */
  private async bundle(sessionId: string, session?: string): Promise<PrekeyBundle> {
    const b = await this.node.prekeyBundle(sessionId, session);
    const pin = this.#meta.pins[sessionId] ?? 0;
    if (b.signedPrekey.id < pin) {
      throw new StalePrekeyError(`the node served signed prekey ${b.signedPrekey.id} of ${sessionId}, and this client verified prekey ${pin} of it before`);
    }
    if (b.signedPrekey.id > pin) {
      this.#meta.pins[sessionId] = b.signedPrekey.id;
      await this.saveMeta();
    }
    return b;
  }

  /**
   * Whether a participant can be sent to with the protocol, from a verified
   * bundle: true when the node serves a current signed prekey (verified,
   * and pinned as bundles are); false when it serves none and this client
   * never verified one of that identity's (it may be a client from before
   * the protocol). A node that serves none after this client verified a
   * signed prekey of the identity is lying to force a downgrade to Seal:
   * StalePrekeyError. An expired signed prekey (signed: the identity does
   * use the protocol) is PrekeyExpiredError, never a reason for Seal.
   */
  hasPrekeys(sessionId: string): Promise<boolean> {
    return this.serial(async () => {
      try {
        await this.bundle(sessionId);
        return true;
      } catch (e) {
        if (!(e instanceof NoSignedPrekeyError)) throw e;
        const pin = this.#meta.pins[sessionId] ?? 0;
        if (pin > 0) {
          throw new StalePrekeyError(`the node serves no signed prekey of ${sessionId}, and this client verified its signed prekey ${pin} before`, { cause: e });
        }
        return false;
      }
    });
  }

  private directory(session: string, noOneTime = false): Directory {
    return {
      prekeyBundle: async (sid: string) => {
        const b = await this.bundle(sid, session);
        return noOneTime ? { identity: b.identity, signedPrekey: b.signedPrekey } : b;
      },
    };
  }

  // --- sessions ------------------------------------------------------------------

  private chatSession(ns: NodeSession): ChatSession {
    return { chainId: idFromString(this.chainID), id: idFromString(ns.id), participants: ns.participants, claims: ns.claims };
  }

  private async conversation(session: string): Promise<Conv> {
    const have = this.#convs.get(session);
    if (have) return have;
    const ns = await this.node.session(session);
    const chat = this.chatSession(ns);
    const c = ns.participants.some((p) => p.sessionId === this.identity.sessionId) ? await this.device.conversation(chat) : undefined;
    const cv = { ns, chat, c };
    this.#convs.set(session, cv);
    return cv;
  }

  private async participant(session: string): Promise<Conv & { c: Conversation }> {
    const cv = await this.conversation(session);
    if (!cv.c) throw new ChatError('not-participant', `you (${this.identity.sessionId}) are not a participant of session ${session}`);
    return cv as Conv & { c: Conversation };
  }

  /**
   * Creates a session with participants (Session IDs, besides this
   * identity): fetches and verifies each one's prekey bundle, claims them
   * in the CreateSession transaction, prepares the conversation before the
   * transaction leaves, and waits for its block. A claim taken first makes
   * it try again with new bundles (the last try without one-time prekeys).
   */
  createSession(participants: string[], metadata: Uint8Array = new Uint8Array(0)): Promise<{ session: string; txID: string }> {
    return this.serial(async () => {
      if (participants.length === 0) throw new SessionError('a session needs at least one other participant');
      if (participants.includes(this.identity.sessionId)) throw new SessionError('you are a participant of your sessions already: name the others');
      if (new Set(participants).size !== participants.length) throw new SessionError('a participant is named twice');
      let last: unknown;
      for (let attempt = 0; attempt < MAX_SEND_ATTEMPTS; attempt++) {
        const noOneTime = attempt > 0 && attempt + 1 >= MAX_SEND_ATTEMPTS && last instanceof DeadTxError && last.claim;
        const bundles: PrekeyBundle[] = [];
        for (const p of participants) {
          const b = await this.bundle(p);
          bundles.push(noOneTime ? { identity: b.identity, signedPrekey: b.signedPrekey } : b);
        }
        const claims = sessionClaimsOf(bundles);
        const parts = [this.identity.publicIdentity(), ...bundles.map((b) => b.identity)];
        try {
          return await this.node.createSession(participants, claims, metadata, async (session) => {
            const ns: NodeSession = { id: session, participants: parts, claims };
            const chat = this.chatSession(ns);
            const c = await this.device.createConversation(this.node.now(), chat, bundles);
            this.#convs.set(session, { ns, chat, c });
            await this.saveSession(session, { read: 0, retry: [], protocolFrom: 0 });
          });
        } catch (e) {
          if (e instanceof DeadTxError && !e.again) throw e.cause ?? e; // the node's refusal (blocked, ...)
          if (!(e instanceof DeadTxError)) throw e;
          last = e;
        }
      }
      throw new NotSentError(`tried ${MAX_SEND_ATTEMPTS} times, the last: ${(last as Error).message}`, { cause: last });
    });
  }

  // --- sending -------------------------------------------------------------------

  /**
   * Encrypts text for every other participant and sends it. First it reads
   * the session to its end (the ratchet steps with what the others said,
   * own envelopes that landed are confirmed) and resends what the outbox
   * holds from earlier calls as the same transactions. Waits for each
   * block. Errors: InOutboxError (the node unreachable or busy: the
   * message waits in the outbox), NotSentError (refused for good), the
   * protocol's, UntrustedNodeError.
   */
  send(session: string, text: Uint8Array): Promise<SentTx[]> {
    if (text.length > MAX_PLAINTEXT_SIZE) return Promise.reject(new ChatError('plaintext-too-large', `${text.length} bytes, at most ${MAX_PLAINTEXT_SIZE}`));
    return this.serial(async () => {
      const out = await this.sendLocked(session, text);
      await this.maintainPrekeys();
      return out;
    });
  }

  /** Sends what the outbox of a session holds from earlier calls, and confirms it. */
  resend(session: string): Promise<SentTx[]> {
    return this.serial(() => this.sendLocked(session, undefined));
  }

  private async sendLocked(session: string, text: Uint8Array | undefined): Promise<SentTx[]> {
    const cv = await this.participant(session);
    await this.sync(cv);
    const rec = await this.loadSession(session);
    if (rec.protocolFrom === undefined || rec.protocolFrom > rec.read) {
      useProtocol(rec, rec.read);
      await this.saveSession(session, rec);
    }
    const sent: SentTx[] = [];
    await this.flush(cv, sent);
    if (text) {
      const outs = await cv.c.send(this.node.now(), text, this.directory(session));
      await this.submitAll(cv, outs, sent, false);
    }
    if (sent.length > 0) await this.sync(cv); // own envelopes come back: they land
    return sent;
  }

  /** Signs and submits envelopes in order, the transaction stored in the outbox before it leaves; a dead one is re-planned with fresh keys. */
  private async submitAll(cv: Conv & { c: Conversation }, outs: { envelope: Uint8Array; envelopeId: Uint8Array; role: string; claims: import('../chat/index.js').Claim[]; tx?: Uint8Array | undefined }[], sent: SentTx[], resent: boolean): Promise<void> {
    let attempt = 0;
    let queue = outs;
    while (queue.length > 0) {
      let dead: DeadTxError | undefined;
      let deadId: Uint8Array | undefined;
      for (const o of queue) {
        let t: SignedTxBytes | undefined;
        try {
          if (o.tx) {
            t = await this.node.txFromBytes(o.tx);
            await this.submitOne(t, true);
          } else {
            // Signed, kept in the outbox beside its envelope, then submitted.
            t = await this.node.submitSend(cv.ns.id, o.claims, o.envelope, (bytes) => cv.c.setTransaction(o.envelopeId, bytes));
            await this.node.waitAccepted(t.txID);
          }
          sent.push({ txID: t.txID, nonce: t.nonce, control: o.role !== 'content', resent: resent || !!o.tx });
        } catch (e) {
          if (!(e instanceof DeadTxError)) throw new InOutboxError(`the message waits in the outbox: ${(e as Error).message}`, { cause: e });
          dead = e;
          deadId = o.envelopeId;
          break;
        }
      }
      if (!dead) return;
      if (!dead.again) {
        // It stays in the outbox: a later resend meets the same refusal (the chain's state decides, e.g. a closed session).
        throw new NotSentError(`the chain refused the message: ${dead.message}`, { cause: dead });
      }
      if (++attempt >= MAX_SEND_ATTEMPTS) throw new NotSentError(`tried ${MAX_SEND_ATTEMPTS} times, the last: ${dead.message}`, { cause: dead });
      // The dead envelope and those after it are dropped; their messages are re-planned with fresh keys.
      const noOneTime = dead.claim && attempt + 1 >= MAX_SEND_ATTEMPTS;
      queue = await cv.c.dead(this.node.now(), deadId!, this.directory(cv.ns.id, noOneTime));
    }
  }

  /** Submits one transaction (again: it may be known to the node already) and waits for its block. */
  private async submitOne(t: SignedTxBytes, again: boolean): Promise<void> {
    if (again) {
      const st = await this.node.txState(t.txID);
      if (st.status === 'accepted') return;
      if (st.status === 'dropped') throw new DeadTxError(`transaction ${t.txID} was dropped: ${st.reason}`, true, false);
      if (st.status === 'pending') {
        await this.node.waitAccepted(t.txID);
        return;
      }
    }
    await this.node.issue(t);
    await this.node.waitAccepted(t.txID);
  }

  /** Resends the outbox of earlier calls, in order, each as its stored transaction. */
  private async flush(cv: Conv & { c: Conversation }, sent: SentTx[]): Promise<void> {
    const pending = await cv.c.pending();
    if (pending.length > 0) await this.submitAll(cv, pending, sent, true);
  }

  // --- reading -------------------------------------------------------------------

  /**
   * Reads the session from its cursor to the end, opening every message in
   * chain order (so the ratchet sees them in order and own envelopes land),
   * and moves the cursor. Returns what it opened, by sequence number.
   */
  private async sync(cv: Conv): Promise<Map<number, Received | null>> {
    const got = new Map<number, Received | null>();
    if (!cv.c) return got;
    const rec = await this.loadSession(cv.ns.id);
    let opened = 0;
    for (;;) {
      const page = await this.node.messages(cv.ns.id, rec.read, PAGE);
      for (const m of page.messages) {
        const r = await this.deliver(cv, m, rec);
        got.set(m.seq, r);
        if (r && !r.error) opened++;
        if (r?.error && waitsForEarlier(r.error)) {
          rec.retry.push(m.seq);
          if (rec.retry.length > MAX_RETRY) rec.retry.splice(0, rec.retry.length - MAX_RETRY);
        }
        rec.read = m.seq;
      }
      await this.saveSession(cv.ns.id, rec);
      if (!page.more || page.messages.length === 0) break;
    }
    if (opened > 0 && rec.retry.length > 0) await this.retry(cv, rec, got);
    return got;
  }

  /** Delivers the retry set again while that opens something. */
  private async retry(cv: Conv, rec: SessionRecord, got: Map<number, Received | null>): Promise<void> {
    for (;;) {
      const keep: number[] = [];
      let opened = 0;
      for (const seq of rec.retry) {
        const page = await this.node.messages(cv.ns.id, seq - 1, 1);
        const m = page.messages[0];
        if (!m || m.seq !== seq) continue;
        const r = await this.deliver(cv, m, rec);
        got.set(seq, r);
        if (r && !r.error) opened++;
        if (r?.error && waitsForEarlier(r.error)) keep.push(seq);
      }
      rec.retry = keep;
      await this.saveSession(cv.ns.id, rec);
      if (opened === 0 || keep.length === 0) return;
    }
  }

  private received(cv: Conv, m: NodeMessage): Received {
    return {
      session: cv.ns.id,
      seq: m.seq,
      position: m.position,
      txID: m.txID,
      timestamp: m.timestamp,
      sender: m.author,
      fromSelf: m.author === this.identity.sessionId,
      sentAt: 0,
      text: new Uint8Array(0),
    };
  }

  /** Verifies one message against its transaction and opens it: its Received, or null when it carries nothing to show here. */
  private async deliver(cv: Conv, m: NodeMessage, rec: SessionRecord): Promise<Received | null> {
    const rc = this.received(cv, m);
    if (m.session !== cv.ns.id) {
      rc.error = new UntrustedNodeError(`a message of session ${m.session} in a page of ${cv.ns.id}`);
      return rc;
    }
    if (!cv.c) {
      rc.error = new ChatError('not-participant', 'you are not a participant of this session');
      return rc;
    }
    if (isSealEnvelope(m.ciphertext)) {
      rc.sealed = true;
      // The envelope's signer must be the author the node names (openMessage)
      // and a participant the creator signed: otherwise a node could show
      // anyone's envelope (sealed to this session's readers) as a message
      // of the session.
      if (!cv.ns.participants.some((p) => p.sessionId === m.author)) {
        rc.error = new UntrustedNodeError(`message ${m.seq} is by ${m.author}, who is not a participant`);
        return rc;
      }
      if (rec.protocolFrom !== undefined && m.seq > rec.protocolFrom) {
        rc.error = new LegacyRefusedError('a Seal envelope (no forward secrecy) in a session that uses the protocol: refused');
        return rc;
      }
      try {
        const o = openMessage(this.identity, { target: m.session, seq: m.seq, author: m.author, txID: m.txID, height: m.height, position: m.position, timestamp: m.timestamp, ciphertext: m.ciphertext });
        rc.text = o.plaintext;
      } catch (e) {
        rc.error = e as Error;
      }
      return rc;
    }
    if (!isProtocolEnvelope(m.ciphertext)) {
      rc.error = new SessionError('not a message format this client reads');
      return rc;
    }
    let opened: OpenedChatMessage;
    try {
      const d = await this.node.verifyDelivery(cv.ns, m);
      opened = await cv.c.open(this.node.now(), { envelope: d.envelope, position: m.seq, sender: d.author, claims: d.claims });
    } catch (e) {
      if (e instanceof ChatError && e.code === 'not-addressed') return null;
      if (e instanceof ChatError && (e.code === 'replay' || e.code === 'duplicate')) {
        const a = (await cv.c.history()).find((h) => h.position === m.seq);
        if (a) return this.fromHistory(rc, a);
        if (e.code === 'duplicate') return null;
      }
      rc.error = e as Error;
      return rc;
    }
    useProtocol(rec, m.seq);
    if (opened.control) return null;
    rc.sender = opened.sender;
    rc.fromSelf = opened.own || opened.sender === this.identity.sessionId;
    rc.sentAt = opened.sentAt;
    rc.text = opened.plaintext;
    return rc;
  }

  private fromHistory(rc: Received, a: HistoryEntry): Received {
    rc.sender = a.sender;
    rc.fromSelf = a.own;
    rc.sentAt = a.sentAt;
    rc.text = a.plaintext;
    return rc;
  }

  /**
   * A page of the session's messages after sequence number `after`, each
   * opened and verified, or from the archive when opened before (the
   * chain's copy no longer opens: its keys are gone). Unread messages are
   * read first, in chain order, to the end of the session.
   *
   * A read may send a ratchet message when one is due (section 7.6).
   * `opts.send: false` sends nothing into the session: for a message
   * request not answered yet, where a message would be consent (the
   * chain takes a sender's message as acceptance) and would tell the
   * others it was read.
   */
  read(session: string, after = 0, limit = 0, opts: { send?: boolean } = {}): Promise<ReceivedPage> {
    return this.serial(async () => {
      const cv = await this.conversation(session);
      const page = await this.node.messages(session, after, limit || PAGE);
      const got = await this.sync(cv);
      const messages = await this.collect(cv, page.messages, got);
      if (opts.send !== false) await this.maintainRatchet(cv);
      await this.maintainPrekeys();
      return { messages, next: page.next, more: page.more };
    });
  }

  /** The Received of messages, from what sync opened or the archive; those that carry nothing here are left out. */
  private async collect(cv: Conv, msgs: NodeMessage[], got: Map<number, Received | null>): Promise<Received[]> {
    const out: Received[] = [];
    const rec = await this.loadSession(cv.ns.id);
    let history: HistoryEntry[] | undefined;
    for (const m of msgs) {
      if (got.has(m.seq)) {
        const r = got.get(m.seq);
        if (r) out.push(r);
        continue;
      }
      if (!cv.c || !isProtocolEnvelope(m.ciphertext)) {
        const r = await this.deliver(cv, m, rec);
        if (r) out.push(r);
        continue;
      }
      history ??= await cv.c.history();
      const a = history.find((h) => h.position === m.seq);
      if (a) out.push(this.fromHistory(this.received(cv, m), a));
      // Otherwise a control message, one for others, or one that failed before: nothing kept to show.
    }
    return out;
  }

  /**
   * A page of the messages others sent to this identity across its
   * sessions (getInbox) after chain position `after`, opened as read does
   * (each session read to its end first).
   */
  inbox(after = 0, limit = 0): Promise<ReceivedPage> {
    return this.serial(async () => {
      const page = await this.node.inbox(after, limit || PAGE);
      const bySession = new Map<string, NodeMessage[]>();
      for (const m of page.messages) bySession.set(m.session, [...(bySession.get(m.session) ?? []), m]);
      const results = new Map<NodeMessage, Received | null>();
      for (const [session, msgs] of bySession) {
        try {
          const cv = await this.conversation(session);
          const got = await this.sync(cv);
          const rs = await this.collect(cv, msgs, got);
          await this.maintainRatchet(cv);
          for (const m of msgs) results.set(m, rs.find((r) => r.seq === m.seq) ?? null);
        } catch (e) {
          for (const m of msgs) results.set(m, { session, seq: m.seq, position: m.position, txID: m.txID, timestamp: m.timestamp, sender: m.author, fromSelf: false, sentAt: 0, text: new Uint8Array(0), error: e as Error });
        }
      }
      await this.maintainPrekeys();
      const messages = page.messages.map((m) => results.get(m)).filter((r): r is Received => !!r);
      return { messages, next: page.next, more: page.more };
    });
  }

  /** The messages this identity sent and read in a session, from the archive, then those waiting in the outbox (seq 0). */
  history(session: string): Promise<{ seq: number; sender: string; fromSelf: boolean; sentAt: number; text: Uint8Array }[]> {
    return this.serial(async () => {
      const cv = await this.participant(session);
      return (await cv.c.history()).map((h) => ({ seq: h.position, sender: h.sender, fromSelf: h.own, sentAt: h.sentAt, text: h.plaintext }));
    });
  }

  /** The session's participants as its creator signed them. */
  async participants(session: string): Promise<string[]> {
    return this.serial(async () => (await this.conversation(session)).ns.participants.map((p) => p.sessionId));
  }
}
