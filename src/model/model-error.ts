import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { AppError } from '../shared/errors.js';

/**
 * A model input that cannot be used: a checkpoint, config, adapter or tokenizer file. The
 * message is one line that names the file and, where there is one, the tensor at fault, so that
 * a CLI can print it as it is.
 */
export class ModelFileError extends AppError {
  readonly file: string;
  readonly tensor: string | undefined;

  constructor(
    file: string,
    message: string,
    options: { tensor?: string; code?: 'INVALID_MODEL_FILE' | 'ADAPTER_MISMATCH'; cause?: unknown } = {},
  ) {
    const where = options.tensor === undefined ? file : `${file}: tensor ${options.tensor}`;
    super(options.code ?? 'INVALID_MODEL_FILE', `${where}: ${message}`, {
      param: options.tensor ?? null,
      cause: options.cause,
    });
    this.name = 'ModelFileError';
    this.file = file;
    this.tensor = options.tensor;
  }
}

/**
 * Reads a JSON file and checks it against `schema`; every failure is a ModelFileError naming the
 * file (and the key at fault). `missing` says what an absent file means.
 */
export function readJsonFile<S extends z.ZodType>(file: string, schema: S, missing: string): z.infer<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelFileError(file, code === 'ENOENT' ? `missing: ${missing}` : `cannot read (${code})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ModelFileError(file, `not valid JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ModelFileError(file, `${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
