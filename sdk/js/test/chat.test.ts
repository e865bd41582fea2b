// The messaging protocol between TypeScript devices: the behaviour of
// docs/protocol.md sections 7 to 12 (handshakes, steps, out-of-order and
// replays, simultaneous initiation, dead transactions, ratchet messages,
// bounds), the wire format's parsing rules, the state codec and the stores.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { World } from './chat.harness.js';
import { parseEnvelope } from '../src/chat/wire.js';
import { ChatError } from '../src/chat/index.js';

const T0 = 1_767_225_600_000;
const DAY = 24 * 60 * 60 * 1000;

describe('conversation', () => {
  it('three parties: handshakes, steps, out-of-order delivery, replay, the 24-hour bound', async () => {
    const w = await World.create(['alice', 'bob', 'carol']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'hello, this is alice');
    assert.equal(await w.open('bob', T0 + 2, p1!), 'hello, this is alice');
    assert.equal(await w.open('carol', T0 + 2, p1!), 'hello, this is alice');
    assert.equal(await w.open('alice', T0 + 2, p1!), 'hello, this is alice'); // lands
    // A handshake whose tree is known is a replay, checked first (section 8, step 4).
    assert.equal(await w.open('bob', T0 + 2, p1!), 'error:replay');
    assert.equal(await w.open('alice', T0 + 2, p1!), 'error:replay');

    const [p2] = await w.send('bob', T0 + 3, 'hi alice and carol');
    const [p3] = await w.send('carol', T0 + 4, 'carol here');
    for (const who of ['alice', 'bob', 'carol']) {
      assert.match(await w.open(who, T0 + 5, p3!), /carol here/);
      assert.match(await w.open(who, T0 + 5, p2!), /hi alice and carol/);
    }
    const [p4] = await w.send('alice', T0 + 6, 'second from alice');
    const b = [];
    for (const t of ['b1', 'b2', 'b3']) b.push((await w.send('bob', T0 + 7, t))[0]!);
    // Bob and carol initiated at once: the tree with the lower ID won at both ends (section 10.2). If it
    // is carol's, bob's b1 starts his first chain in it, and b3 cannot open before b1 (chain not started).
    const b1ToCarol = parseEnvelope(w.chain[b[0]! - 1]!.envelope).stanzas[1]!;
    const carolsTreeWon = b1ToCarol.type === 'step';
    assert.equal(await w.open('carol', T0 + 8, b[2]!), carolsTreeWon ? 'error:chain-not-started' : 'b3');
    assert.equal(await w.open('carol', T0 + 8, b[0]!), 'b1');
    if (carolsTreeWon) assert.equal(await w.open('carol', T0 + 8, b[2]!), 'b3');
    assert.equal(await w.open('carol', T0 + 8, b[1]!), 'b2');
    assert.equal(await w.open('carol', T0 + 8, b[1]!), 'error:replay');
    assert.equal(await w.open('carol', T0 + 8, p4!), 'second from alice');
    const [p8] = await w.send('alice', T0 + DAY + 10, 'a day later');
    for (const who of ['bob', 'carol']) {
      for (const p of [p4!, ...b]) await w.open(who, T0 + DAY + 11, p);
      assert.equal(await w.open(who, T0 + DAY + 11, p8!), 'a day later');
    }
  });
});

const te = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array | undefined): string => (b ? Buffer.from(b).toString('hex') : 'none');

