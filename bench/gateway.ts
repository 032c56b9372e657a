/**
 * `npm run bench:gateway [-- --duration S --rounds R --connections C --kb-entries N --profile]`:
 * what the gateway's own work costs next to a plain proxy, measured side by side in one run.
 *
 * On loopback: a fake worker that answers at once with a nine-token completion
 * (bench/fake-worker.ts), a bare Fastify route forwarding to it with the same HTTP client
 * (bench/bare-proxy.ts), the real gateway (API key, both rate-limit buckets on a private
 * redis-server with limits that never trip, validation, breaker, metrics) on `POST /v1/chat`, and
 * a second gateway in degrade mode `forced` answering from a generated knowledge base; and, as
 * the reference line, the stack a user would assemble (bench/assembled-stack.ts: Fastify,
 * @fastify/rate-limit on the same Redis, @fastify/reply-from, a key check) against the gateway's
 * `POST /v1/chat/completions` on the same instant upstream, with CPU per request of each target.
 *
 * 1. Throughput: autocannon, `rounds` alternating rounds of `duration` seconds on each of
 *    bare / bare plus the limiter's one Redis command / gateway / gateway with `stream: true`;
 *    req/s and latency per target (medians over rounds), and the ratios to bare per round (their
 *    median).
 *    Latencies are read from autocannon's response events, in fractions of a millisecond.
 * 2. Degrade: autocannon on the forced gateway with questions drawn from 1,000 generated ones
 *    (the answer cache helps) and with every question made unique (it cannot).
 * 3. Latency at 40 % of the bare route's rate (or `--rate`), and at half of the gateway's: an
 *    open-loop generator (bench/open-loop.ts);
 *    p50/p99 of bare, gateway and stream, what the gateway adds, and the CPU time per request of
 *    the process answering (for the gateway, with its redis-server's).
 * 4. First token: one request at a time, the worker stamps its first token with the time it
 *    wrote it; the client notes when it reads it, directly from the worker and through the
 *    gateway's SSE stream. The difference of the two is what the gateway adds.
 *
 * `--profile` runs the gateway under `--cpu-prof` during phase 1 and prints the functions with
 * the most self time. Prints a table, then one JSON line.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import { Pool } from 'undici';
import { sha256Hex } from '../src/gateway/plugins/auth.js';
import { sleep } from '../src/shared/net.js';
import { startGatewayProcess } from '../test/helpers/gateway-process.js';
import { startNode, type NodeProcess } from '../test/helpers/node-process.js';
import { PROJECT_ROOT } from '../test/helpers/paths.js';
import { startPrivateRedis } from '../test/helpers/redis.js';
import { Redis } from 'ioredis';
import { summarizeCpuProfile } from './cpu-profile.js';
import { TIMED_MARKER } from './fake-worker.js';
import { generateKnowledgeBase, generateQuestions } from './kb-corpus.js';
import { cpuMs, percentile } from './measure.js';
import { openLoop } from './open-loop.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '32' },
    'kb-entries': { type: 'string', default: '10000' },
    'first-token-samples': { type: 'string', default: '200' },
    rate: { type: 'string', default: '0' },
    profile: { type: 'boolean', default: false },
  },
});
const DURATION = Number(args.duration);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
const KB_ENTRIES = Number(args['kb-entries']);
const FIRST_TOKEN_SAMPLES = Number(args['first-token-samples']);

const API_KEY = 'sk-bench-0123456789abcdef';
const AUTH = { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' };
const HUGE = { perMinute: 1_000_000_000, burst: 100_000_000 };
const QUESTION = '朋友借钱不还怎么办？';
const EXPECTED_TEXT = '根据《民法典》规定，借款应当按期归还。';
const chatBody = (content: string, stream: boolean) => JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 64, ...(stream ? { stream: true } : {}) });
const openaiBody = (content: string) => JSON.stringify({ model: 'chatglm3-6b', messages: [{ role: 'user', content }], max_tokens: 64 });

/** A bench fixture (dist/bench/NAME) as a process, ready when it answers /healthz. */
const startFixture = (name: string, portEnv: string, env: Record<string, string> = {}) =>
  startNode(join(PROJECT_ROOT, 'dist/bench', name), { env: { ...process.env, ...env }, portEnv });

