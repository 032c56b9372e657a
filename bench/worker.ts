/**
 * `npm run bench:worker [-- --model DIR] [--threads N] [--tokens N] [--rounds N]`: the worker's scheduler and
 * onnxruntime engine on a model directory, on CPU. The default, `models/demo-bench`, is the
 * model builder's `bench` demo model (~140 M parameters), built there on first use. Measured side by side in one run:
 *   - single-stream decode tokens/s, and aggregate tokens/s with 8 concurrent streams (ratio);
 *   - the share of each decode step spent outside `session.run` (scheduling, sampling, feeds);
 *   - decode time per token at context 64 and at context 1024 (ratio);
 *   - time to first token for a 512-token prompt;
 *   - time to first token for a 512-token shared prefix plus a 16-token question, cold (the prefix
 *     never seen) and warm (the prefix in the prefix cache, a new question);
 *   - the int4 export of the same model (built beside it on first use, `--int4 off` skips it):
 *     single-stream and 8-stream decode, alternated with the fp32 figures.
 * Prints a table, then one JSON line. Greedy decoding; random-weight models may hit a stop id
 * early, so rates use the tokens actually generated.
 */
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { DEMO_PRESETS, demoModelName, ensureDemoModel, writeRandomCheckpoint } from '../src/model/demo-model.js';
import { exportModel } from '../src/model/export-model.js';
import type { GenerateEvent } from '../src/protocol/schemas.js';
import { ChatGLMTokenizer } from '../src/tokenizer/tokenizer.js';
import { createWorkerMetrics } from '../src/worker/metrics.js';
import { readManifest } from '../src/worker/engine/onnx-engine.js';
import { ThreadedEngine } from '../src/worker/engine/threaded-engine.js';
import { Scheduler, type ScheduledRequest } from '../src/worker/scheduler.js';

const DEFAULT_MODEL = 'models/demo-bench';
const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: DEFAULT_MODEL },
    threads: { type: 'string', default: '0' },
    tokens: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    int4: { type: 'string', default: 'on' },
  },
});

const modelDir = resolve(args.model!);
if (!existsSync(join(modelDir, 'model.json'))) {
  if (args.model !== DEFAULT_MODEL) {
    console.error(`${modelDir}: no model.json here`);
    process.exit(2);
  }
  console.log(`building the bench demo model in ${modelDir} (once)…`);
  await ensureDemoModel(modelDir, 'bench');
}
const newTokens = Number(args.tokens);

/** The same random checkpoint (same seed) as the bench demo model, exported with int4 weights. */
async function ensureInt4Model(dir: string): Promise<void> {
  if (existsSync(join(dir, 'model.json'))) return;
  console.log(`building the int4 bench model in ${dir} (once)…`);
  const hf = mkdtempSync(join(tmpdir(), 'bench-int4-hf-'));
  try {
    writeRandomCheckpoint(hf, DEMO_PRESETS.bench, { seed: 0 });
    await exportModel({ hfDir: hf, outDir: dir, name: `${demoModelName('bench')}-int4`, logits: 'last', quant: 'int4', adapterMode: 'runtime', force: true });
  } finally {
    rmSync(hf, { recursive: true, force: true });
  }
}
const int4Dir = args.int4 === 'off' ? null : `${modelDir}-int4`;
if (int4Dir) await ensureInt4Model(int4Dir);

const manifest = readManifest(modelDir);
const tokenizer = await ChatGLMTokenizer.fromFile(join(modelDir, manifest.tokenizer.file));

function serve(dir: string) {
  return ThreadedEngine.load({
    modelDir: dir,
    adaptersDir: join(dir, 'no-adapters'),
    device: { provider: 'cpu', deviceId: 0, intraOpThreads: Number(args.threads), interOpThreads: 0, graphOptimizationLevel: 'all' },
    maxSequences: 8,
    prefixCache: { maxBytes: 256 * 1024 * 1024, blockTokens: 16 },
  });
}
const engine = await serve(modelDir);
const metrics = createWorkerMetrics();
const SCHEDULER = { maxRunningSequences: 8, maxKvTokens: 8 * 2048, maxQueue: 64, prefillChunkTokens: 2048 };
const scheduler = new Scheduler(engine, tokenizer, SCHEDULER, metrics);
const int4Engine = int4Dir ? await serve(int4Dir) : null;
const int4Scheduler = int4Engine ? new Scheduler(int4Engine, tokenizer, SCHEDULER, createWorkerMetrics()) : null;

