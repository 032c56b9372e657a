/**
 * `model.json`: the manifest the model builder writes beside `model.onnx` and the worker reads.
 * It carries everything the worker needs to drive the graph without guessing: dimensions,
 * dtypes, token ids, the graph's input/output names and how LoRA adapters are fed.
 *
 * Graph I/O follows onnxruntime-genai's layout (batch-first KV cache):
 *   inputs   input_ids [B,S] int64, attention_mask [B,T] int64 (T = past + S),
 *            past_key_values.{i}.key / .value [B, kv_heads, past, head_dim]
 *   outputs  logits [B, S or 1, vocab], present.{i}.key / .value [B, kv_heads, T, head_dim]
 * Runtime LoRA adds, per adapted linear layer, `a` [B, in, rank] and `b` [B, rank, out] inputs
 * (scaling folded into b): one slice per batch row, so rows on different adapters share a batch;
 * zero slices give the base model.
 * Logits are float32 whatever the dtype; the KV cache and LoRA inputs are in `kv_dtype`. The
 * padding and KV-cache rules (right padding, what the mask holds per step) are in ARCHITECTURE.md,
 * section "Model graph".
 */
import { z } from 'zod';
import { AdapterInfoSchema } from '../protocol/schemas.js';

export const MANIFEST_FILE = 'model.json';
/** ChatGLM3's SentencePiece model, as the Hugging Face folder and a model directory name it. */
export const TOKENIZER_FILE = 'tokenizer.model';
export const MANIFEST_FORMAT = 'glm-legal-serve.model/1';

export const ModelDimsSchema = z.object({
  num_layers: z.number().int().min(1),
  hidden_size: z.number().int().min(1),
  num_heads: z.number().int().min(1),
  head_dim: z.number().int().min(1),
  num_kv_heads: z.number().int().min(1),
  ffn_hidden_size: z.number().int().min(1),
  /** The padded vocabulary of the output layer (65024 for ChatGLM3-6B). */
  vocab_size: z.number().int().min(1),
  rms_norm_eps: z.number().positive(),
  /** Rotary base (10000 × rope_ratio). */
  rope_base: z.number().positive(),
  /** Dimensions of each head that the rotary embedding rotates (half the head for ChatGLM3). */
  rotary_dim: z.number().int().min(0),
});
export type ModelDims = z.infer<typeof ModelDimsSchema>;

/**
 * ChatGLM3's special tokens, appended after the SentencePiece pieces in this order: their ids are
 * the model file's piece count + 0…8 (64789… for ChatGLM3-6B), never a fixed table.
 */
export const CHATGLM3_SPECIAL_TOKENS = [
  '[MASK]',
  '[gMASK]',
  '[sMASK]',
  'sop',
  'eop',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|observation|>',
] as const;
export type SpecialToken = (typeof CHATGLM3_SPECIAL_TOKENS)[number];

export const TokenizerInfoSchema = z.object({
  file: z.string(),
  /** Pieces in the SentencePiece model; ChatGLM3's special tokens follow them. */
  sp_vocab_size: z.number().int().min(1),
  special_tokens: z.record(z.string(), z.number().int().min(0)),
  bos_token_id: z.number().int(),
  eos_token_id: z.number().int().min(0),
  pad_token_id: z.number().int().min(0),
  /** Generation stops on any of these: [eos, <|user|>, <|observation|>]. */
  stop_token_ids: z.array(z.number().int().min(0)).min(1),
});

export const GraphIoSchema = z.object({
  input_ids: z.string(),
  attention_mask: z.string(),
  /** Name patterns with `{i}` for the layer index. */
  past_key: z.string(),
  past_value: z.string(),
  logits: z.string(),
  present_key: z.string(),
  present_value: z.string(),
});
export type GraphIo = z.infer<typeof GraphIoSchema>;

export const RuntimeLoraInputSchema = z.object({
  layer: z.number().int().min(0),
  /** The linear layer, named as in the Hugging Face checkpoint (`query_key_value`, `dense`, ...). */
  module: z.string(),
  a: z.string(),
  b: z.string(),
  in_features: z.number().int().min(1),
  out_features: z.number().int().min(1),
});
export type RuntimeLoraInput = z.infer<typeof RuntimeLoraInputSchema>;

export const ManifestAdapterSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('none') }),
  z.object({ mode: z.literal('merge'), merged: AdapterInfoSchema }),
  z.object({
    mode: z.literal('runtime'),
    /** Every linear layer that takes LoRA inputs; adapters may use any subset. */
    inputs: z.array(RuntimeLoraInputSchema).min(1),
  }),
]);

export const ModelManifestSchema = z.object({
  format: z.literal(MANIFEST_FORMAT),
  /** The served model name (`chatglm3-6b`, `chatglm3-demo-tiny`). */
  name: z.string().min(1),
  architecture: z.literal('chatglm3'),
  dims: ModelDimsSchema,
  context_length: z.number().int().min(1),
  dtype: z.enum(['fp32', 'fp16']),
  quant: z.enum(['none', 'int4']),
  kv_dtype: z.enum(['float32', 'float16']),
  /** `all`: logits for every input position; `last`: only each row's last real token. */
  logits: z.enum(['all', 'last']),
  tokenizer: TokenizerInfoSchema,
  io: GraphIoSchema,
  adapter: ManifestAdapterSchema,
  files: z.object({ graph: z.string(), data: z.string() }),
});
export type ModelManifest = z.infer<typeof ModelManifestSchema>;

export function layerName(pattern: string, layer: number): string {
  return pattern.replace('{i}', String(layer));
}
