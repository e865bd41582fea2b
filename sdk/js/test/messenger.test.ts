// The Messenger (src/messenger) between TypeScript clients over a chain in
// memory that keeps the protocol's chain rules (claims of unclaimed
// one-time prekeys, consecutive nonces, transactions that die), with
// faults injected: dropped and refused transactions, an unreachable node,
// a node replaying a superseded prekey, restarts over encrypted file
// stores. And SdkNode's checks of a delivery against its signed transaction.
import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { ChatDevice, ChatError, type Claim, MemoryStore, type PrekeyBundle, type PrekeyUpload } from '../src/chat/index.js';
import {
  DEFAULT_SCRYPT,
  DeadTxError,
  InvalidIdentityFileError,
  type Identity,
  identityFromSeed,
  idFromString,
  idToString,
  InOutboxError,
  LegacyRefusedError,
  messageAD,
  seal,
  Messenger,
  NoSignedPrekeyError,
  type MessengerNode,
  type NodeMessage,
  type NodePage,
  type NodeSession,
  openPassphraseStore,
  type OwnPrekeys,
  type PublicIdentity,
  SdkNode,
  type SignedTxBytes,
  signTx,
  StalePrekeyError,
  TransportError,
  type TxState,
  UntrustedNodeError,
  utf8,
  WrongPassphraseError,
} from '../src/index.js';
import { FileStore } from '../src/node.js';

const CHAIN = idToString(new Uint8Array(32).fill(3));
const te = (s: string) => utf8(s);
const td = (b: Uint8Array) => new TextDecoder().decode(b);
const FAST_SCRYPT = { logN: 10, r: 8, p: 1 };

interface Tx {
  id: string;
  author: string;
  nonce: number;
  bytes: Uint8Array;
  status: 'pending' | 'accepted' | 'dropped';
  reason?: string;
  apply: () => void; // runs the chain rules at acceptance; throws to refuse
}

interface Msg extends NodeMessage {
  claims: Claim[];
}

/** The chain, in memory: identities, prekeys, sessions, messages, transactions. Accepts a transaction when it is issued. */
class MemoryChain {
  ids = new Map<string, PublicIdentity>();
  signed = new Map<string, { id: number; expiresAt: number; publicKey: Uint8Array }[]>();
  oneTime = new Map<string, { id: number; publicKey: Uint8Array }[]>();
  sessions = new Map<string, NodeSession>();
  msgs = new Map<string, Msg[]>();
  txs = new Map<string, Tx>();
  nonces = new Map<string, number>();
  position = 0;
  height = 0;
  clock = 1_767_225_600_000;
  /** Faults: drop the next N SendMessage transactions at acceptance; fail the next N issues as unreachable; serve this signed prekey instead of the current one. */
  dropNext = 0;
  unreachable = 0;
  staleSigned: { id: number; expiresAt: number; publicKey: Uint8Array } | undefined;
  /** Fault: serve these identities' bundles without a signed prekey (as a node that says they never published one). */
  withholdSigned = new Set<string>();

  node(id: Identity): ChainNode {
    return new ChainNode(this, id);
  }

  tx(author: string, nonce: number, body: object, apply: () => void): SignedTxBytes & { record: Tx } {
    const bytes = utf8(JSON.stringify({ author, nonce, body, r: Math.random() }));
    const id = idToString(sha256(bytes));
    const record: Tx = { id, author, nonce, bytes, status: 'pending', apply };
    return { txID: id, nonce, bytes, record };
  }

  issue(t: Tx): void {
    if (this.unreachable > 0) {
      this.unreachable--;
      throw new TransportError('node unreachable');
    }
    const known = this.txs.get(t.id);
    if (known) return;
    const next = this.nonces.get(t.author) ?? 0;
    if (t.nonce !== next) throw new DeadTxError(`nonce ${t.nonce}, want ${next}`, t.nonce < next, false);
    this.txs.set(t.id, t);
    this.nonces.set(t.author, next + 1);
    try {
      t.apply();
      t.status = 'accepted';
      this.height++;
    } catch (e) {
      t.status = 'dropped';
      t.reason = (e as Error).message;
    }
  }

  log = new Map<string, { position: number; prekeyId: number; sessionEnd: number }[]>();

