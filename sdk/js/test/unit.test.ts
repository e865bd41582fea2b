// Unit tests: identity files, identities, encodings, and a client facing a
// node that lies or fails.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import {
  BadNonceError,
  Client,
  DEFAULT_SCRYPT,
  SCRYPT_LIMITS,
  EmptyPassphraseError,
  ErrorCode,
  fromBase64,
  generateIdentity,
  fromHex,
  identityFileParams,
  identityFromSecretKeys,
  identityFromSeed,
  IdentityMismatchError,
  InvalidIdentityFileError,
  InvalidParamsError,
  InvalidPublicKeyError,
  InvalidSecretKeyError,
  InvalidSessionIDError,
  isNotFound,
  isRefused,
  isRetryable,
  loadIdentityFile,
  loadPublicIdentityFile,
  MempoolFullError,
  type Message,
  openMessage,
  parsePublicIdentity,
  parseSessionId,
  ResponseMismatchError,
  RpcError,
  saveIdentityFile,
  upgradeIdentityFile,
  weakerScrypt,
  seal,
  messageAD,
  SenderMismatchError,
  sessionIdFor,
  toBase64,
  toHex,
  TransportError,
  TxDroppedError,
  TxUnknownError,
  UnknownSessionError,
  utf8,
  WrongPassphraseError,
  idToString,
} from '../src/index.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, vectors } from './helpers.js';

const alice = identityFromSeed(fromHex('00'.repeat(32)));
const bob = identityFromSeed(fromHex('01'.repeat(32)));
const fast = { scrypt: { logN: 10, r: 8, p: 1 } };

