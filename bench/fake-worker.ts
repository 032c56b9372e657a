/**
 * A protocol-level worker for `npm run bench:gateway`: it answers every `/v1/generate` at once
 * with the same short completion, written from bytes prepared at start, so that what the
 * benchmark measures is the path in front of it, not the worker. (The tests' scripted fake worker
 * validates every request with zod and keeps statistics: on two shared cores that would take CPU
 * from the paths being compared.) A bench fixture only: the service never uses it.
 *
 * A request whose last message starts with `@timed` gets its first token stamped with the time
 * it is written (`performance.timeOrigin + performance.now()`, ms) and its end 20 ms later, so
 * the benchmark can tell how long the token took to reach the client through the gateway and
 * directly. `POST /v1/chat/completions` answers the same completion as an OpenAI upstream
 * would, for the assembled stack the benchmark compares with. Port: env WORKER_PORT.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { pathToFileURL } from 'node:url';
import { demoTokenizerBytes } from '../src/model/demo-tokenizer.js';
import { NDJSON_CONTENT_TYPE, ndjsonLine } from '../src/protocol/ndjson.js';
import type { GenerateEvent } from '../src/protocol/schemas.js';

/** The fixed completion: nine tokens of a legal answer. */
export const BENCH_TOKENS = ['根据', '《民法典》', '规定', '，', '借款', '应当', '按期', '归还', '。'];
export const TIMED_MARKER = '@timed';
const MODEL = 'chatglm3-6b';
const PROMPT_TOKENS = 24;

const lines = (events: GenerateEvent[]) => Buffer.from(events.map(ndjsonLine).join(''));
const START = lines([{ type: 'start', prompt_tokens: PROMPT_TOKENS }]);
const END = lines([
  {
    type: 'end',
    finish_reason: 'stop',
    usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: BENCH_TOKENS.length },
    timings: { queue_ms: 0, prefill_ms: 0, ttft_ms: 0, decode_ms: 0, total_ms: 0 },
  },
]);
const WHOLE = Buffer.concat([START, lines(BENCH_TOKENS.map((text, i) => ({ type: 'token', ids: [1000 + i], text }))), END]);
const json = (body: unknown) => Buffer.from(JSON.stringify(body));
const READY = json({ ready: true, model: MODEL });
/** The same answer as an OpenAI upstream gives it, for the assembled stack's proxy. */
const OPENAI = json({
  id: 'chatcmpl-bench',
  object: 'chat.completion',
  created: 0,
  model: MODEL,
  choices: [{ index: 0, message: { role: 'assistant', content: BENCH_TOKENS.join('') }, finish_reason: 'stop' }],
  usage: { prompt_tokens: PROMPT_TOKENS, completion_tokens: BENCH_TOKENS.length, total_tokens: PROMPT_TOKENS + BENCH_TOKENS.length },
});
const ADAPTERS = json({ model: MODEL, context_length: 8192, adapter_mode: 'runtime', adapters: [{ name: 'law-lora', rank: 8, alpha: 16, target_modules: ['query_key_value'] }] });

function send(res: ServerResponse, status: number, type: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': type, 'content-length': body.length });
  res.end(body);
}

function generate(req: IncomingMessage, res: ServerResponse): void {
  // The body is read whole but not parsed: only the timed marker matters here.
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    if (!body.includes(`"${TIMED_MARKER}`)) return send(res, 200, NDJSON_CONTENT_TYPE, WHOLE);
    res.writeHead(200, { 'content-type': NDJSON_CONTENT_TYPE });
    res.write(START);
    const sentAt = performance.timeOrigin + performance.now();
    res.write(ndjsonLine({ type: 'token', ids: [1000], text: `t${sentAt.toFixed(4)}` }));
    setTimeout(() => res.end(END), 20);
  });
}

function main(): void {
  const tokenizer = Buffer.from(demoTokenizerBytes());
  const server = createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/v1/generate') return generate(req, res);
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      req.resume();
      req.on('end', () => send(res, 200, 'application/json', OPENAI));
      return;
    }
    if (req.url === '/readyz' || req.url === '/healthz') return send(res, 200, 'application/json', READY);
    if (req.url === '/v1/adapters') return send(res, 200, 'application/json', ADAPTERS);
    if (req.url === '/v1/tokenizer') return send(res, 200, 'application/octet-stream', tokenizer);
    send(res, 404, 'application/json', json({ error: { message: 'not found', type: 'invalid_request_error', code: 'not_found', param: null } }));
  });
  server.keepAliveTimeout = 60_000;
  server.listen(Number(process.env.WORKER_PORT ?? 0), '127.0.0.1');
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
