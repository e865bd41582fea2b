// A chain and a prekey directory in memory for protocol tests: parties
// with devices on their own stores, envelopes posted in order with their
// author and claims, bundles handed out as the chain would (a random
// unclaimed one-time prekey, claimed when handed out).
import { identityFromSeed, type Identity, randomBytes } from '../src/index.js';
import {
  ChatDevice,
  type ChatSession,
  type Claim,
  type Conversation,
  type Delivery,
  type Directory,
  MemoryStore,
  type OneTimePrekey,
  type Outgoing,
  type PrekeyBundle,
  sessionClaimsOf,
  type SignedPrekey,
} from '../src/chat/index.js';
import { openDeterministicDevice, stream } from '../src/chat/chattest.js';

export interface Party {
  name: string;
  id: Identity;
  store: MemoryStore;
  dev: ChatDevice;
  conv?: Conversation;
  signed?: SignedPrekey;
  oneTime: OneTimePrekey[];
}

export interface Posted {
  envelope: Uint8Array;
  sender: number;
  claims: readonly Claim[];
  role: Outgoing['role'];
}

export class World implements Directory {
  parties: Party[] = [];
  session!: ChatSession;
  chain: Posted[] = [];
  readonly chainId = new Uint8Array(32).fill(7);
  /** Hands out the lowest one-time prekey (deterministic) instead of a random one. */
  lowestFirst = false;
  private seedCounter = 0;

  /** Parties named names, with devices on fresh memory stores (deterministic randomness when det). */
  static async create(names: string[], opts: { deterministic?: boolean; oneTime?: number; now?: number } = {}): Promise<World> {
    const w = new World();
    for (const name of names) {
      const seed = new Uint8Array(32);
      seed[0] = ++w.seedCounter;
      seed.set(new TextEncoder().encode(name).subarray(0, 31), 1);
      const id = identityFromSeed(seed);
      const store = new MemoryStore();
      const dev = opts.deterministic ? await openDeterministicDevice(stream(name), id, w.chainId, store) : await ChatDevice.open(id, w.chainId, store);
      w.parties.push({ name, id, store, dev, oneTime: [] });
    }
    for (const p of w.parties) await w.publish(p, opts.now ?? 1_767_225_600_000, true, opts.oneTime ?? 4);
    return w;
  }

  async publish(p: Party, now: number, signed: boolean, oneTime: number, above: { signed?: number; oneTime?: number } = {}): Promise<void> {
    const up = await p.dev.generatePrekeys(now, signed, oneTime, above);
    if (up.signedPrekey) p.signed = up.signedPrekey;
    p.oneTime.push(...up.oneTimePrekeys);
  }

  party(name: string): Party {
    const p = this.parties.find((x) => x.name === name);
    if (!p) throw new Error(`no party ${name}`);
    return p;
  }

  bundle(p: Party): PrekeyBundle {
    const b: PrekeyBundle = { identity: p.id.publicIdentity(), signedPrekey: p.signed! };
    if (p.oneTime.length > 0) {
      const i = this.lowestFirst ? 0 : randomBytes(1)[0]! % p.oneTime.length;
      b.oneTimePrekey = p.oneTime.splice(i, 1)[0];
    }
    return b;
  }

  async prekeyBundle(sid: string): Promise<PrekeyBundle> {
    const p = this.parties.find((x) => x.id.sessionId === sid);
    if (!p) throw new Error('unknown participant');
    return this.bundle(p);
  }

  /** The creator (first party) creates the session with everyone; the others join. */
  async createSession(now: number, sessionId = new Uint8Array(32).fill(9)): Promise<void> {
    const [creator, ...rest] = this.parties;
    const bundles = rest.map((q) => this.bundle(q));
    this.session = { chainId: this.chainId, id: sessionId, participants: this.parties.map((p) => p.id.publicIdentity()), claims: sessionClaimsOf(bundles) };
    creator!.conv = await creator!.dev.createConversation(now, this.session, bundles);
    for (const p of rest) p.conv = await p.dev.conversation(this.session);
  }

  /** Sends and posts every envelope on the chain; returns their positions. */
  async send(name: string, now: number, text: string): Promise<number[]> {
    const p = this.party(name);
    const outs = await p.conv!.send(now, new TextEncoder().encode(text), this);
    return outs.map((o) => this.post(p, o));
  }

  /** Sends without posting: the caller posts or declares dead. */
  async sendRaw(name: string, now: number, text: string): Promise<Outgoing[]> {
    return this.party(name).conv!.send(now, new TextEncoder().encode(text), this);
  }

  post(p: Party, o: Outgoing): number {
    this.chain.push({ envelope: o.envelope, sender: this.parties.indexOf(p), claims: o.claims, role: o.role });
    return this.chain.length;
  }

  delivery(position: number): Delivery {
    const e = this.chain[position - 1]!;
    return { envelope: e.envelope, position, sender: this.parties[e.sender]!.id.sessionId, claims: e.claims };
  }

  /** Opens position for name: the plaintext, or the error code. */
  async open(name: string, now: number, position: number): Promise<string> {
    try {
      const m = await this.party(name).conv!.open(now, this.delivery(position));
      return m.control ? '<control>' : new TextDecoder().decode(m.plaintext);
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code) return `error:${code}`;
      throw e;
    }
  }

  /** Reopens a party's device from its store (a restart). */
  async restart(name: string): Promise<void> {
    const p = this.party(name);
    p.dev = await ChatDevice.open(p.id, this.chainId, p.store);
    p.conv = await p.dev.conversation(this.session);
  }
}
