// The messenger's model: contacts, conversations (on-chain sessions),
// message requests, channels and their history, kept encrypted in the
// browser and brought up to date by polling the node. No DOM here; views
// listen for 'change'.
//
// What the node says is checked where it matters: the participants of a
// session (to whom the app encrypts) come from the creator-signed
// CreateSession transaction (Client.verifiedSession); identity keys from
// Client.publicIdentity; every message is opened and its signer checked
// against its author. Lists (sessions, requests, members, contact
// statuses) are the node's word and only decide what is shown.

import {
  type ChannelRole,
  type Client,
  ContactStatus,
  ForbiddenError,
  fromUtf8,
  type Identity,
  isSessionId,
  JoinPolicy,
  type Message,
  type ModerationAction,
  NotMemberError,
  NotParticipantError,
  openMessage,
  type ParticipantState,
  type SessionCipher,
  SessionClosedError,
  SessionError,
  TransportError,
  UnknownChannelError,
  UnknownIdentityError,
  UntrustedNodeError,
  utf8,
  type WorkSolver,
  type WorkStats,
  DeadTxError,
  InOutboxError,
  type Messenger as ProtocolMessenger,
  NotSentError,
  PrekeyExpiredError,
  StalePrekeyError,
  toHex,
  ResponseMismatchError,
  IdentityMismatchError,
} from '../../src/index.js';
import { blake2b } from '@noble/hashes/blake2.js';
import type { SecureStore } from './vault.js';

export interface Contact {
  sessionId: string;
  name: string;
  /** On chain: status 1, so their sessions skip the request step (public). */
  trusted?: boolean;
  /** On chain: status 2, they cannot include you in sessions. */
  blocked?: boolean;
}

export interface Conversation {
  kind: 'session';
  id: string;
  /** From the creator-signed transaction. */
  participants: string[];
  creator: string;
  lastSeq: number;
  unread: number;
  lastTs: number;
  preview: string;
  /** On the forward-secret protocol (the creator claimed prekeys); otherwise Seal. */
  protocol?: boolean;
  /** Closed by a participant (or found closed or expired when sending). */
  closed?: boolean;
  /** You left it (declined): no more inbox entries. */
  left?: boolean;
  /** Per participant: accepted, pending (a request to them) or left (the node's word, for display). */
  states?: ParticipantState[];
}

/** A message request: a session a stranger opened with you, not answered yet. */
export interface RequestItem {
  session: string;
  creator: string;
  position: number;
  status: string;
  /** The participants from the signed transaction (once verified). */
  participants?: string[];
  /** The creator from the signed transaction (once verified): the one to show, when the node's list names another. */
  verifiedCreator?: string;
  /** The first message, opened and verified. */
  preview?: string;
  previewError?: string;
  ts?: number;
  /** On the forward-secret protocol (the creator claimed prekeys). */
  protocol?: boolean;
}

export interface ChannelInfo {
  kind: 'channel';
  id: string;
  name: string;
  owner: string;
  lastSeq: number;
  unread: number;
  lastTs: number;
  preview: string;
  joinPolicy?: 'open' | 'invite-only';
  role?: ChannelRole | 'none';
}

export type Thread = Conversation | ChannelInfo;

export interface HistoryItem {
  seq: number;
  author: string;
  ts: number;
  txID: string;
  text?: string;
  /** Why the message could not be opened and verified. */
  error?: string;
  /** A digest of the envelope (Seal): the same envelope delivered again is a replay, not a new message. */
  env?: string;
}

export interface ChannelMember {
  sessionId: string;
  role: ChannelRole;
}

export interface ChannelDetails {
  joinPolicy: 'open' | 'invite-only';
  role: ChannelRole | 'none';
  members: ChannelMember[];
  memberCount: number;
  inviteCount: number;
  banCount: number;
}

interface State {
  version: 2;
  /** The chain this state belongs to (the first node's word, then pinned: the client signs for no other). */
  chain?: string;
  contacts: Contact[];
  conversations: Record<string, Conversation>;
  channels: Record<string, ChannelInfo>;
  requests: Record<string, RequestItem>;
  /** Requests hidden here (no transaction: the sender is not told). */
  ignored: string[];
  inboxCursor: number;
  /** listSessions position cursor. */
  sessionsCursor: number;
  registered: boolean;
  /** This device's prekeys were published (a new or restored identity publishes them once registered). */
  prekeysPublished?: boolean;
}

const POLL_MS = 1000;
const MAX_HISTORY = 2000;
/** Pages of requests read per poll (100 each). */
const MAX_REQUEST_PAGES = 5;
/** Request previews fetched per poll. */
const PREVIEWS_PER_POLL = 10;

/** Why a protocol message does not open here, in words. */
function protocolError(e: Error): string {
  const code = (e as { code?: string }).code;
  if (code === 'unknown-prekey' || code === 'not-from-this-device' || code === 'unknown-target') {
    return 'sent before this device had the keys (they are on the device that had them then: forward secrecy)';
  }
  if (code === 'unknown-tree' || code === 'chain-not-started') return 'waiting for an earlier message it depends on';
  return e.message;
}

