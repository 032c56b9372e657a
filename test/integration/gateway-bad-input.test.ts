import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, testGateway } from '../helpers/gateway.js';

let worker: FakeWorker;
let app: FastifyInstance;

before(async () => {
  worker = await startFakeWorker({ tokens: ['好'] });
  app = await testGateway({ workers: { urls: [worker.url] }, bodyLimitBytes: 64 * 1024 });
});
after(async () => {
  await app.close();
  await worker.stop();
});

const user = (content: string) => ({ role: 'user', content });

async function post(url: string, payload: unknown, headers: Record<string, string> = {}) {
  const res = await app.inject({
    method: 'POST',
    url,
    headers: { ...auth, 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
  return { status: res.statusCode, body: res.json() as { error: { code: string; param: string | null; message: string } }, headers: res.headers };
}

test('each kind of bad input gets its own 4xx, code and field', async () => {
  const cases: Array<[string, unknown, number, string, string | null, Record<string, string>?]> = [
    ['/v1/chat', '{"messages": [', 400, 'invalid_json', null],
    ['/v1/chat', '', 400, 'invalid_json', null],
    ['/v1/chat', { messages: [] }, 400, 'invalid_request', 'messages'],
    ['/v1/chat', { messages: 'hi' }, 400, 'invalid_request', 'messages'],
    ['/v1/chat', { messages: [{ role: 'robot', content: 'x' }] }, 400, 'invalid_request', 'messages.0.role'],
    ['/v1/chat', { messages: [user('a'), { role: 'assistant', content: 'b' }] }, 400, 'invalid_request', 'messages.1.role'],
    ['/v1/chat', { messages: [user('   ')] }, 400, 'invalid_request', 'messages.0.content'],
    ['/v1/chat', { messages: [user('x')], max_tokens: 0 }, 400, 'invalid_request', 'max_tokens'],
    ['/v1/chat', { messages: [user('x')], max_tokens: 1.5 }, 400, 'invalid_request', 'max_tokens'],
    ['/v1/chat', { messages: [user('x')], temperature: '0.5' }, 400, 'invalid_request', 'temperature'],
    ['/v1/chat', { messages: [user('x')], tempreature: 0.5 }, 400, 'invalid_request', 'tempreature'],
    ['/v1/chat', { messages: [{ role: 'user', content: 'x', extra: 1 }] }, 400, 'invalid_request', 'messages.0.extra'],
    ['/v1/chat', { messages: [user('x'.repeat(70 * 1024))] }, 413, 'payload_too_large', null],
    ['/v1/chat', 'messages=1', 415, 'unsupported_media_type', null, { 'content-type': 'application/x-www-form-urlencoded' }],
    ['/v1/chat', '{"messages":[]}', 415, 'unsupported_media_type', null, { 'content-type': 'text/plain' }],
    ['/v1/chat', '{"__proto__": {"x": 1}, "messages": []}', 400, 'invalid_json', null],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], n: 2 }, 400, 'invalid_request', 'n'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], tools: [{ type: 'function', function: { name: 'no spaces allowed' } }] }, 400, 'invalid_request', 'tools.0.function.name'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], tools: 'all of them' }, 400, 'invalid_request', 'tools'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], tools: [{ type: 'function', function: { name: 'f' } }], tool_choice: { type: 'function', function: { name: 'g' } } }, 400, 'invalid_request', 'tool_choice.function.name'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x'), { role: 'user', content: 'y', tool_call_id: 'c1' }] }, 400, 'invalid_request', 'messages.1.tool_call_id'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [{ role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{not json' } }] }, { role: 'tool', tool_call_id: 'c', content: '1' }] }, 400, 'invalid_request', 'messages.0.tool_calls.0.function.arguments'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], frequency_penalty: 1 }, 400, 'invalid_request', 'frequency_penalty'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], top_logprobs: 2 }, 400, 'invalid_request', 'top_logprobs'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('x')], stop: ['a', 'b', 'c', 'd', 'e'] }, 400, 'invalid_request', 'stop'],
    ['/v1/chat/completions', { messages: [user('x')] }, 400, 'invalid_request', 'model'],
    ['/v1/chat/completions', { model: 'no-such-model', messages: [user('x')] }, 404, 'model_not_found', 'model'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [user('法'.repeat(3000))] }, 400, 'context_length_exceeded', 'messages'],
    ['/v1/chat/completions', { model: 'chatglm3-6b', messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, 400, 'invalid_request', 'messages.0.content'],
    ['/v1/completions', { model: 'chatglm3-6b', prompt: '' }, 400, 'invalid_request', 'prompt'],
    ['/v1/completions', { model: 'chatglm3-6b', prompt: [1, -2] }, 400, 'invalid_request', 'prompt.1'],
    ['/v1/completions', { model: 'chatglm3-6b', prompt: 'x', echo: true }, 400, 'invalid_request', 'echo'],
  ];
  for (const [url, payload, status, code, param, headers] of cases) {
    const res = await post(url, payload, headers);
    const what = `${url} ${JSON.stringify(payload).slice(0, 100)}`;
    assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code, what);
    assert.equal(res.body.error.param, param, what);
    assert.ok(res.body.error.message.length > 0, what);
  }
});

