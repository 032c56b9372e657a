/**
 * Loads what a worker serves from its configuration: the model directory's manifest and
 * tokenizer, the adapters, the onnxruntime session and the scheduler around it. Any file that
 * cannot be used stops the start with one line naming it (an AppError from the loaders).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { MANIFEST_FILE } from '../shared/model-manifest.js';
import { ChatGLMTokenizer } from '../shared/tokenizer.js';
import { ensureDemoModel } from '../model/demo-model.js';
import { loadAdapters } from './adapters.js';
import type { WorkerRuntime } from './app.js';
import type { WorkerConfig } from './config.js';
import type { WorkerMetrics } from './metrics.js';
import { readManifest } from './engine/onnx-engine.js';
import { ThreadedEngine } from './engine/threaded-engine.js';
import { Scheduler } from './scheduler.js';

export async function loadWorkerRuntime(config: WorkerConfig, metrics: WorkerMetrics, logger?: Logger): Promise<WorkerRuntime> {
  if (config.demoModel !== 'off' && !existsSync(join(config.modelDir, MANIFEST_FILE))) {
    logger?.warn({ modelDir: config.modelDir, preset: config.demoModel }, 'no model here: building the random-weight demo model (WORKER_DEMO_MODEL=off to refuse instead)');
    await ensureDemoModel(config.modelDir, config.demoModel);
  }
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
  const engine = await ThreadedEngine.load({
    modelDir: config.modelDir,
    adaptersDir: config.adaptersDir,
    device: config.device,
    maxSequences: config.scheduler.maxRunningSequences,
    prefixCache: { maxBytes: Math.floor(config.prefixCache.maxMb * 1024 * 1024), blockTokens: config.prefixCache.blockTokens },
    logger,
  });
  metrics.executionProvider.set({ provider: engine.info.executionProvider, requested: config.device.provider }, 1);
  const scheduler = new Scheduler(engine, tokenizer, config.scheduler, metrics);
  return { engine, tokenizer, scheduler, adapters };
}
