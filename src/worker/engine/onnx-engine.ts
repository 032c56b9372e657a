/**
 * The inference engine on onnxruntime-node, for a model directory written by the model builder
 * (graph contract: ARCHITECTURE.md, "Model graph").
 *
 * KV cache: one buffer per layer for keys and one for values, [rows, kv_heads, capacity,
 * head_dim], where a row is a sequence's slot. Rows in use are always 0 … n − 1 (closing a
 * sequence moves the last row into its place), so a decode step over n rows feeds views of the
 * first n rows as `past_key_values.*`. The buffers are allocated once, for every row at the full
 * context (pages the rows never reach are never touched); the capacity, the stride of a row, grows
 * in steps of CAPACITY_STEP positions and shrinks when the longest row has become much shorter, by
 * moving the rows' valid positions inside the same buffer.
 *
 * A decode step does not fetch `present.*`: onnxruntime-node would copy the whole cache into new
 * JavaScript buffers after every run. It fetches the outputs `decode-outputs.ts` adds to the graph
 * at load, each row's new key and value, and writes them at the row's length. Rows in the view
 * that the step does not decode (a sequence still prefilling) get a pad token with mask sum ≥ 1;
 * their outputs are ignored and nothing is written to them.
 *
 * Prefill runs one sequence at batch 1 with a compact past ([1, heads, L, dim], empty for the
 * first chunk), because a graph with `logits: last` picks the row's last position from the past
 * width; the present it returns is copied into the sequence's row.
 *
 * Runtime LoRA: per graph LoRA input, `a` [rows, in, r] and `b` [rows, r, out] buffers with r the
 * largest adapter rank; a sequence's adapter is written into its row once when it opens (zeros
 * for the base model) and moves with the row, so sequences on different adapters share a step.
 *
 * Failure: an onnxruntime error rejects the call; lengths are only advanced after a successful
 * run, so a failed step leaves every sequence as it was (the scheduler ends them).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { AppError } from '../../shared/errors.js';
import { readJsonFile } from '../../shared/json-file.js';
import type { Logger } from '../../shared/logging.js';
import { MANIFEST_FILE, ModelManifestSchema, layerName, type ModelManifest } from '../../shared/model-manifest.js';
import { floatToHalf } from '../../model/dtype.js';
import { isRuntimeAdapter, type AdapterSet } from '../adapters.js';
import { addDecodeOutputs } from './decode-outputs.js';
import type { PrefixCacheStats } from './engine.js';
import { PrefixCache } from './prefix-cache.js';
import type { EngineAdapter, EngineInfo, EngineSequence, InferenceEngine } from './engine.js';

export const CAPACITY_STEP = 32;

export interface DeviceOptions {
  provider: 'cpu' | 'cuda';
  deviceId: number;
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface OnnxEngineOptions {
  modelDir: string;
  device: DeviceOptions;
  maxSequences: number;
  adapters: AdapterSet;
  logger?: Logger | undefined;
  /** Prompt-prefix KV kept for later requests; absent or maxBytes 0: none. */
  prefixCache?: { maxBytes: number; blockTokens: number } | undefined;
}

type KvArray = Float32Array | Uint16Array;

class OnnxSequence implements EngineSequence {
  length = 0;
  /** The prompt tokens in the row, while only prompt tokens are (for the prefix cache). */
  prompt: number[] = [];
  constructor(
    public row: number,
    readonly adapter: EngineAdapter | null,
  ) {}
}

/** Reads and checks `model.json`; INVALID_MODEL_FILE with the file and field at fault. */
export function readManifest(modelDir: string): ModelManifest {
  return readJsonFile(join(modelDir, MANIFEST_FILE), ModelManifestSchema, {
    missing: `is ${modelDir} a model directory written by the model builder?`,
    fail: (file, detail) => new AppError('INVALID_MODEL_FILE', `${file}: ${detail}`),
  });
}