  claim(target: string, c: Claim): void {
    if (c.oneTimePrekeyId === 0) return;
    const l = this.log.get(target) ?? [];
    l.push({ position: ++this.position, prekeyId: c.oneTimePrekeyId, sessionEnd: this.clock + 30 * 86_400_000 });
    this.log.set(target, l);
    const list = this.oneTime.get(target) ?? [];
    const i = list.findIndex((k) => k.id === c.oneTimePrekeyId);
    if (i < 0) throw new Error(`claim: one-time prekey ${c.oneTimePrekeyId} of ${target.slice(0, 8)} is gone`);
    list.splice(i, 1);
  }
}

class ChainNode implements MessengerNode {
  constructor(
    readonly chain: MemoryChain,
    readonly id: Identity,
  ) {}
  async chainID() {
    return CHAIN;
  }
  now() {
    return this.chain.clock;
  }
  async registration() {
    return this.chain.ids.has(this.id.sessionId) ? ('same' as const) : ('none' as const);
  }
  async register() {
    this.chain.ids.set(this.id.sessionId, this.id.publicIdentity());
  }
  async ownPrekeys(): Promise<OwnPrekeys> {
    const s = this.chain.signed.get(this.id.sessionId)?.at(-1);
    return { signedPrekeyId: s?.id ?? 0, signedExpiresAt: s?.expiresAt ?? 0, chainSignedPrekeyId: s?.id ?? 0, unclaimed: this.chain.oneTime.get(this.id.sessionId)?.length ?? 0, chainOneTimePrekeyId: 0 };
  }
  async publishPrekeys(up: PrekeyUpload) {
    const me = this.id.sessionId;
    if (up.signedPrekey) this.chain.signed.set(me, [...(this.chain.signed.get(me) ?? []), up.signedPrekey]);
    this.chain.oneTime.set(me, [...(this.chain.oneTime.get(me) ?? []), ...up.oneTimePrekeys]);
  }
  async claimLog(after: number, limit: number) {
    const all = (this.chain.log.get(this.id.sessionId) ?? []).filter((e) => e.position > after);
    const page = all.slice(0, limit);
    return { claims: page.map((e) => ({ prekeyId: e.prekeyId, sessionEnd: e.sessionEnd })), next: page.at(-1)?.position ?? after, more: all.length > limit };
  }
  async prekeyBundle(sid: string): Promise<PrekeyBundle> {
    const identity = this.chain.ids.get(sid);
    if (identity && this.chain.withholdSigned.has(sid)) throw new NoSignedPrekeyError(`${sid} has not published a signed prekey`);
    const signed = this.chain.staleSigned ?? this.chain.signed.get(sid)?.at(-1);
    if (!identity || !signed) throw new Error('unknown identity');
    const ot = this.chain.oneTime.get(sid) ?? [];
    const b: PrekeyBundle = { identity, signedPrekey: signed };
    if (ot.length > 0) b.oneTimePrekey = ot[Math.floor(Math.random() * ot.length)];
    return b;
  }
  async session(session: string): Promise<NodeSession> {
    const s = this.chain.sessions.get(session);
    if (!s) throw new Error('unknown session');
    return s;
  }
  async createSession(participants: string[], claims: Claim[], _metadata: Uint8Array, prepare: (session: string) => Promise<void>) {
    const me = this.id.sessionId;
    const nonce = this.chain.nonces.get(me) ?? 0;
    const session = idToString(sha256(utf8(`${me}/${nonce}`)));
    const parts = [this.id.publicIdentity(), ...participants.map((p) => this.chain.ids.get(p)!)];
    const t = this.chain.tx(me, nonce, { createSession: participants, claims }, () => {
      for (const c of claims) this.chain.claim(c.participant, c);
      this.chain.sessions.set(session, { id: session, participants: parts, claims });
      this.chain.msgs.set(session, []);
    });
    await prepare(session);
    this.chain.issue(t.record);
    await this.waitAccepted(t.txID);
    return { session, txID: t.txID };
  }
  async submitSend(session: string, claims: Claim[], envelope: Uint8Array, keep: (bytes: Uint8Array) => Promise<void>): Promise<SignedTxBytes> {
    const t = await this.signSend(session, claims, envelope);
    await keep(t.bytes);
    await this.issue(t);
    return t;
  }
  async signSend(session: string, claims: Claim[], envelope: Uint8Array): Promise<SignedTxBytes> {
    const me = this.id.sessionId;
    const t = this.chain.tx(me, this.chain.nonces.get(me) ?? 0, { session, claims, envelope: Buffer.from(envelope).toString('base64') }, () => {
      if (this.chain.dropNext > 0) {
        this.chain.dropNext--;
        throw new Error('dropped from its block');
      }
      const s = this.chain.sessions.get(session)!;
      for (const c of claims) this.chain.claim(c.participant, c);
      const list = this.chain.msgs.get(session)!;
      list.push({ session, seq: list.length + 1, position: ++this.chain.position, txID: t.txID, author: me, height: this.chain.height, timestamp: this.chain.clock, ciphertext: envelope.slice(), claims });
      void s;
    });
    this.pending.set(t.txID, t.record);
    return { txID: t.txID, nonce: t.nonce, bytes: t.bytes };
  }
  pending = new Map<string, Tx>();
  async txFromBytes(bytes: Uint8Array): Promise<SignedTxBytes> {
    const id = idToString(sha256(bytes));
    const o = JSON.parse(td(bytes)) as { nonce: number };
    return { txID: id, nonce: o.nonce, bytes };
  }
  async issue(t: SignedTxBytes) {
    const rec = this.pending.get(t.txID) ?? this.chain.txs.get(t.txID);
    if (!rec) throw new Error('a transaction this test did not sign');
    this.chain.issue(rec);
  }
  async waitAccepted(txID: string) {
    const t = this.chain.txs.get(txID);
    if (!t) throw new Error('unknown transaction');
    if (t.status === 'dropped') throw new DeadTxError(`dropped: ${t.reason}`, true, t.reason!.startsWith('claim'));
    return this.chain.height;
  }
  async txState(txID: string): Promise<TxState> {
    const t = this.chain.txs.get(txID);
    if (!t) return { status: 'unknown' };
    return t.status === 'dropped' ? { status: 'dropped', reason: t.reason! } : t.status === 'accepted' ? { status: 'accepted', height: 1 } : { status: 'pending' };
  }
  async nonce() {
    return this.chain.nonces.get(this.id.sessionId) ?? 0;
  }
  async messages(session: string, after: number, limit: number): Promise<NodePage> {
    const all = (this.chain.msgs.get(session) ?? []).filter((m) => m.seq > after);
    const page = all.slice(0, limit);
    return { messages: page, next: page.at(-1)?.seq ?? after, more: all.length > limit };
  }
  async inbox(after: number, limit: number): Promise<NodePage> {
    const me = this.id.sessionId;
    const all: Msg[] = [];
    for (const [s, list] of this.chain.msgs) {
      if (!this.chain.sessions.get(s)!.participants.some((p) => p.sessionId === me)) continue;
      all.push(...list.filter((m) => m.author !== me && m.position > after));
    }
    all.sort((a, b) => a.position - b.position);
    const page = all.slice(0, limit);
    return { messages: page, next: page.at(-1)?.position ?? after, more: all.length > limit };
  }
  async verifyDelivery(_s: NodeSession, m: NodeMessage) {
    const stored = this.chain.msgs.get(m.session)!.find((x) => x.seq === m.seq)!;
    return { author: stored.author, envelope: stored.ciphertext, claims: stored.claims };
  }
}

