// The messaging protocol against the Go implementation's known-answer
// vectors (chat/chattest/testdata, docs/protocol.md section 15): the
// three-party script reproduced byte for byte, every intermediate value of
// its first handshake and first step, and every altered envelope giving
// its error class.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { fromHex, identityFromSeed, type Identity, type PublicIdentity, toHex, utf8, fromUtf8 } from '../src/index.js';
import {
  ChatError,
  type ChatSession,
  type Conversation,
  type Delivery,
  type Directory,
  MemoryStore,
  type PrekeyBundle,
  type ChatDevice,
  type OneTimePrekey,
  type SignedPrekey,
} from '../src/chat/index.js';
import { openDeterministicDevice, stream } from '../src/chat/chattest.js';
import * as D from '../src/chat/derive.js';
import { parseEnvelope, stanzaPrefix, type HandshakeStanza, type StepStanza } from '../src/chat/wire.js';
import { decapsulateSeed } from '../src/chat/ratchet.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { repoRoot } from './helpers.js';

const testdata = join(repoRoot, 'chat', 'chattest', 'testdata');
const kat = JSON.parse(readFileSync(join(testdata, 'conversation_kat.json'), 'utf8'));
const derivation = JSON.parse(readFileSync(join(testdata, 'derivation_kat.json'), 'utf8'));
const negative = JSON.parse(readFileSync(join(testdata, 'negative_kat.json'), 'utf8'));

interface Party {
  name: string;
  id: Identity;
  dev: ChatDevice;
  conv?: Conversation;
  signed?: SignedPrekey;
  oneTime: OneTimePrekey[];
}

interface Posted {
  position: number;
  hex: string;
  sender: number;
  claims: { participant: string; prekeyId: number }[];
  setup?: boolean;
}

/** Replays conversation_kat.json's script as Go's runner does (chat/chattest/vectors_test.go). */
class Runner implements Directory {
  parties: Party[] = [];
  session!: ChatSession;
  chain: Posted[] = [];
  chainId = fromHex(kat.chainId);

  static async create(sessionId = kat.sessionId as string): Promise<Runner> {
    const r = new Runner();
    for (const p of kat.parties) {
      const id = identityFromSeed(fromHex(p.identitySeed));
      assert.equal(id.sessionId, p.sessionId, `${p.name}: Session ID`);
      const dev = await openDeterministicDevice(stream(p.name), id, r.chainId, new MemoryStore());
      r.parties.push({ name: p.name, id, dev, oneTime: [] });
    }
    r.session = { chainId: r.chainId, id: fromHex(sessionId), participants: r.parties.map((p) => p.id.publicIdentity()), claims: [] };
    return r;
  }

  party(name: string): Party {
    const p = this.parties.find((x) => x.name === name);
    assert.ok(p, `unknown party ${name}`);
    return p;
  }

  bundle(p: Party): PrekeyBundle {
    const b: PrekeyBundle = { identity: p.id.publicIdentity(), signedPrekey: p.signed! };
    const o = p.oneTime.shift();
    if (o) b.oneTimePrekey = o;
    return b;
  }

  async prekeyBundle(sid: string): Promise<PrekeyBundle> {
    const p = this.parties.find((x) => x.id.sessionId === sid);
    if (!p) throw new Error('unknown participant');
    return this.bundle(p);
  }

  delivery(position: number): Delivery {
    const e = this.chain[position - 1]!;
    return { envelope: fromHex(e.hex), position, sender: this.parties[e.sender]!.id.sessionId, claims: e.claims };
  }

