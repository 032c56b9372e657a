/**
 * Reading a JSON file that comes from outside (a model manifest, an adapter config, a checkpoint
 * index, canned answers, a config file): read, parse, check against a schema, and on any failure
 * one line that names the file and the key at fault. Each caller says what its failure is (an
 * AppError with its code, a ConfigError) through `fail`.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';

export interface JsonFileOptions {
  /** What an absent file means, for the message (`missing: <this>`); absent: "cannot be read (ENOENT)". */
  missing?: string;
  /** Makes the error to throw from the file and what is wrong with it; default: an Error `<file>: <detail>`. */
  fail?: (file: string, detail: string) => Error;
}

export function readJsonFile<S extends z.ZodType>(file: string, schema: S, options: JsonFileOptions = {}): z.infer<S> {
  const fail = options.fail ?? ((f: string, detail: string) => new Error(`${f}: ${detail}`));
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw fail(file, code === 'ENOENT' && options.missing ? `missing: ${options.missing}` : `cannot be read (${code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw fail(file, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw fail(file, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
