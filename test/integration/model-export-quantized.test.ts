/**
 * fp16 and int4 exports of the golden model: they run on the CPU provider, stay near the
 * reference (loose bounds; the benchmark reports the numbers), and the int4 weight layout is
 * exactly what MatMulNBits reads (at accuracy_level 0 the graph equals an fp32 graph built from
 * our own dequantized weights).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import { exportModel } from '../../src/model/export-model.js';
import { dequantizeInt4Rows, int4Layout, quantizeInt4Rows } from '../../src/model/int4.js';
import { Checkpoint, writeSafetensors } from '../../src/model/safetensors.js';
import { GOLDEN_TINY_DIR } from '../helpers/paths.js';
import { logitsAt, maskRow, maxAbsDiff, openModel, runStep, type OpenModel } from '../helpers/model-driver.js';
import { readTinyGolden } from '../helpers/golden-fixtures.js';

const expected = readTinyGolden();
const work = mkdtempSync(join(tmpdir(), 'quant-export-'));
const opened: OpenModel[] = [];

async function exportOpen(key: string, options: Omit<Parameters<typeof exportModel>[0], 'outDir'>): Promise<OpenModel> {
  await exportModel({ outDir: join(work, key), logits: 'all', ...options });
  const m = await openModel(join(work, key));
  opened.push(m);
  return m;
}

async function worstError(model: OpenModel): Promise<number> {
  let worst = 0;
  for (const c of expected.base) {
    const res = await runStep(model, { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] });
    c.logits_all_positions.forEach((ref, pos) => (worst = Math.max(worst, maxAbsDiff(logitsAt(res, 0, pos), ref))));
  }
  return worst;
}

/** A copy of the golden checkpoint whose linear weights are replaced by dequantize(quantize(W)). */
function fakeQuantCheckpoint(dir: string): void {
  mkdirSync(dir);
  for (const f of ['config.json', 'tokenizer.model']) copyFileSync(join(GOLDEN_TINY_DIR, f), join(dir, f));
  const ckpt = Checkpoint.open(GOLDEN_TINY_DIR);
  try {
    const tensors = ckpt.names().map((name) => {
      const info = ckpt.info(name);
      let values = ckpt.readAll(info);
      const linear = info.shape.length === 2 && !name.includes('word_embeddings');
      if (linear) {
        const [n, k] = info.shape as [number, number];
        const layout = int4Layout(n, k);
        values = dequantizeInt4Rows(quantizeInt4Rows(values, n, layout, 'fp32'), n, layout);
      }
      const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
      return { name, dtype: 'F32', shape: info.shape, write: (sink: (c: Uint8Array) => void) => sink(bytes) };
    });
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
  } finally {
    ckpt.close();
  }
}

after(async () => {
  for (const m of opened) await m.session.release();
  rmSync(work, { recursive: true, force: true });
});

let fp32: OpenModel;
before(async () => {
  fp32 = await exportOpen('fp32', { hfDir: GOLDEN_TINY_DIR });
});

test('fp16 runs on the CPU provider, with a float16 cache and float32 logits, near the reference', async () => {
  const model = await exportOpen('fp16', { hfDir: GOLDEN_TINY_DIR, dtype: 'fp16' });
  assert.equal(model.manifest.kv_dtype, 'float16');
  const c = expected.base[0]!;
  const res = await runStep(model, { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] });
  assert.equal((res.logits as ort.Tensor).type, 'float32');
  assert.equal((res['present.0.key'] as ort.Tensor).type, 'float16');
  const err = await worstError(model);
  assert.ok(err > 0 && err < 0.05, `fp16 error ${err}`);
});

test('int4 at accuracy_level 0 equals fp32 on our own dequantized weights (the packing is what MatMulNBits reads)', async () => {
  fakeQuantCheckpoint(join(work, 'fake-quant-hf'));
  const fake = await exportOpen('fake-quant', { hfDir: join(work, 'fake-quant-hf') });
  const int4 = await exportOpen('int4-exact', { hfDir: GOLDEN_TINY_DIR, quant: 'int4', int4Accuracy: 0 });
  for (const c of expected.base) {
    const step = { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] };
    const a = await runStep(fake, step);
    const b = await runStep(int4, step);
    assert.ok(maxAbsDiff((a.logits as ort.Tensor).data as Float32Array, (b.logits as ort.Tensor).data as Float32Array) <= 1e-4);
  }
  // and quantization did change the model
  assert.ok((await worstError(int4)) > 0.01);
});

test('int4 (default accuracy_level 4) runs with a loose error bound; fp32 stays exact beside it', async () => {
  const model = await exportOpen('int4', { hfDir: GOLDEN_TINY_DIR, quant: 'int4' });
  assert.equal(model.manifest.quant, 'int4');
  const err = await worstError(model);
  assert.ok(err < 4, `int4 error ${err}`);
  assert.ok((await worstError(fp32)) <= 1e-4);
});

test('int4 with runtime LoRA: zero adapter inputs give the int4 base model', async () => {
  const base = await exportOpen('int4-base', { hfDir: GOLDEN_TINY_DIR, quant: 'int4' });
  const rt = await exportOpen('int4-rt', {
    hfDir: GOLDEN_TINY_DIR,
    quant: 'int4',
    adapterDir: join(GOLDEN_TINY_DIR, 'lora-adapter'),
    adapterMode: 'runtime',
  });
  const c = expected.base[1]!;
  const step = { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] };
  const a = await runStep(base, step);
  const b = await runStep(rt, step);
  assert.ok(maxAbsDiff((a.logits as ort.Tensor).data as Float32Array, (b.logits as ort.Tensor).data as Float32Array) <= 1e-5);
});
