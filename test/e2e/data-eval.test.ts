/**
 * 准备数据 → 服务 → 验证, end to end with real processes: prepare-data on the sample CSV, the
 * golden tiny ChatGLM3 exported by the model builder with its LoRA adapter as a runtime adapter,
 * a real worker on it, the real gateway in front (knowledge base from build-kb), and
 * eval --compare base against the adapter. The tiny model has random weights, so the scores are
 * near zero; what is checked is the flow and the report: both columns, every answer generated
 * by the model, and the adapter changing the answers.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EvalResult } from '../../src/data/evaluate.js';
import { exportModel } from '../../src/model/export-model.js';
import { freePort } from '../../src/shared/net.js';
import { runCli } from '../helpers/cli.js';
import { CLI_DIR, GOLDEN_TINY_DIR, PROJECT_ROOT } from '../helpers/paths.js';
import { GOLDEN_ADAPTER_DIR, startWorker, type WorkerProcess } from '../helpers/worker-process.js';
import { readJson } from '../helpers/json.js';

const SAMPLE = join(PROJECT_ROOT, 'data/sample/lawzhidao-sample.csv');
const KEY = 'sk-e2e-eval-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'e2e-data-eval-'));
let worker: WorkerProcess | undefined;
let gateway: ChildProcess | undefined;
let gatewayUrl = '';

before(async () => {
  const prepared = await runCli('prepare-data', ['--csv', SAMPLE, '--out', join(dir, 'data'), '--dev-size', '4', '--seed', '3']);
  assert.equal(prepared.code, 0, prepared.stderr);
  const kb = await runCli('build-kb', ['--csv', SAMPLE, '--out', join(dir, 'kb.jsonl')]);
  assert.equal(kb.code, 0, kb.stderr);

  // The golden checkpoint with runtime LoRA inputs; a context long enough for Chinese prompts,
  // which the tiny tokenizer mostly spells out byte by byte.
  await exportModel({
    hfDir: GOLDEN_TINY_DIR,
    outDir: join(dir, 'model'),
    adapterDir: GOLDEN_ADAPTER_DIR,
    adapterMode: 'runtime',
    logits: 'last',
    context: 1024,
  });
  mkdirSync(join(dir, 'adapters'));
  symlinkSync(GOLDEN_ADAPTER_DIR, join(dir, 'adapters', 'legal'));
  worker = await startWorker({ WORKER_MODEL_DIR: join(dir, 'model'), WORKER_ADAPTERS_DIR: join(dir, 'adapters') });

  const port = await freePort();
  gatewayUrl = `http://127.0.0.1:${port}`;
  gateway = spawn(process.execPath, [join(CLI_DIR, 'gateway.js')], {
    env: {
      ...process.env,
      GATEWAY_PORT: String(port),
      GATEWAY_LOG_LEVEL: 'silent',
      GATEWAY_REDIS_URL: '',
      GATEWAY_WORKERS_URLS: worker.url,
      GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: createHash('sha256').update(KEY).digest('hex'), tenant: 'e2e', tier: 'pro' }]),
      GATEWAY_KNOWLEDGE_BASE_PATH: join(dir, 'kb.jsonl'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  gateway.stderr!.on('data', (d) => (stderr += d));
  const end = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${gatewayUrl}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
      const body = (await res.json()) as { data?: Array<{ id: string }> };
      if (res.ok && body.data?.some((m) => m.id === 'legal')) break;
    } catch {
      // not up yet
    }
    if (Date.now() > end) throw new Error(`the gateway did not list the adapter: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

after(async () => {
  if (gateway && gateway.exitCode === null) {
    const exited = once(gateway, 'exit');
    gateway.kill('SIGTERM');
    await exited;
  }
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('prepare-data → gateway + worker on the tiny golden model → eval --compare base: a report with both columns', async () => {
  const out = join(dir, 'report');
  const r = await runCli('eval', [
    '--data', join(dir, 'data/dev.json'),
    '--url', gatewayUrl,
    '--api-key', KEY,
    '--adapter', 'legal',
    '--compare', 'base',
    '--max-tokens', '12',
    '--out', out,
  ]);
  assert.equal(r.code, 0, r.stderr);

  const json = readJson<EvalResult>(join(out, 'eval-report.json'));
  assert.deepEqual(json.models.map((m) => [m.label, m.model, m.scored, m.failed]), [
    ['微调前', 'chatglm3-tiny', 4, 0],
    ['微调后', 'legal', 4, 0],
  ]);
  for (const m of json.models) {
    for (const v of Object.values(m.scores)) assert.ok(Number.isFinite(v) && v >= 0 && v <= 100);
  }
  // The golden adapter changes greedy generation (see expected.json: base and with_lora differ).
  const differs = json.samples.filter((s) => s.answers[0]!.answer !== s.answers[1]!.answer);
  assert.ok(differs.length >= 1, JSON.stringify(json.samples.map((s) => s.answers.map((a) => a.answer))));
  // The fallback never answered: these are the model's own words.
  assert.deepEqual(json.models.map((m) => m.degraded), [0, 0]);
  for (const s of json.samples) for (const a of s.answers) assert.equal(typeof a.answer, 'string');

  const md = readFileSync(join(out, 'eval-report.md'), 'utf8');
  assert.match(md, /\| 指标 metric \| 微调前 \(`chatglm3-tiny`\) \| 微调后 \(`legal`\) \| 变化 Δ \|/);
  for (const name of ['BLEU-4', 'ROUGE-1', 'ROUGE-2', 'ROUGE-L']) assert.match(md, new RegExp(`\\| ${name} \\| \\d+\\.\\d\\d \\| \\d+\\.\\d\\d \\| [+-]\\d+\\.\\d\\d \\|`));
  const svg = readFileSync(join(out, 'eval-chart.svg'), 'utf8');
  assert.match(svg, />微调前 \/ 微调后</);
  assert.equal((svg.match(/<rect [^>]*><title>/g) ?? []).length, 8);
});
