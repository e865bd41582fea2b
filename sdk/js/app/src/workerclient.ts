// Runs jobs in the app's worker (worker.js), falling back to this thread
// where workers are unavailable.
import { nobleScrypt, type ScryptFunction } from '../../src/index.js';

let worker: Worker | undefined;
let next = 0;
const pending = new Map<number, { resolve: (k: Uint8Array) => void; reject: (e: Error) => void }>();

function getWorker(): Worker | undefined {
  if (worker || typeof Worker === 'undefined') return worker;
  try {
    worker = new Worker(new URL('./worker.js', document.baseURI), { type: 'module' });
    worker.onmessage = (e: MessageEvent<{ id: number; key?: Uint8Array; error?: string }>) => {
      const p = pending.get(e.data.id);
      if (!p) return;
      pending.delete(e.data.id);
      if (e.data.key) p.resolve(e.data.key);
      else p.reject(new Error(e.data.error ?? 'worker failed'));
    };
  } catch {
    worker = undefined;
  }
  return worker;
}

/** scrypt in the worker. */
export const workerScrypt: ScryptFunction = (passphrase, salt, params) => {
  const w = getWorker();
  if (!w) return nobleScrypt(passphrase, salt, params);
  const id = ++next;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, kind: 'scrypt', passphrase, salt, params });
  });
};
