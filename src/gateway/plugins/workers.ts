/**
 * The workers: the pool (targets, health checks, least-outstanding pick), the dispatcher (one
 * generation, retried on another worker while nothing has streamed) and the breaker around it,
 * decorated as `app.pool` and `app.breaker`. The first round of health checks is done before the
 * app is ready, so the first request finds the healthy workers.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from '../config.js';
import { DispatchBreaker } from '../dispatch/breaker.js';
import { Dispatcher } from '../dispatch/dispatcher.js';
import { WorkerPool } from '../dispatch/pool.js';

declare module 'fastify' {
  interface FastifyInstance {
    pool: WorkerPool;
    breaker: DispatchBreaker;
  }
}

export interface WorkersPluginOptions {
  workers: GatewayConfig['workers'];
  breaker: GatewayConfig['breaker'];
  /** The base model's name until a worker reports its own. */
  modelName: string;
}

async function workersPlugin(app: FastifyInstance, options: WorkersPluginOptions): Promise<void> {
  const w = options.workers;
  const pool = new WorkerPool(
    {
      urls: w.urls,
      dns: w.dns,
      resolveIntervalMs: w.resolveIntervalMs,
      healthIntervalMs: w.healthIntervalMs,
      healthTimeoutMs: w.healthTimeoutMs,
      unhealthyThreshold: w.unhealthyThreshold,
      connections: w.connections,
    },
    options.modelName,
    app.metrics,
    app.log,
  );
  const dispatcher = new Dispatcher(pool, { ttftTimeoutMs: w.ttftTimeoutMs, maxAttempts: w.maxAttempts }, app.metrics);
  const breaker = new DispatchBreaker(dispatcher, options.breaker, app.metrics);
  app.decorate('pool', pool);
  app.decorate('breaker', breaker);
  app.addHook('onClose', async () => {
    breaker.shutdown();
    await pool.close();
  });
  await pool.start();
}

export default fp(workersPlugin, { name: 'workers', fastify: '5.x', dependencies: ['metrics'] });
