// The messenger's model: contacts, conversations (on-chain sessions),
// channels and their history, kept encrypted in the browser and brought up
// to date by polling the node. No DOM here; views listen for 'change'.

import {
  type Client,
  fromUtf8,
  type Identity,
  isSessionId,
  type Message,
  type SessionCipher,
  SessionError,
  TransportError,
  UnknownIdentityError,
  UnknownChannelError,
  utf8,
  openMessage,
  SessionClosedError,
} from '../../src/index.js';
import type { SecureStore } from './vault.js';

export interface Contact {
  sessionId: string;
  name: string;
}

export interface Conversation {
  kind: 'session';
  id: string;
  participants: string[];
  creator: string;
  lastSeq: number;
  unread: number;
  lastTs: number;
  preview: string;
  /** Closed by a participant (or found closed or expired when sending). */
  closed?: boolean;
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
}

interface State {
  version: 1;
  contacts: Contact[];
  conversations: Record<string, Conversation>;
  channels: Record<string, ChannelInfo>;
  inboxCursor: number;
  registered: boolean;
}

const POLL_MS = 1000;
const MAX_HISTORY = 2000;

/** A user-facing error: the message is meant to be shown as it is. */
export class UserError extends Error {}

export class Messenger extends EventTarget {
  state: State = { version: 1, contacts: [], conversations: {}, channels: {}, inboxCursor: 0, registered: false };
  private histories = new Map<string, HistoryItem[]>();
  /** Messages sent but not yet read back from the chain, by target. */
  readonly pending = new Map<string, { text: string; ts: number }[]>();
  online: boolean | undefined;
  nodeError = '';
  openThread: string | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private polling: Promise<void> | undefined;
  private stopped = false;

  constructor(
    readonly client: Client,
    readonly identity: Identity,
    private readonly store: SecureStore,
    readonly cipher: SessionCipher,
  ) {
    super();
  }

  get me(): string {
    return this.identity.sessionId;
  }

  private changed(): void {
    this.dispatchEvent(new Event('change'));
  }

  async load(): Promise<void> {
    const s = await this.store.get<State>('state');
    if (s && s.version === 1) this.state = s;
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

  nameOf(sessionId: string): string {
    if (sessionId === this.me) return 'You';
    const c = this.state.contacts.find((x) => x.sessionId === sessionId);
    return c ? c.name : `${sessionId.slice(0, 8)}…${sessionId.slice(-4)}`;
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
    }
  }

