/**
 * The ChatGLM3 graph, written with onnxruntime's fused operators.
 *
 * Per block, as `modeling_chatglm.py` computes it:
 *   h = x + dense(attn(rmsnorm₁(x)))        attn: packed QKV (bias on QKV only) → GroupQueryAttention
 *   x' = h + dense_4h_to_h(swiglu(dense_h_to_4h(rmsnorm₂(h))))   swiglu: silu(first half) · second half
 * then a final RMSNorm and the untied output layer. The residual adds are folded into
 * SkipSimplifiedLayerNormalization, whose fourth output is the sum the next block needs.
 *
 * GroupQueryAttention does the rotary itself (do_rotary, rotary_interleaved): ChatGLM3 rotates
 * the first half of each head in interleaved pairs with θⱼ = base^(−2j / (head_dim / 2)); GQA
 * rotates the first 2 × (cos cache width) dims of each head, so the caches are
 * [context, head_dim / 4], computed here in float32 as the reference does. Sequence lengths come
 * from the attention mask: seqlens_k = Σ mask − 1 per row, total_sequence_length = its width.
 * Position ids are not an input: GQA derives positions from seqlens_k (see ARCHITECTURE.md,
 * "Model graph", for the padding contract this implies).
 *
 * Linear layers are MatMul on Wᵀ (or MatMulNBits on int4 W). Runtime LoRA adds x·a·b with a and
 * b graph inputs per batch row; merged LoRA changes the weights the jobs write.
 */
import type { GraphIo, RuntimeLoraInput } from '../shared/model-manifest.js';
import {
  EMBEDDING_NAME,
  FINAL_NORM_NAME,
  OUTPUT_LAYER_NAME,
  layerPrefix,
  linearShape,
  linearWeightName,
  type ChatglmModel,
  type LinearModule,
} from './chatglm-config.js';
import type { GraphDtype } from './dtype.js';
import { GraphBuilder, MS_DOMAIN } from './graph-builder.js';
import { INT4_ACCURACY_LEVEL, INT4_BLOCK_SIZE, int4Layout } from './int4.js';
import { TensorType } from './onnx-proto.js';
import type { PeftAdapter } from './peft-adapter.js';
import type { Checkpoint } from './safetensors.js';
import { copyJob, int4Job, matmulJob, valuesJob } from './weight-jobs.js';

export interface ChatglmGraphOptions {
  dtype: GraphDtype;
  quant: 'none' | 'int4';
  /** MatMulNBits accuracy_level: 0 computes in the graph's float type, 4 with int8 activations (faster on CPU). */
  int4Accuracy?: number;
  /** Longest sequence the graph serves (rows of the rotary caches). */
  context: number;
  logits: 'all' | 'last';
  /** An adapter merged into the weights. */
  merge?: PeftAdapter;
  /** Modules that take runtime LoRA inputs, in every layer. */
  runtimeTargets?: LinearModule[];
}

export const GRAPH_IO: GraphIo = {
  input_ids: 'input_ids',
  attention_mask: 'attention_mask',
  past_key: 'past_key_values.{i}.key',
  past_value: 'past_key_values.{i}.value',
  logits: 'logits',
  present_key: 'present.{i}.key',
  present_value: 'present.{i}.value',
};

export function runtimeLoraInputName(layer: number, module: LinearModule, which: 'a' | 'b'): string {
  return `lora.layers.${layer}.${module}.${which}`;
}

export interface ChatglmGraph {
  builder: GraphBuilder;
  runtimeInputs: RuntimeLoraInput[];
}