describe('identity files', () => {
  it('round-trips a seed identity with the parameters the caller chose', async () => {
    const text = await saveIdentityFile(alice, 'pw', fast);
    assert.deepEqual(identityFileParams(text), fast.scrypt);
    const back = await loadIdentityFile(text, 'pw');
    assert.equal(back.sessionId, alice.sessionId);
    assert.deepEqual(back.seed, alice.seed);
    assert.equal(loadPublicIdentityFile(text).sessionId, alice.sessionId);
  });
  it('upgradeIdentityFile rewrites a file weaker than the target (an imported one), and leaves one as strong alone', async () => {
    const weak = await saveIdentityFile(alice, 'pw', fast);
    const target = { logN: 11, r: 8, p: 1 };
    const up = await upgradeIdentityFile(weak, alice, 'pw', { scrypt: target });
    assert.ok(up !== undefined);
    assert.deepEqual(identityFileParams(up), target);
    assert.equal((await loadIdentityFile(up, 'pw')).sessionId, alice.sessionId, 'the same passphrase opens it');
    assert.equal(await upgradeIdentityFile(up, alice, 'pw', { scrypt: target }), undefined);
    assert.equal(await upgradeIdentityFile(await saveIdentityFile(alice, 'pw', { scrypt: { logN: 10, r: 16, p: 1 } }), alice, 'pw', { scrypt: target }), undefined, 'as much memory and work');
    assert.ok(weakerScrypt({ logN: 15, r: 8, p: 1 }), 'N = 2^15 (Go before issue 9) is weaker than the default');
    assert.ok(!weakerScrypt({ ...DEFAULT_SCRYPT }));
    await assert.rejects(upgradeIdentityFile(weak, bob, 'pw', { scrypt: target }), InvalidIdentityFileError);
  });
  it('defaults to what Go writes (logN 17, r 8, p 1: crypto/keyfile.go since issue 9)', async () => {
    assert.deepEqual({ ...DEFAULT_SCRYPT }, { logN: 17, r: 8, p: 1 });
    assert.ok(Object.isFrozen(DEFAULT_SCRYPT), 'the default cannot be lowered by a caller');
    const t0 = performance.now();
    const text = await saveIdentityFile(alice, 'pw');
    const saved = performance.now() - t0;
    assert.deepEqual(identityFileParams(text), { logN: 17, r: 8, p: 1 });
    const t1 = performance.now();
    assert.equal((await loadIdentityFile(text, 'pw')).sessionId, alice.sessionId);
    if (process.env.SCRYPT_TIMINGS) console.log(`scrypt logN 17 in Node: save ${saved.toFixed(0)} ms, load ${(performance.now() - t1).toFixed(0)} ms`);
    assert.deepEqual(Object.keys(JSON.parse(text)), ['version', 'sessionId', 'kemPublicKey', 'dsaPublicKey', 'kdf', 'nonce', 'sealed']);
  });
  it('round-trips an identity without a seed (expanded keys)', async () => {
    const sk = alice.exportSecretKeys();
    const keysOnly = identityFromSecretKeys(sk.kemSecretKey, sk.dsaSecretKey);
    assert.equal(keysOnly.seed, undefined);
    const back = await loadIdentityFile(await saveIdentityFile(keysOnly, 'pw', fast), 'pw');
    assert.equal(back.sessionId, alice.sessionId);
    assert.equal(back.seed, undefined);
  });
  it('refuses an empty passphrase', async () => {
    await assert.rejects(saveIdentityFile(alice, '', fast), EmptyPassphraseError);
  });
  it('a wrong passphrase or any changed field gives WrongPassphraseError', async () => {
    const text = await saveIdentityFile(alice, 'pw', fast);
    await assert.rejects(loadIdentityFile(text, 'pW'), WrongPassphraseError);
    const f = JSON.parse(text);
    const changes: Array<(f: any) => void> = [
      (f) => (f.kdf.r = 9),
      (f) => (f.kdf.logN = 11),
      (f) => (f.kdf.salt = toBase64(new Uint8Array(32).fill(7))),
      (f) => (f.nonce = toBase64(new Uint8Array(24))),
      (f) => {
        const s = fromBase64(f.sealed);
        s[5]! ^= 1;
        f.sealed = toBase64(s);
      },
    ];
    for (const change of changes) {
      const g = structuredClone(f);
      change(g);
      await assert.rejects(loadIdentityFile(JSON.stringify(g), 'pw'), WrongPassphraseError);
    }
    // The public part names another identity: the AD differs, so the same error.
    const g = structuredClone(f);
    g.sessionId = bob.sessionId;
    g.kemPublicKey = toBase64(bob.kemPublicKey);
    g.dsaPublicKey = toBase64(bob.dsaPublicKey);
    await assert.rejects(loadIdentityFile(JSON.stringify(g), 'pw'), WrongPassphraseError);
  });
  it('refuses malformed or too costly files before any work', async () => {
    const f = JSON.parse(await saveIdentityFile(alice, 'pw', fast));
    const bad: Array<(f: any) => void> = [
      (f) => (f.version = 2),
      (f) => (f.kdf.name = 'argon2id'),
      (f) => (f.kdf.logN = 23),
      (f) => (f.kdf.logN = 9),
      (f) => (f.kdf.r = 33),
      (f) => (f.kdf.p = 0),
      (f) => ((f.kdf.logN = 22), (f.kdf.r = 16)), // 512 MiB
      (f) => (f.extra = 1),
      (f) => (f.kdf.extra = 1),
      (f) => (f.salt = f.kdf.salt),
      (f) => (f.nonce = 'AAAA'),
      (f) => (f.sealed = toBase64(new Uint8Array(40))),
      (f) => (f.kemPublicKey = 'not base64!'),
    ];
    for (const change of bad) {
      const g = structuredClone(f);
      change(g);
      const t0 = Date.now();
      await assert.rejects(loadIdentityFile(JSON.stringify(g), 'pw'), InvalidIdentityFileError, JSON.stringify(g.kdf));
      assert.ok(Date.now() - t0 < 1000);
    }
    await assert.rejects(loadIdentityFile('{', 'pw'), InvalidIdentityFileError);
    await assert.rejects(loadIdentityFile('x'.repeat(70_000), 'pw'), InvalidIdentityFileError);
    await assert.rejects(saveIdentityFile(alice, 'pw', { scrypt: { logN: 23, r: 8, p: 1 } }), InvalidIdentityFileError);
  });
  it("DEFAULT_SCRYPT and SCRYPT_LIMITS are Go's (crypto/keyfile.go: what Save writes, what LoadIdentity accepts)", () => {
    const go = readFileSync(join(repoRoot, 'crypto', 'keyfile.go'), 'utf8');
    const num = (re: RegExp) => Number(re.exec(go)?.[1]);
    assert.equal(DEFAULT_SCRYPT.logN, num(/^const defaultScryptLogN = (\d+)$/m));
    assert.match(go, /scryptLogN\.Store\(defaultScryptLogN\)/);
    assert.match(go, /scryptKDF\{Name: "scrypt", LogN: int\(scryptLogN\.Load\(\)\), R: 8, P: 1,/);
    assert.deepEqual([DEFAULT_SCRYPT.r, DEFAULT_SCRYPT.p], [8, 1]);
    assert.equal(SCRYPT_LIMITS.minLogN, num(/minScryptLogN = (\d+)/));
    assert.equal(SCRYPT_LIMITS.maxLogN, num(/maxScryptLogN = (\d+)/));
    assert.equal(SCRYPT_LIMITS.maxR, num(/maxScryptR {4}= (\d+)/));
    assert.equal(SCRYPT_LIMITS.maxP, num(/maxScryptP {4}= (\d+)/));
    assert.equal(SCRYPT_LIMITS.maxMemory, 2 ** 20 * num(/maxScryptMemory = (\d+) << 20/));
  });
  it('loads files with the parameters they were written with (N = 2^15 before issue 9, and lower ones within bounds)', async () => {
    for (const scrypt of [{ logN: 15, r: 8, p: 1 }, { logN: 10, r: 1, p: 2 }]) {
      const text = await saveIdentityFile(alice, 'pw', { scrypt });
      assert.deepEqual(identityFileParams(text), scrypt);
      assert.equal((await loadIdentityFile(text, 'pw')).sessionId, alice.sessionId);
    }
  });
});

describe('identities', () => {
  it('never prints secret keys', () => {
    const id = generateIdentity();
    const s = JSON.stringify(id) + String(id) + `${id}` + inspect(id, { showHidden: true, depth: 5 }) + inspect({ nested: [id] });
    assert.ok(s.includes(id.sessionId));
    const { kemSecretKey, dsaSecretKey } = id.exportSecretKeys();
    // (An expanded ML-DSA key starts with ρ, which is public: look past it.)
    for (const secret of [kemSecretKey.subarray(0, 30), dsaSecretKey.subarray(64, 94), id.seed!]) {
      assert.ok(!s.includes(toBase64(secret).slice(0, 36)));
      assert.ok(!s.includes(toHex(secret).slice(0, 40)));
    }
    assert.ok(!('kemSecretKey' in JSON.parse(JSON.stringify(id))));
  });
  it('accepts seed-form secret keys and refuses mismatched or corrupted ones', () => {
    const iv = vectors('identities.json').identities[0];
    const fromSeeds = identityFromSecretKeys(fromHex(iv.kemSeed), fromHex(iv.dsaSeed));
    assert.equal(fromSeeds.sessionId, iv.sessionId);
    const a = alice.exportSecretKeys();
    const b = bob.exportSecretKeys();
    const corruptKEM = a.kemSecretKey.slice();
    corruptKEM[10]! ^= 1; // ŝ: the embedded public key and its hash stay intact
    assert.throws(() => identityFromSecretKeys(corruptKEM, a.dsaSecretKey), InvalidSecretKeyError);
    const corruptDSA = a.dsaSecretKey.slice();
    corruptDSA[70]! ^= 1; // tr
    assert.throws(() => identityFromSecretKeys(a.kemSecretKey, corruptDSA), InvalidSecretKeyError);
    assert.throws(() => identityFromSecretKeys(a.kemSecretKey.subarray(1), a.dsaSecretKey), InvalidSecretKeyError);
    // Halves of two identities are a consistent pair per algorithm: fine.
    assert.notEqual(identityFromSecretKeys(a.kemSecretKey, b.dsaSecretKey).sessionId, alice.sessionId);
  });
  it('parses Session IDs strictly', () => {
    assert.equal(parseSessionId(alice.sessionId).prefix, 7);
    assert.equal(parseSessionId('05' + '0'.repeat(64)).prefix, 5);
    for (const bad of ['', alice.sessionId.toUpperCase(), '06' + '0'.repeat(64), alice.sessionId + '0', '07' + 'g'.repeat(64)]) {
      assert.throws(() => parseSessionId(bad), InvalidSessionIDError);
    }
  });
  it('public identities must derive their Session ID and carry no secrets', () => {
    const json = alice.toJSON();
    assert.equal(parsePublicIdentity(JSON.stringify(json)).sessionId, alice.sessionId);
    assert.throws(() => parsePublicIdentity({ ...json, sessionId: bob.sessionId }), InvalidSessionIDError);
    assert.throws(() => parsePublicIdentity({ ...json, kemSecretKey: 'AAAA' }), InvalidPublicKeyError);
    // A KEM key with a coefficient >= q fails the FIPS 203 modulus check.
    const k = alice.kemPublicKey.slice();
    k[0] = 0xff;
    k[1] = 0x0f;
    assert.throws(() => parsePublicIdentity({ ...json, kemPublicKey: toBase64(k) }), InvalidPublicKeyError);
  });
});

describe('base64', () => {
  it('is strict and canonical', () => {
    for (let n = 0; n < 10; n++) {
      const b = Uint8Array.from({ length: n }, (_, i) => i * 37);
      assert.equal(toBase64(b), Buffer.from(b).toString('base64'));
      assert.deepEqual(fromBase64(toBase64(b)), b);
    }
    for (const bad of ['A', 'AB=', 'A===', 'AB=C', 'AB-_', 'AR==']) assert.throws(() => fromBase64(bad), TypeError, bad);
  });
});

// A fake node: answers from a handler, so tests can make it lie.
function fakeNode(handler: (method: string, params: any) => { result?: unknown; error?: { code: number; message: string }; status?: number; raw?: string }) {
  return async (_url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = JSON.parse(String(init!.body));
    const r = handler(req.method.replace(/^session\./, ''), req.params);
    const body = r.raw ?? JSON.stringify({ jsonrpc: '2.0', id: req.id, ...(r.error ? { error: r.error } : { result: r.result }) });
    return new Response(body, { status: r.status ?? 200, headers: { 'content-type': 'application/json' } });
  };
}

const chainID = idToString(new Uint8Array(32).fill(9));
/** Registration work of a test chain: one Argon2id over 8 KiB, any work value passes. */
const MINIMAL_WORK = { memoryKiB: 8, iterations: 1, prefilterBits: 0, workBits: 0, maxPerBlock: 16 };

describe('client: typed errors', () => {
  it('maps every documented code to its class', async () => {
    for (const [name, code] of Object.entries(ErrorCode)) {
      const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ error: { code, message: name } })) as typeof fetch });
      const err = await c.status().then(() => undefined, (e) => e);
      assert.ok(err instanceof RpcError, name);
      assert.equal(err.code, code);
      assert.notEqual(err.constructor, RpcError, `${name} has its own class`);
    }
    const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ error: { code: -32002, message: 'unknown session' } })) as typeof fetch });
    const e = await c.session(chainID).catch((x) => x);
    assert.ok(e instanceof UnknownSessionError && isNotFound(e) && isRefused(e) && !isRetryable(e));
    assert.ok(isRetryable(new MempoolFullError(-32006, '', 'm')));
  });
  it('reports an unreachable node or a non-JSON-RPC answer as TransportError', async () => {
    const down = new Client('http://127.0.0.1:9/rpc', { timeoutMs: 2000 });
    await assert.rejects(down.status(), TransportError);
    const html = new Client('http://x/rpc', { fetch: fakeNode(() => ({ raw: '<html>', status: 502 })) as typeof fetch });
    await assert.rejects(html.status(), TransportError);
  });
  it('checks page parameters before asking', async () => {
    const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ result: {} })) as typeof fetch });
    await assert.rejects(c.messages(chainID, -1), InvalidParamsError);
    await assert.rejects(c.messages(chainID, 0, 1001), InvalidParamsError);
  });
});

