/**
 * `--local`: a private stack for the load test, made of the built CLIs as real processes — a
 * redis-server on a free loopback port (nothing on disk), `--workers N` workers
 * (dist/src/cli/worker.js, the simulated engine or the demo model on onnxruntime, made in
 * models/demo-tiny first as `npm start` does) and a gateway (dist/src/cli/gateway.js) with an
 * API key and an admin token of this run only. Everything started here is stopped by `stop()`,
 * which the CLI calls on success, failure and Ctrl-C alike.
 *
 * The gateway is configured for a test bench: health checks every 250 ms, the breaker half-open
 * 1 s after it opens, the degrade flag re-read every 200 ms, and a tier whose limits the load
 * does not reach (the limiter still decides every request, in Redis or locally without it).
 * Every process of the stack runs at a lower priority (`--nice`, 10 by default): on a shared
 * machine a saturated service would otherwise delay the generator's sends. Sim workers decode up to 128 sequences together (the default of 8 is sized for a real
 * model's KV cache).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createConnection } from 'node:net';
import { setPriority } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256Hex } from '../gateway/plugins/auth.js';
import { freePort, sleep } from '../shared/net.js';

const CLI_DIR = join(dirname(fileURLToPath(import.meta.url)), '../cli');

export class LocalStackError extends Error {}

export interface LocalProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** stdout and stderr so far (the last 8 KB). */
  output(): string;
}

export interface LocalStack {
  url: string;
  apiKey: string;
  adminToken: string;
  redisUrl: string;
  /** The base model's name as the workers report it (GET /v1/models). */
  model: string;
  workers: LocalProcess[];
  /** SIGKILLs worker `i` and starts it again on its port; resolves once it is ready again. */
  killWorker(i: number): Promise<{ url: string; pid: number; readyAfterMs: number }>;
  stopRedis(): Promise<void>;
  startRedis(): Promise<void>;
  stop(): Promise<void>;
}

export interface LocalStackOptions {
  workers: number;
  engine: 'sim' | 'onnx';
  /** Nice value of every process started (0: as this one). */
  nice: number;
  /** Called at once with what stops every process started so far, for a Ctrl-C during the start. */
  onStop?: (stop: () => Promise<void>) => void;
  log?: (line: string) => void;
}

