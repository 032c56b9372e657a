/**
 * A protocol-level stand-in for the gateway's OpenAI-compatible API, for testing the evaluator
 * as a real process: `GET /v1/models` and non-streaming `POST /v1/chat/completions`. It answers
 * from a function of (model, messages) and records every request it was sent.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeModel {
  id: string;
  parent?: string;
}

export interface FakeRequest {
  model: string;
  messages: Array<{ role: string; content: string }>;
  temperature?: number;
  max_tokens?: number;
  stream?: boolean;
  authorization?: string;
}

export interface FakeOpenAi {
  url: string;
  requests: FakeRequest[];
  close(): Promise<void>;
}

export interface FakeOptions {
  models: FakeModel[];
  /** The answer text, or an HTTP status to fail with. */
  answer: (req: FakeRequest) => string | number;
  /** Answer as the gateway's fallback does: with a `degraded` field. */
  degraded?: (req: FakeRequest) => boolean;
  apiKey?: string;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function error(status: number, code: string, message: string) {
  return JSON.stringify({ error: { message, type: status === 401 ? 'authentication_error' : 'invalid_request_error', code, param: null } });
}

export async function startFakeOpenAi(options: FakeOptions): Promise<FakeOpenAi> {
  const requests: FakeRequest[] = [];
  const server: Server = createServer(async (req, res) => {
    res.setHeader('content-type', 'application/json');
    if (options.apiKey && req.headers.authorization !== `Bearer ${options.apiKey}`) {
      res.writeHead(401).end(error(401, 'invalid_api_key', 'bad key'));
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.end(JSON.stringify({ object: 'list', data: options.models.map((m) => ({ object: 'model', created: 0, owned_by: 'test', ...m })) }));
      return;
    }
    if (req.method === 'POST' && req.url === '/v1/chat/completions') {
      const r = { ...(JSON.parse(await body(req)) as FakeRequest), authorization: req.headers.authorization };
      requests.push(r);
      if (!options.models.some((m) => m.id === r.model)) {
        res.writeHead(404).end(error(404, 'model_not_found', `no model ${r.model}`));
        return;
      }
      const answer = options.answer(r);
      if (typeof answer === 'number') {
        res.writeHead(answer).end(error(answer, 'worker_error', 'failed on purpose'));
        return;
      }
      res.end(
        JSON.stringify({
          id: `chatcmpl-${requests.length}`,
          object: 'chat.completion',
          created: 0,
          model: r.model,
          choices: [{ index: 0, message: { role: 'assistant', content: answer }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
          ...(options.degraded?.(r) ? { degraded: { source: 'kb', reason: 'forced' } } : {}),
        }),
      );
      return;
    }
    res.writeHead(404).end(error(404, 'not_found', 'no route'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
