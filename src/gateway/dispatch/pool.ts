/**
 * The worker pool: where a generation goes.
 *
 * Targets come from a URL list, from a DNS name re-resolved every `resolveIntervalMs` (a
 * Kubernetes headless Service gives one address per pod), or from the local supervisor
 * (`setUrls`). Each target has an undici Pool with keep-alive connections.
 *
 * Health: every `healthIntervalMs` each target's `GET /readyz` must answer 200 with
 * `ready: true` within `healthTimeoutMs` (its load and execution provider are kept); a healthy
 * target's `GET /v1/adapters` tells its model, context length and adapters. `ready: false` or a
 * refused connection takes a target out at once; a check that gets no answer does so after
 * `unhealthyThreshold` in a row. A connection failure during dispatch marks the target unhealthy
 * at once (passive check); only an active check makes it healthy again.
 *
 * Routing: least outstanding requests among healthy targets that serve the asked adapter; ties
 * go round-robin so that an idle pool spreads its load.
 */
import { lookup } from 'node:dns/promises';
import { Pool } from 'undici';
import { ReadyzSchema, WorkerModelInfoSchema, type AdapterInfo, type WorkerLoad, type WorkerModelInfo } from '../../protocol/schemas.js';
import type { Logger } from '../../shared/logging.js';
import { repeat, type Repeating } from '../../shared/timer.js';
import type { GatewayMetrics } from '../plugins/metrics.js';

export interface PoolOptions {
  urls: string[];
  /** `name:port`, resolved to every address. */
  dns?: string | undefined;
  resolveIntervalMs: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  /** Failed (unanswered) checks in a row before a healthy worker is taken out. */
  unhealthyThreshold: number;
  connections: number;
}

export interface WorkerTarget {
  readonly url: string;
  readonly client: Pool;
  healthy: boolean;
  outstanding: number;
  info: WorkerModelInfo | null;
  /** From the last `/readyz` that answered ready (null before, or from a worker that does not say). */
  load: WorkerLoad | null;
  executionProvider: string | null;
  lastError: string | null;
  lastCheckAt: number;
  /** Failed active checks in a row. */
  failedChecks: number;
}

export interface ModelListing {
  /** Base model names served by some worker, or the configured name when none has reported. */
  bases: string[];
  adapters: Array<AdapterInfo & { base: string }>;
}

/** How a requested model name resolves: the base model, or a base plus a LoRA adapter. */
export interface ResolvedModel {
  base: string;
  adapter: string | undefined;
}

/** Limit on a worker's info/readyz answer we are willing to read. */
const MAX_INFO_BYTES = 1024 * 1024;

export class WorkerPool {
  private targets: WorkerTarget[] = [];
  private rr = 0;
  private closed = false;
  private readonly timers: Repeating[] = [];
  /** Whether periodic checks run (after start); a new target is then checked at once. */
  private started = false;
  private models = new Map<string, ResolvedModel>();
  private listing: ModelListing;
  /** Whether some worker has reported its models since start. */
  private reported = false;

  constructor(
    private readonly options: PoolOptions,
    private readonly defaultModel: string,
    private readonly metrics: GatewayMetrics,
    private readonly log: Logger,
  ) {
    this.listing = { bases: [defaultModel], adapters: [] };
    metrics.setOutstandingProbe(() => this.targets);
    this.rebuildModels();
    this.setUrls(options.urls);
  }

  /** Starts health checks (and DNS resolution); resolves after the first round. */
  async start(): Promise<void> {
    if (this.options.dns) await this.resolveDns();
    await this.checkAll();
    if (this.closed) return;
    this.started = true;
    this.timers.push(repeat(this.options.healthIntervalMs, () => this.checkAll()));
    if (this.options.dns) this.timers.push(repeat(this.options.resolveIntervalMs, () => this.resolveDns()));
  }

