/**
 * The gateway as a Fastify app, built by a function: `buildApp(config, deps)`. Only
 * src/cli/gateway.ts listens and handles signals; tests call `inject()`.
 *
 * Request path: request id → API key (tenant) → zod validation → answer hooks (token budget) →
 * degrade switch → breaker → worker pool, or the fallback. Everything the app opens (Redis when
 * not injected, worker connections, timers, the breaker) is closed in onClose; injected things
 * are left to their owner.
 */
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { ConfigError } from '../shared/config.js';
import { loggerOptions } from '../shared/logging.js';
import { sleep } from '../shared/net.js';
import { Answerer, type AnswerHooks } from './answer/pipeline.js';
import { AdminAuth, ApiKeyAuth, type Tenant } from './plugins/auth.js';
import { DispatchBreaker } from './dispatch/breaker.js';
import type { GatewayConfig } from './config.js';
import { DegradeSwitch } from './fallback/degrade.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { installErrorHandlers } from './plugins/errors.js';
import limiterPlugin from './limiter/plugin.js';
import { PromptCounter } from './limiter/prompt-tokens.js';
import { loadFallback, type FallbackAnswerer } from './fallback/knowledge-base.js';
import { createGatewayMetrics, type GatewayMetrics } from './plugins/metrics.js';
import { WorkerPool } from './dispatch/pool.js';
import { createRedis, type RedisClient } from './plugins/redis.js';
import { adminRoutes } from './routes/admin.js';
import { answerRoutes } from './routes/answers.js';
import { modelRoutes, opsRoutes } from './routes/ops.js';
import { requestSchemas, type RequestSchemas } from './answer/schemas.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the API-key hook on /v1 routes. */
    tenant: Tenant | null;
  }
  interface FastifyInstance {
    gateway: Gateway;
  }
}

export interface GatewayDeps {
  /** A Redis client to use (not closed by the app); null: no Redis; absent: made from `config.redis`. */
  redis?: RedisClient | null;
  metrics?: GatewayMetrics;
  /** The fallback; absent: loaded from `config.knowledgeBase`. */
  fallback?: FallbackAnswerer;
  /** Per-answer hooks (the token budget); more can be pushed onto `app.gateway.answerHooks` while registering. */
  answerHooks?: AnswerHooks[];
}

/** The parts of a running gateway, for routes, plugins, the CLI and tests. */
export interface Gateway {
  config: GatewayConfig;
  metrics: GatewayMetrics;
  redis: RedisClient | null;
  pool: WorkerPool;
  breaker: DispatchBreaker;
  degrade: DegradeSwitch;
  fallback: FallbackAnswerer;
  answerer: Answerer;
  answerHooks: AnswerHooks[];
  apiAuth: ApiKeyAuth;
  adminAuth: AdminAuth;
  schemas: RequestSchemas;
  /** Counts prompt tokens for the token budget: the model's tokenizer once it is at hand. */
  prompts: PromptCounter;
}

async function waitReady(redis: RedisClient, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (redis.status !== 'ready' && Date.now() < end) await sleep(10);
}

