// The cost of one registration's proof of work at the default parameters,
// in Node and in Chromium (noble's pure-JavaScript Argon2id, the SDK's
// one-block BLAKE2b pre-filter), against Go's primitives measured in the
// same run (go test -bench BenchmarkRegistrationWork ./vm/tx). The machine
// may be shared: read the ratios.
//
//   npm run build && node scripts/bench-work.mjs [--solves N] [--no-go] [--no-browser]
import { blake2b } from '@noble/hashes/blake2.js';
import { argon2id } from '@noble/hashes/argon2.js';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { DEFAULT_REGISTRATION, expectedWork, generateIdentity, idToString, randomBytes, solveWork } from '../dist/src/index.js';
import { blake2b256OneBlock } from '../dist/src/blake2b1.js';

const args = process.argv.slice(2);
const solves = Number(args[args.indexOf('--solves') + 1] || 3) || 3;
const sdk = join(dirname(fileURLToPath(import.meta.url)), '..');
const p = DEFAULT_REGISTRATION;
const exp = expectedWork(p);

/** Median per-call ms of f over rounds calls. */
function median(f, rounds) {
  f();
  const t = [];
  for (let i = 0; i < rounds; i++) {
    const s = performance.now();
    f();
    t.push(performance.now() - s);
  }
  return t.sort((a, b) => a - b)[rounds >> 1];
}

function measure() {
  const input = randomBytes(108);
  const out = new Uint8Array(32);
  const batch = 2000;
  const pre = median(() => {
    for (let i = 0; i < batch; i++) {
      input[107] = i;
      blake2b256OneBlock(input, out);
    }
  }, 30) / batch;
  const noble = median(() => {
    for (let i = 0; i < batch; i++) {
      input[107] = i;
      blake2b(input, { dkLen: 32 });
    }
  }, 30) / batch;
  const salt = randomBytes(32);
  const argon = median(() => argon2id(randomBytes(32), salt, { t: p.iterations, m: p.memoryKiB, p: 1, dkLen: 32 }), 9);
  return { pre, noble, argon };
}

function report(where, m, go) {
  const perReg = (exp.argon2 * (m.argon + 2 ** p.prefilterBits * m.pre)) / 1000;
  console.log(`${where}:`);
  console.log(`  pre-filter BLAKE2b   ${(m.pre * 1000).toFixed(2)} µs  (noble blake2b ${(m.noble * 1000).toFixed(2)} µs: ${(m.noble / m.pre).toFixed(2)}x slower)${go ? `  Go ${(go.pre * 1000).toFixed(2)} µs: ${(m.pre / go.pre).toFixed(1)}x` : ''}`);
  console.log(`  Argon2id ${p.memoryKiB} KiB     ${m.argon.toFixed(1)} ms${go ? `  Go ${go.argon.toFixed(1)} ms: ${(m.argon / go.argon).toFixed(1)}x` : ''}`);
  console.log(`  expected per identity, one core: ${perReg.toFixed(1)} s  (2^${p.workBits} × (Argon2id + 2^${p.prefilterBits} pre-filters); the pre-filter is ${((2 ** p.prefilterBits * m.pre) / m.argon).toFixed(1)}× an Argon2id)${go ? `  Go ${go.perReg.toFixed(2)} s: ${(perReg / go.perReg).toFixed(1)}x` : ''}`);
  return perReg;
}

let go;
if (!args.includes('--no-go')) {
  try {
    const outp = execFileSync('go', ['test', '-run', '^$', '-bench', 'BenchmarkRegistrationWork', '-benchtime', '30x', '-count', '1', './vm/tx'], { cwd: join(sdk, '..', '..'), encoding: 'utf8' });
    const ns = (name) => Number(new RegExp(`${name}\\S*\\s+\\d+\\s+([\\d.]+) ns/op`).exec(outp)?.[1]);
    go = { pre: ns('BLAKE2b-prefilter') / 1e6, argon: ns('Argon2id') / 1e6 };
    go.perReg = (exp.argon2 * (go.argon + 2 ** p.prefilterBits * go.pre)) / 1000;
  } catch (e) {
    console.log('(Go benchmark skipped:', e.message.split('\n')[0], ')');
  }
}
if (go) console.log(`Go (golang.org/x/crypto): pre-filter ${(go.pre * 1000).toFixed(2)} µs, Argon2id ${go.argon.toFixed(1)} ms, expected ${go.perReg.toFixed(2)} s per identity on one core`);

report('Node ' + process.version, measure(), go);
const chain = idToString(randomBytes(32));
const times = [];
for (let i = 0; i < solves; i++) {
  const who = generateIdentity().sessionId;
  const t = performance.now();
  const r = await solveWork(chain, who, p, { start: 0n });
  times.push((performance.now() - t) / 1000);
  console.log(`  solve ${i + 1}: ${times.at(-1).toFixed(1)} s, ${r.stats.argon2} Argon2id (expected ${exp.argon2}), ${r.stats.prefilter} pre-filters`);
}
if (times.length) console.log(`  mean of ${times.length} solves: ${(times.reduce((a, b) => a + b) / times.length).toFixed(1)} s (geometric: one solve says little)`);

const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!args.includes('--no-browser') && existsSync(chromium)) {
  const { chromium: pw } = await import('playwright-core');
  const bundle = await build({
    stdin: {
      contents: `
        import { blake2b } from '@noble/hashes/blake2.js';
        import { argon2id } from '@noble/hashes/argon2.js';
        import { blake2b256OneBlock } from './dist/src/blake2b1.js';
        ${median.toString()}
        self.measure = (m, t) => {
          const input = crypto.getRandomValues(new Uint8Array(108)), out = new Uint8Array(32), batch = 2000;
          const pre = median(() => { for (let i = 0; i < batch; i++) { input[107] = i; blake2b256OneBlock(input, out); } }, 30) / batch;
          const noble = median(() => { for (let i = 0; i < batch; i++) { input[107] = i; blake2b(input, { dkLen: 32 }); } }, 30) / batch;
          const salt = crypto.getRandomValues(new Uint8Array(32));
          const argon = median(() => argon2id(crypto.getRandomValues(new Uint8Array(32)), salt, { t, m, p: 1, dkLen: 32 }), 9);
          return { pre, noble, argon };
        };`,
      resolveDir: sdk,
    },
    bundle: true,
    write: false,
    format: 'iife',
  });
  const browser = await pw.launch({ executablePath: chromium, headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.addScriptTag({ content: bundle.outputFiles[0].text });
    const version = browser.version();
    const m = await page.evaluate(([mem, t]) => self.measure(mem, t), [p.memoryKiB, p.iterations]);
    report(`Chromium ${version}`, m, go);
  } finally {
    await browser.close();
  }
}
