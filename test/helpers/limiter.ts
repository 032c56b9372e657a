/**
 * A Limiter on a real Redis for tests: its own key prefix (so tests never meet), its own
 * metrics registry, limits from a partial configuration.
 */
import { randomBytes } from 'node:crypto';
import { Registry } from 'prom-client';
import type { RedisClient } from '../../src/gateway/redis.js';
import { LimitsConfigSchema, type LimitsConfig } from '../../src/gateway/limiter/config.js';
import { Limiter } from '../../src/gateway/limiter/limiter.js';
import { createLimiterMetrics } from '../../src/gateway/limiter/metrics.js';
import type { Subject } from '../../src/gateway/limiter/policy.js';

export interface TestLimiter {
  limiter: Limiter;
  registry: Registry;
  prefix: string;
  config: LimitsConfig;
  tenant(name: string, tier?: string): Subject;
  /** Sum of a metric's samples whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
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

/** Commands the bucket script runs inside Redis; commandstats counts them next to the clients' own. */
const SCRIPT_INTERNAL = ['time', 'hmget', 'hset', 'del', 'pexpire'];
/** What tests and benchmarks send to look, not to limit. */
const LOOKING = ['info', 'config|resetstat', 'config|set', 'hgetall', 'pttl', 'exists', 'keys', 'ping'];

export interface CommandStats {
  /** commands clients sent, apart from the ones used to look */
  sent: number;
  /** script runs (EVAL + EVALSHA) */
  scripts: number;
  /** TIME calls: one per script run, which is how the script-internal commands are told apart */
  time: number;
}

/** Commands since the last `CONFIG RESETSTAT` (INFO commandstats). */
export async function commandStats(redis: RedisClient): Promise<CommandStats> {
  const info = await redis.info('commandstats');
  const stats: CommandStats = { sent: 0, scripts: 0, time: 0 };
  for (const m of info.matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
    const name = m[1]!;
    const calls = Number(m[2]);
    if (name === 'time') stats.time = calls;
    if (name === 'eval' || name === 'evalsha') stats.scripts += calls;
    if (!SCRIPT_INTERNAL.includes(name) && !LOOKING.includes(name)) stats.sent += calls;
  }
  return stats;
}
