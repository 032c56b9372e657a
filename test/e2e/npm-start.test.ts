/**
 * `npm start` as a new user runs it: the gateway makes the demo model, supervises a real worker
 * on it, answers /v1/chat from the model (not the fallback), talks to the official openai client
 * on its defaults (`apiKey: 'none'`), exposes metrics promtool accepts on both processes, names
 * the served model in degraded answers, and stops cleanly on SIGTERM. The port comes in `PORT`,
 * as container platforms give it. Run in a temporary working directory so the demo model and its
 * adapter land there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { healthyWorkers, until } from '../helpers/gateway.js';
import { spawnNode } from '../helpers/node-process.js';
import { CLI_DIR } from '../helpers/paths.js';
import { promtoolCheckMetrics } from '../helpers/promtool.js';

const ADMIN_TOKEN = 'npm-start-admin-token';

/** The environment of a new user's shell: none of the project's own variables. */
function cleanEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([k]) => !/^(GATEWAY|WORKER)_/.test(k) && k !== 'PORT'));
}

test('npm start: demo model, a supervised real worker, the openai client on the defaults, clean metrics, a clean stop', async (ctx) => {
  const cwd = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const p = await spawnNode(join(CLI_DIR, 'start.js'), {
    cwd,
    env: {
      ...cleanEnv(process.env),
      GATEWAY_REDIS_URL: '',
      GATEWAY_LOG_LEVEL: 'warn',
      // More requests than the anonymous tier's burst of 5 come from this one address.
      GATEWAY_LIMITS_ALLOW_LIST: '127.0.0.1',
      GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(ADMIN_TOKEN),
      WORKER_LOG_LEVEL: 'warn',
      WORKER_DEVICE_INTRA_OP_THREADS: '1',
    },
    portEnv: 'PORT',
  });
  const base = p.url;
  ctx.after(async () => {
    // SIGTERM, so that the gateway stops its workers: a killed gateway would leave them running.
    await p.stop();
    rmSync(cwd, { recursive: true, force: true });
  });
  const up = await until(async () => (await healthyWorkers(base)) === 1, 60_000, 200);
  assert.ok(up, `the service came up with its worker on PORT: ${p.output()}`);
  assert.match(p.output(), /serving the demo model chatglm3-demo-tiny/);
  assert.ok(existsSync(join(cwd, 'models/demo-tiny/model.onnx')));
  assert.ok(existsSync(join(cwd, 'adapters/legal-demo/adapter_model.safetensors')), 'the demo adapter is written to adapters/');
  const res = await fetch(`${base}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], max_tokens: 8 }),
  });
  assert.equal(res.status, 200);
  const body = (await res.json()) as { model: string; degraded: unknown; usage: { completion_tokens: number } };
  assert.equal(body.degraded, false);
  assert.equal(body.model, 'chatglm3-demo-tiny');
  assert.ok(body.usage.completion_tokens >= 1);

  // The official client as its README shows it: it always sends `Authorization: Bearer none`.
  const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'none', maxRetries: 0 });
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id).sort(), ['chatglm3-demo-tiny', 'legal-demo']);
  const messages = [{ role: 'user' as const, content: '借钱不还怎么办？' }];
  const plain = await client.chat.completions.create({ model: 'legal-demo', messages, max_tokens: 8, temperature: 0 });
  assert.equal(plain.model, 'legal-demo');
  assert.ok(plain.usage!.completion_tokens >= 1 && plain.usage!.prompt_tokens > 0, JSON.stringify(plain.usage));
  const stream = await client.chat.completions.create({
    model: 'chatglm3-demo-tiny',
    messages,
    max_tokens: 8,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let chunks = 0;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let finish: string | null | undefined;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    finish ??= chunk.choices[0]?.finish_reason;
  }
  assert.ok(chunks >= 2);
  assert.ok(finish === 'stop' || finish === 'length', String(finish));
  assert.ok(usage && usage.completion_tokens >= 1, JSON.stringify(usage));

  // Both processes' metrics pass promtool without a finding.
  const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const workers = (await (await fetch(`${base}/admin/workers`, { headers: adminHeaders })).json()) as { workers: Array<{ url: string }> };
  assert.equal(workers.workers.length, 1);
  for (const url of [base, workers.workers[0]!.url]) {
    const text = await (await fetch(`${url}/metrics`)).text();
    assert.deepEqual(promtoolCheckMetrics(text), { status: 0, findings: '' }, `${url}/metrics`);
  }

  // A degraded answer names the model the worker serves, not the configured default.
  const set = await fetch(`${base}/admin/degrade`, {
    method: 'PUT',
    headers: { ...adminHeaders, 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'forced' }),
  });
  assert.equal(set.status, 200);
  const degraded = await client.chat.completions.create({ model: 'chatglm3-demo-tiny', messages, max_tokens: 8 });
  assert.equal(degraded.model, 'chatglm3-demo-tiny');
  const chat = (await (
    await fetch(`${base}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messages }) })
  ).json()) as { model: string; degraded: unknown };
  assert.ok(chat.degraded, JSON.stringify(chat));
  assert.equal(chat.model, 'chatglm3-demo-tiny');
  assert.equal(await p.stop(), 0, p.output());
});
