// The web app's model (app/src/messenger.ts, no DOM) against a node that
// lies, in Node: compiled with the SDK, driven through a fake Client that
// plays the node. What the app decides from the node's answers: which
// messages a Seal session or channel shows, and whether a new session
// falls back to Seal.
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { Messenger, UserError } from '../app/src/messenger.js';
import { Client, type Identity, ResponseMismatchError, identityFromSeed, idToString, type Message, messageAD, SealCipher, seal, StalePrekeyError, utf8 } from '../src/index.js';

function who(name: string): Identity {
  const seed = new Uint8Array(32);
  seed.set(utf8(name));
  return identityFromSeed(seed);
}

const alice = who('alice');
const bob = who('bob');
const eve = who('eve');
const carolId = who('carol').sessionId;
const session = idToString(new Uint8Array(32).fill(7));

/** The app's encrypted store, in memory. */
function memoryStore() {
  const m = new Map<string, unknown>();
  return {
    get: async <T>(n: string) => (m.has(n) ? (structuredClone(m.get(n)) as T) : undefined),
    put: async (n: string, v: unknown) => void m.set(n, structuredClone(v)),
    close: () => {},
  };
}

function message(seq: number, author: Identity, ciphertext: Uint8Array): Message {
  return { target: session, seq, author: author.sessionId, txID: idToString(sha256(ciphertext)), height: seq, position: seq, timestamp: 1000 * seq, ciphertext };
}

/** Bob's app over a node that lists `listed` as the session's messages. */
function bobsApp(listed: Message[], extra: Partial<Record<keyof Client, unknown>> = {}) {
  const client = {
    url: 'fake',
    messages: async (_s: string, after: number) => {
      const messages = listed.filter((m) => m.seq > after);
      return { messages, next: messages.at(-1)?.seq ?? after, more: false };
    },
    ...extra,
  } as unknown as Client;
  const noProtocol = async () => {
    throw new Error('not used');
  };
  const m = new Messenger(client, bob, memoryStore() as never, new SealCipher(), noProtocol as never);
  m.state.conversations[session] = { kind: 'session', id: session, participants: [alice.sessionId, bob.sessionId], creator: alice.sessionId, lastSeq: 0, unread: 0, lastTs: 0, preview: '' };
  return m;
}

const sealAs = (from: Identity, text: string) => seal(from, [alice.publicIdentity(), bob.publicIdentity()], utf8(text), messageAD(session));

describe('web app: a Seal session over a node that lies', () => {
  it('an envelope by someone who is not a participant is not shown as a message of the session', async () => {
    const m = bobsApp([message(1, alice, sealAs(alice, 'hi bob')), message(2, eve, sealAs(eve, 'eve, in your session'))]);
    await m.syncThread(m.thread(session)!);
    const hist = await m.history(session);
    assert.deepEqual(hist.map((x) => x.text), ['hi bob', undefined]);
    assert.match(hist[1]!.error ?? '', /not a participant/);
  });

  it('the same envelope listed again at a later position shows once', async () => {
    const env = sealAs(alice, 'yes, do it');
    const m = bobsApp([message(1, alice, env), message(2, alice, sealAs(alice, 'and one more thing')), { ...message(3, alice, env), txID: idToString(new Uint8Array(32).fill(1)) }]);
    await m.syncThread(m.thread(session)!);
    const hist = await m.history(session);
    assert.deepEqual(hist.map((x) => x.text), ['yes, do it', 'and one more thing', undefined]);
    assert.match(hist[2]!.error ?? '', /replay/);
    assert.equal(m.thread(session)!.kind === 'session' && m.thread(session)!.preview, 'and one more thing');
  });
});

describe('web app: a new session does not fall back to Seal on the node\'s word', () => {
  it('a node that withholds a signed prekey verified before: refused, nothing sent', async () => {
    let created = 0;
    const client = {
      url: 'fake',
      publicIdentity: async (s: string) => (s === bob.sessionId ? bob.publicIdentity() : alice.publicIdentity()),
      // The node's lie: no signed prekey.
      rawPrekeyBundle: async (s: string) => ({ sessionId: s, kemPublicKey: bob.kemPublicKey, dsaPublicKey: bob.dsaPublicKey, unclaimed: 0 }),
      createSession: async () => {
        created++;
        return { txID: 'x', session };
      },
      waitAccepted: async () => ({}),
      session: async () => ({ participantStates: [], status: 'active' }),
    } as unknown as Client;
    // The protocol's client verified bob's signed prekey before (its pin): it refuses.
    const protocol = { hasPrekeys: async () => Promise.reject(new StalePrekeyError('withheld after it was verified')) };
    const m = new Messenger(client, alice, memoryStore() as never, new SealCipher(), async () => protocol as never);
    await assert.rejects(m.startSession([bob.sessionId]), (e: unknown) => e instanceof UserError && /not trustworthy/.test(e.message));
    assert.equal(created, 0, 'no session created');
  });
});