describe('trees (section 10)', () => {
  it('simultaneous initiation: both ends settle on the same tree, whatever order the node shows', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    // Neither opens the other's handshake before sending its own.
    const [pa] = await w.send('alice', T0 + 1, 'from alice');
    const bob = w.party('bob');
    // Bob has a session claim to ignore: he initiates with a transaction claim of his own.
    const [pb] = await w.send('bob', T0 + 1, 'from bob');
    // Opposite delivery orders at the two ends.
    assert.equal(await w.open('alice', T0 + 2, pb!), 'from bob');
    assert.equal(await w.open('alice', T0 + 2, pa!), 'from alice');
    assert.equal(await w.open('bob', T0 + 2, pb!), 'from bob');
    assert.equal(await w.open('bob', T0 + 2, pa!), 'from alice');
    const ta = await w.party('alice').conv!._currentTree(bob.id.sessionId);
    const tb = await bob.conv!._currentTree(w.party('alice').id.sessionId);
    assert.ok(ta && tb);
    assert.equal(hex(ta), hex(tb), 'both ends use the same tree');
    // And they talk in it, both ways.
    const [p3] = await w.send('alice', T0 + 3, 'a2');
    const [p4] = await w.send('bob', T0 + 3, 'b2');
    assert.equal(await w.open('bob', T0 + 4, p3!), 'a2');
    assert.equal(await w.open('alice', T0 + 4, p4!), 'b2');
  });

  it('a withheld handshake: unknown tree, then the recipient re-initiates with a higher generation and the pair converges', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'one'); // handshake: the node never shows it to bob
    const [p2] = await w.send('alice', T0 + 2, 'two');
    assert.equal(await w.open('alice', T0 + 2, p1!), 'one');
    assert.equal(await w.open('alice', T0 + 2, p2!), 'two');
    assert.equal(await w.open('bob', T0 + 3, p2!), 'error:unknown-tree');
    // Positions before p2 not all delivered (p1 withheld) and fewer than 16 after: bob waits...
    const alice = w.party('alice').id.sessionId;
    // ...until the node shows 16 more positions (here: alice's chatter that bob cannot read either).
    for (let i = 0; i < 16; i++) {
      const [p] = await w.send('alice', T0 + 4, `more ${i}`);
      await w.open('alice', T0 + 4, p!);
      assert.equal(await w.open('bob', T0 + 5, p!), 'error:unknown-tree');
    }
    // Bob never saw alice's handshake, so he does not know its generation: his re-initiation (generation 1)
    // ties with it, and the lower tree ID wins. If alice's wins, alice keeps sending there, bob sees unknown
    // trees again and re-initiates once more, now with generation 2, which outranks it.
    let t = T0 + 6;
    for (let round = 1; ; round++) {
      const [pb] = await w.send('bob', t++, `bob re-initiates ${round}`);
      const st = parseEnvelope(w.chain[pb! - 1]!.envelope).stanzas[0]!;
      assert.ok(st.type === 'handshake' && st.gen === round, `round ${round}: a handshake of generation ${round}`);
      assert.equal(await w.open('bob', t, pb!), `bob re-initiates ${round}`);
      assert.equal(await w.open('alice', t++, pb!), `bob re-initiates ${round}`);
      const [pa] = await w.send('alice', t++, `alice ${round}`);
      await w.open('alice', t, pa!);
      const got = await w.open('bob', t++, pa!);
      if (got === `alice ${round}`) break;
      assert.equal(got, 'error:unknown-tree');
      assert.equal(round, 1, 'the second re-initiation outranks the withheld tree');
      // Bob re-initiates only once the withheld handshake cannot merely be late (16 positions after).
      for (let i = 0; i < 16; i++) {
        const [p] = await w.send('alice', t, `filler ${i}`);
        await w.open('alice', t, p!);
        await w.open('bob', t++, p!);
      }
    }
    assert.equal(hex(await w.party('alice').conv!._currentTree(w.party('bob').id.sessionId)), hex(await w.party('bob').conv!._currentTree(alice)));
  });
});

