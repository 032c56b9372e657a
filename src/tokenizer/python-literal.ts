/**
 * Python literal expressions, read and written without ever evaluating anything: what
 * `ast.literal_eval` accepts that is also JSON (strings, numbers, True/False/None, lists, tuples,
 * dicts with string keys), and `unparse`, which writes a JSON value the way Python's `repr` (and so
 * `ast.unparse`) writes the literal.
 *
 * Hand-written on purpose: no maintained npm package reads Python literals. The Python grammars
 * that are maintained (@lezer/python, tree-sitter-python) are editor parsers of the whole
 * language: they decode neither string escapes nor numbers, accept every expression (so the
 * "literals only" check and the decoding would still be ours) and bound neither depth nor size.
 * A literal reader is small enough to be strict, bounded and total.
 *
 * How it reads: a recursive descent over the text with one position. Every function either
 * advances or fails with a `LiteralFailure` (code, message, position in UTF-16 units); the public
 * entry points turn failures into typed results, so garbage never throws. Depth and the number
 * of values are bounded (recursion is at most `maxDepth` deep), the input length is checked
 * first, and every step is linear in what it reads, so time is linear in the input.
 *
 * Mapping to JSON, and its limits:
 * - Python ints become JS numbers; an int beyond ±(2^53 − 1) is refused (`INT_OUT_OF_RANGE`)
 *   rather than silently rounded (an id number written as an int must not change).
 * - Python floats become JS numbers; one that overflows to infinity (`1e999`) is refused. JSON
 *   has one number type, so `1.0` and `1` are the same value once read, and `unparse` writes an
 *   integral number as an int (`1`), anything else as Python writes the float (`0.5`, `1e-05`,
 *   `1e+16`); -0 is written `-0.0`, so that it reads back as -0.
 * - Tuples become arrays (and are written back as lists). Sets, bytes, complex numbers, f-strings
 *   and `\N{...}` escapes are refused.
 * - Strings are JS strings: escapes that make surrogates (`'\ud83d\ude00'`) simply join into one
 *   character as JS strings do, where Python would keep two lone surrogates.
 * - White space (including newlines) is allowed between any two tokens, as inside brackets;
 *   comments and backslash continuations outside strings are not.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject;
export interface JsonObject {
  [key: string]: JsonValue;
}

export interface LiteralLimits {
  /** Longest input, in UTF-16 units; checked before anything is read. */
  maxChars: number;
  /** Deepest nesting of lists, tuples and dicts (clamped to 512 so recursion stays safe). */
  maxDepth: number;
  /** Most values in one input (every string, number, container counts one). */
  maxValues: number;
  /** Longest numeric literal (Python itself refuses ints of more than 4300 digits). */
  maxNumberChars: number;
}

export const DEFAULT_LITERAL_LIMITS: Readonly<LiteralLimits> = Object.freeze({
  maxChars: 262_144,
  maxDepth: 32,
  maxValues: 20_000,
  maxNumberChars: 400,
});

const HARD_MAX_DEPTH = 512;

export type LiteralErrorCode =
  | 'TOO_LONG'
  | 'TOO_DEEP'
  | 'TOO_MANY_VALUES'
  | 'UNEXPECTED_END'
  | 'UNEXPECTED_CHARACTER'
  | 'TRAILING_INPUT'
  | 'UNTERMINATED_STRING'
  | 'BAD_ESCAPE'
  | 'STRING_PREFIX_NOT_ALLOWED'
  | 'BAD_NUMBER'
  | 'NUMBER_TOO_LONG'
  | 'INT_OUT_OF_RANGE'
  | 'FLOAT_OUT_OF_RANGE'
  | 'COMPLEX_NOT_ALLOWED'
  | 'NAME_NOT_ALLOWED'
  | 'CALL_NOT_ALLOWED'
  | 'OPERATOR_NOT_ALLOWED'
  | 'COMPREHENSION_NOT_ALLOWED'
  | 'NON_STRING_KEY'
  | 'SET_NOT_ALLOWED';

