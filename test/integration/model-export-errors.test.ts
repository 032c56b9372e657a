/**
 * `npm run export` on bad input, as a real process: one clear line naming the file (and the
 * tensor), a non-zero exit code, and nothing left where the output would have gone.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportModel } from '../../src/model/export-model.js';
import { makeHfFolder, rawSafetensors } from '../helpers/hf-fixtures.js';
import { CLI_DIR, GOLDEN_TINY_DIR } from '../helpers/paths.js';
import { readJson } from '../helpers/json.js';

const work = mkdtempSync(join(tmpdir(), 'export-errors-'));
after(() => rmSync(work, { recursive: true, force: true }));
const ADAPTER = join(GOLDEN_TINY_DIR, 'lora-adapter');
let n = 0;

function runExport(args: string[]): { status: number | null; stderr: string; stdout: string; out: string } {
  const out = join(work, `out-${n++}`);
  const r = spawnSync(process.execPath, [join(CLI_DIR, 'export.js'), '--out', out, '--quiet', ...args], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout, out };
}

function runExportAsync(args: string[]): Promise<{ status: number | null; stderr: string; out: string }> {
  const out = join(work, `out-${n++}`);
  const child = spawn(process.execPath, [join(CLI_DIR, 'export.js'), '--out', out, '--quiet', ...args]);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stderr, out })));
}

/** Nothing at `out`, and no hidden temporary sibling left behind. */
function assertNothingWritten(out: string): void {
  assert.equal(existsSync(out), false, `${out} exists`);
  const leftovers = readdirSync(work).filter((f) => f.startsWith('.'));
  assert.deepEqual(leftovers, []);
}

function assertRefused(args: string[], patterns: RegExp[], status = 1): void {
  const r = runExport(args);
  assert.equal(r.status, status, r.stderr);
  const first = r.stderr.split('\n')[0]!;
  for (const p of patterns) assert.match(first, p);
  assertNothingWritten(r.out);
}

const hf = (name: string, options: Parameters<typeof makeHfFolder>[1] = {}) => makeHfFolder(join(work, name), options);
const QKV1 = 'transformer.encoder.layers.1.self_attention.query_key_value.weight';

test('a folder without config.json', () => {
  const dir = hf('no-config', { without: ['config.json'] });
  assertRefused(['--hf', dir], [/INVALID_MODEL_FILE/, /no-config\/config\.json: missing: not a Hugging Face model folder/]);
});

test('a pickle checkpoint says how to convert it to safetensors', () => {
  const dir = hf('pickle', { without: ['model.safetensors'] });
  writeFileSync(join(dir, 'pytorch_model.bin'), 'PK\x03\x04 not read');
  assertRefused(['--hf', dir], [/pickle\/pytorch_model\.bin: pickle checkpoints are not read/, /save_pretrained\('OUT', safe_serialization=True\)/]);
});

test('a missing tensor is named', () => {
  const dir = hf('missing', { tensors: (list) => list.filter((t) => t.name !== QKV1) });
  assertRefused(['--hf', dir], [new RegExp(`missing: tensor ${QKV1.replace(/\./g, '\\.')}: missing from the checkpoint`)]);
});

test('a misshapen tensor is named with both shapes', () => {
  const dir = hf('misshapen', {
    tensors: (list) =>
      list.map((t) => (t.name === QKV1 ? { ...t, shape: [128, 256] } : t)),
  });
  assertRefused(['--hf', dir], [/misshapen\/model\.safetensors: tensor transformer\.encoder\.layers\.1\.self_attention\.query_key_value\.weight: shape \[128, 256\] but the config needs \[256, 128\]/]);
});

test('a truncated safetensors file', () => {
  const dir = hf('truncated');
  const file = join(dir, 'model.safetensors');
  truncateSync(file, statSync(file).size - 1000);
  assertRefused(['--hf', dir], [/truncated\/model\.safetensors: tensor transformer\.output_layer\.weight: truncated/]);
});

test('a garbage safetensors header', () => {
  const dir = hf('garbage', { without: ['model.safetensors'] });
  writeFileSync(join(dir, 'model.safetensors'), Buffer.concat([Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('<html>oops</html>')]));
  assertRefused(['--hf', dir], [/garbage\/model\.safetensors: not a safetensors file \(its header is not JSON\)/]);
});

test('an unknown tensor dtype', () => {
  const dir = hf('dtype', { without: ['model.safetensors'] });
  rawSafetensors(join(dir, 'model.safetensors'), { 'transformer.embedding.word_embeddings.weight': { dtype: 'F4', shape: [768, 128], data_offsets: [0, 8] } }, new Uint8Array(8));
  assertRefused(['--hf', dir], [/dtype\/model\.safetensors: tensor transformer\.embedding\.word_embeddings\.weight: unknown dtype "F4"/]);
});

test('a non-float tensor where a weight belongs', () => {
  const dir = hf('int-weight', {
    tensors: (list) => list.map((t) => (t.name === QKV1 ? { ...t, dtype: 'I32' } : t)),
  });
  assertRefused(['--hf', dir], [/tensor transformer\.encoder\.layers\.1\.self_attention\.query_key_value\.weight: dtype I32 is not a float type/]);
});

test('a missing or garbage tokenizer.model', () => {
  const dir = hf('no-tokenizer', { without: ['tokenizer.model'] });
  assertRefused(['--hf', dir], [/no-tokenizer\/tokenizer\.model: missing/]);
  writeFileSync(join(dir, 'tokenizer.model'), Buffer.from('this is not a SentencePiece model'));
  assertRefused(['--hf', dir], [/INVALID_MODEL_FILE/, /no-tokenizer\/tokenizer\.model: not a SentencePiece model/]);
});

