/**
 * The floor of `npm run bench:gateway`: a bare Fastify route that forwards `POST /v1/chat` to the
 * worker with the same HTTP client the gateway uses (an undici Pool with as many keep-alive
 * connections), reads the NDJSON answer and returns the text as JSON. No authentication, rate
 * limits, validation, breaker, metrics or logging: everything the gateway adds is missing here.
 *
 * With BARE_REDIS_URL it first runs the limiter's bucket script once per request, through a
 * client made as the gateway makes its own, on two buckets that never run dry: the one Redis
 * command per admitted request that the limiter's design requires, and nothing else the gateway
 * does. Next to the plain route it shows what that command alone costs.
 * Env: BARE_PORT, WORKER_URL, WORKER_CONNECTIONS, BARE_REDIS_URL.
 */
import Fastify from 'fastify';
import { Pool } from 'undici';
import { createRedis, RedisConfigSchema, type RedisClient } from '../src/gateway/plugins/redis.js';
import { defineBucketScript, takeBuckets, type BucketSpec } from '../src/gateway/limiter/bucket-script.js';

interface ChatBody {
  messages: { role: string; content: string }[];
  max_tokens?: number;
}

const worker = new Pool(process.env.WORKER_URL!, { connections: Number(process.env.WORKER_CONNECTIONS ?? 64) });
const app = Fastify({ logger: false });
let seq = 0;

const redis: RedisClient | null = process.env.BARE_REDIS_URL ? createRedis(RedisConfigSchema.parse({ url: process.env.BARE_REDIS_URL }), 'bench-bare') : null;
if (redis) {
  defineBucketScript(redis);
  // No offline queue, as in the gateway: a command before the connection is ready would fail.
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve));
}
const NEVER_DRY = { burst: 100_000_000, perMinute: 1_000_000_000 };
const BUCKETS: BucketSpec[] = [
  { name: 'requests', key: 'bench-bare:{bare}:requests', unit: 'requests', ...NEVER_DRY },
  { name: 'tokens', key: 'bench-bare:{bare}:tokens', unit: 'tokens', ...NEVER_DRY },
];

app.post<{ Body: ChatBody }>('/v1/chat', async (request) => {
  if (redis) await takeBuckets(redis, BUCKETS, { requests: 1, tokens: 24 + (request.body.max_tokens ?? 512), refund: 0 });
  const id = `bare-${++seq}`;
  const res = await worker.request({
    method: 'POST',
    path: '/v1/generate',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id, messages: request.body.messages, max_tokens: request.body.max_tokens ?? 512 }),
  });
  let text = '';
  let usage: unknown = null;
  for (const line of (await res.body.text()).split('\n')) {
    if (line === '') continue;
    const event = JSON.parse(line) as { type: string; text?: string; usage?: unknown };
    if (event.type === 'token') text += event.text;
    else if (event.type === 'end') usage = event.usage;
  }
  return { id, message: { role: 'assistant', content: text }, usage };
});

app.get('/healthz', async () => ({ status: 'ok' }));

await app.listen({ host: '127.0.0.1', port: Number(process.env.BARE_PORT ?? 0) });
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
