// The JSON-RPC client of a SessionVM node (docs/api.md): one method per
// session.* method, signing helpers that build transactions locally, and
// waiting for acceptance. Everything the node returns is checked before
// use: identity keys must hash to the Session ID asked for, write replies
// must name the transaction that was sent, pages must belong to the target
// asked for and move forward, envelopes must be signed by their author.

import { fromBase64, toBase64, utf8, concat } from './bytes.js';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  BadNonceError,
  BusyError,
  IdentityMismatchError,
  InvalidParamsError,
  InvalidTransactionError,
  isRetryableRpc,
  MempoolFullError,
  NotMemberError,
  ResponseMismatchError,
  RpcError,
  rpcError,
  SenderMismatchError,
  SessionError,
  TransportError,
  TxDroppedError,
  TxUnknownError,
  WaitTimeoutError,
} from './errors.js';
import { channelIdFor, idFromString, idToString, isID, sessionIdFor } from './ids.js';
import { type Identity, isSessionId, PublicIdentity, parseSessionId } from './identity.js';
import { MAX_PAGE_SIZE, MAX_RECIPIENTS, MAX_RESPONSE_SIZE } from './limits.js';
import { open, seal } from './seal.js';
import {
  type Claim,
  ContactStatus,
  Decision,
  JoinPolicy,
  type ModerationAction,
  type OneTimePrekey,
  parseTx,
  type Payloads,
  type RequestPolicy,
  type SignedPrekey,
  type SignedTx,
  signTx,
  type TxName,
  validChannelName,
} from './tx.js';
import { displayText } from './text.js';
import { createTxAuthor, type PrekeyBundle, type PrekeyBundleReply, type VerifiedSession, verifyPrekeyBundle, verifySessionReply } from './verify.js';
import { checkRegistrationParams, type RegistrationParams, solveOnThisThread, type WorkSolver, type WorkStats, workSeed } from './work.js';

/** How often Client.register solves again, one bit more each time, when the node is busy. */
const MAX_REGISTER_RETRIES = 4;

/** The JSON-RPC namespace of every method. */
export const NAMESPACE = 'session';

export interface ClientOptions {
  /** fetch implementation (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Bound on each call, in ms (default 30 s; 0: none). */
  timeoutMs?: number;
  /** First interval between waitAccepted polls (default 20 ms); it grows by 1.5x to maxPollIntervalMs. */
  pollIntervalMs?: number;
  /** Largest interval between waitAccepted polls (default 500 ms). */
  maxPollIntervalMs?: number;
  /** Bound on waitAccepted (default 2 min). */
  waitTimeoutMs?: number;
  /**
   * How many times a call the node answered busy (-32015: it ran nothing)
   * is sent again, after about 50, 100, 200 and 400 ms (± a quarter), as
   * Go's client does (default 4; 0: never).
   */
  busyRetries?: number;
  /** The clock signed prekey expiries are checked against, in Unix ms (default Date.now). */
  now?: () => number;
}

/** The result of every write method. */
export interface TxReply {
  txID: string;
  type: TxName;
  author: string;
  nonce: number;
  /** createSession: the new session. */
  session?: string;
  /** createChannel: the new channel. */
  channel?: string;
}

/** Options of Client.submit. */
export interface SubmitOptions<N extends TxName = TxName> {
  /**
   * Runs with the signed transaction before it leaves (again, with the new
   * one, if a bad nonce makes it sign again): keep it where a crash cannot
   * lose it, so the same bytes can be sent again.
   */
  prepare?: (t: SignedTx<N>) => Promise<void>;
}

export type TxStatus = 'unknown' | 'pending' | 'accepted' | 'dropped';
export interface TxStatusReply {
  txID: string;
  status: TxStatus;
  height: number;
  index: number;
  reason?: string;
  /** dropped only: the author's nonce was consumed by another accepted transaction, so this one can never be accepted. */
  dead?: boolean;
}

export interface HealthReply {
  healthy: boolean;
  error?: string;
  lastAcceptedID: string;
  lastAcceptedTime: number;
  height: number;
  processingBlocks: number;
  mempoolTxs: number;
  mempoolBytes: number;
  database?: string;
  signaturesVerified: number;
}

export interface StatusReply {
  chainID: string;
  lastAcceptedID: string;
  height: number;
  lastAcceptedTime: number;
  mempoolTxs: number;
  mempoolBytes: number;
  processingBlocks: number;
  acceptedTxs: number;
  identities: number;
  sessions: number;
  channels: number;
  messagesStored: number;
  messagesTotal: number;
  messagesPruned: number;
}

export interface ConfigReply {
  chainID: string;
  sessionTTL: number;
  maxMessages: number;
  maxChannels: number;
  retentionDays: number;
  idPrefix: string;
  maxCiphertextSize: number;
  maxMetadataSize: number;
  maxParticipants: number;
  maxChannelNameSize: number;
  maxChannelMembers: number;
  maxTxSize: number;
  maxPageSize: number;
  maxBodySize: number;
  /** The registration proof of work (docs/chain.md section 3). */
  registration: Required<RegistrationParams>;
  /** Per-identity token buckets (docs/chain.md section 8). */
  rateLimits: Record<string, { burst: number; refillSeconds: number }>;
  prekeys: { strangerClaims: { burst: number; refillSeconds: number }; strangerReserve: number };
  maxPrekeysPerTx: number;
  maxUnclaimedPrekeys: number;
  /** ms */
  maxSignedPrekeyLifetime: number;
  requestBackfill: number;
  maxContacts: number;
  maxBlocked: number;
  maxMemberships: number;
  maxModerationRecords: number;
  maxClaimsPerPair: number;
  maxSlowModeSeconds: number;
}

export interface IdentityReply {
  sessionId: string;
  kemPublicKey: Uint8Array;
  dsaPublicKey: Uint8Array;
  height: number;
  timestamp: number;
}

export type SessionStatus = 'active' | 'closed' | 'expired';
/** A participant's consent: accepted, pending (a message request) or left. */
export type ParticipantState = 'accepted' | 'pending' | 'left';
/** getSession as the node returned it: use verifiedSession for the participants. */
export interface SessionReply {
  session: string;
  creator: string;
  /** Creator first. */
  participants: string[];
  metadata: Uint8Array;
  height: number;
  createdAt: number;
  expiresAt: number;
  status: SessionStatus;
  closedBy?: string;
  closedAt?: number;
  lastSeq: number;
  /** Messages the session stores now. */
  stored: number;
  /** Per participant, in order (the node's word). */
  participantStates: ParticipantState[];
  /** Chain position of the creation (the listSessions cursor). */
  position: number;
  /** The signed CreateSession transaction (verifiedSession checks it). */
  createTx: Uint8Array;
}

