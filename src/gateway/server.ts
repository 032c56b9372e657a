/**
 * Runs a gateway: builds the app, optionally starts local workers, listens, and shuts down on
 * SIGTERM/SIGINT: stop taking requests, let open streams finish (bounded by
 * `drainTimeoutMs`), stop the workers, exit 0. Used by `src/cli/gateway.ts` and `src/cli/start.ts`.
 */
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import type { GatewayConfig } from './config.js';
import { Supervisor } from './supervisor.js';

export interface ServeOptions {
  /** Local workers to supervise: the command and its arguments. */
  workers?: { command: string; args: string[] };
}

export interface RunningGateway {
  app: FastifyInstance;
  supervisor: Supervisor | null;
  address: string;
  shutdown(): Promise<void>;
}

export async function serve(config: GatewayConfig, options: ServeOptions = {}): Promise<RunningGateway> {
  const app = await buildApp(config);
  let supervisor: Supervisor | null = null;
  if (options.workers && config.supervisor.workers > 0) {
    const s = config.supervisor;
    const fixed = config.workers.urls;
    supervisor = new Supervisor({
      count: s.workers,
      command: options.workers.command,
      args: options.workers.args,
      host: s.host,
      restartMinMs: s.restartMinMs,
      restartMaxMs: s.restartMaxMs,
      stableMs: s.stableMs,
      stopTimeoutMs: s.stopTimeoutMs,
      onChange: (urls) => app.pool.setUrls([...fixed, ...urls]),
      onRestart: () => app.metrics.workerRestarts.inc(),
      log: app.log,
    });
    await supervisor.start();
  }
  const address = await app.listen({ host: config.host, port: config.port });

  let closing: Promise<void> | null = null;
  const shutdown = () => {
    closing ??= (async () => {
      app.log.info({ drainTimeoutMs: config.drainTimeoutMs, inProgress: app.answerer.inProgress }, 'shutting down: draining open answers');
      await app.close();
      await supervisor?.stop();
      app.log.info('stopped');
    })();
    return closing;
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          app.log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
  return { app, supervisor, address, shutdown };
}
