/**
 * The prefix cache in the onnxruntime engine, on the golden tiny model: a prompt that starts with a
 * cached prefix gives the same logits as the reference and as the same engine without the cache,
 * step by step; adapters never share blocks; the budget holds.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAdapters } from '../../src/worker/adapters.js';
import { OnnxEngine, readManifest } from '../../src/worker/engine/onnx-engine.js';
import { readTinyGolden } from '../helpers/golden-fixtures.js';
import { exportTinyModel, generate as stream, metric, startWorker, tokenIds, type TinyModel } from '../helpers/worker-process.js';

const golden = readTinyGolden();
const BLOCK = 4;

let model: TinyModel;
let cached: OnnxEngine;
let plain: OnnxEngine;

async function load(maxBytes: number): Promise<OnnxEngine> {
  const manifest = readManifest(model.modelDir);
  return OnnxEngine.load({
    modelDir: model.modelDir,
    device: { provider: 'cpu', deviceId: 0, intraOpThreads: 1, interOpThreads: 0, graphOptimizationLevel: 'all' },
    maxSequences: 4,
    adapters: loadAdapters(manifest, model.adaptersDir),
    prefixCache: { maxBytes, blockTokens: BLOCK },
  });
}

before(async () => {
  model = await exportTinyModel('runtime');
  cached = await load(1 << 20);
  plain = await load(0);
});

after(async () => {
  await cached?.dispose();
  await plain?.dispose();
  model?.cleanup();
});

function maxError(row: Float32Array, ref: ArrayLike<number>): number {
  let e = 0;
  for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(row[i]! - ref[i]!));
  return e;
}

/** Prefills `prompt` (after what the cache gives) and decodes `steps` golden tokens; every logits row. */
async function generate(engine: OnnxEngine, prompt: number[], next: number[], adapter: string | null = null) {
  const a = adapter ? loadAdapters(engine.manifest, model.adaptersDir).byName.get(adapter)! : null;
  const seq = engine.open(a);
  const reused = await engine.reusePrefix(seq, prompt);
  const rows = [Float32Array.from(await engine.prefill(seq, prompt.slice(reused)))];
  for (const id of next) rows.push(Float32Array.from(await engine.decode([seq], [id])));
  engine.close(seq);
  return { reused, rows };
}

test('a repeated prompt reuses its whole blocks and gives the reference logits, the same as without the cache', async () => {
  const c = golden.base[1]!;
  const cold = await generate(cached, c.input_ids, c.continuation_ids.slice(0, 6));
  assert.equal(cold.reused, 0);
  const warm = await generate(cached, c.input_ids, c.continuation_ids.slice(0, 6));
  assert.equal(warm.reused, Math.floor((c.input_ids.length - 1) / BLOCK) * BLOCK);
  const without = await generate(plain, c.input_ids, c.continuation_ids.slice(0, 6));
  assert.equal(without.reused, 0, 'no cache, nothing reused');
  const refs = [c.logits_all_positions.at(-1)!, ...c.continuation_last_logits.slice(0, 6)];
  let vsRef = 0;
  let vsPlain = 0;
  warm.rows.forEach((row, i) => {
    vsRef = Math.max(vsRef, maxError(row, refs[i]!));
    vsPlain = Math.max(vsPlain, maxError(row, without.rows[i]!));
  });
  assert.ok(vsRef < 1e-4, `max error against the reference ${vsRef}`);
  assert.ok(vsPlain < 1e-5, `max difference against the engine without a cache ${vsPlain}`);
  assert.deepEqual(cold.rows.map((r) => Array.from(r)), without.rows.map((r) => Array.from(r)), 'a miss computes exactly what no cache does');
});

test('a prompt that extends a cached one, or shares only its first block, reuses what it shares', async () => {
  const c = golden.base[0]!;
  await generate(cached, c.input_ids, []);
  const longer = [...c.input_ids, ...c.continuation_ids.slice(0, 5)];
  const out = await generate(cached, longer, []);
  assert.equal(out.reused, Math.floor(c.input_ids.length / BLOCK) * BLOCK);
  assert.ok(maxError(out.rows[0]!, c.continuation_last_logits[4]!) < 1e-4);
  // base[2] starts with the same six tokens as base[0]: one block of four.
  const other = golden.base[2]!;
  const shared = await generate(cached, other.input_ids, []);
  assert.equal(shared.reused, BLOCK);
  assert.ok(maxError(shared.rows[0]!, other.logits_all_positions.at(-1)!) < 1e-4);
});

test('an adapter never takes the base model blocks of the same prompt', async () => {
  const base = golden.base[1]!;
  const lora = golden.with_lora[1]!;
  assert.deepEqual(lora.input_ids, base.input_ids);
  await generate(cached, base.input_ids, []);
  const first = await generate(cached, lora.input_ids, [], 'legal');
  assert.equal(first.reused, 0);
  assert.ok(maxError(first.rows[0]!, lora.logits_all_positions.at(-1)!) < 1e-4);
  const again = await generate(cached, lora.input_ids, [lora.continuation_ids[0]!], 'legal');
  assert.ok(again.reused > 0);
  assert.ok(maxError(again.rows[0]!, lora.logits_all_positions.at(-1)!) < 1e-4);
  assert.ok(maxError(again.rows[1]!, lora.continuation_last_logits[0]!) < 1e-4);
});

test('the cache stays within its budget, evicting the least recently used blocks', async () => {
  // 2 layers × (key, value) × 2 heads × 4 positions × 32 × 4 bytes = 4 KiB a block: room for five.
  const small = await load(5 * 4096);
  try {
    for (const c of golden.base) await generate(small, c.input_ids, []);
    const stats = small.prefixCacheStats();
    assert.equal(stats.capacityBytes, 5 * 4096);
    assert.ok(stats.bytes <= stats.capacityBytes && stats.blocks === 5, JSON.stringify(stats));
    assert.ok(stats.evictions > 0);
    const last = golden.base[2]!;
    assert.ok((await generate(small, last.input_ids, [])).reused > 0, 'the most recent prompt is still there');
  } finally {
    await small.dispose();
  }
});

test('through a worker process: the same prompt twice gives the same tokens, the second from the cache, as the metrics say', async () => {
  const worker = await startWorker({ WORKER_MODEL_DIR: model.modelDir, WORKER_ADAPTERS_DIR: model.adaptersDir, WORKER_PREFIX_CACHE_BLOCK_TOKENS: '8' });
  try {
    const body = { id: 'p', prompt_ids: golden.base[1]!.input_ids, max_tokens: 12, temperature: 0 };
    const first = await stream(worker.url, body);
    const second = await stream(worker.url, body);
    assert.deepEqual(tokenIds(second.events), tokenIds(first.events));
    assert.deepEqual(tokenIds(first.events), golden.base[1]!.greedy_ids);
    assert.equal(await metric(worker.url, 'worker_prefix_cache_lookups_total'), 2);
    assert.equal(await metric(worker.url, 'worker_prefix_cache_hits_total'), 1);
    assert.equal(await metric(worker.url, 'worker_prefix_cache_cached_tokens_total'), 48);
    assert.equal(await metric(worker.url, 'worker_prefix_cache_blocks'), 6);
    assert.equal(await metric(worker.url, 'worker_prefix_cache_capacity_bytes'), 256 * 1024 * 1024);
  } finally {
    await worker.stop();
  }
});
