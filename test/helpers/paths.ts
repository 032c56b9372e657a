/** Where things are, from a compiled test file (dist/test/...) or its source. */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(start: string): string {
  let dir = start;
  while (!existsSync(join(dir, 'package.json')) || dir.endsWith('/dist')) {
    const up = dirname(dir);
    if (up === dir) throw new Error('project root not found');
    dir = up;
  }
  return dir;
}

export const PROJECT_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));
/** The golden vectors shared with the project; referred to in place, never copied. */
export const GOLDEN_DIR = resolve(PROJECT_ROOT, '../shared/golden');
export const GOLDEN_TOKENIZER_DIR = join(GOLDEN_DIR, 'tokenizer');
export const GOLDEN_TINY_DIR = join(GOLDEN_DIR, 'chatglm3-tiny');
/** Compiled entry points that integration tests run as real processes. */
export const CLI_DIR = join(PROJECT_ROOT, 'dist/src/cli');
