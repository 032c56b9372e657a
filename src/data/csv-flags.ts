/** The flags that prepare-data and build-kb share for reading a lawzhidao CSV (parsed by src/shared/cli.ts). */
import { z } from 'zod';

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