  /** Asks the chain whether this identity is registered. */
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
    await this.save();
    this.changed();
    return this.state.registered;
  }

  /** Publishes the identity's keys. (The proof of work of a later chain version will run in the worker.) */
  async register(): Promise<void> {
    const r = await this.client.register(this.identity);
    await this.client.waitAccepted(r.txID);
    this.state.registered = true;
    await this.save();
    this.changed();
  }

  // --- contacts ----------------------------------------------------------------

  async addContact(sessionId: string, name: string): Promise<Contact> {
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
    const existing = this.state.contacts.find((c) => c.sessionId === sessionId);
    const contact = existing ?? { sessionId, name: name || `${sessionId.slice(0, 8)}…` };
    if (existing && name) existing.name = name;
    if (!existing) this.state.contacts.push(contact);
    this.state.contacts.sort((a, b) => a.name.localeCompare(b.name));
    await this.save();
    this.changed();
    return contact;
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
    const r = await this.client.createSession(this.identity, participants);
    await this.client.waitAccepted(r.txID);
    const id = r.session!;
    this.state.conversations[id] = {
      kind: 'session',
      id,
      participants: [this.me, ...participants],
      creator: this.me,
      lastSeq: 0,
      unread: 0,
      lastTs: Date.now(),
      preview: '',
    };
    await this.save();
    this.changed();
    return id;
  }

  /** Learns a session from its first message: its participants come from the chain and must include us. */
  private async discover(id: string): Promise<Conversation | undefined> {
    let s;
    try {
      s = await this.client.session(id);
    } catch (e) {
      if (e instanceof SessionError && !(e instanceof TransportError)) return undefined;
      throw e;
    }
    if (!s.participants.includes(this.me)) return undefined;
    const c: Conversation = {
      kind: 'session',
      id,
      participants: s.participants,
      creator: s.creator,
      lastSeq: 0,
      unread: 0,
      lastTs: s.createdAt,
      preview: '',
    };
    this.state.conversations[id] = c;
    return c;
  }

  // --- channels ------------------------------------------------------------------

  async createChannel(name: string): Promise<string> {
    name = name.trim();
    if (!name) throw new UserError('Give the channel a name.');
    if (utf8(name).length > 64) throw new UserError('Channel names are at most 64 bytes.');
    const r = await this.client.createChannel(this.identity, name);
    await this.client.waitAccepted(r.txID);
    const id = r.channel!;
    this.state.channels[id] = { kind: 'channel', id, name, owner: this.me, lastSeq: 0, unread: 0, lastTs: Date.now(), preview: '' };
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
      if (e instanceof SessionError && !(e instanceof TransportError) && !(e instanceof UnknownChannelError)) {
        throw new UserError('That is not a channel ID.');
      }
      throw e;
    }
    if (!(await this.client.isChannelMember(id, this.me))) {
      const r = await this.client.joinChannel(this.identity, id);
      await this.client.waitAccepted(r.txID);
    }
    this.state.channels[id] = { kind: 'channel', id, name: info.name, owner: info.owner, lastSeq: 0, unread: 0, lastTs: Date.now(), preview: '' };
    await this.save();
    this.changed();
    return id;
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
      const r =
        t.kind === 'session'
          ? await this.cipher.send(this.client, this.identity, target, utf8(text))
          : await this.client.postSealed(this.identity, target, utf8(text));
      await this.client.waitAccepted(r.txID);
      await this.syncThread(t);
    } catch (e) {
      if (e instanceof SessionClosedError && t.kind === 'session') {
        t.closed = true;
        await this.save();
        throw new UserError('This session is closed or has expired: start a new one.');
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
  }

  /** Learns whether a session was closed or expired since. */
  private async refreshStatus(c: Conversation): Promise<void> {
    const s = await this.client.session(c.id);
    if (s.status !== 'active') {
      c.closed = true;
      await this.save();
      this.changed();
    }
  }

  private async openOne(t: Thread, m: Message): Promise<HistoryItem> {
    const item: HistoryItem = { seq: m.seq, author: m.author, ts: m.timestamp, txID: m.txID };
    try {
      const o = t.kind === 'session' ? await this.cipher.open(this.client, this.identity, m) : { plaintext: openMessage(this.identity, m).plaintext };
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
    const hist = await this.history(t.id);
    let added = 0;
    for (let pages = 0; pages < 20; pages++) {
      const page = t.kind === 'session' ? await this.client.messages(t.id, t.lastSeq, 200) : await this.client.channelMessages(t.id, t.lastSeq, 200);
      for (const m of page.messages) {
        const item = await this.openOne(t, m);
        hist.push(item);
        t.lastSeq = m.seq;
        t.lastTs = Math.max(t.lastTs, m.timestamp);
        t.preview = item.text ?? '(cannot open)';
        if (t.kind === 'channel' && m.author !== this.me && this.openThread !== t.id) t.unread++;
        added++;
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

  /** One round: the inbox (new sessions, unread counts), then every thread that moved or is open. */
  async pollOnce(): Promise<void> {
    const touched = new Set<string>();
    try {
      for (let pages = 0; pages < 20; pages++) {
        const page = await this.client.inbox(this.me, this.state.inboxCursor, 200);
        for (const m of page.messages) {
          const c = this.state.conversations[m.target] ?? (await this.discover(m.target));
          if (!c) continue;
          touched.add(c.id);
          if (this.openThread !== c.id) c.unread++;
        }
        this.state.inboxCursor = page.next;
        if (!page.more) break;
      }
      if (touched.size) await this.save();
      for (const t of this.threads()) {
        if (touched.has(t.id) || this.openThread === t.id || t.kind === 'channel') await this.syncThread(t);
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
      if (touched.size) this.changed();
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
