import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Supervisor, restartDelay } from '../../src/gateway/supervisor.js';
import { FAKE_WORKER_JS } from '../helpers/fake-worker-process.js';
import { sha256Hex } from '../../src/gateway/plugins/auth.js';
import { TEST_ADMIN_TOKEN, healthyWorkers, sseData, until } from '../helpers/gateway.js';
import { spawnNode } from '../helpers/node-process.js';
import { CLI_DIR } from '../helpers/paths.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readyz(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('restart delay doubles per crash up to the cap', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => restartDelay(n, 100, 1000)), [100, 200, 400, 800, 1000, 1000]);
});

test('the supervisor runs N workers on free ports, restarts a crashed one, and stops them all', async (ctx) => {
  const changes: string[][] = [];
  const sup = new Supervisor({
    count: 2,
    command: process.execPath,
    args: [FAKE_WORKER_JS],
    host: '127.0.0.1',
    restartMinMs: 50,
    restartMaxMs: 1000,
    stableMs: 60_000,
    stopTimeoutMs: 2000,
    stdio: 'ignore',
    onChange: (urls) => changes.push(urls),
    log: quiet,
  });
  ctx.after(async () => {
    const pids = sup.pids();
    await sup.stop();
    assert.ok(pids.every((p) => !alive(p)), 'every worker has exited');
  });
  await sup.start();
  const urls = sup.urls();
  assert.equal(urls.length, 2);
  assert.notEqual(urls[0], urls[1]);
  assert.ok(await until(async () => (await Promise.all(urls.map(readyz))).every(Boolean), 5000), 'both workers answer');
  const [victim] = sup.pids();
  process.kill(victim!, 'SIGKILL');
  assert.ok(await until(() => sup.restarts === 1 && sup.urls().length === 2 && sup.pids().length === 2, 5000), 'restarted');
  assert.ok(!sup.pids().includes(victim!));
  assert.ok(await until(async () => (await Promise.all(sup.urls().map(readyz))).every(Boolean), 5000), 'the new worker answers');
  assert.ok(changes.some((c) => c.length === 1), 'the crashed worker left the pool while it was down');
});

test('a worker that keeps crashing is restarted with growing delays', async (ctx) => {
  const delays: number[] = [];
  const sup = new Supervisor({
    count: 1,
    command: process.execPath,
    args: [FAKE_WORKER_JS],
    env: { FAKE_WORKER_SCRIPT: JSON.stringify({ exitAfterMs: 1 }) },
    host: '127.0.0.1',
    restartMinMs: 40,
    restartMaxMs: 160,
    stableMs: 60_000,
    stopTimeoutMs: 2000,
    stdio: 'ignore',
    onChange: () => {},
    log: { ...quiet, warn: (obj: object) => delays.push((obj as { restartInMs: number }).restartInMs) },
  });
  ctx.after(() => sup.stop());
  await sup.start();
  assert.ok(await until(() => delays.length >= 4, 15000), `crashes seen: ${delays.length}`);
  assert.deepEqual(delays.slice(0, 4), [40, 80, 160, 160]);
});

test('npm start: supervised workers, and SIGTERM drains an open stream, stops the workers and exits 0', async (ctx) => {
  const p = await spawnNode(join(CLI_DIR, 'start.js'), {
    env: {
      ...process.env,
      GATEWAY_REDIS_URL: '',
      GATEWAY_LOG_LEVEL: 'warn',
      GATEWAY_SUPERVISOR_WORKERS: '1',
      GATEWAY_SUPERVISOR_COMMAND: process.execPath,
      GATEWAY_SUPERVISOR_ARGS: JSON.stringify([FAKE_WORKER_JS]),
      GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '100',
      GATEWAY_DRAIN_TIMEOUT_MS: '5000',
      GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(TEST_ADMIN_TOKEN),
      FAKE_WORKER_SCRIPT: JSON.stringify({ tokenDelayMs: 120 }),
    },
    portEnv: 'GATEWAY_PORT',
  });
  const base = p.url;
  ctx.after(() => {
      p.child.kill('SIGKILL');
  });
  assert.ok(await until(async () => (await healthyWorkers(base)) === 1, 15000, 100), `the gateway and its worker come up: ${p.output()}`);
  assert.match(p.output(), /1 local worker\(s\)/);
  const admin = { authorization: `Bearer ${TEST_ADMIN_TOKEN}` };
  const workers = (await (await fetch(`${base}/admin/workers`, { headers: admin })).json()) as { workers: Array<{ url: string }> };
  assert.equal(workers.workers.length, 1);
  const workerPid = ((await (await fetch(`${workers.workers[0]!.url}/_stats`)).json()) as { pid: number }).pid;
  assert.ok(alive(workerPid));

  const streamed = fetch(`${base}/v1/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }], stream: true }),
  });
  const res = await streamed;
  assert.equal(res.status, 200, 'anonymous access is on for npm start');
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  const stopped = p.stop();
  let text = new TextDecoder().decode(first.value);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  const events = sseData(text);
  assert.equal(events.at(-1), '[DONE]', 'the open stream finished');
  assert.equal(events.filter((e) => typeof e === 'object' && e !== null && 'delta' in e).length, 9);
  assert.equal(await stopped, 0, p.output());
  await assert.rejects(fetch(`${base}/healthz`), 'no longer listening');
  assert.ok(!alive(workerPid), 'the supervised worker was stopped');
});
