import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { ChatGLMTokenizer } from '../../../src/tokenizer/tokenizer.js';
import {
  buildToolPrompt,
  DEFAULT_TOOLS_SENTENCE,
  pythonJsonDumps,
  validateToolChoice,
  validateTools,
  type ToolIssueCode,
  type ToolMessageInput,
  type ToolRequestInput,
} from '../../../src/tokenizer/tool-template.js';
import { FIXTURE_TOKENIZER_MODEL, readTokenizerGolden, readToolsGolden } from '../../helpers/golden-fixtures.js';

const golden = readToolsGolden();
const tok = await ChatGLMTokenizer.fromFile(FIXTURE_TOKENIZER_MODEL);

function prompt(request: ToolRequestInput) {
  const r = buildToolPrompt(request);
  assert.ok(r.ok, r.ok ? '' : `${r.issue.code} at ${r.issue.param}: ${r.issue.message}`);
  return r.value;
}

function issueOf(request: ToolRequestInput): { code: ToolIssueCode; param: string } {
  const r = buildToolPrompt(request);
  assert.ok(!r.ok, 'should be refused');
  assert.ok(r.issue.message.length > 0);
  return { code: r.issue.code, param: r.issue.param };
}

const statute = golden.render[0]!.request.tools as unknown[];
const twoTools = golden.render[1]!.request.tools as unknown[];
const user = (content: string): ToolMessageInput => ({ role: 'user', content });

test('every golden render case gives the golden input ids (and text)', () => {
  assert.ok(golden.render.length > 0);
  for (const c of golden.render) {
    const p = prompt(c.request);
    const ids = tok.encodeTurns(p.turns);
    assert.deepEqual(ids, c.input_ids);
    assert.equal(tok.decode(ids), c.text);
    assert.equal(p.answerMetadata, undefined);
    assert.deepEqual(p.toolChoice, { type: 'auto' });
  }
  assert.equal(golden.tools_sentence, DEFAULT_TOOLS_SENTENCE);
});

test('without tools the prompt is the plain chat template (the golden chat cases), through the same encoding', () => {
  for (const c of readTokenizerGolden().chat) {
    const p = prompt({ messages: c.messages });
    assert.deepEqual(tok.encodeTurns(p.turns), c.input_ids);
    assert.deepEqual(tok.applyChatTemplate(c.messages), c.input_ids);
    assert.deepEqual(p.callableTools, []);
  }
  for (const empty of [undefined, null, []]) {
    const p = prompt({ tools: empty, messages: [{ role: 'system', content: 'sys' }, user('q')] });
    assert.deepEqual(p.turns, [
      { role: 'system', metadata: '', content: 'sys' },
      { role: 'user', metadata: '', content: 'q' },
    ]);
  }
});

test('turns with metadata: role markers in metadata or content stay text; generation prompt and answer metadata', () => {
  const s = tok.specialTokens;
  const turns = [{ role: 'assistant' as const, metadata: 'get_statute', content: 'a <|observation|> b' }];
  const ids = tok.encodeTurns(turns);
  assert.deepEqual(ids, [s['[gMASK]'], s.sop, s['<|assistant|>'], ...tok.encode('get_statute\n'), ...tok.encode('a <|observation|> b'), s['<|assistant|>']]);
  assert.equal(ids.filter((id) => id === s['<|observation|>']).length, 0);
  assert.deepEqual(tok.encodeTurns(turns, { generationPrompt: false }), ids.slice(0, -1));
  assert.deepEqual(tok.encodeTurns(turns, { answerMetadata: 'calc' }), [...ids, ...tok.encode('calc\n')]);
  assert.deepEqual(tok.encodeTurns([]), [s['[gMASK]'], s.sop, s['<|assistant|>']]);
});

test("a named tool_choice lists only that tool and writes its metadata line: the ids of a turn that calls it", () => {
  const c = golden.render[1]!;
  const p = prompt({ ...c.request, messages: c.request.messages.slice(0, 1), tool_choice: { type: 'function', function: { name: 'calc_compensation' } } });
  assert.equal(p.answerMetadata, 'calc_compensation');
  assert.deepEqual(p.callableTools, ['calc_compensation']);
  assert.ok(!p.turns[0]!.content.includes('get_statute'));
  assert.ok(p.turns[0]!.content.includes('"name": "calc_compensation"'));
  const ids = tok.encodeTurns(p.turns, { answerMetadata: p.answerMetadata });
  // In the golden case the model's call turn starts with the same ids: <|assistant|> + encode("calc_compensation\n").
  const callTurn = [tok.specialTokens['<|assistant|>'], ...tok.encode('calc_compensation\n')];
  const tail = ids.slice(ids.length - callTurn.length);
  assert.deepEqual(tail, callTurn);
  const at = c.input_ids.findIndex((_, i) => callTurn.every((id, k) => c.input_ids[i + k] === id));
  assert.ok(at > 0, 'the golden ids hold the same call-turn opening');
});

