// The registration proof of work (docs/chain.md section 3; Go: vm/tx/work.go).
//
//   seed = BLAKE2b-256("luxfi/session/v1/register/seed" | chainID [32] | author [33]
//                      | anchorHeight u64 | anchorID [32])
//   pre  = BLAKE2b-256(seed [32] | work u64)        (40 bytes: one compression)
//   out  = Argon2id(password = pre, salt = chainID, time = iterations,
//                   memory = memoryKiB, threads = 1, length = 32)
//
// The anchor is a recent accepted block (session.status: height and
// lastAcceptedID); the chain accepts the registration only while its block
// is at most registration.anchorWindow blocks above the anchor, so work
// cannot be stockpiled. A work value is valid when pre has at least
// prefilterBits leading zero bits and out at least workBits. A solver
// tries work values until both hold: on average 2^(prefilterBits +
// workBits) BLAKE2b evaluations and 2^workBits Argon2id evaluations
// (noble's pure-JavaScript Argon2id, so several times slower than Go; the
// web app runs it in workers). The leading zero bits of pre beyond
// prefilterBits are the registration's excess: its priority when
// registrations compete for a node's pool and a block's slots.

import { blake2b } from '@noble/hashes/blake2.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { blake2b256OneBlock } from './blake2b1.js';
import { randomBytes, utf8 } from './bytes.js';
import { SessionError } from './errors.js';
import { sessionIdToBytes } from './identity.js';
import { idFromString } from './ids.js';

export const WORK_SEED_LABEL = 'luxfi/session/v1/register/seed';

/** The chain's registration work parameters (getConfig's `registration`). */
export interface RegistrationParams {
  memoryKiB: number;
  iterations: number;
  prefilterBits: number;
  workBits: number;
  /** Registrations per block (the chain's bound; not used by the work). */
  maxPerBlock?: number;
  /** How many blocks old the anchor may be (the chain's bound; not used by the work). */
  anchorWindow?: number;
}

/** The defaults of a chain that does not set them. */
export const DEFAULT_REGISTRATION: Readonly<Required<RegistrationParams>> = Object.freeze({
  memoryKiB: 8192,
  iterations: 1,
  prefilterBits: 18,
  workBits: 4,
  maxPerBlock: 16,
  anchorWindow: 4096,
});

/** The most excess bits counted (Go: tx.MaxExcess). */
export const MAX_EXCESS = 32;

/**
 * The bounds a chain config may set (Go: config.Registration validation).
 * A node is not trusted: parameters outside these are refused before any
 * work, so a node cannot make a client allocate gigabytes.
 */
export const REGISTRATION_LIMITS = Object.freeze({ minMemoryKiB: 8, maxMemoryKiB: 256 << 10, maxIterations: 16, maxBits: 32 });

/** Parameters outside REGISTRATION_LIMITS. */
export class InvalidWorkParamsError extends SessionError {}

/** Throws InvalidWorkParamsError unless p is within REGISTRATION_LIMITS. */
export function checkRegistrationParams(p: RegistrationParams): void {
  const L = REGISTRATION_LIMITS;
  const int = (v: unknown, lo: number, hi: number) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  if (!int(p?.memoryKiB, L.minMemoryKiB, L.maxMemoryKiB)) throw new InvalidWorkParamsError(`registration memoryKiB must be ${L.minMemoryKiB} to ${L.maxMemoryKiB}`);
  if (!int(p.iterations, 1, L.maxIterations)) throw new InvalidWorkParamsError(`registration iterations must be 1 to ${L.maxIterations}`);
  if (!int(p.prefilterBits, 0, L.maxBits) || !int(p.workBits, 0, L.maxBits)) {
    throw new InvalidWorkParamsError(`registration prefilterBits and workBits must be 0 to ${L.maxBits}`);
  }
}

const SEED_LABEL = utf8(WORK_SEED_LABEL);

const U64_MASK = (1n << 64n) - 1n;

function toU64(v: bigint | number, what = 'work'): bigint {
  const w = BigInt(v);
  if (w < 0n || w > U64_MASK) throw new RangeError(`${what} out of range: ${v}`);
  return w;
}

/**
 * The work seed of author's registration on chainID anchored to the block
 * anchorID at anchorHeight (Go: tx.WorkSeed).
 */
export function workSeed(chainID: string, author: string, anchorHeight: bigint | number, anchorID: string): Uint8Array {
  const b = new Uint8Array(SEED_LABEL.length + 32 + 33 + 8 + 32);
  let at = 0;
  for (const part of [SEED_LABEL, idFromString(chainID), sessionIdToBytes(author)]) {
    b.set(part, at);
    at += part.length;
  }
  new DataView(b.buffer).setBigUint64(at, toU64(anchorHeight, 'anchor height'));
  b.set(idFromString(anchorID), at + 8);
  return blake2b(b, { dkLen: 32 });
}

/** The pre-filter input with work 0 (its last 8 bytes). */
function workInput(seed: Uint8Array): Uint8Array {
  if (seed.length !== 32) throw new RangeError('a work seed is 32 bytes');
  const b = new Uint8Array(40);
  b.set(seed, 0);
  return b;
}

/** The number of leading zero bits of b. */
export function leadingZeroBits(b: Uint8Array): number {
  let n = 0;
  for (const x of b) {
    if (x !== 0) return n + Math.clz32(x) - 24;
    n += 8;
  }
  return n;
}

/** The pre-filter hash of a work value for a seed (the Argon2id password), and whether it passes. */
export function workPrefilter(seed: Uint8Array, work: bigint | number, p: RegistrationParams): { pre: Uint8Array; ok: boolean } {
  const input = workInput(seed);
  new DataView(input.buffer).setBigUint64(32, toU64(work));
  const pre = blake2b256OneBlock(input);
  return { pre, ok: leadingZeroBits(pre) >= p.prefilterBits };
}