/** A user-facing error: the message is meant to be shown as it is. */
export class UserError extends Error {}

/** Registration progress for the UI. */
export interface RegisterProgress {
  stage: 'work' | 'sending';
  stats?: WorkStats;
  expectedArgon2?: number;
}

/** What identifies an envelope in the history: 128 bits of BLAKE2b of its bytes. */
function envelopeDigest(ciphertext: Uint8Array): string {
  return toHex(blake2b(ciphertext, { dkLen: 16 }));
}

function emptyState(): State {
  return { version: 2, contacts: [], conversations: {}, channels: {}, requests: {}, ignored: [], inboxCursor: 0, sessionsCursor: 0, registered: false };
}

export class Messenger extends EventTarget {
  state: State = emptyState();
  private histories = new Map<string, HistoryItem[]>();
  /** Messages sent but not yet read back from the chain, by target. */
  readonly pending = new Map<string, { text: string; ts: number }[]>();
  online: boolean | undefined;
  nodeError = '';
  openThread: string | undefined;
  /** Set while a registration runs. */
  registering: RegisterProgress | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;
  private rounds = 0;

  constructor(
    readonly client: Client,
    readonly identity: Identity,
    private readonly store: SecureStore,
    readonly cipher: SessionCipher,
    private readonly openProtocol: () => Promise<ProtocolMessenger>,
    private readonly solver?: WorkSolver,
  ) {
    super();
  }

  private protocolP: Promise<ProtocolMessenger> | undefined;

  /** The forward-secret protocol's client, opened on first use (it asks the node for the chain ID). */
  private protocol(): Promise<ProtocolMessenger> {
    this.protocolP ??= this.openProtocol().catch((e) => {
      this.protocolP = undefined;
      throw e;
    });
    return this.protocolP;
  }

  /** Publishes this device's prekeys once the identity is registered, so others can start forward-secret sessions with it. */
  private async publishPrekeys(): Promise<void> {
    await (await this.protocol()).replenishPrekeys();
    this.state.prekeysPublished = true;
    await this.save();
  }

  /**
   * Whether an identity can be sent to with the protocol: from its
   * verified prekey bundle (the protocol's hasPrekeys), never from the
   * node's word alone, so a node cannot make a new session fall back to
   * Seal (no forward secrecy) for someone whose prekeys this browser
   * verified before.
   */
  private async hasPrekeys(sessionId: string): Promise<boolean> {
    try {
      return await (await this.protocol()).hasPrekeys(sessionId);
    } catch (e) {
      if (e instanceof StalePrekeyError) {
        throw new UserError(
          `The node says ${this.nameOf(sessionId)} has no prekeys, but this browser verified their prekeys before: the node is not trustworthy (it would make the session fall back to Seal, without forward secrecy). Nothing was sent.`,
        );
      }
      if (e instanceof PrekeyExpiredError) {
        throw new UserError(`${this.nameOf(sessionId)}'s prekeys have expired: they cannot receive new sessions until they open their messenger again.`);
      }
      throw e;
    }
  }

  get me(): string {
    return this.identity.sessionId;
  }

  private changed(): void {
    this.dispatchEvent(new Event('change'));
  }

  async load(): Promise<void> {
    const s = await this.store.get<State | (Omit<State, 'version'> & { version: 1 })>('state');
    if (s && s.version === 2) this.state = s;
    else if (s && s.version === 1) this.state = { ...emptyState(), ...s, version: 2 }; // before requests and listSessions
    if (this.state.chain) this.client.pinChain(this.state.chain);
  }

  private async save(): Promise<void> {
    await this.store.put('state', this.state);
  }

  async history(target: string): Promise<HistoryItem[]> {
    let h = this.histories.get(target);
    if (!h) {
      h = (await this.store.get<HistoryItem[]>('hist:' + target)) ?? [];
      this.histories.set(target, h);
    }
    return h;
  }

  contact(sessionId: string): Contact | undefined {
    return this.state.contacts.find((x) => x.sessionId === sessionId);
  }

  nameOf(sessionId: string): string {
    if (sessionId === this.me) return 'You';
    const c = this.contact(sessionId);
    return c && !c.blocked ? c.name : `${sessionId.slice(0, 8)}…${sessionId.slice(-4)}`;
  }

  title(t: Thread): string {
    if (t.kind === 'channel') return `# ${t.name}`;
    const others = t.participants.filter((p) => p !== this.me);
    return others.map((p) => this.nameOf(p)).join(', ') || 'Just you';
  }

  threads(): Thread[] {
    return [...Object.values(this.state.conversations), ...Object.values(this.state.channels)].sort((a, b) => b.lastTs - a.lastTs);
  }

  thread(id: string): Thread | undefined {
    return this.state.conversations[id] ?? this.state.channels[id];
  }

  totalUnread(): number {
    return this.threads().reduce((n, t) => n + t.unread, 0);
  }

