// Decoders of untrusted bytes fail only with the SDK's own errors, for
// every truncation and extension of valid inputs and for random bit flips
// (as Go's TestBadLengths and the parse fuzzers do).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  fromBase64,
  fromHex,
  identityFromSeed,
  InvalidTransactionError,
  loadPublicIdentityFile,
  open,
  parsePublicIdentity,
  parseTx,
  SessionError,
  toBase64,
  decryptFromSender,
} from '../src/index.js';
import { vectors } from './helpers.js';

function onlySessionErrors(f: () => unknown, what: string): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof SessionError, `${what}: ${(e as Error).constructor.name}: ${(e as Error).message}`);
  }
}

// A deterministic xorshift, so failures reproduce.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('parseTx', () => {
  const valid = (vectors('transactions.json').valid as any[]).filter((v) => v.signed.length < 20_000);
  it('refuses every truncation and every one-byte extension', () => {
    for (const v of valid) {
      const b = fromBase64(v.signed);
      for (let n = 0; n < b.length; n += n < 300 || n > b.length - 40 ? 1 : 13) assert.throws(() => parseTx(b.subarray(0, n)), InvalidTransactionError, `${v.name}: ${n} bytes`);
      for (const x of [0, 1, 0xff]) {
        const ext = new Uint8Array(b.length + 1);
        ext.set(b);
        ext[b.length] = x;
        assert.throws(() => parseTx(ext), InvalidTransactionError);
      }
    }
  });
  it('random bit flips: refused with InvalidTransactionError, or parsed and re-encoded to themselves', () => {
    const r = rng(12345);
    for (const v of valid) {
      const b = fromBase64(v.signed);
      for (let i = 0; i < 300; i++) {
        const x = b.slice();
        const at = Math.floor(r() * Math.min(x.length, 200)); // the header and the payload's lengths
        x[at]! ^= 1 << Math.floor(r() * 8);
        try {
          const t = parseTx(x);
          assert.equal(toBase64(t.bytes), toBase64(x));
        } catch (e) {
          assert.ok(e instanceof InvalidTransactionError, `${v.name} flip at ${at}: ${(e as Error).message}`);
        }
      }
    }
  });
});

describe('open and decryptFromSender', () => {
  const sv = vectors('seal.json').cases[1];
  const idv = vectors('identities.json').identities as any[];
  const rcpt = identityFromSeed(fromHex(idv[sv.recipients[0]].seed));
  const env = fromBase64(sv.envelope);
  it('every truncation and extension of an envelope fails with an SDK error', () => {
    for (let n = 0; n < env.length; n += n < 64 ? 1 : 97) assert.throws(() => open(rcpt, env.subarray(0, n)), SessionError);
    const ext = new Uint8Array(env.length + 1);
    ext.set(env);
    assert.throws(() => open(rcpt, ext), SessionError);
  });
  it('a recipient count that lies fails with an SDK error', () => {
    for (const n of [0, 2, 1024, 1025, 65535]) {
      const x = env.slice();
      x[2] = n >> 8;
      x[3] = n & 0xff;
      assert.throws(() => open(rcpt, x), SessionError);
    }
  });
  it('reference envelopes: truncations fail with an SDK error', () => {
    const rv = vectors('reference.json').envelopes[0];
    const e = fromBase64(rv.envelope);
    const id = identityFromSeed(fromHex(idv[rv.recipient].seed));
    for (let n = 0; n < e.length; n += 37) assert.throws(() => decryptFromSender(id, e.subarray(0, n)), SessionError);
  });
});

describe('JSON inputs', () => {
  it('public identities and identity files: any shape fails with an SDK error', () => {
    const junk: unknown[] = [null, 1, 'x', [], {}, { sessionId: 1 }, { kemPublicKey: 'AAAA', dsaPublicKey: 'AAAA', sessionId: '07' }, { __proto__: { a: 1 } }];
    for (const j of junk) {
      onlySessionErrors(() => parsePublicIdentity(j), JSON.stringify(j));
      onlySessionErrors(() => loadPublicIdentityFile(JSON.stringify(j) ?? 'null'), JSON.stringify(j));
    }
    const f = JSON.parse(vectors('keyfiles.json').files[0].file);
    for (const k of Object.keys(f)) {
      for (const v of [null, 0, '', 'AA==', [], {}, -1, 1e308]) {
        onlySessionErrors(() => loadPublicIdentityFile(JSON.stringify({ ...f, [k]: v })), `${k}=${JSON.stringify(v)}`);
        onlySessionErrors(() => loadPublicIdentityFile(JSON.stringify({ ...f, kdf: { ...f.kdf, [k === 'kdf' ? 'logN' : 'r']: v } })), `kdf ${JSON.stringify(v)}`);
      }
    }
  });
});