function who(name: string): Identity {
  const seed = new Uint8Array(32);
  seed.set(utf8(name));
  return identityFromSeed(seed);
}

const texts = (page: { messages: { text: Uint8Array; error?: Error }[] }) => page.messages.map((m) => (m.error ? `error:${m.error.message}` : td(m.text)));

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('Messenger between TypeScript clients (a chain in memory)', () => {
  const alice = who('alice');
  const bob = who('bob');
  const carol = who('carol');

  it('register with prekeys, a session from verified bundles with claims, both ways, inbox and history', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    const ra = await a.register();
    await b.register();
    assert.equal(ra.already, false);
    assert.ok(ra.prekeys.publishedSigned >= 1 && ra.prekeys.publishedOneTime > 0, 'prekeys published');
    const bobPrekeys = chain.oneTime.get(bob.sessionId)!.length;
    const { session } = await a.createSession([bob.sessionId]);
    assert.equal(chain.oneTime.get(bob.sessionId)!.length, bobPrekeys - 1, 'the session claimed one of bob\'s one-time prekeys');
    await a.send(session, te('hello bob'));
    const inbox = await b.inbox();
    assert.deepEqual(texts(inbox), ['hello bob']);
    assert.equal(inbox.messages[0]!.sender, alice.sessionId);
    await b.send(session, te('hello alice'));
    await a.send(session, te('how are you?'));
    assert.deepEqual(texts(await a.read(session)), ['hello bob', 'hello alice', 'how are you?']);
    assert.deepEqual(texts(await b.read(session)), ['hello bob', 'hello alice', 'how are you?']);
    assert.deepEqual(
      (await b.history(session)).map((h) => [h.fromSelf, td(h.text)]),
      [[false, 'hello bob'], [true, 'hello alice'], [false, 'how are you?']],
    );
    // The chain's copies are unreadable to anyone without the keys; bob's own device reads them from the archive.
    assert.deepEqual(texts(await b.read(session)), ['hello bob', 'hello alice', 'how are you?']);
    assert.deepEqual((await b.inbox(inbox.next)).messages.map((m) => td(m.text)), ['how are you?']);
  });

  it('a group of three: every participant reads every message', async () => {
    const chain = new MemoryChain();
    const ms = await Promise.all([alice, bob, carol].map((id) => Messenger.open(chain.node(id), id, new MemoryStore())));
    for (const m of ms) await m.register();
    const [a, b, c] = ms as [Messenger, Messenger, Messenger];
    const { session } = await a.createSession([bob.sessionId, carol.sessionId]);
    await a.send(session, te('one'));
    await c.send(session, te('two'));
    await b.send(session, te('three'));
    for (const m of ms) assert.deepEqual(texts(await m.read(session)), ['one', 'two', 'three']);
    assert.deepEqual(await b.participants(session), [alice.sessionId, bob.sessionId, carol.sessionId]);
  });

  it('a dropped transaction is sent again with fresh keys and arrives once', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await a.register();
    await b.register();
    const { session } = await a.createSession([bob.sessionId]);
    chain.dropNext = 1;
    const sent = await a.send(session, te('survives a drop'));
    assert.ok(sent.length >= 1);
    const dropped = [...chain.txs.values()].filter((t) => t.status === 'dropped');
    assert.equal(dropped.length, 1, 'one transaction died');
    assert.ok(!sent.some((s) => s.txID === dropped[0]!.id), 'the text went in another transaction');
    assert.deepEqual(texts(await b.read(session)), ['survives a drop']);
    await b.send(session, te('got it'));
    assert.deepEqual(texts(await a.read(session)), ['survives a drop', 'got it']);
  });

  it('an unreachable node keeps the message in the outbox; resend sends the same transaction', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await a.register();
    await b.register();
    const { session } = await a.createSession([bob.sessionId]);
    chain.unreachable = 1;
    await assert.rejects(a.send(session, te('later')), InOutboxError);
    assert.deepEqual((await a.history(session)).map((h) => [h.seq, td(h.text)]), [[0, 'later']], 'waits in the outbox');
    const txsBefore = chain.txs.size;
    const again = await a.resend(session);
    assert.equal(again.length, 1);
    assert.ok(again[0]!.resent);
    assert.equal(chain.txs.size, txsBefore + 1, 'one transaction');
    assert.deepEqual(texts(await b.read(session)), ['later']);
    assert.deepEqual((await a.history(session)).map((h) => [h.seq, td(h.text)]), [[1, 'later']], 'landed');
  });

  it('restarts over passphrase-encrypted file stores keep the conversation; a wrong passphrase is refused', async () => {
    const chain = new MemoryChain();
    const dir = mkdtempSync(join(tmpdir(), 'messenger-'));
    dirs.push(dir);
    const open = async (id: Identity, name: string, pass: string) => {
      const fs = FileStore.open(join(dir, name));
      try {
        return { fs, m: await Messenger.open(chain.node(id), id, await openPassphraseStore(fs, pass, FAST_SCRYPT)) };
      } catch (e) {
        fs.close();
        throw e;
      }
    };
    let a = await open(alice, 'alice', 'alice pass');
    let b = await open(bob, 'bob', 'bob pass');
    await a.m.register();
    await b.m.register();
    const { session } = await a.m.createSession([bob.sessionId]);
    await a.m.send(session, te('before the restart'));
    assert.deepEqual(texts(await b.m.read(session)), ['before the restart']);
    a.fs.close();
    b.fs.close();
    await assert.rejects(open(alice, 'alice', 'wrong'), WrongPassphraseError);
    a = await open(alice, 'alice', 'alice pass');
    b = await open(bob, 'bob', 'bob pass');
    assert.deepEqual(texts(await b.m.read(session)), ['before the restart'], 'from the archive');
    await b.m.send(session, te('after the restart'));
    await a.m.send(session, te('still here'));
    assert.deepEqual(texts(await b.m.read(session)), ['before the restart', 'after the restart', 'still here']);
    assert.equal((await a.m.register()).already, true);
    a.fs.close();
    b.fs.close();
    const raw = FileStore.open(join(dir, 'bob'));
    const all = Buffer.concat(await Promise.all((await raw.list('')).map(async (n) => (await raw.get(n))!)));
    raw.close();
    assert.equal(all.indexOf(Buffer.from('after the restart')), -1, 'no plaintext at rest');
  });

  it('a reader who never writes sends a ratchet message when one is due (a day after the first message it read)', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await a.register();
    await b.register();
    const { session } = await a.createSession([bob.sessionId]);
    await a.send(session, te('one'));
    assert.deepEqual(texts(await b.read(session)), ['one']);
    const byBob = () => chain.msgs.get(session)!.filter((m) => m.author === bob.sessionId).length;
    assert.equal(byBob(), 0);
    chain.clock += 24 * 3600 * 1000 + 1;
    assert.deepEqual(texts(await b.read(session, 0, 0, { send: false })), ['one']);
    assert.equal(byBob(), 0, 'a read that must not send (a request not answered yet) sent nothing');
    assert.deepEqual(texts(await b.read(session)), ['one']);
    assert.equal(byBob(), 1, 'bob sent a ratchet message');
    assert.deepEqual(texts(await a.read(session)), ['one'], 'a control message: nothing to show, no error');
    await a.send(session, te('two'));
    assert.deepEqual(texts(await b.read(session)), ['one', 'two']);
    assert.equal(byBob(), 1, 'not due again');
  });

  it('Seal envelopes from before the protocol are read (marked sealed); one after it is refused as a downgrade', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await a.register();
    await b.register();
    // A session created before the protocol (no claims), with a Seal message in it.
    const session = idToString(new Uint8Array(32).fill(5));
    chain.sessions.set(session, { id: session, participants: [alice.publicIdentity(), bob.publicIdentity()], claims: [] });
    chain.msgs.set(session, []);
    const sealAs = (id: Identity, text: string) => {
      const list = chain.msgs.get(session)!;
      const ciphertext = seal(id, [alice.publicIdentity(), bob.publicIdentity()], te(text), messageAD(session));
      list.push({ session, seq: list.length + 1, position: ++chain.position, txID: idToString(sha256(ciphertext)), author: id.sessionId, height: 1, timestamp: chain.clock, ciphertext, claims: [] });
    };
    sealAs(alice, 'old times');
    const first = await b.read(session);
    assert.deepEqual(texts(first), ['old times']);
    assert.equal(first.messages[0]!.sealed, true);
    await b.send(session, te('now forward secret'));
    sealAs(alice, 'a downgrade');
    const page = await a.read(session);
    assert.deepEqual(texts(page).slice(0, 2), ['old times', 'now forward secret']);
    assert.ok(page.messages[2]!.error instanceof LegacyRefusedError, 'alice opened a protocol message before it');
    assert.ok((await b.read(session)).messages[2]!.error instanceof LegacyRefusedError, 'bob sent one before it');
  });

  it('a Seal envelope by someone who is not a participant (a node showing it in the session) is refused', async () => {
    const chain = new MemoryChain();
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await b.register();
    const session = idToString(new Uint8Array(32).fill(6));
    chain.sessions.set(session, { id: session, participants: [alice.publicIdentity(), bob.publicIdentity()], claims: [] });
    const eve = who('eve');
    // Eve seals to the session's readers with its associated data; the chain would refuse her SendMessage, the node lists it anyway.
    const ciphertext = seal(eve, [alice.publicIdentity(), bob.publicIdentity()], te('eve here'), messageAD(session));
    chain.msgs.set(session, [{ session, seq: 1, position: ++chain.position, txID: idToString(sha256(ciphertext)), author: eve.sessionId, height: 1, timestamp: chain.clock, ciphertext, claims: [] }]);
    const page = await b.read(session);
    assert.equal(page.messages.length, 1);
    assert.ok(page.messages[0]!.error instanceof UntrustedNodeError, String(page.messages[0]!.error));
    assert.equal(page.messages[0]!.text.length, 0, 'nothing of it shown');
  });

  it('hasPrekeys: from verified bundles; a node that withholds a signed prekey verified before is refused, not obeyed with Seal', async () => {
    const chain = new MemoryChain();
    const [a, b, c] = await Promise.all([alice, bob, carol].map((id) => Messenger.open(chain.node(id), id, new MemoryStore())));
    for (const m of [a!, b!, c!]) await m.register();
    assert.equal(await a!.hasPrekeys(bob.sessionId), true);
    chain.withholdSigned.add(bob.sessionId);
    await assert.rejects(a!.hasPrekeys(bob.sessionId), StalePrekeyError, 'bob\'s prekey was verified here before: a downgrade');
    // Carol was never looked up here: the node's word is all there is (a client from before the protocol looks the same).
    chain.withholdSigned.add(carol.sessionId);
    assert.equal(await a!.hasPrekeys(carol.sessionId), false);
    chain.withholdSigned.clear();
    assert.equal(await a!.hasPrekeys(carol.sessionId), true);
  });

  it('forward secrecy: a thief with bob\'s identity and store (archive deleted) opens none of the chain\'s envelopes', async () => {
    const chain = new MemoryChain();
    const bobStore = new MemoryStore();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, bobStore);
    await a.register();
    await b.register();
    const { session } = await a.createSession([bob.sessionId]);
    await a.send(session, te('secret one'));
    await b.send(session, te('secret two'));
    await a.send(session, te('secret three'));
    assert.deepEqual(texts(await b.read(session)), ['secret one', 'secret two', 'secret three']);
    const stolen = bobStore.snapshot();
    for (const n of await stolen.list('a/')) stolen.records.delete(n);
    const dev = await ChatDevice.open(bob, idFromString(CHAIN), stolen);
    const ns = chain.sessions.get(session)!;
    const conv = await dev.conversation({ chainId: idFromString(CHAIN), id: idFromString(session), participants: ns.participants, claims: ns.claims });
    const recorded = chain.msgs.get(session)!;
    assert.ok(recorded.length >= 3);
    for (const m of recorded) {
      await assert.rejects(
        conv.open(chain.clock, { envelope: m.ciphertext, position: m.seq, sender: m.author, claims: m.claims }),
        (e: unknown) => e instanceof ChatError,
        `message ${m.seq} does not open again`,
      );
    }
    assert.equal((await conv.history()).length, 0, 'nothing to read without the archive');
  });

  it('a store belongs to the chain it was opened on: a node naming another chain is refused', async () => {
    const chain = new MemoryChain();
    const store = new MemoryStore();
    await (await Messenger.open(chain.node(alice), alice, store)).register();
    await Messenger.open(chain.node(alice), alice, store); // the same chain: fine
    const other = chain.node(alice);
    other.chainID = async () => idToString(new Uint8Array(32).fill(4));
    await assert.rejects(Messenger.open(other, alice, store), UntrustedNodeError);
  });

  it('a node serving a signed prekey older than one verified before is refused', async () => {
    const chain = new MemoryChain();
    const a = await Messenger.open(chain.node(alice), alice, new MemoryStore());
    const b = await Messenger.open(chain.node(bob), bob, new MemoryStore());
    await a.register();
    await b.register();
    await a.createSession([bob.sessionId]);
    const old = chain.signed.get(bob.sessionId)!.at(-1)!;
    chain.clock += 6 * 24 * 3600 * 1000; // bob's signed prekey nears its expiry: he replaces it
    await b.replenishPrekeys();
    assert.ok(chain.signed.get(bob.sessionId)!.at(-1)!.id > old.id);
    await a.createSession([bob.sessionId]);
    chain.staleSigned = old;
    await assert.rejects(a.createSession([bob.sessionId]), StalePrekeyError);
  });
});