  /** Requests not ignored, newest first. */
  requests(): RequestItem[] {
    const ignored = new Set(this.state.ignored);
    return Object.values(this.state.requests)
      .filter((r) => !ignored.has(r.session))
      .sort((a, b) => b.position - a.position);
  }

  // --- node ------------------------------------------------------------------

  private noteOnline(): void {
    if (this.online !== true) {
      this.online = true;
      this.nodeError = '';
      this.changed();
    }
  }

  private noteError(e: unknown): void {
    if (e instanceof TransportError) {
      this.online = false;
      this.nodeError = `Cannot reach the node at ${this.client.url}. Retrying…`;
      this.changed();
    } else if (e instanceof ResponseMismatchError || e instanceof IdentityMismatchError) {
      // A lying node is shown, not only logged: what it said was not used.
      this.online = false;
      this.nodeError = `The node at ${this.client.url} is not trustworthy: what it returned does not match what its owners signed, and was not used. (${e.message})`;
      this.changed();
    } else {
      // Retried at the next poll; kept in the console, where a developer looks.
      console.warn('sync:', e);
    }
  }

  /** Asks the chain whether this identity is registered, and the contact statuses it holds. */
  async checkRegistered(): Promise<boolean> {
    try {
      await this.client.publicIdentity(this.me);
      this.state.registered = true;
    } catch (e) {
      if (!(e instanceof UnknownIdentityError)) {
        this.noteError(e);
        return this.state.registered;
      }
      this.state.registered = false;
    }
    this.noteOnline();
    if (this.state.registered) await this.refreshContactStatuses().catch((e) => this.noteError(e));
    await this.save();
    this.changed();
    return this.state.registered;
  }

  /** Brings the trusted and blocked flags of (up to 200) contacts in line with the chain. */
  private async refreshContactStatuses(): Promise<void> {
    for (const c of this.state.contacts.slice(0, 200)) {
      const st = await this.client.contact(this.me, c.sessionId);
      c.trusted = st === 'contact';
      c.blocked = st === 'blocked';
    }
  }

  /**
   * Publishes the identity's keys, after the chain's proof of work (in
   * workers when the app has them; several seconds at the defaults).
   */
  async register(signal?: AbortSignal): Promise<void> {
    const p = await this.client.registrationParams();
    this.registering = { stage: 'work', stats: { prefilter: 0, argon2: 0 }, expectedArgon2: 2 ** p.workBits };
    this.changed();
    try {
      const opts: Parameters<Client['register']>[1] = {
        onProgress: (stats) => {
          this.registering = { stage: 'work', stats, expectedArgon2: 2 ** p.workBits };
          this.changed();
        },
      };
      if (this.solver) opts.solver = this.solver;
      if (signal) opts.signal = signal;
      const payload = await this.client.registrationPayload(this.identity, opts);
      this.registering = { stage: 'sending' };
      this.changed();
      const r = await this.client.submit(this.identity, 'registerIdentity', payload);
      await this.client.waitAccepted(r.txID);
      this.state.registered = true;
      await this.save();
      await this.publishPrekeys();
    } finally {
      this.registering = undefined;
      this.changed();
    }
  }

  // --- contacts ----------------------------------------------------------------

  /**
   * Adds (or renames) a contact after checking the chain knows it. With
   * trust, also marks it a contact on chain, so its sessions reach you
   * without a request (contact lists are public on chain).
   */
  async addContact(sessionId: string, name: string, trust = false): Promise<Contact> {
    sessionId = sessionId.trim().toLowerCase();
    name = name.trim();
    if (!isSessionId(sessionId)) throw new UserError('That is not a Session ID: it starts with 07 and has 66 characters.');
    if (sessionId === this.me) throw new UserError('That is your own Session ID.');
    try {
      await this.client.publicIdentity(sessionId); // checked: the keys hash to the ID
    } catch (e) {
      if (e instanceof UnknownIdentityError) throw new UserError('No one with this Session ID is registered on this chain.');
      throw e;
    }
    let contact = this.contact(sessionId);
    if (!contact) {
      contact = { sessionId, name: name || `${sessionId.slice(0, 8)}…` };
      this.state.contacts.push(contact);
    } else if (name) {
      contact.name = name;
    }
    if (trust && !contact.trusted) await this.setStatus(contact, ContactStatus.Contact);
    this.state.contacts.sort((a, b) => a.name.localeCompare(b.name));
    await this.save();
    this.changed();
    return contact;
  }

  private async setStatus(c: Contact, status: ContactStatus): Promise<void> {
    const r = await this.client.setContact(this.identity, c.sessionId, status);
    await this.client.waitAccepted(r.txID);
    c.trusted = status === ContactStatus.Contact;
    c.blocked = status === ContactStatus.Blocked;
  }

  /** Marks a contact trusted (status 1) or not (status 0) on chain. */
  async setTrusted(sessionId: string, trusted: boolean): Promise<void> {
    const c = this.contact(sessionId);
    if (!c) throw new UserError('Unknown contact.');
    await this.setStatus(c, trusted ? ContactStatus.Contact : ContactStatus.None);
    await this.save();
    this.changed();
  }

