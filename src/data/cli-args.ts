/**
 * Command-line handling shared by the data tools: node's `util.parseArgs` reads the flags, one
 * zod schema per command checks their values, and every mistake becomes AppError
 * INVALID_ARGUMENT naming the flag at fault. `runCli` prints errors as one line with their code
 * and exits 2 for usage errors and 1 for the rest, never with a stack trace for known errors.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AppError } from '../shared/errors.js';

export type FlagSpec = Record<string, { type: 'string' | 'boolean' }>;

export function parseFlags<S extends z.ZodObject>(argv: string[], flags: FlagSpec, schema: S): z.infer<S> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message;
    const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? /(--?[\w-]+)/.exec(message)?.[1] ?? null;
    throw new AppError('INVALID_ARGUMENT', message.split('\n')[0]!, { param: flag });
  }
  const result = schema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.map(String).join('.');
    const flag = key ? `--${key}` : null;
    const got = key && values[key] !== undefined ? ` (got ${JSON.stringify(values[key])})` : '';
    throw new AppError('INVALID_ARGUMENT', `${flag ?? 'arguments'}: ${issue.message}${got}`, { param: flag });
  }
  return result.data;
}

/** A number flag given as text (`--limit 50`); rejects empty text, which Number() reads as 0. */
export function numberFlag() {
  return z
    .string()
    .trim()
    .min(1, 'expected a number')
    .transform((s, ctx) => {
      const n = Number(s);
      if (!Number.isFinite(n)) {
        ctx.addIssue({ code: 'custom', message: 'expected a number' });
        return z.NEVER;
      }
      return n;
    });
}

export async function runCli(usage: string, argv: string[], main: (argv: string[]) => Promise<void>): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage.trimEnd() + '\n');
    return;
  }
  try {
    await main(argv);
  } catch (err) {
    if (err instanceof AppError) {
      const where = err.param ? ` (${err.param})` : '';
      process.stderr.write(`error ${err.code}${where}: ${err.message}\n`);
      if (err.code === 'INVALID_ARGUMENT') process.stderr.write(usage.trimEnd() + '\n');
      process.exitCode = err.code === 'INVALID_ARGUMENT' ? 2 : 1;
      return;
    }
    process.stderr.write(`error INTERNAL: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  }
}

/** The flags that prepare-data and build-kb share for reading a lawzhidao CSV. */
export const CSV_INPUT_FLAGS = {
  csv: { type: 'string' },
  'best-only': { type: 'boolean' },
  encoding: { type: 'string' },
} as const;

export const CSV_INPUT_SHAPE = {
  csv: z.string({ error: 'is required' }).min(1, 'is required'),
  'best-only': z.boolean().default(false),
  encoding: z.enum(['utf8', 'gbk', 'auto']).default('auto'),
};

export const CSV_INPUT_USAGE = `  --csv FILE           lawzhidao CSV (title,question,reply,is_best)
  --best-only          keep only answers marked is_best=1
  --encoding E         utf8 | gbk | auto (default auto)`;