describe('dead transactions (section 10.4)', () => {
  it('a refused handshake is sent again with a new generation and claim, keeping the message', async () => {
    const w = await World.create(['alice', 'bob', 'carol']);
    await w.createSession(T0);
    const alice = w.party('alice');
    const outs = await w.sendRaw('alice', T0 + 1, 'first');
    assert.equal(outs.length, 1);
    const again = await alice.conv!.dead(T0 + 2, outs[0]!.envelopeId, w);
    assert.equal(again.length, 1);
    assert.notEqual(hex(again[0]!.envelopeId), hex(outs[0]!.envelopeId));
    // Fresh handshakes of the next generation, each with a transaction claim (the session claims were spent).
    const env = parseEnvelope(again[0]!.envelope);
    for (const st of env.stanzas) assert.ok(st.type === 'handshake' && st.gen === 2);
    assert.equal(again[0]!.claims.length, 2);
    const [p] = again.map((o) => w.post(alice, o));
    assert.equal(await w.open('bob', T0 + 3, p!), 'first');
    assert.equal(await w.open('carol', T0 + 3, p!), 'first');
    assert.deepEqual((await alice.conv!.pending()).length, 1);
    assert.equal(await w.open('alice', T0 + 3, p!), 'first');
    assert.deepEqual((await alice.conv!.pending()).length, 0);
  });

  it('later envelopes are superseded and sent again; a dead envelope that lands after all is a duplicate, and revives its tree', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const alice = w.party('alice');
    const [p1] = await w.send('alice', T0 + 1, 'm1');
    await w.open('alice', T0 + 1, p1!);
    assert.equal(await w.open('bob', T0 + 1, p1!), 'm1');
    const o2 = await w.sendRaw('alice', T0 + 2, 'm2');
    const o3 = await w.sendRaw('alice', T0 + 3, 'm3');
    // The node says m2's transaction was refused, although it landed (it lies); m3 was never submitted.
    const again = await alice.conv!.dead(T0 + 4, o2[0]!.envelopeId, w);
    assert.equal(again.length, 2, 'm2 and the superseded m3, sent again');
    const pLied = w.post(alice, o2[0]!);
    const pos = again.map((o) => w.post(alice, o));
    assert.equal(await w.open('bob', T0 + 5, pLied), 'm2');
    assert.equal(await w.open('bob', T0 + 5, pos[0]!), 'error:duplicate');
    assert.equal(await w.open('bob', T0 + 5, pos[1]!), 'm3');
    // Alice sees her "dead" envelope land: accepted, no error; then the copies land.
    assert.equal(await w.open('alice', T0 + 6, pLied), 'm2');
    assert.equal(await w.open('alice', T0 + 6, pos[0]!), 'm2');
    assert.equal(await w.open('alice', T0 + 6, pos[1]!), 'm3');
    assert.equal((await alice.conv!.pending()).length, 0);
    // Bob answers; alice reads it.
    const [pb] = await w.send('bob', T0 + 7, 'ok');
    assert.equal(await w.open('alice', T0 + 8, pb!), 'ok');
    // History: each message once, in position order.
    const h = (await alice.conv!.history()).map((e) => new TextDecoder().decode(e.plaintext));
    assert.deepEqual(h, ['m1', 'm2', 'm3', 'ok']);
  });

  it('a superseded or unknown envelope reported dead gives nothing to send', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const o1 = await w.sendRaw('alice', T0 + 1, 'x');
    const o2 = await w.sendRaw('alice', T0 + 2, 'y');
    const alice = w.party('alice').conv!;
    assert.equal((await alice.dead(T0 + 3, o1[0]!.envelopeId, w)).length, 2);
    assert.equal((await alice.dead(T0 + 4, o2[0]!.envelopeId, w)).length, 0);
    assert.equal((await alice.dead(T0 + 4, new Uint8Array(16), w)).length, 0);
  });
});

describe('ratchet messages (section 7.6)', () => {
  it('a reader that received 50 messages steps in a control message, and the writer steps against its new key', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const bob = w.party('bob').conv!;
    for (let i = 0; i < 50; i++) {
      const [p] = await w.send('alice', T0 + i, `m${i}`);
      assert.equal(await w.open('bob', T0 + i, p!), `m${i}`);
      assert.equal(await bob.ratchetDue(T0 + i), i === 49);
    }
    const outs = await bob.sendRatchet(T0 + 100);
    assert.equal(outs.length, 1);
    assert.equal(outs[0]!.role, 'ratchet');
    const env = parseEnvelope(outs[0]!.envelope);
    assert.equal(env.stanzas[0]!.type, 'step');
    const p = w.post(w.party('bob'), outs[0]!);
    assert.equal(await w.open('alice', T0 + 101, p), '<control>');
    assert.equal(await bob.ratchetDue(T0 + 101), false);
    const [pa] = await w.send('alice', T0 + 102, 'after');
    assert.equal(parseEnvelope(w.chain[pa! - 1]!.envelope).stanzas[0]!.type, 'step', 'change of speaker: alice steps');
    assert.equal(await w.open('bob', T0 + 103, pa!), 'after');
  });

  it('is due a day after the first message received since the last send', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const [p] = await w.send('alice', T0, 'hi');
    await w.open('bob', T0 + 5, p!);
    assert.equal(await w.party('bob').conv!.ratchetDue(T0 + DAY), false);
    assert.equal(await w.party('bob').conv!.ratchetDue(T0 + 5 + DAY), true);
  });
});