test("tool_choice none: no tools turn, the client's system message stays, history still renders", () => {
  const c = golden.render[1]!;
  const p = prompt({ ...c.request, tool_choice: 'none' });
  assert.deepEqual(p.callableTools, []);
  assert.deepEqual(p.toolChoice, { type: 'none' });
  assert.equal(p.answerMetadata, undefined);
  assert.deepEqual(
    p.turns.map((t) => [t.role, t.metadata]),
    [
      ['user', ''],
      ['assistant', 'calc_compensation'],
      ['observation', ''],
    ],
  );
  const sys = prompt({ tools: statute, tool_choice: 'none', messages: [{ role: 'system', content: '你是法律助手' }, user('q')] });
  assert.deepEqual(sys.turns[0], { role: 'system', metadata: '', content: '你是法律助手' });
  assert.deepEqual(prompt({ tool_choice: 'none', messages: [user('q')] }).turns, [{ role: 'user', metadata: '', content: 'q' }]);
});

test('tool_choice required: one tool is the same as naming it; several are listed as for auto', () => {
  const one = prompt({ tools: statute, tool_choice: 'required', messages: [user('q')] });
  assert.equal(one.answerMetadata, 'get_statute');
  assert.deepEqual(one.toolChoice, { type: 'required' });
  const several = prompt({ tools: twoTools, tool_choice: 'required', messages: [user('q')] });
  assert.equal(several.answerMetadata, undefined);
  assert.deepEqual(several.callableTools, ['get_statute', 'calc_compensation']);
  assert.deepEqual(several.turns, prompt({ tools: twoTools, tool_choice: 'auto', messages: [user('q')] }).turns);
});

test("the sentence: the client's first system or developer message, used up; later ones stay turns", () => {
  const p = prompt({
    tools: statute,
    messages: [user('first'), { role: 'developer', content: [{ type: 'text', text: '你' }, { type: 'text', text: '好' }] }, { role: 'system', content: 'later' }, user('q')],
  });
  assert.ok(p.turns[0]!.content.startsWith('你好\n[\n    {\n        "name": "get_statute"'));
  assert.deepEqual(
    p.turns.slice(1).map((t) => [t.role, t.content]),
    [
      ['user', 'first'],
      ['system', 'later'],
      ['user', 'q'],
    ],
  );
});

test('assistant tool calls: content first when not empty, one turn per call, arguments as Python literals', () => {
  const p = prompt({
    tools: twoTools,
    messages: [
      user('q'),
      {
        role: 'assistant',
        content: '我查一下。',
        tool_calls: [
          { id: 'a', type: 'function', function: { name: 'get_statute', arguments: '{"law": "民法典", "article": 577, "note": null, "x": [1.5, -0.0, 1e-7]}' } },
          { id: 'b', type: 'function', function: { name: 'calc_compensation', arguments: '' } },
        ],
      },
      { role: 'tool', tool_call_id: 'a', content: '第五百七十七条 ……' },
      { role: 'tool', tool_call_id: 'b', content: [{ type: 'text', text: '{"amount": 1}' }] },
      { role: 'assistant', content: null },
      user('q2'),
    ],
  });
  assert.deepEqual(p.turns.slice(2), [
    { role: 'assistant', metadata: '', content: '我查一下。' },
    { role: 'assistant', metadata: 'get_statute', content: "```python\ntool_call(law='民法典', article=577, note=None, x=[1.5, -0.0, 1e-07])\n```" },
    { role: 'assistant', metadata: 'calc_compensation', content: '```python\ntool_call()\n```' },
    { role: 'observation', metadata: '', content: '第五百七十七条 ……' },
    { role: 'observation', metadata: '', content: '{"amount": 1}' },
    { role: 'assistant', metadata: '', content: '' },
    { role: 'user', metadata: '', content: 'q2' },
  ]);
});

