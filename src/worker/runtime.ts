/**
 * Loads what a worker serves from its configuration: the model directory's manifest and
 * tokenizer, the adapters, the onnxruntime session and the scheduler around it. Any file that
 * cannot be used stops the start with one line naming it (an AppError from the loaders).
 */
import { join } from 'node:path';
import type { Logger } from '../shared/logging.js';
import { ChatGLMTokenizer } from '../tokenizer/tokenizer.js';
import { loadAdapters, type AdapterSet } from './adapters.js';
import type { WorkerConfig } from './config.js';
import type { InferenceEngine } from './engine.js';
import type { WorkerMetrics } from './metrics.js';
import { OnnxEngine, readManifest } from './onnx-engine.js';
import { Scheduler } from './scheduler.js';

/** What a worker serves, once its model is loaded. */
export interface WorkerRuntime {
  engine: InferenceEngine;
  tokenizer: ChatGLMTokenizer;
  scheduler: Scheduler;
  adapters: AdapterSet;
}

export async function loadWorkerRuntime(config: WorkerConfig, metrics: WorkerMetrics, logger?: Logger): Promise<WorkerRuntime> {
  const manifest = readManifest(config.modelDir);
  const tokenizer = await ChatGLMTokenizer.fromFile(join(config.modelDir, manifest.tokenizer.file));
  if (tokenizer.eosId !== manifest.tokenizer.eos_token_id || tokenizer.spVocabSize !== manifest.tokenizer.sp_vocab_size) {
    logger?.warn(
      { manifest: manifest.tokenizer, tokenizer: { eos: tokenizer.eosId, sp_vocab_size: tokenizer.spVocabSize } },
      'model.json and tokenizer.model disagree; the tokenizer file is used',
    );
  }
  const adapters = loadAdapters(manifest, config.adaptersDir);
  for (const w of adapters.warnings) logger?.warn(w);
  const engine = await OnnxEngine.load({
    modelDir: config.modelDir,
    device: config.device,
    maxSequences: config.scheduler.maxRunningSequences,
    adapters,
    logger,
  });
  metrics.executionProvider.set({ provider: engine.info.executionProvider, requested: config.device.provider }, 1);
  const scheduler = new Scheduler(engine, tokenizer, config.scheduler, metrics);
  return { engine, tokenizer, scheduler, adapters };
}
