/**
 * Drives an exported model directory with onnxruntime-node the way the contract in
 * ARCHITECTURE.md ("Model graph") says a worker must: right-padded rows, masks whose row sums
 * are the real lengths, each step's present fed back as the next step's past.
 */
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { MANIFEST_FILE, ModelManifestSchema, layerName, type ModelManifest } from '../../src/shared/model-manifest.js';
import { readJson } from './json.js';

export type Results = ort.InferenceSession.OnnxValueMapType;
export type Feeds = Record<string, ort.Tensor>;

export interface OpenModel {
  session: ort.InferenceSession;
  manifest: ModelManifest;
}

export async function openModel(dir: string): Promise<OpenModel> {
  const manifest = ModelManifestSchema.parse(readJson(join(dir, MANIFEST_FILE)));
  const session = await ort.InferenceSession.create(join(dir, manifest.files.graph), { intraOpNumThreads: 1, logSeverityLevel: 4 });
  return { session, manifest };
}

export function i64(rows: number[][]): ort.Tensor {
  return new ort.Tensor('int64', BigInt64Array.from(rows.flat().map(BigInt)), [rows.length, rows[0]!.length]);
}

function floatTensor(m: ModelManifest, values: number | Float32Array, dims: number[]): ort.Tensor {
  if (m.kv_dtype === 'float32') return new ort.Tensor('float32', typeof values === 'number' ? new Float32Array(values) : values, dims);
  if (typeof values !== 'number') throw new Error('float16 tensors are made empty or zero here');
  return new ort.Tensor('float16', new Uint16Array(values), dims);
}

/** Past tensors: empty (before the first step) or the present outputs of the previous step. */
export function pastFeeds(m: ModelManifest, batch: number, previous?: Results): Feeds {
  const feeds: Feeds = {};
  const d = m.dims;
  for (let i = 0; i < d.num_layers; i++) {
    for (const [past, present] of [
      [m.io.past_key, m.io.present_key],
      [m.io.past_value, m.io.present_value],
    ] as const) {
      feeds[layerName(past, i)] = previous
        ? (previous[layerName(present, i)] as ort.Tensor)
        : floatTensor(m, 0, [batch, d.num_kv_heads, 0, d.head_dim]);
    }
  }
  return feeds;
}

/** Zero runtime-LoRA inputs of rank `rank` (the base model). */
export function zeroLora(m: ModelManifest, batch: number, rank = 1): Feeds {
  const feeds: Feeds = {};
  if (m.adapter.mode !== 'runtime') return feeds;
  for (const inp of m.adapter.inputs) {
    feeds[inp.a] = floatTensor(m, batch * inp.in_features * rank, [batch, inp.in_features, rank]);
    feeds[inp.b] = floatTensor(m, batch * rank * inp.out_features, [batch, rank, inp.out_features]);
  }
  return feeds;
}

export interface Step {
  ids: number[][];
  mask: number[][];
}

/** A batch of prompts right-padded with `pad`, as a prompt step on an empty cache. */
export function rightPadded(prompts: number[][], pad = 0): Step & { lengths: number[] } {
  const lengths = prompts.map((p) => p.length);
  const width = Math.max(...lengths);
  return {
    ids: prompts.map((p) => [...p, ...Array<number>(width - p.length).fill(pad)]),
    mask: prompts.map((p) => [...Array<number>(p.length).fill(1), ...Array<number>(width - p.length).fill(0)]),
    lengths,
  };
}

/** A mask row of `ones` ones then zeros, `width` wide. */
export function maskRow(ones: number, width: number): number[] {
  return [...Array<number>(ones).fill(1), ...Array<number>(width - ones).fill(0)];
}

export async function runStep(model: OpenModel, step: Step, previous?: Results, extra: Feeds = {}): Promise<Results> {
  const batch = step.ids.length;
  return model.session.run({
    [model.manifest.io.input_ids]: i64(step.ids),
    [model.manifest.io.attention_mask]: i64(step.mask),
    ...pastFeeds(model.manifest, batch, previous),
    ...zeroLora(model.manifest, batch),
    ...extra,
  });
}

/** Logits of one row at one position of the step. */
export function logitsAt(results: Results, row: number, pos: number): Float32Array {
  const t = results.logits as ort.Tensor;
  const [, s, v] = t.dims as [number, number, number];
  return (t.data as Float32Array).subarray((row * s + pos) * v, (row * s + pos + 1) * v);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

export function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i]! > a[best]!) best = i;
  return best;
}

/** Greedy generation of `n` tokens for one prompt through the KV cache. */
export async function greedy(model: OpenModel, prompt: number[], n: number, extra: Feeds = {}): Promise<number[]> {
  let res = await runStep(model, { ids: [prompt], mask: [maskRow(prompt.length, prompt.length)] }, undefined, extra);
  let length = prompt.length;
  const last = model.manifest.logits === 'last' ? 0 : length - 1;
  let next = argmax(logitsAt(res, 0, last));
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    out.push(next);
    length++;
    res = await runStep(model, { ids: [[next]], mask: [maskRow(length, length)] }, res, extra);
    next = argmax(logitsAt(res, 0, 0));
  }
  return out;
}
