// The Messenger through a real sessiond: TypeScript clients on the
// forward-secret protocol, every delivery checked against its signed
// transaction, the chain recording and checking each handshake's claim.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client, generateIdentity, type Identity, Messenger, openPassphraseStore, PREKEY_TARGET, SdkNode, utf8 } from '../src/index.js';
import { MemoryStore } from '../src/chat/index.js';
import { type Node, startNode } from './harness.js';

const td = (b: Uint8Array) => new TextDecoder().decode(b);
const texts = (page: { messages: { text: Uint8Array; error?: Error }[] }) => page.messages.map((m) => (m.error ? `error:${m.error.message}` : td(m.text)));

describe('live: Messengers through sessiond', { timeout: 300_000 }, () => {
  let node: Node;
  let client: Client;
  const open = async (id: Identity) => Messenger.open(new SdkNode(client, id), id, await openPassphraseStore(new MemoryStore(), 'pass', { logN: 10, r: 8, p: 1 }));

  before(async () => {
    node = await startNode();
    client = new Client(node.rpc, { timeoutMs: 20_000 });
  });
  after(async () => {
    await node?.stop();
  });

  it('registers with the work, publishes prekeys the chain serves as signed, and does it once', async () => {
    const alice = generateIdentity();
    const m = await open(alice);
    const r = await m.register();
    assert.equal(r.already, false);
    assert.equal(r.prekeys.publishedOneTime, PREKEY_TARGET);
    const raw = await client.rawPrekeyBundle(alice.sessionId);
    assert.equal(raw.unclaimed, PREKEY_TARGET, 'every one-time prekey on chain');
    const b = await client.prekeyBundle(alice.sessionId); // verified against alice's signed PublishPrekeys
    assert.equal(b.signedPrekey.id, r.prekeys.signedPrekeyId);
    assert.equal((await m.device.prekeyStatus(Date.now())).signedPrekeyId, b.signedPrekey.id, "the device holds the secret of the chain's signed prekey");
    const nonce = await client.nonce(alice.sessionId);
    const again = await m.register();
    assert.equal(again.already, true);
    assert.equal(again.prekeys.publishedOneTime + again.prekeys.publishedSigned, 0, 'nothing needed');
    assert.equal(await client.nonce(alice.sessionId), nonce, 'nothing sent');
  });

  it('two TypeScript messengers talk both ways on the protocol; the chain recorded the claims; the inbox opens', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = await open(alice);
    const b = await open(bob);
    await a.register();
    await b.register();
    const { session } = await a.createSession([bob.sessionId]);
    const v = await client.verifiedSession(session);
    assert.equal(v.claims.length, 1, "the creator's claim of bob's prekeys is in the signed CreateSession");
    assert.equal(v.claims[0]!.participant, bob.sessionId);
    await client.waitAccepted((await client.acceptSession(bob, session)).txID);
    await a.send(session, utf8('hello bob'));
    assert.deepEqual(texts(await b.read(session)), ['hello bob']);
    await b.send(session, utf8('hello alice'));
    await a.send(session, utf8('how are you?'));
    assert.deepEqual(texts(await a.read(session)), ['hello bob', 'hello alice', 'how are you?']);
    assert.deepEqual(texts(await b.read(session)), ['hello bob', 'hello alice', 'how are you?']);
    const inbox = await a.inbox();
    assert.deepEqual(texts(inbox), ['hello alice']);
    assert.equal(inbox.messages[0]!.sender, bob.sessionId);
    // What the chain holds is the protocol's envelopes, not the text.
    const page = await client.messages(session);
    assert.ok(page.messages.every((m) => m.ciphertext[0] === 0x43 && m.ciphertext[1] === 0x48));
    assert.ok(!page.messages.some((m) => Buffer.from(m.ciphertext).includes(Buffer.from('hello'))));
  });

  it('a group of three on the protocol', async () => {
    const ids = [generateIdentity(), generateIdentity(), generateIdentity()];
    const ms = [];
    for (const id of ids) {
      const m = await open(id);
      await m.register();
      ms.push(m);
    }
    const [a, b, c] = ms as [Messenger, Messenger, Messenger];
    const { session } = await a.createSession([ids[1]!.sessionId, ids[2]!.sessionId]);
    for (const id of ids.slice(1)) await client.waitAccepted((await client.acceptSession(id, session)).txID);
    await a.send(session, utf8('one'));
    await c.send(session, utf8('two'));
    await b.send(session, utf8('three'));
    for (const m of ms) assert.deepEqual(texts(await m.read(session)), ['one', 'two', 'three']);
  });
});
