import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import type { JsonObject, JsonValue } from '../../../src/tokenizer/python-literal.js';
import {
  formatToolCallCode,
  formatToolCallContent,
  parseToolCall,
  parseToolCallContent,
  readReply,
  type ToolCallRefusalCode,
} from '../../../src/tokenizer/tool-call.js';
import { readToolsGolden } from '../../helpers/golden-fixtures.js';

const golden = readToolsGolden();

function args(content: string): JsonObject {
  const r = parseToolCallContent(content);
  assert.ok(r.ok, `${JSON.stringify(content)}: ${r.ok ? '' : `${r.refusal.code} ${r.refusal.message}`}`);
  return r.arguments;
}

function refusedWith(content: string): ToolCallRefusalCode {
  const r = parseToolCallContent(content);
  assert.ok(!r.ok, `${JSON.stringify(content).slice(0, 100)} should be refused`);
  return r.refusal.code;
}

test('every golden parse case gives its arguments, bare, fenced and with white space around', () => {
  assert.ok(golden.parse.length > 0);
  for (const c of golden.parse) {
    assert.deepStrictEqual(args(c.code), c.arguments, c.code);
    assert.deepStrictEqual(args(`\`\`\`python\n${c.code}\n\`\`\``), c.arguments, c.code);
    assert.deepStrictEqual(args(`\n  \`\`\`python\n  ${c.code}  \n\`\`\`\n\n`), c.arguments, c.code);
    assert.deepStrictEqual(args(`\`\`\`\n${c.code}\n\`\`\``), c.arguments, c.code);
    assert.deepStrictEqual(args(` ${c.code}\n`), c.arguments, c.code);
    const call = parseToolCall(' get_statute \n', `\`\`\`python\n${c.code}\n\`\`\``);
    assert.ok(call.ok);
    assert.deepStrictEqual(call.call, { name: 'get_statute', arguments: c.arguments });
  }
});

test('every golden refuse case is refused, bare and fenced, and nothing is evaluated', () => {
  assert.ok(golden.refuse.length > 0);
  for (const code of golden.refuse) {
    refusedWith(code);
    refusedWith(`\`\`\`python\n${code}\n\`\`\``);
    const r = parseToolCall('get_statute', code);
    assert.ok(!r.ok, code);
    assert.equal(typeof r.refusal.message, 'string');
  }
});

test('each kind of non-literal call is refused for what it is', () => {
  const cases: Array<[string, ToolCallRefusalCode]> = [
    ["tool_call(__import__('os').system('id'))", 'POSITIONAL_ARGUMENT'],
    ["tool_call(law=open('/etc/passwd').read())", 'NAME_NOT_ALLOWED'],
    ["tool_call('positional')", 'POSITIONAL_ARGUMENT'],
    ['tool_call(1, x=2)', 'POSITIONAL_ARGUMENT'],
    ["print('hi')", 'NOT_TOOL_CALL'],
    ['tool_call', 'NOT_TOOL_CALL'],
    ["'just a string'", 'NOT_TOOL_CALL'],
    ['tool_call(x=1+2)', 'OPERATOR_NOT_ALLOWED'],
    ['tool_call(x=-y)', 'OPERATOR_NOT_ALLOWED'],
    ["tool_call(law='民法典'", 'UNEXPECTED_END'],
    ['tool_call(x=[1, 2)', 'UNEXPECTED_CHARACTER'],
    ['tool_call(x=[i for i in range(3)])', 'NAME_NOT_ALLOWED'],
    ['tool_call(x=[1 for i in y])', 'COMPREHENSION_NOT_ALLOWED'],
    ['tool_call(**kwargs)', 'UNPACKING_NOT_ALLOWED'],
    ['tool_call(*args)', 'UNPACKING_NOT_ALLOWED'],
    ['tool_call(x=1, x=2)', 'DUPLICATE_ARGUMENT'],
    ['tool_call(x==1)', 'POSITIONAL_ARGUMENT'],
    ['tool_call(x=lambda: 1)', 'NAME_NOT_ALLOWED'],
    ['tool_call(x={1, 2})', 'SET_NOT_ALLOWED'],
    ["tool_call(x=f'{y}')", 'STRING_PREFIX_NOT_ALLOWED'],
    ['tool_call(x=1) + 1', 'TEXT_OUTSIDE_CALL'],
    ['tool_call(x=1)\ntool_call(y=2)', 'TEXT_OUTSIDE_CALL'],
    ['tool_call(x=1)()', 'TEXT_OUTSIDE_CALL'],
    ['```python\ntool_call(x=1)\n', 'UNCLOSED_FENCE'],
    ['```python\ntool_call(x=1)\nprint(1)\n```', 'TEXT_OUTSIDE_CALL'],
    ['```python\ntool_call(x=1)\n```\nmore text', 'TEXT_OUTSIDE_CALL'],
    ['好的，我来查询。\n```python\ntool_call(x=1)\n```', 'NOT_TOOL_CALL'],
    ['```js\ntool_call(x=1)\n```', 'FENCE_LANGUAGE'],
    ['', 'EMPTY_CALL'],
    ['  \n ', 'EMPTY_CALL'],
  ];
  for (const [content, code] of cases) assert.equal(refusedWith(content), code, content);
});

