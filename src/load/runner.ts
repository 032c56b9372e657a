/**
 * Runs the load: one stage per rate (or one closed-loop stage) in the generator's worker thread,
 * the chaos events on the main thread at their times, then the summary. The run is bounded:
 * each stage by its duration and the run's request budget, the end of each by `--drain`.
 */
import { Worker } from 'node:worker_threads';
import { applyChaos, type ChaosRecord } from './chaos.js';
import type { LoadFlags } from './flags.js';
import type { FromGenerator, ToGenerator } from './generator-thread.js';
import type { Progress, StageResult, StageSpec } from './generator.js';
import type { LocalStack } from './local-stack.js';
import { summarize, type LoadSummary } from './report.js';
import { OUTCOMES, type Turn } from './workload.js';

export interface RunOptions {
  url: string;
  apiKey: string | undefined;
  stack: LocalStack | null;
  prompts: Turn[][] | undefined;
  /** Called with the run's totals so far (every 250 ms). */
  onProgress?: (p: Progress) => void;
  /** Aborted on Ctrl-C: the stage in progress is cut (its requests lost) and the run ends. */
  signal?: AbortSignal;
}

function runStageInThread(spec: StageSpec, onProgress: (p: Progress) => void, signal?: AbortSignal): Promise<StageResult> {
  // A young generation larger than V8's default: fewer scavenges, so fewer pauses between deadlines.
  const worker = new Worker(new URL('./generator-thread.js', import.meta.url), { resourceLimits: { maxYoungGenerationSizeMb: 64 } });
  return new Promise<StageResult>((resolve, reject) => {
    const onAbort = () => {
      void worker.terminate();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', (m: FromGenerator) => {
      if (m.type === 'progress') onProgress(m);
      else {
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        if (m.type === 'result') resolve(m.result);
        else reject(new Error(`the generator failed: ${m.message}`));
      }
    });
    worker.on('error', reject);
    worker.postMessage({ type: 'stage', spec } satisfies ToGenerator);
  });
}

/**
 * A degrade event has recovered at the send time of the first request from which on every
 * answer, until the next event, came from where it should (the fallback after `forced`, a
 * worker after `auto`): an answer of the other kind sent later would mean it had not switched.
 */
function degradeRecovery(chaos: ChaosRecord[], results: StageResult[]): void {
  const fallback = OUTCOMES.indexOf('fallback');
  const answered = OUTCOMES.indexOf('answered');
  const applied = chaos.map((c) => c.applied_ms).sort((a, b) => a - b);
  for (const c of chaos) {
    if (c.action !== 'degrade-forced' && c.action !== 'degrade-auto') continue;
    const want = c.action === 'degrade-forced' ? fallback : answered;
    const other = want === fallback ? answered : fallback;
    const until = applied.find((t) => t > c.applied_ms) ?? Infinity;
    let lastOther = -Infinity;
    for (const r of results) {
      const cols = r.columns;
      for (let i = 0; i < cols.n; i++) {
        const t = cols.sentMs[i]!;
        if (t >= c.applied_ms && t < until && cols.outcome[i] === other && t > lastOther) lastOther = t;
      }
    }
    let first = Infinity;
    for (const r of results) {
      const cols = r.columns;
      for (let i = 0; i < cols.n; i++) {
        const t = cols.sentMs[i]!;
        if (t >= c.applied_ms && t > lastOther && t < until && cols.outcome[i] === want && t < first) first = t;
      }
    }
    c.recovered_s = Number.isFinite(first) ? Math.round(first - c.applied_ms) / 1000 : null;
  }
}

export async function runLoad(flags: LoadFlags, options: RunOptions): Promise<LoadSummary> {
  const startedAt = new Date();
  const runStartEpochMs = performance.timeOrigin + performance.now();
  const nowMs = () => performance.timeOrigin + performance.now() - runStartEpochMs;
  const chaos: Promise<ChaosRecord>[] = [];
  const timers: NodeJS.Timeout[] = [];
  let killed = 0;
  if (options.stack) {
    const stack = options.stack;
    for (const e of flags.local?.chaos ?? []) {
      timers.push(
        setTimeout(() => {
          chaos.push(applyChaos(stack, e.atS, e.action, () => killed++ % stack.workers.length, nowMs));
        }, e.atS * 1000),
      );
    }
  }
  const results: StageResult[] = [];
  const rates = flags.arrivals.kind === 'open' ? flags.arrivals.rates : [null];
  let budget = flags.maxRequests;
  const totals: Progress = { sent: 0, done: 0, failed: 0 };
  try {
    for (let s = 0; s < rates.length && budget > 0; s++) {
      const rate = rates[s]!;
      const arrivals: StageSpec['arrivals'] =
        flags.arrivals.kind === 'open' ? { kind: 'open', rate: rate!, burstiness: flags.arrivals.burstiness } : { kind: 'closed', connections: flags.arrivals.connections };
      const before = { ...totals };
      const result = await runStageInThread(
        {
          url: options.url,
          arrivals,
          durationMs: flags.durationS * 1000,
          maxRequests: budget,
          drainMs: flags.drainS * 1000,
          timeoutMs: flags.timeoutS * 1000,
          seed: flags.seed + s,
          apiKey: options.apiKey,
          workload: { stream: flags.stream, maxTokens: flags.maxTokens, model: flags.model, ...(options.prompts ? { prompts: options.prompts } : {}) },
          runStartEpochMs,
        },
        (p) => {
          totals.sent = before.sent + p.sent;
          totals.done = before.done + p.done;
          totals.failed = before.failed + p.failed;
          options.onProgress?.(totals);
        },
        options.signal,
      );
      budget -= result.columns.n;
      results.push(result);
    }
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  const records = await Promise.all(chaos);
  degradeRecovery(records, results);
  return summarize({ target: options.url, arrivals: flags.arrivals, startedAt, slo: flags.slo, results, chaos: records });
}
