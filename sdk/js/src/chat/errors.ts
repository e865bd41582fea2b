// Errors of the messaging protocol. Every one is a ChatError (a
// SessionError) with a stable `code`: the error classes of
// docs/protocol.md section 15 for what a delivery can give, and one code per
// bound or misuse besides. Messages never contain key material.

import { SessionError } from '../errors.js';

export type ChatErrorCode =
  // Delivery errors (the classes of the known-answer vectors).
  | 'malformed'
  | 'decryption-failed'
  | 'invalid-signature'
  | 'wrong-sender'
  | 'replay'
  | 'chain-not-started'
  | 'unknown-tree'
  | 'unknown-target'
  | 'unknown-prekey'
  | 'unclaimed-prekey'
  | 'not-addressed'
  | 'too-many-skipped'
  | 'duplicate'
  | 'not-from-this-device'
  | 'too-many-handshakes'
  // Sending and local state.
  | 'plaintext-too-large'
  | 'outbox-full'
  | 'not-participant'
  | 'no-prekey-bundle'
  | 'too-many-prekeys'
  | 'invalid-session'
  | 'state-corrupt'
  | 'state-version'
  | 'unknown-conversation'
  | 'unknown-envelope';

/** Base class of the protocol's errors; `code` names the cause. */
export class ChatError extends SessionError {
  constructor(
    readonly code: ChatErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`chat: ${message}`, options);
  }
}

/** The envelope does not parse, or breaks a rule of the format. */
export class MalformedEnvelopeError extends ChatError {
  constructor(message: string) {
    super('malformed', `malformed envelope: ${message}`);
  }
}
/** A stanza, the body or the AEAD tag did not decrypt. */
export class ChatDecryptionError extends ChatError {
  constructor(message = 'decryption failed') {
    super('decryption-failed', message);
  }
}
/** The sender's ML-DSA-65 signature does not verify. */
export class ChatSignatureError extends ChatError {
  constructor() {
    super('invalid-signature', 'invalid signature');
  }
}
/** The envelope's sender is not the transaction's author (or is not a participant). */
export class WrongSenderError extends ChatError {
  constructor(message = 'the envelope names a sender other than the transaction author') {
    super('wrong-sender', message);
  }
}
/** The message was opened before (its key is gone). */
export class ReplayError extends ChatError {
  constructor(message = 'replay: this message was already opened') {
    super('replay', message);
  }
}
/** The message's chain has not been started here: deliver earlier messages first. */
export class ChainNotStartedError extends ChatError {
  constructor() {
    super('chain-not-started', "the message's chain has not started here (its first message was not opened yet)");
  }
}
/** The message belongs to a handshake this device never received. */
export class UnknownTreeError extends ChatError {
  constructor() {
    super('unknown-tree', 'the message belongs to a handshake this device never received');
  }
}
/** A step names a chain of this device that it does not hold (any more). */
export class UnknownTargetError extends ChatError {
  constructor() {
    super('unknown-target', 'the message starts a chain against a ratchet key this device does not hold');
  }
}
/** A handshake names a prekey this device does not hold (any more). */
export class UnknownPrekeyError extends ChatError {
  constructor(message = 'the handshake names a prekey this device does not hold') {
    super('unknown-prekey', message);
  }
}
/** A handshake uses a one-time prekey that was not claimed on chain for it. */
export class UnclaimedPrekeyError extends ChatError {
  constructor() {
    super('unclaimed-prekey', 'the handshake uses a one-time prekey that was not claimed for it');
  }
}
/** The envelope carries no stanza for this participant (a setup message for others). */
export class NotAddressedError extends ChatError {
  constructor() {
    super('not-addressed', 'the envelope is not addressed to this participant');
  }
}
/** Opening the message would skip more than MAX_SKIP keys or slots at once. */
export class TooManySkippedError extends ChatError {
  constructor() {
    super('too-many-skipped', 'the message would skip too many keys');
  }
}
/** The same message (messageID) was opened before, from another envelope: nothing to show. */
export class DuplicateError extends ChatError {
  constructor() {
    super('duplicate', 'duplicate: this message was opened before (sent again after a transaction that landed after all)');
  }
}
/** An envelope of this device's identity that this device did not make: the identity is in use elsewhere. */
export class NotFromThisDeviceError extends ChatError {
  constructor() {
    super('not-from-this-device', 'an envelope of this identity that this device did not make (is the identity in use elsewhere?)');
  }
}
/** The pair knows too many trees (or this device made too many handshakes with the peer). */
export class TooManyHandshakesError extends ChatError {
  constructor(message = 'too many handshakes in this pair') {
    super('too-many-handshakes', message);
  }
}