describe('devices', () => {
  it('a lost device: synchronises, re-initiates one generation above, and the pair works again', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'before');
    assert.equal(await w.open('bob', T0 + 2, p1!), 'before');
    const [p2] = await w.send('bob', T0 + 3, 'reply');
    assert.equal(await w.open('alice', T0 + 4, p2!), 'reply');
    // Bob loses his device: same identity, new store, new prekeys (retiring the old ones on chain).
    const bob = w.party('bob');
    bob.store = new (await import('../src/chat/index.js')).MemoryStore();
    bob.dev = await (await import('../src/chat/index.js')).ChatDevice.open(bob.id, w.chainId, bob.store);
    bob.oneTime = [];
    await w.publish(bob, T0 + 5, true, 4, { signed: 1, oneTime: 4 });
    bob.conv = await bob.dev.conversation(w.session);
    assert.equal(await w.open('bob', T0 + 6, p1!), 'error:unknown-prekey');
    assert.equal(await w.open('bob', T0 + 6, p2!), 'error:not-from-this-device');
    const [p3] = await w.send('bob', T0 + 7, 'new device');
    const st = parseEnvelope(w.chain[p3! - 1]!.envelope).stanzas[0]!;
    assert.ok(st.type === 'handshake' && st.gen === 2, 'one above the generation learnt from the old handshake');
    assert.equal(await w.open('alice', T0 + 8, p3!), 'new device');
    const [p4] = await w.send('alice', T0 + 9, 'welcome back');
    assert.equal(await w.open('bob', T0 + 10, p3!), 'new device');
    assert.equal(await w.open('bob', T0 + 10, p4!), 'welcome back');
  });

  it('restarts: a device reopened from its store carries on', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'one');
    await w.restart('bob');
    assert.equal(await w.open('bob', T0 + 2, p1!), 'one');
    await w.restart('alice');
    const [p2] = await w.send('alice', T0 + 3, 'two');
    await w.restart('bob');
    assert.equal(await w.open('bob', T0 + 4, p2!), 'two');
    assert.equal(await w.open('bob', T0 + 4, p1!), 'error:replay');
  });
});

