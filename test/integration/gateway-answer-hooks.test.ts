import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { FastifyInstance } from 'fastify';
import type { AnswerContext, AnswerEnd } from '../../src/gateway/answer/pipeline.js';
import { AppError } from '../../src/shared/errors.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';
import { admin, auth, testGateway } from '../helpers/gateway.js';

let worker: FakeWorker;
let app: FastifyInstance;
const seen: Array<{ phase: 'before' | 'end'; ctx: AnswerContext; end?: AnswerEnd }> = [];
let refuse = false;

before(async () => {
  worker = await startFakeWorker();
  app = await testGateway(
    { workers: { urls: [worker.url] }, auth: { anonymous: true, anonymousTier: 'free' } },
    {
      answerHooks: [
        {
          beforeAnswer: (ctx) => void seen.push({ phase: 'before', ctx }),
          onAnswerEnd: (ctx, end) => void seen.push({ phase: 'end', ctx, end }),
        },
        {
          beforeAnswer: () => {
            if (refuse) throw new AppError('RATE_LIMITED', 'token bucket empty', { retryAfter: 3 });
          },
        },
      ],
    },
  );
});
after(async () => {
  await app.close();
  await worker.stop();
});

const payload = { messages: [{ role: 'user', content: '借钱不还怎么办？' }], max_tokens: 100 };

test('the hooks see every answer once, with who asked, what will be generated, and the usage at the end', async () => {
  seen.length = 0;
  const ok = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload });
  assert.equal(ok.statusCode, 200);
  assert.equal(seen.length, 2);
  const [b, e] = seen;
  assert.equal(b!.phase, 'before');
  assert.deepEqual(b!.ctx.tenant, { name: 'tenant-a', tier: 'pro', anonymous: false });
  assert.equal(b!.ctx.generate.max_tokens, 100);
  assert.equal(b!.ctx.route, 'chat');
  assert.deepEqual(e!.end, {
    outcome: 'done',
    usage: ok.json().usage && { prompt_tokens: ok.json().usage.prompt_tokens, completion_tokens: 9 },
    degraded: false,
    worker: worker.url,
  });

  seen.length = 0;
  await app.inject({ method: 'POST', url: '/v1/chat', headers: {}, payload, remoteAddress: '192.0.2.7' });
  assert.deepEqual(seen[0]!.ctx.tenant, { name: 'anon:192.0.2.7', tier: 'free', anonymous: true });

  seen.length = 0;
  const tooLong = await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload: { messages: [{ role: 'user', content: '法'.repeat(2100) }] } });
  assert.equal(tooLong.statusCode, 400);
  assert.deepEqual(seen[1]!.end, { outcome: 'failed', usage: { prompt_tokens: 0, completion_tokens: 0 }, degraded: false });

  seen.length = 0;
  await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'forced' } });
  await app.inject({ method: 'POST', url: '/v1/chat', headers: auth, payload });
  await app.inject({ method: 'PUT', url: '/admin/degrade', headers: admin, payload: { mode: 'auto' } });
  assert.equal(seen[1]!.end!.outcome, 'degraded');
  assert.equal((seen[1]!.end!.degraded as { source: string }).source, 'kb');
});

test('a hook that refuses stops the answer; the hooks already entered are ended as refused', async (ctx) => {
  seen.length = 0;
  refuse = true;
  const before = (await worker.stats()).requests;
  ctx.after(() => {
      refuse = false;
  });
  const res = await app.inject({ method: 'POST', url: '/v1/chat/completions', headers: auth, payload: { ...payload, model: 'chatglm3-6b' } });
  assert.equal(res.statusCode, 429);
  assert.equal(res.headers['retry-after'], '3');
  assert.equal(res.json().error.code, 'rate_limited');
  assert.deepEqual(seen.map((s) => s.phase), ['before', 'end']);
  assert.equal(seen[1]!.end!.outcome, 'refused');
  assert.equal((await worker.stats()).requests, before, 'no worker was asked');
});
