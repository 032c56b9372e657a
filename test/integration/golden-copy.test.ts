/**
 * The project's copy of the golden vectors (test/fixtures/golden) is complete, and equal to the
 * shared set it was copied from wherever that set is beside the checkout.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GOLDEN_DIR, GOLDEN_SOURCE_DIR } from '../helpers/paths.js';
import { readJson } from '../helpers/json.js';

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** Every file below `root`, as paths relative to it. */
function files(root: string): string[] {
  return walk(root)
    .map((p) => relative(root, p))
    .sort();
}

/** What the tests read from the copy. */
const USED = [
  'README.md',
  'chatglm3-tiny/config.json',
  'chatglm3-tiny/expected.json',
  'chatglm3-tiny/lora-adapter/adapter_config.json',
  'chatglm3-tiny/lora-adapter/adapter_model.safetensors',
  'chatglm3-tiny/model.safetensors',
  'chatglm3-tiny/tokenizer.model',
  'chatglm3-tiny/tokenizer_config.json',
  'eval/bleu.json',
  'tokenizer/expected.json',
  'tokenizer/tokenizer.model',
  'tools/expected.json',
];

test('the copy holds every golden file the tests read, and its JSON parses', () => {
  const present = new Set(files(GOLDEN_DIR));
  assert.deepEqual(USED.filter((f) => !present.has(f)), []);
  for (const f of USED.filter((f) => f.endsWith('.json'))) assert.doesNotThrow(() => readJson(join(GOLDEN_DIR, f)), f);
});

test('where the shared golden set is beside the checkout, the copy is equal to it, file for file', () => {
  if (!existsSync(GOLDEN_SOURCE_DIR)) {
    console.log(`no shared golden set at ${GOLDEN_SOURCE_DIR}: the copy is the source here`);
    return;
  }
  assert.deepEqual(files(GOLDEN_DIR), files(GOLDEN_SOURCE_DIR));
  for (const f of files(GOLDEN_SOURCE_DIR)) {
    assert.ok(readFileSync(join(GOLDEN_DIR, f)).equals(readFileSync(join(GOLDEN_SOURCE_DIR, f))), `${f} differs from the shared set: copy it again`);
  }
});
