/**
 * The layout's rules, read from the import graph (madge, type imports included): no two files
 * import each other, directly or around a loop; routes never import the app; the gateway never
 * loads onnxruntime; the worker never loads the model builder's exporter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import madge from 'madge';
import { PROJECT_ROOT } from '../helpers/paths.js';

const graph = await madge(['src', 'test', 'bench'].map((d) => join(PROJECT_ROOT, d)), {
  baseDir: PROJECT_ROOT,
  fileExtensions: ['ts'],
  tsConfig: join(PROJECT_ROOT, 'tsconfig.json'),
  detectiveOptions: { ts: { skipTypeImports: false } },
});
const imports = graph.obj();

/** Every file `from` reaches through its imports. */
function reach(from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [from];
  while (todo.length > 0) {
    for (const next of imports[todo.pop()!] ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        todo.push(next);
      }
    }
  }
  return seen;
}

test('the import graph covers the sources', () => {
  assert.ok(Object.keys(imports).filter((f) => f.startsWith('src/')).length > 80);
  assert.ok(imports['src/gateway/app.ts']?.includes('src/gateway/routes/answers.ts'), 'the app imports its routes');
});

test('no import cycles, type imports included', () => {
  assert.deepEqual(graph.circular(), []);
});

test('routes and plugins never import the app', () => {
  for (const [file, deps] of Object.entries(imports) as [string, string[]][]) {
    if (/^src\/gateway\/(routes|plugins)\//.test(file)) assert.ok(!deps.includes('src/gateway/app.ts'), file);
  }
});

/** Whether a file's own source imports onnxruntime (npm packages are not in the graph). */
function importsOnnx(file: string): boolean {
  return /from 'onnxruntime-node'|import\('onnxruntime-node'\)/.test(readFileSync(join(PROJECT_ROOT, file), 'utf8'));
}

test('the gateway never loads onnxruntime or the worker, and the worker never loads the exporter', () => {
  assert.ok(importsOnnx('src/worker/engine/onnx-engine.ts'), 'the check sees an import of onnxruntime');
  for (const file of ['src/cli/gateway.ts', 'src/gateway/app.ts', 'src/gateway/server.ts']) {
    const reached = [file, ...reach(file)];
    assert.deepEqual(reached.filter(importsOnnx), [], `${file} loads onnxruntime`);
    assert.deepEqual(reached.filter((f) => f.startsWith('src/worker/')), [], `${file} reaches the worker`);
  }
  for (const file of Object.keys(imports).filter((f) => f.startsWith('src/worker/'))) {
    const reached = reach(file);
    assert.ok(!reached.has('src/model/export-model.ts') && !reached.has('src/model/demo-model.ts'), `${file} reaches the exporter`);
  }
});
