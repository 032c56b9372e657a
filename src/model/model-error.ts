import type { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { readJsonFile } from '../shared/json-file.js';

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

/** A model input's JSON file checked against `schema`; every failure is a ModelFileError naming the file and key. */
export function readModelJson<S extends z.ZodType>(file: string, schema: S, missing: string): z.infer<S> {
  return readJsonFile(file, schema, { missing, fail: (f, detail) => new ModelFileError(f, detail) });
}
