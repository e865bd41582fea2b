// Client-side verification (Go: service/verify.go; docs/chain.md section
// 10): what a client uses comes from transactions its owners signed, never
// from the node's word. These functions take a reply and the keys the
// client trusts and return only what the signed transactions say; a node
// that lies is refused with UntrustedNodeError.

import { IdentityMismatchError, InvalidTransactionError, NoSignedPrekeyError, PrekeyExpiredError, UntrustedNodeError } from './errors.js';
import { PublicIdentity } from './identity.js';
import { sessionIdFor } from './ids.js';
import { type Claim, type OneTimePrekey, parseTx, type SignedPrekey, type SignedTx, type TxName, verifyTx } from './tx.js';

function untrusted(msg: string): UntrustedNodeError {
  return new UntrustedNodeError(`the node's reply does not match the signed transactions: ${msg}`);
}

/**
 * Parses a transaction the node returned and checks that it is for
 * chainID, of type want, authored by author and signed by author's key.
 */
export function verifySigned<N extends TxName>(raw: Uint8Array | undefined, chainID: string, want: N, author: PublicIdentity): SignedTx<N> {
  if (!raw || raw.length === 0) throw untrusted(`no ${want} transaction in the reply`);
  let t: SignedTx;
  try {
    t = parseTx(raw);
  } catch (e) {
    if (e instanceof InvalidTransactionError) throw untrusted(`the ${want} transaction does not parse: ${e.message}`);
    throw e;
  }
  if (t.chainID !== chainID) throw untrusted(`the ${want} transaction is for chain ${t.chainID}, not ${chainID}`);
  if (t.type !== want) throw untrusted(`a ${t.type} transaction where ${want} was expected`);
  if (t.author !== author.sessionId) throw untrusted(`the ${want} transaction is by ${t.author}, not ${author.sessionId}`);
  if (!verifyTx(t, author)) throw untrusted(`the ${want} transaction's signature does not verify under ${author.sessionId}'s key`);
  return t as SignedTx<N>;
}

/** What getPrekeyBundle returns (docs/api.md), before verification. */
export interface PrekeyBundleReply {
  sessionId: string;
  kemPublicKey: Uint8Array;
  dsaPublicKey: Uint8Array;
  /** Absent until the identity publishes one. */
  signedPrekey?: { id: number; expiresAt: number; tx: Uint8Array };
  /** Absent when none is left. */
  oneTimePrekey?: { id: number; tx: Uint8Array };
  /** How many one-time prekeys are left (the node's word). */
  unclaimed: number;
}

/** The claim entry for a handshake to a verified bundle's identity: its signed prekey and its one-time prekey, or 0 (Go: PrekeyBundle.ClaimOf). */
export function claimOf(b: PrekeyBundle): Claim {
  return { participant: b.identity.sessionId, signedPrekeyId: b.signedPrekey.id, oneTimePrekeyId: b.oneTime?.id ?? 0 };
}

/** A verified prekey bundle: every key from a PublishPrekeys transaction the identity signed. */
export interface PrekeyBundle {
  identity: PublicIdentity;
  signedPrekey: SignedPrekey;
  /** Absent: none left (or withheld); start with the signed prekey only. */
  oneTime?: OneTimePrekey;
}

/**
 * Checks a getPrekeyBundle reply for sessionId on chainID at time nowMs
 * (Go: service.VerifyPrekeyBundle): the keys derive the Session ID; each
 * PublishPrekeys transaction is for the chain, by the identity, signed by
 * its key, and holds the named prekey; the signed prekey has not expired.
 * Returns the keys from the transactions. Throws IdentityMismatchError,
 * UntrustedNodeError, NoSignedPrekeyError or PrekeyExpiredError.
 *
 * What it cannot see: whether the signed prekey is the current one and
 * whether a one-time prekey was withheld. The chain can: a claim naming
 * a superseded (beyond the previous) or expired signed prekey, or no
 * one-time prekey when one was claimable, is refused by consensus
 * (docs/chain.md section 7), so a node that lies gets its client's
 * transaction refused instead of weakening it.
 */