describe('SealCipher.open', () => {
  it('without participants, takes them from the creator-signed session and refuses an author outside it', async () => {
    let asked = 0;
    const client = {
      verifiedSession: async (s: string) => {
        asked++;
        assert.equal(s, session);
        return { participants: [alice.sessionId, bob.sessionId] };
      },
    } as unknown as Client;
    const cipher = new SealCipher();
    const ok = await cipher.open(client, bob, message(1, alice, sealAs(alice, 'hi')));
    assert.equal(new TextDecoder().decode(ok.plaintext), 'hi');
    await assert.rejects(cipher.open(client, bob, message(2, eve, sealAs(eve, 'eve'))), /not a participant/);
    assert.equal(asked, 2);
  });
});

describe('web app: the chain is pinned with the state', () => {
  it('a stored state pins its chain: a node that names another is refused, nothing is signed for it', async () => {
    const stored = idToString(new Uint8Array(32).fill(2));
    const served = idToString(new Uint8Array(32).fill(3));
    const fetch = (async (_u: unknown, init: RequestInit) => {
      const req = JSON.parse(String(init.body));
      return new Response(JSON.stringify({ jsonrpc: '2.0', id: req.id, result: { chainID: served } }), { status: 200 });
    }) as typeof globalThis.fetch;
    const client = new Client('http://x/rpc', { fetch });
    const store = memoryStore();
    await store.put('state', { version: 2, chain: stored, contacts: [], conversations: {}, channels: {}, requests: {}, ignored: [], inboxCursor: 0, sessionsCursor: 0, registered: true, prekeysPublished: true });
    const m = new Messenger(client, bob, store as never, new SealCipher(), (async () => { throw new Error('not used'); }) as never);
    await m.load();
    assert.equal(await client.chainID(), stored, 'transactions are signed for the stored chain');
    await assert.rejects(client.config(), ResponseMismatchError);
    // A poll that meets a reply that does not check out shows it (not only in the console).
    await m.pollOnce().catch(() => undefined);
    assert.equal(m.online, false);
    assert.match(m.nodeError, /not trustworthy/);
  });
});

describe('web app: message requests the node lists', () => {
  const eveSession = idToString(new Uint8Array(32).fill(8));
  function app(participants: string[]) {
    const calls: string[] = [];
    const client = {
      url: 'fake',
      verifiedSession: async (s: string) => {
        assert.equal(s, eveSession);
        return { id: s, creator: eve.sessionId, participants, claims: [], reply: { createdAt: 1 } };
      },
      acceptSession: async () => (calls.push('acceptSession'), { txID: 't' }),
      setContact: async () => (calls.push('setContact'), { txID: 't' }),
      waitAccepted: async () => ({}),
    } as unknown as Client;
    const m = new Messenger(client, bob, memoryStore() as never, new SealCipher(), (async () => { throw new Error('not used'); }) as never);
    // The node lists Eve's session as a request from Alice, one of Bob's contacts.
    m.state.contacts.push({ sessionId: alice.sessionId, name: 'Alice' });
    m.state.requests[eveSession] = { session: eveSession, creator: alice.sessionId, position: 1, status: 'active' };
    return { m, calls };
  }

  it('block blocks who signed the session, never the contact the node named', async () => {
    const { m, calls } = app([eve.sessionId, bob.sessionId]);
    await assert.rejects(m.blockRequest(eveSession), (e: unknown) => e instanceof UserError && /nothing blocked/.test(e.message));
    assert.deepEqual(calls, []);
    assert.equal(m.requests()[0]!.verifiedCreator, eve.sessionId, 'the request now shows its signed creator');
  });

  it('accept signs consent only to a session whose signed participants include you', async () => {
    const { m, calls } = app([eve.sessionId, carolId]);
    await assert.rejects(m.acceptRequest(eveSession), (e: unknown) => e instanceof UserError && /not accepted/.test(e.message));
    assert.deepEqual(calls, []);
  });
});

describe('web app: previewing a request sends nothing', () => {
  it('a request on the protocol is read with send: false (a ratchet message would be consent, and tell the sender)', async () => {
    const reads: unknown[] = [];
    const protocol = {
      read: async (...args: unknown[]) => {
        reads.push(args[3]);
        return { messages: [{ timestamp: 5, text: utf8('hello stranger'), fromSelf: false, sender: alice.sessionId }], next: 1, more: false };
      },
    };
    const client = {
      url: 'fake',
      requests: async () => ({ requests: [{ creator: alice.sessionId, session, position: 1, status: 'active' }], next: 1, more: false }),
      verifiedSession: async () => ({ id: session, creator: alice.sessionId, participants: [alice.sessionId, bob.sessionId], claims: [{ participant: bob.sessionId, signedPrekeyId: 1, oneTimePrekeyId: 0 }], reply: { createdAt: 1 } }),
    } as unknown as Client;
    const m = new Messenger(client, bob, memoryStore() as never, new SealCipher(), async () => protocol as never);
    await (m as unknown as { syncRequests(): Promise<boolean> }).syncRequests();
    assert.equal(m.requests()[0]!.preview, 'hello stranger');
    assert.deepEqual(reads, [{ send: false }]);
  });
});
