// A device: one identity's protocol state on one machine (docs/protocol.md
// sections 11 and 13). It holds the prekey secrets, hands out
// Conversations, and serialises every operation on its store, so that each
// one reads, works on a copy and commits atomically.

import { equalBytes, randomBytes, toHex } from '../bytes.js';
import { type Identity, KEM_PUBLIC_KEY_SIZE, kemPublicKeyCanonical, PublicIdentity, sessionIdToBytes } from '../identity.js';
import { keyHash, participantsDigest, sessionContext } from './derive.js';
import { ChatError } from './errors.js';
import {
  MAX_CLAIMED_PREKEYS,
  MAX_ONE_TIME_PREKEYS,
  MAX_PARTICIPANTS,
  MAX_PREKEY_BATCH,
  ONE_TIME_PREKEY_LOW_WATER,
  SIGNED_PREKEY_GRACE_MS,
  SIGNED_PREKEY_LIFETIME_MS,
  SIGNED_PREKEY_RENEW_MS,
} from './limits.js';
import { kemFromSeed } from './ratchet.js';
import { decodeDevice, type DeviceState, encodeDevice } from './state.js';
import type { ChatStore } from './store.js';
import { type Claim, Conversation } from './conversation.js';

/** A source of randomness: read(n) returns n fresh bytes. */
export interface Rng {
  read(n: number): Uint8Array;
}

const systemRng: Rng = { read: (n) => randomBytes(n) };

/** A signed prekey as published (PublishPrekeys). */
export interface SignedPrekey {
  id: number;
  /** Unix milliseconds. */
  expiresAt: number;
  publicKey: Uint8Array;
}

/** A one-time prekey as published (PublishPrekeys). */
export interface OneTimePrekey {
  id: number;
  publicKey: Uint8Array;
}

/** What GeneratePrekeys made: publish it (its secrets are saved already). */
export interface PrekeyUpload {
  signedPrekey: SignedPrekey | undefined;
  oneTimePrekeys: OneTimePrekey[];
}

/** A participant's prekey bundle, verified by the caller against the transactions that published it. */
export interface PrekeyBundle {
  identity: PublicIdentity;
  signedPrekey: SignedPrekey;
  oneTimePrekey?: OneTimePrekey | undefined;
}

/** Gives the verified prekey bundle of a participant (the SDK's client, or a test directory). */
export interface Directory {
  prekeyBundle(sessionId: string): Promise<PrekeyBundle>;
}

/** An on-chain session as the protocol sees it, verified by the caller from its CreateSession transaction (section 3). */
export interface ChatSession {
  chainId: Uint8Array;
  id: Uint8Array;
  /** The creator first, then the participants listed in CreateSession, in order. */
  participants: readonly PublicIdentity[];
  /** The creator's session claims (at most one per listed participant). */
  claims: readonly Claim[];
}

/** The session claims for CreateSession from the bundles the creator fetched. */
export function sessionClaimsOf(bundles: readonly PrekeyBundle[]): Claim[] {
  return bundles.map((b) => ({ participant: b.identity.sessionId, signedPrekeyId: b.signedPrekey.id, oneTimePrekeyId: b.oneTimePrekey?.id ?? 0 }));
}

/** A claim of one of this device's one-time prekeys, from the chain's claim log (section 11.3). */
export interface PrekeyClaimed {
  prekeyId: number;
  /** When its secret may go if no handshake used it: the end of its session plus MAX_SKIP_AGE_MS (Unix ms). */
  deadline: number;
}

/** What the device's owner should publish (section 11). */
export interface PrekeyStatus {
  /** No signed prekey, or the newest has less than SIGNED_PREKEY_RENEW_MS left. */
  needSignedPrekey: boolean;
  /** One-time prekey secrets held that are not known to be claimed. */
  oneTimeHeld: number;
  /** Claimed one-time prekey secrets held (until a handshake uses them or their deadline). */
  claimedHeld: number;
  /** The newest signed prekey's ID (0: none). */
  signedPrekeyId: number;
}

/** @internal Options of a device for known-answer tests (chattest). */
export interface DeviceOptions {
  rng?: Rng;
  deterministic?: boolean;
}

const DEVICE_RECORD = 'device';

/** The record names of a conversation's data. */
export function recordNames(sessionId: Uint8Array): { state: string; outbox: string; archive: string; messages: string; made: string } {
  const s = toHex(sessionId);
  return { state: `c/${s}`, outbox: `o/${s}/`, archive: `a/${s}/`, messages: `m/${s}/`, made: `e/${s}/` };
}


