/**
 * The load test's command-line flags: parsed strictly (node's parseArgs, then one zod schema),
 * each bad one named in the error. Combinations that cannot work (two arrival modes, chaos on a
 * remote target, ...) are refused here too, before anything is started or sent.
 */
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { CHAOS_ACTIONS, type ChaosAction } from './chaos.js';

export const USAGE = `usage: npm run load -- [options]
  target     --url http://127.0.0.1:8080 | --local [--workers 2] [--engine sim|onnx] [--nice 10] [--chaos ACTION@S,...]
  arrivals   --connections 8 (closed loop) | --rate R [--burstiness 1] | --sweep R1,R2,...
  bounds     --duration 30 (s per stage) --max-requests 100000 --drain 30 (s) --timeout 120 (s per request)
  prompts    the built-in mix, or --dataset FILE (finetune_demo JSONL); --max-tokens 64 --model chatglm3-6b --stream
  measures   --slo ttft=800,tpot=120 (ms) --seed 1
  output     --json FILE --report FILE.html --api-key K
  chaos      ${CHAOS_ACTIONS.join(', ')}`;

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'expected a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const positive = (max: number) =>
  z
    .string()
    .regex(/^(\d+\.?\d*|\.\d+)$/, 'expected a positive number')
    .transform(Number)
    .pipe(z.number().gt(0, 'must be more than 0').max(max, `must be at most ${max}`));

const MAX_RATE = 100_000;

export const SLO_KEYS = ['ttft', 'tpot', 'itl', 'e2e'] as const;
export type SloKey = (typeof SLO_KEYS)[number];
export type Slo = Partial<Record<SloKey, number>>;

export interface ChaosEvent {
  atS: number;
  action: ChaosAction;
}

