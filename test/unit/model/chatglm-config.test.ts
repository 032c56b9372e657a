import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkpointTensors, linearShape, readChatglmConfig } from '../../../src/model/chatglm-config.js';
import { ModelFileError } from '../../../src/model/model-error.js';
import { GOLDEN_TINY_DIR } from '../../helpers/paths.js';
import { readJson } from '../../helpers/json.js';

const golden = readJson<Record<string, unknown>>(join(GOLDEN_TINY_DIR, 'config.json'));
const work = mkdtempSync(join(tmpdir(), 'chatglm-config-'));
after(() => rmSync(work, { recursive: true, force: true }));
let n = 0;

function folder(config: unknown): string {
  const dir = join(work, `c${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

test('the golden config gives ChatGLM3 dimensions and tensor shapes', () => {
  const m = readChatglmConfig(GOLDEN_TINY_DIR);
  assert.equal(m.dims.num_kv_heads, 2);
  assert.equal(m.dims.rotary_dim, 16);
  assert.equal(m.dims.rms_norm_eps, 1e-5);
  assert.deepEqual(linearShape(m.dims, 'query_key_value'), [256, 128]);
  assert.deepEqual(linearShape(m.dims, 'dense_h_to_4h'), [512, 128]);
  assert.equal(checkpointTensors(m).length, 2 + 2 * 7 + 1);
});

test('chatglm3-6b sizes: 4608-wide QKV, 27392-wide h_to_4h, rope_ratio scales the base', () => {
  const dir = folder({
    ...golden,
    num_layers: 28,
    hidden_size: 4096,
    ffn_hidden_size: 13696,
    kv_channels: 128,
    num_attention_heads: 32,
    padded_vocab_size: 65024,
    rope_ratio: 50,
  });
  const m = readChatglmConfig(dir);
  assert.deepEqual(linearShape(m.dims, 'query_key_value'), [4608, 4096]);
  assert.deepEqual(linearShape(m.dims, 'dense_h_to_4h'), [27392, 4096]);
  assert.equal(m.dims.rope_base, 500000);
});

test('bad configs are refused with the file and the key', () => {
  const cases: Array<[unknown, RegExp]> = [
    ['{"num_layers": 2,', /config\.json: not valid JSON/],
    [[1, 2], /\(root\)/],
    [{ ...golden, num_layers: undefined }, /num_layers/],
    [{ ...golden, hidden_size: 'big' }, /hidden_size/],
    [{ ...golden, rmsnorm: false }, /rmsnorm: only RMSNorm/],
    [{ ...golden, add_bias_linear: true }, /add_bias_linear/],
    [{ ...golden, apply_residual_connection_post_layernorm: true }, /post-norm/],
    [{ ...golden, model_type: 'llama' }, /model_type/],
    [{ ...golden, kv_channels: 24 }, /kv_channels 24/],
    [{ ...golden, multi_query_group_num: 3 }, /does not divide/],
  ];
  for (const [config, pattern] of cases) {
    assert.throws(
      () => readChatglmConfig(folder(config)),
      (err: unknown) => err instanceof ModelFileError && err.message.includes('config.json') && pattern.test(err.message),
      String(pattern),
    );
  }
  assert.throws(() => readChatglmConfig(join(work, 'absent')), /config\.json: missing: not a Hugging Face model folder/);
});
