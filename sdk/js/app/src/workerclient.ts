// Runs jobs in the app's workers (worker.js), falling back to this thread
// where workers are unavailable: scrypt in one long-lived worker, the
// registration proof of work in a pool of workers that ends with the job.
import { nobleScrypt, randomBytes, type ScryptFunction, solveOnThisThread, type WorkSolver, type WorkStats, WorkAbortedError } from '../../src/index.js';

let worker: Worker | undefined;
let next = 0;
const pending = new Map<number, { resolve: (k: Uint8Array) => void; reject: (e: Error) => void; progress?: (fraction: number) => void }>();

function newWorker(): Worker {
  return new Worker(new URL('./worker.js', document.baseURI), { type: 'module' });
}

function getWorker(): Worker | undefined {
  if (worker || typeof Worker === 'undefined') return worker;
  try {
    worker = newWorker();
    worker.onmessage = (e: MessageEvent<{ id: number; key?: Uint8Array; progress?: number; error?: string }>) => {
      const p = pending.get(e.data.id);
      if (!p) return;
      if (e.data.progress !== undefined && !e.data.key && !e.data.error) {
        p.progress?.(e.data.progress);
        return;
      }
      pending.delete(e.data.id);
      if (e.data.key) p.resolve(e.data.key);
      else p.reject(new Error(e.data.error ?? 'worker failed'));
    };
  } catch {
    worker = undefined;
  }
  return worker;
}

/**
 * scrypt in the worker (identity files: N = 2^17, 128 MiB, one to a few
 * seconds), its progress (0 to 1) to onProgress.
 */
export function workerScrypt(onProgress?: (fraction: number) => void): ScryptFunction {
  return (passphrase, salt, params) => {
    const w = getWorker();
    if (!w) return nobleScrypt(passphrase, salt, params, onProgress);
    const id = ++next;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, progress: onProgress });
      w.postMessage({ id, kind: 'scrypt', passphrase, salt, params });
    });
  };
}

/** How many workers solve a registration: one per core, 2 to 8. */
export function poolSize(): number {
  const n = typeof navigator !== 'undefined' ? navigator.hardwareConcurrency || 2 : 2;
  return Math.min(8, Math.max(2, n));
}

/**
 * The registration proof of work on a pool of workers: worker i of k
 * tries start + i, start + i + k, … (as Go's SolveWork splits it over
 * goroutines); the first solution ends them all. Progress sums the
 * workers' evaluations.
 */
export const workerPoolSolver: WorkSolver = (chainID, seed, params, opts) => {
  if (typeof Worker === 'undefined') return solveOnThisThread(chainID, seed, params, opts);
  const k = poolSize();
  const start = new DataView(randomBytes(8).buffer).getBigUint64(0);
  const workers: Worker[] = [];
  const stats: WorkStats[] = [];
  return new Promise<bigint>((resolve, reject) => {
    let done = false;
    const end = () => {
      done = true;
      for (const w of workers) w.terminate();
      opts.signal?.removeEventListener('abort', abort);
    };
    const abort = () => {
      if (done) return;
      end();
      reject(new WorkAbortedError('registration proof of work aborted'));
    };
    opts.signal?.addEventListener('abort', abort, { once: true });
    try {
      for (let i = 0; i < k; i++) {
        const w = newWorker();
        workers.push(w);
        stats.push({ prefilter: 0, argon2: 0 });
        w.onmessage = (e: MessageEvent<{ id: number; work?: bigint; progress?: WorkStats; error?: string }>) => {
          if (done) return;
          if (e.data.progress) {
            stats[i] = e.data.progress;
            opts.onProgress?.(stats.reduce((a, b) => ({ prefilter: a.prefilter + b.prefilter, argon2: a.argon2 + b.argon2 }), { prefilter: 0, argon2: 0 }));
          }
          if (e.data.work !== undefined) {
            end();
            resolve(e.data.work);
          } else if (e.data.error) {
            end();
            reject(new Error(`proof of work: ${e.data.error}`));
          }
        };
        w.onerror = (ev) => {
          if (done) return;
          end();
          reject(new Error(`proof of work worker failed: ${ev.message}`));
        };
        w.postMessage({ id: i, kind: 'work', chainID, seed, params, extra: opts.extra ?? 0, start, stride: k, offset: i });
      }
    } catch (e) {
      end();
      // Workers refused (a policy, a sandbox): solve here instead.
      solveOnThisThread(chainID, seed, params, opts).then(resolve, reject);
    }
    if (opts.signal?.aborted) abort();
  });
};