const FlagsSchema = z.object({
  url: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined) return undefined;
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
  local: z.boolean().default(false),
  workers: int(1, 16).optional(),
  engine: z.enum(['sim', 'onnx'], { message: 'must be sim or onnx' }).optional(),
  nice: int(0, 19).optional(),
  chaos: z
    .string()
    .optional()
    .transform((s, ctx): ChaosEvent[] => {
      if (s === undefined) return [];
      const events: ChaosEvent[] = [];
      for (const part of s.split(',')) {
        const m = /^([a-z-]+)@(\d+(?:\.\d+)?)$/.exec(part.trim());
        if (!m) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not ACTION@SECONDS (e.g. kill-worker@10)` });
          return z.NEVER;
        }
        if (!(CHAOS_ACTIONS as readonly string[]).includes(m[1]!)) {
          ctx.addIssue({ code: 'custom', message: `"${m[1]}" is not an action (${CHAOS_ACTIONS.join(', ')})` });
          return z.NEVER;
        }
        events.push({ action: m[1] as ChaosAction, atS: Number(m[2]) });
      }
      return events.sort((a, b) => a.atS - b.atS);
    }),
  connections: int(1, 1024).optional(),
  rate: positive(MAX_RATE).optional(),
  burstiness: positive(100).optional(),
  sweep: z
    .string()
    .optional()
    .transform((s, ctx) => {
      if (s === undefined) return undefined;
      const rates = s.split(',').map((r) => r.trim());
      const out: number[] = [];
      for (const r of rates) {
        const n = /^(\d+\.?\d*|\.\d+)$/.test(r) ? Number(r) : Number.NaN;
        if (!(n > 0 && n <= MAX_RATE)) {
          ctx.addIssue({ code: 'custom', message: `"${r}" is not a rate in (0, ${MAX_RATE}] requests/s` });
          return z.NEVER;
        }
        out.push(n);
      }
      if (out.length > 20) {
        ctx.addIssue({ code: 'custom', message: 'takes at most 20 rates' });
        return z.NEVER;
      }
      return out;
    }),
  duration: positive(3600).default(30),
  'max-requests': int(1, 10_000_000).default(100_000),
  drain: positive(600).default(30),
  timeout: positive(3600).default(120),
  'max-tokens': int(1, 8192).default(64),
  dataset: z.string().min(1, 'is empty').optional(),
  'api-key': z.string().min(1, 'is empty').regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional(),
  model: z.string().min(1, 'is empty').default('chatglm3-6b'),
  stream: z.boolean().default(false),
  slo: z
    .string()
    .default('ttft=800,tpot=120')
    .transform((s, ctx): Slo => {
      const slo: Slo = {};
      for (const part of s.split(',')) {
        const m = /^([a-z0-9]+)=(\d+(?:\.\d+)?)$/.exec(part.trim());
        if (!m || !(SLO_KEYS as readonly string[]).includes(m[1]!) || !(Number(m[2]) > 0)) {
          ctx.addIssue({ code: 'custom', message: `"${part}" is not KEY=MS with KEY one of ${SLO_KEYS.join(', ')} and MS above 0` });
          return z.NEVER;
        }
        slo[m[1] as SloKey] = Number(m[2]);
      }
      return slo;
    }),
  seed: int(0, 2 ** 31).default(1),
  json: z.string().min(1, 'is empty').optional(),
  report: z.string().min(1, 'is empty').regex(/\.html?$/i, 'must name an .html file').optional(),
});

export type Arrivals = { kind: 'closed'; connections: number } | { kind: 'open'; rates: number[]; burstiness: number };

export interface LoadFlags {
  /** The gateway's origin; with --local, filled in once the local gateway listens. */
  url: string;
  local: { workers: number; engine: 'sim' | 'onnx'; nice: number; chaos: ChaosEvent[] } | null;
  arrivals: Arrivals;
  durationS: number;
  maxRequests: number;
  drainS: number;
  timeoutS: number;
  maxTokens: number;
  dataset: string | undefined;
  apiKey: string | undefined;
  model: string;
  stream: boolean;
  slo: Slo;
  seed: number;
  json: string | undefined;
  report: string | undefined;
}

const OPTIONS = {
  url: { type: 'string' },
  local: { type: 'boolean' },
  workers: { type: 'string' },
  engine: { type: 'string' },
  nice: { type: 'string' },
  chaos: { type: 'string' },
  connections: { type: 'string' },
  rate: { type: 'string' },
  burstiness: { type: 'string' },
  sweep: { type: 'string' },
  duration: { type: 'string' },
  'max-requests': { type: 'string' },
  drain: { type: 'string' },
  timeout: { type: 'string' },
  'max-tokens': { type: 'string' },
  dataset: { type: 'string' },
  'api-key': { type: 'string' },
  model: { type: 'string' },
  stream: { type: 'boolean' },
  slo: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'string' },
  report: { type: 'string' },
} as const;

export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** Parses argv; throws an Error whose message starts with the flag at fault. */
export function parseLoadFlags(argv: string[]): LoadFlags {
  let values: Record<string, unknown>;
  try {
    values = parseArgs({ args: argv, strict: true, allowPositionals: false, options: OPTIONS }).values;
  } catch (err) {
    throw new Error((err as Error).message.split('\n')[0]!);
  }
  const parsed = FlagsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`--${issue.path.join('.')} ${issue.message}`);
  }
  const f = parsed.data;
  const modes = (['connections', 'rate', 'sweep'] as const).filter((k) => f[k] !== undefined);
  if (modes.length > 1) throw new Error(`--${modes[1]} cannot be combined with --${modes[0]} (one arrival mode per run)`);
  if (f.burstiness !== undefined && f.rate === undefined && f.sweep === undefined) throw new Error('--burstiness needs --rate or --sweep');
  if (f.local && f.url !== undefined) throw new Error('--url cannot be combined with --local (the local stack has its own address)');
  if (!f.local) {
    for (const k of ['workers', 'engine', 'nice'] as const) if (f[k] !== undefined) throw new Error(`--${k} needs --local`);
    if (f.chaos.length > 0) throw new Error('--chaos needs --local (faults are applied only to a stack this tool started)');
  }
  const stages = f.sweep?.length ?? 1;
  for (const e of f.chaos) {
    if (e.atS >= f.duration * stages) throw new Error(`--chaos ${e.action}@${e.atS} is not before the end of the run (${f.duration * stages} s)`);
  }
  const arrivals: Arrivals =
    f.rate !== undefined || f.sweep !== undefined
      ? { kind: 'open', rates: f.sweep ?? [f.rate!], burstiness: f.burstiness ?? 1 }
      : { kind: 'closed', connections: f.connections ?? 8 };
  if (arrivals.kind === 'closed' && f['max-requests'] < arrivals.connections) throw new Error('--max-requests must be at least --connections');
  return {
    url: f.url ?? DEFAULT_URL,
    local: f.local ? { workers: f.workers ?? 2, engine: f.engine ?? 'sim', nice: f.nice ?? 10, chaos: f.chaos } : null,
    arrivals,
    durationS: f.duration,
    maxRequests: f['max-requests'],
    drainS: f.drain,
    timeoutS: f.timeout,
    maxTokens: f['max-tokens'],
    dataset: f.dataset,
    apiKey: f['api-key'],
    model: f.model,
    stream: f.stream,
    slo: f.slo,
    seed: f.seed,
    json: f.json,
    report: f.report,
  };
}
