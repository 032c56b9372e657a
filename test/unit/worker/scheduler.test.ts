import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { AppError } from '../../../src/shared/errors.js';
import type { GenerateEvent } from '../../../src/protocol/schemas.js';
import { ChatGLMTokenizer } from '../../../src/tokenizer/tokenizer.js';
import { createWorkerMetrics } from '../../../src/worker/metrics.js';
import { Scheduler, type ScheduledRequest, type SchedulerOptions } from '../../../src/worker/scheduler.js';
import { GOLDEN_TOKENIZER_DIR } from '../../helpers/paths.js';
import { ToyEngine, type ToyEngineOptions } from '../../helpers/toy-engine.js';

const tok = await ChatGLMTokenizer.fromFile(join(GOLDEN_TOKENIZER_DIR, 'tokenizer.model'));

const OPTIONS: SchedulerOptions = { maxRunningSequences: 8, maxKvTokens: 4096, maxQueue: 16, prefillChunkTokens: 64 };

function setup(engineOptions: ToyEngineOptions = {}, options: Partial<SchedulerOptions> = {}) {
  const engine = new ToyEngine({ banned: [...tok.stopIds], ...engineOptions });
  const metrics = createWorkerMetrics();
  const scheduler = new Scheduler(engine, tok, { ...OPTIONS, ...options }, metrics);
  return { engine, scheduler, metrics };
}

function request(id: string, promptIds: number[], extra: Partial<ScheduledRequest> = {}): ScheduledRequest {
  return {
    id,
    promptIds,
    adapter: null,
    maxTokens: 10,
    sampling: { temperature: 0, top_p: 1 },
    stop: [],
    chat: false,
    ...extra,
  };
}

interface Run {
  events: GenerateEvent[];
  done: Promise<GenerateEvent[]>;
  cancel: () => void;
}

function run(scheduler: Scheduler, req: ScheduledRequest, onToken?: (n: number) => void): Run {
  const events: GenerateEvent[] = [];
  let resolve!: (e: GenerateEvent[]) => void;
  const done = new Promise<GenerateEvent[]>((r) => (resolve = r));
  let tokens = 0;
  const handle = scheduler.submit(req, (e) => {
    events.push(e);
    if (e.type === 'token' && e.ids.length) onToken?.(++tokens);
    if (e.type === 'end' || e.type === 'error') resolve(events);
  });
  return { events, done, cancel: handle.cancel };
}

async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((r) => setTimeout(r, 1));
}

const ids = (events: GenerateEvent[]) => events.flatMap((e) => (e.type === 'token' ? e.ids : []));
const end = (events: GenerateEvent[]) => events.at(-1)!;

function prompts(n: number): number[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: 3 + i * 7 }, (_, j) => 100 + ((i * 31 + j * 7) % 500)));
}

test('a request streams start, one token event per token, then end with usage and timings', async () => {
  const { scheduler, engine } = setup();
  const events = await run(scheduler, request('a', [5, 6, 7], { maxTokens: 6 })).done;
  assert.deepEqual(events[0], { type: 'start', prompt_tokens: 3 });
  assert.equal(ids(events).length, 6);
  const last = end(events);
  assert.equal(last.type, 'end');
  if (last.type !== 'end') return;
  assert.equal(last.finish_reason, 'length');
  assert.deepEqual(last.usage, { prompt_tokens: 3, completion_tokens: 6 });
  assert.ok(last.timings.total_ms >= last.timings.ttft_ms);
  assert.equal(engine.openSequences, 0);
  assert.equal(engine.kvTokensInUse(), 0);
  await scheduler.drain(0);
});

test('batching is invisible: 8 greedy requests together return what each returns alone', async () => {
  const alone: number[][] = [];
  for (const [i, p] of prompts(8).entries()) {
    const { scheduler } = setup();
    alone.push(ids(await run(scheduler, request(`a${i}`, p, { maxTokens: 5 + i })).done));
    await scheduler.drain(0);
  }
  const { scheduler, engine } = setup();
  const together = await Promise.all(prompts(8).map((p, i) => run(scheduler, request(`t${i}`, p, { maxTokens: 5 + i })).done));
  assert.deepEqual(together.map(ids), alone);
  const widest = Math.max(...engine.calls.filter((c) => c.kind === 'decode').map((c) => c.tags.length));
  assert.equal(widest, 8, 'the eight were decoded in one batch');
  await scheduler.drain(0);
});

