// The chain's rules as the SDK sees them: the stateless checks of the new
// transaction types, the error codes and retry policy of the node, the
// registration proof of work, and the client-side verification of what a
// node returns (participants from the creator-signed transaction, prekeys
// from the owner-signed ones), against a fake node that lies.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blake2b } from '@noble/hashes/blake2.js';
import {
  BusyError,
  busyPauseMs,
  checkTx,
  checkWork,
  Client,
  ContactStatus,
  DiskFullError,
  ForbiddenError,
  fromBase64,
  fromHex,
  identityFromSeed,
  IdentityMismatchError,
  idToString,
  InvalidTransactionError,
  InvalidWorkParamsError,
  isRefused,
  isRetryable,
  isNotFound,
  ModerationAction,
  NoSignedPrekeyError,
  parseTx,
  PrekeyExpiredError,
  PrekeyUnavailableError,
  RateLimitedError,
  ResponseMismatchError,
  RpcError,
  displayText,
  sessionIdFor,
  signTx,
  solveWork,
  workExcess,
  workPrefilter,
  workSeed,
  toBase64,
  TxDroppedError,
  UnknownTxError,
  UntrustedNodeError,
  utf8,
  verifyPrekeyBundle,
  verifySessionReply,
  WorkAbortedError,
  type PrekeyBundleReply,
} from '../src/index.js';
import { blake2b256OneBlock } from '../src/blake2b1.js';

const alice = identityFromSeed(fromHex('00'.repeat(32)));
const bob = identityFromSeed(fromHex('01'.repeat(32)));
const carol = identityFromSeed(fromHex('02'.repeat(32)));
const eve = identityFromSeed(fromHex('03'.repeat(32)));
const chainID = idToString(new Uint8Array(32).fill(9));
const otherChain = idToString(new Uint8Array(32).fill(8));
const MINIMAL_WORK = { memoryKiB: 8, iterations: 1, prefilterBits: 0, workBits: 0, maxPerBlock: 16 };

type Handler = (method: string, params: any) => { result?: unknown; error?: { code: number; message: string }; status?: number };
function fakeNode(handler: Handler, calls: string[] = []) {
  return (async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = JSON.parse(String(init!.body));
    const method = req.method.replace(/^session\./, '');
    calls.push(method);
    const r = handler(method, req.params);
    const body = JSON.stringify({ jsonrpc: '2.0', id: req.id, ...(r.error ? { error: r.error } : { result: r.result }) });
    return new Response(body, { status: r.status ?? 200, headers: { 'content-type': 'application/json' } });
  }) as typeof fetch;
}

function identityReply(id: typeof alice) {
  return { sessionId: id.sessionId, kemPublicKey: toBase64(id.kemPublicKey), dsaPublicKey: toBase64(id.dsaPublicKey), height: 0, timestamp: 0 };
}

describe('BLAKE2b-256 of one block (the pre-filter)', () => {
  it('equals noble blake2b for every input length from 0 to 128', () => {
    for (let n = 0; n <= 128; n++) {
      const x = Uint8Array.from({ length: n }, (_, i) => (i * 131 + n * 7) & 0xff);
      assert.deepEqual(blake2b256OneBlock(x), blake2b(x, { dkLen: 32 }), `length ${n}`);
      x.fill(0xff);
      assert.deepEqual(blake2b256OneBlock(x), blake2b(x, { dkLen: 32 }), `length ${n}, all ones`);
    }
    assert.throws(() => blake2b256OneBlock(new Uint8Array(129)), RangeError);
  });
});

