/**
 * The data tools around the real gateway process: prepare-data and build-kb on the sample CSV,
 * the gateway (real process) with the knowledge base from build-kb and the protocol-level fake
 * worker of test/helpers, then eval --compare base against the adapter the worker reports.
 * The fake worker answers the same tokens for every model, so this checks the wiring (model
 * listing, base/adapter resolution, auth, the report's two columns), not a score difference;
 * the full end-to-end run with the tiny golden model needs the real worker.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../src/shared/net.js';
import type { EvalResult } from '../../src/data/evaluate.js';
import { CLI_DIR, PROJECT_ROOT } from '../helpers/paths.js';
import { startFakeWorker, type FakeWorker } from '../helpers/fake-worker-process.js';

const run = promisify(execFile);
const SAMPLE = join(PROJECT_ROOT, 'data/sample/lawzhidao-sample.csv');
const KEY = 'sk-eval-0123456789abcdef';
const dir = mkdtempSync(join(tmpdir(), 'eval-gateway-'));
let worker: FakeWorker | undefined;
let gateway: ChildProcess | undefined;

test.after(async () => {
  if (gateway && gateway.exitCode === null) {
    const exited = once(gateway, 'exit');
    gateway.kill('SIGTERM');
    await exited;
  }
  await worker?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function waitReady(url: string, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const res = await fetch(`${url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
      const body = (await res.json()) as { data?: Array<{ id: string }> };
      if (res.ok && body.data?.some((m) => m.id === 'law-lora')) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gateway at ${url} did not list the adapter within ${ms} ms`);
}

test('prepare-data + build-kb → gateway with a fake worker → eval --compare base: both columns', async () => {
  await run(process.execPath, [join(CLI_DIR, 'prepare-data.js'), '--csv', SAMPLE, '--out', join(dir, 'data'), '--dev-size', '6']);
  await run(process.execPath, [join(CLI_DIR, 'build-kb.js'), '--csv', SAMPLE, '--out', join(dir, 'kb.jsonl')]);

  worker = await startFakeWorker({ model: 'chatglm3-6b', adapters: ['law-lora'] });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  gateway = spawn(process.execPath, [join(CLI_DIR, 'gateway.js')], {
    env: {
      ...process.env,
      GATEWAY_PORT: String(port),
      GATEWAY_LOG_LEVEL: 'silent',
      GATEWAY_REDIS_URL: '',
      GATEWAY_WORKERS_URLS: worker.url,
      GATEWAY_AUTH_KEYS: JSON.stringify([{ sha256: createHash('sha256').update(KEY).digest('hex'), tenant: 'eval', tier: 'pro' }]),
      GATEWAY_KNOWLEDGE_BASE_PATH: join(dir, 'kb.jsonl'),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  gateway.stderr!.on('data', (d) => (stderr += d));
  await waitReady(url, 15_000).catch((err) => {
    throw new Error(`${(err as Error).message}\n${stderr}`);
  });

  const out = join(dir, 'report');
  const { stdout } = await run(
    process.execPath,
    [join(CLI_DIR, 'eval.js'), '--data', join(dir, 'data/dev.json'), '--url', url, '--api-key', KEY, '--adapter', 'law-lora', '--compare', 'base', '--out', out],
    { encoding: 'utf8' },
  );
  assert.match(stdout, /^6 conversations from /);

  const json = JSON.parse(readFileSync(join(out, 'eval-report.json'), 'utf8')) as EvalResult;
  // The base model comes from the adapter's `parent` in the gateway's /v1/models.
  assert.deepEqual(json.models.map((m) => [m.label, m.model, m.scored, m.failed]), [
    ['微调前', 'chatglm3-6b', 6, 0],
    ['微调后', 'law-lora', 6, 0],
  ]);
  // Every answer is the fake worker's scripted text, streamed through the gateway.
  for (const s of json.samples) for (const a of s.answers) assert.equal(a.answer, '根据《民法典》规定，借款应当按期归还。');
  const stats = await worker.stats();
  assert.equal(stats.completed, 12);
  assert.equal((stats.last as { adapter?: string } | null)?.adapter, 'law-lora');
  const md = readFileSync(join(out, 'eval-report.md'), 'utf8');
  assert.match(md, /\| 指标 metric \| 微调前 \(`chatglm3-6b`\) \| 微调后 \(`law-lora`\) \| 变化 Δ \|/);
  assert.match(md, /\| ROUGE-L \| (\d+\.\d\d) \| \1 \| \+0\.00 \|/);
});
