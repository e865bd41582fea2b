// The SDK against the Go implementation's vectors (internal/jsvectors).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  channelIdFor,
  checkTx,
  decryptFromSender,
  DecryptionFailedError,
  encodeUnsigned,
  fromBase64,
  fromHex,
  identityFromSeed,
  idFromString,
  idToString,
  InvalidTransactionError,
  loadIdentityFile,
  NotRecipientError,
  open,
  parsePublicIdentity,
  parseTx,
  type Payloads,
  sessionIdFor,
  signTx,
  toBase64,
  toHex,
  type TxName,
  verifyTx,
  WrongPassphraseError,
  messageAD,
  utf8,
  concat,
  checkWork,
  solveWork,
  workArgon2,
  workPrefilter,
  workSeed,
  type RegistrationParams,
} from '../src/index.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { encryptToRecipientDeterministic, sealDeterministic, shakeStream, signTxDeterministic } from '../src/sealtest.js';
import { vectors } from './helpers.js';

const idv = vectors('identities.json').identities as any[];
const ids = idv.map((v) => identityFromSeed(fromHex(v.seed)));

describe('identities from seed', () => {
  idv.forEach((v, i) => {
    it(`seed ${v.seed.slice(0, 8)}…`, () => {
      const id = ids[i]!;
      assert.equal(id.sessionId, v.sessionId);
      assert.equal(toBase64(id.kemPublicKey), v.kemPublicKey);
      assert.equal(toBase64(id.dsaPublicKey), v.dsaPublicKey);
      const sk = id.exportSecretKeys();
      assert.equal(toBase64(sk.kemSecretKey), v.kemSecretKey);
      assert.equal(toBase64(sk.dsaSecretKey), v.dsaSecretKey);
      // The public identity JSON of ExportPublic parses to the same identity.
      const pub = parsePublicIdentity(v.publicJson);
      assert.equal(pub.sessionId, v.sessionId);
      assert.deepEqual(JSON.parse(v.publicJson), id.toJSON());
    });
  });
  it('the known answer of LLM.md', () => {
    assert.equal(ids[0]!.sessionId, '076902757b91d44d57b0a3cabd1fdd9c752712d5781f05d1b4b7d9c0cff019708e');
  });
});

describe('identity files written by Go (sessionctl key files)', () => {
  const files = vectors('keyfiles.json').files as any[];
  for (const f of files) {
    it(`opens a ${f.secret} file`, async () => {
      const id = await loadIdentityFile(f.file, f.passphrase);
      assert.equal(id.sessionId, f.sessionId);
      assert.equal(id.seed !== undefined, f.secret === 'seed');
    });
  }
  it('refuses a wrong passphrase', async () => {
    await assert.rejects(loadIdentityFile(files[0].file, files[0].passphrase + ' '), WrongPassphraseError);
  });
});

