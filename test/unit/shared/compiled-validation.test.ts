/**
 * The compiled body check accepts exactly what the zod schema accepts: the hot bodies, and tens
 * of thousands of garbage variations of them, get the same verdict from both; a refused body
 * gets zod's error with the field at fault.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { compiledBody, compiledValidator, validatorCompiler } from '../../../src/shared/compiled-validation.js';
import { requestSchemas } from '../../../src/gateway/answer/schemas.js';

const schemas = requestSchemas({ maxTokensLimit: 8192 });

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const emoji = (n: number) => '😀'.repeat(n);
/** Values put in place of a field: wrong types, edges of the limits, roles, lengths counted two ways. */
const GARBAGE: Json[] = [
  null, true, false, 0, -0, 1, -1, 1.5, 2, 20, 21, 1000, 1001, 8192, 8193, 2 ** 31, 2 ** 53, -(2 ** 53), 1e300, -1e-300,
  '', ' ', 'x', '\u0000', 'user', 'assistant', 'system', 'tool', 'developer', 'observation', 'text', 'chatglm3-6b',
  'x'.repeat(256), 'x'.repeat(257), emoji(128), emoji(129), emoji(256), emoji(257),
  [], [1], [1.5], [-1], ['a'], [null], [{}], [{ type: 'text', text: 'a' }], [{ type: 'image', text: 'a' }],
  {}, { a: 1 }, { top_k: 3 }, { top_k: 9 }, { min_score: 0.5 }, { include_usage: true }, { include_usage: 1 },
  [{ id: 'call_1', type: 'function', function: { name: 'f', arguments: '{}' } }],
];

const SEEDS: Record<'ChatBody' | 'ChatCompletionsBody' | 'CompletionsBody', Json[]> = {
  ChatBody: [
    { messages: [{ role: 'user', content: '朋友借钱不还怎么办？' }] },
    {
      messages: [
        { role: 'system', content: '你是法律助手' },
        { role: 'user', content: '借款' },
        { role: 'assistant', content: '可以起诉' },
        { role: 'user', content: '诉讼时效多久？' },
      ],
      adapter: 'law',
      max_tokens: 64,
      temperature: 0.7,
      top_p: 0.9,
      stream: true,
      knowledge: { top_k: 2, min_score: 1 },
    },
  ],
  ChatCompletionsBody: [
    { model: 'chatglm3-6b', messages: [{ role: 'user', content: '租房押金不退怎么办？' }], max_tokens: 64 },
    {
      model: 'chatglm3-6b',
      messages: [
        { role: 'developer', content: [{ type: 'text', text: '简洁' }] },
        { role: 'user', content: '查一下民法典第六百七十五条', name: 'u1' },
        { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'lookup', arguments: '{}' } }], refusal: null },
        { role: 'tool', content: '借款人应当按照约定的期限返还借款。', tool_call_id: 'call_1' },
      ],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
      tool_choice: 'auto',
      parallel_tool_calls: false,
      temperature: null,
      top_p: 1,
      stop: ['。', '\n'],
      seed: 7,
      stream: true,
      stream_options: { include_usage: true },
      n: 1,
      user: 'u1',
      frequency_penalty: 0,
      presence_penalty: 0,
      top_k: 40,
      repetition_penalty: 1.1,
      logprobs: true,
      top_logprobs: 5,
      max_completion_tokens: 100,
      knowledge: true,
    },
  ],
  CompletionsBody: [
    { model: 'chatglm3-6b', prompt: '借款合同的诉讼时效是' },
    { model: 'chatglm3-6b', prompt: [1, 2, 3], max_tokens: null, logprobs: 2, echo: false, stop: '。', seed: null },
  ],
};

/** A small deterministic PRNG (mulberry32): the same variations every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every path to a value inside `v` (the root excluded). */
function paths(v: Json, at: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  if (Array.isArray(v)) v.forEach((x, i) => (out.push([...at, i]), paths(x, [...at, i], out)));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push([...at, k]), paths(x, [...at, k], out);
  return out;
}

/** One to three changes: a value replaced, a field or element removed, or a field added. */
function mutate(seed: Json, rand: () => number): Json {
  const body = structuredClone(seed) as Json;
  const changes = 1 + Math.floor(rand() * 3);
  for (let c = 0; c < changes; c++) {
    const all = paths(body);
    if (all.length === 0) break;
    const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)]!;
    const path = pick(all);
    let parent = body as Record<string | number, Json>;
    for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, Json>;
    const key = path[path.length - 1]!;
    const r = rand();
    if (r < 0.7) parent[key] = structuredClone(pick(GARBAGE));
    else if (r < 0.85) {
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
    } else if (!Array.isArray(parent)) parent[pick(['extra', 'role', 'content', 'model', 'prompt', 'messages', 'stream', 'tool_calls', 'tool_call_id', 'logprobs'])] = structuredClone(pick(GARBAGE));
  }
  return body;
}

