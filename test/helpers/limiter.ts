/**
 * A Limiter on a real Redis for tests: its own key prefix (so tests never meet), its own
 * metrics registry, limits from a partial configuration.
 */
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import assert from 'node:assert/strict';
import { after, before } from 'node:test';
import { startPrivateRedis, type PrivateRedis } from './redis.js';
import { createRedis, RedisConfigSchema, type RedisClient } from '../../src/gateway/plugins/redis.js';
import { until } from './gateway.js';
import { LimitsConfigSchema, type LimitsConfig } from '../../src/gateway/limiter/config.js';
import { Limiter } from '../../src/gateway/limiter/limiter.js';
import { createLimiterMetrics } from '../../src/gateway/limiter/metrics.js';
import type { Subject } from '../../src/gateway/limiter/policy.js';
import type { ScriptReply } from '../../src/gateway/limiter/bucket-script.js';

export interface TestLimiter {
  limiter: Limiter;
  registry: Registry;
  prefix: string;
  config: LimitsConfig;
  tenant(name: string, tier?: string): Subject;
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

/**
 * A gateway Redis client (createRedis), ready. The command timeout is generous unless given: on a
 * busy test machine a starved process sees 100 ms timers fire before replies it has not read, and
 * would send decisions to the outage policy. Connection errors are left to the tests to observe.
 */
export async function readyClient(config: Record<string, unknown>): Promise<RedisClient> {
  const client = createRedis(RedisConfigSchema.parse({ commandTimeoutMs: 2000, ...config }))!;
  client.on('error', () => {});
  assert.ok(await until(() => client.status === 'ready', 5000), 'Redis client ready');
  return client;
}

/**
 * A private redis-server and a ready client to it for the whole test file: started in `before`,
 * stopped in `after`. Read the fields inside tests (they are set once `before` has run).
 */
export function privateRedisForFile(): { server: PrivateRedis; redis: RedisClient } {
  const fixture = {} as { server: PrivateRedis; redis: RedisClient };
  before(async () => {
    fixture.server = await startPrivateRedis();
    fixture.redis = await readyClient({ url: fixture.server.url });
  });
  after(async () => {
    fixture.redis.disconnect();
    await fixture.server.stop();
  });
  return fixture;
}

export function testLimiter(redis: RedisClient | null, limits: unknown = {}): TestLimiter {
  const registry = new Registry();
  const config = LimitsConfigSchema.parse(limits);
  const prefix = `test:${randomBytes(4).toString('hex')}:`;
  const limiter = new Limiter({ config, redis, keyPrefix: prefix, metrics: createLimiterMetrics(registry) });
  return {
    limiter,
    registry,
    prefix,
    config,
    tenant: (name, tier = 'free') => limiter.policies.subject({ name, tier, anonymous: false }, '127.0.0.1'),
    metric: async (name, labels = {}) => {
      const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
      let sum = 0;
      for (const v of (metric?.values ?? []) as { value: number; labels: Record<string, string | number> }[]) {
        if (Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want)) sum += v.value;
      }
      return sum;
    },
  };
}

/** What tests and benchmarks send to look, not to limit. */
const LOOKING = ['info', 'config|resetstat', 'config|set', 'pttl', 'exists', 'keys', 'ping'];

export interface CommandStats {
  /** commands clients sent (the script's own commands and the ones used to look left out) */
  sent: number;
  /** script runs (EVAL + EVALSHA) */
  scripts: number;
}

/**
 * Commands since the last `CONFIG RESETSTAT` (INFO commandstats), which counts the commands a
 * script runs next to the clients' own: each run of the bucket script makes one TIME and, per
 * bucket, one GET and one SET or DEL, so those are taken out (`buckets` per run).
 */
export async function commandStats(redis: RedisClient, buckets = 2): Promise<CommandStats> {
  const info = await redis.info('commandstats');
  let total = 0;
  let scripts = 0;
  for (const m of info.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
    const name = m[1]!;
    const calls = Number(m[2]);
    if (name === 'eval' || name === 'evalsha') scripts += calls;
    if (!LOOKING.includes(name)) total += calls;
  }
  return { sent: total - scripts * (1 + 2 * buckets), scripts };
}

/** A bucket as the script keeps it (`"<level> <µs>"`), or null when the key is absent (a full bucket). */
export async function readBucket(redis: RedisClient, key: string): Promise<{ level: number; t: number } | null> {
  const value = await redis.get(key);
  if (value === null) return null;
  const m = /^(\d+) (\d+)$/.exec(value);
  if (!m) throw new Error(`${key} holds ${JSON.stringify(value)}, not "<level> <µs>"`);
  return { level: Number(m[1]), t: Number(m[2]) };
}

/** The script's flat reply, spelled out. */
export function decodeReply(reply: ScriptReply): { nowUs: number; allowed: boolean; buckets: { remaining: number; resetMs: number; waitMs: number }[] } {
  const buckets = [];
  for (let i = 2; i + 2 < reply.length; i += 3) buckets.push({ remaining: reply[i]!, resetMs: reply[i + 1]!, waitMs: reply[i + 2]! });
  return { nowUs: reply[0]!, allowed: reply[1] === 1, buckets };
}