describe('client: a lying node is detected', () => {
  it('keys that do not derive the Session ID', async () => {
    const c = new Client('http://x/rpc', {
      fetch: fakeNode(() => ({
        result: { sessionId: alice.sessionId, kemPublicKey: toBase64(bob.kemPublicKey), dsaPublicKey: toBase64(bob.dsaPublicKey), height: 1, timestamp: 0 },
      })) as typeof fetch,
    });
    await assert.rejects(c.publicIdentity(alice.sessionId), IdentityMismatchError);
  });
  it('messages of another target, out of order, or a wrong cursor', async () => {
    const session = sessionIdFor(chainID, alice.sessionId, 1);
    const other = sessionIdFor(chainID, alice.sessionId, 2);
    const msg = (target: string, seq: number) => ({ target, seq, author: bob.sessionId, txID: chainID, height: 1, position: seq, timestamp: 0, ciphertext: 'AA==' });
    const cases = [
      { messages: [msg(other, 1)], next: 1, more: false },
      { messages: [msg(session, 2), msg(session, 1)], next: 1, more: false },
      { messages: [msg(session, 1)], next: 7, more: false },
      { messages: [msg(session, 0)], next: 0, more: false },
    ];
    for (const result of cases) {
      const c = new Client('http://x/rpc', { fetch: fakeNode(() => ({ result })) as typeof fetch });
      await assert.rejects(c.messages(session, 0), ResponseMismatchError);
    }
  });
  it('a write reply that names another transaction', async () => {
    const c = new Client('http://x/rpc', {
      fetch: fakeNode((m) => {
        if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
        if (m === 'status') return { result: { chainID, height: 0, lastAcceptedID: chainID } };
        if (m === 'getNonce') return { result: { sessionId: alice.sessionId, nonce: 0 } };
        return { result: { txID: chainID, type: 'registerIdentity', author: alice.sessionId, nonce: 0 } };
      }) as typeof fetch,
    });
    await assert.rejects(c.register(alice), ResponseMismatchError);
  });
  it('an envelope re-posted by someone else than its signer', () => {
    const session = sessionIdFor(chainID, alice.sessionId, 1);
    const env = seal(alice, [alice.publicIdentity(), bob.publicIdentity()], utf8('hi'), messageAD(session));
    const m: Message = { target: session, seq: 1, author: bob.sessionId, txID: chainID, height: 1, position: 1, timestamp: 0, ciphertext: env };
    assert.throws(() => openMessage(bob, m), SenderMismatchError);
    assert.equal(new TextDecoder().decode(openMessage(bob, { ...m, author: alice.sessionId }).plaintext), 'hi');
    // Replayed into another session, the AD differs.
    assert.throws(() => openMessage(bob, { ...m, author: alice.sessionId, target: sessionIdFor(chainID, alice.sessionId, 2) }));
  });
});

