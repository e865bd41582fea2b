// Every error the SDK throws is a SessionError. Subclasses name the cause,
// so callers test with instanceof (or the `code` of an RpcError). Messages
// never contain key material.

import { displayText } from './text.js';

/** Base class of every error thrown by the SDK. */
export class SessionError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

// Keys, identities and envelopes (the sentinels of Go's package crypto).
export class InvalidSessionIDError extends SessionError {}
export class InvalidPublicKeyError extends SessionError {}
export class InvalidSecretKeyError extends SessionError {}
export class InvalidSignatureError extends SessionError {}
export class InvalidCiphertextError extends SessionError {}
/** The envelope is malformed or of an unsupported version. */
export class InvalidEnvelopeError extends SessionError {}
/** No stanza of the envelope opens with this identity's key. */
export class NotRecipientError extends SessionError {}
/** The body, or the associated data it was sealed with, was changed. */
export class DecryptionFailedError extends SessionError {}

// Identity files.
export class EmptyPassphraseError extends SessionError {}
/** The passphrase is wrong, or a field of the file was changed. */
export class WrongPassphraseError extends SessionError {}
/** Not an identity file, or one with out-of-range parameters. */
export class InvalidIdentityFileError extends SessionError {}

/** A transaction that does not parse or breaks a stateless rule. */
export class InvalidTransactionError extends SessionError {}

// What the node said that does not check out. The SDK never uses such data.
/** The node returned keys that do not derive the Session ID asked for. */
export class IdentityMismatchError extends SessionError {}
/** A message's envelope was signed by someone other than its author. */
export class SenderMismatchError extends SessionError {}
/** A reply contradicts the request or itself (wrong target, IDs, counts). */
export class ResponseMismatchError extends SessionError {}
/**
 * A reply does not match the signed transactions it comes with (Go:
 * service.ErrUntrustedNode): a participant list other than the creator
 * signed, a prekey its owner did not publish, a transaction of another
 * chain or author. Nothing from it is used.
 */
export class UntrustedNodeError extends ResponseMismatchError {}
/** The identity has not published a signed prekey (it cannot be sent to with the ratchet protocol yet). */
export class NoSignedPrekeyError extends SessionError {}
/** The identity's signed prekey has expired (by this client's clock). */
export class PrekeyExpiredError extends SessionError {}
/** The identity is not a member of the channel it posts to (never joined, left, removed or banned): checked before anything is sent. */
export class NotMemberError extends SessionError {}

/** The node could not be reached, timed out, or did not answer JSON-RPC 2.0. */
export class TransportError extends SessionError {}

/** waitAccepted: the node dropped the transaction (reason given). */
export class TxDroppedError extends SessionError {
  constructor(readonly txID: string, readonly reason: string) {
    super(`transaction ${txID} dropped: ${reason}`);
  }
}
/** waitAccepted: the node keeps not knowing the transaction. */
export class TxUnknownError extends SessionError {
  constructor(readonly txID: string) {
    super(`transaction ${txID} unknown to the node`);
  }
}
/** waitAccepted: not accepted within the wait timeout. */
export class WaitTimeoutError extends SessionError {}

