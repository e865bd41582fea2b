// Runs real SessionVM processes for the live tests: sessiond on a free
// port with a temporary data directory, and sessionctl against it.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './helpers.js';

const run = promisify(execFile);

let built: Promise<string> | undefined;

/**
 * The directory holding sessiond and sessionctl: $SESSION_BIN_DIR when set
 * (CI builds them once), else built here with go build.
 */
export function binaries(): Promise<string> {
  built ??= (async () => {
    const dir = process.env.SESSION_BIN_DIR;
    if (dir) return dir;
    const out = mkdtempSync(join(tmpdir(), 'sessionvm-bin-'));
    process.once('exit', () => rmSync(out, { recursive: true, force: true }));
    const go = process.env.GO ?? 'go';
    await run(go, ['build', '-o', out, './cmd/sessiond', './cmd/sessionctl'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    return out;
  })();
  return built;
}

export interface Node {
  url: string; // http://127.0.0.1:PORT
  rpc: string; // url + /rpc
  dataDir: string;
  proc: ChildProcess;
  log: () => string;
  stop(): Promise<void>;
}

/**
 * The registration work of the test chains: real work (a pre-filter of 6
 * bits, 2 bits of Argon2id over 64 KiB, so a wrong solver is refused by
 * the node), about 4 Argon2id and 256 BLAKE2b evaluations per identity.
 */
export const TEST_REGISTRATION = { memoryKiB: 64, iterations: 1, prefilterBits: 6, workBits: 2, maxPerBlock: 16, anchorWindow: 4096 };

export interface NodeOptions {
  /** The chain's registration work (default TEST_REGISTRATION). */
  registration?: typeof TEST_REGISTRATION;
}

/**
 * Starts sessiond on 127.0.0.1 with a free port, a fresh data directory
 * and a new chain from a genesis file with the test registration work
 * (the other settings are the defaults).
 */
export async function startNode(opts: NodeOptions = {}): Promise<Node> {
  const bin = await binaries();
  const dataDir = mkdtempSync(join(tmpdir(), 'sessiond-'));
  const genesis = join(dataDir, 'genesis.json');
  writeFileSync(genesis, JSON.stringify({ timestamp: 1767225600, config: { registration: opts.registration ?? TEST_REGISTRATION } }));
  const proc = spawn(join(bin, 'sessiond'), ['--data-dir', join(dataDir, 'chain'), '--genesis', genesis, '--http', '127.0.0.1:0', '--build-delay', '1ms'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sessiond did not start in 60 s:\n${log}`)), 60_000);
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      log += d;
      const m = /http=(http:\/\/127\.0\.0\.1:\d+)\/rpc/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sessiond exited with ${code}:\n${log}`));
    });
  });
  return {
    url,
    rpc: url + '/rpc',
    dataDir,
    proc,
    log: () => log,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Runs sessionctl with --json against the node and returns its parsed output. */
export async function sessionctl(node: Node, identityFile: string, passphrase: string, ...args: string[]): Promise<any> {
  const bin = await binaries();
  try {
    const { stdout } = await run(join(bin, 'sessionctl'), ['--node', node.rpc, '--identity', identityFile, '--json', ...args], {
      env: { ...process.env, SESSION_PASSPHRASE: passphrase },
      maxBuffer: 16 << 20,
    });
    return JSON.parse(stdout);
  } catch (e: any) {
    throw new Error(`sessionctl ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
  }
}
