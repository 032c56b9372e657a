/**
 * Random-weight ChatGLM3-architecture models, made entirely by this code: a seeded checkpoint in
 * the Hugging Face layout (config.json, safetensors, the demo tokenizer) written to a temporary
 * folder, then exported by the same exporter as a real model. Presets: `tiny` (about the golden
 * size; the service builds it on first start) and `bench` (about 140 M parameters, for the
 * worker benchmark). `writeRandomCheckpoint` also writes the ~1 B parameter checkpoint of the
 * export benchmark, in shards, and `writeRandomAdapter` a PEFT LoRA folder for such a model.
 *
 * Weights are uniform random numbers from pure-rand's xoroshiro128+ (seeded, so a preset and
 * seed always give the same model), scaled by 1/√fan-in so activations stay in range; norm
 * weights are near 1. Tensors are generated and written in row blocks: memory stays small
 * whatever the size.
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { readJsonFile } from '../shared/json-file.js';
import { CHATGLM3_SPECIAL_TOKENS, MANIFEST_FILE, ModelManifestSchema, type ModelManifest } from '../shared/model-manifest.js';
import { chatglmModel, checkpointTensors, linearShape, type ChatglmConfig, type LinearModule } from './chatglm-config.js';
import { demoTokenizerBytes } from './demo-tokenizer.js';
import { floatToHalf } from './dtype.js';
import { exportModel, type ExportOptions, type ExportResult, TOKENIZER_FILE } from './export-model.js';
import { numel, writeSafetensors, type TensorToWrite } from './safetensors.js';
import { decodeSentencePieceModel } from '../tokenizer/sentencepiece-model.js';

export interface ModelShape {
  num_layers: number;
  hidden_size: number;
  num_attention_heads: number;
  kv_channels: number;
  multi_query_group_num: number;
  ffn_hidden_size: number;
  seq_length: number;
  /** Omitted: the tokenizer's size plus ChatGLM3's special tokens, rounded up to 64. */
  padded_vocab_size?: number;
}

export const DEMO_PRESETS = {
  tiny: { num_layers: 2, hidden_size: 128, num_attention_heads: 4, kv_channels: 32, multi_query_group_num: 2, ffn_hidden_size: 256, seq_length: 1024 },
  bench: { num_layers: 12, hidden_size: 1024, num_attention_heads: 8, kv_channels: 128, multi_query_group_num: 2, ffn_hidden_size: 2816, seq_length: 2048 },
} as const satisfies Record<string, ModelShape>;
export type DemoPreset = keyof typeof DEMO_PRESETS;

/** About 1.1 B parameters with ChatGLM3-6B's vocabulary and head layout: the export benchmark's model. */
export const BILLION_SHAPE: ModelShape = {
  num_layers: 20,
  hidden_size: 2048,
  num_attention_heads: 16,
  kv_channels: 128,
  multi_query_group_num: 2,
  ffn_hidden_size: 5632,
  seq_length: 8192,
  padded_vocab_size: 65024,
};

export function demoModelName(preset: DemoPreset): string {
  return `chatglm3-demo-${preset}`;
}

function hfConfig(shape: ModelShape, vocab: number): ChatglmConfig & Record<string, unknown> {
  return {
    model_type: 'chatglm',
    architectures: ['ChatGLMModel'],
    num_layers: shape.num_layers,
    padded_vocab_size: vocab,
    hidden_size: shape.hidden_size,
    ffn_hidden_size: shape.ffn_hidden_size,
    kv_channels: shape.kv_channels,
    num_attention_heads: shape.num_attention_heads,
    seq_length: shape.seq_length,
    layernorm_epsilon: 1e-5,
    rmsnorm: true,
    apply_residual_connection_post_layernorm: false,
    post_layer_norm: true,
    add_bias_linear: false,
    add_qkv_bias: true,
    multi_query_attention: true,
    multi_query_group_num: shape.multi_query_group_num,
    rope_ratio: 1,
    original_rope: true,
    torch_dtype: 'float32',
    eos_token_id: 2,
    pad_token_id: 0,
  };
}

const ROW_BLOCK_ELEMS = 4 * 1024 * 1024;
/** xoroshiro128+ gives signed 32-bit integers; this maps them onto [-1, 1). */
const INT32_TO_UNIT = 2 ** -31;