  /**
   * Blocks a peer on chain: they can no longer include you in a session
   * (nor claim your prekeys), and their pending request goes. Sessions you
   * already accepted with them stay: leave those.
   */
  async block(sessionId: string): Promise<void> {
    let c = this.contact(sessionId);
    if (!c) {
      c = { sessionId, name: `${sessionId.slice(0, 8)}…` };
      this.state.contacts.push(c);
    }
    await this.setStatus(c, ContactStatus.Blocked);
    for (const r of Object.values(this.state.requests)) if (r.creator === sessionId) delete this.state.requests[r.session];
    await this.save();
    this.changed();
  }

  async unblock(sessionId: string): Promise<void> {
    const c = this.contact(sessionId);
    if (!c) return;
    await this.setStatus(c, ContactStatus.None);
    await this.save();
    this.changed();
  }

  // --- sessions ------------------------------------------------------------------

  async startSession(participants: string[]): Promise<string> {
    if (participants.length === 0) throw new UserError('Pick at least one contact.');
    for (const p of participants) {
      try {
        await this.client.publicIdentity(p);
      } catch (e) {
        if (e instanceof UnknownIdentityError) throw new UserError(`${this.nameOf(p)} is not registered on this chain.`);
        throw e;
      }
    }
    // The forward-secret protocol when everyone has published prekeys; Seal otherwise.
    const protocol = (await Promise.all(participants.map((p) => this.hasPrekeys(p)))).every(Boolean);
    let id: string;
    try {
      if (protocol) {
        id = (await (await this.protocol()).createSession(participants)).session;
      } else {
        const r = await this.client.createSession(this.identity, participants);
        await this.client.waitAccepted(r.txID);
        id = r.session!;
      }
    } catch (e) {
      if (e instanceof ForbiddenError) throw new UserError('Someone in this list has blocked you: the chain refused the session.');
      throw e;
    }
    this.state.conversations[id] = {
      kind: 'session',
      id,
      participants: [this.me, ...participants],
      creator: this.me,
      lastSeq: 0,
      unread: 0,
      lastTs: Date.now(),
      preview: '',
      protocol,
    };
    await this.save();
    this.changed();
    void this.refreshStatus(this.state.conversations[id]!).catch((e) => this.noteError(e));
    return id;
  }

  /**
   * Learns a session: its participants come from the creator-signed
   * transaction and must include us. A node that lies about them is not
   * obeyed (the session is skipped).
   */
  private async discover(id: string): Promise<Conversation | undefined> {
    let v;
    try {
      v = await this.client.verifiedSession(id);
    } catch (e) {
      if (e instanceof UntrustedNodeError) {
        console.warn(`session ${id}: the node's reply does not match the signed transaction`, e);
        return undefined;
      }
      if (e instanceof SessionError && !(e instanceof TransportError)) return undefined;
      throw e;
    }
    if (!v.participants.includes(this.me)) return undefined;
    const c: Conversation = {
      kind: 'session',
      id,
      participants: v.participants,
      creator: v.creator,
      lastSeq: 0,
      unread: 0,
      lastTs: v.reply.createdAt,
      preview: '',
      states: v.reply.participantStates,
      protocol: v.claims.length > 0,
    };
    if (v.reply.status !== 'active') c.closed = true;
    this.state.conversations[id] = c;
    return c;
  }

  /** Accepts a message request: the session joins your conversations, its first messages your inbox. */
  async acceptRequest(session: string): Promise<string> {
    // The node's list named the session: consent goes only to one whose creator-signed participants include you.
    const v = await this.verifiedRequest(session);
    if (!v.participants.includes(this.me)) throw new UserError('The node lists this request for you, but the session its creator signed does not include you: not accepted.');
    const r = await this.client.acceptSession(this.identity, session);
    await this.client.waitAccepted(r.txID);
    delete this.state.requests[session];
    const c = this.state.conversations[session] ?? (await this.discover(session));
    if (c) c.left = false;
    await this.save();
    this.changed();
    if (c) await this.syncThread(c);
    return session;
  }

  /** Hides a request here; nothing goes on chain, so its sender is not told. */
  async ignoreRequest(session: string): Promise<void> {
    if (!this.state.ignored.includes(session)) this.state.ignored.push(session);
    await this.save();
    this.changed();
  }

  /** Blocks a request's sender: its request goes, and it cannot write to you again. */
  async blockRequest(session: string): Promise<void> {
    const r = this.state.requests[session];
    if (!r) return;
    // Block who signed the session, never whom the node's list names (it could name one of your contacts).
    const v = await this.verifiedRequest(session);
    if (v.creator !== r.creator) {
      throw new UserError(`The node names ${this.nameOf(r.creator)} as this request's sender, but ${this.nameOf(v.creator)} created the session: nothing blocked.`);
    }
    await this.block(v.creator);
  }

