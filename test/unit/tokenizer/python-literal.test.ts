import { test } from 'node:test';
import assert from 'node:assert/strict';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import {
  parsePythonLiteral,
  pythonFloatRepr,
  pythonNumberRepr,
  pythonStrRepr,
  unparse,
  type JsonValue,
  type LiteralErrorCode,
} from '../../../src/tokenizer/python-literal.js';

function ok(text: string): JsonValue {
  const r = parsePythonLiteral(text);
  assert.ok(r.ok, `${JSON.stringify(text)}: ${r.ok ? '' : `${r.error.code} ${r.error.message}`}`);
  return r.value;
}

function code(text: string, limits = {}): LiteralErrorCode {
  const r = parsePythonLiteral(text, limits);
  assert.ok(!r.ok, `${JSON.stringify(text).slice(0, 80)} should be refused`);
  return r.error.code;
}

// Expected values are what CPython 3.11's ast.literal_eval gives for the same text.
test('strings: both quote styles, every escape, raw, triple-quoted, implicit concatenation', () => {
  const cases: Array<[string, string]> = [
    [`'single'`, 'single'],
    [`"double"`, 'double'],
    [`'it\\'s'`, "it's"],
    [`"say \\"hi\\""`, 'say "hi"'],
    [`'a\\nb\\tc\\rd\\\\e'`, 'a\nb\tc\rd\\e'],
    [`'\\a\\b\\f\\v'`, '\x07\b\f\v'],
    [`'\\x41\\x4a\\xff'`, 'AJ\u00ff'],
    [`'\\u4e2d\\u6587'`, '中文'],
    [`'\\U0001F600'`, '😀'],
    [`'\\101\\7\\0\\777'`, 'A\x07\0\u01ff'],
    [`'\\q\\d'`, '\\q\\d'],
    [`'line\\\ncontinued'`, 'linecontinued'],
    [`r'\\d+\\''`, "\\d+\\'"],
    [`R"C:\\path"`, 'C:\\path'],
    [`u'unicode'`, 'unicode'],
    [`'''tri\nple 'quoted' '''`, "tri\nple 'quoted' "],
    [`"""a "b" c"""`, 'a "b" c'],
    [`'a' "b" r'\\c'`, 'ab\\c'],
    [`'民法典' '第577条'`, '民法典第577条'],
    [`'\\ud83d\\ude00'`, '😀'],
    [`'\\ud800'`, '\ud800'],
    [`''`, ''],
  ];
  for (const [text, value] of cases) assert.equal(ok(text), value, text);
});

test('numbers: ints with underscores and prefixes, signs, floats with exponents', () => {
  const cases: Array<[string, number]> = [
    ['0', 0],
    ['00', 0],
    ['577', 577],
    ['-3', -3],
    ['+3', 3],
    ['- 3', -3],
    ['-(3)', -3],
    ['1_000_000', 1000000],
    ['0x1F', 31],
    ['0X_ff', 255],
    ['0o17', 15],
    ['0b101', 5],
    ['-0x10', -16],
    ['9007199254740991', 9007199254740991],
    ['-9007199254740991', -9007199254740991],
    ['2.5', 2.5],
    ['8000.5', 8000.5],
    ['1.', 1],
    ['.5', 0.5],
    ['1e5', 100000],
    ['1E-5', 1e-5],
    ['1_0.5e1_0', 10.5e10],
    ['1e-400', 0],
    ['-2.5e-3', -0.0025],
  ];
  for (const [text, value] of cases) assert.equal(ok(text), value, text);
  assert.ok(Object.is(ok('-0.0'), -0));
  assert.ok(Object.is(ok('-0'), 0), 'an int -0 is 0');
});

test('constants and containers; tuples become arrays, dicts keep the first place of a repeated key', () => {
  assert.equal(ok('True'), true);
  assert.equal(ok('False'), false);
  assert.equal(ok('None'), null);
  assert.deepEqual(ok(`[1, 'a', None, [True, []]]`), [1, 'a', null, [true, []]]);
  assert.deepEqual(ok('[1, 2,]'), [1, 2]);
  assert.deepEqual(ok('()'), []);
  assert.deepEqual(ok('(1,)'), [1]);
  assert.deepEqual(ok('(1, (2, 3))'), [1, [2, 3]]);
  assert.equal(ok('(1)'), 1);
  assert.deepEqual(ok(`{'k': [1, 2.5, -3], "j": {}}`), { k: [1, 2.5, -3], j: {} });
  assert.deepEqual(ok(`{'a': 1, 'b': 2, 'a': 3}`), { a: 3, b: 2 });
  assert.deepEqual(Object.keys(ok(`{'b': 1, 'a': 2, 'b': 3}`) as object), ['b', 'a']);
  assert.deepEqual(ok(` \n [ 1 ,\n\t2 ] \n`), [1, 2]);
  const proto = ok(`{'__proto__': 1}`) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(proto), Object.prototype, 'a __proto__ key is an own property, never a prototype');
  assert.deepEqual(Object.keys(proto), ['__proto__']);
});

