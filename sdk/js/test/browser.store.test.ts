// The protocol's state in a real browser: two devices on IndexedDB stores
// encrypted under passphrases (IndexedDBStore, openPassphraseStore) talk
// both ways, the state survives a reopen (a reload), a wrong passphrase is
// refused, and nothing is stored in the clear. Debian's Chromium through
// playwright-core, the page served from 127.0.0.1 (IndexedDB needs an origin).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { build } from 'esbuild';
import { chromium, type BrowserContext } from 'playwright-core';
import { sdkRoot } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
let server: Server;
let ctx: BrowserContext;
let dir: string;
let url: string;

before(async () => {
  server = createServer((_req, res) => res.end('<!doctype html><title>store test</title>'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address() as { port: number };
  url = `http://127.0.0.1:${addr.port}/`;
  dir = mkdtempSync(join(tmpdir(), 'chromium-store-'));
  ctx = await chromium.launchPersistentContext(dir, { executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

after(async () => {
  await ctx?.close();
  server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('the protocol over passphrase-encrypted IndexedDB stores in Chromium', { timeout: 120_000 }, async () => {
  const bundle = await build({ entryPoints: [join(sdkRoot, 'test', 'browser', 'store-entry.ts')], bundle: true, format: 'iife', write: false, platform: 'browser', target: 'es2022', keepNames: true });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.addScriptTag({ content: bundle.outputFiles[0]!.text });
  const r = (await page.evaluate('storeTest()')) as Record<string, unknown>;
  assert.equal(r.first, 'hello over IndexedDB');
  assert.equal(r.second, 'and back');
  assert.deepEqual(r.history, ['hello over IndexedDB', 'and back']);
  assert.equal(r.third, 'after the reload');
  assert.equal(r.wrong, 'WrongPassphraseError');
  assert.equal(r.plaintextAtRest, false);
  assert.ok((r.records as number) >= 4, `${String(r.records)} records`);
});
