/**
 * A protocol-level fake worker, run as a real process (`node dist/test/helpers/fake-worker.js`).
 * It speaks the gateway ⇄ worker protocol of src/protocol/ and is scripted over HTTP:
 *
 *   POST /_script  {mode, tokens, ttftMs, tokenDelayMs, ready, adapters, contextLength, exitAfterMs, tokenizerFile, load}
 *   GET  /_stats   {requests, cancelled, completed, active, last}
 *
 * Modes for /v1/generate: ok, fail (500), overloaded (503), hang (never answers), crash (the
 * process exits), error_event (an error event before the first token), midstream_error (a token,
 * then an error event), garbage (a line that is not JSON after the first token).
 * Chat requests (messages or turns) get segment events as the real worker sends them: segment 0
 * (metadata: the request's answer_metadata, else '') before the first token and `segment` on
 * every token; with `segments` scripted, each segment's tokens in turn, an `<|assistant|>` token
 * (id ASSISTANT_ID, no text) between them, and its metadata from the script.
 * Port: `--port N` or env WORKER_PORT; initial script: env FAKE_WORKER_SCRIPT (JSON).
 * It validates every generate request with the shared schema, so protocol bugs in the gateway
 * show up as 400s. Test code only: never used by the service.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { NDJSON_CONTENT_TYPE, ndjsonLine } from '../../src/protocol/ndjson.js';
import { GenerateRequestSchema, type GenerateEvent } from '../../src/protocol/schemas.js';

export interface FakeScript {
  mode: 'ok' | 'fail' | 'overloaded' | 'hang' | 'crash' | 'error_event' | 'midstream_error' | 'garbage';
  tokens: string[];
  /** Chat requests: an answer of several turns (tool calls) instead of `tokens`; empty: one turn of `tokens`. */
  segments: Array<{ metadata: string; tokens: string[] }>;
  ttftMs: number;
  tokenDelayMs: number;
  ready: boolean;
  model: string;
  adapters: string[];
  contextLength: number;
  /** Exit with code 1 this long after start (a crash for the supervisor); 0: never. */
  exitAfterMs: number;
  /** A tokenizer.model served at GET /v1/tokenizer; empty: that route answers 404. */
  tokenizerFile: string;
  /** `load` in the /readyz answer, as given (anything, to test the gateway's reading of it); null: not sent. */
  load: unknown;
}

const DEFAULT_SCRIPT: FakeScript = {
  mode: 'ok',
  tokens: ['根据', '《民法典》', '规定', '，', '借款', '应当', '按期', '归还', '。'],
  segments: [],
  ttftMs: 0,
  tokenDelayMs: 0,
  ready: true,
  model: 'chatglm3-6b',
  adapters: ['law-lora'],
  contextLength: 2048,
  exitAfterMs: 0,
  tokenizerFile: '',
  load: null,
};

/** The id the fake writes for `<|assistant|>` between segments. */
export const ASSISTANT_ID = 64796;

let script: FakeScript = { ...DEFAULT_SCRIPT, ...(JSON.parse(process.env.FAKE_WORKER_SCRIPT ?? '{}') as Partial<FakeScript>) };
const stats = { pid: process.pid, requests: 0, cancelled: 0, completed: 0, active: 0, last: null as unknown };

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function envelope(code: string, message: string, param: string | null = null) {
  return { error: { message, type: 'invalid_request_error', code, param } };
}