  /** A request's session as its creator signed it; the request remembers who that is. */
  private async verifiedRequest(session: string): Promise<{ creator: string; participants: string[] }> {
    const v = await this.client.verifiedSession(session);
    const r = this.state.requests[session];
    if (r) r.verifiedCreator = v.creator;
    return v;
  }

  /** Leaves a session (declines it): no more of its messages reach your inbox. */
  async leaveSession(id: string): Promise<void> {
    const c = this.state.conversations[id];
    if (!c) return;
    const r = await this.client.declineSession(this.identity, id);
    await this.client.waitAccepted(r.txID);
    c.left = true;
    await this.save();
    this.changed();
  }

  /** Closes a session for every participant (closeSession). */
  async closeSession(id: string): Promise<void> {
    const c = this.state.conversations[id];
    if (!c) return;
    const r = await this.client.closeSession(this.identity, id);
    await this.client.waitAccepted(r.txID);
    c.closed = true;
    await this.save();
    this.changed();
  }

  // --- channels ------------------------------------------------------------------

  async createChannel(name: string, joinPolicy: JoinPolicy = JoinPolicy.Open): Promise<string> {
    name = name.trim();
    if (!name) throw new UserError('Give the channel a name.');
    if (utf8(name).length > 64) throw new UserError('Channel names are at most 64 bytes.');
    const r = await this.client.createChannel(this.identity, name, joinPolicy);
    await this.client.waitAccepted(r.txID);
    const id = r.channel!;
    this.state.channels[id] = {
      kind: 'channel',
      id,
      name,
      owner: this.me,
      lastSeq: 0,
      unread: 0,
      lastTs: Date.now(),
      preview: '',
      joinPolicy: joinPolicy === JoinPolicy.InviteOnly ? 'invite-only' : 'open',
      role: 'owner',
    };
    await this.save();
    this.changed();
    return id;
  }

  async joinChannel(id: string): Promise<string> {
    id = id.trim();
    let info;
    try {
      info = await this.client.channel(id);
    } catch (e) {
      if (e instanceof UnknownChannelError) throw new UserError('There is no channel with this ID on this chain.');
      if (e instanceof SessionError && !(e instanceof TransportError)) throw new UserError('That is not a channel ID.');
      throw e;
    }
    const m = await this.client.channelMembership(id, this.me);
    if (m.banned) throw new UserError('You are banned from this channel.');
    if (!m.member) {
      if (info.joinPolicy === 'invite-only' && !m.invited) {
        throw new UserError('This channel is invite-only: ask its owner or a moderator to invite you.');
      }
      try {
        const r = await this.client.joinChannel(this.identity, id);
        await this.client.waitAccepted(r.txID);
      } catch (e) {
        if (e instanceof ForbiddenError) throw new UserError('The chain refused the join: you are not invited, or you are banned.');
        throw e;
      }
    }
    this.state.channels[id] = {
      kind: 'channel',
      id,
      name: info.name,
      owner: info.owner,
      lastSeq: 0,
      unread: 0,
      lastTs: Date.now(),
      preview: '',
      joinPolicy: info.joinPolicy,
      role: m.member ? m.role : 'member',
    };
    await this.save();
    this.changed();
    return id;
  }

  /** Leaves a channel (not its owner: the chain refuses that) and drops it from the list. */
  async leaveChannel(id: string): Promise<void> {
    const ch = this.state.channels[id];
    if (!ch) return;
    if (ch.owner === this.me) throw new UserError('The owner cannot leave its channel.');
    const r = await this.client.leaveChannel(this.identity, id);
    await this.client.waitAccepted(r.txID);
    delete this.state.channels[id];
    await this.save();
    this.changed();
  }

  /** A channel's policy, your role and its members with theirs (at most 1,024: the chain's bound). */
  async channelDetails(id: string): Promise<ChannelDetails> {
    const members: ChannelMember[] = [];
    let after: string | undefined;
    let first;
    for (let pages = 0; pages < 3; pages++) {
      const page = await this.client.channel(id, after, 1000);
      first ??= page;
      page.members.forEach((m, i) => members.push({ sessionId: m, role: page.memberRoles[i]! }));
      if (page.members.length === 0 || members.length >= page.memberCount) break;
      after = page.members[page.members.length - 1];
    }
    const role = members.find((m) => m.sessionId === this.me)?.role ?? 'none';
    const ch = this.state.channels[id];
    if (ch && (ch.role !== role || ch.joinPolicy !== first!.joinPolicy)) {
      ch.role = role;
      ch.joinPolicy = first!.joinPolicy;
      await this.save();
      this.changed();
    }
    return { joinPolicy: first!.joinPolicy, role, members, memberCount: first!.memberCount, inviteCount: first!.inviteCount, banCount: first!.banCount };
  }

