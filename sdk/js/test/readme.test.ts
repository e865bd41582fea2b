// The quick start of README.md runs as written against a real node
// (only the node URL and the package import are pointed at this tree).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, it } from 'node:test';
import { transform } from 'esbuild';
import { sdkRoot } from './helpers.js';
import { type Node, startNode } from './harness.js';

const run = promisify(execFile);
let node: Node;
before(async () => (node = await startNode()));
after(async () => node?.stop());

it('README quick start', { timeout: 120_000 }, async () => {
  const readme = readFileSync(join(sdkRoot, 'README.md'), 'utf8');
  const m = /<!-- tested: quick start -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README.md has the quick start block');
  const code = m[1]!;
  // Expected output: the "// → ..." comments, in order.
  const expected = [...code.matchAll(/\/\/ → (.*)$/gm)].map((x) => x[1]!.trim());
  assert.ok(expected.length >= 2);
  const js = (await transform(code, { loader: 'ts', format: 'esm' })).code
    .replaceAll("'@luxfi/session'", "'./src/index.js'")
    .replaceAll('"@luxfi/session"', '"./src/index.js"')
    .replaceAll('http://127.0.0.1:9652/rpc', node.rpc);
  const file = join(sdkRoot, 'dist', 'readme-quickstart.mjs');
  writeFileSync(file, js);
  const { stdout } = await run(process.execPath, [file], { timeout: 100_000 });
  assert.deepEqual(stdout.trim().split('\n'), expected);
});
