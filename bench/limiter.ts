/**
 * `npm run bench:limiter [-- --requests N --connections C --rounds R --tenants T]`: what the rate
 * limiter costs, measured side by side in one run on a private redis-server:
 *   - Redis script calls per admitted request (INFO commandstats before and after; at most 1, and
 *     below 1 under load with admission batching), and the calls sent after the load (refunds of
 *     tenants gone quiet);
 *   - latency at p50 and p99 of the same route on gateway processes that differ only in
 *     `limits.enabled` (and, for a third, `limits.batch.enabled`), in alternating rounds, and
 *     what the limiter adds; commands per admitted request with admission batching and without;
 *   - a replayed trace: the same admissions in the same order through a batching limiter (bursts
 *     sent at once, so they batch) and a limiter that sends one call each, one at a time; the
 *     decisions must be the same, request for request.
 * Routes: `GET /v1/models` (the request bucket) and `POST /v1/chat` (request and token buckets in
 * one call, the reservation refunded when the answer ends). The answers come from the canned
 * fallback (degrade mode `forced`), so no worker time blurs the difference; every answer then
 * refunds its whole reservation, which rides on the tenant's next request.
 * Prints a table, then one JSON line.
 *
 * The load generator is a closed loop over undici written here: autocannon records whole
 * milliseconds, and the limiter adds a fraction of one.
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { sha256Hex } from '../src/gateway/plugins/auth.js';
import { sleep } from '../src/shared/net.js';
import { startGatewayProcess, type GatewayProcess } from '../test/helpers/gateway-process.js';
import { commandStats } from '../test/helpers/limiter.js';
import { startPrivateRedis } from '../test/helpers/redis.js';
import { cpuMs, percentile } from './measure.js';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { LimitsConfigSchema } from '../src/gateway/limiter/config.js';
import { Limiter } from '../src/gateway/limiter/limiter.js';
import { createLimiterMetrics } from '../src/gateway/limiter/metrics.js';
import { createRedis, RedisConfigSchema } from '../src/gateway/plugins/redis.js';

const { values: args } = parseArgs({
  options: {
    requests: { type: 'string', default: '10000' },
    connections: { type: 'string', default: '16' },
    rounds: { type: 'string', default: '3' },
    tenants: { type: 'string', default: '8' },
  },
});
const REQUESTS = Number(args.requests);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const TENANTS = Number(args.tenants);

const keys = Array.from({ length: TENANTS }, (_, i) => `sk-bench-tenant-${i}-0123456789`);
const HUGE = { perMinute: 1_000_000_000, burst: 100_000_000 };

interface Route {
  name: string;
  method: 'GET' | 'POST';
  path: string;
  body?: string;
}
const ROUTES: Route[] = [
  { name: 'GET /v1/models', method: 'GET', path: '/v1/models' },
  {
    name: 'POST /v1/chat',
    method: 'POST',
    path: '/v1/chat',
    body: JSON.stringify({ messages: [{ role: 'user', content: '朋友借钱不还怎么办？' }], max_tokens: 256 }),
  },
];

/** `total` requests from `connections` loops; latencies in ms, and the statuses seen. */
async function load(pool: Pool, route: Route, total: number, connections: number): Promise<{ latencies: number[]; seconds: number; statuses: Map<number, number> }> {
  const latencies: number[] = [];
  const statuses = new Map<number, number>();
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (next < total) {
        const i = next++;
        const t0 = performance.now();
        const res = await pool.request({
          method: route.method,
          path: route.path,
          headers: { authorization: `Bearer ${keys[i % keys.length]}`, ...(route.body ? { 'content-type': 'application/json' } : {}) },
          body: route.body,
        });
        await res.body.dump();
        latencies.push(performance.now() - t0);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
      }
    }),
  );
  return { latencies, seconds: (performance.now() - started) / 1000, statuses };
}

const redis = await startPrivateRedis();
const look = new Redis(redis.url);
const common = {
  GATEWAY_REDIS_URL: redis.url,
  GATEWAY_AUTH_KEYS: JSON.stringify(keys.map((k, i) => ({ sha256: sha256Hex(k), tenant: `tenant-${i}`, tier: 'bench' }))),
  GATEWAY_LIMITS_TIERS: JSON.stringify({ bench: { requests: HUGE, tokens: HUGE } }),
  GATEWAY_DEGRADE_MODE: 'forced',
  GATEWAY_DEGRADE_SOURCE: 'canned',
  GATEWAY_KNOWLEDGE_BASE_PATH: '',
  GATEWAY_LOG_LEVEL: 'error',
  // A saturated two-core machine answers Redis late; a short command timeout would send
  // decisions to the outage policy, which is not what is measured here.
  GATEWAY_REDIS_COMMAND_TIMEOUT_MS: '5000',
};
type Side = 'on' | 'unbatched' | 'off';
const SIDES: Side[] = ['on', 'unbatched', 'off'];
const gateways: Record<Side, GatewayProcess> = {
  on: await startGatewayProcess({ ...common, GATEWAY_LIMITS_ENABLED: 'true' }),
  unbatched: await startGatewayProcess({ ...common, GATEWAY_LIMITS_ENABLED: 'true', GATEWAY_LIMITS_BATCH_ENABLED: 'false' }),
  off: await startGatewayProcess({ ...common, GATEWAY_LIMITS_ENABLED: 'false' }),
};
const pools = Object.fromEntries(SIDES.map((s) => [s, new Pool(gateways[s].url, { connections: CONNECTIONS })])) as Record<Side, Pool>;