async function createSession(
  graph: Uint8Array,
  modelDir: string,
  device: DeviceOptions,
  logger: Logger | undefined,
): Promise<{ session: ort.InferenceSession; provider: string }> {
  const base: ort.InferenceSession.SessionOptions = {
    graphOptimizationLevel: device.graphOptimizationLevel,
    // The graph comes as bytes (with the decode outputs added); its weights stay in the model folder.
    extra: { session: { model_external_initializers_file_folder_path: modelDir } },
    ...(device.intraOpThreads > 0 ? { intraOpNumThreads: device.intraOpThreads } : {}),
    ...(device.interOpThreads > 0 ? { interOpNumThreads: device.interOpThreads } : {}),
  };
  if (device.provider === 'cuda') {
    try {
      const session = await ort.InferenceSession.create(graph, {
        ...base,
        executionProviders: [{ name: 'cuda', deviceId: device.deviceId }],
      });
      return { session, provider: `cuda:${device.deviceId}` };
    } catch (err) {
      logger?.warn({ err: (err as Error).message }, `CUDA execution provider (device ${device.deviceId}) unavailable; falling back to CPU`);
    }
  }
  const session = await ort.InferenceSession.create(graph, { ...base, executionProviders: ['cpu'] });
  return { session, provider: 'cpu' };
}

/** Time spent inside `session.run`, by kind of call (for the benchmark's overhead figure). */
export interface RunStats {
  prefillRuns: number;
  prefillMs: number;
  decodeRuns: number;
  decodeMs: number;
}

export class OnnxEngine implements InferenceEngine {
  readonly info: EngineInfo;
  readonly runStats: RunStats = { prefillRuns: 0, prefillMs: 0, decodeRuns: 0, decodeMs: 0 };
  readonly manifest: ModelManifest;
  private readonly session: ort.InferenceSession;
  private readonly rows: OnnxSequence[] = [];
  private readonly maxRows: number;
  private readonly heads: number;
  private readonly headDim: number;
  private readonly layers: number;
  private readonly half: boolean;
  private capacity = 0;
  private keys: KvArray[] = [];
  private values: KvArray[] = [];
  private readonly loraA: KvArray[] = [];
  private readonly loraB: KvArray[] = [];
  private readonly loraRank: number;
  private readonly pastKeyNames: string[];
  private readonly pastValueNames: string[];
  private readonly presentKeyNames: string[];
  private readonly presentValueNames: string[];
  private readonly newKeyNames: string[];
  private readonly newValueNames: string[];
  /** Each block holds [layer][key, value][head][position][dim] of its positions. */
  private readonly prefixCache: PrefixCache<KvArray> | null;

  private constructor(
    manifest: ModelManifest,
    session: ort.InferenceSession,
    provider: string,
    options: OnnxEngineOptions,
    decodeOutputs: { keys: string[]; values: string[] },
  ) {
    this.manifest = manifest;
    this.session = session;
    const d = manifest.dims;
    this.layers = d.num_layers;
    this.heads = d.num_kv_heads;
    this.headDim = d.head_dim;
    this.half = manifest.kv_dtype === 'float16';
    this.maxRows = options.maxSequences;
    const io = manifest.io;
    const each = (pattern: string) => Array.from({ length: this.layers }, (_, i) => layerName(pattern, i));
    this.pastKeyNames = each(io.past_key);
    this.pastValueNames = each(io.past_value);
    this.presentKeyNames = each(io.present_key);
    this.presentValueNames = each(io.present_value);
    this.newKeyNames = decodeOutputs.keys;
    this.newValueNames = decodeOutputs.values;
    const pc = options.prefixCache;
    this.prefixCache = pc && pc.maxBytes > 0 ? new PrefixCache<KvArray>(pc.maxBytes, pc.blockTokens) : null;
    this.loraRank = manifest.adapter.mode === 'runtime' ? options.adapters.maxRank : 0;
    if (manifest.adapter.mode === 'runtime') {
      for (const input of manifest.adapter.inputs) {
        this.loraA.push(this.alloc(this.maxRows * input.in_features * this.loraRank));
        this.loraB.push(this.alloc(this.maxRows * this.loraRank * input.out_features));
      }
    }
    this.info = {
      model: manifest.name,
      vocabSize: d.vocab_size,
      contextLength: manifest.context_length,
      maxSequences: this.maxRows,
      executionProvider: provider,
    };
    for (let l = 0; l < this.layers; l++) {
      this.keys.push(this.alloc(this.maxRows * this.rowSize(this.info.contextLength)));
      this.values.push(this.alloc(this.maxRows * this.rowSize(this.info.contextLength)));
    }
    this.capacity = Math.min(CAPACITY_STEP, this.info.contextLength);
  }