describe('transactions: stateless rules of the new types', () => {
  const session = sessionIdFor(chainID, alice.sessionId, 1);
  const channel = sessionIdFor(chainID, alice.sessionId, 2);
  const key = bob.kemPublicKey;
  const badKey = key.slice();
  badKey[0] = 0xff;
  badKey[1] = 0x0f; // a coefficient of 4095 >= q
  const refused: Array<[string, () => unknown]> = [
    ['a session claim of an unlisted participant', () =>
      signTx(alice, chainID, 0, 'createSession', { participants: [bob.sessionId], claims: [{ participant: carol.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 0 }] })],
    ['a one-time prekey ID that is not a u32', () =>
      signTx(alice, chainID, 0, 'createSession', { participants: [bob.sessionId], claims: [{ participant: bob.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 2 ** 32 }] })],
    ['a message claiming from its author', () =>
      signTx(alice, chainID, 0, 'sendMessage', { session, claims: [{ participant: alice.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 1 }], ciphertext: utf8('x') })],
    ['a message claiming twice from one participant', () =>
      signTx(alice, chainID, 0, 'sendMessage', {
        session,
        claims: [
          { participant: bob.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 1 },
          { participant: bob.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 0 },
        ],
        ciphertext: utf8('x'),
      })],
    ['a claim of signed prekey 0', () => signTx(alice, chainID, 0, 'sendMessage', { session, claims: [{ participant: bob.sessionId, signedPrekeyId: 0, oneTimePrekeyId: 1 }], ciphertext: utf8('x') })],
    ['a channel name with a right-to-left override', () => signTx(alice, chainID, 0, 'createChannel', { name: 'abc\u202egnp.exe' })],
    ['a channel name with a zero-width joiner', () => signTx(alice, chainID, 0, 'createChannel', { name: 'a\u200db' })],
    ['a channel name with a tag character', () => signTx(alice, chainID, 0, 'createChannel', { name: 'a\u{e0041}' })],
    ['slow mode above a day', () => signTx(alice, chainID, 0, 'setChannelPolicy', { channel, joinPolicy: 1, slowModeSeconds: 86401 })],
    ['request policy 3', () => signTx(alice, chainID, 0, 'setRequestPolicy', { policy: 3 as never })],
    ['a one-time prekey at or below retireThrough', () => signTx(alice, chainID, 0, 'publishPrekeys', { retireThrough: 5, oneTime: [{ id: 5, kemPublicKey: key }] })],
    ['a registration with an invalid ML-KEM key', () => {
      const t = signTx(alice, chainID, 0, 'registerIdentity', { kemPublicKey: alice.kemPublicKey, dsaPublicKey: alice.dsaPublicKey, anchorHeight: 0n, work: 0n });
      checkTx({ ...t, author: alice.sessionId, payload: { ...t.payload, kemPublicKey: badKey } } as never, chainID);
    }],
    ['a registration with nonce 1', () => checkTx(signTx(alice, chainID, 1, 'registerIdentity', { kemPublicKey: alice.kemPublicKey, dsaPublicKey: alice.dsaPublicKey, anchorHeight: 0n, work: 0n }), chainID)],
    ['join policy 3', () => signTx(alice, chainID, 0, 'createChannel', { name: 'x', joinPolicy: 3 as never })],
    ['no prekeys', () => signTx(alice, chainID, 0, 'publishPrekeys', { signed: null, oneTime: [] })],
    ['no prekeys, retiring none', () => signTx(alice, chainID, 0, 'publishPrekeys', { signed: null, retireThrough: 0, oneTime: [] })],
    ['a signed prekey that is not an ML-KEM key', () => signTx(alice, chainID, 0, 'publishPrekeys', { signed: { id: 1, expiresAt: 1, kemPublicKey: badKey } })],
    ['a one-time prekey that is not an ML-KEM key', () => signTx(alice, chainID, 0, 'publishPrekeys', { oneTime: [{ id: 1, kemPublicKey: badKey }] })],
    ['one-time prekey IDs decreasing', () => signTx(alice, chainID, 0, 'publishPrekeys', { oneTime: [{ id: 2, kemPublicKey: key }, { id: 1, kemPublicKey: key }] })],
    ['33 one-time prekeys', () => signTx(alice, chainID, 0, 'publishPrekeys', { oneTime: Array.from({ length: 33 }, (_, i) => ({ id: i + 1, kemPublicKey: key })) })],
    ['decision 3', () => signTx(alice, chainID, 0, 'acceptSession', { session, decision: 3 as never })],
    ['contact status 3', () => signTx(alice, chainID, 0, 'setContact', { peer: bob.sessionId, status: 3 as never })],
    ['a contact status for oneself', () => signTx(alice, chainID, 0, 'setContact', { peer: alice.sessionId, status: ContactStatus.Blocked })],
    ['moderation of nobody', () => signTx(alice, chainID, 0, 'moderateChannel', { channel, action: ModerationAction.Ban, members: [] })],
    ['moderation of 65 members', () =>
      signTx(alice, chainID, 0, 'moderateChannel', { channel, action: ModerationAction.Ban, members: Array.from({ length: 65 }, (_, i) => identityFromSeed(new Uint8Array(32).fill(i + 10)).sessionId) })],
    ['moderating a member twice', () => signTx(alice, chainID, 0, 'moderateChannel', { channel, action: ModerationAction.Invite, members: [bob.sessionId, bob.sessionId] })],
    ['deleting no post', () => signTx(alice, chainID, 0, 'deletePosts', { channel, seqs: [] })],
    ['deleting a post twice', () => signTx(alice, chainID, 0, 'deletePosts', { channel, seqs: [4, 4] })],
    ['deleting 65 posts', () => signTx(alice, chainID, 0, 'deletePosts', { channel, seqs: Array.from({ length: 65 }, (_, i) => i + 1) })],
    ['a negative work', () => signTx(alice, chainID, 0, 'registerIdentity', { kemPublicKey: alice.kemPublicKey, dsaPublicKey: alice.dsaPublicKey, anchorHeight: 0n, work: -1n })],
    ['an anchor beyond a u64', () => signTx(alice, chainID, 0, 'registerIdentity', { kemPublicKey: alice.kemPublicKey, dsaPublicKey: alice.dsaPublicKey, anchorHeight: 1n << 64n, work: 0n })],
  ];
  for (const [name, f] of refused) it(`refuses to sign ${name}`, () => assert.throws(f, InvalidTransactionError));

  it('zero values sign as the chain encodes them and parse back filled in', () => {
    const t = parseTx(signTx(alice, chainID, 0, 'createSession', { participants: [bob.sessionId] }).bytes);
    assert.deepEqual(t.payload, { participants: [bob.sessionId], claims: [], metadata: new Uint8Array(0) });
    const pp = parseTx(signTx(alice, chainID, 4, 'setChannelPolicy', { channel, joinPolicy: 2 }).bytes);
    assert.deepEqual(pp.payload, { channel, joinPolicy: 2, slowModeSeconds: 0 });
    const pk = parseTx(signTx(alice, chainID, 5, 'publishPrekeys', { retireThrough: 9 }).bytes);
    assert.deepEqual(pk.payload, { signed: null, retireThrough: 9, oneTime: [] });
    const rp = parseTx(signTx(alice, chainID, 6, 'setRequestPolicy', { policy: 0 as never }).bytes);
    assert.equal((rp.payload as any).policy, 1, 'the zero value encodes as anyone');
    const c = parseTx(signTx(alice, chainID, 1, 'createChannel', { name: 'x' }).bytes);
    assert.equal((c.payload as any).joinPolicy, 1);
    const a = parseTx(signTx(alice, chainID, 2, 'acceptSession', { session }).bytes);
    assert.equal((a.payload as any).decision, 1);
    const s = parseTx(signTx(alice, chainID, 3, 'sendMessage', { session, ciphertext: utf8('x') }).bytes);
    assert.deepEqual((s.payload as any).claims, []);
  });

  it('refuses non-canonical bytes of the new types', () => {
    const base = signTx(alice, chainID, 0, 'publishPrekeys', { oneTime: [{ id: 1, kemPublicKey: key }] });
    const header = 1 + 32 + 1 + 33 + 8;
    const flip = (at: number, v: number) => {
      const b = base.unsignedBytes.slice();
      b[at] = v;
      return new Uint8Array([...b, ...base.signature]);
    };
    assert.throws(() => parseTx(flip(header, 2)), InvalidTransactionError, 'a boolean of 2');
    assert.throws(() => parseTx(flip(header + 1 + 4, 33)), InvalidTransactionError, '33 one-time prekeys');
    const ch = signTx(alice, chainID, 0, 'createChannel', { name: 'x' });
    const b = ch.bytes.slice();
    b[header + 4 + 1] = 0; // join policy 0: the zero value is written as 1
    assert.throws(() => parseTx(b), InvalidTransactionError);
    const m = signTx(alice, chainID, 0, 'moderateChannel', { channel, action: ModerationAction.Remove, members: [bob.sessionId] });
    const mb = m.bytes.slice();
    mb[header + 32] = 8; // action 8 parses, the check refuses it
    assert.throws(() => checkTx(parseTx(mb), chainID), InvalidTransactionError);
  });
});

