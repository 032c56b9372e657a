/**
 * The gateway as a Fastify app: `gatewayApp` composes named plugins, then the routes, which read
 * what the plugins decorate and never import this file. `buildApp(config, deps)` makes the
 * Fastify instance with its server options and registers the app; only server.ts listens and
 * handles signals, and tests call `inject()`.
 *
 * Request path: request id → API key (tenant) → zod validation → answer hooks (token budget) →
 * degrade switch → breaker → worker pool, or the fallback. Each plugin closes, in onClose, what
 * it opened (Redis when not injected, worker connections, timers, the breaker); injected things
 * are left to their owner.
 *
 *   plugin      decorates                                       needs
 *   errors      (error and not-found handlers)
 *   metrics     metrics                                          -
 *   redis       redis                                            -
 *   auth        apiAuth, adminAuth, authenticate, requireAdmin   -
 *   workers     pool, breaker                                    metrics
 *   fallback    fallback, degrade, knowledge                     metrics, redis
 *   answers     answerer, answerHooks, prompts, augmenter,       metrics, workers, fallback
 *               requestSchemas
 *   activity    activity (the last minute, for /admin/status)    answers
 *   docs        (/docs)
 *   limiter     limiter, request.ratelimit (the /v1 scope only)  (given explicitly)
 */
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import fp from 'fastify-plugin';
import { serializerCompiler } from 'fastify-type-provider-zod';
import { validatorCompiler } from '../shared/compiled-validation.js';
import { loggerOptions } from '../shared/logging.js';
import type { AnswerHooks } from './answer/pipeline.js';
import type { GatewayConfig } from './config.js';
import type { FallbackAnswerer } from './fallback/knowledge-base.js';
import limiterPlugin, { LIMITS_OFF, type LimiterStatus } from './limiter/plugin.js';
import activityPlugin from './plugins/activity.js';
import answersPlugin from './plugins/answers.js';
import authPlugin from './plugins/auth.js';
import docsPlugin from './plugins/docs.js';
import errorsPlugin from './plugins/errors.js';
import fallbackPlugin from './plugins/fallback.js';
import metricsPlugin, { type GatewayMetrics } from './plugins/metrics.js';
import redisPlugin, { type RedisClient } from './plugins/redis.js';
import workersPlugin from './plugins/workers.js';
import adminStatusRoutes from './routes/admin-status.js';
import adminRoutes from './routes/admin.js';
import answerRoutes from './routes/answers.js';
import consoleRoutes from './routes/console.js';
import knowledgeRoutes from './routes/knowledge.js';
import modelRoutes from './routes/models.js';
import opsRoutes from './routes/ops.js';
import tokenizeRoutes from './routes/tokenize.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: GatewayConfig;
  }
}

/** What a caller may give instead of what the app would make (tests, benchmarks, tools). */
export interface GatewayDeps {
  /** A Redis client to use (not closed by the app); null: no Redis; absent: made from `config.redis`. */
  redis?: RedisClient | null;
  metrics?: GatewayMetrics;
  /** The fallback; absent: loaded from `config.knowledgeBase`. */
  fallback?: FallbackAnswerer;
  /** Per-answer hooks, run before the limiter's token budget. */
  answerHooks?: AnswerHooks[];
}

export interface GatewayAppOptions extends GatewayDeps {
  config: GatewayConfig;
}

export function serverOptions(config: GatewayConfig): FastifyServerOptions {
  return {
    logger: loggerOptions(config.logLevel, 'gateway'),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.auth.trustProxy,
    requestIdHeader: false,
    genReqId: () => randomUUID(),
    // Per-request access logs cost more than the rest of the path; errors and 5xx are logged.
    logController: new LogController({ disableRequestLogging: true }),
    // Not Fastify's own 503 while closing (its body is not the API's envelope): answers refuse
    // with NOT_READY from the answerer, /readyz says 503, the rest still answers.
    return503OnClosing: false,
  };
}

async function gatewayApp(app: FastifyInstance, options: GatewayAppOptions): Promise<void> {
  const { config } = options;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorate('config', config);
  // A callback hook, not an async one: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });

  await app.register(errorsPlugin);
  await app.register(metricsPlugin, { metrics: options.metrics });
  await app.register(redisPlugin, { config: config.redis, client: options.redis });
  await app.register(authPlugin, { auth: config.auth });
  await app.register(workersPlugin, { workers: config.workers, breaker: config.breaker, modelName: config.model.name });
  await app.register(fallbackPlugin, {
    knowledgeBase: config.knowledgeBase,
    degrade: config.degrade,
    knowledge: config.knowledge,
    keyPrefix: config.redis.keyPrefix,
    fallback: options.fallback,
  });
  await app.register(answersPlugin, { config, answerHooks: options.answerHooks });
  await app.register(activityPlugin);
  await app.register(docsPlugin);

  let readLimiter = (): LimiterStatus => LIMITS_OFF;
  app.decorate('limiterStatus', () => readLimiter());

  await app.register(opsRoutes);
  // The API scope (/v1, and /tokenize, /detokenize as vLLM places them): the tenant is known from its first hook on; request-rate limiting comes after
  // it, and the token budget in the answer hooks.
  await app.register(async (v1) => {
    v1.addHook('onRequest', app.authenticate);
    await v1.register(limiterPlugin, {
      // The processes of a cluster are replicas too: each local share is theirs to split.
      limits: { ...config.limits, outage: { ...config.limits.outage, replicas: config.limits.outage.replicas * config.processes } },
      redis: app.redis,
      keyPrefix: config.redis.keyPrefix,
      registry: app.metrics.registry,
      tenantOf: (request) => request.tenant!,
      countPrompt: (generate) => app.prompts.count(generate),
      answerHooks: app.answerHooks,
      onStatus: (read) => {
        readLimiter = read;
      },
    });
    await v1.register(modelRoutes);
    await v1.register(answerRoutes);
    await v1.register(tokenizeRoutes);
  });
  await app.register(adminRoutes);
  await app.register(knowledgeRoutes);
  await app.register(adminStatusRoutes);
  await app.register(consoleRoutes);
}

/** The app as a plugin of the root instance (fastify-plugin: its decorators are the root's). */
const gatewayPlugin = fp(gatewayApp, { name: 'gateway', fastify: '5.x' });
export default gatewayPlugin;

/** A ready gateway: the Fastify instance with the app registered. A failed start closes what it had opened. */
export async function buildApp(config: GatewayConfig, deps: GatewayDeps = {}): Promise<FastifyInstance> {
  const app = Fastify(serverOptions(config));
  try {
    await app.register(gatewayPlugin, { ...deps, config });
    await app.ready();
  } catch (err) {
    await app.close().catch(() => {});
    throw err;
  }
  return app;
}
