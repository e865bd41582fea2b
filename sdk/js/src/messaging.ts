// The message layer of sessions, behind one interface. Today sessions use
// Seal envelopes to every participant (what sessionctl sends); the
// forward-secret protocol (docs/protocol.md, Go package chat) will be a
// second implementation of the same interface, so apps change one line.
// Channels stay on Seal.

import { SessionError, UntrustedNodeError } from './errors.js';
import type { Identity, PublicIdentity } from './identity.js';
import { type Client, type Message, messageAD, openMessage, type TxReply } from './rpc.js';
import { seal } from './seal.js';

/** A decrypted, verified message of a session or channel. */
export interface OpenedMessage {
  message: Message;
  plaintext: Uint8Array;
  /** The verified sender (equal to message.author). */
  sender: PublicIdentity;
}

/** How an app sends and reads the messages of on-chain sessions. */
export interface SessionCipher {
  /** A short name for logs and diagnostics ("seal/v1"). */
  readonly name: string;
  /** Encrypts and sends plaintext to every participant of the session. */
  send(client: Client, identity: Identity, session: string, plaintext: Uint8Array): Promise<TxReply>;
  /**
   * Decrypts and verifies one message of a session; throws a SessionError
   * subclass when it cannot. `participants`: the session's participants as
   * its creator signed them (verifiedSession), when the caller has them;
   * otherwise the cipher fetches and verifies them. An author who is not
   * one of them is refused (UntrustedNodeError).
   */
  open(client: Client, identity: Identity, message: Message, participants?: readonly string[]): Promise<OpenedMessage>;
}

/**
 * Seal to every participant, the sender included, with messageAD(session):
 * sender-authenticated and readable by every participant, but not forward
 * secret (see LLM.md, "Seal envelope").
 */
export class SealCipher implements SessionCipher {
  readonly name = 'seal/v1';

  async send(client: Client, identity: Identity, session: string, plaintext: Uint8Array): Promise<TxReply> {
    return client.sendSealed(identity, session, plaintext);
  }

  async open(client: Client, identity: Identity, message: Message, participants?: readonly string[]): Promise<OpenedMessage> {
    // The signer must be the author the node names (openMessage) and a
    // participant the creator signed: a node could otherwise show anyone's
    // envelope, sealed to this session's readers, as one of its messages.
    const parts = participants ?? (await client.verifiedSession(message.target)).participants;
    if (!parts.includes(message.author)) throw new UntrustedNodeError(`message ${message.seq} of session ${message.target} is by ${message.author}, who is not a participant`);
    const { plaintext, sender } = openMessage(identity, message);
    return { message, plaintext, sender };
  }
}

/** Seals a channel post to the given members (PublicIdentity list, the poster included). */
export function sealChannelPost(identity: Identity, channel: string, members: readonly PublicIdentity[], plaintext: Uint8Array): Uint8Array {
  if (!members.some((m) => m.sessionId === identity.sessionId)) throw new SessionError('the poster must be one of the recipients');
  return seal(identity, members, plaintext, messageAD(channel));
}