describe('registration proof of work', () => {
  const p = { memoryKiB: 16, iterations: 1, prefilterBits: 6, workBits: 2 };
  const anchor = sessionIdFor(chainID, carol.sessionId, 9); // any block ID
  const seedOf = (who: string, h = 7n, id = anchor) => workSeed(chainID, who, h, id);
  it('a solved work value checks, for its author, chain and anchor only', async () => {
    const seed = seedOf(alice.sessionId);
    const { work, stats } = await solveWork(chainID, seed, p, { start: 12345n });
    assert.ok(checkWork(chainID, seed, work, p));
    assert.ok(stats.argon2 >= 1 && stats.prefilter >= stats.argon2);
    // Binding: (almost surely) invalid for another author, chain, anchor
    // height or anchor block; the pre-filter alone rejects with
    // probability 1 - 2^-6, both checks 1 - 2^-8.
    const others = [
      checkWork(chainID, seedOf(bob.sessionId), work, p),
      checkWork(otherChain, seed, work, p),
      checkWork(otherChain, workSeed(otherChain, alice.sessionId, 7n, anchor), work, p),
      checkWork(chainID, seedOf(alice.sessionId, 8n), work, p),
      checkWork(chainID, seedOf(alice.sessionId, 7n, sessionIdFor(chainID, carol.sessionId, 10)), work, p),
    ];
    assert.ok(others.filter(Boolean).length <= 1);
  });
  it('extra bits: the excess of the solve is at least what was asked', async () => {
    const seed = seedOf(alice.sessionId);
    const { work } = await solveWork(chainID, seed, p, { start: 0n, extra: 3 });
    assert.ok(workExcess(workPrefilter(seed, work, p).pre, p) >= 3);
  });
  it('solvers with disjoint strides find disjoint values; an abort stops a solve', async () => {
    const seed = seedOf(alice.sessionId);
    const a = await solveWork(chainID, seed, p, { start: 0n, stride: 2, offset: 0 });
    const b = await solveWork(chainID, seed, p, { start: 0n, stride: 2, offset: 1 });
    assert.equal(a.work % 2n, 0n);
    assert.equal(b.work % 2n, 1n);
    const ctl = new AbortController();
    ctl.abort();
    await assert.rejects(solveWork(chainID, seed, { ...p, workBits: 32 }, { signal: ctl.signal, progressMs: 0 }), WorkAbortedError);
  });
  it('refuses parameters a node could use to exhaust the client', async () => {
    for (const bad of [{ ...p, memoryKiB: 1 << 30 }, { ...p, memoryKiB: 4 }, { ...p, iterations: 0 }, { ...p, workBits: 33 }, { ...p, prefilterBits: -1 }]) {
      await assert.rejects(solveWork(chainID, seedOf(alice.sessionId), bad), InvalidWorkParamsError);
    }
    const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ result: { chainID, registration: { ...MINIMAL_WORK, memoryKiB: 1 << 30 } } })) });
    await assert.rejects(c.register(alice), ResponseMismatchError);
  });
  it('register solves the chain\'s work anchored to the last accepted block and signs it; busy: again with more excess', async () => {
    const reg = { ...p, maxPerBlock: 16, anchorWindow: 4096 };
    const sent: any[] = [];
    const progress: number[] = [];
    let busy = 2;
    const c = new Client('http://x/rpc', {
      busyRetries: 0,
      fetch: fakeNode((m, q) => {
        if (m === 'getConfig') return { result: { chainID, registration: reg } };
        if (m === 'status') return { result: { chainID, height: 41, lastAcceptedID: anchor } };
        if (m === 'getNonce') return { result: { sessionId: alice.sessionId, nonce: 0 } };
        const t = parseTx(fromBase64(q.tx));
        sent.push(t);
        if (busy-- > 0) return { error: { code: -32015, message: 'busy' } };
        return { result: { txID: t.id, type: t.type, author: t.author, nonce: 0 } };
      }),
    } as never);
    await c.register(alice, { onProgress: (s) => progress.push(s.argon2) });
    assert.equal(sent.length, 3);
    sent.forEach((t, i) => {
      assert.equal(t.type, 'registerIdentity');
      assert.equal(t.payload.anchorHeight, 41n);
      const seed = workSeed(chainID, alice.sessionId, 41n, anchor);
      assert.ok(checkWork(chainID, seed, t.payload.work, reg));
      assert.ok(workExcess(workPrefilter(seed, t.payload.work, reg).pre, reg) >= i, `retry ${i} has ${i} bits of excess`);
    });
    assert.ok(progress.length >= 1);
  });
});