for (const [name, seeds] of Object.entries(SEEDS) as [keyof typeof SEEDS, Json[]][]) {
  test(`${name}: the compiled check and zod agree on the valid bodies and 6,000 variations of them`, () => {
    const schema = schemas[name];
    const fast = compiledValidator(schema);
    assert.ok(fast, `${name} is marked for the compiled path`);
    const rand = prng(name.length * 7919);
    let accepted = 0;
    let refused = 0;
    const bodies: Json[] = [...seeds];
    for (let i = 0; i < 6000; i++) bodies.push(mutate(seeds[i % seeds.length]!, rand));
    for (const body of bodies) {
      const zod = schema.safeParse(body);
      assert.equal(fast(body), zod.success, `${name}: ${JSON.stringify(body).slice(0, 400)} — zod says ${zod.success ? 'valid' : zod.error.issues[0]?.message}`);
      if (zod.success) {
        accepted++;
        // zod's output is the input itself (no defaults, no transforms): taking the body as it is loses nothing.
        assert.deepEqual(zod.data, body);
      } else refused++;
    }
    for (const seed of seeds) assert.equal(fast(seed), true, 'the seeds are valid');
    // The variations must reach both verdicts, or the comparison says little.
    assert.ok(accepted > 100 && refused > 1000, `accepted ${accepted}, refused ${refused}`);
  });
}

test('both count lengths in code points: 256 emoji (512 UTF-16 units) fit a 256 limit, 257 do not', () => {
  const fast = compiledValidator(schemas.ChatCompletionsBody)!;
  const body = (model: string) => ({ model, messages: [{ role: 'user', content: 'x' }] });
  for (const [n, ok] of [[256, true], [257, false]] as const) {
    assert.equal(fast(body(emoji(n))), ok, `${n} emoji`);
    assert.equal(schemas.ChatCompletionsBody.safeParse(body(emoji(n))).success, ok, `zod, ${n} emoji`);
  }
});

test("the route validator answers a refused body with zod's error and the field at fault, and takes a valid one as it is", () => {
  const validate = validatorCompiler({ schema: schemas.ChatCompletionsBody, method: 'POST', url: '/v1/chat/completions', httpPart: 'body' }) as (
    body: unknown,
  ) => { value?: unknown; error?: { instancePath: string; message?: string }[] };
  const good = { model: 'm', messages: [{ role: 'user', content: 'x' }] };
  assert.equal(validate(good).value, good, 'the very object, not a copy');
  const refused = [
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], top_p: 0 }, '/top_p'],
    [{ model: 'm', messages: [{ role: 'assistant', content: 'x' }] }, '/messages/0/role'],
    [{ model: 'm', messages: [{ role: 'user' }] }, '/messages/0/content'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }, '/top_logprobs'],
    [{ model: 'm', messages: [{ role: 'user', content: 'x' }], frequency_penalty: 0.5 }, '/frequency_penalty'],
  ] as const;
  for (const [body, at] of refused) {
    const out = validate(body);
    assert.equal(out.value, undefined, JSON.stringify(body));
    assert.equal(out.error?.[0]?.instancePath, at, JSON.stringify(out.error));
  }
  assert.match(validate(refused[4][0]).error![0]!.message!, /frequency_penalty is not supported/);
});

test('a schema not marked is checked by zod alone; a marked one whose check refuses goes to zod too', () => {
  const plain = z.object({ a: z.number() }).strict();
  assert.equal(compiledValidator(plain), null);
  const validate = validatorCompiler({ schema: plain, method: 'POST', url: '/x', httpPart: 'body' }) as (b: unknown) => { value?: unknown; error?: unknown };
  assert.deepEqual(validate({ a: 1 }).value, { a: 1 });
  assert.ok(validate({ a: '1' }).error);
  // The plain check is what refines: a body it refuses is zod's to judge, and zod's refinement words it.
  const even = compiledBody(
    z.object({ n: z.number() }).strict().refine((b) => b.n % 2 === 0, { message: 'n must be even', path: ['n'] }),
    (b) => b.n % 2 === 0,
  );
  const v = validatorCompiler({ schema: even, method: 'POST', url: '/y', httpPart: 'body' }) as (b: unknown) => { value?: unknown; error?: { message?: string }[] };
  assert.deepEqual(v({ n: 2 }).value, { n: 2 });
  assert.equal(v({ n: 3 }).error?.[0]?.message, 'n must be even');
  assert.ok(v({ n: '2' }).error);
});