  static async load(options: OnnxEngineOptions): Promise<OnnxEngine> {
    const manifest = readManifest(options.modelDir);
    const graph = join(options.modelDir, manifest.files.graph);
    for (const f of [graph, join(options.modelDir, manifest.files.data)]) {
      if (!existsSync(f)) throw new AppError('INVALID_MODEL_FILE', `${f}: missing (named in ${MANIFEST_FILE})`);
    }
    const each = (pattern: string) => Array.from({ length: manifest.dims.num_layers }, (_, i) => layerName(pattern, i));
    let decodeOutputs: ReturnType<typeof addDecodeOutputs>;
    try {
      decodeOutputs = addDecodeOutputs(readFileSync(graph), each(manifest.io.present_key), each(manifest.io.present_value));
    } catch (err) {
      throw new AppError('INVALID_MODEL_FILE', `${graph}: not a graph this worker can drive (${(err as Error).message})`);
    }
    let created: { session: ort.InferenceSession; provider: string };
    try {
      created = await createSession(decodeOutputs.bytes, options.modelDir, options.device, options.logger);
    } catch (err) {
      throw new AppError('INVALID_MODEL_FILE', `${graph}: onnxruntime cannot load it (${(err as Error).message})`);
    }
    const engine = new OnnxEngine(manifest, created.session, created.provider, options, decodeOutputs);
    engine.checkGraph();
    return engine;
  }

  /** The graph must take and give what the manifest names, so a mismatch fails at start, not mid-request. */
  private checkGraph(): void {
    const io = this.manifest.io;
    const inputs = new Set(this.session.inputNames);
    const outputs = new Set(this.session.outputNames);
    const want = [io.input_ids, io.attention_mask, ...this.pastKeyNames, ...this.pastValueNames];
    if (this.manifest.adapter.mode === 'runtime') for (const i of this.manifest.adapter.inputs) want.push(i.a, i.b);
    const missingIn = want.filter((n) => !inputs.has(n));
    const missingOut = [io.logits, ...this.presentKeyNames, ...this.presentValueNames].filter((n) => !outputs.has(n));
    if (missingIn.length || missingOut.length) {
      throw new AppError(
        'INVALID_MODEL_FILE',
        `${join(this.manifest.files.graph)}: does not match ${MANIFEST_FILE}: missing inputs [${missingIn.join(', ')}], outputs [${missingOut.join(', ')}]`,
      );
    }
  }

  private alloc(n: number): KvArray {
    return this.half ? new Uint16Array(n) : new Float32Array(n);
  }

  private get kvType(): 'float16' | 'float32' {
    return this.half ? 'float16' : 'float32';
  }

  /** Elements of one row of one layer's K (or V) buffer. */
  private rowSize(capacity = this.capacity): number {
    return this.heads * capacity * this.headDim;
  }

  /**
   * Changes the row stride to `capacity` inside the same buffers, keeping every row's valid
   * positions. Growing moves blocks towards the end, so it walks from the last block back;
   * shrinking walks forward. copyWithin has memmove semantics, so a block may overlap its old place.
   */
  private restride(capacity: number): void {
    const from = this.capacity;
    if (capacity === from) return;
    const d = this.headDim;
    const lengthOf = new Array<number>(this.rows.length);
    for (const seq of this.rows) lengthOf[seq.row] = seq.length;
    const blocks: Array<{ block: number; n: number }> = [];
    for (let row = 0; row < this.rows.length; row++) {
      for (let h = 0; h < this.heads; h++) blocks.push({ block: row * this.heads + h, n: Math.min(lengthOf[row]!, from, capacity) * d });
    }
    if (capacity > from) blocks.reverse();
    for (const buf of [...this.keys, ...this.values]) {
      for (const { block, n } of blocks) {
        if (n > 0) buf.copyWithin(block * capacity * d, block * from * d, block * from * d + n);
      }
    }
    this.capacity = capacity;
  }

  /** Copies the first `length` positions of every head of one row between buffers. */
  private copyRow(src: KvArray, srcCap: number, srcRow: number, dst: KvArray, dstCap: number, dstRow: number, length: number): void {
    const d = this.headDim;
    const n = Math.min(length, srcCap, dstCap) * d;
    for (let h = 0; h < this.heads; h++) {
      const from = (srcRow * this.heads + h) * srcCap * d;
      const to = (dstRow * this.heads + h) * dstCap * d;
      dst.set(src.subarray(from, from + n), to);
    }
  }

  private ensureCapacity(length: number): void {
    if (length <= this.capacity) return;
    this.restride(Math.min(Math.ceil(length / CAPACITY_STEP) * CAPACITY_STEP, this.info.contextLength));
  }

