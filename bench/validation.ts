/**
 * `npm run bench:validation [-- --iterations N --rounds R]`: what checking a body and writing an
 * answer cost on the hot route, per request, by the way the gateway does it and by the compiled
 * alternatives Fastify offers, measured side by side in one process:
 *   - the `/v1/chat/completions` body checked by its zod schema (what the gateway does: the
 *     schema gives the types, the defaults and the errors with the field at fault) and by the
 *     same schema turned into JSON Schema and compiled by ajv (what Fastify's own validation does);
 *   - a `chat.completion` answer written by JSON.stringify (what the gateway does) and by
 *     fast-json-stringify compiled from a schema of it (Fastify's response serialisation).
 * Rounds alternate the pair so that a noisy neighbour slows both alike. Prints a table, then one
 * JSON line with the µs per call of each, the ratios and what the compiled path would save per
 * request.
 */
import { parseArgs } from 'node:util';
import { Ajv } from 'ajv';
import fastJson from 'fast-json-stringify';
import { z } from 'zod';
import { requestSchemas } from '../src/gateway/answer/schemas.js';

const { values: args } = parseArgs({
  options: {
    iterations: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
  },
});
const iterations = Number(args.iterations);
const rounds = Number(args.rounds);
if (!Number.isInteger(iterations) || iterations < 1000 || !Number.isInteger(rounds) || rounds < 1) {
  console.error('usage: npm run bench:validation -- [--iterations N ≥ 1000] [--rounds R ≥ 1]');
  process.exit(2);
}

const body = {
  model: 'chatglm3-6b',
  messages: [
    { role: 'system', content: '你是一名中国法律助手。' },
    { role: 'user', content: '租房合同到期，房东以墙面有污渍为由扣下全部押金，我该怎么办？' },
  ],
  max_tokens: 64,
  temperature: 0.7,
  stream: false,
};
const answer = {
  id: 'chatcmpl-7f3a2c9e1b5d4a6f8e0c',
  object: 'chat.completion',
  created: 1_764_000_000,
  model: 'chatglm3-6b',
  system_fingerprint: null,
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: '租赁期满、房屋正常使用下的损耗不是扣押金的理由。可先与房东协商并保留交接记录；协商不成可向法院起诉。', refusal: null },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 38, completion_tokens: 52, total_tokens: 90 },
};

const schema = requestSchemas({ maxTokensLimit: 8192 }).ChatCompletionsBody;
const ajvCheck = new Ajv({ strict: false }).compile(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-7' }));
if (!schema.safeParse(body).success || !ajvCheck(structuredClone(body))) throw new Error('the body must pass both checks');

const stringifyAnswer = fastJson({
  type: 'object',
  properties: {
    id: { type: 'string' },
    object: { type: 'string' },
    created: { type: 'integer' },
    model: { type: 'string' },
    system_fingerprint: { type: 'null' },
    choices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          index: { type: 'integer' },
          message: {
            type: 'object',
            properties: { role: { type: 'string' }, content: { type: 'string' }, refusal: { type: 'null' } },
          },
          logprobs: { type: 'null' },
          finish_reason: { type: 'string' },
        },
      },
    },
    usage: {
      type: 'object',
      properties: { prompt_tokens: { type: 'integer' }, completion_tokens: { type: 'integer' }, total_tokens: { type: 'integer' } },
    },
  },
});
if (stringifyAnswer(answer) !== JSON.stringify(answer)) throw new Error('both serialisers must write the same text');

/** µs per call of `fn` over `iterations` calls, after a warm-up. */
function timePerCall(fn: () => unknown): number {
  for (let i = 0; i < Math.min(20_000, iterations); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations / 1000;
}

const pairs = [
  { name: 'check the body', ours: 'zod safeParse', theirs: 'ajv compiled', a: () => schema.safeParse(body), b: () => ajvCheck(body) },
  { name: 'write the answer', ours: 'JSON.stringify', theirs: 'fast-json-stringify', a: () => JSON.stringify(answer), b: () => stringifyAnswer(answer) },
];

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const results = pairs.map((p) => {
  const a: number[] = [];
  const b: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // Alternate which goes first, so that neither always runs on a warmer or quieter machine.
    if (r % 2 === 0) {
      a.push(timePerCall(p.a));
      b.push(timePerCall(p.b));
    } else {
      b.push(timePerCall(p.b));
      a.push(timePerCall(p.a));
    }
  }
  const ours = median(a);
  const theirs = median(b);
  return { step: p.name, ours: p.ours, ours_us: round(ours), compiled: p.theirs, compiled_us: round(theirs), ratio: round(ours / theirs), saved_us: round(ours - theirs) };
});

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

console.log(`per call, median of ${rounds} rounds of ${iterations} calls`);
console.log('| step | ours | µs | compiled | µs | ours ÷ compiled | saved per request (µs) |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of results) console.log(`| ${r.step} | ${r.ours} | ${r.ours_us} | ${r.compiled} | ${r.compiled_us} | ${r.ratio} | ${r.saved_us} |`);
console.log(JSON.stringify({ iterations, rounds, results, saved_us_per_request: round(results.reduce((s, r) => s + r.saved_us, 0)) }));