// ---------------------------------------------------------------------------------------------
// Measurements

interface Throughput {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
}

/**
 * One autocannon run, at full speed or at `rate` requests per second. Latencies come from its
 * `response` events, which carry fractions of a millisecond (its own histogram keeps whole
 * milliseconds, and the targets are about one or two); 2xx only.
 */
async function cannon(
  url: string,
  body: string | ((i: number) => string),
  duration: number,
  options: { connections?: number; rate?: number } = {},
): Promise<Throughput & { latencies: number[] }> {
  let i = 0;
  const latencies: number[] = [];
  const settings: autocannon.Options = {
    url,
    method: 'POST',
    headers: AUTH,
    connections: options.connections ?? CONNECTIONS,
    duration,
    ...(options.rate ? { overallRate: options.rate } : {}),
    ...(typeof body === 'string'
      ? { body }
      : { requests: [{ method: 'POST', setupRequest: (req: autocannon.Request) => ({ ...req, body: body(i++) }) }] }),
  };
  const r = await new Promise<autocannon.Result>((resolve, reject) => {
    const run = autocannon(settings, (err: Error | null, result: autocannon.Result) => (err ? reject(err) : resolve(result)));
    run.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
  });
  latencies.sort((a, b) => a - b);
  return {
    rps: r.requests.average,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    requests: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    latencies,
  };
}

const STAMP = /"t(\d+\.\d+)"/;

/** ms from the worker writing its first token to this process reading it, over `path`. */
async function firstTokenDelay(pool: Pool, path: string, body: string): Promise<number> {
  const res = await pool.request({ method: 'POST', path, headers: AUTH, body });
  let seen = '';
  let delay = Number.NaN;
  for await (const chunk of res.body) {
    if (Number.isNaN(delay)) {
      const at = performance.timeOrigin + performance.now();
      seen += (chunk as Buffer).toString();
      const m = STAMP.exec(seen);
      if (m) delay = at - Number(m[1]);
    }
  }
  if (res.statusCode !== 200 || Number.isNaN(delay)) throw new Error(`first-token request to ${path} answered ${res.statusCode} without a stamped token: ${seen.slice(0, 200)}`);
  return delay;
}

const pct = (xs: number[], p: number) => percentile([...xs].sort((a, b) => a - b), p);
const median = (xs: number[]) => pct(xs, 50);
const summary = (xs: Throughput[]): Throughput => ({
  rps: Math.round(median(xs.map((x) => x.rps))),
  p50: median(xs.map((x) => x.p50)),
  p99: median(xs.map((x) => x.p99)),
  requests: xs.reduce((n, x) => n + x.requests, 0),
  non2xx: xs.reduce((n, x) => n + x.non2xx, 0),
  errors: xs.reduce((n, x) => n + x.errors, 0),
});
const strip = ({ latencies: _, ...t }: Throughput & { latencies: number[] }): Throughput => t;

async function expectAnswer(url: string, body: string, check: (text: string, headers: Headers) => boolean, what: string): Promise<void> {
  const res = await fetch(`${url}/v1/chat`, { method: 'POST', headers: AUTH, body });
  const text = await res.text();
  if (res.status !== 200 || !check(text, res.headers)) throw new Error(`${what}: unexpected answer ${res.status} ${text.slice(0, 300)}`);
}

// ---------------------------------------------------------------------------------------------
// Run