/**
 * One identity's protocol state. Open it with ChatDevice.open; every
 * method is safe to call concurrently (operations run one at a time).
 */
export class ChatDevice {
  readonly identity: Identity;
  readonly chainId: Uint8Array;
  readonly store: ChatStore;
  /** @internal */
  readonly _rng: Rng;
  /** @internal */
  readonly _deterministic: boolean;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(identity: Identity, chainId: Uint8Array, store: ChatStore, opts: DeviceOptions) {
    this.identity = identity;
    this.chainId = chainId.slice();
    this.store = store;
    this._rng = opts.rng ?? systemRng;
    this._deterministic = opts.deterministic ?? false;
  }

  /** A device over a store (its state starts empty the first time). */
  static open(identity: Identity, chainId: Uint8Array, store: ChatStore): Promise<ChatDevice> {
    return ChatDevice._open(identity, chainId, store, {});
  }

  /** @internal With test randomness (chattest only). */
  static async _open(identity: Identity, chainId: Uint8Array, store: ChatStore, opts: DeviceOptions): Promise<ChatDevice> {
    if (!(chainId instanceof Uint8Array) || chainId.length !== 32) throw new ChatError('invalid-session', 'the chain ID must be 32 bytes');
    const d = new ChatDevice(identity, chainId, store, opts);
    await d._loadDevice(); // refuses a corrupt or unknown record now rather than later
    return d;
  }

