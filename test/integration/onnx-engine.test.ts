/**
 * The onnxruntime engine on the golden tiny model: KV rows, decode steps that fetch only the new positions,
 * chunked prefill, rows moving when a sequence closes, capacity growth and shrinking, LoRA rows.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadAdapters } from '../../src/worker/adapters.js';
import { CAPACITY_STEP, OnnxEngine, readManifest } from '../../src/worker/engine/onnx-engine.js';
import { exportTinyModel, type TinyModel } from '../helpers/worker-process.js';
import { readTinyGolden } from '../helpers/golden-fixtures.js';

const golden = readTinyGolden();
const V = 768;

let model: TinyModel;
let engine: OnnxEngine;

before(async () => {
  model = await exportTinyModel('runtime');
  const manifest = readManifest(model.modelDir);
  engine = await OnnxEngine.load({
    modelDir: model.modelDir,
    device: { provider: 'cpu', deviceId: 0, intraOpThreads: 1, interOpThreads: 0, graphOptimizationLevel: 'all' },
    maxSequences: 4,
    adapters: loadAdapters(manifest, model.adaptersDir),
  });
});

after(async () => {
  await engine?.dispose();
  model?.cleanup();
});

function maxError(row: Float32Array, ref: number[]): number {
  let e = 0;
  for (let i = 0; i < ref.length; i++) e = Math.max(e, Math.abs(row[i]! - ref[i]!));
  return e;
}

const capacity = () => (engine as unknown as { capacity: number }).capacity;

test('rows on different adapters decode together and match the reference step by step', async () => {
  const legal = loadAdapters(readManifest(model.modelDir), model.adaptersDir).byName.get('legal')!;
  const cases = [golden.base[0]!, golden.with_lora[1]!, golden.base[2]!];
  const seqs = [engine.open(null), engine.open(legal), engine.open(null)];
  let worst = 0;
  for (const [i, c] of cases.entries()) worst = Math.max(worst, maxError(await engine.prefill(seqs[i]!, c.input_ids), c.logits_all_positions.at(-1)!));
  for (let k = 0; k < 12; k++) {
    const logits = await engine.decode(seqs, cases.map((c) => c.continuation_ids[k]!));
    cases.forEach((c, i) => (worst = Math.max(worst, maxError(logits.subarray(i * V, (i + 1) * V), c.continuation_last_logits[k]!))));
  }
  assert.ok(worst < 1e-4, `max error ${worst}`);
  assert.equal(engine.kvTokensInUse(), cases.reduce((n, c) => n + c.input_ids.length + 12, 0));
  for (const s of seqs) engine.close(s);
  assert.equal(engine.kvTokensInUse(), 0);
});

test('the session keeps every output of the graph and has the decode outputs besides', () => {
  const names = (engine as unknown as { session: { outputNames: string[] } }).session.outputNames;
  assert.deepEqual(names.slice(0, 3), ['logits', 'present.0.key', 'present.0.value']);
  assert.ok(names.includes('present.1.value.decode_tail'), names.join(' '));
  assert.equal(names.length, 1 + 4 * 2);
});

test('a prompt prefilled in chunks gives the same logits as in one piece', async () => {
  const c = golden.base[1]!;
  const seq = engine.open(null);
  let logits: Float32Array = new Float32Array(0);
  for (let i = 0; i < c.input_ids.length; i += 7) logits = await engine.prefill(seq, c.input_ids.slice(i, i + 7));
  assert.ok(maxError(logits, c.logits_all_positions.at(-1)!) < 1e-4);
  const next = await engine.decode([seq], [c.continuation_ids[0]!]);
  assert.ok(maxError(next, c.continuation_last_logits[0]!) < 1e-4);
  engine.close(seq);
});

test('a long neighbour grows the capacity, then leaves: the remaining row moves, the capacity shrinks, results stay exact', async () => {
  const c = golden.base[0]!;
  const long = engine.open(null);
  const short = engine.open(null);
  await engine.prefill(long, golden.base[1]!.input_ids);
  await engine.prefill(short, c.input_ids);
  let worst = 0;
  // the long row runs past several capacity steps while the short one follows the reference
  for (let k = 0; k < 6; k++) {
    const logits = await engine.decode([long, short], [100 + k, c.continuation_ids[k]!]);
    worst = Math.max(worst, maxError(logits.subarray(V), c.continuation_last_logits[k]!));
  }
  for (let k = 0; k < 3 * CAPACITY_STEP; k++) await engine.decode([long], [200 + (k % 300)]);
  assert.ok(capacity() >= 4 * CAPACITY_STEP, `capacity ${capacity()}`);
  engine.close(long); // short moves from row 1 to row 0
  assert.ok(capacity() <= 2 * CAPACITY_STEP, `capacity ${capacity()} after the long row left`);
  for (let k = 6; k < 12; k++) {
    const logits = await engine.decode([short], [c.continuation_ids[k]!]);
    worst = Math.max(worst, maxError(logits, c.continuation_last_logits[k]!));
  }
  assert.ok(worst < 1e-4, `max error ${worst}`);
  engine.close(short);
});

test('misuse is refused: closed sequences, empty prefill, decode before prefill, context overflow, no free row', async () => {
  const seq = engine.open(null);
  await assert.rejects(engine.prefill(seq, []), /at least one token/);
  await assert.rejects(engine.decode([seq], [1]), /before prefill/);
  await assert.rejects(engine.prefill(seq, Array(300).fill(5)), /context overflow/);
  const others = [engine.open(null), engine.open(null), engine.open(null)];
  assert.throws(() => engine.open(null), /all 4 KV rows are in use/);
  for (const s of others) engine.close(s);
  engine.close(seq);
  await assert.rejects(engine.prefill(seq, [1]), /closed sequence/);
});
