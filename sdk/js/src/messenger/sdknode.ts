// SdkNode: MessengerNode over the SDK's Client, for one identity. Every
// reply it hands the Messenger is checked against signed transactions:
// participants and session claims against the creator's CreateSession,
// prekeys against the owner's PublishPrekeys, a delivery's author,
// ciphertext and claims against its SendMessage (getTx).

import type { Claim, PrekeyBundle, PrekeyUpload } from '../chat/index.js';
import {
  BadNonceError,
  DuplicateTxError,
  InvalidTransactionError,
  isRetryable,
  NoSignedPrekeyError,
  PrekeyExpiredError,
  PrekeyUnavailableError,
  RpcError,
  SessionError,
  TxDroppedError,
  TxUnknownError,
  UnknownIdentityError,
  UnknownTxError,
  UntrustedNodeError,
  WaitTimeoutError,
} from '../errors.js';
import { equalBytes } from '../bytes.js';
import type { Identity } from '../identity.js';
import { sessionIdFor } from '../ids.js';
import type { Client, RegisterOptions } from '../rpc.js';
import { parseTx, signTx, verifyTx, type Claim as TxClaim, type SignedTx } from '../tx.js';
import { verifyPrekeyBundle } from '../verify.js';
import { DeadTxError, type MessengerNode, type NodeMessage, type NodePage, type NodeSession, type OwnPrekeys, type SignedTxBytes, type TxState, type VerifiedDelivery } from './node.js';

/**
 * The chain's claim entries cannot name a protocol claim: the chain formats
 * of this build predate explicit claims (participant | signed prekey ID |
 * one-time prekey ID, docs/chain.md after the claims review), and a
 * handshake whose claim the chain cannot carry would be refused by its
 * responder. Nothing is sent.
 */
export class ChainFormatError extends SessionError {}

function untrusted(msg: string): UntrustedNodeError {
  return new UntrustedNodeError(`the node's reply does not match the signed transactions: ${msg}`);
}

// --- the chain's claim entries --------------------------------------------------
// The only place that knows how the chain encodes claims. This build's
// formats: CreateSession holds one one-time prekey ID per listed participant
// (0: none), SendMessage (participant, one-time prekey ID >= 1): neither
// names the signed prekey the protocol binds a handshake to.

/** The CreateSession claims field for the protocol's session claims. */
export function createSessionClaims(participants: readonly string[], claims: readonly Claim[]): number[] {
  if (claims.length > 0) throw new ChainFormatError('this chain cannot record which signed prekey a session claim names');
  return participants.map(() => 0);
}

/** The SendMessage claims for the protocol's claims. */
export function sendMessageClaims(claims: readonly Claim[]): TxClaim[] {
  if (claims.length > 0) throw new ChainFormatError('this chain cannot record which signed prekey a handshake claim names');
  return [];
}

/** The protocol's claims from a signed CreateSession transaction. */
export function sessionClaimsFromTx(t: SignedTx<'createSession'>): Claim[] {
  if ((t.payload.claims ?? []).some((c) => c !== 0)) throw new ChainFormatError('the session claims name no signed prekey on this chain');
  return [];
}

/** The protocol's claims from a signed SendMessage transaction. */
export function deliveryClaimsFromTx(t: SignedTx<'sendMessage'>): Claim[] {
  if ((t.payload.claims ?? []).length > 0) throw new ChainFormatError('the message claims name no signed prekey on this chain');
  return [];
}

// ---------------------------------------------------------------------------------

/** Options of an SdkNode. */
export interface SdkNodeOptions {
  /** How register solves the chain's work (a worker pool in a browser). */
  register?: RegisterOptions;
}

/** Sorts an error of submitting or waiting: DeadTxError when the transaction will never land, else the error as it is (it may still land, or be sent again). */
export function classify(e: unknown): unknown {
  if (e instanceof TxDroppedError) return new DeadTxError(e.message, true, false, { cause: e });
  if (!(e instanceof RpcError) || isRetryable(e) || e instanceof BadNonceError || e instanceof TxUnknownError || e instanceof WaitTimeoutError) return e;
  if (e instanceof PrekeyUnavailableError) return new DeadTxError(e.message, true, true, { cause: e });
  return new DeadTxError(e.message, false, false, { cause: e });
}

