/**
 * Exports a Hugging Face ChatGLM3 folder (config.json, safetensors, tokenizer.model), with an
 * optional PEFT LoRA adapter, to the model directory the worker serves.
 *
 * Algorithm: every input is read and checked before anything is written (config, tokenizer,
 * the shape and dtype of every checkpoint tensor, the adapter against the model), so bad input
 * fails in a moment with one line naming the file and tensor. Then the graph is declared (weights
 * by size only), each weight gets a place in the data file, and the weight jobs stream the
 * tensors one at a time, in row blocks, into that file with positional writes: memory holds one
 * block, never the model. The graph protobuf, the manifest and the tokenizer follow.
 *
 * Atomicity: everything is written in a hidden sibling folder that is renamed onto `out` only
 * when complete. On any failure or abort the sibling is deleted and `out` is untouched; an
 * existing non-empty `out` is only replaced with `force` (then by rename, the old one deleted
 * after the swap).
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { AppError } from '../shared/errors.js';
import {
  MANIFEST_FILE,
  MANIFEST_FORMAT,
  ModelManifestSchema,
  type ModelManifest,
  TOKENIZER_FILE,
} from '../shared/model-manifest.js';
import { SentencePieceModelError } from '../tokenizer/sentencepiece-model.js';
import { ChatGLMTokenizer } from '../tokenizer/tokenizer.js';
import { checkpointTensors, readChatglmConfig, type ChatglmModel, type LinearModule } from './chatglm-config.js';
import { buildChatglmGraph, GRAPH_IO } from './chatglm-graph.js';
import type { GraphDtype } from './dtype.js';
import type { WeightDecl } from './graph-builder.js';
import { ModelFileError } from './model-error.js';
import { encodeOnnxModel } from './onnx-proto.js';
import { readPeftAdapter, type PeftAdapter } from './peft-adapter.js';
import { Checkpoint, writeAll } from './safetensors.js';

export const GRAPH_FILE = 'model.onnx';
export const DATA_FILE = 'model.onnx.data';
export { TOKENIZER_FILE };

export const ONNX_IR_VERSION = 10;
export const ONNX_OPSET = 21;

export interface ExportProgress {
  doneBytes: number;
  totalBytes: number;
  label: string;
}

export interface ExportOptions {
  hfDir: string;
  outDir: string;
  dtype?: GraphDtype;
  quant?: 'none' | 'int4';
  /** MatMulNBits accuracy_level (0–4) for int4. */
  int4Accuracy?: number;
  adapterDir?: string;
  adapterMode?: 'merge' | 'runtime';
  /** Modules that take runtime LoRA inputs (runtime mode; added to the adapter's own). */
  loraTargets?: LinearModule[];
  /** Context length; the model's seq_length by default. */
  context?: number;
  /** `last` (default): only each row's last real token; `all`: every position. */
  logits?: 'all' | 'last';
  name?: string;
  /** Replace a non-empty `outDir`. */
  force?: boolean;
  onProgress?: (p: ExportProgress) => void;
  signal?: AbortSignal;
}

export interface ExportResult {
  outDir: string;
  manifest: ModelManifest;
  dataBytes: number;
}

/** Loads the tokenizer as the worker will (SentencePiece itself), so a bad one fails here. */
async function readTokenizer(file: string): Promise<ChatGLMTokenizer> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelFileError(file, code === 'ENOENT' ? 'missing: the model folder has no ChatGLM3 tokenizer' : `cannot read (${code})`);
  }
  try {
    return await ChatGLMTokenizer.fromBytes(new Uint8Array(bytes), basename(file));
  } catch (err) {
    if (err instanceof SentencePieceModelError) throw new ModelFileError(file, err.message.replace(`${basename(file)}: `, ''));
    throw err;
  }
}

function tokenizerInfo(model: ChatglmModel, tok: ChatGLMTokenizer): ModelManifest['tokenizer'] {
  return {
    file: TOKENIZER_FILE,
    sp_vocab_size: tok.spVocabSize,
    special_tokens: { ...tok.specialTokens },
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
    pad_token_id: model.config.pad_token_id ?? tok.padId,
    stop_token_ids: [...tok.stopIds],
  };
}

function isNonEmptyDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() ? readdirSync(path).length > 0 : true;
  } catch {
    return false;
  }
}

/** Places each weight in the data file; 64-byte alignment keeps every tensor aligned for SIMD loads. */
function layoutWeights(weights: WeightDecl[]): { offsets: Map<string, number>; total: number } {
  const offsets = new Map<string, number>();
  let offset = 0;
  for (const w of weights) {
    offset = Math.ceil(offset / 64) * 64;
    offsets.set(w.name, offset);
    offset += w.byteLength;
  }
  return { offsets, total: offset };
}