test('a request arriving mid-generation joins the running batch between steps', async () => {
  const { scheduler, engine } = setup({ stepMs: 2 });
  const aloneB = await (async () => {
    const s = setup();
    const r = ids(await run(s.scheduler, request('b', [9, 9, 9], { maxTokens: 8 })).done);
    await s.scheduler.drain(0);
    return r;
  })();
  let b: Run | undefined;
  const a = run(scheduler, request('a', [1, 2, 3], { maxTokens: 30 }), (n) => {
    if (n === 5) b = run(scheduler, request('b', [9, 9, 9], { maxTokens: 8 }));
  });
  await a.done;
  assert.ok(b);
  assert.deepEqual(ids(await b.done), aloneB);
  const decodes = engine.calls.filter((c) => c.kind === 'decode');
  assert.ok(decodes.some((c) => c.tags.length === 2), 'b was decoded together with a');
  assert.ok(decodes.findIndex((c) => c.tags.length === 2) > 3, 'b joined after a had started');
  await scheduler.drain(0);
});

test('a cancelled request leaves the batch before the next step and frees its KV row', async () => {
  const { scheduler, engine, metrics } = setup({ stepMs: 1 });
  const other = run(scheduler, request('other', [4, 4], { maxTokens: 40 }));
  let stepsAtCancel = -1;
  const victim = run(scheduler, request('victim', [3, 3, 3], { maxTokens: 200 }), (n) => {
    if (n === 4) {
      victim.cancel();
      stepsAtCancel = engine.calls.length;
    }
  });
  const events = await victim.done;
  const last = end(events);
  assert.equal(last.type === 'end' && last.finish_reason, 'cancelled');
  const victimTag = engine.calls.find((c) => c.kind === 'prefill' && c.tokens === 3)!.tags[0]!;
  const after = engine.calls.slice(stepsAtCancel).filter((c) => c.tags.includes(victimTag));
  assert.deepEqual(after, [], 'no step ran the cancelled sequence after cancel()');
  assert.equal(ids(events).length, 4);
  await other.done;
  assert.equal(engine.kvTokensInUse(), 0);
  assert.equal(engine.openSequences, 0);
  assert.equal((await metrics.registry.getSingleMetric('worker_kv_tokens_in_use')!.get()).values[0]!.value, 0);
  await scheduler.drain(0);
});

test('a full queue is refused with OVERLOADED (503) and the worker goes on', async () => {
  const { scheduler } = setup({ stepMs: 2 }, { maxRunningSequences: 1, maxQueue: 2 });
  const runs = [run(scheduler, request('r0', [1], { maxTokens: 5 }))];
  // r0 runs; two more fill the queue
  await until(() => scheduler.runningCount === 1);
  runs.push(run(scheduler, request('r1', [1], { maxTokens: 5 })), run(scheduler, request('r2', [1], { maxTokens: 5 })));
  assert.throws(
    () => run(scheduler, request('r3', [1], { maxTokens: 5 })),
    (err: unknown) => err instanceof AppError && err.code === 'OVERLOADED' && err.status === 503,
  );
  for (const r of runs) assert.equal(end(await r.done).type, 'end');
  const later = await run(scheduler, request('r4', [1], { maxTokens: 2 })).done;
  assert.equal(end(later).type, 'end');
  await scheduler.drain(0);
});