describe('wire format (section 6)', () => {
  it('parsing is canonical, every truncation and extension is refused, and altered bytes give a ChatError, never another error', async () => {
    const w = await World.create(['alice', 'bob', 'carol'], { oneTime: 1 }); // carol's one one-time prekey goes to alice's claim
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'handshakes'); // handshakes with one-time prekeys
    for (const who of ['alice', 'bob', 'carol']) await w.open(who, T0 + 2, p1!);
    const [p2] = await w.send('bob', T0 + 3, 'a step and a handshake without a one-time prekey');
    const [p3] = await w.send('bob', T0 + 4, 'continues');
    const ratchet = await w.party('carol').conv!.sendRatchet(T0 + 5); // steps and a none
    const p4 = w.post(w.party('carol'), ratchet[0]!);
    const { marshalEnvelope } = await import('../src/chat/wire.js');
    const { MalformedEnvelopeError } = await import('../src/chat/errors.js');
    const kinds = new Set<string>();
    for (const p of [p1!, p2!, p3!, p4]) {
      const e = w.chain[p - 1]!.envelope;
      const env = parseEnvelope(e);
      for (const s of env.stanzas) kinds.add(s.type === 'handshake' ? `handshake/${s.opkId ? 'otp' : 'none'}` : s.type);
      assert.deepEqual(marshalEnvelope(env), e, 'marshal(parse(e)) = e');
      // Every truncation inside the header is malformed; inside the body, malformed below the minimum.
      const headerLen = env.header.length;
      for (const n of [0, 1, 5, 21, 22, headerLen - 1, headerLen, headerLen + 3365]) {
        assert.throws(() => parseEnvelope(e.subarray(0, n)), MalformedEnvelopeError, `truncated to ${n}`);
      }
      assert.doesNotThrow(() => parseEnvelope(e.subarray(0, headerLen + 3366)));
    }
    assert.deepEqual([...kinds].sort(), ['continue', 'handshake/none', 'handshake/otp', 'none', 'step']);
    // Flip one bit in every byte of the first 2 kB and a sample beyond: opening gives a ChatError and changes nothing.
    const bob = w.party('bob');
    const e = w.chain[p3! - 1]!.envelope; // bob's continue, opened by carol
    const carol = w.party('carol').conv!;
    assert.equal(await w.open('carol', T0 + 6, p2!), 'a step and a handshake without a one-time prekey');
    const codes = new Map<string, number>();
    for (let i = 0; i < e.length; i += i < 2048 ? 7 : 301) {
      const x = e.slice();
      x[i]! ^= 1 << (i % 8);
      try {
        await carol.open(T0 + 6, { envelope: x, position: p3!, sender: bob.id.sessionId, claims: [] });
        assert.fail(`a flipped bit at ${i} opened`);
      } catch (err) {
        assert.ok(err instanceof ChatError, `byte ${i}: ${String(err)}`);
        codes.set(err.code, (codes.get(err.code) ?? 0) + 1);
      }
    }
    assert.ok(codes.has('malformed') && codes.has('decryption-failed'), [...codes.keys()].join());
    assert.equal(await w.open('carol', T0 + 7, p3!), 'continues');
  });
});

describe('bounds (section 9)', () => {
  it('refuses a plaintext over 16384 bytes, and a full outbox', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const alice = w.party('alice').conv!;
    await assert.rejects(alice.send(T0, new Uint8Array(16385), w), (e: unknown) => e instanceof ChatError && e.code === 'plaintext-too-large');
    const sent = await alice.send(T0, new Uint8Array(16384), w);
    assert.ok(sent[0]!.envelope.length <= 65536);
    for (let i = 1; i < 64; i++) await alice.send(T0 + i, te(`m${i}`), w);
    await assert.rejects(alice.send(T0 + 99, te('one too many'), w), (e: unknown) => e instanceof ChatError && e.code === 'outbox-full');
    assert.equal((await alice.pending()).length, 64);
  });

  it('refuses a message that would skip more than 100 slots, and opens one that skips 100', async () => {
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0, 'hi');
    assert.equal(await w.open('bob', T0, p1!), 'hi');
    const alice = w.party('alice');
    // Ratchet messages step every time: 101 steps against the same chain of bob's.
    let last = 0;
    for (let i = 0; i < 102; i++) {
      last = w.post(alice, (await alice.conv!.sendRatchet(T0 + 1 + i))[0]!);
      await w.open('alice', T0 + 1 + i, last); // lands (the outbox holds 64)
    }
    assert.equal(await w.open('bob', T0 + 200, last), 'error:too-many-skipped');
    assert.equal(await w.open('bob', T0 + 200, last - 1), '<control>', 'k = 102: 100 slots skipped');
    assert.equal(await w.open('bob', T0 + 200, last - 50), '<control>', 'a skipped slot');
    assert.equal(await w.open('bob', T0 + 200, last - 50), 'error:replay');
  });

  it('refuses a fifth live handshake with one peer in a session', async () => {
    const w = await World.create(['alice', 'bob'], { oneTime: 8 });
    await w.createSession(T0);
    const alice = w.party('alice');
    const bobId = w.party('bob').id.sessionId;
    for (let i = 0; i < 4; i++) {
      if (i > 0) await alice.conv!.reset(bobId);
      const [p] = await w.send('alice', T0 + i, `h${i}`);
      const st = parseEnvelope(w.chain[p! - 1]!.envelope).stanzas[0]!;
      assert.ok(st.type === 'handshake' && st.gen === i + 1);
      await w.open('alice', T0 + i, p!); // landed: a new handshake may follow
      assert.equal(await w.open('bob', T0 + i, p!), `h${i}`);
    }
    await alice.conv!.reset(bobId);
    await assert.rejects(w.sendRaw('alice', T0 + 9, 'h4'), (e: unknown) => e instanceof ChatError && e.code === 'too-many-handshakes');
  });
});

