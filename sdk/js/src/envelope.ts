// The reference envelope (Go: crypto.EncryptToRecipient /
// DecryptFromSender), kept byte for byte for interoperability:
//
//   KEM ciphertext (1088) ‖ nonce (24) ‖ XChaCha20-Poly1305(key = shared secret, ad = empty) ciphertext ‖ tag (16)
//
// It is anonymous and unauthenticated, and a fresh encapsulation per
// message is not forward secrecy. New messages use seal.

import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { concat, randomBytes } from './bytes.js';
import { DecryptionFailedError, InvalidCiphertextError, InvalidPublicKeyError } from './errors.js';
import { type Identity, KEM_CIPHERTEXT_SIZE, kemPublicKeyCanonical, PublicIdentity } from './identity.js';

const NONCE_SIZE = 24;
const TAG_SIZE = 16;

/** Bytes the reference envelope adds to a plaintext (1128). */
export const RECIPIENT_OVERHEAD = KEM_CIPHERTEXT_SIZE + NONCE_SIZE + TAG_SIZE;

/** @internal Randomness of one envelope (known-answer tests pass fixed values). */
export interface EnvelopeRandom {
  encapsulationSeed?: Uint8Array;
  nonce?: Uint8Array;
}

/** Encrypts to a recipient's ML-KEM-768 public key (a PublicIdentity, or the 1184 raw bytes). */
export function encryptToRecipient(recipient: PublicIdentity | Uint8Array, plaintext: Uint8Array, _rnd: EnvelopeRandom = {}): Uint8Array {
  let kem: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  if (recipient instanceof PublicIdentity) {
    kem = recipient.encapsulate(_rnd.encapsulationSeed);
  } else {
    // Only the KEM key is known: check and encapsulate without a Session ID.
    const pub = rawKEMKey(recipient);
    kem = pub.encapsulate(_rnd.encapsulationSeed);
  }
  const nonce = _rnd.nonce ?? randomBytes(NONCE_SIZE);
  try {
    return concat(kem.cipherText, nonce, xchacha20poly1305(kem.sharedSecret, nonce).encrypt(plaintext));
  } finally {
    kem.sharedSecret.fill(0);
  }
}

function rawKEMKey(pk: Uint8Array): { encapsulate(seed?: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array } } {
  if (!(pk instanceof Uint8Array) || !kemPublicKeyCanonical(pk)) throw new InvalidPublicKeyError('invalid public key: ML-KEM-768 encapsulation key');
  return { encapsulate: (seed) => ml_kem768.encapsulate(pk, seed) };
}

/** Opens a reference envelope with the recipient identity's ML-KEM secret key. */
export function decryptFromSender(recipient: Identity, envelope: Uint8Array): Uint8Array {
  if (envelope.length < KEM_CIPHERTEXT_SIZE + NONCE_SIZE) throw new InvalidCiphertextError('invalid ciphertext: too short');
  const ss = recipient.decapsulate(envelope.subarray(0, KEM_CIPHERTEXT_SIZE));
  try {
    return xchacha20poly1305(ss, envelope.subarray(KEM_CIPHERTEXT_SIZE, KEM_CIPHERTEXT_SIZE + NONCE_SIZE)).decrypt(
      envelope.subarray(KEM_CIPHERTEXT_SIZE + NONCE_SIZE),
    );
  } catch {
    throw new DecryptionFailedError('decryption failed');
  } finally {
    ss.fill(0);
  }
}