const dir = mkdtempSync(join(tmpdir(), 'bench-gateway-'));
const kbPath = join(dir, 'kb.jsonl');
const entries = generateKnowledgeBase(KB_ENTRIES, 7);
writeFileSync(kbPath, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
const questions = generateQuestions(entries, 1000, 11);

const redis = await startPrivateRedis();
const procs: NodeProcess[] = [];
const gatewayEnv = (prefix: string) => ({
  GATEWAY_REDIS_URL: redis.url,
  GATEWAY_REDIS_KEY_PREFIX: prefix,
  GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex(API_KEY), tenant: 'bench', tier: 'bench' }]),
  GATEWAY_LIMITS_TIERS: JSON.stringify({ bench: { requests: HUGE, tokens: HUGE } }),
  GATEWAY_LOG_LEVEL: 'warn',
});

const out: Record<string, unknown> = {};
try {
  const worker = await startFixture('fake-worker.js', 'WORKER_PORT');
  procs.push(worker);
  const bare = await startFixture('bare-proxy.js', 'BARE_PORT', { WORKER_URL: worker.url, WORKER_CONNECTIONS: '64' });
  procs.push(bare);
  const bareRedis = await startFixture('bare-proxy.js', 'BARE_PORT', { WORKER_URL: worker.url, WORKER_CONNECTIONS: '64', BARE_REDIS_URL: redis.url });
  procs.push(bareRedis);
  const assembled = await startFixture('assembled-stack.js', 'STACK_PORT', { UPSTREAM_URL: worker.url, STACK_REDIS_URL: redis.url, STACK_API_KEY: API_KEY });
  procs.push(assembled);
  const profileDir = join(dir, 'profile');
  const gateway = await startGatewayProcess(
    {
      ...gatewayEnv('bench-full:'),
      GATEWAY_WORKERS_URLS: JSON.stringify([worker.url]),
      GATEWAY_WORKERS_CONNECTIONS: '64',
    },
    args.profile ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [],
  );
  procs.push(gateway);
  const degraded = await startGatewayProcess({
    ...gatewayEnv('bench-kb:'),
    GATEWAY_DEGRADE_MODE: 'forced',
    GATEWAY_DEGRADE_SOURCE: 'kb',
    GATEWAY_KNOWLEDGE_BASE_PATH: kbPath,
  });
  procs.push(degraded);

  // Every target answers what it should before anything is timed.
  await sleep(500); // the gateway's first health check and tokenizer fetch
  await expectAnswer(bare.url, chatBody(QUESTION, false), (t) => t.includes(EXPECTED_TEXT), 'bare');
  await expectAnswer(bareRedis.url, chatBody(QUESTION, false), (t) => t.includes(EXPECTED_TEXT), 'bare + bucket script');
  await expectAnswer(gateway.url, chatBody(QUESTION, false), (t) => t.includes(EXPECTED_TEXT) && t.includes('"degraded":false'), 'gateway');
  await expectAnswer(gateway.url, chatBody(QUESTION, true), (t) => t.includes('《民法典》') && t.includes('"finish_reason":"stop"'), 'gateway stream');
  await expectAnswer(degraded.url, chatBody(questions[0]!, false), (_t, h) => h.get('x-degraded') === 'kb' || h.get('x-degraded') === 'canned', 'degrade');

  // 1. Throughput, alternating rounds. `bareRedis` is the bare route plus the limiter's one
  // Redis command: what that command alone takes from the floor.
  // The assembled stack (Fastify + @fastify/rate-limit on Redis + @fastify/reply-from + a key
  // check) and the gateway's OpenAI route are the same request to an instant upstream.
  const targets = {
    bare: { url: `${bare.url}/v1/chat`, body: chatBody(QUESTION, false), pid: bare.child.pid! },
    bareRedis: { url: `${bareRedis.url}/v1/chat`, body: chatBody(QUESTION, false), pid: bareRedis.child.pid! },
    assembled: { url: `${assembled.url}/v1/chat/completions`, body: openaiBody(QUESTION), pid: assembled.child.pid! },
    gateway: { url: `${gateway.url}/v1/chat`, body: chatBody(QUESTION, false), pid: gateway.child.pid! },
    gatewayOpenAI: { url: `${gateway.url}/v1/chat/completions`, body: openaiBody(QUESTION), pid: gateway.child.pid! },
    stream: { url: `${gateway.url}/v1/chat`, body: chatBody(QUESTION, true), pid: gateway.child.pid! },
  } as const;
  type Target = keyof typeof targets;
  const throughputNames = Object.keys(targets) as Target[];
  for (const name of throughputNames) await cannon(targets[name].url, targets[name].body, 2); // warm-up
  const rounds = Object.fromEntries(throughputNames.map((n) => [n, [] as Throughput[]])) as Record<Target, Throughput[]>;
  // CPU per request of the process answering, from /proc: a ratio cannot improve by starving the load generator.
  const cpuUs = Object.fromEntries(throughputNames.map((n) => [n, [] as number[]])) as Record<Target, number[]>;
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? throughputNames : [...throughputNames].reverse();
    for (const name of order) {
      const cpu0 = cpuMs(targets[name].pid);
      const t = strip(await cannon(targets[name].url, targets[name].body, DURATION));
      rounds[name].push(t);
      cpuUs[name].push(((cpuMs(targets[name].pid) - cpu0) * 1000) / Math.max(1, t.requests));
    }
  }
  const throughput = Object.fromEntries(throughputNames.map((n) => [n, { ...summary(rounds[n]), cpuUsPerRequest: Math.round(median(cpuUs[n])) }])) as Record<
    Target,
    Throughput & { cpuUsPerRequest: number }
  >;
  const over = (name: Target, base: Target) => median(rounds[name].map((t, i) => t.rps / rounds[base][i]!.rps));
  const overBare = (name: Target) => over(name, 'bare');
  const fullRatio = overBare('gateway');
  const streamRatio = overBare('stream');
  const redisRatio = overBare('bareRedis');
  const openaiOverAssembled = over('gatewayOpenAI', 'assembled');

  // 2. Degrade path.
  await cannon(`${degraded.url}/v1/chat`, (i) => chatBody(questions[i % questions.length]!, false), 2);
  const degradeCached = strip(await cannon(`${degraded.url}/v1/chat`, (i) => chatBody(questions[i % questions.length]!, false), DURATION));
  // A number the corpus never holds makes every question new to the cache; the search itself
  // drops the unknown word, so it costs what the plain question costs.
  const degradeUnique = strip(await cannon(`${degraded.url}/v1/chat`, (i) => chatBody(`${questions[i % questions.length]!} ${i + 100000}`, false), DURATION));

  // 3. Latency at a fixed rate: 40 % of the bare route's (the target), and half of the
  // gateway's own, where it is not saturated.
  const look = new Redis(redis.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await look.info('server'))![1]);
  look.disconnect();
  type RateTarget = 'bare' | 'gateway' | 'stream';
  const names: RateTarget[] = ['bare', 'gateway', 'stream'];
  const pids: Record<RateTarget, number[]> = { bare: [bare.child.pid!], gateway: [gateway.child.pid!, redisPid], stream: [gateway.child.pid!, redisPid] };
  const cpuOf = (name: RateTarget) => pids[name].reduce((n, pid) => n + cpuMs(pid), 0);
  const atRate = async (rate: number) => {
    const latencies: Record<RateTarget, number[]> = { bare: [], gateway: [], stream: [] };
    const failed: Record<RateTarget, number> = { bare: 0, gateway: 0, stream: 0 };
    const cpu: Record<RateTarget, number> = { bare: 0, gateway: 0, stream: 0 };
    let lagMs = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const name of r % 2 === 0 ? names : [...names].reverse()) {
        const cpu0 = cpuOf(name);
        const run = await openLoop(targets[name].url, AUTH, targets[name].body, rate, DURATION);
        cpu[name] += cpuOf(name) - cpu0;
        latencies[name].push(...run.latencies);
        failed[name] += run.failed;
        lagMs = Math.max(lagMs, run.lagMs);
      }
    }
    const row = (name: RateTarget) => ({
      p50: pct(latencies[name], 50),
      p99: pct(latencies[name], 99),
      requests: latencies[name].length + failed[name],
      failed: failed[name],
      cpuUsPerRequest: (cpu[name] * 1000) / Math.max(1, latencies[name].length + failed[name]),
    });
    const rows = { bare: row('bare'), gateway: row('gateway'), stream: row('stream') };
    return { rate, generatorLagMs: lagMs, ...rows, p99Added: rows.gateway.p99 - rows.bare.p99, p99AddedStream: rows.stream.p99 - rows.bare.p99 };
  };
  const fixedRates = [
    { what: Number(args.rate) > 0 ? 'the set rate' : "40 % of the bare route's rate", ...(await atRate(Number(args.rate) > 0 ? Number(args.rate) : Math.max(50, Math.round(throughput.bare.rps * 0.4)))) },
    { what: "half of the gateway's rate", ...(await atRate(Math.max(50, Math.round(throughput.gateway.rps / 2)))) },
  ];
  const p99Added = fixedRates[0]!.p99Added;

  // 4. First token through the gateway's SSE stream vs directly from the worker.
  const direct: number[] = [];
  const viaGateway: number[] = [];
  const workerPool = new Pool(worker.url, { connections: 1 });
  const gatewayPool = new Pool(gateway.url, { connections: 1 });
  for (let i = 0; i < FIRST_TOKEN_SAMPLES + 20; i++) {
    const content = `${TIMED_MARKER} ${QUESTION}`;
    const d = await firstTokenDelay(workerPool, '/v1/generate', JSON.stringify({ id: `ft-${i}`, messages: [{ role: 'user', content }], max_tokens: 16 }));
    const g = await firstTokenDelay(gatewayPool, '/v1/chat', chatBody(content, true));
    if (i >= 20) {
      // the first twenty warm both paths up
      direct.push(d);
      viaGateway.push(g);
    }
  }
  await workerPool.close();
  await gatewayPool.close();
  const firstToken = {
    direct: { p50: median(direct), p99: pct(direct, 99) },
    gateway: { p50: median(viaGateway), p99: pct(viaGateway, 99) },
    addedP50: median(viaGateway) - median(direct),
    addedP99: pct(viaGateway, 99) - pct(direct, 99),
  };

  let profile: string[] = [];
  if (args.profile) {
    await gateway.stop();
    profile = summarizeCpuProfile(profileDir, 30);
  }

  // Report.
  const ms = (x: number) => x.toFixed(3);
  const table: string[][] = [['target', 'req/s', 'p50 ms', 'p99 ms', 'CPU µs/req', 'requests', 'non-2xx', 'errors']];
  const row = (name: string, t: Throughput & { cpuUsPerRequest?: number }) =>
    table.push([name, String(Math.round(t.rps)), String(t.p50), String(t.p99), t.cpuUsPerRequest === undefined ? '' : String(t.cpuUsPerRequest), String(t.requests), String(t.non2xx), String(t.errors)]);
  row('1 bare forward', throughput.bare);
  row('1b bare + one bucket-script call', throughput.bareRedis);
  row('1c assembled: rate-limit (Redis) + reply-from + key check', throughput.assembled);
  row('2 gateway /v1/chat', throughput.gateway);
  row('2b gateway /v1/chat/completions', throughput.gatewayOpenAI);
  row('3 gateway stream', throughput.stream);
  row(`4 degrade kb (${KB_ENTRIES} entries, 1000 questions)`, degradeCached);
  row(`4 degrade kb (every question new)`, degradeUnique);
  const widths = table[0]!.map((_, c) => Math.max(...table.map((r) => r[c]!.length)));
  console.log(`gateway benchmark: autocannon, ${CONNECTIONS} connections, ${ROUNDS} alternating rounds of ${DURATION} s (medians over rounds)`);
  for (const r of table) console.log(r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
  console.log(
    `ratios (median of per-round ratios): 2÷1 = ${fullRatio.toFixed(3)}, 3÷1 = ${streamRatio.toFixed(3)}   (target 2÷1 ≥ 0.8); 1b÷1 = ${redisRatio.toFixed(3)}; ` +
      `2b÷1c = ${openaiOverAssembled.toFixed(3)} (target ≥ 1.0); gateway CPU ${throughput.gatewayOpenAI.cpuUsPerRequest} µs/request (target ≤ 160)`,
  );
  for (const f of fixedRates) {
    console.log(`at ${f.what}, ${f.rate} req/s (open loop; the generator fell behind its schedule by up to ${f.generatorLagMs.toFixed(1)} ms):`);
    for (const name of names) {
      const h = f[name];
      console.log(`  ${name.padEnd(8)} p50 ${ms(h.p50)} ms  p99 ${ms(h.p99)} ms  CPU ${h.cpuUsPerRequest.toFixed(0)} µs/request  (${h.requests} requests, ${h.failed} failed)`);
    }
    console.log(`  p99 added by the gateway: ${ms(f.p99Added)} ms, streamed: ${ms(f.p99AddedStream)} ms`);
  }
  console.log('  (target: p99 added ≤ 2 ms at 40 % of the bare route\'s rate)');
  console.log(
    `first token, worker write → client read, ${FIRST_TOKEN_SAMPLES} requests each: direct p50 ${ms(firstToken.direct.p50)} p99 ${ms(firstToken.direct.p99)} ms; ` +
      `through the gateway (SSE) p50 ${ms(firstToken.gateway.p50)} p99 ${ms(firstToken.gateway.p99)} ms; added p50 ${ms(firstToken.addedP50)} ms   (target ≤ 1 ms)`,
  );
  if (profile.length > 0) {
    console.log('gateway CPU profile during phase 1 (self time):');
    for (const line of profile) console.log(`  ${line}`);
  }
  Object.assign(out, {
    connections: CONNECTIONS,
    rounds: ROUNDS,
    durationSeconds: DURATION,
    throughput,
    perRound: rounds,
    degrade: { entries: KB_ENTRIES, cachedQuestions: degradeCached, uniqueQuestions: degradeUnique },
    fixedRates,
    firstToken,
    targets: {
      fullOverBare: { value: fullRatio, target: 0.8, met: fullRatio >= 0.8 },
      openaiOverAssembled: { value: openaiOverAssembled, target: 1, met: openaiOverAssembled >= 1 },
      gatewayCpuUsPerRequest: { value: throughput.gatewayOpenAI.cpuUsPerRequest, target: 160, met: throughput.gatewayOpenAI.cpuUsPerRequest <= 160 },
      streamOverBare: { value: streamRatio },
      oneRedisCommandOverBare: { value: redisRatio },
      p99AddedAt40PercentMs: { value: p99Added, target: 2, met: p99Added <= 2 },
      firstTokenAddedMs: { value: firstToken.addedP50, target: 1, met: firstToken.addedP50 <= 1 },
      degradeRps: { value: Math.min(degradeCached.rps, degradeUnique.rps), target: 5000, met: Math.min(degradeCached.rps, degradeUnique.rps) >= 5000 },
    },
  });
  const failures = Object.values(throughput).reduce((n, t) => n + t.non2xx + t.errors, 0) + degradeCached.non2xx + degradeUnique.non2xx;
  if (failures > 0) console.log(`WARNING: ${failures} requests did not get a 2xx; the numbers above count them`);
  console.log(JSON.stringify({ benchmark: 'gateway', ...out }));
} finally {
  for (const p of procs.reverse()) await p.stop();
  await redis.stop();
  rmSync(dir, { recursive: true, force: true });
}
