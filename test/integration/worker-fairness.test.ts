/**
 * Fair admission end to end: a real gateway in front of a real worker with the simulated engine
 * (20 ms steps, 4 rows). One tenant floods with 24 streams of 64 tokens; another asks one
 * question. Under `fair` the light tenant's first token comes within 2 s (the next free row);
 * under `fcfs` it waits behind the flood (six waves of 1.3 s).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { healthyWorkers, until } from '../helpers/gateway.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { demoTinyModel, startSimWorker } from '../helpers/worker-process.js';

const KEYS = { heavy: 'sk-heavy-tenant-0123456789', light: 'sk-light-tenant-0123456789' };

/** Time to the first streamed content chunk of one chat answer, in ms from the request. */
async function firstToken(url: string, key: string, maxTokens: number, signal?: AbortSignal): Promise<number> {
  const t0 = performance.now();
  const res = await request(`${url}/v1/chat/completions`, {
    signal,
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chatglm3-demo-tiny', stream: true, max_tokens: maxTokens, messages: [{ role: 'user', content: '劳动合同到期不续签有补偿吗？' }] }),
  });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers['x-degraded'], undefined, 'answered by the worker');
  let first = 0;
  try {
    for await (const chunk of res.body) {
      if (first === 0 && String(chunk).includes('"content":"') && !String(chunk).includes('"content":""')) first = performance.now() - t0;
    }
  } catch (err) {
    if (!signal?.aborted) throw err;
  }
  return first;
}

async function lightWait(policy: 'fair' | 'fcfs'): Promise<number> {
  const model = await demoTinyModel();
  const worker = await startSimWorker(model, {
    ttftMs: 20,
    itlMs: 20,
    env: { WORKER_SCHEDULER_MAX_RUNNING_SEQUENCES: '4', WORKER_SCHEDULER_POLICY: policy },
  });
  const gateway = await startGatewayProcess({
    GATEWAY_REDIS_URL: '',
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_KNOWLEDGE_BASE_PATH: '',
    GATEWAY_LIMITS_ENABLED: 'false',
    GATEWAY_AUTH_KEYS: JSON.stringify([
      { sha256: sha256Hex(KEYS.heavy), tenant: 'heavy', tier: 'free' },
      { sha256: sha256Hex(KEYS.light), tenant: 'light', tier: 'free' },
    ]),
  });
  try {
    assert.ok(await until(async () => (await healthyWorkers(gateway.url)) === 1, 10_000, 50), 'the gateway sees its worker');
    const stop = new AbortController();
    const flood = Array.from({ length: 24 }, () => firstToken(gateway.url, KEYS.heavy, 64, stop.signal).catch(() => 0));
    // The flood is queued at the worker before the light tenant asks.
    await new Promise((r) => setTimeout(r, 300));
    const light = await firstToken(gateway.url, KEYS.light, 8);
    // The flood has made its point: cancelled, the rest of it need not be generated.
    stop.abort();
    await Promise.all(flood);
    return light;
  } finally {
    await gateway.stop();
    await worker.stop();
    model.cleanup();
  }
}

test('one tenant floods with 24 long streams: under fair admission another tenant’s first token comes within 2 s, under fcfs it waits for the flood', async () => {
  const fair = await lightWait('fair');
  const fcfs = await lightWait('fcfs');
  assert.ok(fair > 0 && fair < 2000, `fair: ${fair.toFixed(0)} ms`);
  assert.ok(fcfs > 4000, `fcfs: ${fcfs.toFixed(0)} ms (behind the flood)`);
});
