/**
 * PEFT LoRA adapters as ChatGLM3's finetune_demo writes them: `adapter_config.json` and
 * `adapter_model.safetensors` with tensors named
 * `base_model.model.transformer.encoder.layers.{i}.<block>.<module>.lora_A.weight` ([r, in]) and
 * `.lora_B.weight` ([out, r]).
 *
 * The reader returns, per adapted layer and module, the factors in the graph's layout:
 * `a` = Aᵀ [in, r] and `b` = Bᵀ [r, out], so that x·a·b is the adapter's contribution to x·Wᵀ,
 * with the scaling (lora_alpha / r, or lora_alpha / √r with use_rslora) folded into `b` on
 * request. The exporter merges them into the weights or declares graph inputs for them; the
 * worker loads adapters at run time with the same reader. A checkpoint that does not fit the
 * model (unknown module, layer out of range, wrong shapes) is refused with ADAPTER_MISMATCH.
 */
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import type { ModelDims } from '../shared/model-manifest.js';
import { LINEAR_MODULES, isLinearModule, linearShape, type LinearModule } from './chatglm-config.js';
import { isFloatDtype, toFloat32, type SafetensorsFloatDtype } from './dtype.js';
import { ModelFileError, readModelJson } from './model-error.js';
import { SafetensorsFile } from './safetensors.js';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

const AdapterConfigSchema = z.object({
  peft_type: z.literal('LORA', { message: 'only LoRA adapters (peft_type LORA) are supported' }),
  r: z.number().int().min(1),
  lora_alpha: z.number().positive(),
  target_modules: z.union([z.array(z.string()), z.string()]).nullish(),
  use_rslora: z.boolean().default(false),
  fan_in_fan_out: z.literal(false, { message: 'fan_in_fan_out adapters are not supported' }).default(false),
  bias: z.literal('none', { message: 'adapters that train biases are not supported' }).default('none'),
  use_dora: z.literal(false, { message: 'DoRA adapters are not supported' }).default(false),
  modules_to_save: z.array(z.string()).max(0, { message: 'adapters with modules_to_save are not supported' }).nullish(),
  rank_pattern: z.record(z.string(), z.unknown()).refine((v) => Object.keys(v).length === 0, {
    message: 'per-module ranks (rank_pattern) are not supported',
  }).nullish(),
  alpha_pattern: z.record(z.string(), z.unknown()).refine((v) => Object.keys(v).length === 0, {
    message: 'per-module alphas (alpha_pattern) are not supported',
  }).nullish(),
});

export interface LoraFactors {
  layer: number;
  module: LinearModule;
  inFeatures: number;
  outFeatures: number;
  rank: number;
  /** Aᵀ, [inFeatures, rank] row-major. */
  a: Float32Array;
  /** Bᵀ, [rank, outFeatures] row-major; multiplied by `scaling` when read with `scaled`. */
  b: Float32Array;
}

export interface PeftAdapter {
  /** The folder's name: adapters are chosen by it. */
  name: string;
  dir: string;
  rank: number;
  alpha: number;
  useRslora: boolean;
  scaling: number;
  /** Whether `b` of every entry already carries the scaling. */
  scaled: boolean;
  targetModules: LinearModule[];
  /** Sorted by layer, then by module in LINEAR_MODULES order. */
  layers: LoraFactors[];
}

export interface ReadAdapterOptions {
  /** Fold the scaling into `b` (default true). */
  scaled?: boolean;
}

const TENSOR_NAME =
  /^base_model\.model\.transformer\.encoder\.layers\.(\d+)\.(?:self_attention|mlp)\.([a-z_0-9]+)\.lora_([AB])(?:\.default)?\.weight$/;

export function loraScaling(alpha: number, rank: number, useRslora: boolean): number {
  return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
}

