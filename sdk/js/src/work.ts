// The registration proof of work (docs/chain.md section 3; Go: vm/tx/work.go).
// With seed = chainID [32] | author [33]:
//
//   pre = BLAKE2b-256("luxfi/session/v1/register/prefilter" | seed | work u64)
//   out = Argon2id(password = pre, salt = chainID, time = iterations,
//                  memory = memoryKiB, threads = 1, length = 32)
//
// A work value is valid when pre has at least prefilterBits leading zero
// bits and out at least workBits. A solver tries work values until both
// hold: on average 2^(prefilterBits + workBits) BLAKE2b evaluations and
// 2^workBits Argon2id evaluations (noble's pure-JavaScript Argon2id, so
// several times slower than Go; the web app runs it in workers).

import { argon2id } from '@noble/hashes/argon2.js';
import { blake2b256OneBlock } from './blake2b1.js';
import { randomBytes, utf8 } from './bytes.js';
import { SessionError } from './errors.js';
import { sessionIdToBytes } from './identity.js';
import { idFromString } from './ids.js';

export const WORK_PREFILTER_LABEL = 'luxfi/session/v1/register/prefilter';

/** The chain's registration work parameters (getConfig's `registration`). */
export interface RegistrationParams {
  memoryKiB: number;
  iterations: number;
  prefilterBits: number;
  workBits: number;
  /** Registrations per block (the chain's bound; not used by the work). */
  maxPerBlock?: number;
}

/** The defaults of a chain that does not set them. */
export const DEFAULT_REGISTRATION: Readonly<Required<RegistrationParams>> = Object.freeze({
  memoryKiB: 8192,
  iterations: 1,
  prefilterBits: 15,
  workBits: 6,
  maxPerBlock: 16,
});

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

const LABEL = utf8(WORK_PREFILTER_LABEL);
/** Size of the pre-filter's input: label, chain ID, author, work. */
export const WORK_INPUT_SIZE = LABEL.length + 32 + 33 + 8;

/** The pre-filter input with work 0 (its last 8 bytes). */
function workInput(chainID: Uint8Array, author: Uint8Array): Uint8Array {
  const b = new Uint8Array(WORK_INPUT_SIZE);
  b.set(LABEL, 0);
  b.set(chainID, LABEL.length);
  b.set(author, LABEL.length + 32);
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

const U64_MASK = (1n << 64n) - 1n;

function toU64(work: bigint | number): bigint {
  const w = BigInt(work);
  if (w < 0n || w > U64_MASK) throw new RangeError(`work out of range: ${work}`);
  return w;
}

/** The pre-filter hash of a work value (the Argon2id password), and whether it passes. */
export function workPrefilter(chainID: string, author: string, work: bigint | number, p: RegistrationParams): { pre: Uint8Array; ok: boolean } {
  const input = workInput(idFromString(chainID), sessionIdToBytes(author));
  new DataView(input.buffer).setBigUint64(WORK_INPUT_SIZE - 8, toU64(work));
  const pre = blake2b256OneBlock(input);
  return { pre, ok: leadingZeroBits(pre) >= p.prefilterBits };
}

/** The Argon2id output for a pre-filter hash. */
export function workArgon2(chainID: string | Uint8Array, pre: Uint8Array, p: RegistrationParams): Uint8Array {
  const salt = typeof chainID === 'string' ? idFromString(chainID) : chainID;
  return argon2id(pre, salt, { t: p.iterations, m: p.memoryKiB, p: 1, dkLen: 32, maxmem: (p.memoryKiB + 64) * 1024 });
}

/**
 * Whether `work` is a valid registration proof of work for `author` (a
 * Session ID) on `chainID` at parameters `p` (Go: tx.CheckWork): the
 * pre-filter, then one Argon2id evaluation.
 */
export function checkWork(chainID: string, author: string, work: bigint | number, p: RegistrationParams): boolean {
  checkRegistrationParams(p);
  const { pre, ok } = workPrefilter(chainID, author, work, p);
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
 * Finds a valid work value for author's registration on chainID (Go:
 * tx.SolveWork with one worker). It runs on the calling thread, yielding
 * to the event loop about every progressMs; run it in a worker (or a pool
 * of workers with stride and offset) to keep a page responsive. Returns
 * the work and the evaluations it took.
 */
export async function solveWork(chainID: string, author: string, p: RegistrationParams, opts: SolveOptions = {}): Promise<{ work: bigint; stats: WorkStats }> {
  checkRegistrationParams(p);
  const stride = BigInt(opts.stride ?? 1);
  if (stride < 1n) throw new RangeError('stride must be at least 1');
  const salt = idFromString(chainID);
  const input = workInput(salt, sessionIdToBytes(author));
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
      view.setBigUint64(WORK_INPUT_SIZE - 8, tried);
      blake2b256OneBlock(input, pre);
      stats.prefilter++;
      if (leadingZeroBits(pre) >= p.prefilterBits) {
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
export type WorkSolver = (chainID: string, author: string, p: RegistrationParams, opts: { signal?: AbortSignal; onProgress?: (stats: WorkStats) => void }) => Promise<bigint>;

/** The default WorkSolver: solveWork on the calling thread from a random start. */
export const solveOnThisThread: WorkSolver = async (chainID, author, p, opts) => {
  const start = new DataView(randomBytes(8).buffer).getBigUint64(0);
  return (await solveWork(chainID, author, p, { ...opts, start })).work;
};
