// The SDK and the Go client (sessionctl) talk through a real sessiond, in
// both directions: key files, sessions, messages, channels.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  Client,
  fromUtf8,
  generateIdentity,
  type Identity,
  loadIdentityFile,
  openMessage,
  SealCipher,
  saveIdentityFile,
  UnknownIdentityError,
  utf8,
  NotParticipantError,
  BadNonceError,
} from '../src/index.js';
import { type Node, sessionctl, startNode } from './harness.js';

describe('live: the SDK and sessionctl through sessiond', { timeout: 300_000 }, () => {
  let node: Node;
  let client: Client;
  let alice: Identity; // the SDK's user
  let bob: Identity; // sessionctl's user, opened by the SDK from its key file
  const dir = mkdtempSync(join(tmpdir(), 'sdk-live-'));
  const bobFile = join(dir, 'bob.json');
  const bobPass = 'bob passphrase';
  let session: string;
  let channel: string;

  before(async () => {
    node = await startNode();
    client = new Client(node.rpc, { timeoutMs: 20_000 });
    alice = generateIdentity();
  });
  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a key file made by sessionctl opens in the SDK', async () => {
    const out = await sessionctl(node, bobFile, bobPass, 'keygen', '--print-seed');
    bob = await loadIdentityFile(readFileSync(bobFile, 'utf8'), bobPass);
    assert.equal(bob.sessionId, out.sessionId);
    assert.equal(Buffer.from(bob.seed!).toString('hex'), out.seed);
  });

  it('a key file made by the SDK opens in sessionctl', async () => {
    const f = join(dir, 'alice.json');
    writeFileSync(f, await saveIdentityFile(alice, 'alice passphrase', { scrypt: { logN: 12, r: 8, p: 1 } }), { mode: 0o600 });
    const who = await sessionctl(node, f, 'alice passphrase', 'whoami');
    assert.equal(who.sessionId, alice.sessionId);
  });

  it('registers from both sides', async () => {
    await assert.rejects(client.publicIdentity(alice.sessionId), UnknownIdentityError);
    const r = await client.register(alice);
    assert.equal(r.txID, r.tx.id);
    await client.waitAccepted(r.txID);
    await sessionctl(node, bobFile, bobPass, 'register');
    const pub = await client.publicIdentity(bob.sessionId);
    assert.equal(pub.sessionId, bob.sessionId);
  });

  it('SDK -> sessionctl: a session and a sealed message', async () => {
    const r = await client.createSession(alice, [bob.sessionId]);
    session = r.session!;
    await client.waitAccepted(r.txID);
    const sent = await new SealCipher().send(client, alice, session, utf8('hello from the SDK ✓'));
    await client.waitAccepted(sent.txID);
    const read = await sessionctl(node, bobFile, bobPass, 'read', session);
    assert.equal(read.messages.length, 1);
    assert.equal(read.messages[0].text, 'hello from the SDK ✓');
    assert.equal(read.messages[0].sender, alice.sessionId);
    assert.equal(read.messages[0].error, undefined);
  });

  it('sessionctl -> SDK: a reply opens and verifies', async () => {
    await sessionctl(node, bobFile, bobPass, 'send', session, 'hello from Go');
    const page = await client.messages(session, 1);
    assert.equal(page.messages.length, 1);
    const m = page.messages[0]!;
    assert.equal(m.author, bob.sessionId);
    const { plaintext, sender } = openMessage(alice, m);
    assert.equal(fromUtf8(plaintext), 'hello from Go');
    assert.equal(sender.sessionId, bob.sessionId);
    // It is in Alice's inbox, and the SDK can read its own message too.
    const inbox = await client.inbox(alice.sessionId);
    assert.equal(inbox.messages.length, 1);
    assert.equal(inbox.messages[0]!.txID, m.txID);
    const own = (await client.messages(session, 0, 1)).messages[0]!;
    assert.equal(fromUtf8(openMessage(alice, own).plaintext), 'hello from the SDK ✓');
  });

  it('channels both ways', async () => {
    const r = await client.createChannel(alice, 'sdk-live');
    channel = r.channel!;
    await client.waitAccepted(r.txID);
    await sessionctl(node, bobFile, bobPass, 'channel', 'join', channel);
    const p = await client.postSealed(alice, channel, utf8('post from the SDK'));
    await client.waitAccepted(p.txID);
    await sessionctl(node, bobFile, bobPass, 'channel', 'post', channel, 'post from Go');
    const read = await sessionctl(node, bobFile, bobPass, 'channel', 'read', channel);
    assert.deepEqual(read.messages.map((m: any) => m.text), ['post from the SDK', 'post from Go']);
    const page = await client.channelMessages(channel);
    assert.deepEqual(page.messages.map((m) => fromUtf8(openMessage(alice, m).plaintext)), ['post from the SDK', 'post from Go']);
    assert.equal((await client.channel(channel)).memberCount, 2);
  });

  it('maps the node errors to typed errors', async () => {
    const carol = generateIdentity();
    await client.register(carol).then((r) => client.waitAccepted(r.txID));
    await assert.rejects(client.send(carol, session, utf8('x')), NotParticipantError);
    // A nonce already used: the raw method gets the node's refusal as BadNonceError.
    const { signTx } = await import('../src/tx.js');
    const stale = signTx(carol, await client.chainID(), 0, 'joinChannel', { channel });
    await assert.rejects(client.joinChannelTx(stale.bytes), BadNonceError);
  });

  it('the signing helpers recover from a nonce used elsewhere', async () => {
    // sessionctl uses Bob's key behind this client's back; the next SDK
    // submission gets -32008, refetches the nonce and succeeds.
    const r0 = await client.send(bob, session, utf8('not a real envelope, only bytes'));
    await client.waitAccepted(r0.txID);
    await sessionctl(node, bobFile, bobPass, 'send', session, 'from sessionctl');
    const r = await client.send(bob, session, utf8('after the other client'));
    const st = await client.waitAccepted(r.txID);
    assert.equal(st.status, 'accepted');
  });
});