export interface Message {
  /** The session or channel. */
  target: string;
  seq: number;
  author: string;
  txID: string;
  height: number;
  /** Chain position, the inbox cursor. */
  position: number;
  timestamp: number;
  ciphertext: Uint8Array;
}

export interface MessagesReply {
  messages: Message[];
  /** The cursor for the next page (after). */
  next: number;
  /** More may follow now: ask again from next. */
  more: boolean;
}

export type ChannelRole = 'owner' | 'moderator' | 'member';
export type JoinPolicyName = 'open' | 'invite-only';
export interface ChannelReply {
  channel: string;
  owner: string;
  name: string;
  height: number;
  createdAt: number;
  joinPolicy: JoinPolicyName;
  memberCount: number;
  /** Outstanding invites. */
  inviteCount: number;
  banCount: number;
  /** A page of members in Session ID byte order. */
  members: string[];
  /** Their roles, in the same order. */
  memberRoles: ChannelRole[];
}

/** isChannelMember's whole answer. */
export interface MembershipReply {
  member: boolean;
  role: ChannelRole | 'none';
  invited: boolean;
  banned: boolean;
}

/** getTx, checked: the bytes hash to the ID asked for and parse. */
export interface TxReplyFull {
  txID: string;
  type: TxName;
  tx: SignedTx;
  height: number;
  index: number;
}

/** A page of listSessions. */
export interface SessionsReply {
  sessions: { session: string; position: number }[];
  next: number;
  more: boolean;
}

/** A pending message request: the latest session of one creator that the identity has not answered. */
export interface RequestEntry {
  creator: string;
  session: string;
  position: number;
  /** The session's status ('unknown' if the node no longer has it). */
  status: SessionStatus | 'unknown';
}

/** A page of getRequests, one entry per creator in the order of their sessions (time); next is the last position (the cursor). */
export interface RequestsReply {
  requests: RequestEntry[];
  next: number;
  more: boolean;
}

/**
 * One claim of an identity's prekeys (getClaims): who claimed, in which
 * session and transaction (getTx proves it), the signed prekey and the
 * one-time prekey (0: none; then oneTimeTx is absent) with the
 * PublishPrekeys transaction that published it.
 */
export interface ClaimEntry {
  position: number;
  claimer: string;
  session: string;
  txID: string;
  signedPrekeyId: number;
  oneTimePrekeyId: number;
  oneTimeTx?: string;
  timestamp: number;
}

/** A page of getClaims in chain order; next is the last position (the cursor). */
export interface ClaimsReply {
  claims: ClaimEntry[];
  next: number;
  more: boolean;
}

/** Who asks for a prekey bundle: the one-time prekey served is then one the chain lets that claimer claim (in a createSession, or in a sendMessage in `session`). */
export interface BundleFor {
  claimer?: string;
  session?: string;
}

export type ContactStatusName = 'none' | 'contact' | 'blocked';

/** Options of Client.register. */
export interface RegisterOptions {
  /** Solves the proof of work (default: on this thread; the web app uses a worker pool). */
  solver?: WorkSolver;
  /** Bits of pre-filter work beyond the chain's (default 0); register adds one per retry when the node is busy. */
  extra?: number;
  signal?: AbortSignal;
  onProgress?: (stats: WorkStats) => void;
}

type Json = Record<string, unknown>;

function mismatch(method: string, what: string): ResponseMismatchError {
  return new ResponseMismatchError(`${NAMESPACE}.${method}: the node's reply does not check out: ${what}`);
}

function num(v: unknown, method: string, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    // timestamps may be negative in principle; only counters and cursors come here
    throw mismatch(method, `${field} is not a non-negative integer`);
  }
  return v;
}
function int(v: unknown, method: string, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw mismatch(method, `${field} is not an integer`);
  return v;
}
function str(v: unknown, method: string, field: string): string {
  if (typeof v !== 'string') throw mismatch(method, `${field} is not a string`);
  return v;
}
function sid(v: unknown, method: string, field: string): string {
  if (!isSessionId(v)) throw mismatch(method, `${field} is not a Session ID`);
  return v;
}
function cb58(v: unknown, method: string, field: string): string {
  if (!isID(v)) throw mismatch(method, `${field} is not an ID`);
  return v;
}
function b64(v: unknown, method: string, field: string): Uint8Array {
  if (v === null || v === undefined) return new Uint8Array(0); // Go writes nil []byte as null
  try {
    return fromBase64(str(v, method, field));
  } catch (e) {
    if (e instanceof SessionError) throw e;
    throw mismatch(method, `${field} is not base64`);
  }
}
function obj(v: unknown, method: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw mismatch(method, 'result is not an object');
  return v as Json;
}

/** The associated data of session and channel envelopes: "luxfi/session/v1/message" ‖ target (32 bytes). */
export function messageAD(target: string): Uint8Array {
  return concat(utf8('luxfi/session/v1/message'), idFromString(target));
}

/**
 * Opens a message sent as a Seal envelope (Go: service.OpenMessage) and
 * checks that the envelope's signer is the message's author. It does not
 * check that the author is a participant (the node names the author): a
 * session's reader checks that against verifiedSession, as
 * SealCipher.open does; nor that the node did not list the same envelope
 * before (Seal has no replay protection of its own).
 */
export function openMessage(identity: Identity, m: Message): { plaintext: Uint8Array; sender: PublicIdentity } {
  const o = open(identity, m.ciphertext, messageAD(m.target));
  if (o.sender.sessionId !== m.author) {
    throw new SenderMismatchError(`envelope signed by ${o.sender.sessionId}, posted by ${m.author}`);
  }
  return { plaintext: o.plaintext, sender: o.sender };
}

const DEFAULTS = { timeoutMs: 30_000, pollIntervalMs: 20, maxPollIntervalMs: 500, waitTimeoutMs: 120_000, busyRetries: 4 };

/** The pause before busy retry `attempt` (0-based): 50 ms × 2^attempt (at most 2^6), ± a quarter (Go: Client.busyPause). */
export function busyPauseMs(attempt: number): number {
  const d = 50 * 2 ** Math.min(attempt, 6);
  return d + Math.floor(Math.random() * (d / 2)) - d / 4;
}

/** A typed client of one node's JSON-RPC endpoint, e.g. "http://127.0.0.1:9652/rpc". */
export class Client {
  readonly url: string;
  private readonly fetchImpl: typeof fetch;
  private readonly opts: typeof DEFAULTS;
  private readonly now: () => number;
  private reqID = 0;
  private chain: string | undefined;
  private reg: Required<RegistrationParams> | undefined;
  private readonly identities = new Map<string, PublicIdentity>();
  private readonly authors = new Map<string, { next?: number; queue: Promise<unknown> }>();

