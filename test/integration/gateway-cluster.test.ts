/**
 * GATEWAY_PROCESSES: the gateway CLI runs that many gateway processes on one port (Node
 * cluster). Both answer; a process that dies is replaced; SIGTERM stops them all, exit 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'undici';
import { startFakeWorker } from '../helpers/fake-worker-process.js';
import { until } from '../helpers/gateway.js';
import { startGatewayProcess } from '../helpers/gateway-process.js';
import { startPrivateRedis } from '../helpers/redis.js';

/** The pids of a process's children. */
function children(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map(Number);
}

/** How many scrapes of /metrics the process that answers this one has answered before (each counts its own). */
async function scrapesSeen(url: string): Promise<number> {
  const res = await request(`${url}/metrics`, { headers: { connection: 'close' } });
  const text = await res.body.text();
  const m = /^gateway_http_requests_total\{route="\/metrics",method="GET",status="200"[^}]*\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

test('GATEWAY_PROCESSES=2: two gateway processes on one port answer; a dead one is replaced; SIGTERM stops all', async (ctx) => {
  const redis = await startPrivateRedis();
  ctx.after(() => redis.stop());
  const worker = await startFakeWorker();
  ctx.after(() => worker.stop());
  const g = await startGatewayProcess({
    GATEWAY_PROCESSES: '2',
    GATEWAY_REDIS_URL: redis.url,
    GATEWAY_WORKERS_URLS: worker.url,
    GATEWAY_AUTH_ANONYMOUS: 'true',
    GATEWAY_LIMITS_ENABLED: 'false',
    GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '100',
    GATEWAY_KNOWLEDGE_BASE_PATH: '',
  });
  ctx.after(() => g.stop());
  const pid = g.child.pid!;
  assert.ok(await until(() => children(pid).length === 2, 10_000, 100), 'two gateway processes');
  // One process counts every scrape before this one, so its counts only rise; a count that does
  // not rise came from the other process.
  const counts: number[] = [];
  const another = await until(async () => {
    counts.push(await scrapesSeen(g.url));
    return counts.length > 1 && counts.at(-1)! <= counts.at(-2)!;
  }, 10_000, 20);
  assert.ok(another, `both processes answer on the one port (counts ${counts.slice(-12).join(',')})`);
  // Each process checks the worker's health on its own; once both have, every answer is the worker's.
  const answer = async () => {
    const res = await request(`${g.url}/v1/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', connection: 'close' },
      body: JSON.stringify({ messages: [{ role: 'user', content: '借钱不还怎么办？' }] }),
    });
    assert.equal(res.statusCode, 200);
    return ((await res.body.json()) as { degraded: unknown }).degraded === false;
  };
  assert.ok(await until(async () => (await Promise.all(Array.from({ length: 6 }, answer))).every(Boolean), 10_000, 100), 'answered by the worker');
  const [first] = children(pid);
  process.kill(first!, 'SIGKILL');
  assert.ok(await until(() => children(pid).length === 2 && !children(pid).includes(first!), 10_000, 100), 'the dead process is replaced');
  const kids = children(pid);
  assert.equal(await g.stop(), 0, g.output());
  for (const k of kids) assert.throws(() => process.kill(k, 0), 'every gateway process has exited');
});
