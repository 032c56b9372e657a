/**
 * ChatGLM3's `config.json` (Hugging Face layout) and the tensor names and shapes it implies.
 *
 * Only the architecture the reference `modeling_chatglm.py` implements for ChatGLM3 is accepted:
 * RMSNorm, pre-norm residuals, a final norm, bias on query_key_value only, grouped KV heads.
 * Anything else is refused with the config key at fault rather than exported wrongly.
 */
import { join } from 'node:path';
import { z } from 'zod';
import type { ModelDims } from '../shared/model-manifest.js';
import { ModelFileError, readModelJson } from './model-error.js';

export const CONFIG_FILE = 'config.json';

const ChatglmConfigSchema = z.object({
  model_type: z.literal('chatglm').optional(),
  num_layers: z.number().int().min(1),
  padded_vocab_size: z.number().int().min(1),
  hidden_size: z.number().int().min(1),
  ffn_hidden_size: z.number().int().min(1),
  kv_channels: z.number().int().min(1),
  num_attention_heads: z.number().int().min(1),
  seq_length: z.number().int().min(1),
  layernorm_epsilon: z.number().positive(),
  rmsnorm: z.literal(true, { message: 'only RMSNorm models (rmsnorm: true) are supported' }).default(true),
  apply_residual_connection_post_layernorm: z
    .literal(false, { message: 'post-norm residuals are not supported' })
    .default(false),
  post_layer_norm: z.literal(true, { message: 'a final layer norm (post_layer_norm: true) is required' }).default(true),
  add_bias_linear: z.literal(false, { message: 'bias on every linear layer is not supported' }).default(false),
  add_qkv_bias: z.boolean().default(true),
  multi_query_attention: z.boolean().default(false),
  multi_query_group_num: z.number().int().min(1).default(1),
  rope_ratio: z.number().positive().default(1),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int())]).optional(),
  pad_token_id: z.number().int().optional(),
});
export type ChatglmConfig = z.infer<typeof ChatglmConfigSchema>;

export interface ChatglmModel {
  config: ChatglmConfig;
  dims: ModelDims;
  /** The model's own context length (`seq_length`). */
  seqLength: number;
  hasQkvBias: boolean;
}

/** The linear layers of a block, named as in the checkpoint (and in PEFT's target_modules). */
export const LINEAR_MODULES = ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'] as const;
export type LinearModule = (typeof LINEAR_MODULES)[number];

export function isLinearModule(name: string): name is LinearModule {
  return (LINEAR_MODULES as readonly string[]).includes(name);
}

export function readChatglmConfig(dir: string): ChatglmModel {
  const file = join(dir, CONFIG_FILE);
  return chatglmModel(readModelJson(file, ChatglmConfigSchema, 'not a Hugging Face model folder'), file);
}

export function chatglmModel(config: ChatglmConfig, file = CONFIG_FILE): ChatglmModel {
  const headDim = config.kv_channels;
  const kvHeads = config.multi_query_attention ? config.multi_query_group_num : config.num_attention_heads;
  if (config.num_attention_heads % kvHeads !== 0) {
    throw new ModelFileError(file, `multi_query_group_num ${kvHeads} does not divide num_attention_heads ${config.num_attention_heads}`);
  }
  // onnxruntime's GroupQueryAttention on CPU needs head size % 16 and a rotary cache width
  // (a quarter of the head for ChatGLM3's half rotation) that is a multiple of 8.
  if (headDim % 32 !== 0) {
    throw new ModelFileError(file, `kv_channels ${headDim}: GroupQueryAttention needs a head size that is a multiple of 32 here`);
  }
  const dims: ModelDims = {
    num_layers: config.num_layers,
    hidden_size: config.hidden_size,
    num_heads: config.num_attention_heads,
    head_dim: headDim,
    num_kv_heads: kvHeads,
    ffn_hidden_size: config.ffn_hidden_size,
    vocab_size: config.padded_vocab_size,
    rms_norm_eps: config.layernorm_epsilon,
    rope_base: 10000 * config.rope_ratio,
    rotary_dim: headDim / 2,
  };
  return { config, dims, seqLength: config.seq_length, hasQkvBias: config.add_qkv_bias };
}

export function layerPrefix(layer: number): string {
  return `transformer.encoder.layers.${layer}`;
}

/** Checkpoint name of a linear layer's weight. */
export function linearWeightName(layer: number, module: LinearModule): string {
  const block = module === 'query_key_value' || module === 'dense' ? 'self_attention' : 'mlp';
  return `${layerPrefix(layer)}.${block}.${module}.weight`;
}

/** [out, in] of a linear layer, as the checkpoint stores it. */
export function linearShape(dims: ModelDims, module: LinearModule): [number, number] {
  const qkv = (dims.num_heads + 2 * dims.num_kv_heads) * dims.head_dim;
  switch (module) {
    case 'query_key_value':
      return [qkv, dims.hidden_size];
    case 'dense':
      return [dims.hidden_size, dims.num_heads * dims.head_dim];
    case 'dense_h_to_4h':
      return [2 * dims.ffn_hidden_size, dims.hidden_size];
    case 'dense_4h_to_h':
      return [dims.hidden_size, dims.ffn_hidden_size];
  }
}

export const EMBEDDING_NAME = 'transformer.embedding.word_embeddings.weight';
export const FINAL_NORM_NAME = 'transformer.encoder.final_layernorm.weight';
export const OUTPUT_LAYER_NAME = 'transformer.output_layer.weight';

/** Every tensor the checkpoint must hold, with its shape. */
export function checkpointTensors(model: ChatglmModel): Array<{ name: string; shape: number[] }> {
  const d = model.dims;
  const out: Array<{ name: string; shape: number[] }> = [{ name: EMBEDDING_NAME, shape: [d.vocab_size, d.hidden_size] }];
  for (let i = 0; i < d.num_layers; i++) {
    out.push({ name: `${layerPrefix(i)}.input_layernorm.weight`, shape: [d.hidden_size] });
    out.push({ name: linearWeightName(i, 'query_key_value'), shape: linearShape(d, 'query_key_value') });
    if (model.hasQkvBias) {
      out.push({ name: `${layerPrefix(i)}.self_attention.query_key_value.bias`, shape: [linearShape(d, 'query_key_value')[0]] });
    }
    out.push({ name: linearWeightName(i, 'dense'), shape: linearShape(d, 'dense') });
    out.push({ name: `${layerPrefix(i)}.post_attention_layernorm.weight`, shape: [d.hidden_size] });
    out.push({ name: linearWeightName(i, 'dense_h_to_4h'), shape: linearShape(d, 'dense_h_to_4h') });
    out.push({ name: linearWeightName(i, 'dense_4h_to_h'), shape: linearShape(d, 'dense_4h_to_h') });
  }
  out.push({ name: FINAL_NORM_NAME, shape: [d.hidden_size] });
  out.push({ name: OUTPUT_LAYER_NAME, shape: [d.vocab_size, d.hidden_size] });
  return out;
}