describe('client: signing helpers and waiting', () => {
  it('retries once after a bad nonce, with the nonce fetched again', async () => {
    let nonceCalls = 0;
    let writes = 0;
    const c = new Client('http://x/rpc', {
      fetch: fakeNode((m, p) => {
        if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
        if (m === 'status') return { result: { chainID, height: 0, lastAcceptedID: chainID } };
        if (m === 'getNonce') return { result: { sessionId: alice.sessionId, nonce: nonceCalls++ === 0 ? 3 : 5 } };
        writes++;
        const { parseTx } = require_tx();
        const t = parseTx(fromBase64(p.tx));
        if (t.nonce !== 5) return { error: { code: -32008, message: 'nonce already used' } };
        return { result: { txID: t.id, type: t.type, author: t.author, nonce: t.nonce } };
      }) as typeof fetch,
    });
    const r = await c.register(alice);
    assert.equal(r.nonce, 5);
    assert.equal(writes, 2);
    assert.equal(nonceCalls, 2);
  });
  it('gives up after a second bad nonce', async () => {
    const c = new Client('http://x/rpc', {
      fetch: fakeNode((m) => {
        if (m === 'getConfig') return { result: { chainID, registration: MINIMAL_WORK } };
        if (m === 'status') return { result: { chainID, height: 0, lastAcceptedID: chainID } };
        if (m === 'getNonce') return { result: { sessionId: alice.sessionId, nonce: 0 } };
        return { error: { code: -32008, message: 'nonce already used' } };
      }) as typeof fetch,
    });
    await assert.rejects(c.register(alice), BadNonceError);
  });
  it('waitAccepted: dropped, unknown, and riding out a busy node', async () => {
    const seqs: Record<string, string[]> = { a: ['pending', 'dropped'], b: ['unknown', 'unknown', 'unknown'], c: ['busy', 'pending', 'accepted'] };
    const txs = { a: idToString(new Uint8Array(32).fill(1)), b: idToString(new Uint8Array(32).fill(2)), c: idToString(new Uint8Array(32).fill(3)) };
    const c = new Client('http://x/rpc', {
      pollIntervalMs: 1,
      fetch: fakeNode((_m, p) => {
        const k = (Object.keys(txs) as Array<keyof typeof txs>).find((x) => txs[x] === p.txID)!;
        const s = seqs[k]!.shift()!;
        if (s === 'busy') return { error: { code: -32006, message: 'mempool full' } };
        return { result: { txID: p.txID, status: s, height: 4, index: 0, ...(s === 'dropped' ? { reason: 'expired' } : {}) } };
      }) as typeof fetch,
    });
    await assert.rejects(c.waitAccepted(txs.a), (e) => e instanceof TxDroppedError && e.reason === 'expired');
    await assert.rejects(c.waitAccepted(txs.b), TxUnknownError);
    assert.equal((await c.waitAccepted(txs.c)).height, 4);
  });
});

import * as txmod from '../src/tx.js';
function require_tx() {
  return txmod;
}