/** Reads a PEFT LoRA folder and checks it against the model's dimensions. */
export function readPeftAdapter(dirIn: string, dims: ModelDims, options: ReadAdapterOptions = {}): PeftAdapter {
  const dir = resolve(dirIn);
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_FILE);
  const config = readModelJson(configFile, AdapterConfigSchema, 'not a PEFT adapter folder');
  if (!existsSync(weightsFile)) {
    const bin = join(dir, 'adapter_model.bin');
    if (existsSync(bin)) {
      throw new ModelFileError(
        bin,
        'pickle adapters are not read (they can run code); convert it first: python -c "import torch; ' +
          "from safetensors.torch import save_file; save_file(torch.load('adapter_model.bin', map_location='cpu'), " +
          "'adapter_model.safetensors')\" in the adapter folder",
      );
    }
    throw new ModelFileError(weightsFile, 'missing: the adapter has no weights');
  }
  if (Array.isArray(config.target_modules)) {
    for (const m of config.target_modules) {
      if (!isLinearModule(m)) {
        throw new ModelFileError(configFile, `target module ${m} is not a linear layer of ChatGLM3 (${LINEAR_MODULES.join(', ')})`, {
          code: 'ADAPTER_MISMATCH',
        });
      }
    }
  }
  const scaling = loraScaling(config.lora_alpha, config.r, config.use_rslora);
  const scaled = options.scaled ?? true;
  const file = SafetensorsFile.open(weightsFile);
  try {
    const halves = new Map<string, { layer: number; module: LinearModule; A?: Float32Array; B?: Float32Array }>();
    for (const info of file.tensors.values()) {
      const mismatch = (message: string) =>
        new ModelFileError(weightsFile, message, { tensor: info.name, code: 'ADAPTER_MISMATCH' });
      const m = TENSOR_NAME.exec(info.name);
      if (!m) throw mismatch('not a LoRA tensor of a ChatGLM3 layer');
      const layer = Number(m[1]);
      const module = m[2]!;
      const which = m[3] as 'A' | 'B';
      if (!isLinearModule(module)) throw mismatch(`${module} is not a linear layer of ChatGLM3`);
      if (Array.isArray(config.target_modules) && !config.target_modules.includes(module)) {
        throw mismatch(`${module} is not among target_modules [${config.target_modules.join(', ')}]`);
      }
      if (layer >= dims.num_layers) throw mismatch(`layer ${layer} but the model has ${dims.num_layers} layers`);
      if (!isFloatDtype(info.dtype)) throw mismatch(`dtype ${info.dtype} is not a float type`);
      const [out, inF] = linearShape(dims, module);
      const want = which === 'A' ? [config.r, inF] : [out, config.r];
      if (info.shape.length !== 2 || info.shape[0] !== want[0] || info.shape[1] !== want[1]) {
        throw mismatch(`shape [${info.shape.join(', ')}] but this model with r=${config.r} needs [${want.join(', ')}]`);
      }
      const values = toFloat32(file.readBytes(info), info.dtype as SafetensorsFloatDtype);
      const key = `${layer}.${module}`;
      const entry = halves.get(key) ?? { layer, module };
      entry[which] = values;
      halves.set(key, entry);
    }
    const layers: LoraFactors[] = [];
    for (const entry of halves.values()) {
      const missing = entry.A ? (entry.B ? null : 'B') : 'A';
      if (missing) {
        throw new ModelFileError(weightsFile, `lora_${missing} is missing for layer ${entry.layer} ${entry.module}`, {
          code: 'ADAPTER_MISMATCH',
        });
      }
      const [out, inF] = linearShape(dims, entry.module);
      layers.push({
        layer: entry.layer,
        module: entry.module,
        inFeatures: inF,
        outFeatures: out,
        rank: config.r,
        a: transpose(entry.A!, config.r, inF, 1),
        b: transpose(entry.B!, out, config.r, scaled ? scaling : 1),
      });
    }
    if (layers.length === 0) throw new ModelFileError(weightsFile, 'holds no LoRA tensors', { code: 'ADAPTER_MISMATCH' });
    const order = (m: LinearModule) => LINEAR_MODULES.indexOf(m);
    layers.sort((x, y) => x.layer - y.layer || order(x.module) - order(y.module));
    const targetModules = LINEAR_MODULES.filter((m) => layers.some((l) => l.module === m));
    return {
      name: basename(dir),
      dir,
      rank: config.r,
      alpha: config.lora_alpha,
      useRslora: config.use_rslora,
      scaling,
      scaled,
      targetModules,
      layers,
    };
  } finally {
    file.close();
  }
}

/** [rows, cols] → [cols, rows], times `factor`. */
function transpose(src: Float32Array, rows: number, cols: number, factor: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = src[r * cols + c]! * factor;
  }
  return out;
}