async function readBody(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += chunk;
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function generate(req: IncomingMessage, res: ServerResponse): Promise<void> {
  stats.requests++;
  const raw = await readBody(req);
  let parsedJson: unknown;
  try {
    parsedJson = JSON.parse(raw);
  } catch {
    return send(res, 400, envelope('invalid_json', 'body is not JSON'));
  }
  const parsed = GenerateRequestSchema.safeParse(parsedJson);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    return send(res, 400, envelope('invalid_request', issue.message, issue.path.join('.')));
  }
  const request = parsed.data;
  stats.last = request;
  const s = script;
  if (request.adapter !== undefined && !s.adapters.includes(request.adapter)) {
    return send(res, 404, envelope('model_not_found', `adapter ${request.adapter} is not loaded`, 'adapter'));
  }
  // One "token" per character is close enough for a fake context check.
  const chatTurns = request.turns ?? request.messages;
  const promptTokens = chatTurns
    ? chatTurns.reduce((n, m) => n + m.content.length, 0)
    : request.prompt !== undefined
      ? request.prompt.length
      : request.prompt_ids!.length;
  if (promptTokens + request.max_tokens > s.contextLength) {
    return send(res, 400, envelope('context_length_exceeded', `prompt (${promptTokens}) + max_tokens exceeds ${s.contextLength}`, 'messages'));
  }
  switch (s.mode) {
    case 'fail':
      return send(res, 500, { error: { message: 'engine failed', type: 'server_error', code: 'internal', param: null } });
    case 'overloaded':
      return send(res, 503, { error: { message: 'queue full', type: 'server_error', code: 'overloaded', param: null } });
    case 'crash':
      process.exit(1);
    case 'hang':
      stats.active++;
      res.on('close', () => {
        stats.active--;
        stats.cancelled++;
      });
      return;
    default:
      break;
  }
  stats.active++;
  let closed = false;
  res.on('close', () => {
    if (!res.writableFinished) {
      closed = true;
      stats.cancelled++;
    }
    stats.active--;
  });
  res.writeHead(200, { 'content-type': NDJSON_CONTENT_TYPE });
  const write = (e: GenerateEvent) => res.write(ndjsonLine(e));
  write({ type: 'start', prompt_tokens: promptTokens });
  if (s.ttftMs) await sleep(s.ttftMs);
  if (closed) return;
  if (s.mode === 'error_event') {
    write({ type: 'error', code: 'internal', message: 'engine failed before the first token' });
    res.end();
    return;
  }
  const chat = chatTurns !== undefined;
  const segments = chat && s.segments.length > 0 ? s.segments : [{ metadata: request.answer_metadata ?? '', tokens: s.tokens }];
  // The answer as the worker streams it: per token its text and segment.
  const planned: Array<{ id: number; text: string; segment: number }> = [];
  segments.forEach((seg, index) => {
    if (index > 0) planned.push({ id: ASSISTANT_ID, text: '', segment: index - 1 });
    for (const text of seg.tokens) planned.push({ id: 1000 + planned.length, text, segment: index });
  });
  let announced = -1;
  const announce = (upTo: number) => {
    for (; chat && announced < upTo; announced++) write({ type: 'segment', index: announced + 1, metadata: segments[announced + 1]!.metadata });
  };
  const tokens = planned.slice(0, request.max_tokens);
  let n = 0;
  for (const { id, text, segment } of tokens) {
    if (closed) return;
    announce(segment);
    const event: GenerateEvent = { type: 'token', ids: [id], text, ...(chat ? { segment } : {}) };
    if (request.logprobs !== undefined) {
      const bytes = [...Buffer.from(text)];
      event.logprobs = [
        {
          token: text,
          id,
          logprob: -0.5,
          bytes,
          top_logprobs: Array.from({ length: request.logprobs }, (_, k) => ({ token: `${text}${k}`, id: id + k, logprob: -0.5 - k, bytes })),
        },
      ];
    }
    write(event);
    n++;
    if (n === 1 && s.mode === 'midstream_error') {
      write({ type: 'error', code: 'internal', message: 'engine failed mid-stream' });
      res.end();
      return;
    }
    if (n === 1 && s.mode === 'garbage') {
      res.end('this is not json\n');
      return;
    }
    if (s.tokenDelayMs) await sleep(s.tokenDelayMs);
  }
  if (closed) return;
  const finish = tokens.length < planned.length ? 'length' : 'stop';
  if (finish === 'stop') announce(segments.length - 1);
  write({
    type: 'end',
    finish_reason: finish,
    usage: { prompt_tokens: promptTokens, completion_tokens: n },
    timings: { queue_ms: 0, prefill_ms: 0, ttft_ms: s.ttftMs, decode_ms: 0, total_ms: 0 },
  });
  stats.completed++;
  res.end();
}

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/healthz') return send(res, 200, { status: 'ok' });
  if (req.method === 'GET' && url === '/readyz') {
    return send(res, script.ready ? 200 : 503, { ready: script.ready, model: script.model, ...(script.load === null ? {} : { load: script.load }) });
  }
  if (req.method === 'GET' && url === '/v1/tokenizer') {
    if (!script.tokenizerFile) return send(res, 404, envelope('not_found', 'no tokenizer'));
    const bytes = readFileSync(script.tokenizerFile);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes.length });
    res.end(bytes);
    return;
  }
  if (req.method === 'GET' && url === '/v1/adapters') {
    return send(res, 200, {
      model: script.model,
      context_length: script.contextLength,
      adapter_mode: 'runtime',
      adapters: script.adapters.map((name) => ({ name, rank: 8, alpha: 16, target_modules: ['query_key_value'] })),
    });
  }
  if (req.method === 'GET' && url === '/_stats') return send(res, 200, stats);
  if (req.method === 'POST' && url === '/_script') {
    void readBody(req).then((body) => {
      script = { ...script, ...(JSON.parse(body) as Partial<FakeScript>) };
      send(res, 200, script);
    });
    return;
  }
  if (req.method === 'POST' && url === '/v1/generate') {
    generate(req, res).catch((err: Error) => send(res, 500, envelope('internal', err.message)));
    return;
  }
  send(res, 404, envelope('not_found', 'no such route'));
});

const portArg = process.argv.indexOf('--port');
const port = Number(portArg >= 0 ? process.argv[portArg + 1] : (process.env.WORKER_PORT ?? 0));
server.listen(port, '127.0.0.1', () => {
  const address = server.address();
  console.log(`fake-worker listening ${typeof address === 'object' && address ? address.port : port}`);
  if (script.exitAfterMs > 0) setTimeout(() => process.exit(1), script.exitAfterMs);
});
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 1000).unref();
});
