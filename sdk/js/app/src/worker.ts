// The app's worker: expensive key derivation off the page's thread. The
// registration proof of work (argon2id) will be a second job here.
import { nobleScrypt, type ScryptParams } from '../../src/index.js';

interface Job {
  id: number;
  kind: 'scrypt';
  passphrase: Uint8Array;
  salt: Uint8Array;
  params: ScryptParams;
}

self.onmessage = async (e: MessageEvent<Job>) => {
  const { id, kind } = e.data;
  try {
    if (kind !== 'scrypt') throw new Error(`unknown job ${String(kind)}`);
    const key = await nobleScrypt(e.data.passphrase, e.data.salt, e.data.params);
    (self as unknown as Worker).postMessage({ id, key }, [key.buffer]);
  } catch (err) {
    (self as unknown as Worker).postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
};