test('keyword arguments: white space, trailing comma, identifiers Python would refuse, fences inside strings', () => {
  assert.deepStrictEqual(args('tool_call( a = 1 ,\n  b = [ 2 ] , )'), { a: 1, b: [2] });
  assert.deepStrictEqual(args("tool_call(from='北京', to='上海')"), { from: '北京', to: '上海' });
  assert.deepStrictEqual(args("tool_call(城市='北京')"), { 城市: '北京' });
  assert.deepStrictEqual(args("```python\ntool_call(code='```', s=\"a)b\")\n```"), { code: '```', s: 'a)b' });
  const proto = args('tool_call(__proto__=1)');
  assert.equal(Object.getPrototypeOf(proto), Object.prototype);
  assert.deepStrictEqual(Object.keys(proto), ['__proto__']);
  assert.deepStrictEqual(Object.keys(args('tool_call(z=1, a=2, m=3)')), ['z', 'a', 'm'], 'arguments keep the order written');
});

test('the metadata line: trimmed, matched against the name pattern and the request tools', () => {
  const content = "tool_call(law='民法典')";
  assert.ok(parseToolCall('get_statute', content, { toolNames: ['get_statute'] }).ok);
  const bad = (metadata: string, toolNames?: string[]) => {
    const r = parseToolCall(metadata, content, toolNames ? { toolNames } : {});
    assert.ok(!r.ok, metadata);
    return r.refusal.code;
  };
  assert.equal(bad(''), 'INVALID_TOOL_NAME');
  assert.equal(bad('get statute'), 'INVALID_TOOL_NAME');
  assert.equal(bad('a'.repeat(65)), 'INVALID_TOOL_NAME');
  assert.equal(bad('工具'), 'INVALID_TOOL_NAME');
  assert.equal(bad('get_weather', ['get_statute']), 'UNKNOWN_TOOL');
  assert.ok(parseToolCall('a'.repeat(64), content).ok);
});

test('bounds: argument depth (the arguments object counts) and content length', () => {
  const nested = (n: number) => `tool_call(x=${'['.repeat(n)}${']'.repeat(n)})`;
  assert.ok(parseToolCallContent(nested(31)).ok);
  assert.equal(refusedWith(nested(32)), 'TOO_DEEP');
  const r = parseToolCallContent(nested(5), { maxDepth: 4 });
  assert.ok(!r.ok && r.refusal.code === 'TOO_DEEP');
  const long = parseToolCallContent(`tool_call(x='${'a'.repeat(300_000)}')`);
  assert.ok(!long.ok && long.refusal.code === 'TOO_LONG');
  assert.ok(parseToolCallContent(`tool_call(x='${'a'.repeat(300_000)}')`, { maxChars: 400_000 }).ok);
});

test('the call written back is the golden fine-tuning format, and reads back to the same arguments', () => {
  const rendered = golden.render.find((c) => c.text.includes('tool_call('));
  assert.ok(rendered, 'a golden render case holds a call');
  assert.ok(rendered.text.includes(formatToolCallContent({ monthly_salary: 8000, years: 3, double: true })));
  assert.equal(formatToolCallCode({ monthly_salary: 8000, years: 3, double: true }), 'tool_call(monthly_salary=8000, years=3, double=True)');
  assert.equal(formatToolCallContent({}), '```python\ntool_call()\n```');
  for (const c of golden.parse) {
    assert.deepStrictEqual(args(formatToolCallContent(c.arguments)), c.arguments);
  }
  const rng = xoroshiro128plus(99);
  const leaves: JsonValue[] = [null, true, false, 0, -7, 2.5, 1e-7, -0, 'x', "it's", 'a "b"', '\\', '\n', '民法典', '😀', '\ud800', '```'];
  const value = (d: number): JsonValue => {
    const k = uniformInt(rng, 0, d > 3 ? 0 : 2);
    if (k === 0) return leaves[uniformInt(rng, 0, leaves.length - 1)]!;
    if (k === 1) return Array.from({ length: uniformInt(rng, 0, 3) }, () => value(d + 1));
    return Object.fromEntries(Array.from({ length: uniformInt(rng, 0, 3) }, (_, i) => [`k${i}'`, value(d + 1)]));
  };
  for (let i = 0; i < 1000; i++) {
    const a: JsonObject = {};
    for (let j = uniformInt(rng, 0, 5); j > 0; j--) a[`arg_${uniformInt(rng, 0, 9)}`] = value(0);
    assert.deepStrictEqual(args(formatToolCallContent(a)), a, formatToolCallContent(a));
  }
});