interface Measured {
  route: string;
  limiter: Side;
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  /** gateway CPU per request, µs */
  cpuUs: number;
  statuses: Record<string, number>;
}
const measured: Measured[] = [];
const commands: { route: string; batched: boolean; admitted: number; scripts: number; afterLoad: number; redisUsPerScript: number }[] = [];

/** Time Redis spent per bucket-script run since the last RESETSTAT, µs. */
async function redisUsPerScript(): Promise<number> {
  const m = /^cmdstat_evalsha:calls=(\d+),usec=(\d+)/m.exec(await look.info('commandstats'));
  return m ? Number(m[2]) / Number(m[1]) : Number.NaN;
}

interface Replay {
  admissions: number;
  tenants: number;
  admitted: number;
  same: boolean;
  differences: number;
  calls: { unbatched: number; batched: number };
}
let replay: Replay = { admissions: 0, tenants: 0, admitted: 0, same: false, differences: 0, calls: { unbatched: 0, batched: 0 } };

/**
 * The same admissions in the same order through two limiters on fresh keys: one sends a call
 * per request and waits for it; the other gets each burst at once, so its admissions leave in
 * batches. Buckets refill one token a minute (so the few seconds of the run refill no whole
 * token) and are small enough that many requests are refused: any batching mistake would show.
 */
async function replayTrace(): Promise<Replay> {
  const tiers = { small: { requests: { perMinute: 1, burst: 40 }, tokens: { perMinute: 1, burst: 4000 } } };
  const TRACE_TENANTS = 12;
  // Seeded: bursts of 1..64 admissions over the tenants, with costs of 0..400 tokens.
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const bursts: Array<Array<{ tenant: number; prompt: number; max: number }>> = [];
  for (let b = 0; b < 80; b++) {
    bursts.push(Array.from({ length: 1 + Math.floor(rand() * 64) }, () => ({ tenant: Math.floor(rand() * TRACE_TENANTS), prompt: Math.floor(rand() * 100), max: Math.floor(rand() * 300) })));
  }
  const run = async (batched: boolean, prefix: string) => {
    const client = createRedis(RedisConfigSchema.parse({ url: redis.url, commandTimeoutMs: 10_000 }), 'bench-replay')!;
    while (client.status !== 'ready') await sleep(10);
    const limiter = new Limiter({
      config: LimitsConfigSchema.parse({ tiers, batch: { enabled: batched, maxSize: 1024 } }),
      redis: client,
      keyPrefix: prefix,
      metrics: createLimiterMetrics(new Registry()),
    });
    const before = (await commandStats(look)).scripts;
    const decisions: boolean[] = [];
    for (const burst of bursts) {
      const subject = (t: number) => limiter.policies.subject({ name: `replay-${t}`, tier: 'small', anonymous: false }, '127.0.0.1');
      if (batched) {
        const d = await Promise.all(burst.map((a) => limiter.admit(subject(a.tenant), { promptTokens: a.prompt, maxTokens: a.max })));
        decisions.push(...d.map((x) => x.allowed));
      } else {
        for (const a of burst) decisions.push((await limiter.admit(subject(a.tenant), { promptTokens: a.prompt, maxTokens: a.max })).allowed);
      }
    }
    const calls = (await commandStats(look)).scripts - before;
    await limiter.close();
    client.disconnect();
    return { decisions, calls };
  };
  const one = await run(false, 'bench-replay-single:');
  const many = await run(true, 'bench-replay-batched:');
  const differences = one.decisions.filter((d, i) => d !== many.decisions[i]).length;
  return {
    admissions: one.decisions.length,
    tenants: TRACE_TENANTS,
    admitted: one.decisions.filter(Boolean).length,
    same: differences === 0 && one.decisions.length === many.decisions.length,
    differences,
    calls: { unbatched: one.calls, batched: many.calls },
  };
}

