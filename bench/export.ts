/**
 * `npm run bench:export [-- --skip-billion]`: export time and peak memory, and the accuracy of
 * the reduced-precision graphs.
 *
 * Cases, each export in a process of its own (peak RSS from getrusage, reported on exit):
 *   golden tiny (fp32)            test/fixtures/golden/chatglm3-tiny
 *   random ~1.1 B (fp32/fp16/int4) a seeded F16 checkpoint in ChatGLM3-6B's layout (vocab 65024,
 *                                 head size 128, 2 KV groups), written in shards to a temporary
 *                                 folder that is deleted afterwards
 * Ratios are taken within this run: peak RSS against the size of the weights written (the
 * exporter streams, so this falls as models grow), and fp16/int4 time against fp32.
 * Accuracy: the golden model exported fp32, fp16 and int4 (accuracy_level 4 and 0), run with
 * onnxruntime-node on the golden prompts: max absolute logit error against the reference over
 * every position, and how many of the 12 greedy tokens match.
 * Prints a table, then the same numbers as JSON.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BILLION_SHAPE, writeRandomCheckpoint } from '../src/model/demo-model.js';
import { exportModel, type ExportOptions } from '../src/model/export-model.js';
import { GOLDEN_TINY_DIR, PROJECT_ROOT } from '../test/helpers/paths.js';
import { greedy, logitsAt, maskRow, maxAbsDiff, openModel, runStep } from '../test/helpers/model-driver.js';
import { readTinyGolden } from '../test/helpers/golden-fixtures.js';

const { values } = parseArgs({ options: { 'skip-billion': { type: 'boolean', default: false } } });
const dir = mkdtempSync(join(tmpdir(), 'bench-export-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));

interface ExportRun {
  ms: number;
  maxRssMB: number;
  dataBytes: number;
}

function exportInChild(options: ExportOptions): Promise<ExportRun> {
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist/bench/export-child.js'), JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  return new Promise((resolve, reject) =>
    child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as ExportRun) : reject(new Error(`export failed (${code})`)))),
  );
}

const rows: Array<{ case: string; seconds: number; weightsMB: number; peakRssMB: number; rssPerWeight: number; underTwoGB: boolean }> = [];
const add = (name: string, r: ExportRun) =>
  rows.push({
    case: name,
    seconds: r.ms / 1000,
    weightsMB: r.dataBytes / 1e6,
    peakRssMB: r.maxRssMB,
    rssPerWeight: r.maxRssMB / (r.dataBytes / 1e6),
    underTwoGB: r.maxRssMB < 2048,
  });

add('golden tiny fp32', await exportInChild({ hfDir: GOLDEN_TINY_DIR, outDir: join(dir, 'tiny') }));
let checkpoint: { seconds: number; parameters: number; bytes: number } | undefined;
if (!values['skip-billion']) {
  const hf = join(dir, 'billion-hf');
  mkdirSync(hf);
  const t0 = performance.now();
  const ck = writeRandomCheckpoint(hf, BILLION_SHAPE, { seed: 1, dtype: 'F16', shardBytes: 1e9 });
  checkpoint = { seconds: (performance.now() - t0) / 1000, parameters: ck.parameters, bytes: ck.bytes };
  for (const [name, opts] of [
    ['1.1B fp32', { dtype: 'fp32' }],
    ['1.1B fp16', { dtype: 'fp16' }],
    ['1.1B int4', { quant: 'int4' }],
  ] as Array<[string, Partial<ExportOptions>]>) {
    const out = join(dir, 'billion-out');
    add(name, await exportInChild({ hfDir: hf, outDir: out, ...opts }));
    rmSync(out, { recursive: true, force: true });
  }
  rmSync(hf, { recursive: true, force: true });
}

// Accuracy of reduced precision on the golden model.
const expected = readTinyGolden();
const accuracy: Array<{ graph: string; maxAbsError: number; greedyMatch: string }> = [];
for (const [name, opts] of [
  ['fp32', {}],
  ['fp16', { dtype: 'fp16' }],
  ['int4 (accuracy_level 4)', { quant: 'int4' }],
  ['int4 (accuracy_level 0)', { quant: 'int4', int4Accuracy: 0 }],
  ['fp16 + int4', { dtype: 'fp16', quant: 'int4' }],
] as Array<[string, Partial<ExportOptions>]>) {
  const out = join(dir, `acc-${accuracy.length}`);
  await exportModel({ hfDir: GOLDEN_TINY_DIR, outDir: out, logits: 'all', ...opts });
  const model = await openModel(out);
  let worst = 0;
  let same = 0;
  let total = 0;
  for (const c of expected.base) {
    const res = await runStep(model, { ids: [c.input_ids], mask: [maskRow(c.input_ids.length, c.input_ids.length)] });
    c.logits_all_positions.forEach((ref, pos) => (worst = Math.max(worst, maxAbsDiff(logitsAt(res, 0, pos), ref))));
    const ids = await greedy(model, c.input_ids, c.greedy_ids.length);
    same += ids.filter((id, i) => id === c.greedy_ids[i]).length;
    total += c.greedy_ids.length;
  }
  await model.session.release();
  accuracy.push({ graph: name, maxAbsError: worst, greedyMatch: `${same}/${total}` });
}

const fp32 = rows.find((r) => r.case === '1.1B fp32');
const ratios = fp32
  ? {
      fp16TimeVsFp32: rows.find((r) => r.case === '1.1B fp16')!.seconds / fp32.seconds,
      int4TimeVsFp32: rows.find((r) => r.case === '1.1B int4')!.seconds / fp32.seconds,
      peakRss1BVsTiny: fp32.peakRssMB / rows[0]!.peakRssMB,
      weights1BVsTiny: fp32.weightsMB / rows[0]!.weightsMB,
    }
  : {};

console.log('export');
console.table(rows.map((r) => ({ ...r, seconds: +r.seconds.toFixed(2), weightsMB: +r.weightsMB.toFixed(1), peakRssMB: +r.peakRssMB.toFixed(0), rssPerWeight: +r.rssPerWeight.toFixed(3) })));
if (checkpoint) console.log(`random checkpoint: ${(checkpoint.parameters / 1e9).toFixed(2)} B parameters, ${(checkpoint.bytes / 1e9).toFixed(2)} GB F16, written in ${checkpoint.seconds.toFixed(1)} s`);
console.log('accuracy on the golden model (max |logit − reference|, greedy tokens matching)');
console.table(accuracy.map((a) => ({ ...a, maxAbsError: +a.maxAbsError.toExponential(2) })));
console.log(JSON.stringify({ export: rows, checkpoint, ratios, accuracy }, null, 2));