  async step(i: number, s: any): Promise<void> {
    const p = this.party(s.who);
    const where = `step ${i} (${s.who} ${s.op})`;
    switch (s.op) {
      case 'prekeys': {
        const up = await p.dev.generatePrekeys(s.time, !!s.signed, s.oneTime ?? 0);
        const got: any = {};
        if (up.signedPrekey) {
          p.signed = up.signedPrekey;
          got.signedPrekey = { id: up.signedPrekey.id, expiresAt: up.signedPrekey.expiresAt, publicKey: toHex(up.signedPrekey.publicKey) };
        }
        if (up.oneTimePrekeys.length) got.oneTimePrekeys = up.oneTimePrekeys.map((o) => ({ id: o.id, publicKey: toHex(o.publicKey) }));
        p.oneTime.push(...up.oneTimePrekeys);
        assert.deepEqual(got, s.upload, `${where}: prekeys`);
        return;
      }
      case 'create': {
        const bundles = this.parties.slice(1).map((q) => this.bundle(q));
        const claims = bundles.map((b) => b.oneTimePrekey?.id ?? 0);
        assert.deepEqual(claims, s.claims, `${where}: claims`);
        this.session = { ...this.session, claims };
        p.conv = await p.dev.createConversation(s.time, this.session, bundles);
        return;
      }
      case 'join':
        p.conv = await p.dev.conversation(this.session);
        return;
      case 'send': {
        const outs = await p.conv!.send(s.time, utf8(s.plaintext), this);
        const got = outs.map((o) => {
          const e: any = { position: this.chain.length + 1 };
          if (o.setup) e.setup = true;
          if (o.claims.length) e.claims = o.claims.map((c) => ({ participant: c.participant, prekeyId: c.prekeyId }));
          e.hex = toHex(o.envelope);
          this.chain.push({ position: e.position, hex: e.hex, sender: this.parties.indexOf(p), claims: o.claims, setup: o.setup });
          return e;
        });
        assert.equal(got.length, s.envelopes.length, `${where}: envelope count`);
        got.forEach((g: any, j: number) => {
          const want = s.envelopes[j];
          assert.equal(g.position, want.position, `${where}: position`);
          assert.deepEqual(g.claims, want.claims, `${where}: claims`);
          assert.equal(!!g.setup, !!want.setup, `${where}: setup`);
          assert.equal(g.hex.length, want.hex.length, `${where}: envelope ${j} size`);
          assert.ok(g.hex === want.hex, `${where}: envelope ${j} differs from the vector at byte ${firstDiff(g.hex, want.hex)}`);
        });
        return;
      }
      case 'open': {
        const got: any = {};
        try {
          const m = await p.conv!.open(s.time, this.delivery(s.position));
          if (m.setup) got.setup = true;
          else got.plaintext = fromUtf8(m.plaintext);
        } catch (e) {
          if (!(e instanceof ChatError)) throw e;
          got.error = e.code;
        }
        const want: any = {};
        if (s.error) want.error = s.error;
        if (s.setup) want.setup = true;
        if (s.plaintext !== undefined) want.plaintext = s.plaintext;
        assert.deepEqual(got, want, `${where} at position ${s.position}`);
        return;
      }
      default:
        assert.fail(`${where}: unknown op`);
    }
  }
}

function firstDiff(a: string, b: string): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return i >> 1;
  return Math.min(a.length, b.length) >> 1;
}

describe('conversation_kat.json', () => {
  it('replays the script: every envelope byte for byte, every plaintext', async () => {
    const r = await Runner.create();
    for (const [i, s] of (kat.steps as any[]).entries()) await r.step(i, s);
  });
});

function streamBytes(name: string, off: number, n: number): Uint8Array {
  return stream(name).read(off + n).slice(off);
}

