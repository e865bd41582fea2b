import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Tests run from dist/test; the vectors stay in test/vectors.
export const sdkRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const repoRoot = join(sdkRoot, '..', '..');

export function vectors<T = any>(name: string): T {
  return JSON.parse(readFileSync(join(sdkRoot, 'test', 'vectors', name), 'utf8')) as T;
}