test('running sequences and reserved KV tokens stay within their limits', async () => {
  const { scheduler, engine } = setup({}, { maxRunningSequences: 3, maxKvTokens: 2 * (10 + 20) });
  const all = prompts(6).map((_, i) => run(scheduler, request(`k${i}`, Array(10).fill(7 + i), { maxTokens: 20 })).done);
  await Promise.all(all);
  const widest = Math.max(...engine.calls.filter((c) => c.kind === 'decode').map((c) => c.tags.length));
  assert.equal(widest, 2, 'the KV budget held two sequences at a time');
  const s2 = setup({}, { maxRunningSequences: 3 });
  await Promise.all(prompts(6).map((p, i) => run(s2.scheduler, request(`m${i}`, p, { maxTokens: 12 })).done));
  assert.equal(Math.max(...s2.engine.calls.map((c) => c.tags.length)), 3);
  await scheduler.drain(0);
  await s2.scheduler.drain(0);
});

test('a stop string ends with finish_reason stop and is not returned', async () => {
  const { scheduler } = setup();
  const full = await run(scheduler, request('full', [5, 6], { maxTokens: 12 })).done;
  const text = full.flatMap((x) => (x.type === 'token' ? [x.text] : [])).join('');
  assert.ok(text.length > 3, `toy output too short: ${JSON.stringify(text)}`);
  const stop = text.slice(2, 4);
  const cut = await run(scheduler, request('cut', [5, 6], { maxTokens: 12, stop: [stop] })).done;
  const cutText = cut.flatMap((x) => (x.type === 'token' ? [x.text] : [])).join('');
  assert.equal(cutText, text.slice(0, text.indexOf(stop)));
  const last = end(cut);
  assert.equal(last.type === 'end' && last.finish_reason, 'stop');
  await scheduler.drain(0);
});

test('a stop id ends the generation without a token event for it', async () => {
  // Only eos may win after the first token: ban everything else from the second step on.
  const engine = new ToyEngine({ banned: [] });
  const original = engine.decode.bind(engine);
  engine.decode = async (seqs, tokens) => {
    const out = await original(seqs, tokens);
    out.fill(-Infinity);
    for (let i = 0; i < seqs.length; i++) out[i * engine.info.vocabSize + tok.eosId] = 0;
    return out;
  };
  const scheduler = new Scheduler(engine, tok, OPTIONS, createWorkerMetrics());
  const events = await run(scheduler, request('eos', [5], { maxTokens: 10 })).done;
  assert.equal(ids(events).length, 1);
  const last = end(events);
  assert.ok(last.type === 'end' && last.finish_reason === 'stop' && last.usage.completion_tokens === 2);
  await scheduler.drain(0);
});

test('context limits: a prompt that fills the context is refused; max_tokens is cut to the context', async () => {
  const { scheduler } = setup({ contextLength: 32 });
  assert.throws(
    () => run(scheduler, request('long', Array(32).fill(5))),
    (err: unknown) => err instanceof AppError && err.code === 'CONTEXT_LENGTH_EXCEEDED' && err.status === 400,
  );
  const events = await run(scheduler, request('fit', Array(28).fill(5), { maxTokens: 100 })).done;
  const last = end(events);
  assert.ok(last.type === 'end' && last.finish_reason === 'length' && last.usage.completion_tokens === 4);
  const big = setup({}, { maxKvTokens: 50 });
  assert.throws(() => run(big.scheduler, request('big', [1, 2], { maxTokens: 60 })), /KV cache of 50 tokens/);
  await scheduler.drain(0);
  await big.scheduler.drain(0);
});

test('a long prompt is prefilled in chunks while the batch keeps decoding', async () => {
  const { scheduler, engine } = setup({}, { prefillChunkTokens: 16 });
  const a = run(scheduler, request('a', [1, 2], { maxTokens: 30 }));
  await until(() => engine.calls.some((c) => c.kind === 'decode'));
  const b = run(scheduler, request('b', Array(70).fill(3), { maxTokens: 3 }));
  await Promise.all([a.done, b.done]);
  const bTag = engine.calls.filter((c) => c.kind === 'prefill')[1]!.tags[0]!;
  const chunks = engine.calls.filter((c) => c.kind === 'prefill' && c.tags[0] === bTag).map((c) => c.tokens);
  assert.deepEqual(chunks, [16, 16, 16, 16, 6]);
  const first = engine.calls.findIndex((c) => c.kind === 'prefill' && c.tags[0] === bTag);
  const decodesBetween = engine.calls.slice(first, first + 9).filter((c) => c.kind === 'decode').length;
  assert.ok(decodesBetween >= 4, 'decode steps ran between the chunks');
  await scheduler.drain(0);
});