test('what is not a JSON literal is refused with a code and a position', () => {
  const cases: Array<[string, LiteralErrorCode]> = [
    ['x', 'NAME_NOT_ALLOWED'],
    ["open('/etc/passwd')", 'NAME_NOT_ALLOWED'],
    ["'a'.join([])", 'OPERATOR_NOT_ALLOWED'],
    ['1+2', 'OPERATOR_NOT_ALLOWED'],
    ['-True', 'OPERATOR_NOT_ALLOWED'],
    ['--3', 'OPERATOR_NOT_ALLOWED'],
    ["-'a'", 'OPERATOR_NOT_ALLOWED'],
    ['[x for x in y]', 'NAME_NOT_ALLOWED'],
    ['[1 for x in y]', 'COMPREHENSION_NOT_ALLOWED'],
    ['lambda: 1', 'NAME_NOT_ALLOWED'],
    ['(1)(2)', 'CALL_NOT_ALLOWED'],
    ['[*a]', 'OPERATOR_NOT_ALLOWED'],
    ['{1, 2}', 'SET_NOT_ALLOWED'],
    ['{1: 2}', 'NON_STRING_KEY'],
    ['{None: 2}', 'NON_STRING_KEY'],
    ["b'bytes'", 'STRING_PREFIX_NOT_ALLOWED'],
    ["f'{x}'", 'STRING_PREFIX_NOT_ALLOWED'],
    ["rb'x'", 'STRING_PREFIX_NOT_ALLOWED'],
    ['1j', 'COMPLEX_NOT_ALLOWED'],
    ['1.5J', 'COMPLEX_NOT_ALLOWED'],
    ['0123', 'BAD_NUMBER'],
    ['1__0', 'BAD_NUMBER'],
    ['1_', 'BAD_NUMBER'],
    ['1e', 'BAD_NUMBER'],
    ['1.5.3', 'BAD_NUMBER'],
    ['0x', 'BAD_NUMBER'],
    ['9007199254740992', 'INT_OUT_OF_RANGE'],
    ['-9007199254740992', 'INT_OUT_OF_RANGE'],
    ['1e999', 'FLOAT_OUT_OF_RANGE'],
    ["'\\x4'", 'BAD_ESCAPE'],
    ["'\\u12'", 'BAD_ESCAPE'],
    ["'\\U00110000'", 'BAD_ESCAPE'],
    ["'\\N{BULLET}'", 'BAD_ESCAPE'],
    ["'open", 'UNTERMINATED_STRING'],
    ["'line\nbreak'", 'UNTERMINATED_STRING'],
    ["'''never closed''", 'UNTERMINATED_STRING'],
    ["'ends in backslash\\", 'UNTERMINATED_STRING'],
    ['[1, 2', 'UNEXPECTED_END'],
    ['{"a": 1', 'UNEXPECTED_END'],
    ['', 'UNEXPECTED_END'],
    ['[1 2]', 'UNEXPECTED_CHARACTER'],
    ['...', 'UNEXPECTED_CHARACTER'],
    ['1 2', 'TRAILING_INPUT'],
    ['# comment', 'UNEXPECTED_CHARACTER'],
  ];
  for (const [text, expected] of cases) assert.equal(code(text), expected, text);
  const r = parsePythonLiteral("[1, 'a', x]");
  assert.ok(!r.ok);
  assert.equal(r.error.position, 9);
});

test('limits: length, depth, number of values, length of a number', () => {
  assert.equal(code('1'.repeat(20), { maxChars: 10 }), 'TOO_LONG');
  assert.equal(code('['.repeat(33) + ']'.repeat(33)), 'TOO_DEEP');
  assert.deepEqual(ok('['.repeat(32) + ']'.repeat(32)), JSON.parse('['.repeat(32) + ']'.repeat(32)));
  assert.equal(code(`[${'1,'.repeat(100)}]`, { maxValues: 50 }), 'TOO_MANY_VALUES');
  assert.equal(code('1'.repeat(401)), 'NUMBER_TOO_LONG');
  assert.equal(code('(' .repeat(1000) + '1' + ')'.repeat(1000)), 'TOO_DEEP');
  assert.equal(code('-' + '('.repeat(1000) + '1' + ')'.repeat(1000)), 'OPERATOR_NOT_ALLOWED');
  assert.equal(code('['.repeat(600) + ']'.repeat(600), { maxDepth: 10_000 }), 'TOO_DEEP', 'depth is clamped so recursion stays safe');
});

