// The messaging protocol against the Go implementation's known-answer
// vectors (chat/chattest/testdata, docs/protocol.md section 15): the
// three-party script replayed byte for byte (every envelope, claim and
// outcome), every intermediate value of section 5 recomputed from the
// spec's formulas, and every altered envelope giving its error class.
// $CHAT_TESTDATA overrides the directory (to check vectors of a branch).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { fromHex, fromUtf8, identityFromSeed, type Identity, toHex, utf8 } from '../src/index.js';
import { ChatError, type ChatDevice, type ChatSession, type Claim, type Conversation, type Delivery, type Directory, MemoryStore, type OneTimePrekey, type PrekeyBundle, type SignedPrekey } from '../src/chat/index.js';
import { openDeterministicDevice, stream } from '../src/chat/chattest.js';
import * as D from '../src/chat/derive.js';
import { type HandshakeStanza, Kind, parseEnvelope, stanzaPrefix, type StepStanza } from '../src/chat/wire.js';
import { decapsulateSeed } from '../src/chat/ratchet.js';
import { repoRoot } from './helpers.js';

const testdata = process.env.CHAT_TESTDATA ?? join(repoRoot, 'chat', 'chattest', 'testdata');
const load = (f: string): any => JSON.parse(readFileSync(join(testdata, f), 'utf8'));
const kat = load('conversation_kat.json');
const derivation = load('derivation_kat.json');
const negative = load('negative_kat.json');

interface Party {
  name: string;
  id: Identity;
  dev: ChatDevice;
  conv?: Conversation;
  signed?: SignedPrekey;
  oneTime: OneTimePrekey[];
}

interface Posted {
  hex: string;
  sender: number;
  claims: Claim[];
  id: Uint8Array;
}

const katClaims = (cs: readonly Claim[]): any[] | undefined =>
  cs.length ? cs.map((c) => ({ participant: c.participant, signedPrekeyId: c.signedPrekeyId, oneTimePrekeyId: c.oneTimePrekeyId })) : undefined;

/** Replays conversation_kat.json as Go's runner does: the directory hands out the newest signed prekey and the lowest one-time prekey not handed out yet. */
class Runner implements Directory {
  parties: Party[] = [];
  session!: ChatSession;
  chain: Posted[] = [];
  chainId = fromHex(kat.chainId);