  /** @internal Runs f after every earlier operation of this device (a queue, not a lock: no reentry). */
  _serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f, f);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** @internal */
  async _loadDevice(): Promise<DeviceState> {
    const b = await this.store.get(DEVICE_RECORD);
    if (!b) return { nextSignedId: 1, nextOneTimeId: 1, signed: [], oneTime: [], clock: 0 };
    return decodeDevice(b);
  }

  /** @internal The device record's name and bytes, for a commit. */
  _deviceRecord(d: DeviceState): [string, Uint8Array] {
    return [DEVICE_RECORD, encodeDevice(d)];
  }

  /** @internal Signs M: hedged, or deterministic in known-answer mode. */
  _sign(m: Uint8Array, ctx: Uint8Array): Uint8Array {
    return this._deterministic ? this.identity._signDeterministic(m, ctx) : this.identity.sign(m, ctx);
  }

  /**
   * Makes prekeys and saves their secrets before returning them for
   * publishing (section 11): a signed prekey (expiring
   * SIGNED_PREKEY_LIFETIME_MS after now) if `signed`, and `oneTime`
   * one-time prekeys (at most MAX_PREKEY_BATCH, and at most
   * MAX_ONE_TIME_PREKEYS held). IDs increase from 1 per kind, never reused;
   * `above` raises them over IDs the chain already has for the identity (a
   * new device of an identity, section 10.5). Also deletes signed prekey
   * secrets past their grace period and claimed ones past their deadline.
   */
  generatePrekeys(now: number, signed: boolean, oneTime: number, above: { signed?: number; oneTime?: number } = {}): Promise<PrekeyUpload> {
    return this._serial(async () => {
      if (!Number.isInteger(oneTime) || oneTime < 0 || oneTime > MAX_PREKEY_BATCH) {
        throw new ChatError('too-many-prekeys', `one-time prekeys per batch: ${oneTime}, at most ${MAX_PREKEY_BATCH}`);
      }
      const d = await this._loadDevice();
      now = tick(d, now);
      prune(d, now);
      d.nextSignedId = Math.max(d.nextSignedId, (above.signed ?? 0) + 1);
      d.nextOneTimeId = Math.max(d.nextOneTimeId, (above.oneTime ?? 0) + 1);
      if (d.nextSignedId > 0xffffffff || d.nextOneTimeId + oneTime - 1 > 0xffffffff) throw new ChatError('too-many-prekeys', 'prekey IDs exhausted');
      const unclaimed = d.oneTime.filter((o) => o.deadline === 0).length;
      if (unclaimed + oneTime > MAX_ONE_TIME_PREKEYS) {
        throw new ChatError('too-many-prekeys', `${unclaimed} unclaimed one-time prekeys held, at most ${MAX_ONE_TIME_PREKEYS}`);
      }
      const up: PrekeyUpload = { signedPrekey: undefined, oneTimePrekeys: [] };
      if (signed) {
        const seed = this._rng.read(64);
        const { publicKey } = kemFromSeed(seed);
        const id = d.nextSignedId++;
        const expiresAt = now + SIGNED_PREKEY_LIFETIME_MS;
        d.signed.push({ id, expiresAt, seed, kh: keyHash(publicKey) });
        up.signedPrekey = { id, expiresAt, publicKey };
      }
      for (let i = 0; i < oneTime; i++) {
        const seed = this._rng.read(64);
        const { publicKey } = kemFromSeed(seed);
        const id = d.nextOneTimeId++;
        d.oneTime.push({ id, seed, kh: keyHash(publicKey), deadline: 0 });
        up.oneTimePrekeys.push({ id, publicKey });
      }
      await this.store.commit(new Map([this._deviceRecord(d)]), []);
      return up;
    });
  }

  /** What to publish next: a signed prekey when due, and how many one-time prekeys are held. */
  prekeyStatus(now: number): Promise<PrekeyStatus> {
    return this._serial(async () => {
      const d = await this._loadDevice();
      const newest = d.signed.reduce<(typeof d.signed)[number] | undefined>((a, s) => (!a || s.id > a.id ? s : a), undefined);
      return {
        needSignedPrekey: !newest || newest.expiresAt - now < SIGNED_PREKEY_RENEW_MS,
        oneTimeHeld: d.oneTime.filter((o) => o.deadline === 0).length,
        claimedHeld: d.oneTime.filter((o) => o.deadline !== 0).length,
        signedPrekeyId: newest?.id ?? 0,
      };
    });
  }

  /**
   * Records claims of this device's one-time prekeys from the chain's
   * claim log (section 11.3): a claimed secret is kept until a handshake
   * uses it or until its deadline, outside the bound on unclaimed ones; at
   * most MAX_CLAIMED_PREKEYS are kept, the earliest deadlines deleted first.
   */
  prekeysClaimed(now: number, claims: readonly PrekeyClaimed[]): Promise<void> {
    return this._serial(async () => {
      const d = await this._loadDevice();
      now = tick(d, now);
      for (const c of claims) {
        const o = d.oneTime.find((x) => x.id === c.prekeyId);
        if (o && (o.deadline === 0 || c.deadline < o.deadline)) o.deadline = Math.max(1, c.deadline);
      }
      prune(d, now);
      await this.store.commit(new Map([this._deviceRecord(d)]), []);
    });
  }

  /**
   * Deletes the secrets of every unclaimed one-time prekey with an ID at or
   * below `through` (after a lost device or a suspected compromise, section
   * 11.3) and returns `through`, the PublishPrekeys field that retires them
   * on chain.
   */
  retireOneTimePrekeys(through: number): Promise<number> {
    return this._serial(async () => {
      if (!Number.isInteger(through) || through < 0 || through > 0xffffffff) throw new RangeError('retireThrough must be a u32');
      const d = await this._loadDevice();
      d.oneTime = d.oneTime.filter((o) => o.deadline !== 0 || o.id > through);
      await this.store.commit(new Map([this._deviceRecord(d)]), []);
      return through;
    });
  }

  /** The highest one-time prekey ID this device generated (0: none): retire through it after a suspected compromise. */
  async highestOneTimePrekeyId(): Promise<number> {
    return this._serial(async () => (await this._loadDevice()).nextOneTimeId - 1);
  }

  /**
   * How many one-time prekeys to publish so that `unclaimedOnChain` (as the
   * chain reports it) gets back to a comfortable level: 0 above the low
   * water mark of section 11, otherwise up to a batch, within what the
   * device may hold.
   */
  async oneTimePrekeysToPublish(unclaimedOnChain: number): Promise<number> {
    if (unclaimedOnChain >= ONE_TIME_PREKEY_LOW_WATER) return 0;
    const held = (await this.prekeyStatus(0)).oneTimeHeld;
    return Math.max(0, Math.min(MAX_PREKEY_BATCH, MAX_ONE_TIME_PREKEYS - held));
  }

  /**
   * The creator's conversation of a new session: `bundles` are the prekey
   * bundles it fetched before CreateSession, whose prekeys its session
   * claims name (sessionClaimsOf). Kept for the creator's first handshake
   * with each of them (section 11.2).
   */
  createConversation(now: number, session: ChatSession, bundles: readonly PrekeyBundle[]): Promise<Conversation> {
    return this._serial(async () => {
      const c = this._conversationFor(session);
      await c._create(now, new Map(bundles.map((b) => [b.identity.sessionId, b])));
      return c;
    });
  }

  /** The conversation of a session this device takes part in (new state the first time). */
  conversation(session: ChatSession): Promise<Conversation> {
    return this._serial(async () => {
      const c = this._conversationFor(session);
      await c._loadOrNew();
      return c;
    });
  }

  /** @internal */
  _conversationFor(session: ChatSession): Conversation {
    checkSession(session, this.chainId);
    const ids = session.participants.map((p) => sessionIdToBytes(p.sessionId));
    const me = session.participants.findIndex((p) => p.sessionId === this.identity.sessionId);
    if (me < 0) throw new ChatError('not-participant', 'this identity is not a participant of the session');
    const pd = participantsDigest(ids);
    const sc = sessionContext(session.chainId, session.id, pd);
    return new Conversation(this, session, ids, me, pd, sc);
  }
}

