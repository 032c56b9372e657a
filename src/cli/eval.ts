/**
 * `npm run eval -- --data dev.json --url http://localhost:8080 [...]`: BLEU-4 / ROUGE before and after fine-tuning.
 * `npm run eval -- --score answers.jsonl [--out DIR]`: the same scores for answers one already has, no service.
 */
import { mkdir } from 'node:fs/promises';
import { z } from 'zod';
import { numberFlag, parseFlags, runCli } from '../shared/cli.js';
import { readEvalSamples } from '../data/conversations.js';
import { writeReport, writeScoreReport } from '../data/eval-report.js';
import { evaluate, type EvalModel } from '../data/evaluate.js';
import { METRICS } from '../data/metrics.js';
import { readScoreCases, scoreCases } from '../data/score-file.js';
import { startProgress, type Progress } from '../shared/progress.js';
import { AppError } from '../shared/errors.js';

const USAGE = `usage: npm run eval -- --data dev.json --url URL [options]
       npm run eval -- --score answers.jsonl [--out DIR]
  --score FILE         score answers you already have, one {"prediction", "reference"} per line (no service;
                       only --out goes with it)
  --data FILE          finetune_demo JSONL (dev.json from prepare-data)
  --url URL            the running service (OpenAI-compatible), e.g. http://localhost:8080
  --adapter NAME       model to evaluate ("微调后"); default: the base model
  --compare MODEL      also evaluate MODEL ("微调前"); "base" = the base model of /v1/models
  --limit N            only the first N conversations
  --api-key KEY        bearer key for the service (default: $EVAL_API_KEY)
  --out DIR            where eval-report.md / .json and eval-chart.svg go (default data/out/eval)
  --max-tokens N       answer length limit (default 512)
  --concurrency N      requests in flight (default 2)
  --timeout-ms N       per request (default 120000)`;

const FLAGS = {
  data: { type: 'string' },
  url: { type: 'string' },
  adapter: { type: 'string' },
  compare: { type: 'string' },
  limit: { type: 'string' },
  'api-key': { type: 'string' },
  out: { type: 'string' },
  'max-tokens': { type: 'string' },
  concurrency: { type: 'string' },
  'timeout-ms': { type: 'string' },
} as const;

const positiveInt = () => numberFlag().pipe(z.number().int('must be a whole number').min(1, 'must be at least 1'));

const Schema = z.object({
  data: z.string({ error: 'is required' }).min(1, 'is required'),
  url: z
    .string({ error: 'is required' })
    .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http(s) URL'),
  adapter: z.string().min(1, 'must not be empty').optional(),
  compare: z.string().min(1, 'must not be empty').optional(),
  limit: positiveInt().optional(),
  'api-key': z.string().optional(),
  out: z.string().min(1).default('data/out/eval'),
  'max-tokens': positiveInt().default(512),
  concurrency: positiveInt().pipe(z.number().max(64, 'must be at most 64')).default(2),
  'timeout-ms': positiveInt().default(120_000),
});

const SCORE_FLAGS = { score: FLAGS.data, out: FLAGS.out } as const;

const ScoreSchema = z.object({
  score: z.string().min(1, 'is required'),
  out: Schema.shape.out,
});

const isFlag = (arg: string, name: string) => arg === `--${name}` || arg.startsWith(`--${name}=`);

async function makeOutDir(out: string): Promise<void> {
  await mkdir(out, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
    throw new AppError('INVALID_REQUEST', `--out: cannot create ${out}: ${err.code ?? err.message}`, { param: '--out' });
  });
}

/** `--score`: the file's answers scored, no service asked. */
async function score(argv: string[]): Promise<void> {
  const serviceFlag = Object.keys(FLAGS).find((name) => name !== 'out' && argv.some((a) => isFlag(a, name)));
  if (serviceFlag) {
    throw new AppError('INVALID_REQUEST', `--${serviceFlag}: not used with --score (the file holds the answers; only --out goes with it)`, { param: `--${serviceFlag}` });
  }
  const flags = parseFlags(argv, SCORE_FLAGS, ScoreSchema);
  const cases = await readScoreCases(flags.score);
  await makeOutDir(flags.out);
  const result = scoreCases(flags.score, cases);
  const paths = await writeScoreReport(result, flags.out);
  const lines = [
    `${cases.length} answers from ${flags.score}`,
    'metric\tscore',
    ...METRICS.map((k) => `${k}\t${result.scores[k].toFixed(2)}`),
    `report: ${paths.markdown}`,
    `json:   ${paths.json}`,
    `chart:  ${paths.chart}`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await runCli(USAGE, async (argv, signal) => {
  if (argv.some((a) => isFlag(a, 'score'))) return score(argv);
  const flags = parseFlags(argv, FLAGS, Schema);
  let skipped = 0;
  const samples = await readEvalSamples(flags.data, {
    limit: flags.limit,
    onSkip: (s) => {
      skipped++;
      process.stderr.write(`${flags.data} line ${s.line}: skipped: ${s.message}\n`);
    },
  });
  await makeOutDir(flags.out);
  const bars = new Map<string, Progress>();
  const barOf = (m: EvalModel, total: number) => {
    let bar = bars.get(m.label);
    if (!bar) {
      for (const b of bars.values()) b.stop();
      bar = startProgress(m.label, total, 'rows');
      bars.set(m.label, bar);
    }
    return bar;
  };
  try {
    const result = await evaluate({
      url: flags.url,
      data: flags.data,
      samples,
      adapter: flags.adapter,
      compare: flags.compare,
      apiKey: flags['api-key'] ?? process.env.EVAL_API_KEY,
      maxTokens: flags['max-tokens'],
      concurrency: flags.concurrency,
      timeoutMs: flags['timeout-ms'],
      signal,
      onProgress: (m, done, total) => barOf(m, total).update(done),
    });
    for (const b of bars.values()) b.stop();
    const paths = await writeReport(result, flags.out);
    const header = ['metric', ...result.models.map((m) => `${m.label} ${m.model}`)];
    const lines = [
      `${samples.length} conversations from ${flags.data}${skipped ? ` (${skipped} bad lines skipped)` : ''}`,
      header.join('\t'),
      ...METRICS.map((k) => [k, ...result.models.map((m) => m.scores[k].toFixed(2))].join('\t')),
      ['failed', ...result.models.map((m) => String(m.failed))].join('\t'),
      ['fallback', ...result.models.map((m) => String(m.degraded))].join('\t'),
      `report: ${paths.markdown}`,
      `json:   ${paths.json}`,
      `chart:  ${paths.chart}`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    for (const b of bars.values()) b.stop();
  }
});