describe('openPassphraseStore: the scrypt standard of identity files', () => {
  const record = async (store: MemoryStore) => JSON.parse(td((await store.get('passphrase'))!));
  it('sets a new store up with DEFAULT_SCRYPT (logN 17, as identity files), and opens it again', async () => {
    const inner = new MemoryStore();
    const s = await openPassphraseStore(inner, 'pw');
    const rec = await record(inner);
    assert.deepEqual({ logN: rec.logN, r: rec.r, p: rec.p }, { logN: 17, r: 8, p: 1 });
    assert.deepEqual({ logN: rec.logN, r: rec.r, p: rec.p }, { ...DEFAULT_SCRYPT });
    await s.commit(new Map([['x', te('secret')]]), []);
    assert.equal(td((await (await openPassphraseStore(inner, 'pw')).get('x'))!), 'secret');
    await assert.rejects(openPassphraseStore(inner, 'pW'), WrongPassphraseError);
  });
  it('opens stores set up with lower parameters (an explicit option, as tests use)', async () => {
    const inner = new MemoryStore();
    await openPassphraseStore(inner, 'pw', FAST_SCRYPT);
    assert.equal((await record(inner)).logN, 10);
    await openPassphraseStore(inner, 'pw'); // the record's parameters, not the default
  });
  it('refuses records and parameters Go would refuse for a key file, before any work', async () => {
    const inner = new MemoryStore();
    await openPassphraseStore(inner, 'pw', FAST_SCRYPT);
    const good = await record(inner);
    const bad: Array<(r: any) => void> = [
      (r) => ((r.logN = 22), (r.r = 16)), // 512 MiB
      (r) => ((r.logN = 21), (r.r = 8), (r.p = 16)), // 2 GiB
      (r) => (r.logN = 23),
      (r) => (r.logN = 9),
      (r) => (r.logN = 14.5),
      (r) => (r.r = '8'),
      (r) => delete r.p,
      (r) => (r.v = 2),
      (r) => (r.salt = 'AAAA'),
      (r) => (r.salt = 7),
    ];
    for (const change of bad) {
      const r = structuredClone(good);
      change(r);
      const s = new MemoryStore();
      await s.commit(new Map([['passphrase', te(JSON.stringify(r))]]), []);
      const t0 = Date.now();
      await assert.rejects(openPassphraseStore(s, 'pw'), InvalidIdentityFileError, JSON.stringify(r));
      assert.ok(Date.now() - t0 < 500, `${JSON.stringify(r)} refused before any work`);
    }
    for (const scrypt of [{ logN: 22, r: 16, p: 1 }, { logN: 10.5, r: 8, p: 1 }, { logN: 10, r: 0, p: 1 }]) {
      await assert.rejects(openPassphraseStore(new MemoryStore(), 'pw', scrypt), InvalidIdentityFileError, JSON.stringify(scrypt));
    }
  });
});

