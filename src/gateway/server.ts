/**
 * Runs a gateway: builds the app, optionally starts local workers, listens, and shuts down on
 * SIGTERM/SIGINT: stop taking requests, let open streams finish (bounded by `drainTimeoutMs`),
 * stop the workers, exit 0. Used by `src/cli/gateway.ts` and `src/cli/start.ts`.
 *
 * With `processes` > 1, Node's cluster module runs that many gateway processes on one port
 * (the primary forks them and the kernel spreads connections): each is a whole gateway of its
 * own, sharing limits and the degrade switch only through Redis, as replicas on other hosts do.
 * The primary holds no app: it supervises the local workers (when there are any) and tells every
 * gateway process their URLs, restarts a gateway process that dies, and on SIGTERM/SIGINT stops
 * them all (each drains), then the workers.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { loggerOptions, type Logger } from '../shared/logging.js';
import { buildApp } from './app.js';
import type { GatewayConfig } from './config.js';
import { Supervisor } from './supervisor.js';

export interface ServeOptions {
  /** Local workers to supervise: the command and its arguments. */
  workers?: { command: string; args: string[] };
}

export interface RunningGateway {
  /** The app of this process; null in a cluster's primary, which serves nothing itself. */
  app: FastifyInstance | null;
  supervisor: Supervisor | null;
  address: string;
  shutdown(): Promise<void>;
}

/** What the primary tells its gateway processes. */
interface WorkerUrlsMessage {
  type: 'glm-worker-urls';
  urls: string[];
}

function isUrlsMessage(m: unknown): m is WorkerUrlsMessage {
  return typeof m === 'object' && m !== null && (m as WorkerUrlsMessage).type === 'glm-worker-urls' && Array.isArray((m as WorkerUrlsMessage).urls);
}

function supervise(config: GatewayConfig, options: ServeOptions, log: Logger, onChange: (urls: string[]) => void, onRestart: () => void): Supervisor | null {
  if (!options.workers || config.supervisor.workers === 0) return null;
  const s = config.supervisor;
  return new Supervisor({
    count: s.workers,
    command: options.workers.command,
    args: options.workers.args,
    host: s.host,
    restartMinMs: s.restartMinMs,
    restartMaxMs: s.restartMaxMs,
    stableMs: s.stableMs,
    stopTimeoutMs: s.stopTimeoutMs,
    onChange,
    onRestart,
    log,
  });
}

function onSignals(shutdown: () => Promise<void>, log: Logger): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      shutdown().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    });
  }
}

/** One gateway process (the only one, or one of a cluster's). */
async function serveOne(config: GatewayConfig, options: ServeOptions): Promise<RunningGateway> {
  const app = await buildApp(config);
  const fixed = config.workers.urls;
  const supervisor = cluster.isWorker
    ? null
    : supervise(config, options, app.log, (urls) => app.pool.setUrls([...fixed, ...urls]), () => app.metrics.workerRestarts.inc());
  // In a cluster the primary supervises the local workers and sends their URLs.
  if (cluster.isWorker) {
    process.on('message', (m: unknown) => {
      if (isUrlsMessage(m)) app.pool.setUrls([...fixed, ...m.urls]);
    });
  }
  await supervisor?.start();
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
  onSignals(shutdown, app.log);
  // A cluster's primary asks its processes to stop by disconnecting them (and one that went away
  // while this one was starting has already disconnected it).
  if (cluster.isWorker) {
    const stop = () => void shutdown().then(() => process.exit(0));
    if (cluster.worker!.isConnected()) cluster.worker!.on('disconnect', stop);
    else stop();
  }
  return { app, supervisor, address, shutdown };
}

/** The primary of a cluster: forks the gateway processes and supervises the local workers. */
async function servePrimary(config: GatewayConfig, options: ServeOptions, log: Logger): Promise<RunningGateway> {
  let urls: string[] = [];
  let stopping = false;
  const send = (w: ClusterWorker) => {
    if (w.isConnected()) w.send({ type: 'glm-worker-urls', urls } satisfies WorkerUrlsMessage);
  };
  const listening = new Set<number>();
  const fork = () => {
    const w = cluster.fork();
    w.on('online', () => send(w));
    w.on('listening', () => listening.add(w.id));
    w.on('exit', () => listening.delete(w.id));
    return w;
  };
  const supervisor = supervise(
    config,
    options,
    log,
    (next) => {
      urls = next;
      for (const w of Object.values(cluster.workers ?? {})) if (w) send(w);
    },
    () => {},
  );
  await supervisor?.start();
  const listened = new Promise<string>((resolve) => cluster.once('listening', (_w, a) => resolve(`http://${a.address ?? config.host}:${a.port}`)));
  for (let i = 0; i < config.processes; i++) fork();
  cluster.on('exit', (w, code, signal) => {
    if (stopping) return;
    log.warn({ pid: w.process.pid, code, signal }, 'a gateway process exited: starting another');
    fork();
  });
  const address = await listened;

  let closing: Promise<void> | null = null;
  const shutdown = () => {
    closing ??= (async () => {
      stopping = true;
      const all = Object.values(cluster.workers ?? {}).filter((w): w is ClusterWorker => w !== undefined);
      await Promise.all(
        all.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              // Each drains its open answers, then exits; killed if it outlives its drain. One
              // still starting has none: a signal stops it before it listens.
              const kill = setTimeout(() => w.kill('SIGKILL'), config.drainTimeoutMs + 5000);
              kill.unref();
              if (listening.has(w.id)) w.disconnect();
              else w.process.kill('SIGTERM');
            }),
        ),
      );
      await supervisor?.stop();
      log.info('stopped');
    })();
    return closing;
  };
  onSignals(shutdown, log);
  return { app: null, supervisor, address, shutdown };
}

/** Runs the gateway: one process, or `config.processes` of them on one port. */
export async function serve(config: GatewayConfig, options: ServeOptions = {}, log?: Logger): Promise<RunningGateway> {
  if (config.processes > 1 && cluster.isPrimary) return servePrimary(config, options, log ?? pino(loggerOptions(config.logLevel, 'gateway')));
  return serveOne(config, options);
}
