/**
 * A small Fastify app with the limiter plugin, for the limiter's own tests: API keys in a map,
 * a chat-like route whose cost is prompt tokens (one per character, a stand-in counting
 * function) + max_tokens, and whose handler reports the tokens it "used" from `x-test-used`.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { Registry } from 'prom-client';
import { AppError, errorEnvelope } from '../../src/shared/errors.js';
import type { RedisClient } from '../../src/gateway/redis.js';
import { LimitsConfigSchema } from '../../src/gateway/limiter/config.js';
import limiterPlugin, { settleTokens } from '../../src/gateway/limiter/plugin.js';
import type { Tenant } from '../../src/gateway/limiter/policy.js';

declare module 'fastify' {
  interface FastifyRequest {
    testTenant: Tenant | null;
  }
}

export interface LimitedAppOptions {
  redis: RedisClient | null;
  limits: unknown;
  keyPrefix: string;
  /** API key → tenant */
  keys?: Record<string, Tenant>;
}

export const countChars = (messages: { content: string }[]): number => messages.reduce((n, m) => n + m.content.length, 0);

export async function limitedApp(options: LimitedAppOptions): Promise<FastifyInstance & { registry: Registry }> {
  const app = Fastify({ logger: false, trustProxy: true });
  const registry = new Registry();
  app.setErrorHandler((err: Error & { statusCode?: number }, _request, reply) => {
    if (err instanceof AppError) {
      if (err.retryAfter !== undefined) reply.header('retry-after', err.retryAfter);
      return reply.status(err.status).send(errorEnvelope(err));
    }
    return reply.status(err.statusCode ?? 500).send({ error: { message: err.message } });
  });
  app.decorateRequest('testTenant', null);
  app.addHook('onRequest', async (request) => {
    const auth = request.headers.authorization;
    if (auth === undefined) return;
    const tenant = options.keys?.[auth.replace(/^Bearer /, '')];
    if (!tenant) throw new AppError('INVALID_API_KEY', 'invalid API key');
    request.testTenant = tenant;
  });
  await app.register(limiterPlugin, {
    limits: LimitsConfigSchema.parse(options.limits),
    redis: options.redis,
    keyPrefix: options.keyPrefix,
    registry,
    tenantOf: (request: FastifyRequest) => request.testTenant,
  });
  app.get('/healthz', { config: { rateLimit: false } }, async () => ({ ok: true }));
  app.get('/v1/models', async () => ({ data: [] }));
  app.post<{ Body: { messages: { role: string; content: string }[]; max_tokens?: number } }>(
    '/v1/chat',
    {
      schema: {
        body: {
          type: 'object',
          required: ['messages'],
          properties: {
            messages: { type: 'array', minItems: 1, items: { type: 'object', required: ['content'], properties: { content: { type: 'string' } } } },
            max_tokens: { type: 'integer', minimum: 1 },
          },
        },
      },
      config: {
        llmTokens: (request) => {
          const body = request.body as { messages: { content: string }[]; max_tokens?: number };
          return { promptTokens: countChars(body.messages), maxTokens: body.max_tokens ?? 16 };
        },
      },
    },
    async (request, reply) => {
      const failWith = request.headers['x-test-fail'];
      if (failWith) throw new AppError('NO_HEALTHY_WORKER', 'no worker', { retryAfter: 1 });
      const used = request.headers['x-test-used'];
      if (used !== undefined) settleTokens(request, Number(used));
      return reply.send({ ok: true, reserved: request.ratelimit?.decision?.reservation?.tokens ?? null });
    },
  );
  return Object.assign(app, { registry }) as FastifyInstance & { registry: Registry };
}
