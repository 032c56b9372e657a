/**
 * Loads what a worker serves from its configuration: the model directory's manifest and
 * tokenizer, the adapters, the engine (the onnxruntime session, or the simulated engine) and the
 * scheduler around it. Any file that cannot be used stops the start with one line naming it (an
 * AppError from the loaders).
 *
 * The simulated engine needs only `tokenizer.model`. With `model.json` beside it, the manifest
 * gives the model's name, context length, padded vocabulary and adapters (which requests may
 * name; the simulation does not apply them); without it, the model is named after its folder,
 * has a context of SIM_CONTEXT_LENGTH tokens and no adapters.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { Logger } from '../shared/logging.js';
import { MANIFEST_FILE, TOKENIZER_FILE, type ModelManifest } from '../shared/model-manifest.js';
import { ChatGLMTokenizer } from '../tokenizer/tokenizer.js';
import { loadAdapters, type AdapterSet } from './adapters.js';
import type { WorkerConfig } from './config.js';
import type { InferenceEngine } from './engine/engine.js';
import type { WorkerMetrics } from './metrics.js';
import { readManifest } from './engine/onnx-engine.js';
import { ThreadedEngine } from './engine/threaded-engine.js';
import { Scheduler } from './scheduler.js';
import { SimEngine } from './engine/sim-engine.js';
import { loadSimScript } from './engine/sim-script.js';

/** The simulated engine's context without a manifest: ChatGLM3-6B's. */
export const SIM_CONTEXT_LENGTH = 8192;

/** What a worker serves, once its model is loaded. */
export interface WorkerRuntime {
  engine: InferenceEngine;
  tokenizer: ChatGLMTokenizer;
  scheduler: Scheduler;
  adapters: AdapterSet;
}

/** Whether the worker's folder is enough as it is: a model, or for the simulated engine a tokenizer alone. */
export function servable(config: WorkerConfig): boolean {
  if (existsSync(join(config.modelDir, MANIFEST_FILE))) return true;
  return config.engine === 'sim' && existsSync(join(config.modelDir, TOKENIZER_FILE));
}

export async function loadWorkerRuntime(config: WorkerConfig, metrics: WorkerMetrics, logger?: Logger): Promise<WorkerRuntime> {
  const sim = config.engine === 'sim';
  const tokenizerOnly = sim && !existsSync(join(config.modelDir, MANIFEST_FILE)) && existsSync(join(config.modelDir, TOKENIZER_FILE));
  let manifest: ModelManifest | null = null;
  let tokenizer: ChatGLMTokenizer;
  let adapters: AdapterSet;
  if (tokenizerOnly) {
    tokenizer = await ChatGLMTokenizer.fromFile(join(config.modelDir, TOKENIZER_FILE));
    adapters = { mode: 'none', byName: new Map(), defaultAdapter: null, maxRank: 0, warnings: [] };
  } else {
    manifest = readManifest(config.modelDir);
    tokenizer = await ChatGLMTokenizer.fromFile(join(config.modelDir, manifest.tokenizer.file));
    if (tokenizer.eosId !== manifest.tokenizer.eos_token_id || tokenizer.spVocabSize !== manifest.tokenizer.sp_vocab_size) {
      logger?.warn(
        { manifest: manifest.tokenizer, tokenizer: { eos: tokenizer.eosId, sp_vocab_size: tokenizer.spVocabSize } },
        'model.json and tokenizer.model disagree; the tokenizer file is used',
      );
    }
    adapters = loadAdapters(manifest, config.adaptersDir);
  }
  for (const w of adapters.warnings) logger?.warn(w);
  let engine: InferenceEngine;
  if (sim) {
    const script = config.sim.script === '' ? [] : await loadSimScript(config.sim.script);
    engine = new SimEngine({
      tokenizer,
      script,
      model: manifest?.name ?? basename(resolve(config.modelDir)),
      contextLength: manifest?.context_length ?? SIM_CONTEXT_LENGTH,
      vocabSize: manifest?.dims.vocab_size ?? tokenizer.vocabSize,
      maxSequences: config.scheduler.maxRunningSequences,
      ttftMs: config.sim.ttftMs,
      itlMs: config.sim.itlMs,
    });
    logger?.info({ script: config.sim.script || null, entries: script.length, ttftMs: config.sim.ttftMs, itlMs: config.sim.itlMs }, 'simulated engine: scripted replies, no model runs');
  } else {
    // onnxruntime's run is synchronous: the engine lives in a worker thread, so this one stays free.
    engine = await ThreadedEngine.load({
      modelDir: config.modelDir,
      adaptersDir: config.adaptersDir,
      device: config.device,
      maxSequences: config.scheduler.maxRunningSequences,
      prefixCache: { maxBytes: Math.floor(config.prefixCache.maxMb * 1024 * 1024), blockTokens: config.prefixCache.blockTokens },
      logger,
    });
  }
  metrics.executionProvider.set({ provider: engine.info.executionProvider, requested: sim ? 'sim' : config.device.provider }, 1);
  const scheduler = new Scheduler(engine, tokenizer, config.scheduler, metrics);
  return { engine, tokenizer, scheduler, adapters };
}
