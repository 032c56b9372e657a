import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../../src/shared/net.js';
import type { RedisClient } from '../../src/gateway/plugins/redis.js';
import { until } from '../helpers/gateway.js';
import { readyClient, testLimiter } from '../helpers/limiter.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';

// A master, its replica and one Sentinel watching them (quorum 1), all private: the gateway is
// given only the Sentinel's address and the master's name.
let dir: string;
let master: PrivateRedis;
let replica: PrivateRedis;
let sentinel: ChildProcess;
let sentinelPort: number;
let client: RedisClient;

async function masterAddress(): Promise<string | null> {
  const s = new Redis({ port: sentinelPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  s.on('error', () => {});
  try {
    await s.connect();
    const addr = (await s.call('SENTINEL', 'get-master-addr-by-name', 'mymaster')) as string[] | null;
    return addr ? `${addr[0]}:${addr[1]}` : null;
  } catch {
    return null;
  } finally {
    s.disconnect();
  }
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'limiter-sentinel-'));
  master = await startPrivateRedis();
  // A replica saves the master's snapshot to disk while it syncs: into the test's folder.
  replica = await startPrivateRedis(undefined, ['--replicaof', '127.0.0.1', String(master.port), '--dir', dir]);
  sentinelPort = await freePort();
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${sentinelPort}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
      'sentinel down-after-milliseconds mymaster 500',
      'sentinel failover-timeout mymaster 5000',
      '',
    ].join('\n'),
  );
  sentinel = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
  assert.ok(await until(async () => (await masterAddress()) === `127.0.0.1:${master.port}`, 10000), 'the Sentinel knows the master');
  // The replica must be in sync, and known to the Sentinel, before a failover can promote it.
  const look = new Redis(replica.url);
  assert.ok(await until(async () => /master_link_status:up/.test(await look.info('replication')), 10000), 'replica in sync');
  look.disconnect();
  client = await readyClient({ url: '', sentinels: [`127.0.0.1:${sentinelPort}`], sentinelName: 'mymaster', connectTimeoutMs: 500 });
});

after(async () => {
  client?.disconnect();
  sentinel?.kill('SIGKILL');
  await replica?.stop();
  await master?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('through Sentinel the limiter uses the master it names, and the new one after a failover', async (ctx) => {
  const t = testLimiter(client, { outage: { policy: 'local', retryMs: 200 } });
  ctx.after(() => t.limiter.close());
  const acme = t.tenant('acme');
  const first = await t.limiter.admit(acme, { promptTokens: 3, maxTokens: 7 });
  assert.equal(first.source, 'redis');
  const onMaster = new Redis(master.url);
  assert.equal(await onMaster.exists(acme.keys.requests), 1, 'the bucket lives on the master');
  onMaster.disconnect();

  await master.stop();
  assert.ok(await until(async () => (await masterAddress()) === `127.0.0.1:${replica.port}`, 20000), 'the Sentinel promoted the replica');
  // Meanwhile decisions fall to the outage policy; once the client has found the new master,
  // they come from Redis again, with no restart.
  let last = await t.limiter.admit(acme);
  assert.ok(
    await until(async () => {
      last = await t.limiter.admit(acme);
      return last.source === 'redis';
    }, 20000),
    `back on Redis (last decision from ${last.source})`,
  );
  // A tenant first seen after the failover: its bucket can only have been written there.
  const globex = t.tenant('globex');
  assert.equal((await t.limiter.admit(globex)).source, 'redis');
  const onNew = new Redis(replica.url);
  assert.equal(await onNew.exists(globex.keys.requests), 1, 'the bucket is written on the promoted replica');
  onNew.disconnect();
});
