/**
 * The worker app in-process (Fastify inject) on a real engine over the golden tiny model: garbage
 * requests, queue limits, readiness, adapter modes and start-up errors.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GenerateEventSchema, type GenerateEvent } from '../../src/protocol/schemas.js';
import { buildWorkerApp, type WorkerApp } from '../../src/worker/app.js';
import type { WorkerRuntime } from '../../src/worker/runtime.js';
import { WorkerConfigSchema, type WorkerConfig } from '../../src/worker/config.js';
import { WORKER_REJECT_CODES, createWorkerMetrics } from '../../src/worker/metrics.js';
import { loadWorkerRuntime } from '../../src/worker/runtime.js';
import { GOLDEN_TINY_DIR } from '../helpers/paths.js';
import { exportTinyModel, type TinyModel } from '../helpers/worker-process.js';
import { readTinyGolden } from '../helpers/golden-fixtures.js';

const golden = readTinyGolden();

function config(model: TinyModel, extra: Record<string, unknown> = {}): WorkerConfig {
  return WorkerConfigSchema.parse({
    modelDir: model.modelDir,
    adaptersDir: model.adaptersDir,
    demoModel: 'off',
    device: { intraOpThreads: 1 },
    ...extra,
  });
}

async function app(cfg: WorkerConfig): Promise<{ worker: WorkerApp; runtime: WorkerRuntime }> {
  const metrics = createWorkerMetrics();
  const worker = buildWorkerApp({ metrics });
  const runtime = await loadWorkerRuntime(cfg, metrics);
  worker.setRuntime(runtime);
  return { worker, runtime };
}

function events(body: string): GenerateEvent[] {
  return body
    .split('\n')
    .filter(Boolean)
    .map((l) => GenerateEventSchema.parse(JSON.parse(l)));
}

let runtimeModel: TinyModel;
let mergedModel: TinyModel;

before(async () => {
  runtimeModel = await exportTinyModel('runtime');
  mergedModel = await exportTinyModel('merge');
});

after(() => {
  runtimeModel?.cleanup();
  mergedModel?.cleanup();
});

/** A small deterministic generator, so that a failing case can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

function garbage(next: () => number, depth = 0): unknown {
  const pick = Math.floor(next() * (depth > 2 ? 6 : 9));
  const strings = ['', 'x', '\u0000', '\uD800', '<|user|>', 'legal', 'system', '9'.repeat(40), '劳动'];
  switch (pick) {
    case 0:
      return null;
    case 1:
      return next() < 0.5;
    case 2:
      return [0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, Number.MAX_SAFE_INTEGER][Math.floor(next() * 7)];
    case 3:
      return strings[Math.floor(next() * strings.length)];
    case 4:
      return Math.floor(next() * 800);
    case 5:
      return 'y'.repeat(Math.floor(next() * 20));
    case 6:
      return Array.from({ length: Math.floor(next() * 4) }, () => garbage(next, depth + 1));
    default: {
      const keys = ['id', 'messages', 'prompt', 'prompt_ids', 'adapter', 'max_tokens', 'temperature', 'top_p', 'top_k', 'repetition_penalty', 'seed', 'stop', 'logprobs', 'tenant', 'tier', 'role', 'content', 'extra'];
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 6); i > 0; i--) o[keys[Math.floor(next() * keys.length)]!] = garbage(next, depth + 1);
      return o;
    }
  }
}

test('hundreds of generated garbage requests get 4xx or a well-formed stream, never a 5xx; the worker keeps serving', async () => {
  const { worker, runtime } = await app(config(runtimeModel));
  const next = rng(2024);
  const statuses = new Map<number, number>();
  for (let i = 0; i < 400; i++) {
    let body: unknown = garbage(next);
    if (i % 3 === 0) {
      // near-valid requests with one or two fields broken
      body = { id: `g${i}`, prompt: 'hi', max_tokens: 2, ...(garbage(next) as object) };
    }
    const payload = i % 17 === 0 ? `{"id":${JSON.stringify(String(body)).slice(0, 10)}` : JSON.stringify(body);
    const res = await worker.app.inject({ method: 'POST', url: '/v1/generate', headers: { 'content-type': 'application/json' }, payload });
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    assert.ok(res.statusCode < 500, `${res.statusCode} for ${payload.slice(0, 200)}: ${res.body.slice(0, 200)}`);
    if (res.statusCode === 200) {
      const evs = events(res.body);
      assert.equal(evs[0]!.type, 'start');
      assert.ok(['end', 'error'].includes(evs.at(-1)!.type));
    } else {
      const err = res.json() as { error: { code: string; message: string } };
      assert.ok(err.error.code && err.error.message);
    }
  }
  assert.ok((statuses.get(400) ?? 0) > 100, JSON.stringify([...statuses]));
  const big = await worker.app.inject({
    method: 'POST',
    url: '/v1/generate',
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify({ id: 'x', prompt: 'x'.repeat(5 * 1024 * 1024), max_tokens: 1 }),
  });
  assert.equal(big.statusCode, 413);
  const ok = await worker.app.inject({
    method: 'POST',
    url: '/v1/generate',
    payload: { id: 'ok', prompt_ids: golden.base[0]!.input_ids, max_tokens: 12, temperature: 0 },
  });
  assert.deepEqual(events(ok.body).flatMap((e) => (e.type === 'token' ? e.ids : [])), golden.base[0]!.greedy_ids);
  await runtime.scheduler.drain(0);
  await runtime.engine.dispose();
});

test('a full queue is refused with 503 OVERLOADED and Retry-After; queued requests still complete', async (t) => {
  const { worker, runtime } = await app(config(runtimeModel, { scheduler: { maxRunningSequences: 1, maxQueue: 1 } }));
  // The engine's thread would keep the test process alive after a failed assertion.
  t.after(async () => {
    await runtime.scheduler.drain(0);
    await runtime.engine.dispose();
  });
  const body = { id: 'q', prompt_ids: golden.base[1]!.input_ids, max_tokens: 40, temperature: 0 };
  const first = worker.app.inject({ method: 'POST', url: '/v1/generate', payload: body });
  while (runtime.scheduler.runningCount === 0) await new Promise((r) => setTimeout(r, 1));
  const second = worker.app.inject({ method: 'POST', url: '/v1/generate', payload: body });
  while (runtime.scheduler.queueLength === 0) await new Promise((r) => setTimeout(r, 1));
  const third = await worker.app.inject({ method: 'POST', url: '/v1/generate', payload: body });
  assert.equal(third.statusCode, 503);
  assert.equal(third.headers['retry-after'], '1');
  assert.equal((third.json() as { error: { code: string } }).error.code, 'overloaded');
  assert.equal((await rejections(worker)).get('OVERLOADED'), 1);
  const readyz = async () => ((await worker.app.inject({ url: '/readyz' })).json() as { load: Record<string, number> }).load;
  // The running sequence holds cache once its prompt is being filled (before that it looks for a
  // cached prefix); the second waits in the queue until the first ends.
  let load = await readyz();
  while (load.kv_tokens_in_use === 0 && load.queue_length === 1) {
    await new Promise((r) => setTimeout(r, 1)); // the engine thread answers through the event loop
    load = await readyz();
  }
  const ready = { load };
  assert.equal(ready.load.queue_length, 1, 'readyz reports the queue');
  assert.equal(ready.load.running_sequences, 1);
  assert.ok(ready.load.kv_tokens_in_use! >= 1 && ready.load.kv_tokens_in_use! <= body.prompt_ids.length + body.max_tokens, JSON.stringify(ready.load));
  assert.equal(ready.load.kv_tokens_capacity, 16384);
  for (const r of await Promise.all([first, second])) assert.equal(events(r.body).at(-1)!.type, 'end');
  const idle = (await worker.app.inject({ url: '/readyz' })).json() as { load: Record<string, number> };
  assert.deepEqual(idle.load, { queue_length: 0, running_sequences: 0, kv_tokens_in_use: 0, kv_tokens_capacity: 16384 });
});

test("a request's tenant and tier reach fair admission: counted under its tier, unknown tiers as other", async () => {
  const { worker, runtime } = await app(config(runtimeModel));
  try {
    for (const tier of ['pro', 'no-such-tier']) {
      const res = await worker.app.inject({
        method: 'POST',
        url: '/v1/generate',
        payload: { id: tier, prompt_ids: golden.base[0]!.input_ids, max_tokens: 2, temperature: 0, tenant: 'acme', tier },
      });
      assert.equal(res.statusCode, 200);
      assert.equal(JSON.parse(res.body.trim().split('\n').at(-1)!).type, 'end');
    }
    const text = (await worker.app.inject({ method: 'GET', url: '/metrics' })).body;
    assert.match(text, /worker_tier_admitted_requests_total\{tier="pro"[^}]*\} 1\n/);
    assert.match(text, /worker_tier_admitted_requests_total\{tier="other"[^}]*\} 1\n/);
    assert.doesNotMatch(text, /acme/, 'no tenant name in any label');
  } finally {
    await runtime.scheduler.drain(0);
    await runtime.engine.dispose();
    await worker.app.close();
  }
});

test('before the model is loaded: healthz 200, readyz 503, generate 503 NOT_READY', async () => {
  const worker = buildWorkerApp({ metrics: createWorkerMetrics() });
  assert.equal((await worker.app.inject({ url: '/healthz' })).statusCode, 200);
  const ready = await worker.app.inject({ url: '/readyz' });
  assert.equal(ready.statusCode, 503);
  assert.deepEqual(ready.json(), { ready: false });
  const gen = await worker.app.inject({ method: 'POST', url: '/v1/generate', payload: { id: 'a', prompt: 'x', max_tokens: 1 } });
  assert.equal(gen.statusCode, 503);
  assert.equal((await worker.app.inject({ url: '/nowhere' })).statusCode, 404);
});

/** The rejection counter's samples by code, from the worker's own exposition. */
async function rejections(worker: WorkerApp): Promise<Map<string, number>> {
  const text = (await worker.app.inject({ url: '/metrics' })).body;
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^worker_rejected_requests_total\{code="([A-Z_]+)"[^}]*\} (\S+)$/gm)) counts.set(m[1]!, Number(m[2]));
  return counts;
}