  /** Replaces the target list; targets that stay keep their state and connections. */
  setUrls(urls: readonly string[]): void {
    const wanted = new Set(urls.map((u) => new URL(u).origin));
    const kept: WorkerTarget[] = [];
    for (const t of this.targets) {
      if (wanted.has(t.url)) {
        kept.push(t);
        wanted.delete(t.url);
      } else {
        this.metrics.workerHealthy.remove(t.url);
        // In-flight streams on a removed target finish; the pool closes once they have.
        void t.client.close().catch(() => {});
      }
    }
    for (const url of wanted) {
      kept.push({
        url,
        client: new Pool(url, { connections: this.options.connections, pipelining: 1, keepAliveTimeout: 30_000 }),
        healthy: false,
        outstanding: 0,
        info: null,
        load: null,
        executionProvider: null,
        lastError: 'not checked yet',
        lastCheckAt: 0,
        failedChecks: 0,
      });
      this.metrics.workerHealthy.labels(url).set(0);
    }
    this.targets = kept;
    this.rebuildModels();
    if (wanted.size > 0 && this.started && !this.closed) void this.checkAll();
  }

  get size(): number {
    return this.targets.length;
  }

  healthyCount(): number {
    let n = 0;
    for (const t of this.targets) if (t.healthy) n++;
    return n;
  }

  /** The healthy target with the fewest outstanding requests that serves `adapter`, not in `exclude`. */
  pick(adapter: string | undefined, exclude?: ReadonlySet<WorkerTarget>): WorkerTarget | null {
    const n = this.targets.length;
    let best: WorkerTarget | null = null;
    const start = this.rr++ % Math.max(n, 1);
    for (let k = 0; k < n; k++) {
      const t = this.targets[(start + k) % n]!;
      if (!t.healthy || exclude?.has(t)) continue;
      if (adapter !== undefined && !t.info?.adapters.some((a) => a.name === adapter)) continue;
      if (best === null || t.outstanding < best.outstanding) best = t;
    }
    return best;
  }

  acquire(t: WorkerTarget): void {
    t.outstanding++;
  }

  release(t: WorkerTarget): void {
    t.outstanding--;
  }

  /** Passive health: a connection-level failure takes the target out until an active check passes. */
  markFailed(t: WorkerTarget, reason: string): void {
    if (t.healthy) this.log.warn({ worker: t.url, reason }, 'worker marked unhealthy');
    t.healthy = false;
    t.lastError = reason;
    this.metrics.workerHealthy.labels(t.url).set(0);
  }

  /** `model` as a client names it: a base model or an adapter. Null when nobody serves it. */
  resolveModel(model: string): ResolvedModel | null {
    return this.models.get(model) ?? null;
  }

  /** Whether an adapter is known (served, or last reported, by some worker). */
  hasAdapter(adapter: string): boolean {
    const r = this.models.get(adapter);
    return r !== undefined && r.adapter === adapter;
  }

  /** The longest context a worker serving `base` reported; null before any has. */
  contextLength(base: string): number | null {
    let n: number | null = null;
    for (const t of this.targets) if (t.info?.model === base) n = Math.max(n ?? 0, t.info.context_length);
    return n;
  }

  listModels(): ModelListing {
    return this.listing;
  }

