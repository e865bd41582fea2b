// The SDK's Messenger and sessionctl (Go's service.Messenger) exchange
// protocol messages through a real sessiond, both ways: sessions created
// by each side, messages each way, the request accepted by the other.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, generateIdentity, type Identity, Messenger, openPassphraseStore, SdkNode, utf8 } from '../src/index.js';
import { MemoryStore } from '../src/chat/index.js';
import { type Node, sessionctl, startNode } from './harness.js';

const td = (b: Uint8Array) => new TextDecoder().decode(b);
const texts = (page: { messages: { text: Uint8Array; error?: Error }[] }) => page.messages.map((m) => (m.error ? `error:${m.error.message}` : td(m.text)));

const SEAL_ONLY = 'this sessionctl sends sessions with Seal (no prekeys): live.test.ts runs the SDK and sessionctl on Seal';

describe('live: the SDK and sessionctl on the protocol through sessiond', { timeout: 300_000 }, () => {
  let node: Node;
  let client: Client;
  let alice: Identity;
  let a: Messenger;
  let bobID: string;
  /** This sessionctl speaks the protocol (it published prekeys when it registered). */
  let protocolCtl = false;
  const dir = mkdtempSync(join(tmpdir(), 'sdk-interop-'));
  const bobFile = join(dir, 'bob.json');
  const bobPass = 'bob passphrase';
  const bob = (...args: string[]) => sessionctl(node, bobFile, bobPass, ...args);
  const bobTexts = async (session: string) => ((await bob('read', session)).messages as { text?: string; error?: string; sealed?: boolean }[]).map((m) => (m.error ? `error:${m.error}` : `${m.sealed ? 'sealed:' : ''}${m.text}`));

  before(async () => {
    node = await startNode();
    client = new Client(node.rpc, { timeoutMs: 20_000 });
    alice = generateIdentity();
    a = await Messenger.open(new SdkNode(client, alice), alice, await openPassphraseStore(new MemoryStore(), 'pass', { logN: 10, r: 8, p: 1 }));
    await a.register();
    bobID = (await bob('keygen')).sessionId;
    await bob('register');
    protocolCtl = (await client.rawPrekeyBundle(bobID)).signedPrekey !== undefined;
  });
  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the SDK starts a session with a sessionctl user; they talk both ways', async (t) => {
    if (!protocolCtl) return t.skip(SEAL_ONLY);
    const { session } = await a.createSession([bobID]);
    await bob('accept', session);
    await a.send(session, utf8('hello from the SDK'));
    assert.deepEqual(await bobTexts(session), ['hello from the SDK']);
    await bob('send', session, 'hello from sessionctl');
    await a.send(session, utf8('and back again'));
    assert.deepEqual(texts(await a.read(session)), ['hello from the SDK', 'hello from sessionctl', 'and back again']);
    assert.deepEqual(await bobTexts(session), ['hello from the SDK', 'hello from sessionctl', 'and back again']);
    const inbox = await a.inbox();
    assert.deepEqual(texts(inbox), ['hello from sessionctl']);
    assert.equal(inbox.messages[0]!.sender, bobID);
  });

  it('a sessionctl user starts a session with the SDK; they talk both ways', async (t) => {
    if (!protocolCtl) return t.skip(SEAL_ONLY);
    const { session } = await bob('session', 'create', '--with', alice.sessionId);
    await client.waitAccepted((await client.acceptSession(alice, session)).txID);
    await bob('send', session, 'sessionctl starts');
    assert.deepEqual(texts(await a.read(session)), ['sessionctl starts']);
    await a.send(session, utf8('the SDK answers'));
    await bob('send', session, 'and sessionctl again');
    assert.deepEqual(await bobTexts(session), ['sessionctl starts', 'the SDK answers', 'and sessionctl again']);
    assert.deepEqual(texts(await a.read(session)), ['sessionctl starts', 'the SDK answers', 'and sessionctl again']);
  });
});
