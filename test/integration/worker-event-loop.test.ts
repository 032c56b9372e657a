/**
 * The worker's event loop stays free while the model runs (the engine runs in a worker thread):
 * a real worker process on the golden tiny model, widened to an 8192-token context so that one
 * prefill run of a 4000-token prompt takes a large part of a second.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { GenerateEvent } from '../../src/protocol/schemas.js';
import { exportTinyModel, generate, metric, startWorker, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

let model: TinyModel;
let worker: WorkerProcess;
const PROMPT = Array.from({ length: 4000 }, (_, i) => 10 + ((i * 131) % 600));

before(async () => {
  model = await exportTinyModel('none', 8192);
  worker = await startWorker({
    WORKER_MODEL_DIR: model.modelDir,
    WORKER_ADAPTERS_DIR: model.adaptersDir,
    // The whole prompt in one model run.
    WORKER_SCHEDULER_PREFILL_CHUNK_TOKENS: '8192',
    WORKER_SCHEDULER_MAX_KV_TOKENS: '65536',
    // Every prefill here must be the long one: a cached prompt would take a few milliseconds.
    WORKER_PREFIX_CACHE_MAX_MB: '0',
  });
});

after(async () => {
  await worker?.stop();
  model?.cleanup();
});

async function healthzMs(): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${worker.url}/healthz`);
  await res.text();
  assert.equal(res.status, 200);
  return performance.now() - t0;
}

test('/healthz answers within 50 ms while a long prefill runs', async () => {
  await healthzMs(); // the connection
  let started = false;
  let firstToken = false;
  const during: number[] = [];
  const gen = generate(
    worker.url,
    { id: 'long', prompt_ids: PROMPT, max_tokens: 1, temperature: 0 },
    {
      onEvent: (e) => {
        if (e.type === 'start') started = true;
        if (e.type === 'token') firstToken = true;
      },
    },
  );
  while (!started) await new Promise((r) => setTimeout(r, 1));
  while (!firstToken) {
    const ms = await healthzMs();
    if (!firstToken) during.push(ms);
    await new Promise((r) => setTimeout(r, 10));
  }
  const { events } = await gen;
  const end = events.at(-1)!;
  assert.equal(end.type, 'end');
  const prefillMs = (end as Extract<GenerateEvent, { type: 'end' }>).timings.prefill_ms;
  assert.ok(prefillMs >= 150, `the prefill took ${prefillMs} ms: too short to show anything`);
  assert.ok(during.length >= 3, `only ${during.length} health checks during the prefill`);
  assert.ok(Math.max(...during) < 50, `health checks during the prefill took ${during.map((m) => m.toFixed(1)).join(', ')} ms`);
});

test('a client that disconnects during a model run is cancelled, and its row freed, when that run ends', async () => {
  const cancelledBefore = (await metric(worker.url, 'worker_requests_total{finish_reason="cancelled"')) || 0;
  const decodedBefore = await metric(worker.url, 'worker_decode_tokens_total');
  const controller = new AbortController();
  let startedAt = 0;
  const gen = generate(
    worker.url,
    { id: 'gone', prompt_ids: PROMPT, max_tokens: 2000, temperature: 0 },
    {
      signal: controller.signal,
      onEvent: (e) => {
        if (e.type === 'start') startedAt = performance.now();
      },
    },
  );
  while (!startedAt) await new Promise((r) => setTimeout(r, 1));
  await new Promise((r) => setTimeout(r, 50));
  controller.abort();
  await gen;
  const abortedAt = performance.now();
  let cancelled = cancelledBefore;
  while (cancelled === cancelledBefore && performance.now() - abortedAt < 10_000) {
    cancelled = (await metric(worker.url, 'worker_requests_total{finish_reason="cancelled"')) || 0;
    if (cancelled === cancelledBefore) await new Promise((r) => setTimeout(r, 5));
  }
  const freedAfter = performance.now() - startedAt;
  assert.equal(cancelled, cancelledBefore + 1);
  assert.equal(await metric(worker.url, 'worker_running_sequences'), 0);
  assert.equal(await metric(worker.url, 'worker_kv_tokens_in_use'), 0);
  // Seen during the prefill run: not one decode step ran for it (2000 were asked for).
  assert.equal(await metric(worker.url, 'worker_decode_tokens_total'), decodedBefore);
  assert.ok(freedAfter < 5000, `freed ${freedAfter.toFixed(0)} ms after the start`);
});
