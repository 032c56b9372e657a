import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readChatglmConfig } from '../../../src/model/chatglm-config.js';
import { ModelFileError } from '../../../src/model/model-error.js';
import { loraScaling, readPeftAdapter } from '../../../src/model/peft-adapter.js';
import { Checkpoint, writeSafetensors } from '../../../src/model/safetensors.js';
import { AppError } from '../../../src/shared/errors.js';
import { GOLDEN_TINY_DIR } from '../../helpers/paths.js';
import { readJson } from '../../helpers/json.js';

const GOLDEN_ADAPTER = join(GOLDEN_TINY_DIR, 'lora-adapter');
const dims = readChatglmConfig(GOLDEN_TINY_DIR).dims;
const goldenConfig = readJson<Record<string, unknown>>(join(GOLDEN_ADAPTER, 'adapter_config.json'));
const work = mkdtempSync(join(tmpdir(), 'peft-'));
after(() => rmSync(work, { recursive: true, force: true }));

const PREFIX = 'base_model.model.transformer.encoder.layers';
let n = 0;

function f32(name: string, shape: number[], fill = 0.5) {
  const bytes = new Uint8Array(new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill).buffer);
  return { name, dtype: 'F32', shape, write: (sink: (c: Uint8Array) => void) => sink(bytes) };
}