export interface LiteralError {
  code: LiteralErrorCode;
  message: string;
  /** Where in the input (UTF-16 units) the problem was found. */
  position: number;
}

export type LiteralResult<T = JsonValue> = { ok: true; value: T } | { ok: false; error: LiteralError };

/** How a reader reports a failure internally; entry points catch it and return a result. */
export class LiteralFailure extends Error {
  constructor(readonly error: LiteralError) {
    super(`${error.code} at ${error.position}: ${error.message}`);
    this.name = 'LiteralFailure';
  }
}

/** Runs `read` and turns a LiteralFailure into an error result; any other exception is a bug and propagates. */
export function tryRead<T>(read: () => T): LiteralResult<T> {
  try {
    return { ok: true, value: read() };
  } catch (err) {
    if (err instanceof LiteralFailure) return { ok: false, error: err.error };
    throw err;
  }
}

/** Reads a whole text as one literal (surrounding white space allowed). */
export function parsePythonLiteral(text: string, limits: Partial<LiteralLimits> = {}): LiteralResult {
  const reader = new LiteralReader(text, limits);
  return tryRead(() => {
    reader.checkLength();
    reader.skipSpace();
    const value = reader.readValue(0);
    reader.skipSpace();
    if (!reader.atEnd()) reader.failAfterValue('end of input', 'TRAILING_INPUT');
    return value;
  });
}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d, 0x0c]);
const IDENTIFIER = /[\p{XID_Start}_][\p{XID_Continue}]*/uy;
/** Characters a numeric literal's token is made of (its extent is taken first, then checked whole). */
const NUMBER_CHAR = /[0-9A-Za-z_.]/;
const DECIMAL_INT = /^(?:[1-9](?:_?[0-9])*|0(?:_?0)*)$/;
const PREFIXED_INT = /^0(?:[xX](?:_?[0-9a-fA-F])+|[oO](?:_?[0-7])+|[bB](?:_?[01])+)$/;
const DIGITS = '[0-9](?:_?[0-9])*';
const FLOAT = new RegExp(`^(?:(?:(?:${DIGITS})?\\.${DIGITS}|${DIGITS}\\.)(?:[eE][+-]?${DIGITS})?|${DIGITS}[eE][+-]?${DIGITS})$`);
const IMAGINARY = new RegExp(`^(?:(?:${DIGITS})?\\.?(?:${DIGITS})?(?:[eE][+-]?${DIGITS})?)[jJ]$`);
const OPERATORS = new Set(['+', '-', '*', '/', '%', '@', '&', '|', '^', '~', '<', '>', '=', '!']);
const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

function isHex(s: string): boolean {
  return /^[0-9a-fA-F]+$/.test(s);
}

/**
 * A cursor over a text that reads literal values; shared with the `tool_call(...)` reader, which
 * reads the call's own syntax and hands each argument's value to `readValue`.
 */
export class LiteralReader {
  pos = 0;
  readonly limits: LiteralLimits;
  private values = 0;

  constructor(
    readonly text: string,
    limits: Partial<LiteralLimits> = {},
  ) {
    const l = { ...DEFAULT_LITERAL_LIMITS, ...limits };
    this.limits = { ...l, maxDepth: Math.min(l.maxDepth, HARD_MAX_DEPTH) };
  }

  fail(code: LiteralErrorCode, message: string, position = this.pos): never {
    throw new LiteralFailure({ code, message, position });
  }

  checkLength(): void {
    if (this.text.length > this.limits.maxChars) {
      this.fail('TOO_LONG', `input of ${this.text.length} characters is longer than ${this.limits.maxChars}`, 0);
    }
  }

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  peek(offset = 0): string {
    return this.text.charAt(this.pos + offset);
  }

  skipSpace(): void {
    while (this.pos < this.text.length && SPACE.has(this.text.charCodeAt(this.pos))) this.pos++;
  }

  /** An identifier at the position (consumed), or null (nothing consumed). */
  readIdentifier(): string | null {
    IDENTIFIER.lastIndex = this.pos;
    const m = IDENTIFIER.exec(this.text);
    if (!m) return null;
    this.pos += m[0].length;
    return m[0];
  }

