/**
 * The reference line of `npm run bench:gateway`: what a user would assemble from the same
 * packages in an afternoon. Fastify, an API-key check (SHA-256 of the bearer key looked up in a
 * map), @fastify/rate-limit with its Redis store (one bucket per key, never reached), and
 * @fastify/reply-from forwarding `POST /v1/chat/completions` to an OpenAI-style upstream. No
 * token budget, breaker, translation, streaming rewrite or metrics: far less than the gateway
 * does. A bench fixture only.
 * Env: STACK_PORT, UPSTREAM_URL, STACK_REDIS_URL, STACK_API_KEY.
 */
import { createHash } from 'node:crypto';
import Fastify from 'fastify';
import rateLimit from '@fastify/rate-limit';
import replyFrom from '@fastify/reply-from';
import { Redis } from 'ioredis';

const keys = new Map([[createHash('sha256').update(process.env.STACK_API_KEY!).digest('hex'), 'bench']]);
const redis = new Redis(process.env.STACK_REDIS_URL!, { enableOfflineQueue: false, maxRetriesPerRequest: 0, connectTimeout: 1000 });
if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));

const app = Fastify({ logger: false });
await app.register(replyFrom, { base: process.env.UPSTREAM_URL!, undici: { connections: 64, pipelining: 1 } });
app.addHook('onRequest', async (request, reply) => {
  if (request.url === '/healthz') return;
  const header = request.headers.authorization ?? '';
  const tenant = header.startsWith('Bearer ') ? keys.get(createHash('sha256').update(header.slice(7)).digest('hex')) : undefined;
  if (!tenant) return reply.code(401).send({ error: { message: 'invalid api key', type: 'authentication_error', code: 'invalid_api_key' } });
  (request as unknown as { tenant: string }).tenant = tenant;
});
await app.register(rateLimit, {
  max: 100_000_000,
  timeWindow: 60_000,
  redis,
  keyGenerator: (request) => (request as unknown as { tenant: string }).tenant,
});
app.post('/v1/chat/completions', (_request, reply) => reply.from('/v1/chat/completions'));
app.get('/healthz', { config: { rateLimit: false } }, async () => ({ status: 'ok' }));

await app.listen({ host: '127.0.0.1', port: Number(process.env.STACK_PORT ?? 0) });
process.on('SIGTERM', () => void app.close().then(() => { redis.disconnect(); process.exit(0); }));
