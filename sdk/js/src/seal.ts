// Seal envelopes, version 1, suite 1 (Go: crypto.Seal / crypto.Open;
// LLM.md, "Seal envelope"): one body under a fresh content key, one ML-KEM
// stanza per recipient, the sender's keys and ML-DSA-65 signature inside
// the encrypted body.

import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { blake2b } from '@noble/hashes/blake2.js';
import { concat, equalBytes, randomBytes, toHex, utf8, Writer } from './bytes.js';
import {
  DecryptionFailedError,
  InvalidEnvelopeError,
  InvalidPublicKeyError,
  InvalidSecretKeyError,
  InvalidSignatureError,
  NotRecipientError,
} from './errors.js';
import {
  DSA_PUBLIC_KEY_SIZE,
  type Identity,
  KEM_CIPHERTEXT_SIZE,
  KEM_PUBLIC_KEY_SIZE,
  kemPublicKeyCanonical,
  PREFIX_POST_QUANTUM,
  PublicIdentity,
  SIGNATURE_SIZE,
} from './identity.js';
import { MAX_RECIPIENTS } from './limits.js';

export const SEAL_VERSION = 0x01;
export const SEAL_SUITE = 0x01;

const HEADER_SIZE = 4;
const TAG_SIZE = 16;
const KEY_SIZE = 32;
const STANZA_SIZE = KEM_CIPHERTEXT_SIZE + KEY_SIZE + TAG_SIZE; // 1136
const SENDER_SIZE = KEM_PUBLIC_KEY_SIZE + DSA_PUBLIC_KEY_SIZE; // 3136
const DIGEST_SIZE = 32;

const LABEL_STANZA = utf8('luxfi/session/v1/seal/stanza');
const LABEL_HEADER = utf8('luxfi/session/v1/seal/header');
const LABEL_TRANSCRIPT = utf8('luxfi/session/v1/seal/transcript');
const SIGN_CONTEXT = utf8('luxfi/session/v1/seal');
const ZERO_NONCE_12 = new Uint8Array(12);
const ZERO_NONCE_24 = new Uint8Array(24);

/** Bytes Seal adds to a plaintext for n recipients. */
export function sealOverhead(n: number): number {
  return HEADER_SIZE + n * (STANZA_SIZE + DIGEST_SIZE) + TAG_SIZE + SENDER_SIZE + SIGNATURE_SIZE;
}

function stanzaKey(ss: Uint8Array, kemCiphertext: Uint8Array, recipientSessionId: string): Uint8Array {
  return blake2b
    .create({ key: ss, dkLen: 32 })
    .update(LABEL_STANZA)
    .update(Uint8Array.of(SEAL_VERSION, SEAL_SUITE))
    .update(kemCiphertext)
    .update(utf8(recipientSessionId))
    .digest();
}

function hashHeader(header: Uint8Array): Uint8Array {
  return blake2b.create({ dkLen: 32 }).update(LABEL_HEADER).update(header).digest();
}

function transcript(headerHash: Uint8Array, senderId: string, digests: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
  const len = new Writer(8).u64(ad.length).finish();
  return blake2b
    .create({ dkLen: 32 })
    .update(LABEL_TRANSCRIPT)
    .update(headerHash)
    .update(utf8(senderId))
    .update(digests)
    .update(len)
    .update(ad)
    .update(plaintext)
    .digest();
}

/** @internal Randomness and signing of one seal: real, or deterministic for known answers. */
export interface SealRandom {
  contentKey(): Uint8Array;
  encapsulationSeed(): Uint8Array | undefined;
  deterministicSignature: boolean;
}

const realRandom: SealRandom = {
  contentKey: () => randomBytes(KEY_SIZE),
  encapsulationSeed: () => undefined,
  deterministicSignature: false,
};

/**
 * Encrypts plaintext from sender to every recipient and authenticates the
 * sender to them. `ad` is authenticated but not carried: open needs the
 * same. Recipients need only their public keys.
 */
export function seal(sender: Identity, recipients: readonly PublicIdentity[], plaintext: Uint8Array, ad: Uint8Array = new Uint8Array(0)): Uint8Array {
  return _seal(realRandom, sender, recipients, plaintext, ad);
}

/** @internal */
export function _seal(rnd: SealRandom, sender: Identity, recipients: readonly PublicIdentity[], plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  const n = recipients.length;
  if (n === 0 || n > MAX_RECIPIENTS) throw new InvalidPublicKeyError(`invalid public key: ${n} recipients, want 1 to ${MAX_RECIPIENTS}`);
  const header = new Uint8Array(HEADER_SIZE + n * STANZA_SIZE);
  header[0] = SEAL_VERSION;
  header[1] = SEAL_SUITE;
  header[2] = n >> 8;
  header[3] = n & 0xff;
  const contentKey = rnd.contentKey();
  const digests = new Uint8Array(n * DIGEST_SIZE);
  try {
    recipients.forEach((rc, i) => {
      if (!(rc instanceof PublicIdentity)) throw new InvalidPublicKeyError(`invalid public key: recipient ${i} is not a PublicIdentity`);
      digests.set(rc.digest, i * DIGEST_SIZE);
      const { cipherText, sharedSecret } = rc.encapsulate(rnd.encapsulationSeed());
      const k = stanzaKey(sharedSecret, cipherText, rc.sessionId);
      sharedSecret.fill(0);
      const wrapped = chacha20poly1305(k, ZERO_NONCE_12).encrypt(contentKey);
      k.fill(0);
      const at = HEADER_SIZE + i * STANZA_SIZE;
      header.set(cipherText, at);
      header.set(wrapped, at + KEM_CIPHERTEXT_SIZE);
    });
    const headerHash = hashHeader(header);
    const tr = transcript(headerHash, sender.sessionId, digests, ad, plaintext);
    const sig = rnd.deterministicSignature ? sender._signDeterministic(tr, SIGN_CONTEXT) : sender.sign(tr, SIGN_CONTEXT);
    const body = concat(sender.kemPublicKey, sender.dsaPublicKey, digests, sig, plaintext);
    const sealed = xchacha20poly1305(contentKey, ZERO_NONCE_24, concat(headerHash, ad)).encrypt(body);
    body.fill(0);
    return concat(header, sealed);
  } finally {
    contentKey.fill(0);
  }
}