export async function buildApp(config: GatewayConfig, deps: GatewayDeps = {}): Promise<FastifyInstance> {
  const app = Fastify({
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
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);
  // The API speaks JSON only: anything else is a 415, not a string body that fails validation.
  app.removeContentTypeParser('text/plain');

  const metrics = deps.metrics ?? createGatewayMetrics();
  const ownRedis = deps.redis === undefined;
  const redis = ownRedis ? createRedis(config.redis, 'gateway') : deps.redis!;
  if (redis && ownRedis) {
    let warned = false;
    redis.on('error', (err: Error) => {
      if (!warned) app.log.warn({ err: err.message }, 'Redis unreachable: the degrade flag is kept in-process until it is back');
      warned = true;
    });
    redis.on('ready', () => {
      if (warned) app.log.info('Redis reachable again');
      warned = false;
    });
  }

  let fallback = deps.fallback;
  if (!fallback) {
    const loaded = await loadFallback({ ...config.knowledgeBase, onSearch: metrics.knowledgeBaseSearch });
    for (const w of loaded.warnings) app.log.warn(w);
    fallback = loaded.answerer;
  }

  const pool = new WorkerPool(
    {
      urls: config.workers.urls,
      dns: config.workers.dns,
      resolveIntervalMs: config.workers.resolveIntervalMs,
      healthIntervalMs: config.workers.healthIntervalMs,
      healthTimeoutMs: config.workers.healthTimeoutMs,
      unhealthyThreshold: config.workers.unhealthyThreshold,
      connections: config.workers.connections,
    },
    config.model.name,
    metrics,
    app.log,
  );
  const dispatcher = new Dispatcher(pool, { ttftTimeoutMs: config.workers.ttftTimeoutMs, maxAttempts: config.workers.maxAttempts }, metrics);
  const breaker = new DispatchBreaker(dispatcher, config.breaker, metrics);
  const degrade = new DegradeSwitch(redis, config.redis.keyPrefix, config.degrade, config.degrade.refreshMs, metrics, app.log);
  const answerHooks = [...(deps.answerHooks ?? [])];
  const answerer = new Answerer(breaker, degrade, fallback, metrics, answerHooks, {
    totalTimeoutMs: config.workers.totalTimeoutMs,
    retryAfterSeconds: config.degrade.retryAfterSeconds,
    logContent: config.logContent,
  });
  const gateway: Gateway = {
    config,
    metrics,
    redis,
    pool,
    breaker,
    degrade,
    fallback,
    answerer,
    answerHooks,
    apiAuth: new ApiKeyAuth(config.auth.keys, { enabled: config.auth.anonymous, tier: config.auth.anonymousTier }),
    adminAuth: new AdminAuth(config.auth.adminTokenSha256),
    schemas: requestSchemas(config.model),
    prompts: new PromptCounter(app.log),
  };
  app.decorate('gateway', gateway);
  app.decorateRequest('tenant', null);

  // Closing: new answers get 503 NOT_READY from here on (the answerer); open answers get
  // `drainTimeoutMs` to finish before they are cut, then the server closes.
  app.addHook('preClose', async () => {
    await answerer.drain(config.drainTimeoutMs);
  });
  app.addHook('onClose', async () => {
    gateway.prompts.stop();
    breaker.shutdown();
    await degrade.close();
    await pool.close();
    if (ownRedis) redis?.disconnect();
  });

  // Hooks on every request take callbacks, not promises: an async hook costs a promise per request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const child = metrics.httpChild(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode);
    child.count.inc();
    child.duration.observe(reply.elapsedTime / 1000);
    done();
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'glm-legal-serve gateway', version: '0.1.0', description: 'Legal-assistant chat API (ChatGLM3 + LoRA), OpenAI-compatible' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(async (scope) => opsRoutes(scope, gateway));
  // The /v1 scope: the tenant is known from its first hook on; request-rate limiting belongs
  // in this scope after it, and the token budget in the answer hooks.
  await app.register(async (scope) => {
    scope.addHook('onRequest', (request, _reply, done) => {
      try {
        request.tenant = gateway.apiAuth.authenticate(request.headers.authorization, request.headers['x-api-key'], request.ip);
      } catch (err) {
        done(err as Error);
        return;
      }
      done();
    });
    // Rate limits for the /v1 routes only: after authentication, on a Registry shared with the rest.
    await scope.register(limiterPlugin, {
      limits: config.limits,
      redis,
      keyPrefix: config.redis.keyPrefix,
      registry: metrics.registry,
      tenantOf: (request) => request.tenant!,
      countPrompt: (generate) => gateway.prompts.count(generate),
      answerHooks,
    });
    await modelRoutes(scope, gateway);
    await answerRoutes(scope, gateway);
  });
  await app.register(async (scope) => adminRoutes(scope, gateway));

  if (redis) {
    await waitReady(redis, config.redis.connectTimeoutMs);
  }
  await degrade.start();
  await pool.start();
  if (config.model.tokenizerPath) {
    try {
      await gateway.prompts.loadFile(config.model.tokenizerPath);
    } catch (err) {
      await app.close();
      throw new ConfigError(`invalid configuration: GATEWAY_MODEL_TOKENIZER_PATH (model.tokenizerPath): ${(err as Error).message}`);
    }
  }
  else gateway.prompts.fetchFromWorkers(pool, config.workers.healthIntervalMs, config.workers.healthTimeoutMs);
  return app;
}
