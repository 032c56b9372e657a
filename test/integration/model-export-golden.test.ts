/**
 * The exported graph against the reference PyTorch outputs of the golden tiny model (test/fixtures/golden/chatglm3-tiny):
 * every position, step by step through the KV cache, greedy ids, the padded batch, and the
 * LoRA adapter merged and at run time. Also the padding and cache rules that ARCHITECTURE.md
 * ("Model graph") promises the worker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { exportModel } from '../../src/model/export-model.js';
import { readPeftAdapter } from '../../src/model/peft-adapter.js';
import { layerName } from '../../src/shared/model-manifest.js';
import { GOLDEN_TINY_DIR } from '../helpers/paths.js';
import {
  argmax,
  greedy,
  logitsAt,
  maskRow,
  maxAbsDiff,
  openModel,
  rightPadded,
  runStep,
  type Feeds,
  type OpenModel,
  type Results,
} from '../helpers/model-driver.js';
import { readTinyGolden, type GoldenCase } from '../helpers/golden-fixtures.js';

const TOL = 1e-4;
const ADAPTER_DIR = join(GOLDEN_TINY_DIR, 'lora-adapter');
const expected = readTinyGolden();
const work = mkdtempSync(join(tmpdir(), 'golden-export-'));
const models: Record<string, OpenModel> = {};

async function exportAndOpen(key: string, options: Omit<Parameters<typeof exportModel>[0], 'hfDir' | 'outDir'>): Promise<OpenModel> {
  await exportModel({ hfDir: GOLDEN_TINY_DIR, outDir: join(work, key), ...options });
  return openModel(join(work, key));
}

before(async () => {
  models.all = await exportAndOpen('all', { logits: 'all' });
  models.last = await exportAndOpen('last', { logits: 'last' });
  models.merge = await exportAndOpen('merge', { logits: 'all', adapterDir: ADAPTER_DIR, adapterMode: 'merge' });
  models.runtime = await exportAndOpen('runtime', { logits: 'all', adapterDir: ADAPTER_DIR, adapterMode: 'runtime' });
});

after(async () => {
  for (const m of Object.values(models)) await m.session.release();
  rmSync(work, { recursive: true, force: true });
});

/** Runtime LoRA feeds of the golden adapter for a batch where `rows[b]` says whether row b uses it. */
function adapterFeeds(model: OpenModel, rows: boolean[], rank = 4): Feeds {
  const adapter = readPeftAdapter(ADAPTER_DIR, model.manifest.dims);
  const feeds: Feeds = {};
  if (model.manifest.adapter.mode !== 'runtime') throw new Error('not a runtime-LoRA model');
  for (const inp of model.manifest.adapter.inputs) {
    const f = adapter.layers.find((l) => l.layer === inp.layer && l.module === inp.module)!;
    const a = new Float32Array(rows.length * inp.in_features * rank);
    const b = new Float32Array(rows.length * rank * inp.out_features);
    rows.forEach((use, row) => {
      if (!use) return;
      for (let i = 0; i < inp.in_features; i++) {
        for (let k = 0; k < f.rank; k++) a[(row * inp.in_features + i) * rank + k] = f.a[i * f.rank + k]!;
      }
      for (let k = 0; k < f.rank; k++) {
        for (let o = 0; o < inp.out_features; o++) b[(row * rank + k) * inp.out_features + o] = f.b[k * inp.out_features + o]!;
      }
    });
    feeds[inp.a] = new ort.Tensor('float32', a, [rows.length, inp.in_features, rank]);
    feeds[inp.b] = new ort.Tensor('float32', b, [rows.length, rank, inp.out_features]);
  }
  return feeds;
}

async function checkAllPositions(model: OpenModel, cases: GoldenCase[], extra: Feeds = {}): Promise<number> {
  let worst = 0;
  for (const c of cases) {
    const res = await runStep(model, { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] }, undefined, extra);
    c.logits_all_positions.forEach((ref, pos) => (worst = Math.max(worst, maxAbsDiff(logitsAt(res, 0, pos), ref))));
  }
  return worst;
}