/** What open returns. */
export interface Opened {
  plaintext: Uint8Array;
  /** The verified sender (its Session ID derives from the keys that signed). */
  sender: PublicIdentity;
  /** Every recipient's Session ID, in stanza order. */
  recipients: string[];
}

/**
 * Decrypts an envelope made by seal, verifies the sender's signature and
 * that this identity is in the signed recipient set.
 *
 * Throws InvalidEnvelopeError (malformed, unsupported), NotRecipientError
 * (no stanza opens with this key), DecryptionFailedError (body or ad
 * changed), InvalidSignatureError (signature or recipient set).
 */
export function open(recipient: Identity, envelope: Uint8Array, ad: Uint8Array = new Uint8Array(0)): Opened {
  if (!recipient) throw new InvalidSecretKeyError('invalid secret key: no recipient');
  if (envelope.length < HEADER_SIZE) throw new InvalidEnvelopeError(`invalid envelope: ${envelope.length} bytes`);
  if (envelope[0] !== SEAL_VERSION || envelope[1] !== SEAL_SUITE) {
    throw new InvalidEnvelopeError(`invalid envelope: unsupported version ${envelope[0]} suite ${envelope[1]}`);
  }
  const n = (envelope[2]! << 8) | envelope[3]!;
  if (n === 0 || n > MAX_RECIPIENTS) throw new InvalidEnvelopeError(`invalid envelope: ${n} recipients`);
  if (envelope.length < sealOverhead(n)) throw new InvalidEnvelopeError(`invalid envelope: ${envelope.length} bytes is too short for ${n} recipients`);
  const headerLen = HEADER_SIZE + n * STANZA_SIZE;
  const header = envelope.subarray(0, headerLen);

  let contentKey: Uint8Array | undefined;
  for (let i = 0; i < n && !contentKey; i++) {
    const at = HEADER_SIZE + i * STANZA_SIZE;
    const ct = header.subarray(at, at + KEM_CIPHERTEXT_SIZE);
    const ss = recipient.decapsulate(ct);
    const k = stanzaKey(ss, ct, recipient.sessionId);
    ss.fill(0);
    try {
      contentKey = chacha20poly1305(k, ZERO_NONCE_12).decrypt(header.subarray(at + KEM_CIPHERTEXT_SIZE, at + STANZA_SIZE));
    } catch {
      // not this stanza
    } finally {
      k.fill(0);
    }
  }
  if (!contentKey) throw new NotRecipientError('not a recipient of this envelope');

  const headerHash = hashHeader(header);
  let body: Uint8Array;
  try {
    body = xchacha20poly1305(contentKey, ZERO_NONCE_24, concat(headerHash, ad)).decrypt(envelope.subarray(headerLen));
  } catch {
    throw new DecryptionFailedError('decryption failed');
  } finally {
    contentKey.fill(0);
  }
  const sigAt = SENDER_SIZE + n * DIGEST_SIZE;
  const digests = body.subarray(SENDER_SIZE, sigAt);
  const sig = body.subarray(sigAt, sigAt + SIGNATURE_SIZE);
  const plaintext = body.slice(sigAt + SIGNATURE_SIZE);

  const own = recipient.digest;
  let listed = false;
  for (let i = 0; i < n; i++) listed = equalBytes(digests.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE), own) || listed;
  if (!listed) throw new InvalidSignatureError('invalid signature: recipient missing from the signed recipient set');

  const kemPK = body.subarray(0, KEM_PUBLIC_KEY_SIZE);
  if (!kemPublicKeyCanonical(kemPK)) throw new InvalidSignatureError('invalid signature: sender ML-KEM key');
  const sender = new PublicIdentity(kemPK, body.subarray(KEM_PUBLIC_KEY_SIZE, SENDER_SIZE));
  const tr = transcript(headerHash, sender.sessionId, digests, ad, plaintext);
  if (!sender.verify(tr, sig, SIGN_CONTEXT)) throw new InvalidSignatureError('invalid signature');
  const recipients: string[] = [];
  for (let i = 0; i < n; i++) recipients.push(PREFIX_POST_QUANTUM + toHex(digests.subarray(i * DIGEST_SIZE, (i + 1) * DIGEST_SIZE)));
  return { plaintext, sender, recipients };
}
