/** The load test's command-line flags: parsed strictly, each bad one named in the error. */
import { parseArgs } from 'node:util';
import { z } from 'zod';

export const USAGE = 'usage: npm run load -- [--url http://127.0.0.1:8080] [--duration 30] [--connections 8] [--api-key K] [--stream] [--max-requests 100000] [--max-tokens 64] [--model chatglm3-6b]';

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const FlagsSchema = z.object({
  url: z
    .string()
    .default('http://127.0.0.1:8080')
    .transform((s, ctx) => {
      let u: URL;
      try {
        u = new URL(s);
      } catch {
        ctx.addIssue({ code: 'custom', message: 'is not a URL' });
        return z.NEVER;
      }
      if (u.protocol !== 'http:' && u.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: 'must be http:// or https://' });
      if (u.username || u.password) ctx.addIssue({ code: 'custom', message: 'must not carry credentials (use --api-key)' });
      if (u.pathname !== '/' || u.search || u.hash) ctx.addIssue({ code: 'custom', message: 'must be the gateway base URL, without a path' });
      return u.origin;
    }),
  duration: int(1, 3600).default(30),
  connections: int(1, 1024).default(8),
  'max-requests': int(1, 10_000_000).default(100_000),
  'max-tokens': int(1, 8192).default(64),
  'api-key': z.string().min(1, 'is empty').regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  model: z.string().min(1).default('chatglm3-6b'),
  stream: z.boolean().default(false),
});
export type LoadFlags = z.infer<typeof FlagsSchema>;

export function parseLoadFlags(argv: string[]): LoadFlags {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      url: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      'max-requests': { type: 'string' },
      'max-tokens': { type: 'string' },
      'api-key': { type: 'string' },
      model: { type: 'string' },
      stream: { type: 'boolean' },
    },
  });
  const parsed = FlagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`--${issue.path.join('.')} ${issue.message}`);
  }
  if (parsed.data['max-requests'] < parsed.data.connections) throw new Error('--max-requests must be at least --connections');
  return parsed.data;
}