test("unparse writes what Python's repr writes (vectors from CPython 3.11)", () => {
  const floats: Array<[number, string]> = [
    [1e16, '1e+16'],
    [1e15, '1000000000000000.0'],
    [0.0001, '0.0001'],
    [1e-5, '1e-05'],
    [1.5e-7, '1.5e-07'],
    [123.456, '123.456'],
    [1e100, '1e+100'],
    [5e-324, '5e-324'],
    [1.7976931348623157e308, '1.7976931348623157e+308'],
    [0.1 + 0.2, '0.30000000000000004'],
    [8000.5, '8000.5'],
    [1e21, '1e+21'],
    [12345678901234568, '1.2345678901234568e+16'],
    [-2.5e-5, '-2.5e-05'],
    [100, '100.0'],
  ];
  for (const [x, repr] of floats) assert.equal(pythonFloatRepr(x), repr, String(x));
  assert.equal(pythonNumberRepr(100), '100', 'integral values are ints');
  assert.equal(pythonNumberRepr(-3), '-3');
  assert.equal(pythonNumberRepr(-0), '-0.0');
  assert.equal(pythonNumberRepr(1e21), '1e+21', 'beyond 2^53 an integral value is a float');
  assert.equal(pythonNumberRepr(2.5), '2.5');
  assert.throws(() => pythonNumberRepr(Number.NaN), TypeError);

  const strings: Array<[string, string]> = [
    ["it's", `"it's"`],
    ['say "hi"', `'say "hi"'`],
    [`it's "x"`, `'it\\'s "x"'`],
    ['a\\b', `'a\\\\b'`],
    ['tab\tnl\nr\r', `'tab\\tnl\\nr\\r'`],
    ['\x00\x1f\x7f', `'\\x00\\x1f\\x7f'`],
    ['\u00a0\u3000\u200b\u2028', `'\\xa0\\u3000\\u200b\\u2028'`],
    ['中文😀é', `'中文😀é'`],
    ['\ue000\u{f0000}', `'\\ue000\\U000f0000'`],
    ['\ud800', `'\\ud800'`],
  ];
  for (const [s, repr] of strings) assert.equal(pythonStrRepr(s), repr, JSON.stringify(s));

  assert.equal(unparse({ k: [1, 2.5, -3, null, true, [1, 2]], 'a"b': {} }), `{'k': [1, 2.5, -3, None, True, [1, 2]], 'a"b': {}}`);
  assert.equal(unparse([]), '[]');
  assert.throws(() => unparse({ a: undefined } as unknown as JsonValue), TypeError);
  const cyclic: unknown[] = [];
  cyclic.push(cyclic);
  assert.throws(() => unparse(cyclic as JsonValue), TypeError);
});

/** Random JSON values over the awkward corners: quotes, escapes, astral and unprintable text, every kind of number. */
function randomJson(rng: ReturnType<typeof xoroshiro128plus>, depth: number): JsonValue {
  const int = (a: number, b: number) => uniformInt(rng, a, b);
  const kind = int(0, depth >= 4 ? 5 : 7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return int(0, 1) === 1;
    case 2:
      return int(-(2 ** 31), 2 ** 31) * (int(0, 1) ? 1 : int(1, 2 ** 21));
    case 3: {
      const bits = new DataView(new ArrayBuffer(8));
      bits.setUint32(0, int(0, 2 ** 32 - 1));
      bits.setUint32(4, int(0, 2 ** 32 - 1));
      const x = bits.getFloat64(0);
      return Number.isFinite(x) ? x : uniformFloat64(rng) * 1e-300;
    }
    case 4:
    case 5: {
      const alphabet = ["'", '"', '\\', '\n', '\t', '\r', '\x00', '\x7f', 'a', ' ', '中', '😀', '\u00a0', '\u200b', '\ud800', '\udfff', '\u2028', 'é'];
      let s = '';
      for (let i = int(0, 8); i > 0; i--) s += int(0, 3) === 0 ? String.fromCodePoint(int(0, 0x10ffff)) : alphabet[int(0, alphabet.length - 1)]!;
      return s;
    }
    case 6:
      return Array.from({ length: int(0, 4) }, () => randomJson(rng, depth + 1));
    default: {
      const o: Record<string, JsonValue> = {};
      const keys = ['__proto__', 'constructor', '', 'k', `it's`, 'say "x"', '中', '10', '2'];
      for (let i = int(0, 4); i > 0; i--) {
        const value = randomJson(rng, depth + 1);
        Object.defineProperty(o, keys[int(0, keys.length - 1)]!, { value, writable: true, enumerable: true, configurable: true });
      }
      return o;
    }
  }
}

