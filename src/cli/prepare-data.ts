/** `npm run prepare-data -- --csv FILE --out DIR [...]`: lawzhidao CSV → ChatGLM3 finetune_demo train.json / dev.json. */
import { z } from 'zod';
import { CSV_INPUT_FLAGS, CSV_INPUT_SHAPE, CSV_INPUT_USAGE } from '../data/csv-flags.js';
import { numberFlag, parseFlags, runCli } from '../shared/cli.js';
import { DEFAULT_DEV_RATIO, DEFAULT_SEED, formatSummary, prepareData } from '../data/prepare-data.js';
import { startProgress, type Progress } from '../shared/progress.js';

const USAGE = `usage: npm run prepare-data -- --csv FILE --out DIR [options]
${CSV_INPUT_USAGE}
  --out DIR            writes train.json, dev.json and prepare-summary.json there
  --dev-size N         exactly N conversations in dev.json
  --dev-ratio R        share of conversations in dev.json, 0 < R < 1 (default ${DEFAULT_DEV_RATIO})
  --seed S             split seed, an integer (default ${DEFAULT_SEED})`;

const FLAGS = {
  ...CSV_INPUT_FLAGS,
  out: { type: 'string' },
  'dev-size': { type: 'string' },
  'dev-ratio': { type: 'string' },
  seed: { type: 'string' },
} as const;

const Schema = z
  .object({
    ...CSV_INPUT_SHAPE,
    out: z.string({ error: 'is required' }).min(1, 'is required'),
    'dev-size': numberFlag().pipe(z.number().int('must be a whole number').min(1, 'must be at least 1')).optional(),
    'dev-ratio': numberFlag().pipe(z.number().gt(0, 'must be above 0').lt(1, 'must be below 1')).optional(),
    seed: numberFlag().pipe(z.number().int('must be a whole number')).default(DEFAULT_SEED),
  })
  .refine((v) => v['dev-size'] === undefined || v['dev-ratio'] === undefined, {
    message: 'give --dev-size or --dev-ratio, not both',
    path: ['dev-ratio'],
  });

await runCli(USAGE, async (argv, signal) => {
  const flags = parseFlags(argv, FLAGS, Schema);
  const bars: Partial<Record<'read' | 'split', Progress>> = {};
  try {
    const summary = await prepareData({
      csv: flags.csv,
      outDir: flags.out,
      devSize: flags['dev-size'],
      devRatio: flags['dev-ratio'],
      seed: flags.seed,
      bestOnly: flags['best-only'],
      encoding: flags.encoding,
      signal,
      onProgress: (step, done, total) => {
        if (step === 'split') bars.read?.stop();
        bars[step] ??= startProgress(step === 'read' ? 'reading CSV' : 'splitting', total, step === 'read' ? 'bytes' : 'rows');
        bars[step].update(done);
      },
    });
    bars.split?.stop();
    process.stdout.write(formatSummary(summary) + '\n');
  } finally {
    bars.read?.stop();
    bars.split?.stop();
  }
});