test('every refusal of a generation is counted once under its code, on a series that was there at zero', async () => {
  const idle = buildWorkerApp({ metrics: createWorkerMetrics() });
  const { worker, runtime } = await app(config(runtimeModel, { scheduler: { maxKvTokens: 64 } }));
  const atStart = await rejections(worker);
  assert.deepEqual([...atStart.keys()].sort(), [...WORKER_REJECT_CODES].sort());
  assert.ok([...atStart.values()].every((v) => v === 0));
  const json = { 'content-type': 'application/json' };
  const cases: { code: string; payload: string; headers?: Record<string, string>; on?: WorkerApp }[] = [
    { code: 'INVALID_JSON', payload: '{"id":' },
    { code: 'INVALID_REQUEST', payload: JSON.stringify({ id: 'a', max_tokens: 1 }) },
    { code: 'INVALID_REQUEST', payload: JSON.stringify({ id: 'a', prompt_ids: [1, 10 ** 9], max_tokens: 1 }) },
    { code: 'UNSUPPORTED_MEDIA_TYPE', payload: 'hello', headers: { 'content-type': 'text/plain' } },
    { code: 'PAYLOAD_TOO_LARGE', payload: JSON.stringify({ id: 'a', prompt: 'x'.repeat(5 * 1024 * 1024), max_tokens: 1 }) },
    { code: 'MODEL_NOT_FOUND', payload: JSON.stringify({ id: 'a', prompt: 'x', adapter: 'nobody', max_tokens: 1 }) },
    { code: 'CONTEXT_LENGTH_EXCEEDED', payload: JSON.stringify({ id: 'a', prompt: 'x', max_tokens: 100 }) },
  ];
  for (const c of cases) {
    const res = await worker.app.inject({ method: 'POST', url: '/v1/generate', headers: c.headers ?? json, payload: c.payload });
    assert.equal((res.json() as { error: { code: string } }).error.code, c.code.toLowerCase(), res.body.slice(0, 200));
  }
  const notReady = await idle.app.inject({ method: 'POST', url: '/v1/generate', headers: json, payload: JSON.stringify({ id: 'a', prompt: 'x', max_tokens: 1 }) });
  assert.equal(notReady.statusCode, 503);
  assert.equal((await rejections(idle)).get('NOT_READY'), 1);
  // Other routes' errors are not refused generations.
  await worker.app.inject({ url: '/nowhere' });
  const after = await rejections(worker);
  const want = new Map([...atStart.keys()].map((k) => [k, cases.filter((c) => c.code === k).length]));
  assert.deepEqual(after, want);
  await runtime.scheduler.drain(0);
  await runtime.engine.dispose();
});