describe('transactions', () => {
  const tv = vectors('transactions.json');
  const chainID: string = tv.chainID;
  // The vectors' JSON: bytes in base64, the work as a decimal string.
  function payload(_type: TxName, p: any): Payloads[TxName] {
    const conv = (k: string, v: any): any => {
      if (['kemPublicKey', 'dsaPublicKey', 'metadata', 'ciphertext'].includes(k)) return fromBase64(v as string);
      if (k === 'work' || k === 'anchorHeight') return BigInt(v as string);
      if (Array.isArray(v)) return v.map((x) => (x !== null && typeof x === 'object' ? conv('', x) : x));
      if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([kk, vv]) => [kk, conv(kk, vv)]));
      return v;
    };
    return conv('', p);
  }
  for (const v of tv.valid as any[]) {
    it(`${v.type}: ${v.name}`, () => {
      const author = ids[v.author]!;
      const u = { chainID, author: author.sessionId, nonce: v.nonce, type: v.type as TxName, payload: payload(v.type, v.payload) };
      assert.equal(toHex(encodeUnsigned(u)), v.unsigned);
      const t = signTxDeterministic(author, u);
      assert.equal(toBase64(t.bytes), v.signed, 'signed bytes');
      assert.equal(t.id, v.txID);
      // Parsing Go's bytes gives back every field, and they re-encode to themselves.
      const p = parseTx(fromBase64(v.signed));
      assert.equal(p.id, v.txID);
      assert.equal(p.type, v.type);
      assert.equal(p.author, author.sessionId);
      assert.equal(p.nonce, v.nonce);
      assert.deepEqual(p.payload, u.payload);
      assert.equal(toHex(encodeUnsigned(p)), v.unsigned);
      assert.ok(verifyTx(p, author.publicIdentity()));
      assert.ok(!verifyTx(p, ids[(v.author + 1) % 3]!.publicIdentity()), 'another identity does not verify');
      checkTx(p, chainID);
      if (v.createsId) {
        const f = v.type === 'createSession' ? sessionIdFor : channelIdFor;
        assert.equal(f(chainID, author.sessionId, v.nonce), v.createsId);
      }
      // A hedged signature differs but verifies the same way.
      const hedged = signTx(author, chainID, v.nonce, v.type, u.payload as never);
      assert.notEqual(toBase64(hedged.bytes), v.signed);
      assert.ok(verifyTx(parseTx(hedged.bytes), author.publicIdentity()));
    });
  }
  for (const v of tv.refused as any[]) {
    it(`refuses (${v.refusedAt}): ${v.name}`, () => {
      const b = fromBase64(v.signed);
      if (v.refusedAt === 'parse') {
        assert.throws(() => parseTx(b), InvalidTransactionError);
      } else {
        const t = parseTx(b);
        assert.throws(() => checkTx(t, chainID), InvalidTransactionError);
      }
    });
  }
  it('a flipped bit anywhere in the signed part breaks the signature', () => {
    const v = (tv.valid as any[]).find((x) => x.type === 'postChannel');
    const b = fromBase64(v.signed);
    const author = ids[v.author]!.publicIdentity();
    for (const at of [0 + 40, 80, b.length - 100]) {
      const x = b.slice();
      x[at]! ^= 1;
      let ok = false;
      try {
        ok = verifyTx(parseTx(x), author);
      } catch {
        ok = false;
      }
      assert.equal(ok, false, `bit at ${at}`);
    }
  });
});

describe('IDs', () => {
  const v = vectors('ids.json');
  it('CB58', () => {
    for (const c of v.cb58) {
      assert.equal(idToString(fromHex(c.hex)), c.cb58);
      assert.equal(toHex(idFromString(c.cb58)), c.hex);
    }
  });
  it('refuses a CB58 ID with a bad checksum', () => {
    const s: string = v.cb58[2].cb58;
    const bad = s.slice(0, -1) + (s.endsWith('2') ? '3' : '2');
    assert.throws(() => idFromString(bad));
  });
  it('session and channel IDs', () => {
    for (const d of v.derived) {
      assert.equal(sessionIdFor(d.chainID, d.creator, d.nonce), d.session);
      assert.equal(channelIdFor(d.chainID, d.creator, d.nonce), d.channel);
    }
  });
});

describe('Seal', () => {
  const sv = vectors('seal.json');
  for (const c of sv.cases as any[]) {
    it(c.name, () => {
      const sender = ids[c.sender]!;
      const recipients = (c.recipients as number[]).map((i) => ids[i]!.publicIdentity());
      const pt = fromHex(c.plaintext);
      const ad = fromHex(c.ad);
      const env = sealDeterministic(shakeStream(c.randomSeed), sender, recipients, pt, ad);
      assert.equal(toBase64(env), c.envelope, 'envelope bytes');
      const goEnv = fromBase64(c.envelope);
      for (const r of c.recipients as number[]) {
        const o = open(ids[r]!, goEnv, ad);
        assert.deepEqual(o.plaintext, pt);
        assert.equal(o.sender.sessionId, sender.sessionId);
        assert.deepEqual(o.recipients, c.recipientSessionIds);
      }
      for (const x of c.outsiders as number[]) assert.throws(() => open(ids[x]!, goEnv, ad), NotRecipientError);
      const r0 = ids[c.recipients[0]]!;
      assert.throws(() => open(r0, goEnv, concat(ad, Uint8Array.of(1))), DecryptionFailedError);
    });
  }
  it('the session message AD is the label and the session ID', () => {
    const c = (sv.cases as any[]).find((x) => x.name.startsWith('session message'));
    const session = sessionIdFor(vectors('transactions.json').chainID, ids[0]!.sessionId, 1);
    assert.equal(toHex(messageAD(session)), c.ad);
    assert.deepEqual(messageAD(session).subarray(0, 24), utf8(sv.messageAdLabel));
  });
});