async function checkContinuation(model: OpenModel, cases: GoldenCase[], extra: Feeds = {}): Promise<number> {
  let worst = 0;
  for (const c of cases) {
    let length = c.input_ids.length;
    let res: Results = await runStep(model, { ids: [c.input_ids], mask: [maskRow(length, length)] }, undefined, extra);
    for (const [k, token] of c.continuation_ids.entries()) {
      length++;
      res = await runStep(model, { ids: [[token]], mask: [maskRow(length, length)] }, res, extra);
      worst = Math.max(worst, maxAbsDiff(logitsAt(res, 0, 0), c.continuation_last_logits[k]!));
    }
  }
  return worst;
}

describe('fp32 base model', () => {
  test('reproduces logits_all_positions', async () => {
    assert.ok((await checkAllPositions(models.all!, expected.base)) <= TOL);
  });

  test('reproduces continuation_last_logits step by step through the KV cache', async () => {
    assert.ok((await checkContinuation(models.all!, expected.base)) <= TOL);
    assert.ok((await checkContinuation(models.last!, expected.base)) <= TOL);
  });

  test('reproduces greedy_ids (logits all and last)', async () => {
    for (const c of expected.base) {
      assert.deepEqual(await greedy(models.all!, c.input_ids, c.greedy_ids.length), c.greedy_ids);
      assert.deepEqual(await greedy(models.last!, c.input_ids, c.greedy_ids.length), c.greedy_ids);
    }
  });

  test('left_padded_batch: the same batch right-padded gives its last_logits (left padding does not work with GQA)', async () => {
    const lp = expected.left_padded_batch;
    const prompts = lp.input_ids.map((row, b) => row.filter((_, i) => lp.attention_mask[b]![i] === 1));
    const batch = rightPadded(prompts);
    for (const key of ['all', 'last'] as const) {
      const res = await runStep(models[key]!, batch);
      assert.equal((res.logits as ort.Tensor).dims[1], key === 'all' ? batch.ids[0]!.length : 1);
      batch.lengths.forEach((len, b) => {
        assert.ok(maxAbsDiff(logitsAt(res, b, key === 'all' ? len - 1 : 0), lp.last_logits[b]!) <= TOL, `${key} row ${b}`);
      });
    }
    // As documented: fed left-padded, the padded rows come out wrong.
    const left = await runStep(models.all!, { ids: lp.input_ids, mask: lp.attention_mask });
    const width = lp.input_ids[0]!.length;
    assert.ok(maxAbsDiff(logitsAt(left, 0, width - 1), lp.last_logits[0]!) > 1e-2);
  });

  test('batched decode on a right-padded cache matches each sequence alone', async () => {
    for (const key of ['all', 'last'] as const) {
      const model = models[key]!;
      const batch = rightPadded(expected.base.map((c) => c.input_ids));
      let res = await runStep(model, batch);
      let past = batch.ids[0]!.length;
      const lengths = [...batch.lengths];
      for (let k = 0; k < 12; k++) {
        lengths.forEach((_, b) => (lengths[b]! += 1));
        res = await runStep(model, {
          ids: expected.base.map((c) => [c.continuation_ids[k]!]),
          mask: lengths.map((len) => maskRow(len, past + 1)),
        }, res);
        past++;
        expected.base.forEach((c, b) => {
          assert.ok(maxAbsDiff(logitsAt(res, b, 0), c.continuation_last_logits[k]!) <= TOL, `${key} step ${k} row ${b}`);
        });
      }
      assert.deepEqual((res[layerName(model.manifest.io.present_key, 0)] as ort.Tensor).dims, [3, 2, past, 32]);
    }
  });

  test('a multi-token step on a cache works at batch 1 and is refused at batch 3', async () => {
    const c = expected.base[1]!;
    for (const key of ['all', 'last'] as const) {
      const first = await runStep(models[key]!, { ids: [c.input_ids.slice(0, 20)], mask: [maskRow(20, 20)] });
      const rest = c.input_ids.slice(20);
      const res = await runStep(models[key]!, { ids: [rest], mask: [maskRow(c.input_ids.length, c.input_ids.length)] }, first);
      const pos = key === 'all' ? rest.length - 1 : 0;
      assert.ok(maxAbsDiff(logitsAt(res, 0, pos), c.logits_all_positions[c.input_ids.length - 1]!) <= TOL);
    }
    const prompts = expected.base.map((p) => p.input_ids.slice(0, 8));
    const first = await runStep(models.all!, { ids: prompts.map((p) => p.slice(0, 5)), mask: prompts.map(() => maskRow(5, 5)) });
    await assert.rejects(
      runStep(models.all!, { ids: prompts.map((p) => p.slice(5)), mask: prompts.map(() => maskRow(8, 8)) }, first),
      /batch_size must be 1/,
    );
  });

  test('past and present may share one preallocated buffer (updated in place)', async () => {
    const model = models.last!;
    const d = model.manifest.dims;
    const width = 64;
    const buffers: Record<string, ort.Tensor> = {};
    const fetches: Record<string, ort.Tensor | null> = { logits: null };
    const feedsOf = () => {
      const f: Feeds = {};
      for (let i = 0; i < d.num_layers; i++) {
        for (const [past, present] of [
          [model.manifest.io.past_key, model.manifest.io.present_key],
          [model.manifest.io.past_value, model.manifest.io.present_value],
        ] as const) {
          const t = (buffers[past + i] ??= new ort.Tensor('float32', new Float32Array(d.num_kv_heads * width * d.head_dim), [
            1, d.num_kv_heads, width, d.head_dim,
          ]));
          f[layerName(past, i)] = t;
          fetches[layerName(present, i)] = t;
        }
      }
      return f;
    };
    const c = expected.base[0]!;
    let length = c.input_ids.length;
    const i64 = (rows: number[][]) => new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
    await model.session.run({ input_ids: i64([c.input_ids]), attention_mask: i64([maskRow(length, length)]), ...feedsOf() }, fetches);
    let worst = 0;
    for (const [k, token] of c.continuation_ids.entries()) {
      length++;
      const res = await model.session.run({ input_ids: i64([[token]]), attention_mask: i64([maskRow(length, length)]), ...feedsOf() }, fetches);
      worst = Math.max(worst, maxAbsDiff(logitsAt(res, 0, 0), c.continuation_last_logits[k]!));
    }
    assert.ok(worst <= TOL);
    // The buffer itself holds the cache: position length-1 written, position `length` untouched.
    const key0 = buffers[model.manifest.io.past_key + 0]!.data as Float32Array;
    assert.notEqual(key0[(length - 1) * d.head_dim], 0);
    assert.equal(key0[length * d.head_dim], 0);
  });
});