export function verifyPrekeyBundle(chainID: string, sessionId: string, r: PrekeyBundleReply, nowMs: number): PrekeyBundle {
  let id: PublicIdentity;
  try {
    id = new PublicIdentity(r.kemPublicKey, r.dsaPublicKey);
  } catch (e) {
    throw untrusted(`identity keys: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (id.sessionId !== sessionId) throw new IdentityMismatchError(`asked ${sessionId}, keys derive ${id.sessionId}`);
  if (!r.signedPrekey) throw new NoSignedPrekeyError(`${sessionId} has not published a signed prekey`);
  const t = verifySigned(r.signedPrekey.tx, chainID, 'publishPrekeys', id);
  const s = t.payload.signed;
  if (!s || s.id !== r.signedPrekey.id) throw untrusted(`the transaction does not hold signed prekey ${r.signedPrekey.id}`);
  if (s.expiresAt !== r.signedPrekey.expiresAt) throw untrusted(`signed prekey ${s.id} expires at ${s.expiresAt}, not ${r.signedPrekey.expiresAt}`);
  if (s.expiresAt <= nowMs) {
    throw new PrekeyExpiredError(`prekey ${s.id} of ${sessionId} expired at ${new Date(s.expiresAt).toISOString()}`);
  }
  const b: PrekeyBundle = { identity: id, signedPrekey: { id: s.id, expiresAt: s.expiresAt, kemPublicKey: s.kemPublicKey.slice() } };
  if (r.oneTimePrekey) {
    const o = r.oneTimePrekey;
    const ot = verifySigned(o.tx, chainID, 'publishPrekeys', id);
    const k = (ot.payload.oneTime ?? []).find((x) => x.id === o.id);
    if (!k) throw untrusted(`the transaction does not hold one-time prekey ${o.id}`);
    b.oneTime = { id: k.id, kemPublicKey: k.kemPublicKey.slice() };
  }
  return b;
}

/** The parts of a getSession reply that verifySessionReply compares with the signed transaction. */
export interface SessionReplyToVerify {
  session: string;
  creator: string;
  participants: string[];
  createTx?: Uint8Array;
}

/** A session as its creator signed it. */
export interface VerifiedSession<R extends SessionReplyToVerify = SessionReplyToVerify> {
  id: string;
  creator: string;
  /** The creator, then the listed participants, in order: from the signed transaction. */
  participants: string[];
  /** The creator's claims: one per handshake it starts (participant, signed prekey, one-time prekey or 0). */
  claims: Claim[];
  metadata: Uint8Array;
  createTx: SignedTx<'createSession'>;
  /** The node's reply; its other fields (status, states, counts) are the node's word. */
  reply: R;
}

/**
 * Checks a getSession reply against its createTx (Go:
 * service.VerifySessionReply): for chainID, a CreateSession signed by
 * creator (an identity the caller verified, e.g. with
 * Client.publicIdentity) whose ID derives the session; the reply's creator
 * and participants are the transaction's. Returns the participants from
 * the transaction, so a node cannot add, drop or reorder anyone.
 */
export function verifySessionReply<R extends SessionReplyToVerify>(chainID: string, r: R, creator: PublicIdentity): VerifiedSession<R> {
  const t = verifySigned(r.createTx, chainID, 'createSession', creator);
  const sid = sessionIdFor(chainID, t.author, t.nonce);
  if (sid !== r.session) throw untrusted(`the CreateSession transaction creates ${sid}, not ${r.session}`);
  const participants = [t.author, ...t.payload.participants];
  if (r.creator !== t.author) throw untrusted(`the reply names creator ${r.creator}, the transaction ${t.author}`);
  if (r.participants.length !== participants.length || r.participants.some((p, i) => p !== participants[i])) {
    throw untrusted(`the reply lists participants ${r.participants.join(',')}, the signed transaction ${participants.join(',')}`);
  }
  return {
    id: r.session,
    creator: t.author,
    participants,
    claims: t.payload.claims ?? [],
    metadata: t.payload.metadata ?? new Uint8Array(0),
    createTx: t,
    reply: r,
  };
}

/** The author of a reply's createTx, read without trusting it (verifySessionReply checks it against the author's key). */
export function createTxAuthor(r: SessionReplyToVerify): string {
  if (!r.createTx || r.createTx.length === 0) throw untrusted('getSession returned no createTx');
  try {
    return parseTx(r.createTx).author;
  } catch (e) {
    if (e instanceof InvalidTransactionError) throw untrusted(`the CreateSession transaction does not parse: ${e.message}`);
    throw e;
  }
}