describe('derivation_kat.json', () => {
  it('recomputes every intermediate value of the first handshake and the first step from the spec', () => {
    const ids = Object.fromEntries((kat.parties as any[]).map((p) => [p.name, identityFromSeed(fromHex(p.identitySeed))]));
    const idb = (n: string): Uint8Array => fromHex(ids[n]!.sessionId);
    const h: Record<string, string> = {};
    const s: Record<string, string> = {};
    const pd = D.participantsDigest([idb('alice'), idb('bob'), idb('carol')]);
    const sc = D.sessionContext(fromHex(kat.chainId), fromHex(kat.sessionId), pd);
    h.PD = toHex(pd);
    h.SC = toHex(sc);

    // Position 1, bob's stanza: a handshake with bob's signed prekey 1 and one-time prekey 1.
    const env1 = parseEnvelope(fromHex(kat.steps.find((x: any) => x.op === 'send').envelopes[0].hex));
    const st = env1.stanzas[0] as HandshakeStanza;
    assert.equal(st.type, 'handshake');
    const spkSeed = streamBytes('bob', 0, 64);
    const opkSeed = streamBytes('bob', 64, 64);
    const k1 = ids.bob!.decapsulate(st.c1);
    const k2 = decapsulateSeed(spkSeed, st.c2);
    const k3 = decapsulateSeed(opkSeed, st.c3);
    Object.assign(h, { K1: toHex(k1), K2: toHex(k2), K3: toHex(k3) });
    const th = D.handshakeTranscript({
      sc,
      initiator: idb('alice'),
      responder: idb('bob'),
      spkId: st.spkId,
      opkId: st.opkId,
      sync: st.sync,
      spkHash: D.keyHash(ml_kem768.keygen(spkSeed).publicKey),
      opkHash: D.keyHash(ml_kem768.keygen(opkSeed).publicKey),
      c1: st.c1,
      c2: st.c2,
      c3: st.c3,
    });
    const rh = D.handshakeRoot(th, k1, k2, k3);
    const tid = D.treeId(th);
    const s1 = D.nextSlot(rh);
    Object.assign(h, { TH: toHex(th), R_H: toHex(rh), treeId: toHex(tid), 'S_1(H)': toHex(s1.slot), 'SK_2(H)': toHex(s1.next) });
    const a1 = D.stepChain({ sc, sender: idb('alice'), peer: idb('bob'), targetId: tid, k: 1, q: 1, ct: D.NONE, ekHash: D.keyHash(env1.ratchetKey!), slot: s1.slot, kemSecret: D.NONE });
    const mk = D.nextMessageKey(a1.chainKey).mk;
    const wk = D.wrapKey(mk, env1.nonce, 0, 1);
    const ck = chacha20poly1305(wk, new Uint8Array(12), stanzaPrefix(st)).decrypt(st.wrapped);
    const hh = D.headerHash(env1.header);
    Object.assign(h, { 'CC(A1)': toHex(a1.context), R_A1: toHex(a1.root), CK_A1: toHex(a1.chainKey), 'id(A1)': toHex(a1.id), MK_0: toHex(mk), wk: toHex(wk), ck: toHex(ck), HH: toHex(hh) });
    const m = D.signedTranscript(sc, idb('alice'), hh, 1, 1767225602000, utf8('hello, this is alice'));
    h.M = toHex(m);
    assert.deepEqual(h, derivation.handshake);

    // Position 2, alice's stanza: bob's first chain B1, a step against A1 (k = 1, q = 1).
    const env2 = parseEnvelope(fromHex(kat.steps.filter((x: any) => x.op === 'send')[1].envelopes[0].hex));
    const sp = env2.stanzas[0] as StepStanza;
    assert.equal(sp.type, 'step');
    assert.deepEqual([sp.k, sp.q, sp.pn], [1, 1, 0]);
    assert.deepEqual(sp.target, a1.id);
    // alice's stream: three prekeys (192 bytes), then the nonce (16), the content key (32), the ratchet key seed (64).
    const a1Seed = streamBytes('alice', 192 + 16 + 32, 64);
    const K = decapsulateSeed(a1Seed, sp.ct);
    const slotA1 = D.nextSlot(a1.root).slot;
    const b1 = D.stepChain({ sc, sender: idb('bob'), peer: idb('alice'), targetId: a1.id, k: 1, q: 1, ct: sp.ct, ekHash: D.keyHash(env2.ratchetKey!), slot: slotA1, kemSecret: K });
    const mk2 = D.nextMessageKey(b1.chainKey).mk;
    const wk2 = D.wrapKey(mk2, env2.nonce, 1, 0);
    const ck2 = chacha20poly1305(wk2, new Uint8Array(12), stanzaPrefix(sp)).decrypt(sp.wrapped);
    Object.assign(s, { K: toHex(K), 'S_1(A1)': toHex(slotA1), 'CC(B1)': toHex(b1.context), R_B1: toHex(b1.root), CK_B1: toHex(b1.chainKey), 'id(B1)': toHex(b1.id), MK_0: toHex(mk2), wk: toHex(wk2), ck: toHex(ck2) });
    assert.deepEqual(s, derivation.step);
  });
});

describe('negative_kat.json', () => {
  // Each case is opened by bob after step 6 of the script (prekeys, create, joins) and alice's first send.
  const setup = async (sessionId?: string): Promise<Runner> => {
    const r = await Runner.create();
    for (const [i, s] of (kat.steps as any[]).slice(0, 7).entries()) await r.step(i, s);
    if (sessionId) {
      const bob = r.party('bob');
      r.session = { ...r.session, id: fromHex(sessionId) };
      bob.conv = await bob.dev.conversation(r.session);
    }
    return r;
  };
  for (const c of negative.cases as any[]) {
    it(`${c.name}: ${c.error}`, async () => {
      const r = await setup(c.sessionId);
      const bob = r.party('bob');
      const d: Delivery = { envelope: fromHex(c.hex), position: c.position, sender: c.sender, claims: r.chain[0]!.claims };
      await assert.rejects(bob.conv!.open(1767225603000, d), (e: unknown) => e instanceof ChatError && e.code === c.error, c.name);
      if (!c.sessionId) {
        // A failed open changes nothing: the original opens afterwards.
        const m = await bob.conv!.open(1767225603000, r.delivery(1));
        assert.equal(fromUtf8(m.plaintext), 'hello, this is alice');
      }
    });
  }
});

export type { PublicIdentity };
