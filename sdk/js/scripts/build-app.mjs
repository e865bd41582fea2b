// Builds the web messenger into node/webui/dist, which the Go binary
// embeds. The output depends only on the sources and the locked esbuild
// version: .ci/run rebuilds it and fails if the committed build differs.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const sdk = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(sdk, '..', '..', 'node', 'webui', 'dist');

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  absWorkingDir: sdk,
  entryPoints: { app: 'app/src/main.ts', worker: 'app/src/worker.ts' },
  outdir: out,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome111', 'firefox119', 'safari17'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) copyFileSync(join(sdk, 'app', f), join(out, f));
console.log('built', readdirSync(out).sort().join(', '), '->', out);