/** The excess of a pre-filter hash: its leading zero bits beyond prefilterBits (0 if it fails), at most MAX_EXCESS (Go: tx.Excess). */
export function workExcess(pre: Uint8Array, p: RegistrationParams): number {
  return Math.min(Math.max(leadingZeroBits(pre) - p.prefilterBits, 0), MAX_EXCESS);
}

/** The Argon2id output for a pre-filter hash. */
export function workArgon2(chainID: string | Uint8Array, pre: Uint8Array, p: RegistrationParams): Uint8Array {
  const salt = typeof chainID === 'string' ? idFromString(chainID) : chainID;
  return argon2id(pre, salt, { t: p.iterations, m: p.memoryKiB, p: 1, dkLen: 32, maxmem: (p.memoryKiB + 64) * 1024 });
}

/**
 * Whether `work` is a valid registration proof of work for a seed
 * (workSeed: chain, author, anchor) on `chainID` at parameters `p` (Go:
 * tx.CheckWork): the pre-filter, then one Argon2id evaluation.
 */
export function checkWork(chainID: string, seed: Uint8Array, work: bigint | number, p: RegistrationParams): boolean {
  checkRegistrationParams(p);
  const { pre, ok } = workPrefilter(seed, work, p);
  return ok && leadingZeroBits(workArgon2(chainID, pre, p)) >= p.workBits;
}

/** Evaluations a solve took so far. */
export interface WorkStats {
  /** BLAKE2b pre-filter evaluations. */
  prefilter: number;
  /** Argon2id evaluations. */
  argon2: number;
}

export interface SolveOptions {
  /** The first work value tried (default 0; pass a random one so two solvers do not repeat each other). */
  start?: bigint;
  /** Tries start, start + stride, start + 2·stride, … (mod 2^64); a pool of k solvers uses offsets 0..k-1 and stride k. Default 1. */
  stride?: number;
  /** Added to start (a pool member's offset). Default 0. */
  offset?: number;
  /** Bits of pre-filter work beyond prefilterBits (the excess; default 0): priority when registrations compete. */
  extra?: number;
  /** Stops the solve (it then throws WorkAbortedError). Checked between evaluations. */
  signal?: AbortSignal;
  /** Called about every progressMs with the evaluations so far. */
  onProgress?: (stats: WorkStats) => void;
  /** Interval of onProgress and of yields to the event loop, in ms (default 100). */
  progressMs?: number;
}

/** The solve was aborted by its signal. */
export class WorkAbortedError extends SessionError {}

/** The expected evaluations of a solve at p: 2^workBits Argon2id, 2^(prefilterBits + workBits) BLAKE2b. */
export function expectedWork(p: RegistrationParams): WorkStats {
  return { argon2: 2 ** p.workBits, prefilter: 2 ** (p.prefilterBits + p.workBits) };
}

/**
 * Finds a valid work value for a registration's seed (workSeed) on
 * chainID (Go: tx.SolveWork with one worker), with opts.extra more
 * pre-filter bits than the chain needs (its excess: priority under load). It runs on the calling thread, yielding
 * to the event loop about every progressMs; run it in a worker (or a pool
 * of workers with stride and offset) to keep a page responsive. Returns
 * the work and the evaluations it took.
 */
export async function solveWork(chainID: string, seed: Uint8Array, p: RegistrationParams, opts: SolveOptions = {}): Promise<{ work: bigint; stats: WorkStats }> {
  checkRegistrationParams(p);
  const stride = BigInt(opts.stride ?? 1);
  if (stride < 1n) throw new RangeError('stride must be at least 1');
  const need = p.prefilterBits + Math.max(opts.extra ?? 0, 0);
  const salt = idFromString(chainID);
  const input = workInput(seed);
  const view = new DataView(input.buffer);
  const pre = new Uint8Array(32);
  const stats: WorkStats = { prefilter: 0, argon2: 0 };
  const every = opts.progressMs ?? 100;
  let work = (toU64(opts.start ?? 0n) + BigInt(opts.offset ?? 0)) & U64_MASK;
  let last = Date.now();
  for (;;) {
    // A batch of evaluations between clock reads: 256 pre-filters cost well under a millisecond.
    for (let i = 0; i < 256; i++) {
      const tried = work;
      work = (work + stride) & U64_MASK;
      view.setBigUint64(32, tried);
      blake2b256OneBlock(input, pre);
      stats.prefilter++;
      if (leadingZeroBits(pre) >= need) {
        stats.argon2++;
        if (leadingZeroBits(workArgon2(salt, pre, p)) >= p.workBits) {
          opts.onProgress?.({ ...stats });
          return { work: tried, stats };
        }
        break; // an Argon2id evaluation takes milliseconds: look at the clock
      }
    }
    if (Date.now() - last >= every) {
      opts.onProgress?.({ ...stats });
      await new Promise((r) => setTimeout(r, 0));
      last = Date.now();
    }
    if (opts.signal?.aborted) throw new WorkAbortedError('registration proof of work aborted');
  }
}

/** Solves a registration's work: solveWork on this thread, or a worker pool (the web app's). */
export type WorkSolver = (
  chainID: string,
  seed: Uint8Array,
  p: RegistrationParams,
  opts: { extra?: number; signal?: AbortSignal; onProgress?: (stats: WorkStats) => void },
) => Promise<bigint>;

/** The default WorkSolver: solveWork on the calling thread from a random start. */
export const solveOnThisThread: WorkSolver = async (chainID, seed, p, opts) => {
  const start = new DataView(randomBytes(8).buffer).getBigUint64(0);
  return (await solveWork(chainID, seed, p, { ...opts, start })).work;
};