test('round trip: parse(unparse(v)) is v for random JSON values (seeded)', () => {
  const rng = xoroshiro128plus(20240501);
  for (let i = 0; i < 3000; i++) {
    const v = randomJson(rng, 0);
    const text = unparse(v);
    const r = parsePythonLiteral(text);
    assert.ok(r.ok, `${text}: ${r.ok ? '' : r.error.code}`);
    assert.deepStrictEqual(r.value, v, text);
  }
  for (let i = 0; i < 20000; i++) {
    const x = randomJson(rng, 9);
    if (typeof x !== 'number') continue;
    assert.ok(Object.is(Number(pythonFloatRepr(x)), x), `${x} -> ${pythonFloatRepr(x)}`);
  }
});

test('garbage never throws and stays fast', () => {
  const rng = xoroshiro128plus(7);
  const soup = ["'", '"', '\\', '[', ']', '(', ')', '{', '}', ',', ':', '-', '+', '.', 'e', 'j', '0', '1', '_', 'x', 'r', 'b', 'True', 'None', ' ', '\n', '\ud800', '\udc00', '😀', '=', '*', '#', 'for', 'lambda'];
  const start = performance.now();
  for (let i = 0; i < 5000; i++) {
    let text = '';
    const n = uniformInt(rng, 0, 40);
    for (let j = 0; j < n; j++) {
      text += uniformInt(rng, 0, 2) === 0 ? String.fromCharCode(uniformInt(rng, 0, 0xffff)) : soup[uniformInt(rng, 0, soup.length - 1)]!;
    }
    const r = parsePythonLiteral(text);
    if (!r.ok) assert.ok(r.error.position >= 0 && r.error.position <= text.length, text);
  }
  for (let i = 0; i < 200; i++) {
    const bytes = Buffer.from(Array.from({ length: uniformInt(rng, 0, 300) }, () => uniformInt(rng, 0, 255)));
    parsePythonLiteral(bytes.toString('utf8'));
    parsePythonLiteral(bytes.toString('latin1'));
  }
  assert.ok(performance.now() - start < 5000, 'random inputs take milliseconds each');
});

test('huge inputs are refused or read in linear time', () => {
  const mb = 1 << 20;
  const timed = (f: () => void): number => {
    const t = performance.now();
    f();
    return performance.now() - t;
  };
  const big = `'${'法'.repeat(mb)}'`;
  assert.ok(timed(() => assert.equal(code(big), 'TOO_LONG')) < 50, 'the length is checked before reading');
  const limits = { maxChars: 4 * mb };
  let parsed: JsonValue = null;
  const tString = timed(() => {
    const r = parsePythonLiteral(big, limits);
    assert.ok(r.ok);
    parsed = r.value;
  });
  assert.equal((parsed as unknown as string).length, mb);
  const escaped = `'${'\\n'.repeat(mb / 2)}'`;
  const tEscapes = timed(() => assert.ok(parsePythonLiteral(escaped, limits).ok));
  const tUnterminated = timed(() => assert.equal(code(`'${'a'.repeat(mb)}`, limits), 'UNTERMINATED_STRING'));
  const tDeep = timed(() => assert.equal(code('['.repeat(mb), limits), 'TOO_DEEP'));
  const tWide = timed(() => assert.ok(parsePythonLiteral(`[${'1,'.repeat(mb / 2)}]`, { ...limits, maxValues: 1e9 }).ok));
  const tNumber = timed(() => assert.equal(code('9'.repeat(mb), limits), 'NUMBER_TOO_LONG'));
  const tName = timed(() => assert.equal(code('x'.repeat(mb), limits), 'NAME_NOT_ALLOWED'));
  for (const [what, ms] of Object.entries({ tString, tEscapes, tUnterminated, tDeep, tWide, tNumber, tName })) {
    assert.ok(ms < 3000, `${what}: ${ms.toFixed(0)} ms for a megabyte`);
  }
});
