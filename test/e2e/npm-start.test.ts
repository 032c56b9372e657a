/**
 * `npm start` as a new user runs it: the gateway makes the demo model, supervises a real worker
 * on it, answers /v1/chat from the model (not the fallback), and stops cleanly on SIGTERM.
 * Run in a temporary working directory so the demo model lands there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { healthyWorkers, until } from '../helpers/gateway.js';
import { spawnNode } from '../helpers/node-process.js';
import { CLI_DIR } from '../helpers/paths.js';

function withoutAdaptersDir(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const { WORKER_ADAPTERS_DIR: _unused, ...rest } = env;
  return rest;
}

test('npm start: demo model, a supervised real worker, an answer, a clean stop', async () => {
  const cwd = mkdtempSync(join(tmpdir(), 'npm-start-'));
  const p = await spawnNode(join(CLI_DIR, 'start.js'), {
    cwd,
    env: { ...withoutAdaptersDir(process.env), GATEWAY_REDIS_URL: '', GATEWAY_LOG_LEVEL: 'warn', WORKER_LOG_LEVEL: 'warn', WORKER_DEVICE_INTRA_OP_THREADS: '1' },
    portEnv: 'GATEWAY_PORT',
  });
  const base = p.url;
  try {
    const up = await until(async () => (await healthyWorkers(base)) === 1, 60_000, 200);
    assert.ok(up, `the service came up with its worker: ${p.output()}`);
    assert.match(p.output(), /serving the demo model chatglm3-demo-tiny/);
    assert.ok(existsSync(join(cwd, 'models/demo-tiny/model.onnx')));
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

    // The demo adapter is served beside the demo model, and chosen per request.
    const models = (await (await fetch(`${base}/v1/models`)).json()) as { data: Array<{ id: string }> };
    assert.deepEqual(models.data.map((m) => m.id).sort(), ['chatglm3-demo-tiny', 'legal-demo']);
    const tuned = await fetch(`${base}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], adapter: 'legal-demo', max_tokens: 8, temperature: 0 }),
    });
    assert.equal(tuned.status, 200);
    const tunedBody = (await tuned.json()) as { adapter: string | null; degraded: unknown };
    assert.equal(tunedBody.adapter, 'legal-demo');
    assert.equal(tunedBody.degraded, false);
    assert.equal(await p.stop(), 0, p.output());
  } finally {
    p.child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  }
});