  constructor(url: string, options: ClientOptions = {}) {
    this.url = url;
    const f = options.fetch ?? globalThis.fetch;
    if (!f) throw new SessionError('no fetch implementation: pass options.fetch');
    this.fetchImpl = f.bind(globalThis);
    this.opts = {
      timeoutMs: options.timeoutMs ?? DEFAULTS.timeoutMs,
      pollIntervalMs: Math.max(1, options.pollIntervalMs ?? DEFAULTS.pollIntervalMs),
      maxPollIntervalMs: options.maxPollIntervalMs ?? DEFAULTS.maxPollIntervalMs,
      waitTimeoutMs: options.waitTimeoutMs ?? DEFAULTS.waitTimeoutMs,
      busyRetries: Math.max(0, options.busyRetries ?? DEFAULTS.busyRetries),
    };
    this.now = options.now ?? Date.now;
  }

  /**
   * Calls `session.<method>` with params and returns the raw result. Node
   * errors are RpcError subclasses; anything else (unreachable, timeout, not
   * JSON-RPC) is a TransportError. A call answered busy is sent again up
   * to busyRetries times (it did not run, so this is always safe).
   */
  async call(method: string, params: Json = {}): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.callOnce(method, params);
      } catch (e) {
        if (!(e instanceof BusyError) || attempt >= this.opts.busyRetries) throw e;
      }
      await sleep(busyPauseMs(attempt));
    }
  }

  private async callOnce(method: string, params: Json): Promise<unknown> {
    const full = `${NAMESPACE}.${method}`;
    const id = ++this.reqID;
    const ctl = new AbortController();
    const timer = this.opts.timeoutMs > 0 ? setTimeout(() => ctl.abort(), this.opts.timeoutMs) : undefined;
    let status: number;
    let text: string;
    try {
      let res: Response;
      try {
        res = await this.fetchImpl(this.url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
          body: JSON.stringify({ jsonrpc: '2.0', method: full, params, id }),
          signal: ctl.signal,
        });
      } catch (e) {
        const why = ctl.signal.aborted ? `no answer within ${this.opts.timeoutMs} ms` : 'the node is unreachable';
        throw new TransportError(`${full}: ${why} (${this.url})`, { cause: e });
      }
      status = res.status;
      text = await readBounded(res, full);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    let resp: Json;
    try {
      resp = obj(JSON.parse(text), method);
      if (resp.jsonrpc !== '2.0') throw new Error('not 2.0');
    } catch {
      throw new TransportError(`${full}: HTTP ${status}, not a JSON-RPC 2.0 response: ${JSON.stringify(displayText(text, 200))}`);
    }
    if (resp.error !== undefined && resp.error !== null) {
      const e = obj(resp.error, method);
      throw rpcError(typeof e.code === 'number' ? e.code : 0, typeof e.message === 'string' ? e.message : '', full);
    }
    if (resp.id !== id) throw new TransportError(`${full}: response id does not match request id ${id}`);
    if (status !== 200) throw new TransportError(`${full}: HTTP ${status}`);
    return resp.result;
  }

  // --- chain ---------------------------------------------------------------

  /** session.health */
  async health(): Promise<HealthReply> {
    return obj(await this.call('health'), 'health') as unknown as HealthReply;
  }

  /** session.status */
  async status(): Promise<StatusReply> {
    const r = obj(await this.call('status'), 'status');
    cb58(r.chainID, 'status', 'chainID');
    return r as unknown as StatusReply;
  }

  /** session.getConfig (remembers the chain ID and the registration work parameters). */
  async config(): Promise<ConfigReply> {
    const r = obj(await this.call('getConfig'), 'getConfig');
    const chain = cb58(r.chainID, 'getConfig', 'chainID');
    // Transactions are signed for the chain this client learned first: a
    // node that later names another chain (to carry them there) is refused.
    if (this.chain !== undefined && chain !== this.chain) throw mismatch('getConfig', `chain ${chain}, and ${this.chain} before`);
    this.chain = chain;
    const reg = r.registration as Required<RegistrationParams> | undefined;
    if (reg !== undefined) {
      try {
        checkRegistrationParams(reg);
      } catch (e) {
        throw mismatch('getConfig', `registration: ${e instanceof Error ? e.message : String(e)}`);
      }
      this.reg = { ...reg };
    }
    return r as unknown as ConfigReply;
  }

  /** The chain's registration work parameters (getConfig once, then cached). */
  async registrationParams(): Promise<Required<RegistrationParams>> {
    if (this.reg) return this.reg;
    await this.config();
    if (!this.reg) throw mismatch('getConfig', 'no registration parameters (a node of an older version?)');
    return this.reg;
  }

  /**
   * Sets the chain this client talks to, one it learned before (a stored
   * state's): transactions are signed for it, and a getConfig naming
   * another is refused (ResponseMismatchError), so a node cannot have this
   * client sign for another chain. Throws if the client knows another.
   */
  pinChain(chainID: string): void {
    if (!isID(chainID)) throw new SessionError(`not a chain ID: ${String(chainID).slice(0, 60)}`);
    if (this.chain !== undefined && this.chain !== chainID) throw new ResponseMismatchError(`${NAMESPACE}.getConfig: the node serves chain ${this.chain}, not ${chainID}`);
    this.chain = chainID;
  }

  /** The chain ID transactions must carry (getConfig once, then cached). */
  async chainID(): Promise<string> {
    return this.chain ?? (await this.config()).chainID;
  }

  // --- writes ---------------------------------------------------------------

  private async write(method: string, signed: Uint8Array): Promise<TxReply> {
    const r = obj(await this.call(method, { tx: toBase64(signed) }), method);
    const reply: TxReply = {
      txID: cb58(r.txID, method, 'txID'),
      type: str(r.type, method, 'type') as TxName,
      author: sid(r.author, method, 'author'),
      nonce: num(r.nonce, method, 'nonce'),
    };
    if (r.session !== undefined) reply.session = cb58(r.session, method, 'session');
    if (r.channel !== undefined) reply.channel = cb58(r.channel, method, 'channel');
    return reply;
  }

  /** session.issueTx: signed bytes of any type. */
  issueTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('issueTx', signed);
  }
  /** session.registerIdentity */
  registerIdentityTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('registerIdentity', signed);
  }
  /** session.createSession */
  createSessionTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('createSession', signed);
  }
  /** session.closeSession */
  closeSessionTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('closeSession', signed);
  }
  /** session.sendMessage */
  sendMessageTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('sendMessage', signed);
  }
  /** session.createChannel */
  createChannelTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('createChannel', signed);
  }
  /** session.joinChannel */
  joinChannelTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('joinChannel', signed);
  }
  /** session.leaveChannel */
  leaveChannelTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('leaveChannel', signed);
  }
  /** session.postChannel */
  postChannelTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('postChannel', signed);
  }
  /** session.publishPrekeys */
  publishPrekeysTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('publishPrekeys', signed);
  }
  /** session.acceptSession */
  acceptSessionTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('acceptSession', signed);
  }
  /** session.setContact */
  setContactTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('setContact', signed);
  }
  /** session.setChannelPolicy */
  setChannelPolicyTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('setChannelPolicy', signed);
  }
  /** session.moderateChannel */
  moderateChannelTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('moderateChannel', signed);
  }
  /** session.deletePosts */
  deletePostsTx(signed: Uint8Array): Promise<TxReply> {
    return this.write('deletePosts', signed);
  }

  // --- reads ----------------------------------------------------------------

  /** session.getTxStatus */
  async txStatus(txID: string): Promise<TxStatusReply> {
    const m = 'getTxStatus';
    const r = obj(await this.call(m, { txID }), m);
    if (r.txID !== txID) throw mismatch(m, 'txID differs from the one asked for');
    const status = str(r.status, m, 'status');
    if (!['unknown', 'pending', 'accepted', 'dropped'].includes(status)) throw mismatch(m, `unknown status ${status.slice(0, 20)}`);
    const out: TxStatusReply = { txID, status: status as TxStatus, height: num(r.height ?? 0, m, 'height'), index: num(r.index ?? 0, m, 'index') };
    if (typeof r.reason === 'string') out.reason = r.reason;
    if (r.dead === true) {
      if (status !== 'dropped') throw mismatch(m, 'dead but not dropped');
      out.dead = true;
    }
    return out;
  }

  /** session.getNonce: the nonce the author's next transaction must carry (pending counted). */
  async nonce(sessionId: string): Promise<number> {
    const r = obj(await this.call('getNonce', { sessionId }), 'getNonce');
    if (r.sessionId !== sessionId) throw mismatch('getNonce', 'sessionId differs from the one asked for');
    return num(r.nonce, 'getNonce', 'nonce');
  }

  /** session.getIdentity, as returned (use publicIdentity for checked keys). */
  async identity(sessionId: string): Promise<IdentityReply> {
    const m = 'getIdentity';
    const r = obj(await this.call(m, { sessionId }), m);
    return {
      sessionId: sid(r.sessionId, m, 'sessionId'),
      kemPublicKey: b64(r.kemPublicKey, m, 'kemPublicKey'),
      dsaPublicKey: b64(r.dsaPublicKey, m, 'dsaPublicKey'),
      height: num(r.height, m, 'height'),
      timestamp: int(r.timestamp, m, 'timestamp'),
    };
  }

  /**
   * A registered identity's public keys, checked to derive `sessionId` (a
   * node cannot substitute keys), cached: a Session ID is the hash of its
   * keys, so they never change.
   */
  async publicIdentity(sessionId: string): Promise<PublicIdentity> {
    parseSessionId(sessionId);
    const cached = this.identities.get(sessionId);
    if (cached) return cached;
    const r = await this.identity(sessionId);
    let id: PublicIdentity;
    try {
      id = new PublicIdentity(r.kemPublicKey, r.dsaPublicKey);
    } catch (e) {
      throw new IdentityMismatchError(`identity ${sessionId}: the node returned invalid keys`, { cause: e });
    }
    if (id.sessionId !== sessionId) {
      throw new IdentityMismatchError(`the node returned keys that do not match the Session ID: asked ${sessionId}, keys derive ${id.sessionId}`);
    }
    this.identities.set(sessionId, id);
    return id;
  }

  /**
   * session.getSession, checked for shape: the ID asked for, creator
   * first, Session IDs only, no repeats. The participants here are the
   * node's word: use verifiedSession before encrypting to them.
   */
  async session(session: string): Promise<SessionReply> {
    const m = 'getSession';
    const r = obj(await this.call(m, { session }), m);
    if (r.session !== session) throw mismatch(m, 'session differs from the one asked for');
    const creator = sid(r.creator, m, 'creator');
    if (!Array.isArray(r.participants) || r.participants.length < 2) throw mismatch(m, 'participants');
    const participants = r.participants.map((p, i) => sid(p, m, `participants[${i}]`));
    if (participants[0] !== creator || new Set(participants).size !== participants.length) throw mismatch(m, 'participants');
    const status = str(r.status, m, 'status');
    if (!['active', 'closed', 'expired'].includes(status)) throw mismatch(m, 'status');
    const out: SessionReply = {
      session,
      creator,
      participants,
      metadata: b64(r.metadata, m, 'metadata'),
      height: num(r.height, m, 'height'),
      createdAt: int(r.createdAt, m, 'createdAt'),
      expiresAt: int(r.expiresAt, m, 'expiresAt'),
      status: status as SessionStatus,
      lastSeq: num(r.lastSeq, m, 'lastSeq'),
      stored: num(r.stored ?? 0, m, 'stored'),
      participantStates: [],
      position: num(r.position ?? 0, m, 'position'),
      createTx: b64(r.createTx, m, 'createTx'),
    };
    if (r.participantStates !== undefined && r.participantStates !== null) {
      const ps = r.participantStates;
      if (!Array.isArray(ps) || ps.length !== participants.length) throw mismatch(m, 'participantStates');
      out.participantStates = ps.map((x, i) => {
        if (x !== 'accepted' && x !== 'pending' && x !== 'left') throw mismatch(m, `participantStates[${i}]`);
        return x;
      });
    }
    if (r.closedBy !== undefined) out.closedBy = sid(r.closedBy, m, 'closedBy');
    if (r.closedAt !== undefined) out.closedAt = int(r.closedAt, m, 'closedAt');
    return out;
  }

  /**
   * A session as its creator signed it (Go: Client.VerifiedSession): the
   * participants and claims come from the CreateSession transaction,
   * checked against the creator's key (publicIdentity), the chain ID and
   * the session ID; a node that adds, drops or reorders participants is
   * refused with UntrustedNodeError.
   */
  async verifiedSession(session: string): Promise<VerifiedSession<SessionReply>> {
    const chainID = await this.chainID();
    const r = await this.session(session);
    const creator = await this.publicIdentity(createTxAuthor(r));
    return verifySessionReply(chainID, r, creator);
  }

  private page(method: string, r: Json, after: number, limit: number, byTarget?: string): MessagesReply {
    if (!Array.isArray(r.messages)) throw mismatch(method, 'messages is not a list');
    if (r.messages.length > (limit > 0 ? limit : 100)) throw mismatch(method, 'more messages than asked for');
    let cursor = after;
    const messages = r.messages.map((x, i): Message => {
      const o = obj(x, method);
      const msg: Message = {
        target: cb58(o.target, method, `messages[${i}].target`),
        seq: num(o.seq, method, 'seq'),
        author: sid(o.author, method, 'author'),
        txID: cb58(o.txID, method, 'txID'),
        height: num(o.height, method, 'height'),
        position: num(o.position, method, 'position'),
        timestamp: int(o.timestamp, method, 'timestamp'),
        ciphertext: b64(o.ciphertext, method, 'ciphertext'),
      };
      if (byTarget !== undefined && msg.target !== byTarget) throw mismatch(method, 'a message of another target');
      const c = byTarget !== undefined ? msg.seq : msg.position;
      if (c <= cursor) throw mismatch(method, 'messages out of order or before the cursor');
      cursor = c;
      return msg;
    });
    const next = num(r.next, method, 'next');
    if (next !== cursor) throw mismatch(method, 'next is not the cursor of the last message');
    return { messages, next, more: r.more === true };
  }

  private checkPage(after: number, limit: number): void {
    if (!Number.isSafeInteger(after) || after < 0) throw new InvalidParamsError(-32602, 'after must be a non-negative integer', 'client');
    if (!Number.isInteger(limit) || limit < 0 || limit > MAX_PAGE_SIZE) throw new InvalidParamsError(-32602, `limit must be 0 to ${MAX_PAGE_SIZE}`, 'client');
  }

  /** session.getMessages of a session: up to limit (0: 100) messages with seq > after. */
  async messages(session: string, after = 0, limit = 0): Promise<MessagesReply> {
    this.checkPage(after, limit);
    const r = obj(await this.call('getMessages', { session, after, limit }), 'getMessages');
    return this.page('getMessages', r, after, limit, session);
  }

  /** session.getMessages of a channel's posts. */
  async channelMessages(channel: string, after = 0, limit = 0): Promise<MessagesReply> {
    this.checkPage(after, limit);
    const r = obj(await this.call('getMessages', { channel, after, limit }), 'getMessages');
    return this.page('getMessages', r, after, limit, channel);
  }

  /** session.getInbox: messages addressed to sessionId, after a position cursor. */
  async inbox(sessionId: string, after = 0, limit = 0): Promise<MessagesReply> {
    this.checkPage(after, limit);
    const r = obj(await this.call('getInbox', { sessionId, after, limit }), 'getInbox');
    const page = this.page('getInbox', r, after, limit);
    for (const msg of page.messages) if (msg.author === sessionId) throw mismatch('getInbox', 'an inbox entry authored by its owner');
    return page;
  }

  /** session.getChannel with a page of members after membersAfter (Session ID byte order). */
  async channel(channel: string, membersAfter?: string, membersLimit = 0): Promise<ChannelReply> {
    const m = 'getChannel';
    const params: Json = { channel, membersLimit };
    if (membersAfter) params.membersAfter = membersAfter;
    const r = obj(await this.call(m, params), m);
    if (r.channel !== channel) throw mismatch(m, 'channel differs from the one asked for');
    if (!Array.isArray(r.members)) throw mismatch(m, 'members');
    const members = r.members.map((x, i) => sid(x, m, `members[${i}]`));
    for (let i = 0; i < members.length; i++) {
      const prev = i === 0 ? membersAfter : members[i - 1];
      if (prev !== undefined && !(members[i]! > prev)) throw mismatch(m, 'members out of order');
    }
    const roles = r.memberRoles ?? members.map(() => 'member');
    if (!Array.isArray(roles) || roles.length !== members.length) throw mismatch(m, 'memberRoles');
    const memberRoles = roles.map((x, i): ChannelRole => {
      if (x !== 'owner' && x !== 'moderator' && x !== 'member') throw mismatch(m, `memberRoles[${i}]`);
      return x;
    });
    const joinPolicy = r.joinPolicy ?? 'open';
    if (joinPolicy !== 'open' && joinPolicy !== 'invite-only') throw mismatch(m, 'joinPolicy');
    const owner = sid(r.owner, m, 'owner');
    memberRoles.forEach((role, i) => {
      if ((role === 'owner') !== (members[i] === owner)) throw mismatch(m, 'the owner role and the owner differ');
    });
    // The name is the node's word (not checked against the CreateChannel), but never one the chain refuses: no bidirectional overrides or invisible characters.
    const name = str(r.name, m, 'name');
    if (!validChannelName(name)) throw mismatch(m, 'name is not a channel name the chain accepts');
    return {
      channel,
      owner,
      name,
      height: num(r.height, m, 'height'),
      createdAt: int(r.createdAt, m, 'createdAt'),
      joinPolicy,
      memberCount: num(r.memberCount, m, 'memberCount'),
      inviteCount: num(r.inviteCount ?? 0, m, 'inviteCount'),
      banCount: num(r.banCount ?? 0, m, 'banCount'),
      members,
      memberRoles,
    };
  }

  /** Every member of a channel (pages through getChannel). */
  async channelMembers(channel: string, max = MAX_RECIPIENTS): Promise<string[]> {
    const out: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.channel(channel, after, MAX_PAGE_SIZE);
      out.push(...page.members);
      if (out.length > max) throw new SessionError(`channel has more than ${max} members`);
      if (page.members.length === 0 || out.length >= page.memberCount) return out;
      after = page.members[page.members.length - 1];
    }
  }

  /** session.isChannelMember: whether sessionId is a member. */
  async isChannelMember(channel: string, sessionId: string): Promise<boolean> {
    return (await this.channelMembership(channel, sessionId)).member;
  }

  /** session.isChannelMember with the whole answer: role, invite, ban. */
  async channelMembership(channel: string, sessionId: string): Promise<MembershipReply> {
    const m = 'isChannelMember';
    const r = obj(await this.call(m, { channel, sessionId }), m);
    if (typeof r.member !== 'boolean') throw mismatch(m, 'member');
    const role = r.role ?? (r.member ? 'member' : 'none');
    if (!['owner', 'moderator', 'member', 'none'].includes(role as string) || (role === 'none') === r.member) throw mismatch(m, 'role');
    return { member: r.member, role: role as MembershipReply['role'], invited: r.invited === true, banned: r.banned === true };
  }

  /**
   * session.getTx: an accepted transaction, checked: its bytes hash to the
   * ID asked for (so the node cannot substitute one) and parse.
   */
  async tx(txID: string): Promise<TxReplyFull> {
    const m = 'getTx';
    const r = obj(await this.call(m, { txID }), m);
    const raw = b64(r.tx, m, 'tx');
    if (idToString(sha256(raw)) !== txID) throw mismatch(m, 'the bytes do not hash to the transaction ID');
    let t: SignedTx;
    try {
      t = parseTx(raw);
    } catch (e) {
      if (e instanceof InvalidTransactionError) throw mismatch(m, `the transaction does not parse: ${e.message}`);
      throw e;
    }
    if (r.type !== t.type) throw mismatch(m, 'type');
    return { txID, type: t.type, tx: t, height: num(r.height, m, 'height'), index: num(r.index, m, 'index') };
  }

  /** session.getPrekeyBundle as returned: use prekeyBundle (verified) before using a key. */
  async rawPrekeyBundle(sessionId: string, forClaim: BundleFor = {}): Promise<PrekeyBundleReply> {
    const m = 'getPrekeyBundle';
    const params: Json = { sessionId };
    if (forClaim.claimer) params.claimer = forClaim.claimer;
    if (forClaim.session) params.session = forClaim.session;
    const r = obj(await this.call(m, params), m);
    if (r.sessionId !== sessionId) throw mismatch(m, 'sessionId differs from the one asked for');
    const out: PrekeyBundleReply = {
      sessionId,
      kemPublicKey: b64(r.kemPublicKey, m, 'kemPublicKey'),
      dsaPublicKey: b64(r.dsaPublicKey, m, 'dsaPublicKey'),
      unclaimed: num(r.unclaimed ?? 0, m, 'unclaimed'),
    };
    if (r.signedPrekey !== undefined && r.signedPrekey !== null) {
      const sp = obj(r.signedPrekey, m);
      out.signedPrekey = { id: num(sp.id, m, 'signedPrekey.id'), expiresAt: int(sp.expiresAt, m, 'signedPrekey.expiresAt'), tx: b64(sp.tx, m, 'signedPrekey.tx') };
    }
    if (r.oneTimePrekey !== undefined && r.oneTimePrekey !== null) {
      const op = obj(r.oneTimePrekey, m);
      out.oneTimePrekey = { id: num(op.id, m, 'oneTimePrekey.id'), tx: b64(op.tx, m, 'oneTimePrekey.tx') };
    }
    return out;
  }

  /**
   * An identity's prekey bundle, verified (Go: Client.PrekeyBundle): every
   * key from a PublishPrekeys transaction the identity signed, the signed
   * prekey unexpired by this client's clock (options.now).
   */
  async prekeyBundle(sessionId: string, forClaim: BundleFor = {}): Promise<PrekeyBundle> {
    const chainID = await this.chainID();
    return verifyPrekeyBundle(chainID, sessionId, await this.rawPrekeyBundle(sessionId, forClaim), this.now());
  }

  /**
   * session.getClaims: the claims of sessionId's prekeys in chain order,
   * after a position cursor, so the identity learns of every claim
   * (including in sessions it never reads) and can forget claimed secrets.
   */
  async claims(sessionId: string, after = 0, limit = 0): Promise<ClaimsReply> {
    this.checkPage(after, limit);
    const m = 'getClaims';
    const r = obj(await this.call(m, { sessionId, after, limit }), m);
    if (!Array.isArray(r.claims)) throw mismatch(m, 'claims is not a list');
    if (r.claims.length > (limit > 0 ? limit : 100)) throw mismatch(m, 'more claims than asked for');
    let cursor = after;
    const claims = r.claims.map((x, i): ClaimEntry => {
      const o = obj(x, m);
      const f = `claims[${i}]`;
      const e: ClaimEntry = {
        position: num(o.position, m, `${f}.position`),
        claimer: sid(o.claimer, m, `${f}.claimer`),
        session: cb58(o.session, m, `${f}.session`),
        txID: cb58(o.txID, m, `${f}.txID`),
        signedPrekeyId: num(o.signedPrekeyId, m, `${f}.signedPrekeyId`),
        oneTimePrekeyId: num(o.oneTimePrekeyId ?? 0, m, `${f}.oneTimePrekeyId`),
        timestamp: int(o.timestamp, m, `${f}.timestamp`),
      };
      if (o.oneTimeTx !== undefined) e.oneTimeTx = cb58(o.oneTimeTx, m, `${f}.oneTimeTx`);
      if ((e.oneTimePrekeyId === 0) !== (e.oneTimeTx === undefined)) throw mismatch(m, `${f}: a one-time prekey without its transaction, or the reverse`);
      if (e.claimer === sessionId) throw mismatch(m, `${f}: a claim by the identity itself`);
      if (e.position <= cursor) throw mismatch(m, 'claims out of order or before the cursor');
      cursor = e.position;
      return e;
    });
    if (num(r.next, m, 'next') !== cursor) throw mismatch(m, 'next is not the cursor of the last claim');
    return { claims, next: cursor, more: r.more === true };
  }

  /** session.listSessions: the sessions sessionId created or accepted, in creation order, after a position cursor. */
  async sessions(sessionId: string, after = 0, limit = 0): Promise<SessionsReply> {
    this.checkPage(after, limit);
    const m = 'listSessions';
    const r = obj(await this.call(m, { sessionId, after, limit }), m);
    if (!Array.isArray(r.sessions)) throw mismatch(m, 'sessions is not a list');
    if (r.sessions.length > (limit > 0 ? limit : 100)) throw mismatch(m, 'more sessions than asked for');
    let cursor = after;
    const sessions = r.sessions.map((x, i) => {
      const o = obj(x, m);
      const e = { session: cb58(o.session, m, `sessions[${i}].session`), position: num(o.position, m, 'position') };
      if (e.position <= cursor) throw mismatch(m, 'sessions out of order or before the cursor');
      cursor = e.position;
      return e;
    });
    if (num(r.next, m, 'next') !== cursor) throw mismatch(m, 'next is not the cursor of the last session');
    return { sessions, next: cursor, more: r.more === true };
  }

  /** session.getRequests: pending message requests to sessionId, one per creator, in the order they came, after a position cursor. */
  async requests(sessionId: string, after = 0, limit = 0): Promise<RequestsReply> {
    this.checkPage(after, limit);
    const m = 'getRequests';
    const r = obj(await this.call(m, { sessionId, after, limit }), m);
    if (!Array.isArray(r.requests)) throw mismatch(m, 'requests is not a list');
    if (r.requests.length > (limit > 0 ? limit : 100)) throw mismatch(m, 'more requests than asked for');
    let cursor = after;
    const requests = r.requests.map((x, i): RequestEntry => {
      const o = obj(x, m);
      const e: RequestEntry = {
        creator: sid(o.creator, m, `requests[${i}].creator`),
        session: cb58(o.session, m, `requests[${i}].session`),
        position: num(o.position, m, 'position'),
        status: str(o.status, m, 'status') as RequestEntry['status'],
      };
      if (!['active', 'closed', 'expired', 'unknown'].includes(e.status)) throw mismatch(m, `requests[${i}].status`);
      if (e.creator === sessionId || e.position <= cursor) throw mismatch(m, 'requests out of order, before the cursor, or from the recipient');
      cursor = e.position;
      return e;
    });
    if (num(r.next, m, 'next') !== cursor) throw mismatch(m, 'next is not the cursor of the last request');
    return { requests, next: cursor, more: r.more === true };
  }

  /** session.getContact: sessionId's status for peer. */
  async contact(sessionId: string, peer: string): Promise<ContactStatusName> {
    const m = 'getContact';
    const r = obj(await this.call(m, { sessionId, peer }), m);
    if (r.sessionId !== sessionId || r.peer !== peer) throw mismatch(m, 'sessionId or peer differs from the one asked for');
    if (r.status !== 'none' && r.status !== 'contact' && r.status !== 'blocked') throw mismatch(m, 'status');
    return r.status;
  }

  // --- signing helpers -------------------------------------------------------

  /**
   * Signs `payload` as `identity` with its next nonce and submits it with
   * the write method of its type. One author's submissions through one
   * Client are serialized (the chain needs consecutive nonces); the nonce is
   * fetched once and then counted locally. After a bad-nonce refusal (the
   * key was used elsewhere, or a transaction was dropped) it fetches the
   * nonce again and retries once. The reply is checked against the signed
   * transaction (its ID, and the ID of what it creates).
   */
  submit<N extends TxName>(identity: Identity, type: N, payload: Payloads[N], opts: SubmitOptions<N> = {}): Promise<TxReply & { tx: SignedTx<N> }> {
    let a = this.authors.get(identity.sessionId);
    if (!a) {
      a = { queue: Promise.resolve() };
      this.authors.set(identity.sessionId, a);
    }
    const state = a;
    const run = async (): Promise<TxReply & { tx: SignedTx<N> }> => {
      const chainID = await this.chainID();
      for (let attempt = 0; ; attempt++) {
        if (state.next === undefined) state.next = await this.nonce(identity.sessionId);
        const t = signTx(identity, chainID, state.next, type, payload);
        if (opts.prepare) await opts.prepare(t);
        let r: TxReply;
        try {
          r = await this.write(type, t.bytes);
        } catch (e) {
          if (e instanceof BadNonceError && attempt === 0) {
            state.next = undefined;
            continue;
          }
          if (!(e instanceof RpcError) || e instanceof BadNonceError) state.next = undefined; // unknown whether it was admitted
          throw e;
        }
        state.next++;
        if (r.txID !== t.id || r.author !== t.author || r.nonce !== t.nonce) throw mismatch(type, 'the reply names another transaction');
        if (type === 'createSession' && r.session !== sessionIdFor(chainID, t.author, t.nonce)) throw mismatch(type, 'session ID');
        if (type === 'createChannel' && r.channel !== channelIdFor(chainID, t.author, t.nonce)) throw mismatch(type, 'channel ID');
        return { ...r, tx: t };
      }
    };
    const p = state.queue.then(run, run);
    state.queue = p.catch(() => undefined);
    return p;
  }

  /**
   * Publishes the identity's public keys (registerIdentity), after solving
   * the chain's proof of work (registrationPayload): about a second of one
   * core in Go at the defaults, several in JavaScript. Pass a solver that
   * runs in workers to keep a page responsive, a signal to abort.
   */
  async register(identity: Identity, opts: RegisterOptions = {}) {
    // Under a registration flood the node answers busy (its Argon2id
    // budget) or mempool full (its registration pool): each retry solves
    // again with one more bit of excess, which goes before the flood (Go:
    // Client.Register).
    for (let extra = opts.extra ?? 0, retries = 0; ; extra++, retries++) {
      try {
        return await this.submit(identity, 'registerIdentity', await this.registrationPayload(identity, { ...opts, extra }));
      } catch (e) {
        if (!(e instanceof BusyError || e instanceof MempoolFullError) || retries === MAX_REGISTER_RETRIES || opts.signal?.aborted) throw e;
        await new Promise((r) => setTimeout(r, (retries + 1) * 250));
      }
    }
  }

  /**
   * The identity's RegisterIdentity payload with a solved proof of work
   * for this node's chain, anchored to its last accepted block (the chain
   * takes it while that block is at most registration.anchorWindow blocks
   * old).
   */
  async registrationPayload(identity: Identity, opts: RegisterOptions = {}): Promise<Payloads['registerIdentity']> {
    const [chainID, p, st] = await Promise.all([this.chainID(), this.registrationParams(), this.status()]);
    const anchorHeight = BigInt(st.height);
    const seed = workSeed(chainID, identity.sessionId, anchorHeight, st.lastAcceptedID);
    const solve = opts.solver ?? solveOnThisThread;
    const o: { extra?: number; signal?: AbortSignal; onProgress?: (s: WorkStats) => void } = {};
    if (opts.extra) o.extra = opts.extra;
    if (opts.signal) o.signal = opts.signal;
    if (opts.onProgress) o.onProgress = opts.onProgress;
    const work = await solve(chainID, seed, p, o);
    return { kemPublicKey: identity.kemPublicKey, dsaPublicKey: identity.dsaPublicKey, anchorHeight, work };
  }

  /**
   * Opens a session with participants (Session IDs, not including the
   * author); reply.session is its ID. A participant who does not have the
   * author as a contact receives it as a message request. `claims` holds
   * one claim per handshake the creator starts (claimOf of a verified
   * prekeyBundle fetched with this identity as claimer).
   */
  createSession(identity: Identity, participants: string[], metadata: Uint8Array = new Uint8Array(0), claims?: Claim[]) {
    const p: Payloads['createSession'] = { participants, metadata };
    if (claims) p.claims = claims;
    return this.submit(identity, 'createSession', p);
  }

  /** Posts an opaque ciphertext to a session (sendMessage), with one claim per pair handshake the author starts. */
  send(identity: Identity, session: string, ciphertext: Uint8Array, claims: Claim[] = []) {
    return this.submit(identity, 'sendMessage', { session, claims, ciphertext });
  }

  /** Accepts a session (a message request): its messages reach the inbox from now on, the first few at once. */
  acceptSession(identity: Identity, session: string) {
    return this.submit(identity, 'acceptSession', { session, decision: Decision.Accept });
  }

  /** Declines a message request, or leaves an accepted session: no more inbox entries from it. */
  declineSession(identity: Identity, session: string) {
    return this.submit(identity, 'acceptSession', { session, decision: Decision.Decline });
  }

  /**
   * Sets the identity's status for a peer: ContactStatus.Contact (the
   * peer's sessions skip the request step), Blocked (the peer can no
   * longer include the identity in sessions; its pending request goes) or
   * None. Contact lists are public on chain.
   */
  setContact(identity: Identity, peer: string, status: ContactStatus) {
    return this.submit(identity, 'setContact', { peer, status });
  }

  /**
   * Publishes a signed prekey (null: keep the current one) and one-time
   * prekeys (IDs above every one published before, and above
   * retireThrough), first removing every unclaimed one-time prekey with an
   * ID at or below retireThrough (0: none; a new device retires the old
   * one's keys).
   */
  publishPrekeys(identity: Identity, signed: SignedPrekey | null, oneTime: OneTimePrekey[] = [], retireThrough = 0) {
    return this.submit(identity, 'publishPrekeys', { signed, retireThrough, oneTime });
  }

  /** Sets a channel's join policy and slow mode (seconds between a plain member's posts, 0 to a day; the owner only). */
  setChannelPolicy(identity: Identity, channel: string, joinPolicy: JoinPolicy, slowModeSeconds = 0) {
    return this.submit(identity, 'setChannelPolicy', { channel, joinPolicy, slowModeSeconds });
  }

  /** Sets who may send the identity message requests: RequestPolicy.Anyone, or ContactsOnly (every stranger's createSession listing it is refused). */
  setRequestPolicy(identity: Identity, policy: RequestPolicy) {
    return this.submit(identity, 'setRequestPolicy', { policy });
  }

  /** Applies a moderation action to up to 64 members of a channel (owner or moderators; 6 and 7 the owner only). */
  moderateChannel(identity: Identity, channel: string, action: ModerationAction, members: string[]) {
    return this.submit(identity, 'moderateChannel', { channel, action, members });
  }

  /** Deletes up to 64 posts of a channel by sequence number: any post for the owner and moderators, one's own for anyone. */
  deletePosts(identity: Identity, channel: string, seqs: number[]) {
    return this.submit(identity, 'deletePosts', { channel, seqs });
  }

  /** Closes a session. */
  closeSession(identity: Identity, session: string) {
    return this.submit(identity, 'closeSession', { session });
  }

  /** Creates a channel owned by the identity (open unless told otherwise); reply.channel is its ID. */
  createChannel(identity: Identity, name: string, joinPolicy: JoinPolicy = JoinPolicy.Open) {
    return this.submit(identity, 'createChannel', { name, joinPolicy });
  }

  joinChannel(identity: Identity, channel: string) {
    return this.submit(identity, 'joinChannel', { channel });
  }

  leaveChannel(identity: Identity, channel: string) {
    return this.submit(identity, 'leaveChannel', { channel });
  }

  /** Posts an opaque ciphertext to a channel (postChannel). */
  post(identity: Identity, channel: string, ciphertext: Uint8Array) {
    return this.submit(identity, 'postChannel', { channel, ciphertext });
  }

  /** The checked public identities of a list of Session IDs (the caller's own from its identity). */
  async recipients(identity: Identity, sessionIds: string[]): Promise<PublicIdentity[]> {
    return Promise.all(sessionIds.map((s) => (s === identity.sessionId ? identity.publicIdentity() : this.publicIdentity(s))));
  }

  /**
   * Seals plaintext to every participant of the session (the sender
   * included, so its own history reads back) with messageAD(session) and
   * sends it: what Go's Client.SendSealed and sessionctl send do. The
   * participants come from the creator-signed CreateSession transaction
   * (verifiedSession), their keys from publicIdentity: a node cannot add a
   * reader.
   */
  async sendSealed(identity: Identity, session: string, plaintext: Uint8Array) {
    const s = await this.verifiedSession(session);
    if (!s.participants.includes(identity.sessionId)) throw new SessionError('you are not a participant of this session');
    const env = seal(identity, await this.recipients(identity, s.participants), plaintext, messageAD(session));
    return this.send(identity, session, env);
  }

  /** Seals plaintext to every current member of the channel (the poster included) and posts it, as sessionctl does. */
  async postSealed(identity: Identity, channel: string, plaintext: Uint8Array) {
    const members = await this.channelMembers(channel);
    if (!members.includes(identity.sessionId)) throw new NotMemberError('you are not a member of this channel: join it first');
    const env = seal(identity, await this.recipients(identity, members), plaintext, messageAD(channel));
    return this.post(identity, channel, env);
  }

  /**
   * Polls getTxStatus until the transaction is accepted. Throws
   * TxDroppedError, TxUnknownError (the node keeps not knowing it), the
   * node's error, a TransportError after 5 consecutive transport failures,
   * or WaitTimeoutError.
   */
  async waitAccepted(txID: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<TxStatusReply> {
    const deadline = Date.now() + (options.timeoutMs ?? this.opts.waitTimeoutMs);
    let interval = this.opts.pollIntervalMs;
    let unknown = 0;
    let failures = 0;
    for (;;) {
      if (options.signal?.aborted) throw new WaitTimeoutError(`waiting for ${txID}: aborted`);
      try {
        const st = await this.txStatus(txID);
        failures = 0;
        if (st.status === 'accepted') return st;
        if (st.status === 'dropped') throw new TxDroppedError(txID, st.reason ?? '');
        if (st.status === 'unknown') {
          if (++unknown >= 3) throw new TxUnknownError(txID);
        } else {
          unknown = 0;
        }
      } catch (e) {
        // A transport failure may be a restarting node: ride out a few.
        // A retryable node error (busy, unavailable, disk full, ...): keep
        // polling, as Go's WaitAccepted does. Anything else is final.
        if (e instanceof TransportError) {
          if (++failures >= 5) throw e;
        } else if (!isRetryableRpc(e)) {
          throw e;
        }
      }
      if (Date.now() + interval > deadline) throw new WaitTimeoutError(`transaction ${txID} not accepted in time`);
      await sleep(interval, options.signal);
      interval = Math.min(Math.floor(interval * 1.5), this.opts.maxPollIntervalMs);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

async function readBounded(res: Response, full: string): Promise<string> {
  const len = Number(res.headers.get('content-length') ?? '0');
  if (len > MAX_RESPONSE_SIZE) throw new TransportError(`${full}: response exceeds ${MAX_RESPONSE_SIZE} bytes`);
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      if (n > MAX_RESPONSE_SIZE) {
        await reader.cancel();
        throw new TransportError(`${full}: response exceeds ${MAX_RESPONSE_SIZE} bytes`);
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof TransportError) throw e;
    throw new TransportError(`${full}: reading the response failed`, { cause: e });
  }
  return new TextDecoder().decode(concat(...chunks));
}