  private maybeShrink(): void {
    const longest = this.rows.reduce((m, s) => Math.max(m, s.length), 0);
    const fit = Math.max(CAPACITY_STEP, Math.ceil((longest + 1) / CAPACITY_STEP) * CAPACITY_STEP);
    if (fit * 2 <= this.capacity) this.restride(fit);
  }

  open(adapter: EngineAdapter | null): EngineSequence {
    if (this.rows.length >= this.maxRows) throw new Error(`all ${this.maxRows} KV rows are in use`);
    const seq = new OnnxSequence(this.rows.length, adapter);
    this.rows.push(seq);
    this.writeLoraRow(seq.row, adapter);
    return seq;
  }

  close(seq: EngineSequence): void {
    const s = seq as OnnxSequence;
    const at = this.rows.indexOf(s);
    if (at < 0) return;
    const last = this.rows.length - 1;
    if (at !== last) {
      const moved = this.rows[last]!;
      for (let l = 0; l < this.layers; l++) {
        this.copyRow(this.keys[l]!, this.capacity, last, this.keys[l]!, this.capacity, at, moved.length);
        this.copyRow(this.values[l]!, this.capacity, last, this.values[l]!, this.capacity, at, moved.length);
      }
      this.moveLoraRow(last, at);
      moved.row = at;
      this.rows[at] = moved;
    }
    this.rows.pop();
    s.length = 0;
    s.prompt = [];
    this.maybeShrink();
  }

  kvTokensInUse(): number {
    return this.rows.reduce((n, s) => n + s.length, 0);
  }

  private writeLoraRow(row: number, adapter: EngineAdapter | null): void {
    if (this.manifest.adapter.mode !== 'runtime') return;
    const r = this.loraRank;
    this.manifest.adapter.inputs.forEach((input, k) => {
      const a = this.loraA[k]!;
      const b = this.loraB[k]!;
      const aRow = a.subarray(row * input.in_features * r, (row + 1) * input.in_features * r);
      const bRow = b.subarray(row * r * input.out_features, (row + 1) * r * input.out_features);
      aRow.fill(0);
      bRow.fill(0);
      const f = isRuntimeAdapter(adapter) ? adapter.factors.get(k) : undefined;
      if (!f) return;
      // a is [in, rank] in the adapter and [in, r] here (columns zero-padded); b's extra rows stay zero.
      const aPadded = new Float32Array(input.in_features * r);
      for (let i = 0; i < input.in_features; i++) aPadded.set(f.a.subarray(i * f.rank, (i + 1) * f.rank), i * r);
      const bPadded = new Float32Array(r * input.out_features);
      bPadded.set(f.b);
      aRow.set(this.half ? floatToHalf(aPadded) : aPadded);
      bRow.set(this.half ? floatToHalf(bPadded) : bPadded);
    });
  }

  private moveLoraRow(from: number, to: number): void {
    if (this.manifest.adapter.mode !== 'runtime') return;
    const r = this.loraRank;
    this.manifest.adapter.inputs.forEach((input, k) => {
      const na = input.in_features * r;
      const nb = r * input.out_features;
      this.loraA[k]!.copyWithin(to * na, from * na, (from + 1) * na);
      this.loraB[k]!.copyWithin(to * nb, from * nb, (from + 1) * nb);
    });
  }