/** A tensor of `shape` filled with center + scale · uniform[-1, 1), generated block by block. */
function randomTensor(
  name: string,
  shape: number[],
  dtype: 'F32' | 'F16',
  rng: ReturnType<typeof xoroshiro128plus>,
  scale: number,
  center = 0,
): TensorToWrite {
  return {
    name,
    dtype,
    shape,
    write(sink) {
      let left = numel(shape);
      while (left > 0) {
        const n = Math.min(left, ROW_BLOCK_ELEMS);
        const values = new Float32Array(n);
        for (let i = 0; i < n; i++) values[i] = center + scale * rng.next() * INT32_TO_UNIT;
        const out = dtype === 'F32' ? values : floatToHalf(values);
        sink(new Uint8Array(out.buffer, out.byteOffset, out.byteLength));
        left -= n;
      }
    },
  };
}

export interface RandomCheckpointOptions {
  seed?: number;
  dtype?: 'F32' | 'F16';
  /** Split into shards of at most this many bytes, with model.safetensors.index.json. */
  shardBytes?: number;
}

export interface RandomCheckpoint {
  dir: string;
  parameters: number;
  bytes: number;
  vocab: number;
}

/** Writes a random ChatGLM3 checkpoint folder (config.json, safetensors, tokenizer.model) at `dir`. */
export function writeRandomCheckpoint(dir: string, shape: ModelShape, options: RandomCheckpointOptions = {}): RandomCheckpoint {
  const tokenizer = demoTokenizerBytes();
  const spSize = decodeSentencePieceModel(tokenizer).pieces.length;
  const vocab = shape.padded_vocab_size ?? Math.ceil((spSize + CHATGLM3_SPECIAL_TOKENS.length) / 64) * 64;
  const config = hfConfig(shape, vocab);
  const model = chatglmModel(config);
  const dtype = options.dtype ?? 'F32';
  const rng = xoroshiro128plus(options.seed ?? 0);
  const tensors = checkpointTensors(model).map(({ name, shape: s }) => {
    if (s.length === 1) {
      return name.endsWith('.bias') ? randomTensor(name, s, dtype, rng, 0.02) : randomTensor(name, s, dtype, rng, 0.1, 1);
    }
    return randomTensor(name, s, dtype, rng, name.includes('word_embeddings') ? 1 : Math.sqrt(3 / s[1]!));
  });
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, TOKENIZER_FILE), tokenizer);
  const elemBytes = dtype === 'F32' ? 4 : 2;
  const sizeOf = (t: TensorToWrite) => numel(t.shape) * elemBytes;
  const total = tensors.reduce((a, t) => a + sizeOf(t), 0);
  if (!options.shardBytes || total <= options.shardBytes) {
    writeSafetensors(join(dir, 'model.safetensors'), tensors);
  } else {
    const shards: TensorToWrite[][] = [[]];
    let used = 0;
    for (const t of tensors) {
      if (used > 0 && used + sizeOf(t) > options.shardBytes) {
        shards.push([]);
        used = 0;
      }
      shards.at(-1)!.push(t);
      used += sizeOf(t);
    }
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.safetensors`;
      writeSafetensors(join(dir, file), list);
      for (const t of list) weightMap[t.name] = file;
    });
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
  }
  return { dir, parameters: tensors.reduce((a, t) => a + numel(t.shape), 0), bytes: total, vocab };
}

export interface RandomAdapterOptions {
  rank?: number;
  alpha?: number;
  targets?: LinearModule[];
  seed?: number;
  useRslora?: boolean;
}

/** Writes a random PEFT LoRA folder (as finetune_demo lays it out) for a model of `shape`. */
export function writeRandomAdapter(dir: string, shape: ModelShape & { padded_vocab_size: number }, options: RandomAdapterOptions = {}): void {
  const rank = options.rank ?? 8;
  const targets = options.targets ?? ['query_key_value'];
  const dims = chatglmModel(hfConfig(shape, shape.padded_vocab_size)).dims;
  const rng = xoroshiro128plus(options.seed ?? 1);
  const tensors: TensorToWrite[] = [];
  for (let layer = 0; layer < shape.num_layers; layer++) {
    for (const module of targets) {
      const [out, inF] = linearShape(dims, module);
      const block = module === 'query_key_value' || module === 'dense' ? 'self_attention' : 'mlp';
      const base = `base_model.model.transformer.encoder.layers.${layer}.${block}.${module}`;
      tensors.push(randomTensor(`${base}.lora_A.weight`, [rank, inF], 'F32', rng, Math.sqrt(3 / inF)));
      tensors.push(randomTensor(`${base}.lora_B.weight`, [out, rank], 'F32', rng, 0.05));
    }
  }
  writeFileSync(
    join(dir, 'adapter_config.json'),
    `${JSON.stringify(
      {
        peft_type: 'LORA',
        task_type: 'CAUSAL_LM',
        r: rank,
        lora_alpha: options.alpha ?? 2 * rank,
        lora_dropout: 0.1,
        target_modules: targets,
        fan_in_fan_out: false,
        bias: 'none',
        inference_mode: true,
        use_rslora: options.useRslora ?? false,
        base_model_name_or_path: 'chatglm3-demo',
      },
      null,
      2,
    )}\n`,
  );
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
}

export interface DemoModelOptions extends Pick<ExportOptions, 'force' | 'onProgress' | 'signal' | 'logits'> {
  seed?: number;
  /** `runtime` (default): LoRA inputs on query_key_value, so the worker can serve adapters. */
  adapterMode?: 'none' | 'runtime';
}

/** Builds a demo model directory at `outDir` through the exporter. */
export async function makeDemoModel(outDir: string, preset: DemoPreset, options: DemoModelOptions = {}): Promise<ExportResult> {
  const hf = mkdtempSync(join(tmpdir(), `${demoModelName(preset)}-hf-`));
  try {
    writeRandomCheckpoint(hf, DEMO_PRESETS[preset], { seed: options.seed ?? 0 });
    return await exportModel({
      hfDir: hf,
      outDir,
      name: demoModelName(preset),
      logits: options.logits ?? 'last',
      ...((options.adapterMode ?? 'runtime') === 'runtime' ? { adapterMode: 'runtime' as const } : {}),
      ...(options.force === undefined ? {} : { force: options.force }),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  } finally {
    rmSync(hf, { recursive: true, force: true });
  }
}

function readDemoManifest(dir: string, preset: DemoPreset): ModelManifest | undefined {
  try {
    const manifest = readJsonFile(join(dir, MANIFEST_FILE), ModelManifestSchema);
    const complete = [manifest.files.graph, manifest.files.data, manifest.tokenizer.file].every((f) => existsSync(join(dir, f)));
    return complete && manifest.name === demoModelName(preset) ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The demo model at `dir`, built on first use (the service's `npm start` calls this for `tiny`).
 * A folder holding something else is replaced. Two processes racing to build it both succeed:
 * the exporter swaps complete folders into place, and a loser that finds a finished model uses it.
 */
export async function ensureDemoModel(dir: string, preset: DemoPreset): Promise<ModelManifest> {
  const existing = readDemoManifest(dir, preset);
  if (existing) return existing;
  try {
    return (await makeDemoModel(dir, preset, { force: true })).manifest;
  } catch (err) {
    const built = readDemoManifest(dir, preset);
    if (built) return built;
    throw err;
  }
}

/** The name of the random adapter that `ensureDemoAdapter` writes beside the demo model. */
export const DEMO_ADAPTER_NAME = 'legal-demo';

/**
 * A random PEFT adapter for the demo model at `adaptersDir/legal-demo`, written on first use, so
 * that the embedded default shows per-request adapter routing (`model: "legal-demo"`). Written
 * into a temporary sibling and renamed, so a crash never leaves half an adapter.
 */
export function ensureDemoAdapter(adaptersDir: string, manifest: ModelManifest, preset: DemoPreset): string {
  const dir = join(adaptersDir, DEMO_ADAPTER_NAME);
  if (existsSync(join(dir, 'adapter_config.json')) && existsSync(join(dir, 'adapter_model.safetensors'))) return dir;
  mkdirSync(adaptersDir, { recursive: true });
  const tmp = mkdtempSync(join(dirname(dir), `.${DEMO_ADAPTER_NAME}-`));
  try {
    writeRandomAdapter(tmp, { ...DEMO_PRESETS[preset], padded_vocab_size: manifest.dims.vocab_size }, { seed: 1 });
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