/** MessengerNode over a Client, as identity. */
export class SdkNode implements MessengerNode {
  constructor(
    readonly client: Client,
    readonly identity: Identity,
    readonly options: SdkNodeOptions = {},
  ) {}

  chainID(): Promise<string> {
    return this.client.chainID();
  }

  now(): number {
    return Date.now();
  }

  async registration(): Promise<'none' | 'same' | 'other'> {
    try {
      const r = await this.client.identity(this.identity.sessionId);
      return equalBytes(r.kemPublicKey, this.identity.kemPublicKey) && equalBytes(r.dsaPublicKey, this.identity.dsaPublicKey) ? 'same' : 'other';
    } catch (e) {
      if (e instanceof UnknownIdentityError) return 'none';
      throw e;
    }
  }

  async register(): Promise<void> {
    const r = await this.client.register(this.identity, this.options.register);
    await this.client.waitAccepted(r.txID);
  }

  async ownPrekeys(): Promise<OwnPrekeys> {
    const chainID = await this.client.chainID();
    const raw = await this.client.rawPrekeyBundle(this.identity.sessionId);
    const out: OwnPrekeys = { signedPrekeyId: 0, signedExpiresAt: 0, chainSignedPrekeyId: raw.signedPrekey?.id ?? 0, unclaimed: raw.unclaimed };
    try {
      const b = verifyPrekeyBundle(chainID, this.identity.sessionId, raw, this.now());
      out.signedPrekeyId = b.signedPrekey.id;
      out.signedExpiresAt = b.signedPrekey.expiresAt;
    } catch (e) {
      if (!(e instanceof NoSignedPrekeyError) && !(e instanceof PrekeyExpiredError)) throw e;
    }
    return out;
  }

  async publishPrekeys(up: PrekeyUpload): Promise<void> {
    const s = up.signedPrekey;
    const r = await this.client.publishPrekeys(
      this.identity,
      s ? { id: s.id, expiresAt: s.expiresAt, kemPublicKey: s.publicKey } : null,
      up.oneTimePrekeys.map((k) => ({ id: k.id, kemPublicKey: k.publicKey })),
    );
    await this.client.waitAccepted(r.txID);
  }

  async prekeyBundle(sessionId: string): Promise<PrekeyBundle> {
    const b = await this.client.prekeyBundle(sessionId);
    const out: PrekeyBundle = { identity: b.identity, signedPrekey: { id: b.signedPrekey.id, expiresAt: b.signedPrekey.expiresAt, publicKey: b.signedPrekey.kemPublicKey } };
    if (b.oneTime) out.oneTimePrekey = { id: b.oneTime.id, publicKey: b.oneTime.kemPublicKey };
    return out;
  }

  async session(session: string): Promise<NodeSession> {
    const v = await this.client.verifiedSession(session);
    const participants = await this.client.recipients(this.identity, v.participants);
    return { id: v.id, participants, claims: sessionClaimsFromTx(v.createTx) };
  }

  async createSession(participants: string[], claims: Claim[], metadata: Uint8Array, prepare: (session: string) => Promise<void>): Promise<{ session: string; txID: string }> {
    let session = '';
    let r;
    try {
      r = await this.client.submit(this.identity, 'createSession', { participants, claims: createSessionClaims(participants, claims), metadata }, {
        prepare: async (t) => {
          session = sessionIdFor(t.chainID, t.author, t.nonce);
          await prepare(session);
        },
      });
      await this.client.waitAccepted(r.txID);
    } catch (e) {
      throw classify(e);
    }
    return { session, txID: r.txID };
  }

  async signSend(session: string, claims: Claim[], envelope: Uint8Array): Promise<SignedTxBytes> {
    const [chainID, nonce] = await Promise.all([this.client.chainID(), this.client.nonce(this.identity.sessionId)]);
    const t = signTx(this.identity, chainID, nonce, 'sendMessage', { session, claims: sendMessageClaims(claims), ciphertext: envelope });
    return { txID: t.id, nonce: t.nonce, bytes: t.bytes };
  }

