/**
 * A worker that dies under `npm start`: the streams it was serving end with an error (never a
 * hang, never a `[DONE]` that looks complete), the supervisor starts a new worker, and the
 * service answers from the model again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { healthyWorkers, sseData, until } from '../helpers/gateway.js';
import { spawnNode } from '../helpers/node-process.js';
import { CLI_DIR } from '../helpers/paths.js';

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

test('a killed worker: open streams end with an error, the supervisor restarts it, answers come back', async (ctx) => {
  const cwd = mkdtempSync(join(tmpdir(), 'worker-crash-'));
  const { WORKER_ADAPTERS_DIR: _unused, ...env } = process.env;
  const p = await spawnNode(join(CLI_DIR, 'start.js'), {
    cwd,
    env: {
      ...env,
      GATEWAY_REDIS_URL: '',
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '200',
      GATEWAY_SUPERVISOR_RESTART_MIN_MS: '100',
      WORKER_LOG_LEVEL: 'warn',
      WORKER_DEVICE_INTRA_OP_THREADS: '1',
    },
    portEnv: 'GATEWAY_PORT',
  });
  const { child, url: base } = p;
  const healthy = async () => (await healthyWorkers(base)) === 1;
  ctx.after(async () => {
    child.kill('SIGKILL');
    rmSync(cwd, { recursive: true, force: true });
  });
  assert.ok(await until(healthy, 60_000, 100), `the service came up with its worker: ${p.output()}`);
  const [workerPid] = childPids(child.pid!);
  assert.ok(workerPid, 'the supervisor runs one worker process');

  // Long answers, so that they are still streaming when the worker dies.
  const streams = Array.from({ length: 4 }, async () => {
    const res = await fetch(`${base}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'chatglm3-demo-tiny',
        stream: true,
        max_tokens: 900,
        messages: [{ role: 'user', content: '劳动合同到期后公司不续签，需要支付经济补偿吗？' }],
      }),
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let body = '';
    let first: () => void = () => {};
    const firstChunk = new Promise<void>((resolve) => (first = resolve));
    const done = (async () => {
      for (;;) {
        const { value, done: end } = await reader.read();
        if (end) return body;
        body += decoder.decode(value, { stream: true });
        if (body.includes('data: ')) first();
      }
    })();
    return { firstChunk, done };
  });
  const opened = await Promise.all(streams);
  await Promise.all(opened.map((s) => s.firstChunk));
  process.kill(workerPid!, 'SIGKILL');

  const bodies = await Promise.race([
    Promise.all(opened.map((s) => s.done)),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error('a stream hung after the worker died')), 20_000)),
  ]);
  const cut = bodies.filter((b) => !b.includes('data: [DONE]'));
  assert.ok(cut.length >= 1, 'at least one stream was still open when the worker died');
  for (const body of cut) {
    const last = sseData(body).at(-1) as { error?: { code: string } };
    assert.ok(last.error, `a cut stream ends with an error payload: ${body.slice(-300)}`);
  }

  assert.ok(
    await until(async () => {
      const pids = childPids(child.pid!);
      return pids.length === 1 && pids[0] !== workerPid && (await healthy());
    }, 30_000, 100),
    `a new worker was started and is healthy: ${p.output()}`,
  );
  const res = await fetch(`${base}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], max_tokens: 4 }),
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { degraded: unknown }).degraded, false);

  assert.equal(await p.stop(), 0, p.output());
});