describe('errors and retries', () => {
  it('classifies the new codes as Go does', () => {
    const e = (C: any, code: number) => new C(code, '', 'm');
    for (const x of [e(BusyError, -32015), e(DiskFullError, -32020), e(RateLimitedError, -32016)]) assert.ok(isRetryable(x), x.name);
    for (const x of [e(ForbiddenError, -32017), e(PrekeyUnavailableError, -32018), e(RateLimitedError, -32016)]) assert.ok(isRefused(x), x.name);
    assert.ok(!isRetryable(e(ForbiddenError, -32017)));
    assert.ok(isNotFound(e(UnknownTxError, -32019)));
  });
  it('a busy node: the call is sent again up to 4 times with growing pauses', async () => {
    for (const busy of [0, 1, 4, 5]) {
      const calls: string[] = [];
      let n = 0;
      const c = new Client('http://x/rpc', { fetch: fakeNode(() => (n++ < busy ? { error: { code: -32015, message: 'busy' }, status: 503 } : { result: { chainID } }), calls) });
      if (busy <= 4) assert.equal((await c.status()).chainID, chainID);
      else await assert.rejects(c.status(), BusyError);
      assert.equal(calls.length, Math.min(busy, 4) + 1, `${busy} busy answers`);
    }
    const calls: string[] = [];
    const never = new Client('http://x/rpc', { busyRetries: 0, fetch: fakeNode(() => ({ error: { code: -32015, message: 'busy' } }), calls) });
    await assert.rejects(never.status(), BusyError);
    assert.equal(calls.length, 1);
    for (let a = 0; a < 8; a++) {
      const d = 50 * 2 ** Math.min(a, 6);
      const ms = busyPauseMs(a);
      assert.ok(ms >= d * 0.75 && ms <= d * 1.25, `pause ${a}: ${ms}`);
    }
  });
  it('waitAccepted keeps polling through busy, disk full and rate limited, not through forbidden', async () => {
    const txID = idToString(new Uint8Array(32).fill(5));
    const script = [-32015, -32020, -32016, 0];
    const c = new Client('http://x/rpc', {
      pollIntervalMs: 1,
      busyRetries: 0,
      fetch: fakeNode(() => {
        const code = script.shift();
        if (code) return { error: { code, message: 'later' } };
        return { result: { txID, status: 'accepted', height: 2, index: 0 } };
      }),
    });
    assert.equal((await c.waitAccepted(txID)).status, 'accepted');
    const f = new Client('http://x/rpc', { pollIntervalMs: 1, fetch: fakeNode(() => ({ error: { code: -32017, message: 'no' } })) });
    await assert.rejects(f.waitAccepted(txID), ForbiddenError);
    const d = new Client('http://x/rpc', { pollIntervalMs: 1, fetch: fakeNode(() => ({ result: { txID, status: 'dropped', reason: 'rate limited' } })) });
    await assert.rejects(d.waitAccepted(txID), TxDroppedError);
  });
});

