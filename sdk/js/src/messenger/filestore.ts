// FileStore: a ChatStore in one file for Node.js. Each commit writes the
// whole record set to a temporary file, syncs it and renames it over the
// old one, so a crash leaves the old state or the new one, never a mix.
// A lock file keeps a second process out (two writers would use a ratchet
// key twice). Sized for one identity's client state (a few MB at most).

import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { ChatStore } from '../chat/index.js';
import { fromBase64, toBase64 } from '../bytes.js';
import { SessionError } from '../errors.js';

/** Another process holds the store. */
export class StoreLockedError extends SessionError {}

export class FileStore implements ChatStore {
  #records = new Map<string, Uint8Array>();
  #lock: string;
  #closed = false;

  private constructor(
    readonly path: string,
    lock: string,
  ) {
    this.#lock = lock;
  }

  /** Opens (or creates) the store at path. StoreLockedError if another process holds it. */
  static open(path: string): FileStore {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const lock = path + '.lock';
    let fd: number;
    try {
      fd = openSync(lock, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new StoreLockedError(`${path} is in use (remove ${lock} if no process holds it)`);
      throw e;
    }
    writeSync(fd, String(process.pid));
    closeSync(fd);
    const s = new FileStore(path, lock);
    try {
      const obj = JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>;
      for (const [k, v] of Object.entries(obj)) s.#records.set(k, fromBase64(v));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
        rmSync(lock, { force: true });
        throw e;
      }
    }
    return s;
  }

  async get(name: string): Promise<Uint8Array | undefined> {
    return this.#records.get(name)?.slice();
  }

  async list(prefix: string): Promise<string[]> {
    return [...this.#records.keys()].filter((k) => k.startsWith(prefix)).sort();
  }

  async commit(puts: ReadonlyMap<string, Uint8Array>, deletes: readonly string[]): Promise<void> {
    if (this.#closed) throw new SessionError('the store is closed');
    const next = new Map(this.#records);
    for (const d of deletes) next.delete(d);
    for (const [k, v] of puts) next.set(k, v.slice());
    const obj: Record<string, string> = {};
    for (const [k, v] of next) obj[k] = toBase64(v);
    const tmp = join(dirname(this.path), `.${process.pid}.tmp`);
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(obj));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
    this.#records = next;
  }

  /** Releases the lock. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    rmSync(this.#lock, { force: true });
  }
}
