/**
 * The floor of `npm run bench:gateway`: a bare Fastify route that forwards `POST /v1/chat` to the
 * worker with the same HTTP client the gateway uses (an undici Pool with as many keep-alive
 * connections), reads the NDJSON answer and returns the text as JSON. No authentication, rate
 * limits, validation, breaker, metrics or logging: everything the gateway adds is missing here.
 * Env: BARE_PORT, WORKER_URL, WORKER_CONNECTIONS.
 */
import Fastify from 'fastify';
import { Pool } from 'undici';

interface ChatBody {
  messages: { role: string; content: string }[];
  max_tokens?: number;
}

const worker = new Pool(process.env.WORKER_URL!, { connections: Number(process.env.WORKER_CONNECTIONS ?? 64) });
const app = Fastify({ logger: false });
let seq = 0;

app.post<{ Body: ChatBody }>('/v1/chat', async (request) => {
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