  /**
   * Fails on whatever stands where `expected` should: naming calls, operators and comprehensions
   * for what they are, so that a refusal says why.
   */
  failAfterValue(expected: string, fallback: LiteralErrorCode = 'UNEXPECTED_CHARACTER'): never {
    if (this.atEnd()) this.fail('UNEXPECTED_END', `input ends where ${expected} was expected`);
    const c = this.peek();
    if (c === '(') this.fail('CALL_NOT_ALLOWED', 'calls are not literals');
    if (c === '.' || c === '[') this.fail('OPERATOR_NOT_ALLOWED', 'attributes and subscripts are not literals');
    if (OPERATORS.has(c)) this.fail('OPERATOR_NOT_ALLOWED', `operator '${c}' is not a literal`);
    const start = this.pos;
    const word = this.readIdentifier();
    if (word === 'for' || word === 'async') this.fail('COMPREHENSION_NOT_ALLOWED', 'comprehensions are not literals', start);
    if (word !== null) this.fail('NAME_NOT_ALLOWED', `'${word.slice(0, 64)}' is not a literal`, start);
    this.fail(fallback, `${JSON.stringify(c)} where ${expected} was expected`);
  }

  private count(): void {
    if (++this.values > this.limits.maxValues) this.fail('TOO_MANY_VALUES', `more than ${this.limits.maxValues} values`);
  }

  /** One value; `depth` is the nesting of the container it stands in. */
  readValue(depth: number): JsonValue {
    this.skipSpace();
    if (this.atEnd()) this.fail('UNEXPECTED_END', 'input ends where a value was expected');
    const c = this.peek();
    if (c === '[' || c === '(' || c === '{') {
      if (depth + 1 > this.limits.maxDepth) this.fail('TOO_DEEP', `nesting deeper than ${this.limits.maxDepth}`);
      this.count();
      if (c === '[') return this.readSequence(']', depth + 1);
      if (c === '(') return this.readParenthesized(depth + 1);
      return this.readDict(depth + 1);
    }
    this.count();
    if (c === "'" || c === '"') return this.readStrings();
    if (c === '-' || c === '+') return this.readSigned();
    if ((c >= '0' && c <= '9') || (c === '.' && /[0-9]/.test(this.peek(1)))) return this.readNumber();
    const start = this.pos;
    const word = this.readIdentifier();
    if (word === null) {
      if (c === '*') this.fail('OPERATOR_NOT_ALLOWED', 'unpacking is not a literal');
      if (c === '.') this.fail('UNEXPECTED_CHARACTER', "'...' is not a JSON value");
      this.fail('UNEXPECTED_CHARACTER', `${JSON.stringify(c)} cannot start a value`);
    }
    const q = this.peek();
    if ((q === "'" || q === '"') && word.length <= 2) {
      this.pos = start;
      return this.readStrings();
    }
    if (word === 'True') return true;
    if (word === 'False') return false;
    if (word === 'None') return null;
    if (word === 'lambda') this.fail('NAME_NOT_ALLOWED', 'lambdas are not literals', start);
    this.fail('NAME_NOT_ALLOWED', `'${word.slice(0, 64)}' is a name, not a literal`, start);
  }