// A node that serves Alice's session with Bob, and may lie about it.
function sessionNode(createTx: Uint8Array, reply: Partial<Record<string, unknown>> = {}, calls: string[] = []) {
  const t = parseTx(createTx);
  const session = sessionIdFor(t.chainID, t.author, t.nonce);
  const participants = [t.author, ...(t.payload as any).participants];
  return fakeNode((m, q) => {
    if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
    if (m === 'getIdentity') {
      const id = [alice, bob, carol, eve].find((x) => x.sessionId === q.sessionId)!;
      return { result: identityReply(id) };
    }
    if (m === 'getSession') {
      return {
        result: {
          session,
          creator: t.author,
          participants,
          metadata: '',
          height: 1,
          createdAt: 0,
          expiresAt: 1e13,
          status: 'active',
          lastSeq: 0,
          stored: 0,
          participantStates: participants.map(() => 'accepted'),
          position: 1,
          createTx: toBase64(createTx),
          ...reply,
        },
      };
    }
    if (m === 'getNonce') return { result: { sessionId: q.sessionId, nonce: 0 } };
    return { error: { code: -32603, message: `unexpected ${m}` } };
  }, calls);
}

describe('verification: participants come from the creator-signed transaction', () => {
  const claim = { participant: bob.sessionId, signedPrekeyId: 3, oneTimePrekeyId: 7 };
  const created = signTx(alice, chainID, 4, 'createSession', { participants: [bob.sessionId], claims: [claim] });
  const session = sessionIdFor(chainID, alice.sessionId, 4);
  const reply = { session, creator: alice.sessionId, participants: [alice.sessionId, bob.sessionId], createTx: created.bytes };

  it('an honest reply verifies, with the claims the creator signed', () => {
    const v = verifySessionReply(chainID, reply, alice.publicIdentity());
    assert.deepEqual(v.participants, [alice.sessionId, bob.sessionId]);
    assert.deepEqual(v.claims, [claim]);
  });
  const lies: Array<[string, any, any?]> = [
    ['Eve added to the list', { participants: [alice.sessionId, bob.sessionId, eve.sessionId] }],
    ['Bob dropped', { participants: [alice.sessionId] }],
    ['the order changed', { participants: [bob.sessionId, alice.sessionId], creator: bob.sessionId }],
    ['another creator named', { creator: bob.sessionId }],
    ['the transaction of another session', { session: sessionIdFor(chainID, alice.sessionId, 5) }],
    ['no transaction', { createTx: new Uint8Array(0) }],
    ['a transaction of another chain', { createTx: signTx(alice, otherChain, 4, 'createSession', { participants: [bob.sessionId] }).bytes, session: sessionIdFor(otherChain, alice.sessionId, 4) }],
    ['a transaction of another type', { createTx: signTx(alice, chainID, 4, 'closeSession', { session }).bytes }],
    ['a transaction signed by Eve naming Alice', { createTx: forged(created.bytes) }],
  ];
  for (const [name, change] of lies) {
    it(`refuses ${name}`, () => {
      assert.throws(() => verifySessionReply(chainID, { ...reply, ...change }, alice.publicIdentity()), UntrustedNodeError);
    });
  }
  it('a creator key that is not the author\'s is refused', () => {
    assert.throws(() => verifySessionReply(chainID, reply, eve.publicIdentity()), UntrustedNodeError);
  });

  it('sendSealed to a session where the node added Eve: refused, nothing sent', async () => {
    const calls: string[] = [];
    const c = new Client('http://x/rpc', { fetch: sessionNode(created.bytes, { participants: [alice.sessionId, bob.sessionId, eve.sessionId], participantStates: ['accepted', 'accepted', 'accepted'] }, calls) });
    await assert.rejects(c.sendSealed(alice, session, utf8('for Bob only')), UntrustedNodeError);
    assert.ok(!calls.includes('sendMessage') && !calls.includes('getNonce'), calls.join(','));
    // The honest node: the message goes out sealed to Alice and Bob.
    const ok = new Client('http://x/rpc', { fetch: sessionNode(created.bytes, {}) });
    const v = await ok.verifiedSession(session);
    assert.deepEqual(v.participants, [alice.sessionId, bob.sessionId]);
  });
  it('a node that serves Eve\'s keys for the creator is refused', async () => {
    const lying = fakeNode((m) => {
      if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
      if (m === 'getIdentity') return { result: { ...identityReply(eve), sessionId: alice.sessionId } };
      return { result: { session, creator: alice.sessionId, participants: [alice.sessionId, bob.sessionId], metadata: '', height: 1, createdAt: 0, expiresAt: 0, status: 'active', lastSeq: 0, createTx: toBase64(created.bytes) } };
    });
    await assert.rejects(new Client('http://x/rpc', { fetch: lying }).verifiedSession(session), IdentityMismatchError);
  });
});

