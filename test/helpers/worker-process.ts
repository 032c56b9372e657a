/**
 * Test helpers for the worker: a tiny model exported from the golden ChatGLM3 checkpoint into a
 * temporary folder (or the demo tiny model the service builds on first start), a worker process
 * started on it, and an NDJSON reader for /v1/generate.
 */
import { mkdtempSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureDemoModel } from '../../src/model/demo-model.js';
import { exportModel } from '../../src/model/export-model.js';
import type { GenerateEvent, GenerateRequestInput } from '../../src/protocol/schemas.js';
import { startNode, type NodeProcess } from './node-process.js';
import { CLI_DIR, GOLDEN_TINY_DIR } from './paths.js';

export const GOLDEN_ADAPTER_DIR = join(GOLDEN_TINY_DIR, 'lora-adapter');

export interface TinyModel {
  root: string;
  modelDir: string;
  /** An adapters folder holding the golden adapter as `legal` (a link, nothing copied). */
  adaptersDir: string;
  cleanup(): void;
}

/**
 * Exports the golden tiny model (`runtime` LoRA inputs, `merge`d, or `none`) into a temp folder;
 * `context` widens its context (the golden one is 256) where a test needs long, slow prompts.
 */
export async function exportTinyModel(mode: 'runtime' | 'merge' | 'none' = 'runtime', context?: number): Promise<TinyModel> {
  const root = mkdtempSync(join(tmpdir(), 'worker-test-'));
  const modelDir = join(root, 'model');
  await exportModel({
    hfDir: GOLDEN_TINY_DIR,
    outDir: modelDir,
    logits: 'last',
    ...(context ? { context } : {}),
    ...(mode === 'none' ? {} : { adapterDir: GOLDEN_ADAPTER_DIR, adapterMode: mode }),
  });
  const adaptersDir = join(root, 'adapters');
  mkdirSync(adaptersDir);
  symlinkSync(GOLDEN_ADAPTER_DIR, join(adaptersDir, 'legal'));
  return { root, modelDir, adaptersDir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The demo tiny model (`npm start`'s: model.json, tokenizer.model, random weights) in a temp folder. */
export async function demoTinyModel(): Promise<TinyModel> {
  const root = mkdtempSync(join(tmpdir(), 'worker-demo-'));
  const modelDir = join(root, 'model');
  await ensureDemoModel(modelDir, 'tiny');
  const adaptersDir = join(root, 'adapters');
  mkdirSync(adaptersDir);
  return { root, modelDir, adaptersDir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export type WorkerProcess = NodeProcess;

/**
 * A worker process on `env` (WORKER_* variables), once its model is loaded (/readyz); `stop` kills
 * it. `port`: where to listen (a worker started again where it was), by default a free port.
 */
export async function startWorker(env: Record<string, string>, port?: number): Promise<WorkerProcess> {
  const p = await startNode(
    join(CLI_DIR, 'worker.js'),
    { env: { ...process.env, WORKER_LOG_LEVEL: 'warn', WORKER_DEVICE_INTRA_OP_THREADS: '1', ...env }, portEnv: 'WORKER_PORT', ...(port === undefined ? {} : { port }) },
    '/readyz',
    15_000,
  );
  return { ...p, stop: () => p.stop(0) };
}

/**
 * A worker on the simulated engine over a model folder: timings of `ttftMs` and `itlMs` (default
 * 0), and a script of replies when `script` is given (written beside the model as JSONL). `env`
 * adds or overrides WORKER_* variables.
 */
export async function startSimWorker(
  model: TinyModel,
  options: { ttftMs?: number; itlMs?: number; script?: readonly object[]; env?: Record<string, string> } = {},
): Promise<WorkerProcess & { scriptFile?: string }> {
  let scriptFile: string | undefined;
  if (options.script) {
    scriptFile = join(model.root, 'script.jsonl');
    writeFileSync(scriptFile, options.script.map((e) => JSON.stringify(e)).join('\n'));
  }
  const worker = await startWorker({
    WORKER_ENGINE: 'sim',
    WORKER_MODEL_DIR: model.modelDir,
    WORKER_ADAPTERS_DIR: model.adaptersDir,
    WORKER_SIM_TTFT_MS: String(options.ttftMs ?? 0),
    WORKER_SIM_ITL_MS: String(options.itlMs ?? 0),
    ...(scriptFile ? { WORKER_SIM_SCRIPT: scriptFile } : {}),
    ...options.env,
  });
  return scriptFile ? { ...worker, scriptFile } : worker;
}

/** Reads an NDJSON stream to its end; `onEvent` may abort the request. */
export async function generate(
  url: string,
  body: GenerateRequestInput | unknown,
  options: { signal?: AbortSignal; onEvent?: (e: GenerateEvent) => void } = {},
): Promise<{ status: number; events: GenerateEvent[]; error?: unknown; headers: Headers; json?: unknown }> {
  const res = await fetch(`${url}/v1/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(options.signal ? { signal: options.signal } : {}),
  });
  if (!res.headers.get('content-type')?.startsWith('application/x-ndjson')) {
    return { status: res.status, events: [], headers: res.headers, json: await res.json() };
  }
  const events: GenerateEvent[] = [];
  let buffer = '';
  try {
    for await (const chunk of res.body!) {
      buffer += Buffer.from(chunk as Uint8Array).toString('utf8');
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, nl)) as GenerateEvent;
        buffer = buffer.slice(nl + 1);
        events.push(event);
        options.onEvent?.(event);
      }
    }
  } catch (error) {
    return { status: res.status, events, error, headers: res.headers };
  }
  return { status: res.status, events, headers: res.headers };
}

export const tokenIds = (events: GenerateEvent[]) => events.flatMap((e) => (e.type === 'token' ? e.ids : []));

/**
 * A metric's value from Prometheus text: the first sample line that starts with `sample` (a name,
 * or a name with the first labels, e.g. `worker_requests_total{finish_reason="cancelled"`).
 */
export async function metric(url: string, sample: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(sample) && [' ', '{', ','].includes(l[sample.length] ?? ''));
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : Number.NaN;
}