  async txFromBytes(bytes: Uint8Array): Promise<SignedTxBytes> {
    const t = parseTx(bytes);
    if (t.author !== this.identity.sessionId || t.chainID !== (await this.client.chainID())) throw new InvalidTransactionError('a stored transaction of another identity or chain');
    return { txID: t.id, nonce: t.nonce, bytes: t.bytes };
  }

  async issue(t: SignedTxBytes): Promise<void> {
    try {
      await this.client.sendMessageTx(t.bytes);
    } catch (e) {
      if (e instanceof DuplicateTxError) return;
      if (e instanceof BadNonceError) {
        // Accepted meanwhile, or its nonce taken by another transaction (dead).
        try {
          await this.client.tx(t.txID);
          return;
        } catch (g) {
          if (!(g instanceof UnknownTxError)) throw g;
        }
        if ((await this.client.nonce(this.identity.sessionId)) > t.nonce) {
          throw new DeadTxError(`transaction ${t.txID}: its nonce ${t.nonce} was taken by another transaction`, true, false);
        }
      }
      throw classify(e);
    }
  }

  async waitAccepted(txID: string): Promise<number> {
    try {
      return (await this.client.waitAccepted(txID)).height;
    } catch (e) {
      throw classify(e);
    }
  }

  async txState(txID: string): Promise<TxState> {
    const s = await this.client.txStatus(txID);
    switch (s.status) {
      case 'accepted':
        return { status: 'accepted', height: s.height };
      case 'dropped':
        return { status: 'dropped', reason: s.reason ?? '' };
      default:
        return { status: s.status };
    }
  }

  nonce(): Promise<number> {
    return this.client.nonce(this.identity.sessionId);
  }

  private pageOf(r: { messages: { target: string; seq: number; position: number; txID: string; author: string; height: number; timestamp: number; ciphertext: Uint8Array }[]; next: number; more: boolean }): NodePage {
    return {
      messages: r.messages.map((m): NodeMessage => ({ session: m.target, seq: m.seq, position: m.position, txID: m.txID, author: m.author, height: m.height, timestamp: m.timestamp, ciphertext: m.ciphertext })),
      next: r.next,
      more: r.more,
    };
  }

  async messages(session: string, after: number, limit: number): Promise<NodePage> {
    return this.pageOf(await this.client.messages(session, after, limit));
  }

  async inbox(after: number, limit: number): Promise<NodePage> {
    return this.pageOf(await this.client.inbox(this.identity.sessionId, after, limit));
  }

  async verifyDelivery(session: NodeSession, m: NodeMessage): Promise<VerifiedDelivery> {
    const r = await this.client.tx(m.txID); // the bytes hash to the ID
    const t = r.tx;
    if (t.chainID !== (await this.client.chainID())) throw untrusted(`the transaction of message ${m.seq} is for chain ${t.chainID}`);
    if (t.type !== 'sendMessage') throw untrusted(`message ${m.seq} comes from a ${t.type} transaction`);
    const p = (t as SignedTx<'sendMessage'>).payload;
    if (p.session !== session.id) throw untrusted(`the transaction of message ${m.seq} is for session ${p.session}`);
    if (t.author !== m.author) throw untrusted(`message ${m.seq} is by ${t.author}, and the node says ${m.author}`);
    if (!equalBytes(p.ciphertext, m.ciphertext)) throw untrusted(`the ciphertext of message ${m.seq} is not its transaction's`);
    const author = session.participants.find((x) => x.sessionId === t.author);
    if (!author) throw untrusted(`message ${m.seq} is by ${t.author}, who is not a participant`);
    if (!verifyTx(t, author)) throw untrusted(`the transaction of message ${m.seq} is not signed by ${t.author}`);
    return { author: t.author, envelope: p.ciphertext, claims: deliveryClaimsFromTx(t as SignedTx<'sendMessage'>) };
  }
}
