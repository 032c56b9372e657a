/** `npm run export -- --hf DIR --out DIR [...]`: a Hugging Face ChatGLM3 folder (+ PEFT LoRA) → the model directory. */
import { z } from 'zod';
import { startProgress, type Progress } from '../shared/progress.js';
import { intFlag, parseFlags, runCli } from '../shared/cli.js';
import { LINEAR_MODULES, isLinearModule } from '../model/chatglm-config.js';

const USAGE = `usage: npm run export -- --hf DIR --out DIR [options]
  --hf DIR                Hugging Face ChatGLM3 folder: config.json, safetensors, tokenizer.model
  --out DIR               model directory to write (must not exist or be empty, unless --force)
  --dtype fp32|fp16       weights and activations (default fp32)
  --quant none|int4       int4: linear layers as MatMulNBits, block 32 (default none)
  --int4-accuracy 0..4    MatMulNBits accuracy_level (default 4: int8 activations, fastest on CPU)
  --adapter DIR           PEFT LoRA folder (adapter_config.json, adapter_model.safetensors)
  --adapter-mode merge|runtime
                          merge: bake the adapter into the weights (default with --adapter);
                          runtime: LoRA A/B as graph inputs so a worker can switch adapters per request
  --lora-targets LIST     runtime mode: modules with LoRA inputs, comma-separated among
                          ${LINEAR_MODULES.join(', ')} (default: the adapter's, else query_key_value)
  --context N             longest sequence served (default: the config's seq_length)
  --logits all|last       logits for every position, or only each row's last token (default last)
  --name NAME             served model name (default: the --hf folder's name)
  --force                 replace a non-empty --out
  --quiet                 no progress bar`;

const FLAGS = {
  hf: { type: 'string' },
  out: { type: 'string' },
  dtype: { type: 'string' },
  quant: { type: 'string' },
  'int4-accuracy': { type: 'string' },
  adapter: { type: 'string' },
  'adapter-mode': { type: 'string' },
  'lora-targets': { type: 'string' },
  context: { type: 'string' },
  logits: { type: 'string' },
  name: { type: 'string' },
  force: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

const Schema = z.object({
  hf: z.string({ error: 'is required' }).min(1, 'is required'),
  out: z.string({ error: 'is required' }).min(1, 'is required'),
  dtype: z.enum(['fp32', 'fp16']).default('fp32'),
  quant: z.enum(['none', 'int4']).default('none'),
  'int4-accuracy': intFlag(0).pipe(z.number().max(4, 'must be at most 4')).optional(),
  adapter: z.string().min(1).optional(),
  'adapter-mode': z.enum(['merge', 'runtime']).optional(),
  'lora-targets': z
    .string()
    .transform((s) => s.split(',').map((m) => m.trim()).filter((m) => m !== ''))
    .refine((list) => list.length > 0 && list.every(isLinearModule), {
      message: `expected a comma-separated list among ${LINEAR_MODULES.join(', ')}`,
    })
    .optional(),
  context: intFlag(1).optional(),
  logits: z.enum(['all', 'last']).default('last'),
  name: z.string().min(1).optional(),
  force: z.boolean().default(false),
  quiet: z.boolean().default(false),
});

await runCli(USAGE, async (argv, signal) => {
  const flags = parseFlags(argv, FLAGS, Schema);
  // Loaded after the flags are checked: a usage error should not wait for SentencePiece's WASM.
  const { exportModel } = await import('../model/export-model.js');
  let bar: Progress | undefined;
  const started = Date.now();
  try {
    const result = await exportModel({
      hfDir: flags.hf,
      outDir: flags.out,
      dtype: flags.dtype,
      quant: flags.quant,
      ...(flags['int4-accuracy'] === undefined ? {} : { int4Accuracy: flags['int4-accuracy'] }),
      ...(flags.adapter ? { adapterDir: flags.adapter } : {}),
      ...(flags['adapter-mode'] ? { adapterMode: flags['adapter-mode'] } : {}),
      ...(flags['lora-targets'] ? { loraTargets: flags['lora-targets'].filter(isLinearModule) } : {}),
      ...(flags.context ? { context: flags.context } : {}),
      logits: flags.logits,
      ...(flags.name ? { name: flags.name } : {}),
      force: flags.force,
      signal,
      onProgress: (p) => {
        if (flags.quiet) return;
        bar ??= startProgress('export', p.totalBytes, 'bytes');
        bar.update(p.doneBytes);
      },
    });
    bar?.stop();
    const m = result.manifest;
    process.stdout.write(
      `wrote ${result.outDir}: ${m.name}, ${m.dims.num_layers} layers, ${m.dtype}${m.quant === 'int4' ? ' int4' : ''}, ` +
        `logits ${m.logits}, adapter ${m.adapter.mode}, ${(result.dataBytes / 1e6).toFixed(1)} MB of weights ` +
        `in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
    );
  } finally {
    bar?.stop();
  }
});