/** A prompt of `n` ordinary token ids (no stop ids), different per `salt`. */
function prompt(n: number, salt: number): number[] {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) ids.push(10 + ((i * 131 + salt * 977) % (tokenizer.spVocabSize - 20)));
  return ids;
}

interface Result {
  tokens: number;
  firstTokenMs: number;
  endMs: number;
  ttftMs: number;
}

function run(promptIds: number[], maxTokens: number, on: Scheduler = scheduler): Promise<Result> {
  let first = 0;
  let tokens = 0;
  const req: ScheduledRequest = {
    id: 'bench',
    promptIds,
    adapter: null,
    maxTokens,
    sampling: { temperature: 0, top_p: 1 },
    stop: [],
    chat: false,
  };
  return new Promise((resolvePromise, reject) => {
    on.submit(req, (e: GenerateEvent) => {
      if (e.type === 'token' && e.ids.length) {
        tokens++;
        if (tokens === 1) first = performance.now();
      }
      if (e.type === 'error') reject(new Error(e.message));
      if (e.type === 'end') resolvePromise({ tokens, firstTokenMs: first, endMs: performance.now(), ttftMs: e.timings.ttft_ms });
    });
  });
}

/** Decode rate of one or more concurrent streams: tokens after each stream's first, over the decode window. */
async function decodeRate(
  streams: number,
  context: number,
  on: Scheduler = scheduler,
): Promise<{ tokensPerSecond: number; msPerToken: number; tokens: number }> {
  const results = await Promise.all(Array.from({ length: streams }, (_, i) => run(prompt(context, i + streams * 10), newTokens + 1, on)));
  const start = Math.max(...results.map((r) => r.firstTokenMs));
  const end = Math.max(...results.map((r) => r.endMs));
  // Only count tokens produced while every stream was decoding (after the last first token).
  const decoded = results.reduce((n, r) => n + r.tokens - 1, 0);
  const seconds = (end - start) / 1000;
  const steps = Math.max(...results.map((r) => r.tokens - 1));
  return { tokensPerSecond: decoded / seconds, msPerToken: (end - start) / steps, tokens: decoded };
}

// warm-up: onnxruntime plans its kernels on the first runs
await decodeRate(1, 32);
await decodeRate(8, 32);
if (int4Scheduler) {
  await decodeRate(1, 32, int4Scheduler);
  await decodeRate(8, 32, int4Scheduler);
}

// Pairs to compare run alternately, ROUNDS times, and each figure is the median: a busy machine
// then slows both sides of a ratio alike.
const ROUNDS = Number(args.rounds);
const singles: number[] = [];
const eights: number[] = [];
const ctx64s: number[] = [];
const ctx1024s: number[] = [];
const int4Singles: number[] = [];
const int4Eights: number[] = [];
let stepMs = 0;
let runMs = 0;
let steps8 = 0;
const stepSum = (m: Awaited<ReturnType<typeof metrics.stepSeconds.get>>) =>
  m.values.find((v) => v.metricName === 'worker_step_duration_seconds_sum')!.value;
const stepCount = (m: Awaited<ReturnType<typeof metrics.stepSeconds.get>>) =>
  m.values.find((v) => v.metricName === 'worker_step_duration_seconds_count')!.value;
for (let r = 0; r < ROUNDS; r++) {
  singles.push((await decodeRate(1, 64)).tokensPerSecond);
  const before = engine.runStats.decodeMs;
  const stepsBefore = await metrics.stepSeconds.get();
  eights.push((await decodeRate(8, 64)).tokensPerSecond);
  const stepsAfter = await metrics.stepSeconds.get();
  stepMs += (stepSum(stepsAfter) - stepSum(stepsBefore)) * 1000;
  runMs += engine.runStats.decodeMs - before;
  steps8 += stepCount(stepsAfter) - stepCount(stepsBefore);
  ctx64s.push((await decodeRate(1, 64)).msPerToken);
  ctx1024s.push((await decodeRate(1, 1024)).msPerToken);
  if (int4Scheduler) {
    int4Singles.push((await decodeRate(1, 64, int4Scheduler)).tokensPerSecond);
    int4Eights.push((await decodeRate(8, 64, int4Scheduler)).tokensPerSecond);
  }
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const single = { tokensPerSecond: median(singles) };
const eight = { tokensPerSecond: median(eights) };
const ctx64 = { msPerToken: median(ctx64s) };
const ctx1024 = { msPerToken: median(ctx1024s) };
const outsideShare = (stepMs - runMs) / stepMs;
const ttfts: number[] = [];
for (let i = 0; i < 3; i++) ttfts.push((await run(prompt(512, 100 + i), 1)).ttftMs);
ttfts.sort((a, b) => a - b);
const ttft512 = ttfts[1]!;

// A shared prefix: cold the first time it is seen, then warm with another question.
const colds: number[] = [];
const warms: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  const prefix = prompt(512, 300 + i);
  colds.push((await run([...prefix, ...prompt(16, 400 + i)], 1)).ttftMs);
  warms.push((await run([...prefix, ...prompt(16, 500 + i)], 1)).ttftMs);
}
const cold = median(colds);
const warm = median(warms);
const counter = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
const cachedTokens = await counter('worker_prefix_cache_cached_tokens_total');