  static async create(): Promise<Runner> {
    const r = new Runner();
    for (const p of kat.parties) {
      const id = identityFromSeed(fromHex(p.identitySeed));
      assert.equal(id.sessionId, p.sessionId, `${p.name}: Session ID`);
      r.parties.push({ name: p.name, id, dev: await openDeterministicDevice(stream(p.name), id, r.chainId, new MemoryStore()), oneTime: [] });
    }
    r.session = { chainId: r.chainId, id: fromHex(kat.sessionId), participants: r.parties.map((p) => p.id.publicIdentity()), claims: [] };
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

  delivery(position: number, claims?: Claim[]): Delivery {
    const e = this.chain[position - 1]!;
    return { envelope: fromHex(e.hex), position, sender: this.parties[e.sender]!.id.sessionId, claims: claims ?? e.claims };
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
        const claims: Claim[] = bundles.map((b) => ({ participant: b.identity.sessionId, signedPrekeyId: b.signedPrekey.id, oneTimePrekeyId: b.oneTimePrekey?.id ?? 0 }));
        assert.deepEqual(katClaims(claims) ?? [], s.claims ?? [], `${where}: claims`);
        this.session = { ...this.session, claims };
        p.conv = await p.dev.createConversation(s.time, this.session, bundles);
        return;
      }
      case 'join':
        p.conv = await p.dev.conversation(this.session);
        return;
      case 'reset':
        await p.conv!.reset(this.party(s.peer).id.sessionId);
        return;
      case 'send':
      case 'dead':
      case 'heal': {
        const outs =
          s.op === 'send'
            ? await p.conv!.send(s.time, utf8(s.plaintext), this)
            : s.op === 'dead'
              ? await p.conv!.dead(s.time, this.chain[s.position - 1]!.id, this)
              : await p.conv!.sendRatchet(s.time);
        const want = (s.envelopes ?? []) as any[];
        assert.equal(outs.length, want.length, `${where}: envelope count`);
        outs.forEach((o, j) => {
          const w = want[j]!;
          const h = toHex(o.envelope);
          assert.equal(this.chain.length + 1, w.position, `${where}: position`);
          assert.equal(o.role !== 'content', !!w.control, `${where}: envelope ${j} control`);
          assert.deepEqual(katClaims(o.claims), w.claims, `${where}: envelope ${j} claims`);
          assert.equal(h.length, w.hex.length, `${where}: envelope ${j} size`);
          assert.ok(h === w.hex, `${where}: envelope ${j} differs from the vector at byte ${firstDiff(h, w.hex)}`);
          this.chain.push({ hex: h, sender: this.parties.indexOf(p), claims: o.claims, id: o.envelopeId });
        });
        return;
      }
      case 'open': {
        const got: any = {};
        try {
          const m = await p.conv!.open(s.time, this.delivery(s.position));
          if (m.control) got.control = true;
          else got.plaintext = fromUtf8(m.plaintext);
        } catch (e) {
          if (!(e instanceof ChatError)) throw e;
          got.error = e.code;
        }
        const want: any = {};
        if (s.error) want.error = s.error;
        if (s.control) want.control = true;
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
  it('replays the script: every envelope and claim byte for byte, every outcome', async () => {
    const r = await Runner.create();
    for (const [i, s] of (kat.steps as any[]).entries()) await r.step(i, s);
  });
});

function streamBytes(name: string, off: number, n: number): Uint8Array {
  return stream(name).read(off + n).slice(off);
}

describe('derivation_kat.json', () => {
  it('recomputes every intermediate value of section 5 from the formulas and the random streams', () => {
    const ids = Object.fromEntries((kat.parties as any[]).map((p) => [p.name, identityFromSeed(fromHex(p.identitySeed))]));
    const idb = (n: string): Uint8Array => fromHex(ids[n]!.sessionId);
    const sends = (kat.steps as any[]).filter((x) => x.op === 'send');
    const pd = D.participantsDigest([idb('alice'), idb('bob'), idb('carol')]);
    const sc = D.sessionContext(fromHex(kat.chainId), fromHex(kat.sessionId), pd);

    // Position 1, bob's stanza: a handshake with bob's signed prekey 1 and one-time prekey 1. Alice's stream:
    // three prekeys (192 bytes), then mid (16), N (16), r (32), the ratchet key seed (64).
    const h: Record<string, string> = { PD: toHex(pd), SC: toHex(sc) };
    const env1 = parseEnvelope(fromHex(sends[0].envelopes[0].hex));
    const st = env1.stanzas[0] as HandshakeStanza;
    assert.equal(st.type, 'handshake');
    const handshake = (o: Record<string, string>, x: { initiator: string; responder: string; st: HandshakeStanza; spk: Uint8Array; opk?: Uint8Array; ek: Uint8Array }) => {
      const k1 = ids[x.responder]!.decapsulate(x.st.c1);
      const k2 = decapsulateSeed(x.spk, x.st.c2);
      const k3 = x.opk ? decapsulateSeed(x.opk, x.st.c3) : D.NONE;
      const th = D.handshakeTranscript({
        sc,
        initiator: idb(x.initiator),
        responder: idb(x.responder),
        spkId: x.st.spkId,
        opkId: x.st.opkId,
        gen: x.st.gen,
        spkHash: D.keyHash(ml_kem768.keygen(x.spk).publicKey),
        opkHash: x.opk ? D.keyHash(ml_kem768.keygen(x.opk).publicKey) : D.NONE,
        c1: x.st.c1,
        c2: x.st.c2,
        c3: x.st.c3,
      });
      const rh = D.handshakeRoot(th, k1, k2, k3);
      const tid = D.treeId({ sc, initiator: idb(x.initiator), responder: idb(x.responder), spkId: x.st.spkId, opkId: x.st.opkId, gen: x.st.gen, c1: x.st.c1, c2: x.st.c2, c3: x.st.c3 });
      const s1 = D.nextSlot(rh);
      const a1 = D.stepChain({ sc, sender: idb(x.initiator), peer: idb(x.responder), targetId: tid, k: 1, q: 1, ct: D.NONE, ekHash: D.keyHash(x.ek), slot: s1.slot, kemSecret: D.NONE });
      const mk = D.nextMessageKey(a1.chainKey).mk;
      Object.assign(o, { K1: toHex(k1), K2: toHex(k2), TH: toHex(th), R_H: toHex(rh), treeId: toHex(tid), 'S_1(H)': toHex(s1.slot), 'CC(A1)': toHex(a1.context), R_A1: toHex(a1.root), CK_A1: toHex(a1.chainKey), MK_0: toHex(mk) });
      if (x.opk) Object.assign(o, { K3: toHex(k3), 'SK_2(H)': toHex(s1.next), 'id(A1)': toHex(a1.id) });
      return { mk };
    };
    const { mk } = handshake(h, { initiator: 'alice', responder: 'bob', st, spk: streamBytes('bob', 0, 64), opk: streamBytes('bob', 64, 64), ek: env1.ratchetKey! });
    const wk = D.wrapKey(mk, env1.nonce, 0, 1);
    const ck = chacha20poly1305(wk, new Uint8Array(12), stanzaPrefix(st)).decrypt(st.wrapped);
    const mid = streamBytes('alice', 192, 16);
    const r = streamBytes('alice', 192 + 32, 32);
    const fields = { kind: Kind.content, sentAt: sends[0].time, mid, after: new Uint8Array(16), plaintext: utf8(sends[0].plaintext) };
    assert.equal(toHex(D.contentKey(r, fields)), toHex(ck), 'ck = H32("…/content-key", r, kind, sentAt, mid, plaintext)');
    const hh = D.headerHash(env1.header);
    Object.assign(h, {
      wk: toHex(wk),
      ck: toHex(ck),
      HH: toHex(hh),
      mid: toHex(mid),
      r: toHex(r),
      M: toHex(D.signedTranscript(sc, idb('alice'), hh, fields)),
      messageId: toHex(D.messageId(idb('alice'), mid)),
      envelopeId: toHex(D.envelopeId(hh, env1.body)),
    });
    assert.deepEqual(h, derivation.handshake);

    // Position 2, carol's stanza: bob's handshake without a one-time prekey (carol's only one was claimed).
    const env2 = parseEnvelope(fromHex(sends[1].envelopes[0].hex));
    const st2 = env2.stanzas[1] as HandshakeStanza;
    assert.ok(st2.type === 'handshake' && st2.opkId === 0 && st2.c3.length === 0);
    const h2: Record<string, string> = {};
    const { mk: mk2 } = handshake(h2, { initiator: 'bob', responder: 'carol', st: st2, spk: streamBytes('carol', 0, 64), ek: env2.ratchetKey! });
    h2.wk = toHex(D.wrapKey(mk2, env2.nonce, 1, 2));
    assert.deepEqual(h2, derivation.handshakeWithoutOneTimePrekey);

    // Position 2, alice's stanza: bob's first chain B1, a step against A1 (k = 1, q = 1).
    const sp = env2.stanzas[0] as StepStanza;
    assert.equal(sp.type, 'step');
    assert.deepEqual([sp.k, sp.q, sp.pn, toHex(sp.target)], [1, 1, 0, derivation.handshake['id(A1)']]);
    const K = decapsulateSeed(streamBytes('alice', 192 + 64, 64), sp.ct);
    const slotA1 = D.nextSlot(fromHex(derivation.handshake.R_A1)).slot;
    const b1 = D.stepChain({ sc, sender: idb('bob'), peer: idb('alice'), targetId: sp.target, k: 1, q: 1, ct: sp.ct, ekHash: D.keyHash(env2.ratchetKey!), slot: slotA1, kemSecret: K });
    const mk3 = D.nextMessageKey(b1.chainKey).mk;
    const wk3 = D.wrapKey(mk3, env2.nonce, 1, 0);
    const ck3 = chacha20poly1305(wk3, new Uint8Array(12), stanzaPrefix(sp)).decrypt(sp.wrapped);
    const s: Record<string, string> = { K: toHex(K), 'S_1(A1)': toHex(slotA1), 'CC(B1)': toHex(b1.context), R_B1: toHex(b1.root), CK_B1: toHex(b1.chainKey), 'id(B1)': toHex(b1.id), MK_0: toHex(mk3), wk: toHex(wk3), ck: toHex(ck3) };
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
      const d: Delivery = { envelope: fromHex(c.hex), position: c.position, sender: c.sender, claims: c.claims ?? r.chain[0]!.claims };
      await assert.rejects(bob.conv!.open(1767225603000, d), (e: unknown) => e instanceof ChatError && e.code === c.error, c.name);
      if (!c.sessionId) {
        // A failed open changes nothing: the original opens afterwards.
        const m = await bob.conv!.open(1767225603000, r.delivery(1));
        assert.equal(fromUtf8(m.plaintext), 'hello, this is alice');
      }
    });
  }
});