describe('SdkNode checks a delivery against its signed transaction', () => {
  const alice = who('alice');
  const bob = who('bob');
  const eve = who('eve');
  const session = idToString(new Uint8Array(32).fill(9));
  const env = Uint8Array.of(0x43, 0x48, 1, 2, 3);
  const t = signTx(alice, CHAIN, 4, 'sendMessage', { session, claims: [], ciphertext: env });
  const ns: NodeSession = { id: session, participants: [alice.publicIdentity(), bob.publicIdentity()], claims: [] };
  const msg: NodeMessage = { session, seq: 1, position: 7, txID: t.id, author: alice.sessionId, height: 1, timestamp: 0, ciphertext: env };
  const node = (tx = t, chain = CHAIN) => new SdkNode({ chainID: async () => chain, tx: async () => ({ txID: tx.id, type: tx.type, tx, height: 1, index: 0 }) } as never, bob);

  it('takes author, envelope and claims from the transaction', async () => {
    const d = await node().verifyDelivery(ns, msg);
    assert.equal(d.author, alice.sessionId);
    assert.deepEqual(d.envelope, env);
  });
  for (const [name, n, m] of [
    ['another author than the node named', node(), { ...msg, author: bob.sessionId }],
    ['another ciphertext than delivered', node(), { ...msg, ciphertext: Uint8Array.of(0x43, 0x48, 9) }],
    ['a transaction of another session', node(signTx(alice, CHAIN, 4, 'sendMessage', { session: idToString(new Uint8Array(32).fill(8)), claims: [], ciphertext: env })), msg],
    ['a transaction of another chain', node(t, idToString(new Uint8Array(32).fill(4))), msg],
    ['an author who is not a participant', node(signTx(eve, CHAIN, 0, 'sendMessage', { session, claims: [], ciphertext: env })), { ...msg, author: eve.sessionId }],
    ['a signature by someone else', node({ ...t, signature: signTx(bob, CHAIN, 4, 'sendMessage', { session, claims: [], ciphertext: env }).signature }), msg],
  ] as const) {
    it(`refuses ${name}`, async () => {
      await assert.rejects(n.verifyDelivery(ns, m), UntrustedNodeError);
    });
  }
});