describe('groups (section 12)', () => {
  it('32 participants: the creator’s first message is one setup message and one content message, each within 64 KiB', async () => {
    const names = Array.from({ length: 32 }, (_, i) => `p${i}`);
    const w = await World.create(names, { oneTime: 1 });
    await w.createSession(T0);
    const outs = await w.sendRaw('p0', T0 + 1, 'x'.repeat(16384));
    assert.deepEqual(outs.map((o) => o.role), ['setup', 'content']);
    for (const o of outs) assert.ok(o.envelope.length <= 65536, `${o.envelope.length} bytes`);
    const setup = parseEnvelope(outs[0]!.envelope).stanzas.filter((s) => s.type === 'handshake').length;
    const content = parseEnvelope(outs[1]!.envelope).stanzas.filter((s) => s.type === 'handshake').length;
    assert.equal(setup + content, 31);
    assert.equal(content, 13, 'the content message keeps 13 handshakes beside a full plaintext (section 12)');
    const pos = outs.map((o) => w.post(w.party('p0'), o));
    for (const who of ['p1', 'p18', 'p31']) {
      assert.equal(await w.open(who, T0 + 2, pos[0]!), who === 'p1' ? 'error:not-addressed' : '<control>');
      assert.equal((await w.open(who, T0 + 2, pos[1]!)).length, 16384);
    }
  });
});

/** A store that fails the commits it is told to (a crash at that point: nothing written). */
class FailingStore {
  failNext = 0;
  constructor(readonly inner: import('../src/chat/index.js').MemoryStore) {}
  get(n: string) {
    return this.inner.get(n);
  }
  list(p: string) {
    return this.inner.list(p);
  }
  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('disk gone');
    }
    return this.inner.commit(puts, deletes);
  }
}

