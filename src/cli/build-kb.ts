/** `npm run build-kb -- --csv FILE --out kb.jsonl [--best-only]`: the degrade switch's knowledge base from a lawzhidao CSV. */
import { z } from 'zod';
import { CSV_INPUT_FLAGS, CSV_INPUT_SHAPE, CSV_INPUT_USAGE } from '../data/csv-flags.js';
import { parseFlags, runCli } from '../shared/cli.js';
import { buildKnowledgeBase } from '../data/knowledge-base.js';
import { startProgress, type Progress } from '../shared/progress.js';
import { formatDropped } from '../data/row-filter.js';

const USAGE = `usage: npm run build-kb -- --csv FILE --out FILE.jsonl [options]
${CSV_INPUT_USAGE}
  --out FILE.jsonl     knowledge base, one {id,title,question,reply} object per line`;

const FLAGS = { ...CSV_INPUT_FLAGS, out: { type: 'string' } } as const;

const Schema = z.object({
  ...CSV_INPUT_SHAPE,
  out: z
    .string({ error: 'is required' })
    .min(1, 'is required')
    .refine((p) => /\.(jsonl|ndjson)$/i.test(p), 'must end in .jsonl (the gateway loads .jsonl or .csv)'),
});

await runCli(USAGE, async (argv, signal) => {
  const flags = parseFlags(argv, FLAGS, Schema);
  let bar: Progress | undefined;
  try {
    const s = await buildKnowledgeBase({
      csv: flags.csv,
      out: flags.out,
      bestOnly: flags['best-only'],
      encoding: flags.encoding,
      signal,
      onProgress: (done, total) => {
        bar ??= startProgress('reading CSV', total, 'bytes');
        bar.update(done);
      },
    });
    bar?.stop();
    process.stdout.write(
      [
        `read ${s.rowsRead} rows from ${s.csv} (${s.encoding === 'gbk' ? 'GBK' : 'UTF-8'})`,
        `wrote ${s.entries} entries → ${s.out}${flags['best-only'] ? ' (best answers only)' : ''}`,
        ...formatDropped(s.dropped, s.malformedExamples),
      ].join('\n') + '\n',
    );
  } finally {
    bar?.stop();
  }
});
