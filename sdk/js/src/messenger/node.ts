// What a Messenger needs from the chain, as one narrow interface: every
// method returns only what signed transactions say (the implementation
// verifies the node's replies), so the Messenger itself never handles a
// reply it has to distrust. SdkNode implements it over the SDK's Client;
// tests implement it in memory.

import type { Claim, PrekeyBundle, PrekeyUpload } from '../chat/index.js';
import type { PublicIdentity } from '../identity.js';

/** A session as its creator signed it (CreateSession), with the participants' checked keys. */
export interface NodeSession {
  id: string;
  /** The creator first, then the listed participants, in order. */
  participants: PublicIdentity[];
  /** The creator's session claims (section 11.2 of docs/protocol.md). */
  claims: Claim[];
}

/** A message of a session as the node lists it (getMessages, getInbox): unverified. */
export interface NodeMessage {
  session: string;
  seq: number;
  /** Chain position: the inbox cursor. */
  position: number;
  txID: string;
  author: string;
  height: number;
  /** Block time, Unix ms (the node's word). */
  timestamp: number;
  ciphertext: Uint8Array;
}

/** A page of messages. */
export interface NodePage {
  messages: NodeMessage[];
  next: number;
  more: boolean;
}

/** A message checked against its signed SendMessage transaction: author, ciphertext and claims are the transaction's. */
export interface VerifiedDelivery {
  author: string;
  envelope: Uint8Array;
  claims: Claim[];
}

/** A signed transaction not yet submitted. */
export interface SignedTxBytes {
  txID: string;
  nonce: number;
  bytes: Uint8Array;
}

/** Where a transaction stands. */
export type TxState = { status: 'accepted'; height: number } | { status: 'pending' } | { status: 'dropped'; reason: string } | { status: 'unknown' };

/** The identity's prekeys as the chain holds them (from its signed transactions where it matters). */
export interface OwnPrekeys {
  /** The chain's current signed prekey, verified (0: none, or expired). */
  signedPrekeyId: number;
  signedExpiresAt: number;
  /** The highest signed prekey ID the chain has, expired or not (the node's word): a new one must be above it. */
  chainSignedPrekeyId: number;
  /** Unclaimed one-time prekeys left on chain (the node's word). */
  unclaimed: number;
  /** A lower bound of the highest one-time prekey ID the chain has (the batch of the one it served): a new device's IDs start above it. */
  chainOneTimePrekeyId: number;
}

/** A page of the claim log: the one-time prekeys claimed, with when their sessions stop taking messages (Unix ms). */
export interface ClaimLogPage {
  claims: { prekeyId: number; sessionEnd: number }[];
  next: number;
  more: boolean;
}

/** How the outcome of a submission is classified (Go: service.classify). */
export class DeadTxError extends Error {
  /** again: the text may go again in a new transaction; claim: a claim was refused (new bundles needed). */
  constructor(
    message: string,
    readonly again: boolean,
    readonly claim: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The chain as a Messenger uses it. Writes sign as the Messenger's
 * identity. Errors: transient ones (the node unreachable, busy) as the
 * SDK's errors; a transaction that will never land as DeadTxError.
 */
export interface MessengerNode {
  /** The chain's ID (CB58). */
  chainID(): Promise<string>;
  /** The client's clock, Unix ms. */
  now(): number;
  /** 'none' (not registered), 'same' (registered with these keys), or 'other' (other keys under the Session ID). */
  registration(): Promise<'none' | 'same' | 'other'>;
  /** Registers the identity (solving the chain's work) and waits for its block. */
  register(): Promise<void>;
  ownPrekeys(): Promise<OwnPrekeys>;
  /** Publishes prekeys (retiring unclaimed one-time prekeys with IDs up to retireThrough) and waits for the block. */
  publishPrekeys(up: PrekeyUpload, retireThrough?: number): Promise<void>;
  /** The chain's log of claims of this identity's one-time prekeys after a position, each checked against its signed transaction. */
  claimLog(after: number, limit: number): Promise<ClaimLogPage>;
  /** A participant's prekey bundle, verified against its signed PublishPrekeys transactions, with a one-time prekey this identity may claim (in a new session, or in session). */
  prekeyBundle(sessionId: string, session?: string): Promise<PrekeyBundle>;
  /** A session as its creator signed it. */
  session(session: string): Promise<NodeSession>;
  /**
   * Signs a CreateSession; `prepare` runs with the session ID it creates
   * before the transaction leaves; then submits it and waits for its block.
   */
  createSession(participants: string[], claims: Claim[], metadata: Uint8Array, prepare: (session: string) => Promise<void>): Promise<{ session: string; txID: string }>;
  /**
   * Signs a SendMessage with the identity's next nonce, runs keep with its
   * bytes before it leaves (again with new bytes if it is signed again),
   * and submits it (not waiting for its block).
   */
  submitSend(session: string, claims: Claim[], envelope: Uint8Array, keep: (bytes: Uint8Array) => Promise<void>): Promise<SignedTxBytes>;
  /** The ID and nonce of signed bytes kept in the outbox (checked: this identity's, for this chain). */
  txFromBytes(bytes: Uint8Array): Promise<SignedTxBytes>;
  /** Submits signed bytes (a duplicate of a known transaction is not an error). */
  issue(t: SignedTxBytes): Promise<void>;
  /** Waits for a transaction's block; DeadTxError if it died. */
  waitAccepted(txID: string): Promise<number>;
  txState(txID: string): Promise<TxState>;
  /** The identity's next nonce on chain. */
  nonce(): Promise<number>;
  messages(session: string, after: number, limit: number): Promise<NodePage>;
  inbox(after: number, limit: number): Promise<NodePage>;
  /** Checks a message against its signed transaction (getTx): for this chain, a SendMessage of the session, by the author the node named, signed by that participant, with the ciphertext delivered. */
  verifyDelivery(session: NodeSession, m: NodeMessage): Promise<VerifiedDelivery>;
}