describe('LoRA', () => {
  test('merged: reproduces with_lora (all positions, continuation, greedy)', async () => {
    assert.ok((await checkAllPositions(models.merge!, expected.with_lora)) <= TOL);
    assert.ok((await checkContinuation(models.merge!, expected.with_lora)) <= TOL);
    for (const c of expected.with_lora) assert.deepEqual(await greedy(models.merge!, c.input_ids, 12), c.greedy_ids);
    assert.deepEqual(models.merge!.manifest.adapter, {
      mode: 'merge',
      merged: { name: 'lora-adapter', rank: 4, alpha: 8, target_modules: ['query_key_value'] },
    });
  });

  test('runtime: the adapter as inputs reproduces with_lora; zero inputs reproduce base', async () => {
    const model = models.runtime!;
    const lora = adapterFeeds(model, [true]);
    assert.ok((await checkAllPositions(model, expected.with_lora, lora)) <= TOL);
    assert.ok((await checkContinuation(model, expected.with_lora, lora)) <= TOL);
    for (const c of expected.with_lora) assert.deepEqual(await greedy(model, c.input_ids, 12, lora), c.greedy_ids);
    assert.ok((await checkAllPositions(model, expected.base)) <= TOL);
    for (const c of expected.base) assert.deepEqual(await greedy(model, c.input_ids, 12), c.greedy_ids);
  });

  test('runtime: rows on and off the adapter share a batch; ranks pad with zeros; rank 0 is the base model', async () => {
    const model = models.runtime!;
    const prompts = [expected.with_lora[0]!.input_ids, expected.base[1]!.input_ids, expected.with_lora[2]!.input_ids];
    const batch = rightPadded(prompts);
    const res = await runStep(model, batch, undefined, adapterFeeds(model, [true, false, true], 7));
    const refs = [expected.with_lora[0]!, expected.base[1]!, expected.with_lora[2]!];
    refs.forEach((ref, b) => {
      const len = batch.lengths[b]!;
      assert.ok(maxAbsDiff(logitsAt(res, b, len - 1), ref.logits_all_positions[len - 1]!) <= TOL, `row ${b}`);
    });
    const c = expected.base[0]!;
    const rank0: Feeds = {};
    if (model.manifest.adapter.mode !== 'runtime') throw new Error('runtime model expected');
    for (const inp of model.manifest.adapter.inputs) {
      rank0[inp.a] = new ort.Tensor('float32', new Float32Array(0), [1, inp.in_features, 0]);
      rank0[inp.b] = new ort.Tensor('float32', new Float32Array(0), [1, 0, inp.out_features]);
    }
    const r0 = await runStep(model, { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] }, undefined, rank0);
    assert.ok(maxAbsDiff(logitsAt(r0, 0, c.input_ids.length - 1), c.logits_all_positions.at(-1)!) <= TOL);
  });

  test('runtime inputs are required graph inputs named in the manifest', () => {
    const model = models.runtime!;
    if (model.manifest.adapter.mode !== 'runtime') throw new Error('runtime model expected');
    assert.deepEqual(
      model.manifest.adapter.inputs.map((i) => [i.layer, i.module, i.in_features, i.out_features]),
      [
        [0, 'query_key_value', 128, 256],
        [1, 'query_key_value', 128, 256],
      ],
    );
    for (const inp of model.manifest.adapter.inputs) {
      assert.ok(model.session.inputNames.includes(inp.a) && model.session.inputNames.includes(inp.b));
    }
  });
});