test('a merge-mode model serves its merged adapter only (named or by default), with the adapter in its weights', async () => {
  const { worker, runtime } = await app(config(mergedModel));
  const info = (await worker.app.inject({ url: '/v1/adapters' })).json() as { adapter_mode: string; adapters: Array<{ name: string }> };
  assert.equal(info.adapter_mode, 'merge');
  assert.equal(info.adapters.length, 1);
  const name = info.adapters[0]!.name;
  for (const adapter of [undefined, name]) {
    const r = await worker.app.inject({
      method: 'POST',
      url: '/v1/generate',
      payload: { id: 'm', prompt_ids: golden.with_lora[0]!.input_ids, max_tokens: 12, temperature: 0, ...(adapter ? { adapter } : {}) },
    });
    assert.deepEqual(events(r.body).flatMap((e) => (e.type === 'token' ? e.ids : [])), golden.with_lora[0]!.greedy_ids);
  }
  const other = await worker.app.inject({ method: 'POST', url: '/v1/generate', payload: { id: 'm', prompt: 'x', max_tokens: 1, adapter: 'legal-v2' } });
  assert.equal(other.statusCode, 404);
  await runtime.scheduler.drain(0);
  await runtime.engine.dispose();
});

test('start-up refuses a pickle adapter, a missing model and a broken manifest with one line naming the file', async () => {
  const bad = join(runtimeModel.root, 'bad-adapters', 'pickled');
  mkdirSync(bad, { recursive: true });
  writeFileSync(join(bad, 'adapter_config.json'), readFileSync(join(GOLDEN_TINY_DIR, 'lora-adapter', 'adapter_config.json')));
  writeFileSync(join(bad, 'adapter_model.bin'), 'not really a pickle');
  await assert.rejects(
    loadWorkerRuntime(config(runtimeModel, { adaptersDir: join(runtimeModel.root, 'bad-adapters') }), createWorkerMetrics()),
    /adapter_model\.bin: pickle adapters are not read.*safetensors/,
  );
  await assert.rejects(
    loadWorkerRuntime(config(runtimeModel, { modelDir: join(runtimeModel.root, 'nowhere') }), createWorkerMetrics()),
    /nowhere\/model\.json: missing/,
  );
  const broken = join(runtimeModel.root, 'broken');
  mkdirSync(broken);
  writeFileSync(join(broken, 'model.json'), JSON.stringify({ format: 'glm-legal-serve.model/1', name: 'x' }));
  await assert.rejects(loadWorkerRuntime(config(runtimeModel, { modelDir: broken }), createWorkerMetrics()), /broken\/model\.json: architecture/);
});