try {
  for (const route of ROUTES) {
    // Warm every side (JIT, connections, the script cache), then measure in alternating rounds.
    for (const side of SIDES) await load(pools[side], route, Math.min(2000, REQUESTS), CONNECTIONS);
    await sleep(300); // refunds of the warm-up are sent
    const all = { on: [] as number[], unbatched: [] as number[], off: [] as number[] };
    const seconds = { on: 0, unbatched: 0, off: 0 };
    const cpu = { on: 0, unbatched: 0, off: 0 };
    const statuses = { on: new Map<number, number>(), unbatched: new Map<number, number>(), off: new Map<number, number>() };
    const admitted = { on: 0, unbatched: 0 };
    const scripts = { on: 0, unbatched: 0 };
    await look.config('RESETSTAT');
    for (let round = 0; round < ROUNDS; round++) {
      for (const side of round % 2 === 0 ? SIDES : [...SIDES].reverse()) {
        const before = side !== 'off' ? await commandStats(look) : null;
        const cpu0 = cpuMs(gateways[side].child.pid!);
        const r = await load(pools[side], route, REQUESTS, CONNECTIONS);
        cpu[side] += cpuMs(gateways[side].child.pid!) - cpu0;
        if (before && side !== 'off') {
          const after = await commandStats(look);
          scripts[side] += after.scripts - before.scripts;
          admitted[side] += r.statuses.get(200) ?? 0;
        }
        all[side].push(...r.latencies);
        seconds[side] += r.seconds;
        for (const [code, n] of r.statuses) statuses[side].set(code, (statuses[side].get(code) ?? 0) + n);
      }
    }
    const usPerScript = await redisUsPerScript();
    const during = (await commandStats(look)).scripts;
    await sleep(500); // the refunds left waiting are sent alone
    // Script calls after the measured rounds: refunds of tenants gone quiet, sent alone.
    const afterLoad = (await commandStats(look)).scripts - during;
    for (const side of ['on', 'unbatched'] as const) {
      commands.push({ route: route.name, batched: side === 'on', admitted: admitted[side], scripts: scripts[side], afterLoad, redisUsPerScript: usPerScript });
    }
    for (const side of SIDES) {
      const sorted = all[side].sort((a, b) => a - b);
      measured.push({
        route: route.name,
        limiter: side,
        requests: sorted.length,
        rps: Math.round(sorted.length / seconds[side]),
        p50: percentile(sorted, 50),
        p99: percentile(sorted, 99),
        cpuUs: (cpu[side] * 1000) / sorted.length,
        statuses: Object.fromEntries(statuses[side]),
      });
    }
  }
  replay = await replayTrace();
} finally {
  for (const side of SIDES) {
    await pools[side].close();
    await gateways[side].stop();
  }
  look.disconnect();
  await redis.stop();
}

const ms = (x: number) => x.toFixed(3);
const rows: string[][] = [['route', 'limiter', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'gateway CPU µs/req', 'statuses']];
for (const m of measured) rows.push([m.route, m.limiter, String(m.requests), String(m.rps), ms(m.p50), ms(m.p99), m.cpuUs.toFixed(0), JSON.stringify(m.statuses)]);
const added = ROUTES.map((r) => {
  const on = measured.find((m) => m.route === r.name && m.limiter === 'on')!;
  const off = measured.find((m) => m.route === r.name && m.limiter === 'off')!;
  return { route: r.name, p50: on.p50 - off.p50, p99: on.p99 - off.p99, rpsRatio: on.rps / off.rps, cpuUs: on.cpuUs - off.cpuUs };
});
const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
console.log(`limiter benchmark: ${REQUESTS} requests × ${ROUNDS} rounds per side and route, ${CONNECTIONS} connections, ${TENANTS} tenants`);
for (const row of rows) console.log(row.map((cell, c) => (c < 2 || c === 7 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
console.log('');
for (const a of added) {
  console.log(`${a.route.padEnd(16)} limiter adds p50 ${ms(a.p50)} ms, p99 ${ms(a.p99)} ms, ${a.cpuUs.toFixed(0)} µs of gateway CPU; req/s with ÷ without ${a.rpsRatio.toFixed(3)}`);
}
for (const c of commands) {
  console.log(
    `${c.route.padEnd(16)} ${c.batched ? 'batched  ' : 'unbatched'} Redis commands per admitted request: ${(c.scripts / c.admitted).toFixed(4)} from the limiter ` +
      `(${c.scripts} script calls for ${c.admitted}); ` +
      `Redis time per call ${c.redisUsPerScript.toFixed(1)} µs; refunds sent alone while idle: ${c.afterLoad}`,
  );
}
console.log(
  `replayed trace: ${replay.admissions} admissions in bursts over ${replay.tenants} tenants; batched and unbatched decide the same for every request: ` +
    `${replay.same ? 'yes' : `NO (${replay.differences} differ)`}; admitted ${replay.admitted}; script calls ${replay.calls.unbatched} unbatched, ${replay.calls.batched} batched`,
);
console.log(JSON.stringify({ requests: REQUESTS, rounds: ROUNDS, connections: CONNECTIONS, tenants: TENANTS, measured, added, commands, replay }));
