/**
 * `npm start`: the whole service on one machine. A gateway on http://127.0.0.1:8080 (config
 * prefix GATEWAY, see README) that runs `supervisor.workers` local worker processes
 * (`dist/src/cli/worker.js`, configured by WORKER_* variables) and restarts them when they
 * crash. When the worker's model directory is the default one, the demo model is made there
 * first (random weights, a few seconds, once), and a random demo adapter `legal-demo` in the
 * default adapters folder (adapters/, git-ignored there) unless another folder is configured.
 * The workers serve every adapter in that folder. Anonymous access is on unless configured
 * otherwise, so that `curl` and OpenAI clients work on a fresh clone.
 */
import cluster from 'node:cluster';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../shared/config.js';
import { loadGatewayConfig, type GatewayConfig } from '../gateway/config.js';
import { serve } from '../gateway/server.js';

const WORKER_CLI = join(dirname(fileURLToPath(import.meta.url)), 'worker.js');

try {
  const config = loadGatewayConfig(process.env, { auth: { anonymous: true } });
  // A process of a gateway cluster (GATEWAY_PROCESSES > 1) only serves: its primary made the
  // model, supervises the workers and prints the banner.
  if (cluster.isWorker) {
    await serve(config);
  } else {
    await main(config);
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(1);
  }
  throw err;
}

async function main(config: GatewayConfig): Promise<void> {
  const s = config.supervisor;
  let workers: { command: string; args: string[] } | undefined;
  let banner: string;
  if (s.workers === 0) {
    banner = 'no local workers (GATEWAY_SUPERVISOR_WORKERS=0)';
  } else if (s.command) {
    workers = { command: s.command, args: s.args };
    banner = `${s.workers} local worker(s): ${s.command} ${s.args.join(' ')}`;
  } else {
    workers = { command: process.execPath, args: [WORKER_CLI, ...s.args] };
    // Loaded here only: the gateway itself never imports the model code.
    const { loadWorkerConfig, WorkerConfigSchema } = await import('../worker/config.js');
    const { modelDir, adaptersDir, engine } = loadWorkerConfig(process.env);
    const answers = engine === 'sim' ? 'the simulated engine: scripted replies or a filler' : 'random weights: the answers are noise';
    const defaults = WorkerConfigSchema.parse({});
    if (modelDir === defaults.modelDir) {
      const { ensureDemoAdapter, ensureDemoModel } = await import('../model/demo-model.js');
      const manifest = await ensureDemoModel(modelDir, 'tiny');
      let adapters = '';
      if (adaptersDir === defaults.adaptersDir) {
        ensureDemoAdapter(adaptersDir, manifest, 'tiny');
        adapters = ` with the adapters of ${adaptersDir}/ (the random \`legal-demo\` among them)`;
      }
      banner = `${s.workers} local worker(s) serving the demo model ${manifest.name}${adapters} (${answers}) from ${modelDir}`;
    } else {
      banner = `${s.workers} local worker(s) serving ${modelDir}${engine === 'sim' ? ' (the simulated engine)' : ''}`;
    }
  }
  const running = await serve(config, workers ? { workers } : {});
  const app = running.app;
  const kb = app?.fallback.knowledgeBaseSize;
  console.log(
    [
      `glm-legal-serve gateway on ${running.address}${app ? '' : ` (${config.processes} processes)`}`,
      `  workers:  ${banner}`,
      app
        ? `  fallback: degrade mode ${app.degrade.state.mode}, knowledge base of ${kb} entries${kb === 0 ? ' (canned answers only)' : ''}`
        : `  fallback: degrade mode ${config.degrade.mode} at start, in each process`,
      app
        ? `  redis:    ${app.redis ? `${config.redis.url} (${app.degrade.store === 'redis' ? 'connected' : 'unreachable: degrade flag kept in-process'})` : 'off'}`
        : `  redis:    ${config.redis.url || 'off (each process keeps its own limits and degrade switch)'}`,
      `  auth:     ${config.auth.anonymous ? 'anonymous access on' : 'API key required'}`,
      `  try:      curl -s ${running.address}/v1/chat -H 'content-type: application/json' -d '{"messages":[{"role":"user","content":"借钱不还怎么办？"}]}'`,
    ].join('\n'),
  );
}
