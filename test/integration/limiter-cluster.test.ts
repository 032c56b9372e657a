import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { createRedis, RedisConfigSchema, type RedisClient } from '../../src/gateway/plugins/redis.js';
import { defineBucketScript, takeBuckets } from '../../src/gateway/limiter/bucket-script.js';
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis.js';
import { until } from '../helpers/gateway.js';
import { testLimiter } from '../helpers/limiter.js';

const ANONYMOUS = { anonymous: { requests: { perMinute: 1, burst: 1 }, tokens: { perMinute: 1, burst: 1 } } };

// A one-node Redis Cluster owning every slot: it enforces the same-slot rule like a big one.
let dir: string;
let server: PrivateRedis;
let cluster: RedisClient;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'limiter-cluster-'));
  server = await startPrivateRedis(undefined, ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'), '--cluster-announce-ip', '127.0.0.1', '--dir', dir]);
  const admin = new Redis(server.url);
  await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
  assert.ok(await until(async () => /cluster_state:ok/.test(String(await admin.call('CLUSTER', 'INFO'))), 5000));
  admin.disconnect();
  cluster = createRedis(RedisConfigSchema.parse({ clusterNodes: [`127.0.0.1:${server.port}`] }))!;
  cluster.on('error', () => {});
  assert.ok(await until(() => cluster.status === 'ready', 5000));
});
after(async () => {
  cluster.disconnect();
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("a tenant's buckets and one global key in one call break Cluster's same-slot rule", async () => {
  defineBucketScript(cluster);
  const specs = [
    { name: 'requests' as const, key: 'chat:ratelimit:{t:acme}:requests', burst: 5, perMinute: 5, unit: 'requests' as const },
    { name: 'global-requests' as const, key: 'chat:ratelimit:{global}:requests', burst: 5, perMinute: 5, unit: 'requests' as const },
  ];
  // Refused by Redis (CROSSSLOT) or, with auto-pipelining, by ioredis before sending.
  await assert.rejects(takeBuckets(cluster, specs, { requests: 1, tokens: 0, refund: 0 }), /CROSSSLOT|same slot/);
});

test('on Cluster the limiter keeps the tenant tag when there are no global buckets', async (ctx) => {
  const t = testLimiter(cluster, { tiers: { ...ANONYMOUS, free: { requests: { perMinute: 1, burst: 2 }, tokens: { perMinute: 1, burst: 100 } } } });
  ctx.after(() => t.limiter.close());
  const s = t.tenant('acme');
  assert.match(s.keys.requests, /\{t:acme\}:requests$/);
  const decisions = [];
  for (let i = 0; i < 3; i++) decisions.push(await t.limiter.admit(s, { promptTokens: 5, maxTokens: 5 }));
  assert.deepEqual(decisions.map((d) => [d.source, d.allowed]), [['redis', true], ['redis', true], ['redis', false]]);
});

test('with global buckets each tenant lands in a slice next to its share of them', async (ctx) => {
  const t = testLimiter(cluster, {
    tiers: { ...ANONYMOUS, free: { requests: { perMinute: 1, burst: 100 }, tokens: { perMinute: 1, burst: 1000 } } },
    global: { requests: { perMinute: 1, burst: 40 }, clusterSlices: 4 },
  });
  ctx.after(() => t.limiter.close());
  assert.deepEqual(t.limiter.policies.global.requests, { perMinute: 1, burst: 10 }, '40 over 4 slices');
  const bySlice = new Map<string, number>();
  for (let i = 0; i < 200; i++) {
    const s = t.tenant(`tenant-${i % 20}`);
    const slice = /\{(s\d)\}/.exec(s.keys.requests)![1]!;
    assert.equal(/\{(s\d)\}/.exec(s.keys.globalRequests)![1], slice);
    const d = await t.limiter.admit(s, { promptTokens: 1, maxTokens: 1 });
    assert.equal(d.source, 'redis');
    if (d.allowed) bySlice.set(slice, (bySlice.get(slice) ?? 0) + 1);
    else assert.equal(d.limitedBy, 'global-requests');
  }
  assert.equal(bySlice.size, 4, 'twenty tenants cover the four slices');
  for (const [slice, n] of bySlice) assert.equal(n, 10, `slice ${slice} admitted its share`);
});