describe('reference envelope', () => {
  for (const c of vectors('reference.json').envelopes as any[]) {
    it(c.randomSeed, () => {
      const id = ids[c.recipient]!;
      const env = encryptToRecipientDeterministic(shakeStream(c.randomSeed), id.publicIdentity(), fromHex(c.plaintext));
      assert.equal(toBase64(env), c.envelope);
      assert.equal(toHex(decryptFromSender(id, fromBase64(c.envelope))), c.plaintext);
      const bad = fromBase64(c.envelope);
      bad[bad.length - 1]! ^= 1;
      assert.throws(() => decryptFromSender(id, bad), DecryptionFailedError);
    });
  }
});

describe('registration proof of work', () => {
  const wv = vectors('work.json');
  for (const c of wv.cases as any[]) {
    it(`solves as Go does: ${c.name}`, async () => {
      const author = ids[c.author]!.sessionId;
      const p: RegistrationParams = c.params;
      const seed = workSeed(c.chainID, author, BigInt(c.anchorHeight), c.anchorID);
      assert.equal(toHex(seed), c.seed, 'seed');
      const r = await solveWork(c.chainID, seed, p, { start: BigInt(c.start) });
      assert.equal(r.work, BigInt(c.work));
      assert.deepEqual(r.stats, { prefilter: c.prefilterEvaluations, argon2: c.argon2Evaluations });
      for (const tr of c.tries as any[]) {
        const { pre, ok } = workPrefilter(seed, BigInt(tr.work), p);
        assert.equal(toHex(pre), tr.pre, `pre-filter of ${tr.work}`);
        assert.equal(ok, tr.prefilterOk);
        if (ok) assert.equal(toHex(workArgon2(c.chainID, pre, p)), tr.out, `Argon2id of ${tr.work}`);
        assert.equal(checkWork(c.chainID, seed, BigInt(tr.work), p), tr.valid, `work ${tr.work}`);
      }
      // The same work anchored one block later is another puzzle.
      const later = workSeed(c.chainID, author, BigInt(c.anchorHeight) + 1n, c.anchorID);
      assert.notEqual(toHex(workPrefilter(later, r.work, p).pre), c.tries[0].pre);
    });
  }
  it('checks a work value Go solved at the default parameters', () => {
    const d = wv.defaults;
    d.tries.forEach((tr: any, i: number) => {
      const author = ids[i === 0 ? d.author : 1]!.sessionId;
      const seed = workSeed(d.chainID, author, BigInt(d.anchorHeight), d.anchorID);
      if (i === 0) assert.equal(toHex(seed), d.seed);
      const { pre, ok } = workPrefilter(seed, BigInt(tr.work), d.params);
      assert.equal(toHex(pre), tr.pre);
      assert.equal(ok, tr.prefilterOk);
      if (ok) assert.equal(toHex(workArgon2(d.chainID, pre, d.params)), tr.out);
      assert.equal(checkWork(d.chainID, seed, BigInt(tr.work), d.params), tr.valid);
    });
    assert.equal(d.tries[0].valid, true);
  });
  it('Argon2id (noble) gives what Go gives', () => {
    for (const a of wv.argon2id as any[]) {
      const out = argon2id(fromHex(a.password), fromHex(a.salt), { t: a.iterations, m: a.memoryKiB, p: 1, dkLen: 32 });
      assert.equal(toHex(out), a.out, `m=${a.memoryKiB} t=${a.iterations}`);
    }
  });
});