// Replaces a transaction's signature with Eve's signature of the same bytes.
function forged(bytes: Uint8Array): Uint8Array {
  const t = parseTx(bytes);
  const sig = eve.sign(t.unsignedBytes, utf8('luxfi/session/v1/tx'));
  return new Uint8Array([...t.unsignedBytes, ...sig]);
}

describe('verification: prekeys come from transactions their owner signed', () => {
  const now = 1_767_225_600_000;
  const day = 86_400_000;
  const spk = carol.kemPublicKey; // any ML-KEM-768 public key
  const otk = eve.kemPublicKey;
  const pub = signTx(bob, chainID, 1, 'publishPrekeys', { signed: { id: 3, expiresAt: now + day, kemPublicKey: spk }, oneTime: [{ id: 9, kemPublicKey: otk }] });
  const good: PrekeyBundleReply = {
    sessionId: bob.sessionId,
    kemPublicKey: bob.kemPublicKey,
    dsaPublicKey: bob.dsaPublicKey,
    signedPrekey: { id: 3, expiresAt: now + day, tx: pub.bytes },
    oneTimePrekey: { id: 9, tx: pub.bytes },
    unclaimed: 1,
  };
  it('an honest bundle gives the keys of the transaction', () => {
    const b = verifyPrekeyBundle(chainID, bob.sessionId, good, now);
    assert.deepEqual(b.signedPrekey, { id: 3, expiresAt: now + day, kemPublicKey: spk });
    assert.deepEqual(b.oneTime, { id: 9, kemPublicKey: otk });
    assert.equal(b.identity.sessionId, bob.sessionId);
    const none = verifyPrekeyBundle(chainID, bob.sessionId, { ...good, oneTimePrekey: undefined } as PrekeyBundleReply, now);
    assert.equal(none.oneTime, undefined);
  });
  const evePub = signTx(eve, chainID, 1, 'publishPrekeys', { signed: { id: 3, expiresAt: now + day, kemPublicKey: otk } });
  const lies: Array<[string, Partial<PrekeyBundleReply>, any]> = [
    ['another identity\'s keys', { kemPublicKey: eve.kemPublicKey, dsaPublicKey: eve.dsaPublicKey }, IdentityMismatchError],
    ['a signed prekey ID the transaction does not hold', { signedPrekey: { id: 4, expiresAt: now + day, tx: pub.bytes } }, UntrustedNodeError],
    ['another expiry than signed', { signedPrekey: { id: 3, expiresAt: now + 2 * day, tx: pub.bytes } }, UntrustedNodeError],
    ['Eve\'s transaction', { signedPrekey: { id: 3, expiresAt: now + day, tx: evePub.bytes } }, UntrustedNodeError],
    ['a forged signature', { signedPrekey: { id: 3, expiresAt: now + day, tx: forged(pub.bytes) } }, UntrustedNodeError],
    ['a one-time prekey the transaction does not hold', { oneTimePrekey: { id: 10, tx: pub.bytes } }, UntrustedNodeError],
    ['no signed prekey', { signedPrekey: undefined }, NoSignedPrekeyError],
  ];
  for (const [name, change, E] of lies) {
    it(`refuses ${name}`, () => assert.throws(() => verifyPrekeyBundle(chainID, bob.sessionId, { ...good, ...change } as PrekeyBundleReply, now), E));
  }
  it('refuses an expired signed prekey by the client\'s clock, and the Client uses its clock', async () => {
    assert.throws(() => verifyPrekeyBundle(chainID, bob.sessionId, good, now + day), PrekeyExpiredError);
    const node = fakeNode((m) => {
      if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
      return {
        result: {
          sessionId: bob.sessionId,
          kemPublicKey: toBase64(bob.kemPublicKey),
          dsaPublicKey: toBase64(bob.dsaPublicKey),
          signedPrekey: { id: 3, expiresAt: now + day, tx: toBase64(pub.bytes) },
          unclaimed: 0,
        },
      };
    });
    assert.equal((await new Client('http://x/rpc', { fetch: node, now: () => now }).prekeyBundle(bob.sessionId)).signedPrekey.id, 3);
    await assert.rejects(new Client('http://x/rpc', { fetch: node, now: () => now + 2 * day }).prekeyBundle(bob.sessionId), PrekeyExpiredError);
  });
});