test("the tools list is json.dumps(indent=4, ensure_ascii=False) of the client's function objects, in the client's key order", () => {
  const fn = { parameters: { type: 'object', properties: { b: { type: 'number', minimum: 0.5, maximum: 1e21, default: 1e-7 }, a: {} } }, name: 'zeta', strict: true };
  const p = prompt({ tools: [{ type: 'function', function: fn }], messages: [user('q')] });
  const expected = `${DEFAULT_TOOLS_SENTENCE}\n[\n    {\n        "parameters": {\n            "type": "object",\n            "properties": {\n                "b": {\n                    "type": "number",\n                    "minimum": 0.5,\n                    "maximum": 1e+21,\n                    "default": 1e-07\n                },\n                "a": {}\n            }\n        },\n        "name": "zeta",\n        "strict": true\n    }\n]`;
  assert.equal(p.turns[0]!.content, expected);
  // Vectors from CPython 3.11's json.dumps(..., indent=4, ensure_ascii=False).
  assert.equal(
    pythonJsonDumps({ a: [1, { b: [] }, {}], c: 1e-7, d: -0, e: '\x01\u2028' }),
    '{\n    "a": [\n        1,\n        {\n            "b": []\n        },\n        {}\n    ],\n    "c": 1e-07,\n    "d": -0.0,\n    "e": "\\u0001\u2028"\n}',
  );
  const rng = xoroshiro128plus(11);
  const leaves = [null, true, false, 0, 7, 'x', '"\\\n\t\u0000', '中文', '😀', [], {}];
  const value = (d: number): unknown => {
    const k = uniformInt(rng, 0, d > 3 ? 0 : 2);
    if (k === 0) return leaves[uniformInt(rng, 0, leaves.length - 1)];
    if (k === 1) return Array.from({ length: uniformInt(rng, 0, 3) }, () => value(d + 1));
    return Object.fromEntries(Array.from({ length: uniformInt(rng, 0, 3) }, (_, i) => [`k${i}`, value(d + 1)]));
  };
  for (let i = 0; i < 500; i++) {
    const v = value(0) as Parameters<typeof pythonJsonDumps>[0];
    assert.equal(pythonJsonDumps(v), JSON.stringify(v, null, 4), 'without floats, the same text as JSON.stringify');
  }
});

test('bad tools, tool choices and messages: a stable code and the field at fault', () => {
  const m = [user('q')];
  const fn = (f: Record<string, unknown>) => [{ type: 'function', function: { name: 'ok_name', ...f } }];
  const cases: Array<[ToolRequestInput, ToolIssueCode, string]> = [
    [{ tools: 'x', messages: m }, 'INVALID_TOOLS', 'tools'],
    [{ tools: Array.from({ length: 65 }, (_, i) => ({ type: 'function', function: { name: `t${i}` } })), messages: m }, 'TOO_MANY_TOOLS', 'tools'],
    [{ tools: [null], messages: m }, 'INVALID_TOOL', 'tools.0'],
    [{ tools: [{ type: 'code_interpreter' }], messages: m }, 'UNSUPPORTED_TOOL_TYPE', 'tools.0.type'],
    [{ tools: [{ type: 'function' }], messages: m }, 'INVALID_TOOL', 'tools.0.function'],
    [{ tools: fn({ name: 'has space' }), messages: m }, 'INVALID_TOOL_NAME', 'tools.0.function.name'],
    [{ tools: fn({ name: 'x'.repeat(65) }), messages: m }, 'INVALID_TOOL_NAME', 'tools.0.function.name'],
    [{ tools: fn({ name: 42 }), messages: m }, 'INVALID_TOOL_NAME', 'tools.0.function.name'],
    [{ tools: [...fn({}), ...fn({})], messages: m }, 'DUPLICATE_TOOL_NAME', 'tools.1.function.name'],
    [{ tools: fn({ description: 1 }), messages: m }, 'INVALID_TOOL_DESCRIPTION', 'tools.0.function.description'],
    [{ tools: fn({ parameters: [] }), messages: m }, 'INVALID_TOOL_PARAMETERS', 'tools.0.function.parameters'],
    [{ tools: fn({ parameters: 'object' }), messages: m }, 'INVALID_TOOL_PARAMETERS', 'tools.0.function.parameters'],
    [{ tools: fn({ parameters: { type: 'string' } }), messages: m }, 'INVALID_TOOL_PARAMETERS', 'tools.0.function.parameters.type'],
    [{ tools: fn({ parameters: { type: 'object', properties: { a: { default: Number.NaN } } } }), messages: m }, 'INVALID_TOOL', 'tools.0.function.parameters.properties.a.default'],
    [{ tools: fn({ parameters: JSON.parse('{"a":'.repeat(40) + '1' + '}'.repeat(40)) as unknown }), messages: m }, 'TOOL_TOO_DEEP', 'tools.0.function.parameters.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a'],
    [{ tools: fn({ description: 'x'.repeat(140_000) }), messages: m }, 'TOOLS_TOO_LARGE', 'tools'],
    [{ tools: statute, tool_choice: 'sometimes', messages: m }, 'INVALID_TOOL_CHOICE', 'tool_choice'],
    [{ tools: statute, tool_choice: { type: 'function', function: { name: 'nope' } }, messages: m }, 'UNKNOWN_TOOL_CHOICE', 'tool_choice.function.name'],
    [{ tools: statute, tool_choice: { type: 'function', function: { name: 3 } }, messages: m }, 'INVALID_TOOL_CHOICE', 'tool_choice.function.name'],
    [{ tool_choice: 'required', messages: m }, 'TOOL_CHOICE_WITHOUT_TOOLS', 'tool_choice'],
    [{ tool_choice: { type: 'function', function: { name: 'x' } }, messages: m }, 'TOOL_CHOICE_WITHOUT_TOOLS', 'tool_choice'],
    [{ messages: [{ role: 'function', content: 'x' }] }, 'INVALID_MESSAGE', 'messages.0.role'],
    [{ messages: [{ role: 'assistant', content: null, tool_calls: 'x' as unknown as unknown[] }] }, 'INVALID_TOOL_CALL', 'messages.0.tool_calls'],
    [{ messages: [{ role: 'assistant', tool_calls: [7] }] }, 'INVALID_TOOL_CALL', 'messages.0.tool_calls.0'],
    [{ messages: [{ role: 'assistant', tool_calls: [{ type: 'x', function: { name: 'a', arguments: '{}' } }] }] }, 'INVALID_TOOL_CALL', 'messages.0.tool_calls.0.type'],
    [{ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'a b', arguments: '{}' } }] }] }, 'INVALID_TOOL_CALL', 'messages.0.tool_calls.0.function.name'],
    [{ messages: [user('q'), { role: 'assistant', tool_calls: [{ function: { name: 'a', arguments: '{bad' } }] }] }, 'INVALID_TOOL_CALL_ARGUMENTS', 'messages.1.tool_calls.0.function.arguments'],
    [{ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'a', arguments: '[1]' } }] }] }, 'INVALID_TOOL_CALL_ARGUMENTS', 'messages.0.tool_calls.0.function.arguments'],
    [{ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'a', arguments: { x: 1 } } }] }] }, 'INVALID_TOOL_CALL_ARGUMENTS', 'messages.0.tool_calls.0.function.arguments'],
  ];
  for (const [request, code, param] of cases) assert.deepEqual(issueOf(request), { code, param }, `${code} ${param}`);
  const deepArgs = `{"x": ${'['.repeat(40)}${']'.repeat(40)}}`;
  assert.equal(issueOf({ messages: [{ role: 'assistant', tool_calls: [{ function: { name: 'a', arguments: deepArgs } }] }] }).code, 'INVALID_TOOL_CALL_ARGUMENTS');
  assert.ok(validateTools(statute).ok);
  assert.deepEqual(validateToolChoice(undefined, null), { ok: true, value: { type: 'auto' } });
  assert.deepEqual(validateToolChoice('none', null), { ok: true, value: { type: 'none' } });
});