describe('local state (section 13)', () => {
  it('a failed commit leaves nothing: no envelope leaves, the message opens again, no key is used twice', async () => {
    const { ChatDevice, MemoryStore } = await import('../src/chat/index.js');
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const bob = w.party('bob');
    const fs = new FailingStore(bob.store);
    bob.dev = await ChatDevice.open(bob.id, w.chainId, fs as unknown as InstanceType<typeof MemoryStore>);
    bob.conv = await bob.dev.conversation(w.session);
    const [p1] = await w.send('alice', T0 + 1, 'one');
    fs.failNext = 1;
    await assert.rejects(bob.conv.open(T0 + 2, w.delivery(p1!)), /disk gone/);
    assert.equal(await w.open('bob', T0 + 3, p1!), 'one', 'opens again: nothing was consumed');
    fs.failNext = 1;
    await assert.rejects(bob.conv.send(T0 + 4, te('lost'), w), /disk gone/);
    assert.equal((await bob.conv.pending()).length, 0, 'no envelope in the outbox');
    const [p2] = await w.send('bob', T0 + 5, 'two');
    assert.equal(await w.open('alice', T0 + 6, p2!), 'two', 'the keys of the failed send were not consumed, and not reused in a way alice refuses');
    assert.equal(await w.open('bob', T0 + 6, p2!), 'two', 'landed');
    // A crash after the commit: the envelope is in the outbox, to be sent as the same bytes.
    const outs = await bob.conv.send(T0 + 7, te('three'), w);
    const again = await ChatDevice.open(bob.id, w.chainId, bob.store);
    const pend = await (await again.conversation(w.session)).pending();
    assert.equal(pend.length, 1);
    assert.deepEqual(pend[0]!.envelope, outs[0]!.envelope);
  });

  it('every record is versioned, round-trips, and a reader refuses unknown versions and corruption', async () => {
    const s = await import('../src/chat/state.js');
    const w = await World.create(['alice', 'bob', 'carol']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'x');
    for (const who of ['alice', 'bob', 'carol']) await w.open(who, T0 + 2, p1!);
    await w.send('bob', T0 + 3, 'y');
    let n = 0;
    for (const p of w.parties) {
      for (const [name, b] of p.store.records) {
        const codec = ({ c: [s.decodeConversation, s.encodeConversation], d: [s.decodeDevice, s.encodeDevice], o: [s.decodeOutbox, s.encodeOutbox], a: [s.decodeArchive, s.encodeArchive] } as Record<string, [(b: Uint8Array) => unknown, (x: any) => Uint8Array]>)[name[0]!];
        if (!codec) continue;
        n++;
        assert.deepEqual(codec[1](codec[0](b)), b, `${name} round-trips`);
        const v = b.slice();
        v[0] = 2;
        assert.throws(() => codec[0](v), (e: unknown) => e instanceof ChatError && e.code === 'state-version', `${name}: version 2`);
        assert.throws(() => codec[0](b.subarray(0, b.length - 1)), (e: unknown) => e instanceof ChatError && e.code === 'state-corrupt', `${name}: truncated`);
        assert.throws(() => codec[0](new Uint8Array([...b, 0])), (e: unknown) => e instanceof ChatError && e.code === 'state-corrupt', `${name}: trailing byte`);
      }
    }
    assert.ok(n >= 8, `${n} records checked`);
  });

  it('EncryptedStore: the protocol runs over it; records are unreadable without the key, bound to their names', async () => {
    const { ChatDevice, EncryptedStore, MemoryStore } = await import('../src/chat/index.js');
    const w = await World.create(['alice', 'bob']);
    await w.createSession(T0);
    const bob = w.party('bob');
    const raw = new MemoryStore();
    const key = new Uint8Array(32).fill(5);
    bob.dev = await ChatDevice.open(bob.id, w.chainId, new EncryptedStore(raw, key));
    bob.conv = await bob.dev.conversation(w.session);
    await w.publish(bob, T0, true, 2, { signed: 1, oneTime: 4 });
    const [p1] = await w.send('alice', T0 + 1, 'secret words');
    // Bob's new device holds none of the prekeys alice used; reset so alice fetches new ones.
    assert.equal(await w.open('bob', T0 + 2, p1!), 'error:unknown-prekey');
    const [pb] = await w.send('bob', T0 + 3, 'encrypted at rest');
    assert.equal(await w.open('alice', T0 + 4, pb!), 'encrypted at rest');
    const [p2] = await w.send('alice', T0 + 5, 'secret words');
    assert.equal(await w.open('bob', T0 + 6, p2!), 'secret words');
    const all = Buffer.concat([...raw.records.values()]);
    assert.equal(all.indexOf(Buffer.from('secret words')), -1, 'no plaintext at rest');
    assert.equal(all.indexOf(Buffer.from('encrypted at rest')), -1);
    // A wrong key, or a record moved to another name, is refused.
    const other = new EncryptedStore(raw, new Uint8Array(32).fill(6));
    await assert.rejects(other.get('device'), (e: unknown) => e instanceof ChatError && e.code === 'state-corrupt');
    const names = [...raw.records.keys()].filter((k) => k.startsWith('a/'));
    raw.records.set(names[0]!.replace(/\/[0-9]{16}\//, '/9999999999999999/'), raw.records.get(names[0]!)!);
    await assert.rejects(new EncryptedStore(raw, key).get(names[0]!.replace(/\/[0-9]{16}\//, '/9999999999999999/')), (e: unknown) => e instanceof ChatError && e.code === 'state-corrupt');
  });
});
