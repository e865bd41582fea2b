// Bundled into a page by browser.store.test.ts: the protocol over
// IndexedDB stores encrypted under a passphrase, in the browser.
import { ChatDevice, type ChatSession, type PrekeyBundle, sessionClaimsOf } from '../../src/chat/index.js';
import { identityFromSeed } from '../../src/identity.js';
import { IndexedDBStore, openPassphraseStore } from '../../src/messenger/stores.js';

const FAST = { logN: 10, r: 8, p: 1 };
const enc = new TextEncoder();
const dec = new TextDecoder();

async function run(): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  const seed = (n: number) => new Uint8Array(32).fill(n);
  const alice = identityFromSeed(seed(1));
  const bob = identityFromSeed(seed(2));
  const chainId = new Uint8Array(32).fill(7);
  const now = Date.now();
  const open = async (name: string, pass: string) => openPassphraseStore(await IndexedDBStore.open(name), pass, FAST);
  const aDev = await ChatDevice.open(alice, chainId, await open('alice', 'alice pass'));
  const bDev = await ChatDevice.open(bob, chainId, await open('bob', 'bob pass'));
  const up = await bDev.generatePrekeys(now, true, 2);
  const bundle: PrekeyBundle = { identity: bob.publicIdentity(), signedPrekey: up.signedPrekey!, oneTimePrekey: up.oneTimePrekeys[0] };
  const session: ChatSession = { chainId, id: new Uint8Array(32).fill(9), participants: [alice.publicIdentity(), bob.publicIdentity()], claims: sessionClaimsOf([bundle]) };
  const dir = { prekeyBundle: async () => bundle };
  const ac = await aDev.createConversation(now, session, [bundle]);
  const bc = await bDev.conversation(session);
  const [o1] = await ac.send(now + 1, enc.encode('hello over IndexedDB'), dir);
  const m1 = await bc.open(now + 2, { envelope: o1!.envelope, position: 1, sender: alice.sessionId, claims: o1!.claims });
  out.first = dec.decode(m1.plaintext);
  const [o2] = await bc.send(now + 3, enc.encode('and back'), dir);
  const m2 = await ac.open(now + 4, { envelope: o2!.envelope, position: 2, sender: bob.sessionId, claims: o2!.claims });
  out.second = dec.decode(m2.plaintext);
  // Reopened from IndexedDB (a reload): the archive and the ratchet state are there.
  const bDev2 = await ChatDevice.open(bob, chainId, await open('bob', 'bob pass'));
  const bc2 = await bDev2.conversation(session);
  out.history = (await bc2.history()).map((h) => dec.decode(h.plaintext));
  const [o3] = await ac.send(now + 5, enc.encode('after the reload'), dir);
  out.third = dec.decode((await bc2.open(now + 6, { envelope: o3!.envelope, position: 3, sender: alice.sessionId, claims: o3!.claims })).plaintext);
  try {
    await open('bob', 'wrong');
    out.wrong = 'opened';
  } catch (e) {
    out.wrong = (e as Error).constructor.name;
  }
  // Nothing in IndexedDB is plaintext.
  const raw = await IndexedDBStore.open('bob');
  let found = false;
  for (const n of await raw.list('')) {
    const v = await raw.get(n);
    if (v && dec.decode(v).includes('after the reload')) found = true;
  }
  out.plaintextAtRest = found;
  out.records = (await raw.list('')).length;
  return out;
}

(globalThis as unknown as { storeTest: typeof run }).storeTest = run;