export async function exportModel(options: ExportOptions): Promise<ExportResult> {
  const hfDir = resolve(options.hfDir);
  const outDir = resolve(options.outDir);
  const dtype = options.dtype ?? 'fp32';
  const quant = options.quant ?? 'none';
  const logits = options.logits ?? 'last';

  // 1. Read and check every input before writing anything.
  const model = readChatglmConfig(hfDir);
  const tok = await readTokenizer(join(hfDir, TOKENIZER_FILE));
  const context = options.context ?? model.seqLength;
  if (!Number.isSafeInteger(context) || context < 1) {
    throw new AppError('INVALID_REQUEST', `context must be a positive integer, got ${context}`, { param: 'context' });
  }
  if (existsSync(outDir) && !statSync(outDir).isDirectory()) {
    throw new AppError('INVALID_REQUEST', `${outDir}: exists and is not a folder`, { param: 'out' });
  }
  if (isNonEmptyDir(outDir) && !options.force) {
    throw new AppError('INVALID_REQUEST', `${outDir}: exists and is not empty (use --force to replace it)`, { param: 'out' });
  }
  if (options.adapterMode && !options.adapterDir && options.adapterMode !== 'runtime') {
    throw new AppError('INVALID_REQUEST', '--adapter-mode merge needs --adapter', { param: 'adapter' });
  }
  const adapterMode = options.adapterMode ?? (options.adapterDir ? 'merge' : 'none');
  if (options.loraTargets?.length && adapterMode !== 'runtime') {
    throw new AppError('INVALID_REQUEST', '--lora-targets only applies with --adapter-mode runtime', { param: 'lora-targets' });
  }
  const ckpt = Checkpoint.open(hfDir);
  let tmpDir: string | undefined;
  try {
    for (const t of checkpointTensors(model)) ckpt.expect(t.name, t.shape);
    let adapter: PeftAdapter | undefined;
    if (options.adapterDir) adapter = readPeftAdapter(options.adapterDir, model.dims, { scaled: true });
    const runtimeTargets: LinearModule[] =
      adapterMode === 'runtime'
        ? [...new Set([...(adapter?.targetModules ?? []), ...(options.loraTargets ?? (adapter ? [] : ['query_key_value' as const]))])]
        : [];

    // 2. Declare the graph.
    const graph = buildChatglmGraph(model, ckpt, {
      dtype,
      quant,
      ...(options.int4Accuracy === undefined ? {} : { int4Accuracy: options.int4Accuracy }),
      context,
      logits,
      ...(adapterMode === 'merge' && adapter ? { merge: adapter } : {}),
      runtimeTargets,
    });
    const { offsets, total } = layoutWeights(graph.builder.weights);

    // 3. Stream the weights into a hidden sibling folder.
    tmpDir = join(dirname(outDir), `.${basename(outDir)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    mkdirSync(tmpDir, { recursive: true });
    const fd = openSync(join(tmpDir, DATA_FILE), 'w');
    try {
      ftruncateSync(fd, total);
      let done = 0;
      let reported = 0;
      for (const job of graph.builder.jobs) {
        if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
        options.onProgress?.({ doneBytes: done, totalBytes: total, label: job.label });
        reported = done;
        const owned = new Set(job.weights);
        job.run((weight, offset, bytes) => {
          if (!owned.has(weight) || offset < 0 || offset + bytes.byteLength > weight.byteLength) {
            throw new Error(`weight job ${job.label} wrote outside ${weight.name}`);
          }
          writeAll(fd, bytes, offsets.get(weight.name)! + offset);
          done += bytes.byteLength;
          // Within a large tensor too, but not for every one of its many small writes.
          if (done - reported >= total / 200) {
            options.onProgress?.({ doneBytes: done, totalBytes: total, label: job.label });
            reported = done;
          }
        });
        await yieldToLoop(); // lets a signal handler run between tensors
      }
      options.onProgress?.({ doneBytes: total, totalBytes: total, label: 'done' });
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }

    // 4. Graph, manifest, tokenizer.
    const spec = {
      irVersion: ONNX_IR_VERSION,
      opsets: [
        { domain: '', version: ONNX_OPSET },
        { domain: 'com.microsoft', version: 1 },
      ],
      producer: 'glm-legal-serve',
      graph: graph.builder.build('chatglm3', DATA_FILE, offsets),
    };
    writeFileSync(join(tmpDir, GRAPH_FILE), encodeOnnxModel(spec));
    const manifest: ModelManifest = ModelManifestSchema.parse({
      format: MANIFEST_FORMAT,
      name: options.name ?? basename(hfDir),
      architecture: 'chatglm3',
      dims: model.dims,
      context_length: context,
      dtype,
      quant,
      kv_dtype: dtype === 'fp32' ? 'float32' : 'float16',
      logits,
      tokenizer: tokenizerInfo(model, tok),
      io: GRAPH_IO,
      adapter:
        adapterMode === 'merge' && adapter
          ? {
              mode: 'merge',
              merged: { name: adapter.name, rank: adapter.rank, alpha: adapter.alpha, target_modules: adapter.targetModules },
            }
          : adapterMode === 'runtime'
            ? { mode: 'runtime', inputs: graph.runtimeInputs }
            : { mode: 'none' },
      files: { graph: GRAPH_FILE, data: DATA_FILE },
    });
    writeFileSync(join(tmpDir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    copyFileSync(join(hfDir, TOKENIZER_FILE), join(tmpDir, TOKENIZER_FILE));
    chmodSync(join(tmpDir, TOKENIZER_FILE), 0o644); // a read-only source would make the copy read-only too

    // 5. Swap into place.
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    replaceDir(tmpDir, outDir);
    tmpDir = undefined;
    return { outDir, manifest, dataBytes: total };
  } finally {
    ckpt.close();
    if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** Renames `from` onto `to`; an existing `to` is moved aside first and deleted after. */
export function replaceDir(from: string, to: string): void {
  if (!existsSync(to)) {
    renameSync(from, to);
    return;
  }
  if (!isNonEmptyDir(to)) {
    rmdirSync(to);
    renameSync(from, to);
    return;
  }
  const old = join(dirname(to), `.${basename(to)}.old-${process.pid}-${randomBytes(4).toString('hex')}`);
  renameSync(to, old);
  try {
    renameSync(from, to);
  } catch (err) {
    renameSync(old, to);
    throw err;
  }
  rmSync(old, { recursive: true, force: true });
}
