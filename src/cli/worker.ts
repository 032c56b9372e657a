/**
 * `npm run worker`: one inference worker. Configuration from WORKER_* variables (README,
 * "Worker"); the gateway's supervisor spawns it with WORKER_PORT, WORKER_MODEL_DIR,
 * WORKER_ADAPTERS_DIR and WORKER_DEVICE_DEVICE_ID. It listens first (so /healthz answers and
 * /readyz says 503 while the model loads), then loads the model. SIGTERM/SIGINT: stop taking
 * requests, give running ones `shutdownGraceMs`, then exit.
 */
import pino from 'pino';
import { ConfigError } from '../shared/config.js';
import { AppError } from '../shared/errors.js';
import { loggerOptions } from '../shared/logging.js';
import { buildWorkerApp } from '../worker/app.js';
import { loadWorkerConfig } from '../worker/config.js';
import { createWorkerMetrics, tierLabels } from '../worker/metrics.js';
import { loadWorkerRuntime, servable } from '../worker/runtime.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino(loggerOptions(config.logLevel, 'worker'));
  const metrics = createWorkerMetrics(undefined, { tiers: tierLabels(config.scheduler.tierWeights) });
  const worker = buildWorkerApp({ metrics, logger });
  const address = await worker.app.listen({ host: config.host, port: config.port });
  logger.info({ address, pid: process.pid }, 'worker listening; loading the model');

  let runtime: Awaited<ReturnType<typeof loadWorkerRuntime>>;
  try {
    if (config.demoModel !== 'off' && !servable(config)) {
      logger.warn({ modelDir: config.modelDir, preset: config.demoModel }, 'no model here: building the random-weight demo model (WORKER_DEMO_MODEL=off to refuse instead)');
      // The builder is loaded only here: the worker itself never imports it.
      const { ensureDemoModel } = await import('../model/demo-model.js');
      await ensureDemoModel(config.modelDir, config.demoModel);
    }
    runtime = await loadWorkerRuntime(config, metrics, logger);
  } catch (err) {
    const message = err instanceof AppError || err instanceof Error ? err.message : String(err);
    logger.fatal({ code: err instanceof AppError ? err.code : undefined }, message);
    console.error(message);
    await worker.app.close();
    process.exit(1);
  }
  worker.setRuntime(runtime);
  logger.info(
    {
      model: runtime.engine.info.model,
      execution_provider: runtime.engine.info.executionProvider,
      requested_provider: config.device.provider,
      adapters: [...runtime.adapters.byName.keys()],
      adapter_mode: runtime.adapters.mode,
      context_length: runtime.engine.info.contextLength,
    },
    'worker ready',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    worker.setDraining();
    await runtime.scheduler.drain(config.shutdownGraceMs);
    await worker.app.close();
    await runtime.engine.dispose();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

void main();