/** The JSON-RPC error codes of SessionVM (docs/api.md, "Error codes"). */
export const ErrorCode = {
  ParseError: -32700,
  InvalidRequest: -32600,
  MethodNotFound: -32601,
  InvalidParams: -32602,
  Internal: -32603,
  UnknownIdentity: -32001,
  UnknownSession: -32002,
  UnknownChannel: -32003,
  NotParticipant: -32004,
  TooLarge: -32005,
  MempoolFull: -32006,
  BadSignature: -32007,
  BadNonce: -32008,
  DuplicateTx: -32009,
  SessionClosed: -32010,
  LimitReached: -32011,
  AlreadyExists: -32012,
  InvalidTx: -32013,
  Unavailable: -32014,
  Busy: -32015,
  RateLimited: -32016,
  Forbidden: -32017,
  PrekeyUnavailable: -32018,
  UnknownTx: -32019,
  DiskFull: -32020,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error object the node returned. `code` is stable; `rpcMessage` is for people. */
export class RpcError extends SessionError {
  constructor(
    readonly code: number,
    readonly rpcMessage: string,
    readonly method: string,
  ) {
    super(`${method}: rpc error ${code}: ${rpcMessage}`);
  }
}

export class ParseError extends RpcError {}
export class InvalidRequestError extends RpcError {}
export class MethodNotFoundError extends RpcError {}
export class InvalidParamsError extends RpcError {}
export class InternalError extends RpcError {}
export class UnknownIdentityError extends RpcError {}
export class UnknownSessionError extends RpcError {}
export class UnknownChannelError extends RpcError {}
export class NotParticipantError extends RpcError {}
export class TooLargeError extends RpcError {}
export class MempoolFullError extends RpcError {}
export class BadSignatureError extends RpcError {}
export class BadNonceError extends RpcError {}
export class DuplicateTxError extends RpcError {}
export class SessionClosedError extends RpcError {}
export class LimitReachedError extends RpcError {}
export class AlreadyExistsError extends RpcError {}
export class InvalidTxError extends RpcError {}
export class UnavailableError extends RpcError {}
/** The node's bounds on bytes in flight or calls executing are reached: the call did not run; Client retries it (busyRetries). */
export class BusyError extends RpcError {}
/** The author's rate-limit bucket for this kind of transaction is empty; the message says when tokens are back. */
export class RateLimitedError extends RpcError {}
/** Blocked by a participant, banned from or not invited to a channel, not its owner or a moderator, not the post's author. */
export class ForbiddenError extends RpcError {}
/** The claimed one-time prekey is claimed, unknown or reserved: fetch a new prekey bundle, or claim none. */
export class PrekeyUnavailableError extends RpcError {}
/** getTx of a transaction that is not accepted. */
export class UnknownTxError extends RpcError {}
/** The node's disk is too full to take transactions: retry later. */
export class DiskFullError extends RpcError {}

type RpcErrorClass = new (code: number, message: string, method: string) => RpcError;

const byCode = new Map<number, RpcErrorClass>([
  [ErrorCode.ParseError, ParseError],
  [ErrorCode.InvalidRequest, InvalidRequestError],
  [ErrorCode.MethodNotFound, MethodNotFoundError],
  [ErrorCode.InvalidParams, InvalidParamsError],
  [ErrorCode.Internal, InternalError],
  [ErrorCode.UnknownIdentity, UnknownIdentityError],
  [ErrorCode.UnknownSession, UnknownSessionError],
  [ErrorCode.UnknownChannel, UnknownChannelError],
  [ErrorCode.NotParticipant, NotParticipantError],
  [ErrorCode.TooLarge, TooLargeError],
  [ErrorCode.MempoolFull, MempoolFullError],
  [ErrorCode.BadSignature, BadSignatureError],
  [ErrorCode.BadNonce, BadNonceError],
  [ErrorCode.DuplicateTx, DuplicateTxError],
  [ErrorCode.SessionClosed, SessionClosedError],
  [ErrorCode.LimitReached, LimitReachedError],
  [ErrorCode.AlreadyExists, AlreadyExistsError],
  [ErrorCode.InvalidTx, InvalidTxError],
  [ErrorCode.Unavailable, UnavailableError],
  [ErrorCode.Busy, BusyError],
  [ErrorCode.RateLimited, RateLimitedError],
  [ErrorCode.Forbidden, ForbiddenError],
  [ErrorCode.PrekeyUnavailable, PrekeyUnavailableError],
  [ErrorCode.UnknownTx, UnknownTxError],
  [ErrorCode.DiskFull, DiskFullError],
]);

/** The RpcError subclass for a code (RpcError itself for codes this SDK does not know). */
export function rpcError(code: number, message: string, method: string): RpcError {
  const C = byCode.get(code) ?? RpcError;
  // The message is the node's: bounded and without controls or bidirectional overrides before anything shows it.
  return new C(code, displayText(message), method);
}

/** The node said the identity, session, channel or transaction does not exist. */
export function isNotFound(err: unknown): boolean {
  return err instanceof UnknownIdentityError || err instanceof UnknownSessionError || err instanceof UnknownChannelError || err instanceof UnknownTxError;
}

/** The node's errors after which the same request may succeed later (Go: service.IsRetryable). */
export function isRetryableRpc(err: unknown): boolean {
  return (
    err instanceof MempoolFullError ||
    err instanceof UnavailableError ||
    err instanceof BusyError ||
    err instanceof DiskFullError ||
    err instanceof RateLimitedError
  );
}

/**
 * The same request may succeed later: a full mempool, an unavailable or
 * busy node, a node whose disk is too full, an empty rate-limit bucket
 * (as Go's service.IsRetryable), or a transport failure.
 */
export function isRetryable(err: unknown): boolean {
  return isRetryableRpc(err) || err instanceof TransportError;
}

/** The chain refused a transaction (codes -32001 to -32013 but mempool full and duplicate; rate limited, forbidden, prekey unavailable). */
export function isRefused(err: unknown): boolean {
  if (!(err instanceof RpcError)) return false;
  const c = err.code;
  if (c === ErrorCode.RateLimited || c === ErrorCode.Forbidden || c === ErrorCode.PrekeyUnavailable) return true;
  return c <= ErrorCode.UnknownIdentity && c >= ErrorCode.InvalidTx && c !== ErrorCode.MempoolFull && c !== ErrorCode.DuplicateTx;
}