describe('manifest and graph I/O', () => {
  test('the manifest carries the dims, token ids and I/O names the graph has', () => {
    const { manifest, session } = models.all!;
    assert.deepEqual(manifest.dims, {
      num_layers: 2,
      hidden_size: 128,
      num_heads: 4,
      head_dim: 32,
      num_kv_heads: 2,
      ffn_hidden_size: 256,
      vocab_size: 768,
      rms_norm_eps: 1e-5,
      rope_base: 10000,
      rotary_dim: 16,
    });
    assert.equal(manifest.context_length, 256);
    assert.equal(manifest.tokenizer.sp_vocab_size, 700);
    assert.equal(manifest.tokenizer.special_tokens['[gMASK]'], 701);
    assert.equal(manifest.tokenizer.special_tokens['<|observation|>'], 708);
    assert.deepEqual(manifest.tokenizer.stop_token_ids, [2, 706, 708]);
    assert.deepEqual(session.inputNames, [
      'input_ids',
      'attention_mask',
      'past_key_values.0.key',
      'past_key_values.0.value',
      'past_key_values.1.key',
      'past_key_values.1.value',
    ]);
    assert.deepEqual(session.outputNames, ['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
  });

  test('greedy argmax of the last position agrees between logits all and last', async () => {
    const c = expected.base[2]!;
    const step = { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] };
    const a = await runStep(models.all!, step);
    const l = await runStep(models.last!, step);
    assert.deepEqual((l.logits as ort.Tensor).dims, [1, 1, 768]);
    assert.equal(argmax(logitsAt(a, 0, c.input_ids.length - 1)), argmax(logitsAt(l, 0, 0)));
    assert.ok(maxAbsDiff(logitsAt(a, 0, c.input_ids.length - 1), logitsAt(l, 0, 0)) <= 1e-5);
  });
});
