/**
 * The worker's configuration (prefix `WORKER`): `WORKER_PORT`, `WORKER_MODEL_DIR`,
 * `WORKER_DEVICE_PROVIDER`, ... The gateway's supervisor sets port, model dir, adapters dir and
 * device id through these variables when it spawns a worker.
 */
import { z } from 'zod';
import { loadConfig } from '../shared/config.js';
import { LOG_LEVELS } from '../shared/logging.js';

export const WORKER_CONFIG_PREFIX = 'WORKER';

export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;

export const WorkerConfigSchema = z.object({
  host: z.string().min(1).default('127.0.0.1').describe('address the worker listens on'),
  port: z.number().int().min(0).max(65535).default(8081).describe('HTTP port (0: any free port, printed at start)'),
  logLevel: z.enum(LOG_LEVELS).default('info').describe('pino log level'),
  modelDir: z
    .string()
    .min(1)
    .default('models/demo-tiny')
    .describe('model directory written by the model builder (model.json, model.onnx, tokenizer.model)'),
  engine: z
    .enum(['onnx', 'sim'])
    .default('onnx')
    .describe('`onnx`: the model of modelDir on onnxruntime; `sim`: the simulated engine (scripted replies at set timings, needs only the tokenizer; README, "Simulated engine")'),
  demoModel: z
    .enum(['tiny', 'bench', 'off'])
    .default('tiny')
    .describe('when modelDir holds no model.json (the `sim` engine: nor a tokenizer.model), build this random-weight demo model there first (off: refuse to start); set off in production'),
  adaptersDir: z
    .string()
    .min(1)
    .default('adapters')
    .describe('folder of PEFT LoRA adapters, one sub-folder each (a missing folder means no adapters)'),
  device: z
    .object({
      provider: z.enum(['cpu', 'cuda']).default('cpu').describe('execution provider; `cuda` falls back to `cpu` when it cannot start'),
      deviceId: z.number().int().min(0).default(0).describe('GPU index for `cuda`'),
      intraOpThreads: z.number().int().min(0).default(0).describe('onnxruntime intra-op threads (0: onnxruntime decides)'),
      interOpThreads: z.number().int().min(0).default(0).describe('onnxruntime inter-op threads (0: onnxruntime decides)'),
      graphOptimizationLevel: z
        .enum(GRAPH_OPTIMIZATION_LEVELS)
        .default('all')
        .describe('onnxruntime graph optimization level'),
    })
    .prefault({}),
  scheduler: z
    .object({
      maxRunningSequences: z.number().int().min(1).max(256).default(8).describe('sequences decoded together (rows of the KV cache)'),
      maxKvTokens: z
        .number()
        .int()
        .min(1)
        .default(16384)
        .describe('KV-cache tokens reserved by running sequences at most (prompt + max_tokens each)'),
      maxQueue: z.number().int().min(0).default(64).describe('waiting requests at most; more are refused with OVERLOADED (503)'),
      prefillChunkTokens: z
        .number()
        .int()
        .min(1)
        .default(128)
        .describe('prompt tokens prefilled between two decode steps (long prompts are split, so running sequences keep streaming beside them)'),
      policy: z
        .enum(['fair', 'fcfs'])
        .default('fair')
        .describe('admission: `fair` shares the worker between tenants by virtual token counters (a lone tenant gets all of it); `fcfs` admits in arrival order'),
      tierWeights: z
        .record(z.string().min(1).max(64), z.number().positive())
        .default({ anonymous: 1, free: 1, standard: 2, pro: 4 })
        .describe('tier name → weight for `fair` (a tier of weight 2 gets twice the tokens of weight 1 while both wait); other tiers weigh 1'),
    })
    .prefault({}),
  prefixCache: z
    .object({
      maxMb: z
        .number()
        .min(0)
        .default(256)
        .describe('memory for the KV of prompt prefixes kept for later requests with the same prefix, in MiB (0: no prefix cache)'),
      blockTokens: z.number().int().min(1).max(1024).default(16).describe('prompt tokens per prefix-cache block (prefixes are reused in whole blocks)'),
    })
    .prefault({}),
  sim: z
    .object({
      script: z
        .string()
        .default('')
        .describe('`sim` engine: JSONL file of `{"match", "reply"}` lines, the first whose match is in the last user message (or the tool result after it) answers (empty: every reply is the filler)'),
      ttftMs: z.number().min(0).max(600_000).default(200).describe('`sim` engine: time from admission to the first token, in ms'),
      itlMs: z.number().min(0).max(600_000).default(40).describe('`sim` engine: time of one decode step for the whole batch, in ms'),
    })
    .prefault({}),
  shutdownGraceMs: z.number().int().min(0).default(8000).describe('on SIGTERM, time given to running requests before they end with an error event (below the supervisor stop timeout)'),
});

export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

export function loadWorkerConfig(env: NodeJS.ProcessEnv = process.env, overrides?: Record<string, unknown>): WorkerConfig {
  return loadConfig({ prefix: WORKER_CONFIG_PREFIX, schema: WorkerConfigSchema, env, ...(overrides ? { overrides } : {}) });
}