test('a sequence the engine is not ready to prefill waits without holding the loop: the batch keeps decoding', async () => {
  const { scheduler, engine } = setup({ stepMs: 2, readyAfterMs: 60 });
  const t0 = performance.now();
  let aFirst = 0;
  let bSubmitted = 0;
  let bFirst = 0;
  let b: Run | undefined;
  const a = run(scheduler, request('a', [1, 2, 3], { maxTokens: 60 }), (n) => {
    if (n === 1) aFirst = performance.now();
    if (n === 3) {
      bSubmitted = performance.now();
      b = run(scheduler, request('b', [4, 5], { maxTokens: 3 }), (m) => {
        if (m === 1) bFirst = performance.now();
      });
    }
  });
  await a.done;
  await b!.done;
  assert.ok(aFirst - t0 >= 59, `a's first token came after the engine's readiness (${aFirst - t0} ms)`);
  assert.ok(bFirst - bSubmitted >= 59, `b's too (${bFirst - bSubmitted} ms)`);
  assert.equal(engine.earlyPrefills, 0, 'no prefill before the engine was ready');
  const bTag = engine.calls.filter((c) => c.kind === 'prefill')[1]!.tags[0]!;
  const bPrefill = engine.calls.findIndex((c) => c.kind === 'prefill' && c.tags[0] === bTag);
  const aAlone = engine.calls.slice(0, bPrefill).filter((c) => c.kind === 'decode' && c.tags.length === 1).length;
  // 60 ms of 2 ms steps: far more than the three a had made when b came.
  assert.ok(aAlone >= 10, `a kept decoding while b waited (${aAlone} steps)`);
  await scheduler.drain(0);
});

test('a failing decode step ends its sequences with an error event and the worker keeps serving', async () => {
  const { scheduler, engine } = setup({ stepMs: 1 });
  const a = run(scheduler, request('a', [1, 2], { maxTokens: 20 }), (n) => {
    if (n === 2) engine.failNextDecode = new Error('device lost');
  });
  const events = await a.done;
  assert.deepEqual(end(events), { type: 'error', code: 'INTERNAL', message: 'decode step failed: device lost' });
  assert.equal(engine.openSequences, 0);
  const next = await run(scheduler, request('b', [1, 2], { maxTokens: 3 })).done;
  assert.equal(end(next).type, 'end');
  await scheduler.drain(0);
});

test('logprobs come with each token; sampling with a seed is reproducible across batching', async () => {
  const { scheduler } = setup();
  const sampling = { temperature: 0.9, top_p: 0.9, top_k: 50, repetition_penalty: 1.2 };
  const one = await run(scheduler, request('x', [7, 8, 9], { maxTokens: 8, sampling, seed: 5, logprobs: 3 })).done;
  for (const e of one) {
    if (e.type !== 'token' || e.ids.length === 0) continue;
    const lp = e.logprobs![0]!;
    assert.equal(lp.id, e.ids[0]);
    assert.equal(lp.top_logprobs.length, 3);
    assert.ok(lp.logprob <= 0 && lp.top_logprobs[0]!.logprob >= lp.top_logprobs[2]!.logprob);
  }
  const crowd = await Promise.all([
    run(scheduler, request('y', [1], { maxTokens: 8, sampling, seed: 1 })).done,
    run(scheduler, request('x2', [7, 8, 9], { maxTokens: 8, sampling, seed: 5 })).done,
    run(scheduler, request('z', [2], { maxTokens: 8, sampling, seed: 2 })).done,
  ]);
  assert.deepEqual(ids(crowd[1]!), ids(one));
  await scheduler.drain(0);
});

test('drain refuses new work and ends what is left with an error event', async () => {
  const { scheduler, engine } = setup({ stepMs: 2 });
  const long = run(scheduler, request('long', [1], { maxTokens: 10_000 }));
  await new Promise((r) => setTimeout(r, 10));
  await scheduler.drain(20);
  const last = end(await long.done);
  assert.equal(last.type, 'error');
  assert.equal(engine.openSequences, 0);
  assert.throws(() => scheduler.submit(request('late', [1]), () => {}), (e: unknown) => e instanceof AppError && e.code === 'NOT_READY');
});

