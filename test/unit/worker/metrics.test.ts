/**
 * The worker's labelled metrics declare every value the code can give them, so their series are
 * there at zero from the first scrape. The refusal codes are checked against the worker's own
 * sources: a code the request path can throw that is missing from WORKER_REJECT_CODES would be
 * born at its first refusal (a panel without it, a rate() that misses that refusal).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isErrorCode } from '../../../src/shared/errors.js';
import { WORKER_FINISH_REASONS, WORKER_REJECT_CODES, createWorkerMetrics } from '../../../src/worker/metrics.js';
import { PROJECT_ROOT } from '../../helpers/paths.js';

/** Codes the worker's sources name that are never the answer to a generation request. */
const NOT_REFUSALS: Record<string, string> = {
  INVALID_MODEL_FILE: 'thrown while the model loads, before the worker is ready',
  ADAPTER_MISMATCH: 'thrown while the adapters load, before the worker is ready',
  NOT_FOUND: 'the answer to a path the worker does not serve, not to a generation',
  INVALID_DATA: 'a bad simulated-engine script, refused while the worker starts',
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name));
}

/** Every error code a file names as a string literal: thrown, returned from a mapping, or tabled. */
function codesNamed(files: string[]): Map<string, string[]> {
  const named = new Map<string, string[]>();
  for (const file of files) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'([A-Z][A-Z0-9_]+)'/g)) {
      const code = m[1]!;
      if (!isErrorCode(code)) continue;
      named.set(code, [...(named.get(code) ?? []), relative(PROJECT_ROOT, file)]);
    }
  }
  return named;
}

test('every error code the worker or its tokenizer can answer a generation with is a declared refusal code', () => {
  // metrics.ts, where the list is declared, is not a place a refusal comes from.
  const declared = join(PROJECT_ROOT, 'src/worker/metrics.ts');
  const files = [...sources(join(PROJECT_ROOT, 'src/worker')), ...sources(join(PROJECT_ROOT, 'src/tokenizer'))].filter((f) => f !== declared);
  const named = codesNamed(files);
  assert.ok(named.has('OVERLOADED') && named.has('CONTEXT_LENGTH_EXCEEDED'), 'the scan finds the scheduler\'s codes');
  const missing = [...named]
    .filter(([code]) => !(WORKER_REJECT_CODES as readonly string[]).includes(code) && !Object.hasOwn(NOT_REFUSALS, code))
    .map(([code, files]) => `${code} (${[...new Set(files)].join(', ')})`);
  assert.deepEqual(missing, [], 'add them to WORKER_REJECT_CODES, or to NOT_REFUSALS here with the reason');
  for (const code of WORKER_REJECT_CODES) assert.ok(isErrorCode(code), `${code} is an error code`);
});

test('the scan sees a code it has not been told about', () => {
  const file = join(PROJECT_ROOT, 'src/worker/scheduler.ts');
  assert.ok(codesNamed([file]).has('OVERLOADED'));
  assert.equal(codesNamed([file]).has('RATE_LIMITED'), false);
});

test('every refusal code and finish reason has its series at zero before anything happened', async () => {
  const metrics = createWorkerMetrics();
  const text = await metrics.registry.metrics();
  for (const code of WORKER_REJECT_CODES) assert.match(text, new RegExp(`^worker_rejected_requests_total\\{code="${code}",process="worker"\\} 0$`, 'm'));
  for (const reason of WORKER_FINISH_REASONS) assert.match(text, new RegExp(`^worker_requests_total\\{finish_reason="${reason}",process="worker"\\} 0$`, 'm'));
});