  /** Applies a moderation action (invite, remove, ban, unban, make or revoke moderator) to members. */
  async moderate(id: string, action: ModerationAction, members: string[]): Promise<void> {
    members = members.map((m) => m.trim().toLowerCase());
    for (const m of members) if (!isSessionId(m)) throw new UserError('That is not a Session ID: it starts with 07 and has 66 characters.');
    try {
      const r = await this.client.moderateChannel(this.identity, id, action, members);
      await this.client.waitAccepted(r.txID);
    } catch (e) {
      if (e instanceof ForbiddenError) throw new UserError('Only the owner and moderators may do that (and only the owner acts on moderators).');
      if (e instanceof UnknownIdentityError) throw new UserError('No one with this Session ID is registered on this chain.');
      throw e;
    }
    this.changed();
  }

  /** Sets a channel's join policy (the owner only). */
  async setChannelPolicy(id: string, policy: JoinPolicy): Promise<void> {
    const r = await this.client.setChannelPolicy(this.identity, id, policy);
    await this.client.waitAccepted(r.txID);
    const ch = this.state.channels[id];
    if (ch) ch.joinPolicy = policy === JoinPolicy.InviteOnly ? 'invite-only' : 'open';
    await this.save();
    this.changed();
  }

  /** Deletes a post (moderators any, members their own) and drops it from the history here. */
  async deletePost(id: string, seq: number): Promise<void> {
    try {
      const r = await this.client.deletePosts(this.identity, id, [seq]);
      await this.client.waitAccepted(r.txID);
    } catch (e) {
      if (e instanceof ForbiddenError) throw new UserError('Only moderators may delete the posts of others.');
      throw e;
    }
    await this.dropLocal(id, new Set([seq]));
  }

  private async dropLocal(id: string, seqs: Set<number>): Promise<void> {
    const hist = await this.history(id);
    const kept = hist.filter((x) => !seqs.has(x.seq));
    if (kept.length === hist.length) return;
    this.histories.set(id, kept);
    await this.store.put('hist:' + id, kept);
    this.changed();
  }

  /** Drops posts that are gone from the chain (deleted by a moderator or their author) from the history here. */
  async reconcileChannel(id: string): Promise<void> {
    const hist = await this.history(id);
    if (hist.length === 0) return;
    const present = new Set<number>();
    let after = hist[0]!.seq - 1;
    let last = after;
    for (let pages = 0; pages < 10; pages++) {
      const page = await this.client.channelMessages(id, after, 1000);
      for (const m of page.messages) present.add(m.seq);
      last = page.next;
      if (!page.more) {
        last = Number.MAX_SAFE_INTEGER;
        break;
      }
      after = page.next;
    }
    const gone = new Set(hist.filter((x) => x.seq <= last && !present.has(x.seq)).map((x) => x.seq));
    if (gone.size) await this.dropLocal(id, gone);
  }

  /** Wipes the storage key from memory. */
  close(): void {
    this.stop();
    this.store.close();
  }

  // --- sending ------------------------------------------------------------------

  async send(target: string, text: string): Promise<void> {
    const t = this.thread(target);
    if (!t) throw new UserError('Unknown conversation.');
    if (!text.trim()) return;
    const list = this.pending.get(target) ?? [];
    const item = { text, ts: Date.now() };
    list.push(item);
    this.pending.set(target, list);
    this.changed();
    try {
      if (t.kind === 'session' && t.protocol) {
        await (await this.protocol()).send(target, utf8(text)); // waits for the blocks
      } else {
        const r =
          t.kind === 'session'
            ? await this.cipher.send(this.client, this.identity, target, utf8(text))
            : await this.client.postSealed(this.identity, target, utf8(text));
        await this.client.waitAccepted(r.txID);
      }
      if (t.kind === 'session' && t.left) t.left = false; // sending accepts again
      await this.syncThread(t);
    } catch (err) {
      // The protocol reports the chain's refusal as the cause of NotSentError.
      const e = err instanceof NotSentError && err.cause instanceof DeadTxError && err.cause.cause ? err.cause.cause : err;
      if (e instanceof InOutboxError) throw new UserError('The node did not take the message yet: it is kept, and goes with your next message.');
      if (e instanceof SessionClosedError && t.kind === 'session') {
        t.closed = true;
        await this.save();
        throw new UserError('This session is closed or has expired: start a new one.');
      }
      if ((e instanceof NotParticipantError || e instanceof NotMemberError) && t.kind === 'channel') {
        throw new UserError('You are no longer a member of this channel (removed or banned).');
      }
      if (e instanceof UntrustedNodeError) {
        throw new UserError('The node returned a participant list that does not match what the session\'s creator signed. Nothing was sent.');
      }
      throw e;
    } finally {
      const l = this.pending.get(target) ?? [];
      l.splice(l.indexOf(item), 1);
      this.changed();
    }
  }

  // --- reading ------------------------------------------------------------------

  setOpen(target: string | undefined): void {
    this.openThread = target;
    const t = target ? this.thread(target) : undefined;
    if (t && t.unread) {
      t.unread = 0;
      void this.save();
    }
    this.changed();
    if (t) void this.syncThread(t).catch((e) => this.noteError(e));
    if (t?.kind === 'session' && !t.closed) void this.refreshStatus(t).catch((e) => this.noteError(e));
    if (t?.kind === 'channel') void this.reconcileChannel(t.id).catch((e) => this.noteError(e));
  }

