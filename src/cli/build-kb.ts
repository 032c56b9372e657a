/** `npm run build-kb -- --csv FILE --out kb.jsonl [--best-only]`: the degrade switch's knowledge base from a lawzhidao CSV. */
import { z } from 'zod';
import { parseFlags, runCli } from '../data/cli-args.js';
import { buildKnowledgeBase } from '../data/knowledge-base.js';
import { startProgress, type Progress } from '../data/progress.js';
import { formatDropped } from '../data/row-filter.js';

const USAGE = `usage: npm run build-kb -- --csv FILE --out FILE.jsonl [options]
  --csv FILE           lawzhidao CSV (title,question,reply,is_best)
  --out FILE.jsonl     knowledge base, one {id,title,question,reply} object per line
  --best-only          keep only answers marked is_best=1
  --encoding E         utf8 | gbk | auto (default auto)`;

const FLAGS = {
  csv: { type: 'string' },
  out: { type: 'string' },
  'best-only': { type: 'boolean' },
  encoding: { type: 'string' },
} as const;

const Schema = z.object({
  csv: z.string({ error: 'is required' }).min(1, 'is required'),
  out: z
    .string({ error: 'is required' })
    .min(1, 'is required')
    .refine((p) => /\.(jsonl|ndjson)$/i.test(p), 'must end in .jsonl (the gateway loads .jsonl or .csv)'),
  'best-only': z.boolean().default(false),
  encoding: z.enum(['utf8', 'gbk', 'auto']).default('auto'),
});

await runCli(USAGE, process.argv.slice(2), async (argv) => {
  const flags = parseFlags(argv, FLAGS, Schema);
  let bar: Progress | undefined;
  try {
    const s = await buildKnowledgeBase({
      csv: flags.csv,
      out: flags.out,
      bestOnly: flags['best-only'],
      encoding: flags.encoding,
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
