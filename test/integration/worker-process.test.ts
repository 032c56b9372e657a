/**
 * The worker as a real process on the golden tiny model (exported by the model builder into a
 * temporary folder), driven through its HTTP protocol.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ChatGLMTokenizer } from '../../src/tokenizer/tokenizer.js';
import { GenerateEventSchema, ReadyzSchema, WorkerModelInfoSchema, type GenerateEvent } from '../../src/protocol/schemas.js';
import { sleep } from '../../src/shared/net.js';
import { readTinyGolden } from '../helpers/golden-fixtures.js';
import { exportTinyModel, generate, metric, startWorker, tokenIds, type TinyModel, type WorkerProcess } from '../helpers/worker-process.js';

const golden = readTinyGolden();

let model: TinyModel;
let worker: WorkerProcess;

before(async () => {
  model = await exportTinyModel('runtime');
  // cuda is asked for on purpose: this machine has none, so the worker must fall back to the CPU.
  worker = await startWorker({
    WORKER_MODEL_DIR: model.modelDir,
    WORKER_ADAPTERS_DIR: model.adaptersDir,
    WORKER_DEVICE_PROVIDER: 'cuda',
    WORKER_DEVICE_DEVICE_ID: '0',
  });
});

after(async () => {
  await worker?.stop();
  model?.cleanup();
});

const greedy = (input_ids: number[], extra: Record<string, unknown> = {}) => ({
  id: 'g',
  prompt_ids: input_ids,
  max_tokens: 12,
  temperature: 0,
  ...extra,
});

function logSoftmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const lse = max + Math.log(logits.reduce((a, l) => a + Math.exp(l - max), 0));
  return logits.map((l) => l - lse);
}

test('readyz reports the execution provider actually used (cuda asked, cpu used); adapters and tokenizer are served', async () => {
  const ready = ReadyzSchema.parse(await (await fetch(`${worker.url}/readyz`)).json());
  assert.deepEqual(ready, { ready: true, model: 'chatglm3-tiny', execution_provider: 'cpu', load: { queue_length: 0, running_sequences: 0, kv_tokens_in_use: 0, kv_tokens_capacity: 16384 } });
  assert.equal(await metric(worker.url, 'worker_execution_provider_info{provider="cpu",requested="cuda"'), 1);
  assert.match(worker.output(), /falling back to CPU/);
  const info = WorkerModelInfoSchema.parse(await (await fetch(`${worker.url}/v1/adapters`)).json());
  assert.deepEqual(info, {
    model: 'chatglm3-tiny',
    context_length: 256,
    adapter_mode: 'runtime',
    adapters: [{ name: 'legal', rank: 4, alpha: 8, target_modules: ['query_key_value'] }],
  });
  const res = await fetch(`${worker.url}/v1/tokenizer`);
  assert.equal(res.headers.get('content-type'), 'application/octet-stream');
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.deepEqual(bytes, new Uint8Array(readFileSync(join(model.modelDir, 'tokenizer.model'))));
  const tok = await ChatGLMTokenizer.fromBytes(bytes);
  assert.equal(tok.specialTokens['<|assistant|>'], 707);
  assert.equal((await fetch(`${worker.url}/healthz`)).status, 200);
});

test('greedy generation returns the golden greedy ids, base and with the adapter chosen per request', async () => {
  for (const [which, adapter] of [['base', undefined], ['with_lora', 'legal']] as const) {
    for (const c of golden[which]) {
      const r = await generate(worker.url, greedy(c.input_ids, adapter ? { adapter } : {}));
      assert.equal(r.status, 200);
      for (const e of r.events) GenerateEventSchema.parse(e);
      assert.deepEqual(r.events[0], { type: 'start', prompt_tokens: c.input_ids.length });
      assert.deepEqual(tokenIds(r.events), c.greedy_ids, `${which} ${c.input_ids.length}`);
      const end = r.events.at(-1)!;
      assert.ok(end.type === 'end' && end.finish_reason === 'length' && end.usage.completion_tokens === 12);
    }
  }
});

test('logprobs match the log-softmax of the reference logits within 1e-3 (top 20 alternatives)', async () => {
  let worst = 0;
  for (const [which, adapter] of [['base', undefined], ['with_lora', 'legal']] as const) {
    for (const c of golden[which]) {
      // the prompt alone, then the prompt followed by k continuation tokens
      const cases = [
        { ids: c.input_ids, logits: c.logits_all_positions.at(-1)! },
        { ids: [...c.input_ids, ...c.continuation_ids.slice(0, 5)], logits: c.continuation_last_logits[4]! },
      ];
      for (const k of cases) {
        const r = await generate(worker.url, greedy(k.ids, { max_tokens: 1, logprobs: 20, ...(adapter ? { adapter } : {}) }));
        const token = r.events.find((e) => e.type === 'token' && e.ids.length === 1)!;
        assert.ok(token.type === 'token' && token.logprobs);
        const ref = logSoftmax(k.logits);
        const lp = token.logprobs[0]!;
        const order = ref.map((v, id) => ({ id, v })).sort((a, b) => b.v - a.v);
        assert.equal(lp.id, order[0]!.id);
        worst = Math.max(worst, Math.abs(lp.logprob - ref[lp.id]!));
        assert.equal(lp.top_logprobs.length, 20);
        lp.top_logprobs.forEach((t, i) => {
          worst = Math.max(worst, Math.abs(t.logprob - ref[t.id]!));
          assert.ok(Math.abs(ref[t.id]! - order[i]!.v) < 1e-3, `rank ${i}`);
        });
      }
    }
  }
  assert.ok(worst < 1e-3, `max logprob error ${worst}`);
});

test('batching is invisible: 8 greedy requests of different lengths together return what each returns alone', async () => {
  const all = [...golden.base, ...golden.with_lora];
  const requests = Array.from({ length: 8 }, (_, i) => {
    const c = all[i % all.length]!;
    const cut = c.input_ids.slice(0, c.input_ids.length - (i % 3) * 4);
    return greedy(cut, { max_tokens: 6 + i * 3, id: `b${i}`, ...(i % 2 ? { adapter: 'legal' } : {}) });
  });
  const alone: number[][] = [];
  for (const r of requests) alone.push(tokenIds((await generate(worker.url, r)).events));
  const before = await metric(worker.url, 'worker_batch_size_sum');
  const count = await metric(worker.url, 'worker_batch_size_count');
  const together = await Promise.all(requests.map((r) => generate(worker.url, r)));
  assert.deepEqual(together.map((t) => tokenIds(t.events)), alone);
  const meanBatch = ((await metric(worker.url, 'worker_batch_size_sum')) - before) / ((await metric(worker.url, 'worker_batch_size_count')) - count);
  assert.ok(meanBatch > 2, `requests were batched (mean batch ${meanBatch.toFixed(2)})`);
});

test('a client that disconnects cancels its generation, which frees its KV memory', async () => {
  const controller = new AbortController();
  let tokens = 0;
  let decodedAtAbort = 0;
  const started = generate(worker.url, greedy(golden.base[1]!.input_ids, { max_tokens: 200 }), {
    signal: controller.signal,
    onEvent: (e) => {
      if (e.type === 'token' && ++tokens === 3) controller.abort();
    },
  });
  const r = await started;
  assert.ok(r.error, 'the stream was aborted');
  assert.ok(!r.events.some((e: GenerateEvent) => e.type === 'end'));
  decodedAtAbort = await metric(worker.url, 'worker_decode_tokens_total');
  for (let i = 0; i < 100 && (await metric(worker.url, 'worker_running_sequences')) > 0; i++) await sleep(10);
  assert.equal(await metric(worker.url, 'worker_running_sequences'), 0);
  assert.equal(await metric(worker.url, 'worker_kv_tokens_in_use'), 0);
  assert.ok((await metric(worker.url, 'worker_requests_total{finish_reason="cancelled"')) >= 1);
  const settled = await metric(worker.url, 'worker_decode_tokens_total');
  // 200 tokens were asked for; it stopped right after the disconnect (the exact one-step bound is a scheduler unit test)
  assert.ok(settled - decodedAtAbort <= 3, `${settled - decodedAtAbort} tokens after the disconnect`);
  await sleep(50);
  assert.equal(await metric(worker.url, 'worker_decode_tokens_total'), settled);
});

test('malformed requests get a 4xx with the field at fault, never a 5xx, and the worker keeps serving', async () => {
  const cases: Array<[unknown, number, string | null]> = [
    ['{not json', 400, null],
    ['', 400, null],
    [[1, 2], 400, null],
    [{ id: 'x', max_tokens: 1 }, 400, 'messages'],
    [{ id: 'x', prompt: 'hi', max_tokens: 0 }, 400, 'max_tokens'],
    [{ id: 'x', prompt_ids: [1, 99999], max_tokens: 1 }, 400, 'prompt_ids.1'],
    [{ id: 'x', prompt: 'hi', max_tokens: 1, adapter: 'ghost' }, 404, 'adapter'],
    [{ id: 'x', prompt_ids: Array(300).fill(5), max_tokens: 1 }, 400, 'messages'],
    [{ id: 'x', messages: [{ role: 'tool', content: 'x' }], max_tokens: 1 }, 400, 'messages.0.role'],
  ];
  for (const [body, status, param] of cases) {
    const r = await generate(worker.url, body);
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 80));
    assert.equal((r.json as { error: { param: string | null } }).error.param, param);
  }
  const wrongType = await fetch(`${worker.url}/v1/generate`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(wrongType.status, 415);
  const ok = await generate(worker.url, greedy(golden.base[0]!.input_ids));
  assert.deepEqual(tokenIds(ok.events), golden.base[0]!.greedy_ids);
});

test('a killed worker leaves a stream without an end event, never one that looks complete', async () => {
  const victim = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: model.adaptersDir });
  let tokens = 0;
  const r = await generate(victim.url, greedy(golden.base[2]!.input_ids, { max_tokens: 200 }), {
    onEvent: (e) => {
      if (e.type === 'token' && ++tokens === 2) victim.child.kill('SIGKILL');
    },
  });
  await victim.stop();
  assert.ok(r.error, 'reading the stream failed');
  assert.ok(r.events.length >= 2);
  assert.ok(!r.events.some((e) => e.type === 'end'));
});

test('SIGTERM with no grace time ends running generations with an error event (never a false end) and exits 0', async () => {
  const w = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: model.adaptersDir, WORKER_SHUTDOWN_GRACE_MS: '0' });
  let tokens = 0;
  const exited = new Promise<number | null>((r) => w.child.once('exit', (code) => r(code)));
  const r = await generate(w.url, greedy(golden.base[0]!.input_ids, { max_tokens: 230 }), {
    onEvent: (e) => {
      if (e.type === 'token' && ++tokens === 2) w.child.kill('SIGTERM');
    },
  });
  const last = r.events.at(-1)!;
  assert.ok(last.type === 'error' && last.code === 'NOT_READY', JSON.stringify(last));
  assert.ok(!r.events.some((e) => e.type === 'end'));
  assert.equal(await exited, 0);
});
