/**
 * Command-line handling for the project's tools: node's `util.parseArgs` reads the flags, one
 * zod schema per command checks their values, and a mistake becomes AppError INVALID_REQUEST
 * naming the flag. `runCli` prints any AppError as one line with its code and exits 2 for
 * INVALID_REQUEST (the command was called wrongly; the usage follows when a flag is at fault)
 * and 1 for the rest; SIGINT/SIGTERM abort the signal it passes, so a command can clean
 * up (delete what it half-wrote) before it exits with 130.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { AppError } from './errors.js';

export type FlagSpec = Record<string, { type: 'string' | 'boolean' }>;

export function parseFlags<S extends z.ZodObject>(argv: string[], flags: FlagSpec, schema: S): z.infer<S> {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, options: flags, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const message = (err as Error).message.split('\n')[0]!;
    const flag = /'(--?[\w-]+)/.exec(message)?.[1] ?? null;
    throw new AppError('INVALID_REQUEST', message, { param: flag });
  }
  const result = schema.safeParse(values);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.map(String).join('.');
    const got = key && values[key] !== undefined ? ` (got ${JSON.stringify(values[key])})` : '';
    throw new AppError('INVALID_REQUEST', `${key ? `--${key}` : 'arguments'}: ${issue.message}${got}`, {
      param: key ? `--${key}` : null,
    });
  }
  return result.data;
}

/** A whole-number flag given as text (`--context 4096`). */
export function intFlag(min: number) {
  return z
    .string()
    .regex(/^\s*-?\d+\s*$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`));
}

/** A number flag given as text (`--dev-ratio 0.1`); empty text is refused (Number('') is 0). */
export function numberFlag() {
  return z
    .string()
    .regex(/^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/, 'expected a number')
    .transform(Number);
}

export async function runCli(usage: string, main: (argv: string[], signal: AbortSignal) => Promise<void>): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage.trimEnd()}\n`);
    return;
  }
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => controller.abort(new AppError('CANCELLED', `interrupted by ${sig}`));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await main(argv, controller.signal);
  } catch (err) {
    if (err instanceof AppError) {
      process.stderr.write(`error ${err.code}: ${err.message}\n`);
      if (err.code === 'INVALID_REQUEST' && err.param?.startsWith('--')) process.stderr.write(`${usage.trimEnd()}\n`);
      process.exitCode = err.code === 'INVALID_REQUEST' ? 2 : err.code === 'CANCELLED' ? 130 : 1;
      return;
    }
    process.stderr.write(`error INTERNAL: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
