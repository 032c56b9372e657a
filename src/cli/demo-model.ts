/** `npm run demo-model -- --preset tiny|bench --out DIR [...]`: a random-weight ChatGLM3 model directory, made here. */
import { mkdirSync } from 'node:fs';
import { z } from 'zod';
import { startProgress, type Progress } from '../shared/progress.js';
import { intFlag, parseFlags, runCli } from '../shared/cli.js';

const USAGE = `usage: npm run demo-model -- --preset tiny|bench --out DIR [options]
  --preset tiny|bench        tiny: 2 layers, hidden 128 (about the golden model); bench: 12 layers, hidden 1024 (~140 M parameters)
  --out DIR                  model directory to write (must not exist or be empty, unless --force)
  --seed N                   weight seed (default 0): the same preset and seed give the same model
  --adapter-mode none|runtime  runtime (default): LoRA inputs on query_key_value, so a worker can serve adapters
  --logits all|last          (default last)
  --adapter-out DIR          also write a random PEFT LoRA adapter for this model there (r=8, query_key_value)
  --force                    replace a non-empty --out
  --quiet                    no progress bar`;

const FLAGS = {
  preset: { type: 'string' },
  out: { type: 'string' },
  seed: { type: 'string' },
  'adapter-mode': { type: 'string' },
  logits: { type: 'string' },
  'adapter-out': { type: 'string' },
  force: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

const Schema = z.object({
  preset: z.enum(['tiny', 'bench'], { error: 'expected tiny or bench' }),
  out: z.string({ error: 'is required' }).min(1, 'is required'),
  seed: intFlag(0).default(0),
  'adapter-mode': z.enum(['none', 'runtime']).default('runtime'),
  logits: z.enum(['all', 'last']).default('last'),
  'adapter-out': z.string().min(1).optional(),
  force: z.boolean().default(false),
  quiet: z.boolean().default(false),
});

await runCli(USAGE, async (argv, signal) => {
  const flags = parseFlags(argv, FLAGS, Schema);
  const { DEMO_PRESETS, makeDemoModel, writeRandomAdapter } = await import('../model/demo-model.js');
  let bar: Progress | undefined;
  try {
    const result = await makeDemoModel(flags.out, flags.preset, {
      seed: flags.seed,
      adapterMode: flags['adapter-mode'],
      logits: flags.logits,
      force: flags.force,
      signal,
      onProgress: (p) => {
        if (flags.quiet) return;
        bar ??= startProgress('demo-model', p.totalBytes, 'bytes');
        bar.update(p.doneBytes);
      },
    });
    bar?.stop();
    if (flags['adapter-out']) {
      mkdirSync(flags['adapter-out'], { recursive: true });
      writeRandomAdapter(flags['adapter-out'], { ...DEMO_PRESETS[flags.preset], padded_vocab_size: result.manifest.dims.vocab_size }, { seed: flags.seed + 1 });
    }
    const d = result.manifest.dims;
    process.stdout.write(
      `wrote ${result.outDir}: ${result.manifest.name}, ${d.num_layers} layers, hidden ${d.hidden_size}, vocab ${d.vocab_size}, ` +
        `adapter ${result.manifest.adapter.mode}, ${(result.dataBytes / 1e6).toFixed(1)} MB of weights` +
        `${flags['adapter-out'] ? `; adapter at ${flags['adapter-out']}` : ''}\n`,
    );
  } finally {
    bar?.stop();
  }
});