/** The rotary caches: cos/sin(p · θⱼ) for p < context, j < head_dim / 4, in float32 arithmetic. */
export function rotaryCaches(headDim: number, base: number, context: number): { cos: Float32Array; sin: Float32Array } {
  const rotaryDim = headDim / 2;
  const width = rotaryDim / 2;
  const f = Math.fround;
  const theta = Array.from({ length: width }, (_, j) => f(1 / f(Math.pow(base, f((2 * j) / rotaryDim)))));
  const cos = new Float32Array(context * width);
  const sin = new Float32Array(context * width);
  for (let p = 0; p < context; p++) {
    for (let j = 0; j < width; j++) {
      const angle = f(p * theta[j]!);
      cos[p * width + j] = Math.cos(angle);
      sin[p * width + j] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

export function buildChatglmGraph(model: ChatglmModel, ckpt: Checkpoint, options: ChatglmGraphOptions): ChatglmGraph {
  const d = model.dims;
  const g = new GraphBuilder();
  const floatType = options.dtype === 'fp32' ? TensorType.FLOAT : TensorType.FLOAT16;
  const runtimeTargets = new Set(options.runtimeTargets ?? []);
  const runtimeInputs: RuntimeLoraInput[] = [];
  const B = 'batch_size';

  // Inputs, in the order onnxruntime-genai's graphs list them.
  const inputIds = g.input(GRAPH_IO.input_ids, TensorType.INT64, [B, 'sequence_length']);
  const mask = g.input(GRAPH_IO.attention_mask, TensorType.INT64, [B, 'total_sequence_length']);
  const past: Array<{ key: string; value: string }> = [];
  for (let i = 0; i < d.num_layers; i++) {
    const shape = [B, d.num_kv_heads, 'past_sequence_length', d.head_dim];
    past.push({
      key: g.input(GRAPH_IO.past_key.replace('{i}', String(i)), floatType, shape),
      value: g.input(GRAPH_IO.past_value.replace('{i}', String(i)), floatType, shape),
    });
  }

  // Outputs in onnxruntime-genai's order: logits, then the present caches.
  g.output(GRAPH_IO.logits, TensorType.FLOAT, [B, options.logits === 'last' ? 1 : 'sequence_length', d.vocab_size]);

  // Sequence lengths for GroupQueryAttention, from the attention mask.
  const maskSum = g.op('ReduceSum', [mask, g.int64([1])], { name: 'mask/ReduceSum', attrs: { keepdims: 0 } });
  const seqlensK = g.op('Cast', [g.op('Sub', [maskSum, g.int64([1], [])], { name: 'mask/Sub' })], {
    name: 'mask/seqlens_k',
    attrs: { to: TensorType.INT32 },
  });
  const totalLen64 = g.op('Gather', [g.op('Shape', [mask], { name: 'mask/Shape' }), g.int64([1], [])], {
    name: 'mask/total_length',
    attrs: { axis: 0 },
  });
  const totalLen = g.op('Cast', [totalLen64], { name: 'mask/total_sequence_length', attrs: { to: TensorType.INT32 } });

  const rotaryWidth = d.rotary_dim / 2;
  const cosDecl = g.weight('rotary.cos_cache', floatType, [options.context, rotaryWidth]);
  const sinDecl = g.weight('rotary.sin_cache', floatType, [options.context, rotaryWidth]);
  let caches: { cos: Float32Array; sin: Float32Array } | undefined;
  const cachesOnce = () => (caches ??= rotaryCaches(d.head_dim, d.rope_base, options.context));
  g.job(valuesJob('rotary cos cache', cosDecl, options.dtype, () => cachesOnce().cos));
  g.job(valuesJob('rotary sin cache', sinDecl, options.dtype, () => cachesOnce().sin));

  const copied = (name: string, shape: number[]) => {
    const info = ckpt.expect(name, shape);
    const decl = g.weight(name, floatType, shape);
    g.job(copyJob(ckpt, info, decl, options.dtype));
    return decl.name;
  };

  const linear = (x: string, layer: number | null, module: LinearModule | 'output_layer'): string => {
    const hfName = layer === null ? OUTPUT_LAYER_NAME : linearWeightName(layer, module as LinearModule);
    const [out, inF] = module === 'output_layer' ? [d.vocab_size, d.hidden_size] : linearShape(d, module);
    const info = ckpt.expect(hfName, [out, inF]);
    const base = hfName.replace(/\.weight$/, '');
    const merge =
      layer === null ? undefined : options.merge?.layers.find((l) => l.layer === layer && l.module === module);
    let y: string;
    if (options.quant === 'int4') {
      const layout = int4Layout(out, inF);
      const decls = {
        packed: g.weight(`${base}.weight.q4`, TensorType.UINT8, [out, layout.blocksPerRow, layout.blobBytes]),
        scales: g.weight(`${base}.weight.scales`, floatType, [out * layout.blocksPerRow]),
        zeroPoints: g.weight(`${base}.weight.zero_points`, TensorType.UINT8, [out * layout.zeroPointBytesPerRow]),
      };
      g.job(int4Job(ckpt, info, decls, options.dtype, merge));
      y = g.op('MatMulNBits', [x, decls.packed.name, decls.scales.name, decls.zeroPoints.name], {
        name: `${base}/MatMulNBits`,
        domain: MS_DOMAIN,
        attrs: { K: inF, N: out, bits: 4, block_size: INT4_BLOCK_SIZE, accuracy_level: options.int4Accuracy ?? INT4_ACCURACY_LEVEL },
      });
    } else {
      const decl = g.weight(`${base}.weight.transposed`, floatType, [inF, out]);
      g.job(matmulJob(ckpt, info, decl, options.dtype, merge));
      y = g.op('MatMul', [x, decl.name], { name: `${base}/MatMul` });
    }
    if (module === 'query_key_value' && model.hasQkvBias) {
      y = g.op('Add', [y, copied(`${base}.bias`, [out])], { name: `${base}/Add` });
    }
    if (layer !== null && runtimeTargets.has(module as LinearModule)) {
      const a = g.input(runtimeLoraInputName(layer, module as LinearModule, 'a'), floatType, [B, inF, 'lora_rank']);
      const b = g.input(runtimeLoraInputName(layer, module as LinearModule, 'b'), floatType, [B, 'lora_rank', out]);
      runtimeInputs.push({ layer, module, a, b, in_features: inF, out_features: out });
      const xa = g.op('MatMul', [x, a], { name: `${base}/lora/MatMul_a` });
      y = g.op('Add', [y, g.op('MatMul', [xa, b], { name: `${base}/lora/MatMul_b` })], { name: `${base}/lora/Add` });
    }
    return y;
  };

  const embedInfo = ckpt.expect(EMBEDDING_NAME, [d.vocab_size, d.hidden_size]);
  const embedDecl = g.weight(EMBEDDING_NAME, floatType, [d.vocab_size, d.hidden_size]);
  g.job(copyJob(ckpt, embedInfo, embedDecl, options.dtype));
  let hidden = g.op('Gather', [embedDecl.name, inputIds], { name: 'embedding/Gather', attrs: { axis: 0 } });

  const eps = { float: d.rms_norm_eps };
  /** The block output not yet added to the residual stream (null before the first block). */
  let pending: string | null = null;
  for (let i = 0; i < d.num_layers; i++) {
    const p = layerPrefix(i);
    const ln1 = copied(`${p}.input_layernorm.weight`, [d.hidden_size]);
    let normed: string;
    if (pending === null) {
      normed = g.op('SimplifiedLayerNormalization', [hidden, ln1], {
        name: `${p}/input_layernorm`,
        attrs: { axis: -1, epsilon: eps, stash_type: 1 },
      });
    } else {
      [normed, , , hidden] = g.node('SkipSimplifiedLayerNormalization', [pending, hidden, ln1], {
        name: `${p}/input_layernorm`,
        domain: MS_DOMAIN,
        attrs: { epsilon: eps },
        outputs: [`${p}/input_layernorm/output`, '', '', `${p}/residual_in`],
      }) as [string, string, string, string];
    }
    const qkv = linear(normed, i, 'query_key_value');
    const [attn] = g.node('GroupQueryAttention', [qkv, '', '', past[i]!.key, past[i]!.value, seqlensK, totalLen, cosDecl.name, sinDecl.name], {
      name: `${p}/self_attention/GroupQueryAttention`,
      domain: MS_DOMAIN,
      attrs: { num_heads: d.num_heads, kv_num_heads: d.num_kv_heads, do_rotary: 1, rotary_interleaved: 1 },
      outputs: [
        `${p}/self_attention/output`,
        GRAPH_IO.present_key.replace('{i}', String(i)),
        GRAPH_IO.present_value.replace('{i}', String(i)),
      ],
    }) as [string];
    const dense = linear(attn, i, 'dense');
    const ln2 = copied(`${p}.post_attention_layernorm.weight`, [d.hidden_size]);
    const [normed2, , , residual] = g.node('SkipSimplifiedLayerNormalization', [dense, hidden, ln2], {
      name: `${p}/post_attention_layernorm`,
      domain: MS_DOMAIN,
      attrs: { epsilon: eps },
      outputs: [`${p}/post_attention_layernorm/output`, '', '', `${p}/residual_mid`],
    }) as [string, string, string, string];
    hidden = residual;
    const h4 = linear(normed2, i, 'dense_h_to_4h');
    const [gate, up] = g.node('Split', [h4], { name: `${p}/mlp/Split`, attrs: { axis: -1, num_outputs: 2 }, outputs: 2 }) as [
      string,
      string,
    ];
    const silu = g.op('Mul', [gate, g.op('Sigmoid', [gate], { name: `${p}/mlp/Sigmoid` })], { name: `${p}/mlp/silu` });
    const act = g.op('Mul', [silu, up], { name: `${p}/mlp/swiglu` });
    pending = linear(act, i, 'dense_4h_to_h');
    for (const side of ['key', 'value'] as const) {
      const name = (side === 'key' ? GRAPH_IO.present_key : GRAPH_IO.present_value).replace('{i}', String(i));
      g.output(name, floatType, [B, d.num_kv_heads, 'total_sequence_length', d.head_dim]);
    }
  }

  const finalLn = copied(FINAL_NORM_NAME, [d.hidden_size]);
  let [final] = g.node('SkipSimplifiedLayerNormalization', [pending!, hidden, finalLn], {
    name: 'final_layernorm',
    domain: MS_DOMAIN,
    attrs: { epsilon: eps },
    outputs: ['final_layernorm/output'],
  }) as [string];

  if (options.logits === 'last') {
    // Each row's last real token: index Σmask − 1 − past_length within this step, clamped to the
    // step (a decode row whose cache is shorter than the batch's past gives 0, its only token).
    const seqLen = g.op('Gather', [g.op('Shape', [inputIds], { name: 'last/Shape' }), g.int64([1], [])], {
      name: 'last/sequence_length',
      attrs: { axis: 0 },
    });
    const pastLen = g.op('Sub', [totalLen64, seqLen], { name: 'last/past_length' });
    const raw = g.op('Sub', [g.op('Sub', [maskSum, g.int64([1], [])], { name: 'last/Sub' }), pastLen], { name: 'last/index' });
    const clamped = g.op('Min', [
      g.op('Max', [raw, g.int64([0], [])], { name: 'last/Max' }),
      g.op('Sub', [seqLen, g.int64([1], [])], { name: 'last/max_index' }),
    ], { name: 'last/Min' });
    const index = g.op('Unsqueeze', [clamped, g.int64([1])], { name: 'last/Unsqueeze_index' });
    const gathered = g.op('GatherND', [final, index], { name: 'last/GatherND', attrs: { batch_dims: 1 } });
    final = g.op('Unsqueeze', [gathered, g.int64([1])], { name: 'last/Unsqueeze' });
  }

  let logits = linear(final, null, 'output_layer');
  if (options.dtype !== 'fp32') logits = g.op('Cast', [logits], { name: 'logits/Cast', attrs: { to: TensorType.FLOAT } });
  g.op('Identity', [logits], { name: 'logits/Identity', output: GRAPH_IO.logits });
  return { builder: g, runtimeInputs };
}
