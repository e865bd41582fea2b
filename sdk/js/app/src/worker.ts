// The app's worker: expensive work off the page's thread. Two jobs: scrypt
// for identity files, and a share of the registration proof of work
// (workerclient.ts runs one worker per core, each on its own residue class
// of work values, and ends them all when one finds a solution).
import { nobleScrypt, type RegistrationParams, type ScryptParams, solveWork } from '../../src/index.js';

type Job =
  | { id: number; kind: 'scrypt'; passphrase: Uint8Array; salt: Uint8Array; params: ScryptParams }
  | { id: number; kind: 'work'; chainID: string; seed: Uint8Array; params: RegistrationParams; extra: number; start: bigint; stride: number; offset: number };

const post = (m: unknown, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

self.onmessage = async (e: MessageEvent<Job>) => {
  const job = e.data;
  try {
    if (job.kind === 'scrypt') {
      let shown = 0;
      const key = await nobleScrypt(job.passphrase, job.salt, job.params, (f) => {
        if (f - shown < 0.02 && f < 1) return; // a message every 2%
        shown = f;
        post({ id: job.id, progress: f });
      });
      post({ id: job.id, key }, [key.buffer]);
    } else if (job.kind === 'work') {
      const r = await solveWork(job.chainID, job.seed, job.params, {
        extra: job.extra,
        start: job.start,
        stride: job.stride,
        offset: job.offset,
        progressMs: 250,
        onProgress: (stats) => post({ id: job.id, progress: stats }),
      });
      post({ id: job.id, work: r.work, progress: r.stats });
    } else {
      throw new Error(`unknown job ${String((job as { kind: unknown }).kind)}`);
    }
  } catch (err) {
    post({ id: job.id, error: err instanceof Error ? err.message : String(err) });
  }
};