test('unknown routes and methods are 404 envelopes; admin checks its token', async () => {
  const r = await app.inject({ method: 'GET', url: '/v2/nothing' });
  assert.equal(r.statusCode, 404);
  assert.equal(r.json().error.code, 'not_found');
  const noToken = await app.inject({ method: 'GET', url: '/admin/degrade' });
  assert.equal(noToken.statusCode, 401);
  const wrong = await app.inject({ method: 'GET', url: '/admin/degrade', headers: { authorization: 'Bearer not-the-token' } });
  assert.equal(wrong.statusCode, 401);
  const bad = await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'sideways' } });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().error.param, 'mode');
  for (const by of ['', 'x'.repeat(65), '<img src=x>', 'a\nb', 7, null, ['console']]) {
    const res = await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced', updated_by: by } });
    assert.equal(res.statusCode, 400, JSON.stringify(by));
    assert.equal(res.json().error.param, 'updated_by');
  }
  assert.equal(app.degrade.state.mode, 'auto', 'nothing refused was applied');
  const named = await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto', updated_by: 'console' } });
  assert.equal(named.json().updated_by, 'console');
});

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test('1,200 generated malformed requests: no 5xx, always an envelope, and the process still answers', async () => {
  const rand = rng(20240607);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const junk: unknown[] = [null, true, -1, 0, 1e308, -1e308, 3.7, '', 'x', '法'.repeat(50), [], [null], {}, { a: 1 }, '\u0000\u202e', 2 ** 53 + 1, NaN];
  const fields = ['messages', 'model', 'max_tokens', 'temperature', 'top_p', 'stream', 'stop', 'seed', 'n', 'logprobs', 'top_logprobs', 'prompt', 'adapter', 'stream_options', 'extra', '__proto__', 'constructor'];
  const valid = () => ({ model: 'chatglm3-6b', messages: [user('借钱不还怎么办？')], max_tokens: 4 });
  const routes = ['/v1/chat', '/v1/chat/completions', '/v1/completions', '/admin/degrade'];
  const counts = new Map<number, number>();
  for (let i = 0; i < 1200; i++) {
    const url = pick(routes);
    const kind = rand();
    let payload: string;
    let contentType = 'application/json';
    const body: Record<string, unknown> = valid();
    if (kind < 0.15) {
      payload = JSON.stringify(body).slice(0, Math.floor(rand() * 40));
    } else if (kind < 0.25) {
      payload = JSON.stringify(pick(junk));
    } else if (kind < 0.3) {
      payload = JSON.stringify(body);
      contentType = pick(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/jsonx', '']);
    } else {
      for (let k = 0, n = 1 + Math.floor(rand() * 3); k < n; k++) body[pick(fields)] = pick(junk);
      if (rand() < 0.3) body.messages = [{ role: pick(['user', 'system', 'assistant', 'tool', 7]), content: pick(junk) }];
      if (rand() < 0.1) delete body.messages;
      payload = JSON.stringify(body);
    }
    const headers: Record<string, string> = url.startsWith('/admin') ? { ...admin } : { ...auth };
    if (contentType) headers['content-type'] = contentType;
    const res = await app.inject({ method: url === '/admin/degrade' ? 'PUT' : 'POST', url, headers, payload });
    counts.set(res.statusCode, (counts.get(res.statusCode) ?? 0) + 1);
    assert.ok(res.statusCode < 500, `request ${i} to ${url} got ${res.statusCode}: ${payload.slice(0, 200)} → ${res.body.slice(0, 300)}`);
    if (res.statusCode >= 400) {
      const e = res.json().error;
      assert.match(e.code, /^[a-z_]+$/, `request ${i}`);
      assert.equal(typeof e.message, 'string');
    }
  }
  assert.ok((counts.get(400) ?? 0) > 600, `mostly 400s: ${JSON.stringify([...counts])}`);
  // The admin route may have switched the mode; put it back and check the service still answers.
  await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto', source: 'kb' } });
  const ok = await post('/v1/chat', { messages: [user('借钱不还怎么办？')] });
  assert.equal(ok.status, 200);
  assert.equal((ok.body as unknown as { degraded: unknown }).degraded, false);
});
