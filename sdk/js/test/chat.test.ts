// The messaging protocol between TypeScript devices: the behaviour of
// docs/protocol.md sections 7 to 12 (handshakes, steps, out-of-order and
// replays, simultaneous initiation, dead transactions, ratchet messages,
// bounds), the wire format's parsing rules, the state codec and the stores.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { World } from './chat.harness.js';

const T0 = 1_767_225_600_000;
const DAY = 24 * 60 * 60 * 1000;

describe('conversation', () => {
  it('three parties: handshakes, steps, out-of-order delivery, replay, the 24-hour bound', async () => {
    const w = await World.create(['alice', 'bob', 'carol']);
    await w.createSession(T0);
    const [p1] = await w.send('alice', T0 + 1, 'hello, this is alice');
    assert.equal(await w.open('bob', T0 + 2, p1!), 'hello, this is alice');
    assert.equal(await w.open('carol', T0 + 2, p1!), 'hello, this is alice');
    assert.equal(await w.open('alice', T0 + 2, p1!), 'hello, this is alice'); // lands
    // The creator's session claim serves one handshake only (section 11.2): checked before the tree's tombstone.
    assert.equal(await w.open('bob', T0 + 2, p1!), 'error:unclaimed-prekey');
    assert.equal(await w.open('alice', T0 + 2, p1!), 'error:replay');

    const [p2] = await w.send('bob', T0 + 3, 'hi alice and carol');
    const [p3] = await w.send('carol', T0 + 4, 'carol here');
    for (const who of ['alice', 'bob', 'carol']) {
      assert.match(await w.open(who, T0 + 5, p3!), /carol here/);
      assert.match(await w.open(who, T0 + 5, p2!), /hi alice and carol/);
    }
    const [p4] = await w.send('alice', T0 + 6, 'second from alice');
    const b = [];
    for (const t of ['b1', 'b2', 'b3']) b.push((await w.send('bob', T0 + 7, t))[0]!);
    assert.equal(await w.open('carol', T0 + 8, b[2]!), 'b3');
    assert.equal(await w.open('carol', T0 + 8, b[0]!), 'b1');
    assert.equal(await w.open('carol', T0 + 8, b[1]!), 'b2');
    assert.equal(await w.open('carol', T0 + 8, b[1]!), 'error:replay');
    assert.equal(await w.open('carol', T0 + 8, p4!), 'second from alice');
    const [p8] = await w.send('alice', T0 + DAY + 10, 'a day later');
    for (const who of ['bob', 'carol']) {
      for (const p of [p4!, ...b]) await w.open(who, T0 + DAY + 11, p);
      assert.equal(await w.open(who, T0 + DAY + 11, p8!), 'a day later');
    }
  });
});
