// The JSON-RPC client of a SessionVM node (docs/api.md): one method per
// session.* method, signing helpers that build transactions locally, and
// waiting for acceptance. Everything the node returns is checked before
// use: identity keys must hash to the Session ID asked for, write replies
// must name the transaction that was sent, pages must belong to the target
// asked for and move forward, envelopes must be signed by their author.

import { fromBase64, toBase64, utf8, concat } from './bytes.js';
import {
  BadNonceError,
  IdentityMismatchError,
  InvalidParamsError,
  MempoolFullError,
  ResponseMismatchError,
  RpcError,
  rpcError,
  SenderMismatchError,
  SessionError,
  TransportError,
  TxDroppedError,
  TxUnknownError,
  UnavailableError,
  WaitTimeoutError,
} from './errors.js';
import { channelIdFor, idFromString, isID, sessionIdFor } from './ids.js';
import { type Identity, isSessionId, PublicIdentity, parseSessionId } from './identity.js';
import { MAX_PAGE_SIZE, MAX_RECIPIENTS, MAX_RESPONSE_SIZE } from './limits.js';
import { open, seal } from './seal.js';
import { type Payloads, type SignedTx, signTx, type TxName } from './tx.js';

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

export type TxStatus = 'unknown' | 'pending' | 'accepted' | 'dropped';
export interface TxStatusReply {
  txID: string;
  status: TxStatus;
  height: number;
  index: number;
  reason?: string;
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
}

export interface IdentityReply {
  sessionId: string;
  kemPublicKey: Uint8Array;
  dsaPublicKey: Uint8Array;
  height: number;
  timestamp: number;
}

export type SessionStatus = 'active' | 'closed' | 'expired';
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

export interface ChannelReply {
  channel: string;
  owner: string;
  name: string;
  height: number;
  createdAt: number;
  memberCount: number;
  members: string[];
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
 * checks that the envelope's signer is the message's author.
 */
export function openMessage(identity: Identity, m: Message): { plaintext: Uint8Array; sender: PublicIdentity } {
  const o = open(identity, m.ciphertext, messageAD(m.target));
  if (o.sender.sessionId !== m.author) {
    throw new SenderMismatchError(`envelope signed by ${o.sender.sessionId}, posted by ${m.author}`);
  }
  return { plaintext: o.plaintext, sender: o.sender };
}

const DEFAULTS = { timeoutMs: 30_000, pollIntervalMs: 20, maxPollIntervalMs: 500, waitTimeoutMs: 120_000 };

/** A typed client of one node's JSON-RPC endpoint, e.g. "http://127.0.0.1:9652/rpc". */
export class Client {
  readonly url: string;
  private readonly fetchImpl: typeof fetch;
  private readonly opts: typeof DEFAULTS;
  private reqID = 0;
  private chain: string | undefined;
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
    };
  }

  /**
   * Calls `session.<method>` with params and returns the raw result. Node
   * errors are RpcError subclasses; anything else (unreachable, timeout, not
   * JSON-RPC) is a TransportError.
   */
  async call(method: string, params: Json = {}): Promise<unknown> {
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
      throw new TransportError(`${full}: HTTP ${status}, not a JSON-RPC 2.0 response: ${JSON.stringify(text.slice(0, 200))}`);
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

  /** session.getConfig (remembers the chain ID). */
  async config(): Promise<ConfigReply> {
    const r = obj(await this.call('getConfig'), 'getConfig');
    this.chain = cb58(r.chainID, 'getConfig', 'chainID');
    return r as unknown as ConfigReply;
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

  /** session.getSession, checked: the ID asked for, creator first, Session IDs only, no repeats. */
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
    };
    if (r.closedBy !== undefined) out.closedBy = sid(r.closedBy, m, 'closedBy');
    if (r.closedAt !== undefined) out.closedAt = int(r.closedAt, m, 'closedAt');
    return out;
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
    return {
      channel,
      owner: sid(r.owner, m, 'owner'),
      name: str(r.name, m, 'name'),
      height: num(r.height, m, 'height'),
      createdAt: int(r.createdAt, m, 'createdAt'),
      memberCount: num(r.memberCount, m, 'memberCount'),
      members,
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

  /** session.isChannelMember */
  async isChannelMember(channel: string, sessionId: string): Promise<boolean> {
    const r = obj(await this.call('isChannelMember', { channel, sessionId }), 'isChannelMember');
    if (typeof r.member !== 'boolean') throw mismatch('isChannelMember', 'member');
    return r.member;
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
  submit<N extends TxName>(identity: Identity, type: N, payload: Payloads[N]): Promise<TxReply & { tx: SignedTx<N> }> {
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

  /** Publishes the identity's public keys (registerIdentity). */
  register(identity: Identity) {
    return this.submit(identity, 'registerIdentity', { kemPublicKey: identity.kemPublicKey, dsaPublicKey: identity.dsaPublicKey });
  }

  /** Opens a session with participants (Session IDs, not including the author); reply.session is its ID. */
  createSession(identity: Identity, participants: string[], metadata: Uint8Array = new Uint8Array(0)) {
    return this.submit(identity, 'createSession', { participants, metadata });
  }

  /** Posts an opaque ciphertext to a session (sendMessage). */
  send(identity: Identity, session: string, ciphertext: Uint8Array) {
    return this.submit(identity, 'sendMessage', { session, ciphertext });
  }

  /** Closes a session. */
  closeSession(identity: Identity, session: string) {
    return this.submit(identity, 'closeSession', { session });
  }

  /** Creates a channel owned by the identity; reply.channel is its ID. */
  createChannel(identity: Identity, name: string) {
    return this.submit(identity, 'createChannel', { name });
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
   * sends it: what Go's Client.SendSealed and sessionctl send do.
   */
  async sendSealed(identity: Identity, session: string, plaintext: Uint8Array) {
    const s = await this.session(session);
    if (!s.participants.includes(identity.sessionId)) throw new SessionError('you are not a participant of this session');
    const env = seal(identity, await this.recipients(identity, s.participants), plaintext, messageAD(session));
    return this.send(identity, session, env);
  }

  /** Seals plaintext to every current member of the channel (the poster included) and posts it, as sessionctl does. */
  async postSealed(identity: Identity, channel: string, plaintext: Uint8Array) {
    const members = await this.channelMembers(channel);
    if (!members.includes(identity.sessionId)) throw new SessionError('you are not a member of this channel: join it first');
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
        // A busy or unavailable node: keep polling. Anything else is final.
        if (e instanceof TransportError) {
          if (++failures >= 5) throw e;
        } else if (!(e instanceof MempoolFullError || e instanceof UnavailableError)) {
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