function keep(child: ChildProcess): () => string {
  let out = '';
  const add = (d: Buffer) => {
    out = (out + d.toString()).slice(-8192);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  return () => out;
}

/**
 * Lowers the priority of a process of the stack: on a machine it shares with the generator, the
 * service under test must not be able to delay the sends it is measured by.
 */
function lower(c: ChildProcess, nice: number): void {
  if (nice === 0 || c.pid === undefined) return;
  try {
    setPriority(c.pid, nice);
  } catch {
    // Not allowed here: the stack runs at the generator's priority.
  }
}

function alive(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

async function kill(c: ChildProcess, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (!alive(c)) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill(signal);
  const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** PING until PONG: resolves true once `port` answers like a redis-server. */
function redisAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.setTimeout(300);
    s.on('connect', () => s.write('PING\r\n'));
    s.on('data', (d) => {
      s.destroy();
      resolve(d.toString().startsWith('+PONG'));
    });
    s.on('error', () => resolve(false));
    s.on('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

async function waitReady(url: string, child: ChildProcess, what: string, output: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!alive(child)) throw new LocalStackError(`${what} exited (${child.exitCode ?? child.signalCode}) before it was ready: ${output().trim().split('\n').slice(-3).join(' | ')}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  throw new LocalStackError(`${what} did not answer ${url} within ${timeoutMs / 1000} s`);
}

/** Fails with one line when redis-server is not installed. */
export function checkRedisServer(): void {
  const r = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  if (r.error) throw new LocalStackError('--local needs redis-server on the PATH (Debian: apt-get install redis-server)');
}

export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  checkRedisServer();
  const log = options.log ?? (() => {});
  const started: ChildProcess[] = [];
  let redis: ChildProcess | null = null;
  const redisPort = await freePort();

  const startRedis = async () => {
    const c = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out = keep(c);
    started.push(c);
    lower(c, options.nice);
    redis = c;
    for (let i = 0; i < 100; i++) {
      if (!alive(c)) throw new LocalStackError(`redis-server could not start on port ${redisPort}: ${out().trim()}`);
      if (await redisAnswers(redisPort)) return;
      await sleep(50);
    }
    throw new LocalStackError(`redis-server on port ${redisPort} did not answer`);
  };
  const stopRedis = async () => {
    if (redis) await kill(redis, 'SIGKILL');
    redis = null;
  };

  const stopAll = async () => {
    await Promise.all(started.map((c) => kill(c, 'SIGTERM')));
  };
  options.onStop?.(stopAll);

  try {
    await startRedis();
    // Workers: the demo model (tokenizer included, which the sim engine needs) made once where
    // `npm start` makes it, before N processes would race to make it.
    const { WorkerConfigSchema } = await import('../worker/config.js');
    const modelDir = WorkerConfigSchema.parse({}).modelDir;
    const { ensureDemoModel } = await import('../model/demo-model.js');
    await ensureDemoModel(modelDir, 'tiny');
    const workerEnv = (port: number) => ({
      ...process.env,
      WORKER_ENGINE: options.engine,
      WORKER_PORT: String(port),
      WORKER_HOST: '127.0.0.1',
      WORKER_MODEL_DIR: modelDir,
      WORKER_LOG_LEVEL: 'warn',
      // The simulated engine holds no real KV cache: a batch wide enough for the load's
      // concurrency (about rate × answer time) keeps it from queueing at its default of 8.
      ...(options.engine === 'sim' ? { WORKER_SCHEDULER_MAX_RUNNING_SEQUENCES: '128', WORKER_SCHEDULER_MAX_QUEUE: '256' } : {}),
    });
    const startWorker = async (port: number): Promise<LocalProcess> => {
      const child = spawn(process.execPath, [join(CLI_DIR, 'worker.js')], { env: workerEnv(port), stdio: ['ignore', 'pipe', 'pipe'] });
      started.push(child);
      lower(child, options.nice);
      const output = keep(child);
      const url = `http://127.0.0.1:${port}`;
      await waitReady(`${url}/readyz`, child, `worker on port ${port}`, output, 60_000);
      return { url, port, child, output };
    };
    const ports = await Promise.all(Array.from({ length: options.workers }, () => freePort()));
    const workers = await Promise.all(ports.map((p) => startWorker(p)));
    log(`local stack: redis-server on ${redisPort}, ${workers.length} ${options.engine} worker(s) on ${ports.join(', ')}`);

    const apiKey = `sk-load-${randomBytes(12).toString('hex')}`;
    const adminToken = randomBytes(16).toString('hex');
    const gatewayPort = await freePort();
    const child = spawn(process.execPath, [join(CLI_DIR, 'gateway.js')], {
      env: {
        ...process.env,
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_PORT: String(gatewayPort),
        GATEWAY_LOG_LEVEL: 'warn',
        GATEWAY_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
        GATEWAY_REDIS_KEY_PREFIX: `load-${process.pid}:`,
        GATEWAY_WORKERS_URLS: workers.map((w) => w.url).join(','),
        GATEWAY_WORKERS_HEALTH_INTERVAL_MS: '250',
        GATEWAY_BREAKER_RESET_TIMEOUT_MS: '1000',
        GATEWAY_DEGRADE_REFRESH_MS: '200',
        GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: sha256Hex(apiKey), tenant: 'load', tier: 'load' }]),
        GATEWAY_AUTH_ANONYMOUS: 'false',
        GATEWAY_AUTH_ADMIN_TOKEN_SHA256: sha256Hex(adminToken),
        GATEWAY_LIMITS_TIERS: JSON.stringify({
          load: { requests: { perMinute: 10_000_000, burst: 1_000_000 }, tokens: { perMinute: 1_000_000_000, burst: 100_000_000 } },
        }),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.push(child);
    lower(child, options.nice);
    const output = keep(child);
    const url = `http://127.0.0.1:${gatewayPort}`;
    await waitReady(`${url}/readyz`, child, 'gateway', output, 30_000);
    log(`local stack: gateway on ${url}`);
    const models = (await (await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { data?: { id: string }[] };
    const model = models.data?.[0]?.id ?? 'chatglm3-6b';

    return {
      url,
      apiKey,
      adminToken,
      redisUrl: `redis://127.0.0.1:${redisPort}`,
      model,
      workers,
      async killWorker(i) {
        const w = workers[i]!;
        const pid = w.child.pid ?? 0;
        await kill(w.child, 'SIGKILL');
        const t0 = performance.now();
        workers[i] = await startWorker(w.port);
        return { url: w.url, pid, readyAfterMs: performance.now() - t0 };
      },
      stopRedis,
      startRedis,
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
