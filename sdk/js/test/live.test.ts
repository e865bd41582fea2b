// The SDK and the Go client (sessionctl) talk through a real sessiond, in
// both directions: key files, registration with the chain's proof of work,
// message requests, contacts and blocking, prekeys and claims, channels
// with join policies and moderation, and the signed transactions a client
// checks instead of the node's word.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import {
  idToString,
  randomBytes,
  AlreadyExistsError,
  BadNonceError,
  checkWork,
  claimOf,
  RateLimitedError,
  solveWork,
  workSeed,
  Client,
  ContactStatus,
  ForbiddenError,
  fromUtf8,
  generateIdentity,
  type Identity,
  InvalidTxError,
  JoinPolicy,
  loadIdentityFile,
  ModerationAction,
  NotParticipantError,
  openMessage,
  PrekeyUnavailableError,
  REQUEST_BACKFILL,
  SealCipher,
  saveIdentityFile,
  signTx,
  UnknownIdentityError,
  UnknownTxError,
  utf8,
} from '../src/index.js';
import { type Node, sessionctl, startNode, TEST_REGISTRATION } from './harness.js';

const ON_PROTOCOL = 'this sessionctl answers on the forward-secret protocol: interop.live.test.ts runs these flows with the Messenger';

describe('live: the SDK and sessionctl through sessiond', { timeout: 300_000 }, () => {
  let node: Node;
  let client: Client;
  let alice: Identity; // the SDK's user
  let bob: Identity; // sessionctl's user, opened by the SDK from its key file
  const dir = mkdtempSync(join(tmpdir(), 'sdk-live-'));
  const bobFile = join(dir, 'bob.json');
  const bobPass = 'bob passphrase';
  let session: string;
  /** sessionctl sends sessions on the forward-secret protocol (it published prekeys): its replies are not Seal. */
  let protocolCtl = false;
  let channel: string;

  const registered = async (...ids: Identity[]) => {
    for (const id of ids) await client.waitAccepted((await client.register(id)).txID);
  };
  const accepted = async (p: Promise<{ txID: string }>) => client.waitAccepted((await p).txID);

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

  it('registers from both sides, each with the chain\'s proof of work', async () => {
    assert.deepEqual((await client.registrationParams()), TEST_REGISTRATION);
    await assert.rejects(client.publicIdentity(alice.sessionId), UnknownIdentityError);
    const st = await client.status(); // nothing else runs: register anchors to this block
    const r = await client.register(alice);
    assert.equal(r.txID, r.tx.id);
    const reg = r.tx.payload as { anchorHeight: bigint; work: bigint };
    assert.equal(reg.anchorHeight, BigInt(st.height));
    const chainID = await client.chainID();
    assert.ok(checkWork(chainID, workSeed(chainID, alice.sessionId, reg.anchorHeight, st.lastAcceptedID), reg.work, TEST_REGISTRATION));
    await client.waitAccepted(r.txID);
    await sessionctl(node, bobFile, bobPass, 'register');
    const pub = await client.publicIdentity(bob.sessionId);
    assert.equal(pub.sessionId, bob.sessionId);
    // A sessionctl on the forward-secret protocol publishes prekeys when it registers.
    protocolCtl = (await client.rawPrekeyBundle(bob.sessionId)).signedPrekey !== undefined;
  });

  it('the node refuses a registration whose work fails the chain\'s check', async () => {
    const mallory = generateIdentity();
    const chainID = await client.chainID();
    const st = await client.status();
    const anchorHeight = BigInt(st.height);
    const seed = workSeed(chainID, mallory.sessionId, anchorHeight, st.lastAcceptedID);
    let work = 0n;
    while (checkWork(chainID, seed, work, TEST_REGISTRATION)) work++;
    const t = signTx(mallory, chainID, 0, 'registerIdentity', { kemPublicKey: mallory.kemPublicKey, dsaPublicKey: mallory.dsaPublicKey, anchorHeight, work });
    await assert.rejects(client.registerIdentityTx(t.bytes), InvalidTxError);
    // Valid work anchored to another block is another puzzle: refused too.
    const { work: good } = await solveWork(chainID, workSeed(chainID, mallory.sessionId, anchorHeight, chainID), TEST_REGISTRATION);
    const wrongAnchor = signTx(mallory, chainID, 0, 'registerIdentity', { kemPublicKey: mallory.kemPublicKey, dsaPublicKey: mallory.dsaPublicKey, anchorHeight, work: good });
    if (!checkWork(chainID, seed, good, TEST_REGISTRATION)) await assert.rejects(client.registerIdentityTx(wrongAnchor.bytes), InvalidTxError);
  });

  it('SDK -> sessionctl: a session (a request to Bob) and a sealed message he reads', async () => {
    const r = await client.createSession(alice, [bob.sessionId]);
    session = r.session!;
    await client.waitAccepted(r.txID);
    // Alice is not Bob's contact: the session is a request to him.
    const reqs = await client.requests(bob.sessionId);
    assert.deepEqual(reqs.requests.map((x) => [x.creator, x.session, x.status]), [[alice.sessionId, session, 'active']]);
    const v = await client.verifiedSession(session);
    assert.deepEqual(v.participants, [alice.sessionId, bob.sessionId]);
    assert.deepEqual(v.reply.participantStates, ['accepted', 'pending']);
    const sent = await new SealCipher().send(client, alice, session, utf8('hello from the SDK ✓'));
    await client.waitAccepted(sent.txID);
    const read = await sessionctl(node, bobFile, bobPass, 'read', session);
    assert.equal(read.messages.length, 1);
    assert.equal(read.messages[0].text, 'hello from the SDK ✓');
    assert.equal(read.messages[0].sender, alice.sessionId);
    assert.equal(read.messages[0].error, undefined);
  });

  it('sessionctl -> SDK: Bob\'s reply accepts the request, and it opens and verifies', async (t) => {
    if (protocolCtl) return t.skip(ON_PROTOCOL);
    await sessionctl(node, bobFile, bobPass, 'send', session, 'hello from Go');
    assert.deepEqual((await client.requests(bob.sessionId)).requests, []);
    assert.deepEqual((await client.session(session)).participantStates, ['accepted', 'accepted']);
    const page = await client.messages(session, 1);
    assert.equal(page.messages.length, 1);
    const m = page.messages[0]!;
    assert.equal(m.author, bob.sessionId);
    const { plaintext, sender } = openMessage(alice, m);
    assert.equal(fromUtf8(plaintext), 'hello from Go');
    assert.equal(sender.sessionId, bob.sessionId);
    const inbox = await client.inbox(alice.sessionId);
    assert.equal(inbox.messages.length, 1);
    assert.equal(inbox.messages[0]!.txID, m.txID);
    const own = (await client.messages(session, 0, 1)).messages[0]!;
    assert.equal(fromUtf8(openMessage(alice, own).plaintext), 'hello from the SDK ✓');
    // The session is listed for both now, and its creating transaction is served.
    for (const who of [alice, bob]) assert.ok((await client.sessions(who.sessionId)).sessions.some((s) => s.session === session));
    const createTx = (await client.session(session)).createTx;
    const created = await client.tx(idToString(sha256(createTx)));
    assert.equal(created.type, 'createSession');
    assert.equal(created.tx.author, alice.sessionId);
  });

  it('sessionctl -> SDK: a session Bob starts is a request until Alice accepts it', async (t) => {
    if (protocolCtl) return t.skip(ON_PROTOCOL);
    const made = await sessionctl(node, bobFile, bobPass, 'session', 'create', '--with', alice.sessionId);
    const s = made.session as string;
    await sessionctl(node, bobFile, bobPass, 'send', s, 'a request from the terminal');
    const reqs = await client.requests(alice.sessionId);
    assert.ok(reqs.requests.some((x) => x.creator === bob.sessionId && x.session === s));
    const before = await client.inbox(alice.sessionId);
    assert.ok(!before.messages.some((m) => m.target === s), 'nothing reaches the inbox before consent');
    assert.ok(!(await client.sessions(alice.sessionId)).sessions.some((x) => x.session === s));
    await accepted(client.acceptSession(alice, s));
    const after = await client.inbox(alice.sessionId, before.next);
    const backfilled = after.messages.filter((m) => m.target === s);
    assert.ok(backfilled.length >= 1 && backfilled.length <= REQUEST_BACKFILL);
    assert.equal(fromUtf8(openMessage(alice, backfilled[0]!).plaintext), 'a request from the terminal');
    assert.ok((await client.sessions(alice.sessionId)).sessions.some((x) => x.session === s));
    await assert.rejects(client.acceptSession(alice, s), AlreadyExistsError);
    await accepted(client.sendSealed(alice, s, utf8('accepted, and a reply')));
    const read = await sessionctl(node, bobFile, bobPass, 'read', s);
    assert.deepEqual(read.messages.map((m: any) => m.text), ['a request from the terminal', 'accepted, and a reply']);
  });

  it('contacts skip the request step; a blocked stranger cannot start a session', async () => {
    const dave = generateIdentity();
    const eve = generateIdentity();
    await registered(dave, eve);
    await accepted(client.setContact(alice, dave.sessionId, ContactStatus.Contact));
    assert.equal(await client.contact(alice.sessionId, dave.sessionId), 'contact');
    const r = await client.createSession(dave, [alice.sessionId]);
    await client.waitAccepted(r.txID);
    // Listed for Alice at once, before anyone writes.
    assert.ok((await client.sessions(alice.sessionId)).sessions.some((x) => x.session === r.session));
    assert.ok(!(await client.requests(alice.sessionId)).requests.some((x) => x.creator === dave.sessionId));
    // Eve's request, then Alice blocks her: the request goes, and Eve cannot write again.
    const er = await client.createSession(eve, [alice.sessionId]);
    await client.waitAccepted(er.txID);
    assert.ok((await client.requests(alice.sessionId)).requests.some((x) => x.creator === eve.sessionId));
    await accepted(client.setContact(alice, eve.sessionId, ContactStatus.Blocked));
    assert.equal(await client.contact(alice.sessionId, eve.sessionId), 'blocked');
    assert.ok(!(await client.requests(alice.sessionId)).requests.some((x) => x.creator === eve.sessionId));
    await assert.rejects(client.createSession(eve, [alice.sessionId]), ForbiddenError);
  });

  it('prekeys: a verified bundle, claims checked by the chain, the claim log, retiring', async () => {
    const pk = () => generateIdentity().kemPublicKey; // any ML-KEM-768 public keys
    const expiresAt = Date.now() + 7 * 86_400_000;
    const spk = pk();
    const otks = [pk(), pk()];
    await accepted(client.publishPrekeys(alice, { id: 1, expiresAt, kemPublicKey: spk }, otks.map((k, i) => ({ id: i + 1, kemPublicKey: k }))));
    const b = await client.prekeyBundle(alice.sessionId);
    assert.deepEqual(b.signedPrekey, { id: 1, expiresAt, kemPublicKey: spk });
    assert.ok(b.oneTime && [1, 2].includes(b.oneTime.id));
    assert.deepEqual(b.oneTime.kemPublicKey, otks[b.oneTime.id - 1]);
    // Only contacts may claim below the stranger reserve: Alice trusts Frank.
    const frank = generateIdentity();
    await registered(frank);
    await accepted(client.setContact(alice, frank.sessionId, ContactStatus.Contact));
    const fb = await client.prekeyBundle(alice.sessionId, { claimer: frank.sessionId });
    assert.ok(fb.oneTime);
    const claim = claimOf(fb);
    // Claiming none while one is claimable, or a signed prekey that is not
    // current: the chain refuses (a node withholding keys is caught).
    await assert.rejects(client.createSession(frank, [alice.sessionId], undefined, [{ ...claim, oneTimePrekeyId: 0 }]), PrekeyUnavailableError);
    await assert.rejects(client.createSession(frank, [alice.sessionId], undefined, [{ ...claim, signedPrekeyId: 2 }]), PrekeyUnavailableError);
    const r = await client.createSession(frank, [alice.sessionId], undefined, [claim]);
    await client.waitAccepted(r.txID);
    const v = await client.verifiedSession(r.session!);
    assert.deepEqual(v.claims, [claim]);
    // The same prekey again: the chain refuses it.
    await assert.rejects(client.createSession(frank, [alice.sessionId], undefined, [claim]), PrekeyUnavailableError);
    const next = await client.prekeyBundle(alice.sessionId);
    assert.ok(next.oneTime && next.oneTime.id !== claim.oneTimePrekeyId);
    // A stranger may not claim the last prekeys (the reserve is the
    // contacts'): the node serves it none, and its claim of 0 is accepted.
    const gina = generateIdentity();
    await registered(gina);
    await assert.rejects(client.createSession(gina, [alice.sessionId], undefined, [claimOf(next)]), PrekeyUnavailableError);
    const gb = await client.prekeyBundle(alice.sessionId, { claimer: gina.sessionId });
    assert.equal(gb.oneTime, undefined);
    await accepted(client.createSession(gina, [alice.sessionId], undefined, [claimOf(gb)]));
    // Alice learns of both claims from the chain, in order.
    const log = await client.claims(alice.sessionId);
    assert.deepEqual(log.claims.map((c) => [c.claimer, c.signedPrekeyId, c.oneTimePrekeyId]), [
      [frank.sessionId, 1, claim.oneTimePrekeyId],
      [gina.sessionId, 1, 0],
    ]);
    assert.equal((await client.tx(log.claims[0]!.txID)).tx.id, r.txID);
    // A new device retires every one-time prekey left.
    await accepted(client.publishPrekeys(alice, null, [], 2));
    const after = await client.prekeyBundle(alice.sessionId, { claimer: frank.sessionId });
    assert.equal(after.oneTime, undefined);
    await assert.rejects(client.tx(idToString(randomBytes(32))), UnknownTxError);
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
    const info = await client.channel(channel);
    assert.equal(info.memberCount, 2);
    assert.equal(info.joinPolicy, 'open');
  });

  it('an invite-only channel: invite, join, moderator, ban, delete posts', async () => {
    const [carol, dan] = [generateIdentity(), generateIdentity()];
    await registered(carol, dan);
    const r = await client.createChannel(alice, 'club', JoinPolicy.InviteOnly);
    const club = r.channel!;
    await client.waitAccepted(r.txID);
    assert.equal((await client.channel(club)).joinPolicy, 'invite-only');
    await assert.rejects(client.joinChannel(carol, club), ForbiddenError);
    await accepted(client.moderateChannel(alice, club, ModerationAction.Invite, [carol.sessionId, dan.sessionId]));
    assert.deepEqual(await client.channelMembership(club, carol.sessionId), { member: false, role: 'none', invited: true, banned: false });
    await accepted(client.joinChannel(carol, club));
    await accepted(client.joinChannel(dan, club));
    await accepted(client.moderateChannel(alice, club, ModerationAction.MakeModerator, [carol.sessionId]));
    assert.equal((await client.channelMembership(club, carol.sessionId)).role, 'moderator');
    // A member cannot moderate; a moderator can ban a member, not the owner.
    await assert.rejects(client.moderateChannel(dan, club, ModerationAction.Remove, [carol.sessionId]), ForbiddenError);
    const spam = await client.post(dan, club, utf8('spam'));
    await client.waitAccepted(spam.txID);
    const seq = (await client.channelMessages(club)).messages.find((m) => m.txID === spam.txID)!.seq;
    await accepted(client.deletePosts(carol, club, [seq]));
    assert.ok(!(await client.channelMessages(club)).messages.some((m) => m.txID === spam.txID));
    await accepted(client.moderateChannel(carol, club, ModerationAction.Ban, [dan.sessionId]));
    assert.deepEqual(await client.channelMembership(club, dan.sessionId), { member: false, role: 'none', invited: false, banned: true });
    await assert.rejects(client.moderateChannel(carol, club, ModerationAction.Ban, [alice.sessionId]), ForbiddenError);
    const info = await client.channel(club);
    assert.deepEqual(info.members.map((m, i) => [m, info.memberRoles[i]]).sort(), [[alice.sessionId, 'owner'], [carol.sessionId, 'moderator']].sort());
    assert.equal(info.banCount, 1);
    await accepted(client.setChannelPolicy(alice, club, JoinPolicy.Open, 3600));
    assert.equal((await client.channel(club)).joinPolicy, 'open');
    // Slow mode: a plain member posts once an hour; the moderator is not held.
    const fay = generateIdentity();
    await registered(fay);
    await accepted(client.joinChannel(fay, club));
    await accepted(client.post(fay, club, utf8('once')));
    await assert.rejects(client.post(fay, club, utf8('twice')), RateLimitedError);
    await accepted(client.post(carol, club, utf8('moderator 1')));
    await accepted(client.post(carol, club, utf8('moderator 2')));
  });

  it('maps the node errors to typed errors', async () => {
    const carol = generateIdentity();
    await registered(carol);
    await assert.rejects(client.send(carol, session, utf8('x')), NotParticipantError);
    // A nonce already used: the raw method gets the node's refusal as BadNonceError.
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