await scheduler.drain(0);
await engine.dispose();
await int4Scheduler?.drain(0);
await int4Engine?.dispose();
const int4 = int4Engine ? { single: median(int4Singles), eight: median(int4Eights) } : null;

const result = {
  model: manifest.name,
  params: {
    layers: manifest.dims.num_layers,
    hidden: manifest.dims.hidden_size,
    vocab: manifest.dims.vocab_size,
  },
  execution_provider: engine.info.executionProvider,
  cpus: cpus().length,
  // Other processes on the machine slow every figure; the 1-minute load average says how busy it was.
  load_average_1m: round(loadavg()[0]!),
  threads: Number(args.threads) || 'default',
  single_stream_tokens_per_s: round(single.tokensPerSecond),
  eight_streams_tokens_per_s: round(eight.tokensPerSecond),
  concurrency_ratio: round(eight.tokensPerSecond / single.tokensPerSecond),
  decode_step_ms_8_streams: round(stepMs / steps8),
  session_run_ms_per_step: round(runMs / steps8),
  outside_session_run_share: round(outsideShare, 4),
  ms_per_token_ctx64: round(ctx64.msPerToken),
  ms_per_token_ctx1024: round(ctx1024.msPerToken),
  ctx1024_over_ctx64: round(ctx1024.msPerToken / ctx64.msPerToken),
  ttft_ms_512_prompt: round(ttft512),
  ttft_ms_shared_prefix_cold: round(cold),
  ttft_ms_shared_prefix_warm: round(warm),
  prefix_cache_speedup: round(cold / warm),
  prefix_cache_cached_tokens: cachedTokens,
  int4_single_stream_tokens_per_s: int4 ? round(int4.single) : null,
  int4_eight_streams_tokens_per_s: int4 ? round(int4.eight) : null,
  int4_concurrency_ratio: int4 ? round(int4.eight / int4.single) : null,
  int4_over_fp32_single_stream: int4 ? round(int4.single / single.tokensPerSecond) : null,
  rounds: ROUNDS,
};

const rows: Array<[string, string, string]> = [
  ['single-stream decode', `${result.single_stream_tokens_per_s} tok/s`, `median of ${ROUNDS} rounds`],
  ['8 concurrent streams', `${result.eight_streams_tokens_per_s} tok/s`, `${result.concurrency_ratio}× single (target ≥ 3×)`],
  ['decode step (8 streams)', `${result.decode_step_ms_8_streams} ms`, `session.run ${result.session_run_ms_per_step} ms`],
  ['outside session.run', `${(outsideShare * 100).toFixed(1)} %`, 'target < 10 %'],
  ['decode per token, context 64', `${result.ms_per_token_ctx64} ms`, ''],
  ['decode per token, context 1024', `${result.ms_per_token_ctx1024} ms`, `${result.ctx1024_over_ctx64}× context 64 (target ≤ 1.5×)`],
  ['time to first token, 512-token prompt', `${result.ttft_ms_512_prompt} ms`, 'median of 3'],
  ['TTFT, 512 shared + 16 new, cold', `${result.ttft_ms_shared_prefix_cold} ms`, `median of ${ROUNDS}`],
  ['TTFT, 512 shared + 16 new, warm', `${result.ttft_ms_shared_prefix_warm} ms`, `${result.prefix_cache_speedup}× faster (target ≥ 5×)`],
];
if (int4) {
  rows.push(
    ['int4 single-stream decode', `${result.int4_single_stream_tokens_per_s} tok/s`, `${result.int4_over_fp32_single_stream}× fp32`],
    ['int4 8 concurrent streams', `${result.int4_eight_streams_tokens_per_s} tok/s`, `${result.int4_concurrency_ratio}× int4 single`],
  );
}
const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
console.log(
  `worker benchmark: ${manifest.name} (${manifest.dims.num_layers} layers, hidden ${manifest.dims.hidden_size}) on ${engine.info.executionProvider}, ${cpus().length} CPUs, load average ${result.load_average_1m}`,
);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
console.log(JSON.stringify(result));

function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