  /** Learns whether a session was closed or expired since, and who accepted it. */
  private async refreshStatus(c: Conversation): Promise<void> {
    const s = await this.client.session(c.id);
    c.states = s.participantStates;
    if (s.status !== 'active') c.closed = true;
    await this.save();
    this.changed();
  }

  /** Opens a Seal message of a session (its participants from the creator-signed transaction) or a channel. */
  private async openOne(kind: Thread['kind'], m: Message, participants?: readonly string[]): Promise<HistoryItem> {
    const item: HistoryItem = { seq: m.seq, author: m.author, ts: m.timestamp, txID: m.txID, env: envelopeDigest(m.ciphertext) };
    try {
      const o = kind === 'session' ? await this.cipher.open(this.client, this.identity, m, participants) : { plaintext: openMessage(this.identity, m).plaintext };
      item.text = fromUtf8(o.plaintext);
    } catch (e) {
      item.error = e instanceof Error ? e.message : String(e);
    }
    return item;
  }

  private locks = new Map<string, Promise<unknown>>();

  /** Fetches a thread's new messages, opens and stores them (one fetch per thread at a time). Returns how many were new. */
  syncThread(t: Thread): Promise<number> {
    const prev = this.locks.get(t.id) ?? Promise.resolve();
    const p = prev.catch(() => undefined).then(() => this.syncThreadNow(t));
    this.locks.set(t.id, p);
    return p;
  }

  private async syncThreadNow(t: Thread): Promise<number> {
    if (t.kind === 'session' && t.protocol) return this.syncProtocolThread(t);
    const hist = await this.history(t.id);
    let added = 0;
    for (let pages = 0; pages < 20; pages++) {
      const page = t.kind === 'session' ? await this.client.messages(t.id, t.lastSeq, 200) : await this.client.channelMessages(t.id, t.lastSeq, 200);
      for (const m of page.messages) {
        t.lastSeq = m.seq;
        added++;
        const env = envelopeDigest(m.ciphertext);
        if (hist.some((x) => x.env === env)) {
          // Seal has no replay protection of its own: a node listing an
          // envelope again (at a later position) is not a new message.
          hist.push({ seq: m.seq, author: m.author, ts: m.timestamp, txID: m.txID, env, error: 'the node delivered an earlier message again (a replay): not shown twice' });
          continue;
        }
        const item = await this.openOne(t.kind, m, t.kind === 'session' ? t.participants : undefined);
        hist.push(item);
        t.lastTs = Math.max(t.lastTs, m.timestamp);
        t.preview = item.text ?? '(cannot open)';
        if (t.kind === 'channel' && m.author !== this.me && this.openThread !== t.id) t.unread++;
      }
      if (!page.more) break;
    }
    if (added) {
      if (hist.length > MAX_HISTORY) hist.splice(0, hist.length - MAX_HISTORY);
      await this.store.put('hist:' + t.id, hist);
      await this.save();
      this.changed();
    }
    return added;
  }

  /**
   * A session on the protocol: the protocol's client reads it in chain
   * order, each delivery checked against its signed transaction; control
   * messages (setup, ratchet) carry nothing to show, and are not unread.
   */
  private async syncProtocolThread(t: Conversation): Promise<number> {
    const p = await this.protocol();
    const hist = await this.history(t.id);
    let added = 0;
    let moved = false;
    for (let pages = 0; pages < 20; pages++) {
      const page = await p.read(t.id, t.lastSeq, 200);
      for (const m of page.messages) {
        const item: HistoryItem = { seq: m.seq, author: m.sender, ts: m.timestamp, txID: m.txID };
        if (m.error) item.error = protocolError(m.error);
        else item.text = fromUtf8(m.text);
        hist.push(item);
        // What the thread shows (a text, or a message that failed to open) from someone else.
        if (!m.fromSelf && m.sender !== this.me && this.openThread !== t.id) t.unread++;
        t.lastTs = Math.max(t.lastTs, m.timestamp);
        t.preview = item.text ?? '(cannot open)';
        added++;
      }
      if (page.next > t.lastSeq) {
        t.lastSeq = page.next;
        moved = true;
      }
      if (!page.more) break;
    }
    if (added) {
      if (hist.length > MAX_HISTORY) hist.splice(0, hist.length - MAX_HISTORY);
      await this.store.put('hist:' + t.id, hist);
    }
    if (added || moved) {
      await this.save();
      this.changed();
    }
    return added;
  }

  /** New sessions you created or accepted (listSessions), so a session you were added to shows before anyone writes. */
  private async syncSessions(): Promise<boolean> {
    let found = false;
    for (let pages = 0; pages < 20; pages++) {
      const page = await this.client.sessions(this.me, this.state.sessionsCursor, 200);
      for (const s of page.sessions) {
        delete this.state.requests[s.session];
        if (!this.state.conversations[s.session] && (await this.discover(s.session))) found = true;
      }
      this.state.sessionsCursor = page.next;
      if (!page.more) break;
    }
    return found;
  }