describe('reads that check the node', () => {
  it('getTx: bytes that do not hash to the ID asked for are refused', async () => {
    const t = signTx(alice, chainID, 0, 'closeSession', { session: sessionIdFor(chainID, alice.sessionId, 1) });
    const other = signTx(alice, chainID, 1, 'closeSession', { session: sessionIdFor(chainID, alice.sessionId, 1) });
    const node = (bytes: Uint8Array) => fakeNode(() => ({ result: { txID: t.id, type: 'closeSession', tx: toBase64(bytes), height: 3, index: 1 } }));
    const r = await new Client('http://x/rpc', { fetch: node(t.bytes) }).tx(t.id);
    assert.equal(r.tx.id, t.id);
    assert.equal(r.height, 3);
    await assert.rejects(new Client('http://x/rpc', { fetch: node(other.bytes) }).tx(t.id), ResponseMismatchError);
  });
  it('listSessions and getRequests pages must move forward', async () => {
    const s1 = sessionIdFor(chainID, alice.sessionId, 1);
    const bad = new Client('http://x/rpc', { fetch: fakeNode(() => ({ result: { sessions: [{ session: s1, position: 5 }, { session: s1, position: 4 }], next: 4, more: false } })) });
    await assert.rejects(bad.sessions(alice.sessionId), ResponseMismatchError);
    const req = (entries: Array<[string, number]>, next = entries.at(-1)?.[1] ?? 0) =>
      new Client('http://x/rpc', {
        fetch: fakeNode(() => ({ result: { requests: entries.map(([c, position]) => ({ creator: c, session: s1, position, status: 'active' })), next, more: false } })),
      });
    // Ordered by position (time), whatever the creators' IDs.
    const [lo, hi] = [bob.sessionId, carol.sessionId].sort();
    assert.equal((await req([[hi!, 3], [lo!, 8]]).requests(alice.sessionId)).requests.length, 2);
    await assert.rejects(req([[lo!, 8], [hi!, 3]]).requests(alice.sessionId), ResponseMismatchError);
    await assert.rejects(req([[lo!, 3]], 9).requests(alice.sessionId), ResponseMismatchError);
    await assert.rejects(req([[lo!, 3]]).requests(alice.sessionId, 3), ResponseMismatchError);
    await assert.rejects(req([[alice.sessionId, 4]]).requests(alice.sessionId), ResponseMismatchError);
  });

  it('a node\'s error message is bounded, its controls and bidirectional overrides shown as U+FFFD', async () => {
    const lie = 'Your keys leaked.\nRestore \u202egnp.exe\u202c from your seed at evil.example ' + 'x'.repeat(100_000);
    const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ error: { code: -32001, message: lie } })) });
    const e = await c.identity(alice.sessionId).catch((x: unknown) => x);
    assert.ok(e instanceof RpcError, String(e));
    for (const s of [e.rpcMessage, e.message]) {
      assert.ok(!/[\n\u202e\u202c]/.test(s), JSON.stringify(s.slice(0, 80)));
      assert.ok(s.length < 400, `${s.length} characters`);
    }
    assert.ok(e.rpcMessage.startsWith('Your keys leaked.\uFFFDRestore \uFFFDgnp.exe\uFFFD from'), e.rpcMessage.slice(0, 60));
    assert.equal(displayText('ok \u{1F600} ünïcode'), 'ok \u{1F600} ünïcode', 'what is visible stays');
  });

  it('getChannel: a name the chain would refuse (a bidirectional override) is refused', async () => {
    const ch = sessionIdFor(chainID, alice.sessionId, 3);
    const reply = (name: string) => new Client('http://x/rpc', {
      fetch: fakeNode(() => ({ result: { channel: ch, owner: alice.sessionId, name, height: 1, createdAt: 1, joinPolicy: 'open', memberCount: 1, members: [alice.sessionId], memberRoles: ['owner'] } })),
    });
    assert.equal((await reply('general').channel(ch)).name, 'general');
    await assert.rejects(reply('admin\u202eexe.txt').channel(ch), ResponseMismatchError);
    await assert.rejects(reply('x'.repeat(65)).channel(ch), ResponseMismatchError);
  });

  it('getConfig: a node that names another chain after the first is refused', async () => {
    let chain = chainID;
    const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ result: { chainID: chain } })) });
    assert.equal(await c.chainID(), chainID);
    chain = otherChain;
    await assert.rejects(c.config(), ResponseMismatchError);
    assert.equal(await c.chainID(), chainID);
  });

  it('getClaims pages move forward and name a one-time prekey with its transaction', async () => {
    const s1 = sessionIdFor(chainID, alice.sessionId, 1);
    const e = (position: number, oneTime: number, tx?: string) => ({
      position, claimer: bob.sessionId, session: s1, txID: s1, signedPrekeyId: 1, oneTimePrekeyId: oneTime, ...(tx ? { oneTimeTx: tx } : {}), timestamp: 5,
    });
    const page = (claims: any[], next = claims.at(-1)?.position ?? 0) => new Client('http://x/rpc', { fetch: fakeNode(() => ({ result: { claims, next, more: false } })) });
    const ok = await page([e(2, 0), e(5, 7, s1)]).claims(alice.sessionId);
    assert.deepEqual(ok.claims.map((c) => [c.position, c.oneTimePrekeyId, c.oneTimeTx]), [[2, 0, undefined], [5, 7, s1]]);
    await assert.rejects(page([e(5, 0), e(2, 0)]).claims(alice.sessionId), ResponseMismatchError);
    await assert.rejects(page([e(2, 7)]).claims(alice.sessionId), ResponseMismatchError);
    await assert.rejects(page([e(2, 0, s1)]).claims(alice.sessionId), ResponseMismatchError);
    await assert.rejects(page([{ ...e(2, 0), claimer: alice.sessionId }]).claims(alice.sessionId), ResponseMismatchError);
  });
});