test('an adapter for another model: shapes, then target modules', () => {
  const big = join(work, 'big-adapter');
  mkdirSync(big);
  const config = readJson<Record<string, unknown>>(join(ADAPTER, 'adapter_config.json'));
  writeFileSync(join(big, 'adapter_config.json'), JSON.stringify(config));
  const name = 'base_model.model.transformer.encoder.layers.0.self_attention.query_key_value.lora_A.weight';
  rawSafetensors(join(big, 'adapter_model.safetensors'), { [name]: { dtype: 'F32', shape: [4, 4096], data_offsets: [0, 4 * 4096 * 4] } }, new Uint8Array(4 * 4096 * 4));
  for (const mode of ['merge', 'runtime']) {
    assertRefused(['--hf', GOLDEN_TINY_DIR, '--adapter', big, '--adapter-mode', mode], [
      /ADAPTER_MISMATCH/,
      /big-adapter\/adapter_model\.safetensors: tensor base_model\.model\.transformer\.encoder\.layers\.0\.self_attention\.query_key_value\.lora_A\.weight: shape \[4, 4096\] but this model with r=4 needs \[4, 128\]/,
    ]);
  }
  const other = join(work, 'llama-adapter');
  mkdirSync(other);
  writeFileSync(join(other, 'adapter_config.json'), JSON.stringify({ ...config, target_modules: ['q_proj', 'v_proj'] }));
  copyFileSync(join(ADAPTER, 'adapter_model.safetensors'), join(other, 'adapter_model.safetensors'));
  assertRefused(['--hf', GOLDEN_TINY_DIR, '--adapter', other], [/llama-adapter\/adapter_config\.json: target module q_proj is not a linear layer of ChatGLM3/]);
});

test('an adapter with only adapter_model.bin says how to convert it', () => {
  const dir = join(work, 'bin-adapter');
  mkdirSync(dir);
  copyFileSync(join(ADAPTER, 'adapter_config.json'), join(dir, 'adapter_config.json'));
  writeFileSync(join(dir, 'adapter_model.bin'), 'PK');
  assertRefused(['--hf', GOLDEN_TINY_DIR, '--adapter', dir], [/bin-adapter\/adapter_model\.bin: pickle adapters are not read/, /adapter_model\.safetensors/]);
});

test('bad flags exit 2 with the flag named and the usage', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['--hf', GOLDEN_TINY_DIR, '--dtype', 'bf16'], /--dtype: Invalid option: expected one of "fp32"\|"fp16" \(got "bf16"\)/],
    [['--hf', GOLDEN_TINY_DIR, '--context', '12x'], /--context: expected a whole number/],
    [['--hf', GOLDEN_TINY_DIR, '--lora-targets', 'q_proj', '--adapter-mode', 'runtime'], /--lora-targets: expected a comma-separated list/],
    [['--hf', GOLDEN_TINY_DIR, '--bogus'], /Unknown option '--bogus'/],
    [[], /--hf: is required/],
  ];
  // These fail before reading anything, so they can run side by side.
  const results = await Promise.all(cases.map(([args]) => runExportAsync(args)));
  results.forEach((r, i) => {
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr.split('\n')[0]!, cases[i]![1]);
    assert.match(r.stderr, /usage: npm run export/);
    assertNothingWritten(r.out);
  });
  const r = runExport(['--hf', GOLDEN_TINY_DIR, '--lora-targets', 'dense']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--lora-targets only applies with --adapter-mode runtime/);
});

test('an existing output folder is kept unless --force, which replaces it whole', () => {
  const out = join(work, 'existing');
  mkdirSync(out);
  writeFileSync(join(out, 'keep.txt'), 'mine');
  const run = (extra: string[]) =>
    spawnSync(process.execPath, [join(CLI_DIR, 'export.js'), '--hf', GOLDEN_TINY_DIR, '--out', out, '--quiet', ...extra], { encoding: 'utf8' });
  const refused = run([]);
  assert.equal(refused.status, 2);
  assert.match(refused.stderr, /existing: exists and is not empty \(use --force to replace it\)/);
  assert.equal(readFileSync(join(out, 'keep.txt'), 'utf8'), 'mine');
  const forced = run(['--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.match(forced.stdout, /wrote .*existing: chatglm3-tiny, 2 layers, fp32, logits last, adapter none/);
  assert.deepEqual(readdirSync(out).sort(), ['model.json', 'model.onnx', 'model.onnx.data', 'tokenizer.model']);
  assert.deepEqual(readdirSync(work).filter((f) => f.startsWith('.')), []);
});

test('a failure while weights are being written leaves nothing behind', async () => {
  const out = join(work, 'midway');
  let jobs = 0;
  await assert.rejects(
    exportModel({
      hfDir: GOLDEN_TINY_DIR,
      outDir: out,
      onProgress: () => {
        if (++jobs === 5) throw new Error('disk on fire');
      },
    }),
    /disk on fire/,
  );
  assert.ok(jobs >= 5);
  assertNothingWritten(out);
  const controller = new AbortController();
  controller.abort(new Error('stopped'));
  await assert.rejects(exportModel({ hfDir: GOLDEN_TINY_DIR, outDir: out, signal: controller.signal }), /stopped/);
  assertNothingWritten(out);
});
