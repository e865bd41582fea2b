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
import { parseTx, verifyTx, type Claim as TxClaim, type SignedTx } from '../tx.js';
import { verifyPrekeyBundle } from '../verify.js';
import { type ClaimLogPage, DeadTxError, type MessengerNode, type NodeMessage, type NodePage, type NodeSession, type OwnPrekeys, type SignedTxBytes, type TxState, type VerifiedDelivery } from './node.js';

function untrusted(msg: string): UntrustedNodeError {
  return new UntrustedNodeError(`the node's reply does not match the signed transactions: ${msg}`);
}

// --- the chain's claim entries --------------------------------------------------
// The chain's claim entry (participant | signedPrekeyID | oneTimePrekeyID)
// is the protocol's claim: the same three fields, passed through.

function txClaims(claims: readonly Claim[]): TxClaim[] {
  return claims.map((c) => ({ participant: c.participant, signedPrekeyId: c.signedPrekeyId, oneTimePrekeyId: c.oneTimePrekeyId }));
}

function chatClaims(claims: readonly TxClaim[] | undefined): Claim[] {
  return (claims ?? []).map((c) => ({ participant: c.participant, signedPrekeyId: c.signedPrekeyId, oneTimePrekeyId: c.oneTimePrekeyId }));
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
    const out: OwnPrekeys = { signedPrekeyId: 0, signedExpiresAt: 0, chainSignedPrekeyId: raw.signedPrekey?.id ?? 0, unclaimed: raw.unclaimed, chainOneTimePrekeyId: 0 };
    try {
      const b = verifyPrekeyBundle(chainID, this.identity.sessionId, raw, this.now());
      out.signedPrekeyId = b.signedPrekey.id;
      out.signedExpiresAt = b.signedPrekey.expiresAt;
      if (raw.oneTimePrekey) {
        // Verified with the bundle: the identity's own PublishPrekeys, whose batch bounds the highest ID from below.
        for (const k of (parseTx(raw.oneTimePrekey.tx) as SignedTx<'publishPrekeys'>).payload.oneTime ?? []) out.chainOneTimePrekeyId = Math.max(out.chainOneTimePrekeyId, k.id);
      }
    } catch (e) {
      if (!(e instanceof NoSignedPrekeyError) && !(e instanceof PrekeyExpiredError)) throw e;
    }
    return out;
  }

  async publishPrekeys(up: PrekeyUpload, retireThrough = 0): Promise<void> {
    const s = up.signedPrekey;
    const r = await this.client.publishPrekeys(
      this.identity,
      s ? { id: s.id, expiresAt: s.expiresAt, kemPublicKey: s.publicKey } : null,
      up.oneTimePrekeys.map((k) => ({ id: k.id, kemPublicKey: k.publicKey })),
      retireThrough,
    );
    await this.client.waitAccepted(r.txID);
  }

  async prekeyBundle(sessionId: string, session?: string): Promise<PrekeyBundle> {
    // A one-time prekey the chain lets this identity claim (in a new session, or in session).
    const b = await this.client.prekeyBundle(sessionId, session ? { claimer: this.identity.sessionId, session } : { claimer: this.identity.sessionId });
    const out: PrekeyBundle = { identity: b.identity, signedPrekey: { id: b.signedPrekey.id, expiresAt: b.signedPrekey.expiresAt, publicKey: b.signedPrekey.kemPublicKey } };
    if (b.oneTime) out.oneTimePrekey = { id: b.oneTime.id, publicKey: b.oneTime.kemPublicKey };
    return out;
  }

  async session(session: string): Promise<NodeSession> {
    const v = await this.client.verifiedSession(session);
    const participants = await this.client.recipients(this.identity, v.participants);
    return { id: v.id, participants, claims: chatClaims(v.claims) };
  }

  async createSession(participants: string[], claims: Claim[], metadata: Uint8Array, prepare: (session: string) => Promise<void>): Promise<{ session: string; txID: string }> {
    let session = '';
    let r;
    try {
      r = await this.client.submit(this.identity, 'createSession', { participants, claims: txClaims(claims), metadata }, {
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

  async submitSend(session: string, claims: Claim[], envelope: Uint8Array, keep: (bytes: Uint8Array) => Promise<void>): Promise<SignedTxBytes> {
    // Through Client.submit: one nonce sequence with the identity's other transactions on this client.
    try {
      const r = await this.client.submit(this.identity, 'sendMessage', { session, claims: txClaims(claims), ciphertext: envelope }, { prepare: (t) => keep(t.bytes) });
      return { txID: r.txID, nonce: r.nonce, bytes: r.tx.bytes };
    } catch (e) {
      throw classify(e);
    }
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

  async claimLog(after: number, limit: number): Promise<ClaimLogPage> {
    const me = this.identity.sessionId;
    const chainID = await this.client.chainID();
    const page = await this.client.claims(me, after, limit);
    const out: ClaimLogPage = { claims: [], next: page.next, more: page.more };
    const ends = new Map<string, number>();
    for (const e of page.claims) {
      if (e.oneTimePrekeyId === 0) continue;
      // The entry against its signed transaction: by the claimer, for this chain and session, naming this prekey of this identity.
      const t = (await this.client.tx(e.txID)).tx;
      const claimer = await this.client.publicIdentity(e.claimer);
      let claims: TxClaim[] = [];
      let session = '';
      if (t.type === 'sendMessage') {
        const p = (t as SignedTx<'sendMessage'>).payload;
        claims = p.claims ?? [];
        session = p.session;
      } else if (t.type === 'createSession') {
        claims = (t as SignedTx<'createSession'>).payload.claims ?? [];
        session = sessionIdFor(chainID, t.author, t.nonce);
      }
      const named = claims.some((c) => c.participant === me && c.signedPrekeyId === e.signedPrekeyId && c.oneTimePrekeyId === e.oneTimePrekeyId);
      if (t.chainID !== chainID || t.author !== e.claimer || session !== e.session || !named || !verifyTx(t, claimer)) {
        throw untrusted(`claim ${e.position} does not match its signed transaction ${e.txID}`);
      }
      // When the session stops taking messages: the node's word (a lie makes a secret go early or late, never opens anything).
      let end = ends.get(session);
      if (end === undefined) {
        const r = await this.client.session(session);
        end = r.closedAt ?? r.expiresAt;
        ends.set(session, end);
      }
      out.claims.push({ prekeyId: e.oneTimePrekeyId, sessionEnd: end });
    }
    return out;
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
    return { author: t.author, envelope: p.ciphertext, claims: chatClaims(p.claims) };
  }
}
