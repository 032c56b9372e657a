/**
 * The demo model maker: its tokenizer loads in @sctg/sentencepiece-js and round-trips text; the
 * tiny preset exports and runs; seeds make it reproducible; ensureDemoModel builds once, replaces
 * foreign folders and survives a race; sharded F16 checkpoints export like single files; and
 * runtime LoRA on all four linear modules equals the same adapter merged.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { SentencePieceProcessor } from '@sctg/sentencepiece-js';
import { DEMO_LEGAL_TEXT } from '../../src/model/demo-corpus.js';
import type { ModelManifest } from '../../src/shared/model-manifest.js';
import { DEMO_PRESETS, ensureDemoModel, makeDemoModel, writeRandomAdapter, writeRandomCheckpoint } from '../../src/model/demo-model.js';
import { demoTokenizerBytes, trainDemoTokenizer } from '../../src/model/demo-tokenizer.js';
import { exportModel } from '../../src/model/export-model.js';
import { readPeftAdapter } from '../../src/model/peft-adapter.js';
import { Checkpoint, writeSafetensors } from '../../src/model/safetensors.js';
import { PieceType, decodeSentencePieceModel } from '../../src/tokenizer/sentencepiece-model.js';
import { CLI_DIR } from '../helpers/paths.js';
import { logitsAt, maskRow, maxAbsDiff, openModel, rightPadded, runStep, type Feeds, type OpenModel } from '../helpers/model-driver.js';
import { readJson } from '../helpers/json.js';

const work = mkdtempSync(join(tmpdir(), 'demo-model-'));
const opened: OpenModel[] = [];
after(async () => {
  for (const m of opened) await m.session.release();
  rmSync(work, { recursive: true, force: true });
});

async function open(dir: string): Promise<OpenModel> {
  const m = await openModel(dir);
  opened.push(m);
  return m;
}

const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

test('the demo tokenizer: ChatGLM3-style specs, common legal words as pieces, round trips in sentencepiece-js', async () => {
  const bytes = demoTokenizerBytes();
  assert.deepEqual(bytes, demoTokenizerBytes(), 'training is deterministic');
  const model = decodeSentencePieceModel(bytes);
  assert.deepEqual(model.pieces.slice(0, 3).map((p) => [p.piece, p.type]), [
    ['<unk>', PieceType.UNKNOWN],
    ['<s>', PieceType.CONTROL],
    ['</s>', PieceType.CONTROL],
  ]);
  assert.equal(model.pieces.filter((p) => p.type === PieceType.BYTE).length, 256);
  assert.equal(model.pieces[3]!.piece, '<0x00>');
  assert.equal(model.trainerSpec.byteFallback, true);
  assert.equal(model.trainerSpec.splitDigits, true);
  assert.equal(model.normalizerSpec.name, 'identity');
  const pieces = new Set(trainDemoTokenizer().pieces.map((p) => p.piece));
  for (const p of ['法', '合同', '劳动', '赔偿', '人民法院']) assert.ok(pieces.has(p), p);

  const sp = new SentencePieceProcessor();
  await sp.loadFromB64StringModel(Buffer.from(bytes).toString('base64'));
  const texts = [
    ...DEMO_LEGAL_TEXT.split('\n').filter((l) => l.trim() !== ''),
    'Hello, world 2024',
    '劳动仲裁 😀 鬱 — “引号”',
  ];
  let tokens = 0;
  let chars = 0;
  for (const text of texts) {
    const ids = sp.encodeIds(text);
    assert.equal(sp.decodeIds(Int32Array.from(ids)), text);
    assert.ok(ids.every((id) => id >= 0 && id < model.pieces.length));
    tokens += ids.length;
    chars += [...text].length;
  }
  assert.ok(tokens / chars < 0.8, `legal text should compress (${tokens} tokens for ${chars} characters)`);
  const emoji = sp.encodePieces('😀');
  assert.ok(emoji.includes('<0xF0>'), 'unknown characters fall back to bytes');
});

test('the tiny preset exports through the exporter and runs; its special tokens follow the pieces', async () => {
  const out = join(work, 'tiny');
  const result = await makeDemoModel(out, 'tiny');
  const spSize = decodeSentencePieceModel(readFileSync(join(out, 'tokenizer.model'))).pieces.length;
  const m = result.manifest;
  assert.equal(m.name, 'chatglm3-demo-tiny');
  assert.equal(m.dims.num_layers, DEMO_PRESETS.tiny.num_layers);
  assert.equal(m.dims.vocab_size % 64, 0);
  assert.ok(m.dims.vocab_size >= spSize + 9);
  assert.equal(m.tokenizer.special_tokens['[gMASK]'], spSize + 1);
  assert.deepEqual(m.tokenizer.stop_token_ids, [2, spSize + 6, spSize + 8]);
  assert.equal(m.logits, 'last');
  assert.equal(m.adapter.mode, 'runtime');
  const model = await open(out);
  const res = await runStep(model, rightPadded([[spSize + 1, spSize + 3, 300, 301], [spSize + 1, spSize + 3]]));
  assert.deepEqual((res.logits as ort.Tensor).dims, [2, 1, m.dims.vocab_size]);
  assert.ok([...logitsAt(res, 0, 0)].every(Number.isFinite));
});

test('the same seed gives the same weights; another seed other weights', async () => {
  await makeDemoModel(join(work, 'seed0'), 'tiny', { seed: 0, adapterMode: 'none' });
  await makeDemoModel(join(work, 'seed0-again'), 'tiny', { seed: 0, adapterMode: 'none' });
  await makeDemoModel(join(work, 'seed1'), 'tiny', { seed: 1, adapterMode: 'none' });
  assert.equal(sha(join(work, 'seed0/model.onnx.data')), sha(join(work, 'seed0-again/model.onnx.data')));
  assert.notEqual(sha(join(work, 'seed0/model.onnx.data')), sha(join(work, 'seed1/model.onnx.data')));
});

test('ensureDemoModel builds once, reuses, replaces a foreign folder, and survives a race', async () => {
  const dir = join(work, 'cache', 'tiny');
  const first = await ensureDemoModel(dir, 'tiny');
  const stamp = statSync(join(dir, 'model.onnx.data')).mtimeMs;
  const again = await ensureDemoModel(dir, 'tiny');
  assert.deepEqual(again, first);
  assert.equal(statSync(join(dir, 'model.onnx.data')).mtimeMs, stamp);

  const foreign = join(work, 'cache', 'foreign');
  mkdirSync(foreign, { recursive: true });
  writeFileSync(join(foreign, 'model.json'), '{"half": "written"');
  assert.equal((await ensureDemoModel(foreign, 'tiny')).name, 'chatglm3-demo-tiny');
  assert.deepEqual(readdirSync(foreign).sort(), ['model.json', 'model.onnx', 'model.onnx.data', 'tokenizer.model']);

  const raced = join(work, 'cache', 'raced');
  const results = await Promise.all([ensureDemoModel(raced, 'tiny'), ensureDemoModel(raced, 'tiny')]);
  assert.equal(results[0].name, results[1].name);
  assert.deepEqual(readdirSync(join(work, 'cache')).filter((f) => f.startsWith('.')), []);
});

test('a sharded F16 checkpoint exports exactly like the same weights in one file', async () => {
  const shape = DEMO_PRESETS.tiny;
  const single = join(work, 'f16-single');
  const sharded = join(work, 'f16-sharded');
  mkdirSync(single);
  mkdirSync(sharded);
  writeRandomCheckpoint(single, shape, { seed: 5, dtype: 'F16' });
  writeRandomCheckpoint(sharded, shape, { seed: 5, dtype: 'F16', shardBytes: 300_000 });
  assert.ok(readdirSync(sharded).filter((f) => f.endsWith('.safetensors')).length >= 3);
  assert.ok(readdirSync(sharded).includes('model.safetensors.index.json'));
  for (const dtype of ['fp32', 'fp16'] as const) {
    await exportModel({ hfDir: single, outDir: join(work, `single-${dtype}`), dtype, name: 'same' });
    await exportModel({ hfDir: sharded, outDir: join(work, `sharded-${dtype}`), dtype, name: 'same' });
    assert.equal(sha(join(work, `single-${dtype}/model.onnx.data`)), sha(join(work, `sharded-${dtype}/model.onnx.data`)));
  }
  // F16 into an fp16 graph moves raw half values; the same values stored as F32 go through
  // float conversion. Both must give the same bytes.
  const widened = join(work, 'f32-of-f16');
  mkdirSync(widened);
  for (const f of ['config.json', 'tokenizer.model']) copyFileSync(join(single, f), join(widened, f));
  const ckpt = Checkpoint.open(single);
  writeSafetensors(
    join(widened, 'model.safetensors'),
    ckpt.names().map((name) => {
      const values = ckpt.readAll(ckpt.info(name));
      return { name, dtype: 'F32', shape: ckpt.info(name).shape, write: (sink) => sink(new Uint8Array(values.buffer)) };
    }),
  );
  ckpt.close();
  await exportModel({ hfDir: widened, outDir: join(work, 'widened-fp16'), dtype: 'fp16', name: 'same' });
  assert.equal(sha(join(work, 'single-fp16/model.onnx.data')), sha(join(work, 'widened-fp16/model.onnx.data')));
});

test('runtime LoRA on all four linear modules equals the same adapter merged', async () => {
  const hf = join(work, 'lora-hf');
  mkdirSync(hf);
  const { vocab } = writeRandomCheckpoint(hf, DEMO_PRESETS.tiny, { seed: 3 });
  const adapterDir = join(work, 'all-modules');
  mkdirSync(adapterDir);
  const targets = ['query_key_value', 'dense', 'dense_h_to_4h', 'dense_4h_to_h'] as const;
  writeRandomAdapter(adapterDir, { ...DEMO_PRESETS.tiny, padded_vocab_size: vocab }, { rank: 6, targets: [...targets], useRslora: true });
  await exportModel({ hfDir: hf, outDir: join(work, 'lora-merged'), adapterDir, adapterMode: 'merge', logits: 'all' });
  await exportModel({ hfDir: hf, outDir: join(work, 'lora-runtime'), adapterDir, adapterMode: 'runtime', logits: 'all' });
  await exportModel({ hfDir: hf, outDir: join(work, 'lora-base'), logits: 'all' });
  const merged = await open(join(work, 'lora-merged'));
  const runtime = await open(join(work, 'lora-runtime'));
  const base = await open(join(work, 'lora-base'));
  if (runtime.manifest.adapter.mode !== 'runtime') throw new Error('runtime model expected');
  assert.equal(runtime.manifest.adapter.inputs.length, DEMO_PRESETS.tiny.num_layers * 4);

  const adapter = readPeftAdapter(adapterDir, runtime.manifest.dims);
  assert.equal(adapter.scaling, 12 / Math.sqrt(6));
  const feeds: Feeds = {};
  for (const inp of runtime.manifest.adapter.inputs) {
    const f = adapter.layers.find((l) => l.layer === inp.layer && l.module === inp.module)!;
    feeds[inp.a] = new ort.Tensor('float32', f.a, [1, inp.in_features, f.rank]);
    feeds[inp.b] = new ort.Tensor('float32', f.b, [1, f.rank, inp.out_features]);
  }
  const prompt = Array.from({ length: 24 }, (_, i) => 260 + ((i * 37) % 600));
  const step = { ids: [prompt], mask: [maskRow(prompt.length, prompt.length)] };
  const a = (await runStep(merged, step)).logits as ort.Tensor;
  const b = (await runStep(runtime, step, undefined, feeds)).logits as ort.Tensor;
  const c = (await runStep(base, step)).logits as ort.Tensor;
  assert.ok(maxAbsDiff(a.data as Float32Array, b.data as Float32Array) <= 1e-4);
  assert.ok(maxAbsDiff(a.data as Float32Array, c.data as Float32Array) > 1e-2, 'the adapter changes the model');
});

test('npm run demo-model writes the model and an adapter; a bad preset exits 2', () => {
  const out = join(work, 'cli-tiny');
  const adapter = join(work, 'cli-adapter');
  const ok = spawnSync(process.execPath, [join(CLI_DIR, 'demo-model.js'), '--preset', 'tiny', '--out', out, '--adapter-out', adapter, '--quiet'], {
    encoding: 'utf8',
  });
  assert.equal(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, /wrote .*cli-tiny: chatglm3-demo-tiny, 2 layers, hidden 128/);
  assert.deepEqual(readdirSync(adapter).sort(), ['adapter_config.json', 'adapter_model.safetensors']);
  const manifest = readJson<ModelManifest>(join(out, 'model.json'));
  assert.equal(readPeftAdapter(adapter, manifest.dims).rank, 8);
  const bad = spawnSync(process.execPath, [join(CLI_DIR, 'demo-model.js'), '--preset', 'huge', '--out', join(work, 'x')], { encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--preset: expected tiny or bench/);
});