test('a prompt whose prefix the engine has cached is prefilled from there: same tokens, counted in the metrics', async () => {
  const { scheduler, engine, metrics } = setup({ prefixBlock: 8 }, { prefillChunkTokens: 16 });
  const shared = Array.from({ length: 40 }, (_, i) => 100 + i);
  const first = await run(scheduler, request('a', [...shared, 1, 2], { maxTokens: 5 })).done;
  const again = await run(scheduler, request('b', [...shared, 1, 2], { maxTokens: 5 })).done;
  const other = await run(scheduler, request('c', [...shared.slice(0, 20), 7], { maxTokens: 5 })).done;
  assert.deepEqual(ids(again), ids(first), 'the cache changes no token');
  const prefills = (tag: number) => engine.calls.filter((c) => c.kind === 'prefill' && c.tags[0] === tag).map((c) => c.tokens);
  assert.deepEqual(prefills(0), [16, 16, 10]);
  assert.deepEqual(prefills(1), [2], '40 of 42 tokens came from the cache');
  assert.deepEqual(prefills(2), [5], 'two whole blocks of the shared start');
  assert.equal(ids(other).length, 5);
  const value = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values[0]!.value;
  assert.equal(await value('worker_prefix_cache_lookups_total'), 3);
  assert.equal(await value('worker_prefix_cache_hits_total'), 2);
  assert.equal(await value('worker_prefix_cache_cached_tokens_total'), 40 + 16);
  assert.equal(await value('worker_prefill_tokens_total'), 42 + 2 + 5);
  await scheduler.drain(0);
});

test('fair admission: a light tenant behind a flooding one starts in the first wave; first come first served keeps it behind the flood', async () => {
  const order = async (policy: 'fair' | 'fcfs') => {
    const { scheduler } = setup({}, { maxRunningSequences: 4, maxQueue: 32, policy });
    const firsts: string[] = [];
    const runs = Array.from({ length: 24 }, (_, i) =>
      run(scheduler, request(`heavy${i}`, [1, 2, 3, i], { maxTokens: 16, tenant: 'heavy', tier: 'free' }), (n) => n === 1 && firsts.push(`heavy${i}`)),
    );
    runs.push(run(scheduler, request('light', [4, 5], { maxTokens: 4, tenant: 'light', tier: 'free' }), (n) => n === 1 && firsts.push('light')));
    await Promise.all(runs.map((r) => r.done));
    await scheduler.drain(0);
    return firsts.indexOf('light');
  };
  assert.ok((await order('fair')) < 4, 'fair: among the first four to start');
  assert.equal(await order('fcfs'), 24, 'fcfs: after all 24');
});

test('tier metrics count admissions and tokens by tier, with unknown tiers and requests without one kept to two labels', async () => {
  const { scheduler, metrics } = setup({}, { tierWeights: { pro: 2 } });
  await run(scheduler, request('a', [1, 2, 3], { maxTokens: 4, tenant: 't1', tier: 'pro' })).done;
  await run(scheduler, request('b', [1, 2], { maxTokens: 3, tenant: 't2', tier: 'made-up' })).done;
  await run(scheduler, request('c', [1], { maxTokens: 2 })).done;
  const values = async (name: string) => (await metrics.registry.getSingleMetric(name)!.get()).values;
  const admitted = Object.fromEntries((await values('worker_tier_admitted_requests_total')).map((v) => [v.labels.tier, v.value]));
  assert.deepEqual(admitted, { pro: 1, other: 1, none: 1 });
  const tokens = (await values('worker_tier_tokens_total')).map((v) => `${v.labels.tier}/${v.labels.kind}=${v.value}`).sort();
  assert.deepEqual(tokens, ['none/output=2', 'none/prompt=1', 'other/output=3', 'other/prompt=2', 'pro/output=4', 'pro/prompt=3']);
  await scheduler.drain(0);
});