  private loraFeeds(firstRow: number, rows: number): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    if (this.manifest.adapter.mode !== 'runtime') return feeds;
    const r = this.loraRank;
    this.manifest.adapter.inputs.forEach((input, k) => {
      const na = input.in_features * r;
      const nb = r * input.out_features;
      feeds[input.a] = new ort.Tensor(this.kvType, this.loraA[k]!.subarray(firstRow * na, (firstRow + rows) * na), [rows, input.in_features, r]);
      feeds[input.b] = new ort.Tensor(this.kvType, this.loraB[k]!.subarray(firstRow * nb, (firstRow + rows) * nb), [rows, r, input.out_features]);
    });
    return feeds;
  }

  prefixCacheStats(): PrefixCacheStats {
    const c = this.prefixCache;
    return { blocks: c?.size ?? 0, bytes: c?.bytes ?? 0, capacityBytes: c?.maxBytes ?? 0, evictions: c?.evictions ?? 0 };
  }

  private blockElements(): number {
    return this.layers * 2 * this.heads * this.prefixCache!.blockTokens * this.headDim;
  }

  /** Copies positions [from, from + n) of a row to or from a block ([layer][side][head][n][dim]). */
  private copyBlock(row: number, from: number, block: KvArray, toRow: boolean): void {
    const d = this.headDim;
    const n = this.prefixCache!.blockTokens;
    for (let l = 0; l < this.layers; l++) {
      for (let side = 0; side < 2; side++) {
        const buf = (side === 0 ? this.keys : this.values)[l]!;
        for (let h = 0; h < this.heads; h++) {
          const inBlock = ((l * 2 + side) * this.heads + h) * n * d;
          const inRow = ((row * this.heads + h) * this.capacity + from) * d;
          if (toRow) buf.set(block.subarray(inBlock, inBlock + n * d), inRow);
          else block.set(buf.subarray(inRow, inRow + n * d), inBlock);
        }
      }
    }
  }

  async reusePrefix(seq: EngineSequence, promptIds: readonly number[]): Promise<number> {
    const s = seq as OnnxSequence;
    const cache = this.prefixCache;
    if (!cache || s.length > 0 || !this.rows.includes(s)) return 0;
    // At least one prompt token is left to prefill: its logits give the first token.
    const keys = cache.keys(s.adapter?.name ?? null, promptIds, Math.floor((promptIds.length - 1) / cache.blockTokens));
    const found = cache.lookup(keys, promptIds);
    if (found.length === 0) return 0;
    const reused = found.length * cache.blockTokens;
    this.ensureCapacity(reused);
    found.forEach((block, b) => this.copyBlock(s.row, b * cache.blockTokens, block.data, true));
    s.length = reused;
    s.prompt = promptIds.slice(0, reused);
    return reused;
  }

  /** Caches the full blocks of a sequence's prompt that the cache does not hold yet. */
  private rememberPrefix(s: OnnxSequence, ids: readonly number[]): void {
    const cache = this.prefixCache;
    if (!cache) return;
    if (s.prompt.length + ids.length !== s.length) return; // not a prompt continued from its start
    s.prompt.push(...ids);
    const keys = cache.keys(s.adapter?.name ?? null, s.prompt);
    cache.insert(keys, s.prompt, (b) => {
      const data = this.alloc(this.blockElements());
      this.copyBlock(s.row, b * cache.blockTokens, data, false);
      return { data, bytes: data.byteLength };
    });
  }

  async prefill(seq: EngineSequence, ids: readonly number[]): Promise<Float32Array> {
    const s = seq as OnnxSequence;
    if (!this.rows.includes(s)) throw new Error('prefill of a closed sequence');
    const past = s.length;
    const total = past + ids.length;
    if (ids.length === 0) throw new Error('prefill needs at least one token');
    if (total > this.info.contextLength) throw new Error(`context overflow: ${total} > ${this.info.contextLength}`);
    this.ensureCapacity(total);
    const d = this.headDim;
    const feeds: Record<string, ort.Tensor> = {
      [this.manifest.io.input_ids]: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]),
      [this.manifest.io.attention_mask]: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      ...this.loraFeeds(s.row, 1),
    };
    for (let l = 0; l < this.layers; l++) {
      feeds[this.pastKeyNames[l]!] = new ort.Tensor(this.kvType, this.compactRow(this.keys[l]!, s.row, past), [1, this.heads, past, d]);
      feeds[this.pastValueNames[l]!] = new ort.Tensor(this.kvType, this.compactRow(this.values[l]!, s.row, past), [1, this.heads, past, d]);
    }
    const t0 = performance.now();
    const out = await this.session.run(feeds);
    this.runStats.prefillMs += performance.now() - t0;
    this.runStats.prefillRuns++;
    for (let l = 0; l < this.layers; l++) {
      this.storeRow(out[this.presentKeyNames[l]!]!, this.keys[l]!, s.row, past, total);
      this.storeRow(out[this.presentValueNames[l]!]!, this.values[l]!, s.row, past, total);
    }
    s.length = total;
    this.rememberPrefix(s, ids);
    const logits = out[this.manifest.io.logits]!.data as Float32Array;
    const v = this.info.vocabSize;
    const at = this.manifest.logits === 'last' ? 0 : ids.length - 1;
    return logits.subarray(at * v, (at + 1) * v);
  }

  /** The first `length` positions of a row as a dense [heads, length, dim] array. */
  private compactRow(buf: KvArray, row: number, length: number): KvArray {
    const d = this.headDim;
    const out = this.alloc(this.heads * length * d);
    for (let h = 0; h < this.heads; h++) {
      const from = (row * this.heads + h) * this.capacity * d;
      out.set(buf.subarray(from, from + length * d), h * length * d);
    }
    return out;
  }

  /** Writes positions [from, to) of a dense [1, heads, to, dim] present into the row. */
  private storeRow(present: ort.Tensor, buf: KvArray, row: number, from: number, to: number): void {
    const d = this.headDim;
    const data = present.data as KvArray;
    for (let h = 0; h < this.heads; h++) {
      const src = (h * to + from) * d;
      const dst = ((row * this.heads + h) * this.capacity + from) * d;
      buf.set(data.subarray(src, src + (to - from) * d), dst);
    }
  }

  /** Writes each decoded row's new position ([rows, heads, 1, dim] from the step) at its length. */
  private storeAppended(appended: KvArray, buf: KvArray, seqs: readonly OnnxSequence[]): void {
    const d = this.headDim;
    for (const s of seqs) {
      for (let h = 0; h < this.heads; h++) {
        const src = (s.row * this.heads + h) * d;
        buf.set(appended.subarray(src, src + d), ((s.row * this.heads + h) * this.capacity + s.length) * d);
      }
    }
  }

  async decode(seqs: readonly EngineSequence[], ids: readonly number[]): Promise<Float32Array> {
    const list = seqs as readonly OnnxSequence[];
    if (list.length === 0) throw new Error('decode needs at least one sequence');
    const tokenOf = new Map<OnnxSequence, number>();
    list.forEach((s, i) => {
      if (!this.rows.includes(s)) throw new Error('decode of a closed sequence');
      if (s.length === 0) throw new Error('decode before prefill');
      tokenOf.set(s, ids[i]!);
    });
    const n = 1 + Math.max(...list.map((s) => s.row));
    const view = this.rows.slice(0, n);
    const longest = Math.max(...view.map((s) => s.length));
    if (longest + 1 > this.info.contextLength) throw new Error(`context overflow: ${longest + 1} > ${this.info.contextLength}`);
    this.ensureCapacity(longest + 1);
    const total = longest + 1;
    const inputIds = new BigInt64Array(n);
    const mask = new BigInt64Array(n * total);
    view.forEach((s, r) => {
      inputIds[r] = BigInt(tokenOf.get(s) ?? 0);
      // A row not decoded here still needs mask sum ≥ 1; its outputs are ignored.
      mask.fill(1n, r * total, r * total + Math.max(s.length, 0) + 1);
    });
    const d = this.headDim;
    const size = this.rowSize();
    const feeds: Record<string, ort.Tensor> = {
      [this.manifest.io.input_ids]: new ort.Tensor('int64', inputIds, [n, 1]),
      [this.manifest.io.attention_mask]: new ort.Tensor('int64', mask, [n, total]),
      ...this.loraFeeds(0, n),
    };
    const fetches: Record<string, ort.Tensor | null> = { [this.manifest.io.logits]: null };
    for (let l = 0; l < this.layers; l++) {
      feeds[this.pastKeyNames[l]!] = new ort.Tensor(this.kvType, this.keys[l]!.subarray(0, n * size), [n, this.heads, this.capacity, d]);
      feeds[this.pastValueNames[l]!] = new ort.Tensor(this.kvType, this.values[l]!.subarray(0, n * size), [n, this.heads, this.capacity, d]);
      fetches[this.newKeyNames[l]!] = null;
      fetches[this.newValueNames[l]!] = null;
    }
    const t0 = performance.now();
    const out = await this.session.run(feeds, fetches);
    this.runStats.decodeMs += performance.now() - t0;
    this.runStats.decodeRuns++;
    const logits = out[this.manifest.io.logits]!.data as Float32Array;
    for (let l = 0; l < this.layers; l++) {
      this.storeAppended(out[this.newKeyNames[l]!]!.data as KvArray, this.keys[l]!, list);
      this.storeAppended(out[this.newValueNames[l]!]!.data as KvArray, this.values[l]!, list);
    }
    for (const s of list) s.length++;
    const vocab = this.info.vocabSize;
    if (list.every((s, i) => s.row === i) && list.length === n) return logits;
    const picked = new Float32Array(list.length * vocab);
    list.forEach((s, i) => picked.set(logits.subarray(s.row * vocab, (s.row + 1) * vocab), i * vocab));
    return picked;
  }

  async dispose(): Promise<void> {
    this.rows.length = 0;
    await this.session.release();
  }
}