/** The device's clock, made monotonic. */
function tick(d: DeviceState, now: number): number {
  if (!Number.isSafeInteger(now)) throw new TypeError('now must be Unix milliseconds');
  if (now > d.clock) d.clock = now;
  return d.clock;
}

/** Deletes signed prekey secrets past their grace period, claimed one-time secrets past their deadline, and claimed ones beyond the bound. */
function prune(d: DeviceState, now: number): void {
  d.signed = d.signed.filter((s) => now <= s.expiresAt + SIGNED_PREKEY_GRACE_MS);
  d.oneTime = d.oneTime.filter((o) => o.deadline === 0 || now < o.deadline);
  const claimed = d.oneTime.filter((o) => o.deadline !== 0).sort((a, b) => a.deadline - b.deadline);
  if (claimed.length > MAX_CLAIMED_PREKEYS) {
    const drop = new Set(claimed.slice(0, claimed.length - MAX_CLAIMED_PREKEYS));
    d.oneTime = d.oneTime.filter((o) => !drop.has(o));
  }
}

function checkSession(s: ChatSession, chainId: Uint8Array): void {
  const bad = (why: string): never => {
    throw new ChatError('invalid-session', why);
  };
  if (!(s.chainId instanceof Uint8Array) || !equalBytes(s.chainId, chainId)) bad('the session is on another chain');
  if (!(s.id instanceof Uint8Array) || s.id.length !== 32) bad('the session ID must be 32 bytes');
  const n = s.participants.length;
  if (n < 2 || n > MAX_PARTICIPANTS) bad(`${n} participants, want 2 to ${MAX_PARTICIPANTS}`);
  const seen = new Set<string>();
  for (const p of s.participants) {
    if (!(p instanceof PublicIdentity)) bad('a participant is not a PublicIdentity');
    if (seen.has(p.sessionId)) bad('a participant is listed twice');
    seen.add(p.sessionId);
  }
  if (s.claims.length > n - 1) bad(`${s.claims.length} session claims for ${n - 1} listed participants`);
  const claimed = new Set<string>();
  const u32 = (x: number): boolean => Number.isInteger(x) && x >= 0 && x <= 0xffffffff;
  for (const c of s.claims) {
    if (!c || !seen.has(c.participant) || c.participant === s.participants[0]!.sessionId) bad('a session claim names no listed participant');
    if (claimed.has(c.participant)) bad('two session claims for one participant');
    claimed.add(c.participant);
    if (!u32(c.signedPrekeyId) || c.signedPrekeyId < 1 || !u32(c.oneTimePrekeyId)) bad('a session claim with invalid prekey IDs');
  }
}

/** Checks a bundle against the participant it is for (the caller verified it against the chain). */
export function checkBundle(b: PrekeyBundle, participant: PublicIdentity, now: number): void {
  const bad = (why: string): never => {
    throw new ChatError('no-prekey-bundle', `prekey bundle of ${participant.sessionId}: ${why}`);
  };
  if (!b || !(b.identity instanceof PublicIdentity)) bad('no identity');
  if (b.identity.sessionId !== participant.sessionId || !equalBytes(b.identity.kemPublicKey, participant.kemPublicKey)) bad('for another identity');
  const s = b.signedPrekey;
  if (!s || !Number.isInteger(s.id) || s.id < 1 || s.id > 0xffffffff) bad('no signed prekey');
  if (!(s.publicKey instanceof Uint8Array) || s.publicKey.length !== KEM_PUBLIC_KEY_SIZE || !kemPublicKeyCanonical(s.publicKey)) bad('invalid signed prekey');
  if (s.expiresAt <= now) bad('the signed prekey has expired');
  const o = b.oneTimePrekey;
  if (o) {
    if (!Number.isInteger(o.id) || o.id < 1 || o.id > 0xffffffff) bad('invalid one-time prekey ID');
    if (!(o.publicKey instanceof Uint8Array) || !kemPublicKeyCanonical(o.publicKey)) bad('invalid one-time prekey');
  }
}
