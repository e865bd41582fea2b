// Times the SDK's operations and the raw noble primitives they are built
// on, in the same run (ratios are what to read; the machine may be shared).
//   npm run build && node scripts/bench.mjs
import { ml_dsa65 } from '@noble/post-quantum/ml-dsa.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { identityFromSeed, open, seal, signTx, parseTx, verifyTx, idToString, utf8 } from '../dist/src/index.js';

// Each pair runs interleaved (one wrapper call, one raw call, repeated), so
// both see the same load; the medians of the per-call times are compared.
function pair(name, wrapper, raw, rounds = 40) {
  wrapper();
  raw();
  const a = [];
  const b = [];
  for (let i = 0; i < rounds; i++) {
    let t = performance.now();
    wrapper();
    a.push(performance.now() - t);
    t = performance.now();
    raw();
    b.push(performance.now() - t);
  }
  const med = (x) => x.sort((p, q) => p - q)[x.length >> 1];
  const [ma, mb] = [med(a), med(b)];
  console.log(`${name.padEnd(44)} ${(ma * 1000).toFixed(0).padStart(7)} µs vs ${(mb * 1000).toFixed(0).padStart(7)} µs raw  = ${(ma / mb).toFixed(2)}x`);
}

const alice = identityFromSeed(new Uint8Array(32));
const bob = identityFromSeed(new Uint8Array(32).fill(1));
const bobPub = bob.publicIdentity();
const msg = new Uint8Array(256).fill(7);
const chainID = idToString(new Uint8Array(32).fill(9));
const session = idToString(new Uint8Array(32).fill(3));
const { secretKey: dsaSk, publicKey: dsaPk } = ml_dsa65.keygen(new Uint8Array(32));
const ctx = utf8('luxfi/session/v1/tx');

const alicePub = alice.publicIdentity();
const t = signTx(alice, chainID, 1, 'sendMessage', { session, ciphertext: msg });
const rawSig = ml_dsa65.sign(msg, dsaSk, { context: ctx });
const env = seal(alice, [bobPub], msg);
const { cipherText } = ml_kem768.encapsulate(bob.kemPublicKey);
const bobSk = bob.exportSecretKeys().kemSecretKey;
const aliceSk = alice.exportSecretKeys().dsaSecretKey;

pair('identityFromSeed vs ML-KEM + ML-DSA keygen', () => identityFromSeed(new Uint8Array(32)), () => {
  ml_kem768.keygen(new Uint8Array(64));
  ml_dsa65.keygen(new Uint8Array(32));
}, 20);
pair('signTx (256 B) vs ml_dsa65.sign', () => signTx(alice, chainID, 1, 'sendMessage', { session, ciphertext: msg }), () => ml_dsa65.sign(msg, dsaSk, { context: ctx }));
pair('parseTx + verifyTx vs ml_dsa65.verify', () => verifyTx(parseTx(t.bytes), alicePub), () => ml_dsa65.verify(rawSig, msg, dsaPk, { context: ctx }));
pair('seal (1 recipient, 256 B) vs encaps + sign', () => seal(alice, [bobPub], msg), () => {
  ml_kem768.encapsulate(bob.kemPublicKey);
  ml_dsa65.sign(msg, aliceSk, { context: ctx });
});
pair('open (1 recipient, 256 B) vs decaps + verify', () => open(bob, env), () => {
  ml_kem768.decapsulate(cipherText, bobSk);
  ml_dsa65.verify(rawSig, msg, dsaPk, { context: ctx });
});