  snapshot() {
    return this.targets.map((t) => ({
      url: t.url,
      healthy: t.healthy,
      outstanding: t.outstanding,
      model: t.info?.model ?? null,
      context_length: t.info?.context_length ?? null,
      adapters: t.info?.adapters.map((a) => a.name) ?? [],
      execution_provider: t.executionProvider,
      load: t.load,
      last_error: t.lastError,
      last_check_at: t.lastCheckAt ? new Date(t.lastCheckAt).toISOString() : null,
    }));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) t.stop();
    await Promise.all(this.targets.map((t) => t.client.destroy().catch(() => {})));
  }

  /**
   * Model names from what workers reported. A worker that stops answering keeps its last report,
   * so a request for a known adapter can still be answered by the fallback while it is down.
   */
  private rebuildModels(): void {
    const models = new Map<string, ResolvedModel>();
    const bases: string[] = [];
    const adapters: ModelListing['adapters'] = [];
    for (const t of this.targets) {
      if (!t.info) continue;
      const base = t.info.model;
      if (!models.has(base)) {
        models.set(base, { base, adapter: undefined });
        bases.push(base);
      }
      for (const a of t.info.adapters) {
        if (models.has(a.name)) continue;
        models.set(a.name, { base, adapter: a.name });
        adapters.push({ ...a, base });
      }
    }
    if (bases.length === 0) {
      // No target has reported (a restarted local worker on a new port, every worker replaced):
      // the names last reported stay true until a worker says otherwise; the configured name is
      // only for a gateway that has never seen a worker.
      if (this.reported) return;
      models.set(this.defaultModel, { base: this.defaultModel, adapter: undefined });
      bases.push(this.defaultModel);
    } else {
      this.reported = true;
    }
    this.models = models;
    this.listing = { bases, adapters };
  }

  private async resolveDns(): Promise<void> {
    const spec = this.options.dns!;
    const i = spec.lastIndexOf(':');
    const host = spec.slice(0, i);
    const port = spec.slice(i + 1);
    try {
      const addresses = await lookup(host, { all: true });
      const urls = addresses.map((a) => (a.family === 6 ? `http://[${a.address}]:${port}` : `http://${a.address}:${port}`));
      this.setUrls(urls);
    } catch (err) {
      // Keep the last known targets: a DNS hiccup must not empty the pool.
      this.log.warn({ dns: spec, err: (err as Error).message }, 'worker DNS name did not resolve; keeping the last addresses');
    }
  }

  private async checkAll(): Promise<void> {
    const before = this.targets.map((t) => t.info);
    await Promise.all(this.targets.map((t) => this.check(t)));
    if (this.targets.some((t, i) => t.info !== before[i])) this.rebuildModels();
  }

  private async check(t: WorkerTarget): Promise<void> {
    let ok = false;
    let error: string | null = null;
    // A worker that says it is not ready is taken out at once; one that does not answer in time
    // only after `unhealthyThreshold` such checks in a row (a slow moment is not an outage).
    let definite = true;
    try {
      const readyz = ReadyzSchema.safeParse(await this.getJson(t, '/readyz', true));
      if (!readyz.success) error = 'readyz answer is not valid';
      else if (!readyz.data.ready) error = 'not ready';
      else {
        t.load = readyz.data.load ?? null;
        t.executionProvider = readyz.data.execution_provider ?? null;
        const info = WorkerModelInfoSchema.safeParse(await this.getJson(t, '/v1/adapters', false));
        if (info.success) {
          if (JSON.stringify(info.data) !== JSON.stringify(t.info)) t.info = info.data;
          ok = true;
        } else {
          error = `adapters answer is not valid: ${info.error.issues[0]?.path.join('.')}`;
        }
      }
    } catch (err) {
      error = (err as Error).message;
      // A refused connection is no slow moment: nothing listens there (the process is gone).
      definite = (err as { code?: unknown }).code === 'ECONNREFUSED';
    }
    if (this.closed) return;
    t.lastCheckAt = Date.now();
    t.failedChecks = ok ? 0 : t.failedChecks + 1;
    if (!ok && !definite && t.healthy && t.failedChecks < this.options.unhealthyThreshold) {
      t.lastError = error;
      return;
    }
    if (ok !== t.healthy) {
      if (ok) this.log.info({ worker: t.url }, 'worker healthy');
      else this.log.warn({ worker: t.url, reason: error }, 'worker unhealthy');
    }
    t.healthy = ok;
    t.lastError = error;
    this.metrics.workerHealthy.labels(t.url).set(ok ? 1 : 0);
  }

  /** GET a small JSON document; `anyStatus` accepts non-2xx bodies (readyz answers 503 with a body). */
  private async getJson(t: WorkerTarget, path: string, anyStatus: boolean): Promise<unknown> {
    const res = await t.client.request({
      method: 'GET',
      path,
      signal: AbortSignal.timeout(this.options.healthTimeoutMs),
      headersTimeout: this.options.healthTimeoutMs,
      bodyTimeout: this.options.healthTimeoutMs,
    });
    if (!anyStatus && res.statusCode !== 200) {
      await res.body.dump();
      throw new Error(`${path} answered ${res.statusCode}`);
    }
    const length = Number(res.headers['content-length'] ?? 0);
    if (length > MAX_INFO_BYTES) {
      await res.body.dump();
      throw new Error(`${path} answer too large`);
    }
    const text = await res.body.text();
    if (text.length > MAX_INFO_BYTES) throw new Error(`${path} answer too large`);
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${path} answer is not JSON`);
    }
  }
}
