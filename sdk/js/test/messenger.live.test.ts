// The Messenger through a real sessiond, as far as this chain's formats
// carry the protocol: registration with the chain's work and prekeys
// published and verified from their signed transactions; a session whose
// claims the chain cannot record is refused before anything is sent.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChainFormatError, Client, generateIdentity, type Identity, Messenger, openPassphraseStore, PREKEY_TARGET, SdkNode } from '../src/index.js';
import { MemoryStore } from '../src/chat/index.js';
import { type Node, startNode } from './harness.js';

describe('live: the Messenger through sessiond', { timeout: 300_000 }, () => {
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
    assert.equal((await m.device.prekeyStatus(Date.now())).signedPrekeyId, b.signedPrekey.id, 'the device holds the secret of the chain\'s signed prekey');
    const nonce = await client.nonce(alice.sessionId);
    const again = await m.register();
    assert.equal(again.already, true);
    assert.equal(again.prekeys.publishedOneTime + again.prekeys.publishedSigned, 0, 'nothing needed');
    assert.equal(await client.nonce(alice.sessionId), nonce, 'nothing sent');
  });

  it('a session whose claims this chain cannot record is refused, and nothing is sent', async () => {
    const alice = generateIdentity();
    const bob = generateIdentity();
    const a = await open(alice);
    await a.register();
    await (await open(bob)).register();
    const nonce = await client.nonce(alice.sessionId);
    const unclaimed = (await client.rawPrekeyBundle(bob.sessionId)).unclaimed;
    await assert.rejects(a.createSession([bob.sessionId]), ChainFormatError);
    assert.equal(await client.nonce(alice.sessionId), nonce, 'no transaction');
    assert.equal((await client.rawPrekeyBundle(bob.sessionId)).unclaimed, unclaimed, 'no prekey claimed');
  });
});