  /** The pending requests (the node's list), with a verified preview of each one's first message. */
  private async syncRequests(): Promise<boolean> {
    const fresh: Record<string, RequestItem> = {};
    let after = 0;
    for (let pages = 0; pages < MAX_REQUEST_PAGES; pages++) {
      const page = await this.client.requests(this.me, after, 100);
      for (const r of page.requests) {
        if (this.state.conversations[r.session]) continue; // answered here already
        const old = this.state.requests[r.session];
        fresh[r.session] = { ...old, session: r.session, creator: r.creator, position: r.position, status: r.status };
      }
      if (!page.more) break;
      after = page.next;
    }
    const before = JSON.stringify(this.state.requests);
    this.state.requests = fresh;
    let budget = PREVIEWS_PER_POLL;
    const ignored = new Set(this.state.ignored);
    for (const r of Object.values(fresh)) {
      if (budget <= 0) break;
      if (ignored.has(r.session) || r.preview !== undefined || r.previewError !== undefined) continue; // (no message yet: look again)
      budget--;
      await this.preview(r);
    }
    return JSON.stringify(this.state.requests) !== before;
  }

  private async preview(r: RequestItem): Promise<void> {
    try {
      if (!r.participants) {
        const v = await this.client.verifiedSession(r.session);
        r.participants = v.participants;
        r.verifiedCreator = v.creator;
        r.ts = v.reply.createdAt;
        if (v.creator !== r.creator || !v.participants.includes(this.me)) {
          r.previewError = 'The node lists this request for you, but the signed session does not.';
          return;
        }
      }
      if (r.protocol === undefined) r.protocol = (await this.client.verifiedSession(r.session)).claims.length > 0;
      if (r.protocol) {
        // The protocol reads the session in order; the first message with text is the preview.
        // Nothing is sent while previewing: a ratchet message would accept the request and tell its sender it was read.
        const page = await (await this.protocol()).read(r.session, 0, 20, { send: false });
        const m = page.messages[0];
        if (!m) return;
        r.ts = m.timestamp;
        if (m.error) r.previewError = m.error.message;
        else r.preview = fromUtf8(m.text);
        return;
      }
      const page = await this.client.messages(r.session, 0, 1);
      const m = page.messages[0];
      if (!m) return;
      const item = await this.openOne('session', m, r.participants);
      r.ts = m.timestamp;
      if (item.text !== undefined) r.preview = item.text;
      else r.previewError = item.error ?? 'cannot open';
    } catch (e) {
      if (e instanceof TransportError) throw e;
      r.previewError = e instanceof Error ? e.message : String(e);
      r.participants ??= [];
    }
  }

  /** One round: new sessions, requests, the inbox (unread counts), then every thread that moved or is open. */
  async pollOnce(): Promise<void> {
    const touched = new Set<string>();
    let moved = false;
    try {
      if (!this.state.chain) {
        this.state.chain = await this.client.chainID();
        await this.save();
      }
      if (!this.state.registered && !(await this.checkRegistered())) return;
      if (!this.state.prekeysPublished) await this.publishPrekeys();
      moved = (await this.syncSessions()) || moved;
      moved = (await this.syncRequests()) || moved;
      for (let pages = 0; pages < 20; pages++) {
        const page = await this.client.inbox(this.me, this.state.inboxCursor, 200);
        for (const m of page.messages) {
          const c = this.state.conversations[m.target] ?? (await this.discover(m.target));
          if (!c) continue;
          touched.add(c.id);
          // Seal: every message is one a person reads. The protocol's
          // sessions count in syncProtocolThread, which sees which messages
          // carry text (setup and ratchet messages carry none).
          if (!c.protocol && this.openThread !== c.id) c.unread++;
        }
        this.state.inboxCursor = page.next;
        if (!page.more) break;
      }
      if (touched.size || moved) await this.save();
      for (const t of this.threads()) {
        if (touched.has(t.id) || this.openThread === t.id || t.kind === 'channel') await this.syncThread(t);
      }
      // Who accepted: for the open session while someone has not (every few rounds), and on new messages.
      this.rounds++;
      for (const t of Object.values(this.state.conversations)) {
        if (t.closed || !t.states?.includes('pending')) continue;
        if (touched.has(t.id) || (this.openThread === t.id && this.rounds % 3 === 0)) await this.refreshStatus(t);
      }
      this.noteOnline();
    } catch (e) {
      if (e instanceof UnknownIdentityError) {
        // Not registered (yet): nothing to read.
        this.noteOnline();
        return;
      }
      this.noteError(e);
      if (!(e instanceof TransportError)) throw e;
    } finally {
      if (touched.size || moved) this.changed();
    }
  }

  start(): void {
    this.stopped = false;
    const loop = async () => {
      if (this.stopped) return;
      this.polling = this.pollOnce().catch((e) => console.warn('poll', e));
      await this.polling;
      if (!this.stopped) this.timer = setTimeout(loop, POLL_MS);
    };
    void loop();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