  private readSequence(close: string, depth: number): JsonValue[] {
    this.pos++;
    const items: JsonValue[] = [];
    for (;;) {
      this.skipSpace();
      if (this.peek() === close) {
        this.pos++;
        return items;
      }
      items.push(this.readValue(depth));
      this.skipSpace();
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== close) this.failAfterValue(`',' or '${close}'`);
    }
  }

  /** `()` is an empty tuple, `(x)` is x, `(x,)` and `(x, y)` are tuples. */
  private readParenthesized(depth: number): JsonValue {
    this.pos++;
    this.skipSpace();
    if (this.peek() === ')') {
      this.pos++;
      return [];
    }
    const first = this.readValue(depth);
    this.skipSpace();
    if (this.peek() === ')') {
      this.pos++;
      return first;
    }
    if (this.peek() !== ',') this.failAfterValue("',' or ')'");
    this.pos++;
    const items = [first];
    for (;;) {
      this.skipSpace();
      if (this.peek() === ')') {
        this.pos++;
        return items;
      }
      items.push(this.readValue(depth));
      this.skipSpace();
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== ')') this.failAfterValue("',' or ')'");
    }
  }

  private readDict(depth: number): JsonObject {
    this.pos++;
    const dict: JsonObject = {};
    let first = true;
    for (;;) {
      this.skipSpace();
      if (this.peek() === '}') {
        this.pos++;
        return dict;
      }
      const keyAt = this.pos;
      const key = this.readValue(depth);
      this.skipSpace();
      if (this.peek() !== ':') {
        if (first && (this.peek() === ',' || this.peek() === '}')) this.fail('SET_NOT_ALLOWED', 'sets are not JSON values', keyAt);
        this.failAfterValue("':'");
      }
      if (typeof key !== 'string') this.fail('NON_STRING_KEY', 'dict keys must be strings', keyAt);
      this.pos++;
      const value = this.readValue(depth);
      // An own property even for '__proto__'; a repeated key keeps its first place, as in Python.
      Object.defineProperty(dict, key, { value, writable: true, enumerable: true, configurable: true });
      first = false;
      this.skipSpace();
      if (this.peek() === ',') this.pos++;
      else if (this.peek() !== '}') this.failAfterValue("',' or '}'");
    }
  }

  /** A sign and a number; the number may stand in parentheses (`-(3)`), which Python drops. */
  private readSigned(): number {
    const start = this.pos;
    const negative = this.peek() === '-';
    this.pos++;
    this.skipSpace();
    let parens = 0;
    while (this.peek() === '(' && parens < this.limits.maxDepth) {
      parens++;
      this.pos++;
      this.skipSpace();
    }
    const c = this.peek();
    if (!((c >= '0' && c <= '9') || (c === '.' && /[0-9]/.test(this.peek(1))))) {
      this.fail('OPERATOR_NOT_ALLOWED', 'a sign applies only to a number', start);
    }
    const n = this.readNumber(negative);
    for (; parens > 0; parens--) {
      this.skipSpace();
      if (this.peek() !== ')') this.failAfterValue("')'");
      this.pos++;
    }
    return n;
  }

  private readNumber(negative = false): number {
    const start = this.pos;
    const text = this.text;
    let end = start;
    const prefixed = text[start] === '0' && /[xXoObB]/.test(text[start + 1] ?? '');
    while (end < text.length && end - start <= this.limits.maxNumberChars) {
      const ch = text[end]!;
      if (NUMBER_CHAR.test(ch)) end++;
      else if ((ch === '+' || ch === '-') && !prefixed && /[eE]/.test(text[end - 1]!)) end++;
      else break;
    }
    if (end - start > this.limits.maxNumberChars) {
      this.fail('NUMBER_TOO_LONG', `numeric literal longer than ${this.limits.maxNumberChars} characters`, start);
    }
    const token = text.slice(start, end);
    this.pos = end;
    if (DECIMAL_INT.test(token) || PREFIXED_INT.test(token)) {
      const big = BigInt(token.replaceAll('_', ''));
      const value = negative ? -big : big;
      if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) {
        this.fail('INT_OUT_OF_RANGE', `integer ${token.slice(0, 40)} is beyond what a JSON number holds exactly`, start);
      }
      return Number(value);
    }
    if (FLOAT.test(token)) {
      const value = Number(token.replaceAll('_', ''));
      if (!Number.isFinite(value)) this.fail('FLOAT_OUT_OF_RANGE', `float ${token.slice(0, 40)} is too large`, start);
      return negative ? -value : value;
    }
    if (IMAGINARY.test(token)) this.fail('COMPLEX_NOT_ALLOWED', 'complex numbers are not JSON values', start);
    if (/^0[0-9_]+$/.test(token)) this.fail('BAD_NUMBER', 'leading zeros are not allowed in decimal integers', start);
    this.fail('BAD_NUMBER', `invalid numeric literal ${JSON.stringify(token.slice(0, 40))}`, start);
  }

  /** One string literal or several adjacent ones (implicit concatenation). */
  private readStrings(): string {
    let out = this.readString();
    for (;;) {
      const save = this.pos;
      this.skipSpace();
      const c = this.peek();
      if (c === "'" || c === '"') {
        this.count();
        out += this.readString();
        continue;
      }
      const word = this.readIdentifier();
      const q = this.peek();
      if (word !== null && word.length <= 2 && (q === "'" || q === '"')) {
        this.pos -= word.length;
        this.count();
        out += this.readString();
        continue;
      }
      this.pos = save;
      return out;
    }
  }

  /** One literal: an optional prefix (r, u; b and f are refused), then the quoted text. */
  private readString(): string {
    const start = this.pos;
    let raw = false;
    const prefix = this.readIdentifier() ?? '';
    const lower = prefix.toLowerCase();
    if (lower === 'r') raw = true;
    else if (lower !== '' && lower !== 'u') {
      const what = lower.includes('b') ? 'bytes are' : lower.includes('f') || lower.includes('t') ? 'f-strings are' : `prefix '${prefix}' is`;
      this.fail('STRING_PREFIX_NOT_ALLOWED', `${what} not allowed in a literal`, start);
    }
    const text = this.text;
    const q = text[this.pos]!;
    const triple = text.startsWith(q + q + q, this.pos);
    this.pos += triple ? 3 : 1;
    const parts: string[] = [];
    let run = this.pos;
    for (;;) {
      if (this.pos >= text.length) this.fail('UNTERMINATED_STRING', 'string is not closed', start);
      const c = text[this.pos]!;
      if (c === q && (!triple || text.startsWith(q + q + q, this.pos))) {
        parts.push(text.slice(run, this.pos));
        this.pos += triple ? 3 : 1;
        return parts.join('');
      }
      if ((c === '\n' || c === '\r') && !triple) this.fail('UNTERMINATED_STRING', 'string is not closed on its line', start);
      if (c === '\r') {
        // Python reads source with universal newlines: \r\n and \r are \n.
        parts.push(text.slice(run, this.pos), '\n');
        this.pos += text[this.pos + 1] === '\n' ? 2 : 1;
        run = this.pos;
        continue;
      }
      if (c !== '\\') {
        this.pos++;
        continue;
      }
      if (this.pos + 1 >= text.length) this.fail('UNTERMINATED_STRING', 'string is not closed', start);
      if (raw) {
        // A raw string keeps the backslash, and the character after it never ends the string.
        if (text[this.pos + 1] === '\r') {
          parts.push(text.slice(run, this.pos), '\\\n');
          this.pos += text[this.pos + 2] === '\n' ? 3 : 2;
          run = this.pos;
          continue;
        }
        this.pos += 2;
        continue;
      }
      parts.push(text.slice(run, this.pos));
      parts.push(this.readEscape());
      run = this.pos;
    }
  }

  /** The escape at the position (a backslash and what follows), decoded as Python does. */
  private readEscape(): string {
    const text = this.text;
    const at = this.pos;
    const c = text[at + 1]!;
    this.pos = at + 2;
    const simple = SIMPLE_ESCAPES[c];
    if (simple !== undefined) return simple;
    if (c === '\n') return '';
    if (c === '\r') {
      if (text[this.pos] === '\n') this.pos++;
      return '';
    }
    if (c >= '0' && c <= '7') {
      let end = at + 2;
      while (end < at + 4 && end < text.length && text[end]! >= '0' && text[end]! <= '7') end++;
      this.pos = end;
      return String.fromCharCode(Number.parseInt(text.slice(at + 1, end), 8));
    }
    const hexLength = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
    if (hexLength > 0) {
      const hex = text.slice(at + 2, at + 2 + hexLength);
      if (hex.length < hexLength || !isHex(hex)) this.fail('BAD_ESCAPE', `truncated \\${c} escape`, at);
      const code = Number.parseInt(hex, 16);
      if (code > 0x10ffff) this.fail('BAD_ESCAPE', `\\${c}${hex} is beyond Unicode`, at);
      this.pos = at + 2 + hexLength;
      return String.fromCodePoint(code);
    }
    if (c === 'N') this.fail('BAD_ESCAPE', '\\N{...} named escapes are not supported', at);
    // Python keeps an unknown escape as it is (with a warning).
    this.pos = at + 1;
    return '\\';
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

/**
 * A number as Python writes it: an integral value within ±(2^53 − 1) as an int, anything else as
 * `repr(float)` (shortest digits that read back; fixed notation for exponents from −4 to 15).
 */
export function pythonNumberRepr(x: number): string {
  if (!Number.isFinite(x)) throw new TypeError(`${x} is not a JSON number`);
  if (Object.is(x, -0)) return '-0.0';
  if (Number.isSafeInteger(x)) return String(x);
  return pythonFloatRepr(x);
}

/** `repr(float)`: JS and Python both pick the shortest round-trip digits; only the layout differs. */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa, exp] = Math.abs(x).toExponential().split('e') as [string, string];
  const digits = mantissa.replace('.', '');
  const e = Number(exp);
  // Python's rule (float_repr_style 'short'): exponent notation when decpt <= -4 or decpt > 16.
  const decpt = e + 1;
  if (decpt <= -4 || decpt > 16) {
    const frac = digits.length > 1 ? `.${digits.slice(1)}` : '';
    const es = Math.abs(e).toString().padStart(2, '0');
    return `${sign}${digits[0]}${frac}e${e < 0 ? '-' : '+'}${es}`;
  }
  if (decpt <= 0) return `${sign}0.${'0'.repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${'0'.repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}

/** Python's `str.isprintable` for one non-ASCII code point: not Other, not a Separator. */
const NOT_PRINTABLE = /^[\p{Cc}\p{Cf}\p{Cs}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Zs}]$/u;

/**
 * `repr(str)`: single quotes unless the text has a single quote and no double quote; backslash,
 * the quote, \t \n \r escaped; other control characters as \xhh; non-ASCII kept unless not
 * printable, then \xhh, \uhhhh or \Uhhhhhhhh. (Printability follows the Unicode tables of this
 * Node; Python's own may be a version apart for characters assigned recently.)
 */
export function pythonStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === '\\') out += `\\${ch}`;
    else if (ch === '\t') out += '\\t';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp < 0x7f) out += ch;
    else if (!NOT_PRINTABLE.test(ch)) out += ch;
    else if (cp <= 0xff) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else if (cp <= 0xffff) out += `\\u${cp.toString(16).padStart(4, '0')}`;
    else out += `\\U${cp.toString(16).padStart(8, '0')}`;
  }
  return out + quote;
}

/**
 * A JSON value as Python's `ast.unparse` (that is `repr`) writes the literal: `'text'`, `True`,
 * `None`, `[1, 2.5]`, `{'k': 'v'}`. Throws a TypeError on what is not JSON (undefined, NaN, a
 * function, a cycle): it is handed validated values, never outside text.
 */
export function unparse(value: JsonValue): string {
  return write(value, 0);
}

function write(value: unknown, depth: number): string {
  if (depth > HARD_MAX_DEPTH) throw new TypeError('value is nested too deeply (or cyclic)');
  if (value === null) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return pythonNumberRepr(value);
  if (typeof value === 'string') return pythonStrRepr(value);
  if (Array.isArray(value)) return `[${value.map((v) => write(v, depth + 1)).join(', ')}]`;
  if (typeof value === 'object') {
    const items = Object.entries(value as object).map(([k, v]) => `${pythonStrRepr(k)}: ${write(v, depth + 1)}`);
    return `{${items.join(', ')}}`;
  }
  throw new TypeError(`${typeof value} is not a JSON value`);
}
