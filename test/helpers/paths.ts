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
/** The golden vectors: the project's own copy (test/fixtures/golden/README.md says where they come from). */
export const GOLDEN_DIR = join(PROJECT_ROOT, 'test/fixtures/golden');
/**
 * The source the copy was taken from, beside the checkout where it exists (not in a plain clone):
 * a test keeps the copy equal to it.
 */
export const GOLDEN_SOURCE_DIR = resolve(PROJECT_ROOT, '../shared/golden');
export const GOLDEN_TOKENIZER_DIR = join(GOLDEN_DIR, 'tokenizer');
export const GOLDEN_TINY_DIR = join(GOLDEN_DIR, 'chatglm3-tiny');
/** Compiled entry points that integration tests run as real processes. */
export const CLI_DIR = join(PROJECT_ROOT, 'dist/src/cli');
/** helm-template's sources, beside the checkout where they exist (not in a plain clone). */
export const HELM_TEMPLATE_DIR = resolve(PROJECT_ROOT, '../shared/tools/helm-template');
