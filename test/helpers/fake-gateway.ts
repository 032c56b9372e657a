/**
 * A protocol-level stand-in for the gateway's answer routes (`/v1/chat`, `/v1/chat/completions`),
 * for testing the load tool's accounting: an invalid request (the load mix's garbage: broken
 * JSON, no messages, a last turn not from the user, a negative max_tokens) gets a 400; valid
 * ones get, in turn, each of `plan`'s answers. It tallies what it answered, by answer, so a
 * test can compare the tool's count with the truth.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeAnswer =
  /** 200 from "a worker": JSON, or SSE ending in [DONE] when the request streams. */
  | 'worker'
  /** 200 with `x-degraded: kb`. */
  | 'degraded'
  | 'rate_limited'
  | 'server_error'
  /** The connection destroyed before any answer. */
  | 'drop'
  /** A streamed 200 whose stream ends with an error event and no [DONE] (non-streamed: a 502). */
  | 'broken_stream'
  /** Never answers (until the server closes). */
  | 'hang';

export interface FakeGateway {
  url: string;
  /** Answers given, by answer; `invalid` for the 400s to the garbage share. */
  tally: Record<FakeAnswer | 'invalid', number>;
  close(): Promise<void>;
}

function invalid(body: string): boolean {
  let req: { messages?: { role: string }[]; max_tokens?: number };
  try {
    req = JSON.parse(body) as typeof req;
  } catch {
    return true;
  }
  const m = req.messages;
  return !Array.isArray(m) || m.length === 0 || m.at(-1)!.role !== 'user' || (req.max_tokens !== undefined && req.max_tokens < 1);
}

const TOKENS = ['根据', '《民法典》', '规定', '，', '借款', '应当', '归还', '。'];

function json(res: ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function stream(res: ServerResponse, degraded: boolean, broken: boolean): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', ...(degraded ? { 'x-degraded': 'kb' } : {}) });
  const tokens = degraded ? ['请咨询律师。'] : TOKENS;
  let i = 0;
  const tick = () => {
    if (i < tokens.length) {
      res.write(`data: ${JSON.stringify({ id: 'x', delta: tokens[i++] })}\n\n`);
      if (broken && i === 3) {
        res.end(`data: ${JSON.stringify({ error: { code: 'worker_error', message: 'the worker went away mid-stream' } })}\n\n`);
        return;
      }
      setTimeout(tick, 2);
      return;
    }
    const completion = degraded ? 0 : tokens.length;
    res.end(`data: ${JSON.stringify({ id: 'x', finish_reason: 'stop', usage: { prompt_tokens: 5, completion_tokens: completion, total_tokens: 5 + completion } })}\n\ndata: [DONE]\n\n`);
  };
  tick();
}

export async function startFakeGateway(plan: FakeAnswer[]): Promise<FakeGateway> {
  const tally = { worker: 0, degraded: 0, rate_limited: 0, server_error: 0, drop: 0, broken_stream: 0, hang: 0, invalid: 0 };
  let turn = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (invalid(body)) {
        tally.invalid++;
        json(res, 400, { error: { code: 'invalid_request', message: 'bad request' } });
        return;
      }
      const streamed = (JSON.parse(body) as { stream?: boolean }).stream === true;
      const answer = plan[turn++ % plan.length]!;
      tally[answer]++;
      switch (answer) {
        case 'worker':
        case 'degraded':
          if (streamed) return stream(res, answer === 'degraded', false);
          return json(
            res,
            200,
            { id: 'x', message: { role: 'assistant', content: TOKENS.join('') }, usage: { prompt_tokens: 5, completion_tokens: answer === 'degraded' ? 0 : TOKENS.length } },
            answer === 'degraded' ? { 'x-degraded': 'kb' } : {},
          );
        case 'rate_limited':
          return json(res, 429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'retry-after': '1' });
        case 'server_error':
          return json(res, 500, { error: { code: 'internal', message: 'boom' } });
        case 'drop':
          req.socket.destroy();
          return;
        case 'broken_stream':
          if (streamed) return stream(res, false, true);
          return json(res, 502, { error: { code: 'worker_error', message: 'mid-answer' } });
        case 'hang':
          return;
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    tally,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