/** An adapter folder with the golden config (changed as asked) and the given tensors. */
function adapter(config: Record<string, unknown> = {}, tensors?: ReturnType<typeof f32>[]): string {
  const dir = join(work, `a${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify({ ...goldenConfig, ...config }));
  if (tensors) writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  else copyFileSync(join(GOLDEN_ADAPTER, 'adapter_model.safetensors'), join(dir, 'adapter_model.safetensors'));
  return dir;
}

test('reads the golden adapter in graph layout: a = Aᵀ, b = scaling · Bᵀ', () => {
  const a = readPeftAdapter(GOLDEN_ADAPTER, dims);
  assert.equal(a.name, 'lora-adapter');
  assert.deepEqual([a.rank, a.alpha, a.scaling, a.scaled], [4, 8, 2, true]);
  assert.deepEqual(a.targetModules, ['query_key_value']);
  assert.deepEqual(a.layers.map((l) => [l.layer, l.module, l.inFeatures, l.outFeatures, l.rank]), [
    [0, 'query_key_value', 128, 256, 4],
    [1, 'query_key_value', 128, 256, 4],
  ]);
  const ckpt = Checkpoint.open(GOLDEN_ADAPTER);
  const A = ckpt.readAll(ckpt.info(`${PREFIX}.1.self_attention.query_key_value.lora_A.weight`)); // [4, 128]
  const B = ckpt.readAll(ckpt.info(`${PREFIX}.1.self_attention.query_key_value.lora_B.weight`)); // [256, 4]
  ckpt.close();
  const l1 = a.layers[1]!;
  assert.equal(l1.a[5 * 4 + 3], A[3 * 128 + 5]);
  assert.equal(l1.b[2 * 256 + 17], 2 * B[17 * 4 + 2]!);
  const raw = readPeftAdapter(GOLDEN_ADAPTER, dims, { scaled: false });
  assert.equal(raw.scaled, false);
  assert.equal(raw.layers[1]!.b[2 * 256 + 17], B[17 * 4 + 2]);
});

test('scaling: alpha / r, or alpha / √r with use_rslora', () => {
  assert.equal(loraScaling(8, 4, false), 2);
  assert.equal(loraScaling(8, 4, true), 4);
  assert.equal(readPeftAdapter(adapter({ use_rslora: true }), dims).scaling, 4);
});

test('other target modules are read with their own shapes', () => {
  const dir = adapter({ target_modules: ['dense', 'dense_4h_to_h'], r: 2 }, [
    f32(`${PREFIX}.0.self_attention.dense.lora_A.weight`, [2, 128]),
    f32(`${PREFIX}.0.self_attention.dense.lora_B.weight`, [128, 2]),
    f32(`${PREFIX}.1.mlp.dense_4h_to_h.lora_A.default.weight`, [2, 256]),
    f32(`${PREFIX}.1.mlp.dense_4h_to_h.lora_B.default.weight`, [128, 2]),
  ]);
  const a = readPeftAdapter(dir, dims);
  assert.deepEqual(a.targetModules, ['dense', 'dense_4h_to_h']);
  assert.deepEqual(a.layers.map((l) => [l.layer, l.module, l.inFeatures, l.outFeatures]), [
    [0, 'dense', 128, 128],
    [1, 'dense_4h_to_h', 256, 128],
  ]);
});

function refused(dir: string, pattern: RegExp, code: 'INVALID_MODEL_FILE' | 'ADAPTER_MISMATCH' = 'ADAPTER_MISMATCH'): void {
  assert.throws(
    () => readPeftAdapter(dir, dims),
    (err: unknown) => err instanceof ModelFileError && err instanceof AppError && err.code === code && pattern.test(err.message),
  );
}

test('adapters that do not fit the model are refused with ADAPTER_MISMATCH naming the tensor', () => {
  refused(adapter({ target_modules: ['query_key_value', 'c_attn'] }), /target module c_attn is not a linear layer/);
  refused(
    adapter({ r: 4 }, [
      f32(`${PREFIX}.0.self_attention.query_key_value.lora_A.weight`, [4, 4096]),
      f32(`${PREFIX}.0.self_attention.query_key_value.lora_B.weight`, [4608, 4]),
    ]),
    /tensor base_model\.model\.transformer\.encoder\.layers\.0\.self_attention\.query_key_value\.lora_A\.weight: shape \[4, 4096\] but this model with r=4 needs \[4, 128\]/,
  );
  refused(
    adapter({}, [
      f32(`${PREFIX}.27.self_attention.query_key_value.lora_A.weight`, [4, 128]),
      f32(`${PREFIX}.27.self_attention.query_key_value.lora_B.weight`, [256, 4]),
    ]),
    /layer 27 but the model has 2 layers/,
  );
  refused(
    adapter({}, [f32(`${PREFIX}.0.self_attention.query_key_value.lora_A.weight`, [4, 128])]),
    /lora_B is missing for layer 0 query_key_value/,
  );
  refused(adapter({}, [f32(`${PREFIX}.0.mlp.dense_h_to_4h.lora_A.weight`, [4, 128])]), /dense_h_to_4h is not among target_modules/);
  refused(adapter({}, [f32('model.layers.0.self_attn.q_proj.lora_A.weight', [4, 128])]), /not a LoRA tensor of a ChatGLM3 layer/);
  refused(adapter({}, []), /holds no LoRA tensors/);
});

test('bad adapter folders are refused with INVALID_MODEL_FILE', () => {
  refused(join(work, 'nowhere'), /adapter_config\.json: missing/, 'INVALID_MODEL_FILE');
  const binOnly = join(work, 'bin-only');
  mkdirSync(binOnly);
  writeFileSync(join(binOnly, 'adapter_config.json'), JSON.stringify(goldenConfig));
  writeFileSync(join(binOnly, 'adapter_model.bin'), 'PK');
  refused(binOnly, /adapter_model\.bin: pickle adapters are not read .*save_file\(torch\.load\('adapter_model\.bin'/, 'INVALID_MODEL_FILE');
  const noWeights = join(work, 'no-weights');
  mkdirSync(noWeights);
  writeFileSync(join(noWeights, 'adapter_config.json'), JSON.stringify(goldenConfig));
  refused(noWeights, /adapter_model\.safetensors: missing/, 'INVALID_MODEL_FILE');
  const badJson = adapter();
  writeFileSync(join(badJson, 'adapter_config.json'), '{"r": 4,');
  refused(badJson, /not valid JSON/, 'INVALID_MODEL_FILE');
  refused(adapter({ peft_type: 'PREFIX_TUNING' }), /peft_type: only LoRA adapters/, 'INVALID_MODEL_FILE');
  refused(adapter({ r: 0 }), /adapter_config\.json: r:/, 'INVALID_MODEL_FILE');
  refused(adapter({ use_dora: true }), /DoRA/, 'INVALID_MODEL_FILE');
  refused(adapter({ fan_in_fan_out: true }), /fan_in_fan_out/, 'INVALID_MODEL_FILE');
  refused(adapter({ rank_pattern: { dense: 8 } }), /rank_pattern/, 'INVALID_MODEL_FILE');
  const garbage = adapter();
  writeFileSync(join(garbage, 'adapter_model.safetensors'), 'not a safetensors file at all');
  refused(garbage, /adapter_model\.safetensors: not a safetensors file/, 'INVALID_MODEL_FILE');
});