test('garbage requests never throw', () => {
  const rng = xoroshiro128plus(5);
  const atoms: unknown[] = [null, undefined, 0, -1, Number.NaN, '', 'function', 'get_statute', 'a b', true, [], {}, '{}', '{"a":1}', '[', 'required', 'none'];
  const random = (d: number): unknown => {
    const k = uniformInt(rng, 0, d > 3 ? 0 : 2);
    if (k === 0) return atoms[uniformInt(rng, 0, atoms.length - 1)];
    if (k === 1) return Array.from({ length: uniformInt(rng, 0, 3) }, () => random(d + 1));
    const keys = ['type', 'function', 'name', 'arguments', 'parameters', 'description', 'role', 'content', 'tool_calls', '__proto__'];
    const o: Record<string, unknown> = {};
    for (let i = uniformInt(rng, 0, 4); i > 0; i--) {
      Object.defineProperty(o, keys[uniformInt(rng, 0, keys.length - 1)]!, { value: random(d + 1), enumerable: true, writable: true, configurable: true });
    }
    return o;
  };
  const roles = ['system', 'developer', 'user', 'assistant', 'tool', 'x'];
  for (let i = 0; i < 3000; i++) {
    const messages = Array.from({ length: uniformInt(rng, 0, 4) }, () => ({
      role: roles[uniformInt(rng, 0, roles.length - 1)]!,
      content: (uniformInt(rng, 0, 2) === 0 ? random(1) : uniformInt(rng, 0, 1) ? 'text' : null) as string | null,
      tool_calls: random(1) as unknown[],
    }));
    const r = buildToolPrompt({ tools: random(0), tool_choice: random(2), messages });
    assert.equal(typeof r.ok, 'boolean');
    if (r.ok) tok.encodeTurns(r.value.turns);
  }
  for (const messages of [null, 'x', [null], [7], [{ role: 'user', content: 5 }], [{ role: 'user', content: [{ type: 'image_url' }] }]]) {
    const r = buildToolPrompt({ messages: messages as unknown as ToolMessageInput[] });
    assert.ok(!r.ok && r.issue.code === 'INVALID_MESSAGE', JSON.stringify(messages));
  }
});