test('a reply: calls when every turn with metadata parses, else all of it as text', () => {
  const call = (name: string, code: string) => ({ metadata: name, content: `\`\`\`python\n${code}\n\`\`\`` });
  const two = readReply([call('get_statute', "tool_call(law='民法典', article=577)"), call('calc', 'tool_call(years=3)')]);
  assert.deepStrictEqual(two, {
    content: '',
    toolCalls: [
      { name: 'get_statute', arguments: { law: '民法典', article: 577 } },
      { name: 'calc', arguments: { years: 3 } },
    ],
    refusal: null,
  });
  const withText = readReply([{ metadata: '', content: ' 我来查一下。 ' }, call('get_statute', "tool_call(law='民法典')")]);
  assert.equal(withText.content, '我来查一下。');
  assert.equal(withText.toolCalls.length, 1);
  const plain = readReply([{ metadata: '', content: '\n 根据民法典第577条…… \n' }]);
  assert.deepStrictEqual(plain, { content: '根据民法典第577条……', toolCalls: [], refusal: null });
  const broken = readReply([call('get_statute', "tool_call(law='民法典')"), call('calc', 'tool_call(x=1+2)')]);
  assert.equal(broken.toolCalls.length, 0);
  assert.equal(broken.refusal?.code, 'OPERATOR_NOT_ALLOWED');
  assert.equal(broken.content, "```python\ntool_call(law='民法典')\n```\n```python\ntool_call(x=1+2)\n```");
  const unknown = readReply([call('get_weather', 'tool_call()')], { toolNames: ['get_statute'] });
  assert.equal(unknown.refusal?.code, 'UNKNOWN_TOOL');
  assert.deepStrictEqual(readReply([]), { content: '', toolCalls: [], refusal: null });
});

test('garbage never throws: random text, random bytes, mutated calls', () => {
  const rng = xoroshiro128plus(3);
  const soup = ['tool_call', '(', ')', '=', ',', "'", '"', '\\', '[', ']', '{', '}', ':', '```', 'python', '\n', ' ', 'x', '1', '-', '*', '**', '\ud800', '中', 'True'];
  const base = golden.parse.map((c) => c.code).concat(golden.refuse);
  const start = performance.now();
  for (let i = 0; i < 5000; i++) {
    let text = '';
    if (i % 2 === 0) {
      for (let j = uniformInt(rng, 0, 30); j > 0; j--) text += soup[uniformInt(rng, 0, soup.length - 1)]!;
    } else {
      const b = base[uniformInt(rng, 0, base.length - 1)]!;
      const at = uniformInt(rng, 0, b.length);
      text = b.slice(0, at) + (uniformInt(rng, 0, 1) ? soup[uniformInt(rng, 0, soup.length - 1)]! : '') + b.slice(at + uniformInt(rng, 0, 2));
    }
    const r = parseToolCall(soup[uniformInt(rng, 0, soup.length - 1)]!, text);
    assert.equal(typeof r.ok, 'boolean');
  }
  for (let i = 0; i < 300; i++) {
    const bytes = Buffer.from(Array.from({ length: uniformInt(rng, 0, 400) }, () => uniformInt(rng, 0, 255)));
    parseToolCallContent(bytes.toString('utf8'));
    parseToolCallContent(`tool_call(x=${bytes.toString('latin1')})`);
  }
  assert.ok(performance.now() - start < 5000);
  const t = performance.now();
  assert.equal(refusedWith(`tool_call(x=${'['.repeat(1 << 20)}`), 'TOO_LONG');
  const deep = parseToolCallContent(`tool_call(x=${'{"a":'.repeat(1 << 18)}`, { maxChars: 1 << 22 });
  assert.ok(!deep.ok && deep.refusal.code === 'TOO_DEEP');
  assert.ok(performance.now() - t < 1000);
});
