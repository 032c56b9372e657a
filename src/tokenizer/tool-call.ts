/**
 * ChatGLM3's tool calls as the model writes them, read and written.
 *
 * The model answers a call with an assistant turn whose metadata line is the function's name and
 * whose content is a python fence holding one call: `get_statute\n` + "```python\n" +
 * `tool_call(law='民法典', article=577)` + "\n```" (the fine-tuning format of ChatGLM3, whose
 * arguments are written by `ast.unparse`). ChatGLM3's own API demo `eval()`s that text; here it is
 * read by a grammar of keyword arguments whose values are Python literals (python-literal.ts):
 * anything else (calls, names, operators, comprehensions, `**`, positional arguments, another
 * function than `tool_call`, text around the fence, unbalanced brackets) is refused with a
 * reason, and the caller shows the answer as plain text. Nothing is ever evaluated.
 *
 * Accepted around the call: white space, a fence opened by "```", "```python" or "```py" that
 * then must be closed, or no fence at all. Argument names are Python identifiers (Python's
 * keywords such as `from` included, which Python itself would refuse; a model fine-tuned on
 * such a schema writes them).
 */
import {
  LiteralFailure,
  LiteralReader,
  unparse,
  type JsonObject,
  type LiteralErrorCode,
  type LiteralLimits,
} from './python-literal.js';

/** The only function a call may name (ChatGLM3's fine-tuning format). */
export const TOOL_CALL_FUNCTION = 'tool_call';
/** Tool names as OpenAI allows them. */
export const TOOL_NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
export const FENCE_OPEN = '```python\n';
export const FENCE_CLOSE = '\n```';

export interface ToolCall {
  name: string;
  arguments: JsonObject;
}

export type ToolCallRefusalCode =
  | LiteralErrorCode
  | 'INVALID_TOOL_NAME'
  | 'UNKNOWN_TOOL'
  | 'EMPTY_CALL'
  | 'FENCE_LANGUAGE'
  | 'UNCLOSED_FENCE'
  | 'TEXT_OUTSIDE_CALL'
  | 'NOT_TOOL_CALL'
  | 'POSITIONAL_ARGUMENT'
  | 'UNPACKING_NOT_ALLOWED'
  | 'DUPLICATE_ARGUMENT';

export interface ToolCallRefusal {
  code: ToolCallRefusalCode;
  message: string;
  /** Where in the content (UTF-16 units), when the problem is in the content. */
  position: number | null;
}

export type ToolCallResult = { ok: true; call: ToolCall } | { ok: false; refusal: ToolCallRefusal };
export type ToolArgumentsResult = { ok: true; arguments: JsonObject } | { ok: false; refusal: ToolCallRefusal };

export interface ToolCallOptions {
  /** The names the request offered; a call to any other is refused. Absent: any valid name. */
  toolNames?: Iterable<string>;
  /** Bounds on the content and its argument values (maxDepth counts the arguments object). */
  limits?: Partial<LiteralLimits>;
}

/** Reads one assistant turn (metadata line, content) as a call. */
export function parseToolCall(metadata: string, content: string, options: ToolCallOptions = {}): ToolCallResult {
  const name = metadata.trim();
  if (!TOOL_NAME_PATTERN.test(name)) {
    const shown = JSON.stringify(name.slice(0, 80));
    return refuse('INVALID_TOOL_NAME', `tool name ${shown} does not match ${TOOL_NAME_PATTERN.source}`, null);
  }
  if (options.toolNames !== undefined && !new Set(options.toolNames).has(name)) {
    return refuse('UNKNOWN_TOOL', `'${name}' is not one of the tools of the request`, null);
  }
  const args = parseToolCallContent(content, options.limits);
  return args.ok ? { ok: true, call: { name, arguments: args.arguments } } : args;
}

/** Reads the content of a call turn: an optional fence around `tool_call(k=v, ...)`. */
export function parseToolCallContent(content: string, limits: Partial<LiteralLimits> = {}): ToolArgumentsResult {
  const reader = new LiteralReader(content, limits);
  try {
    reader.checkLength();
    reader.skipSpace();
    if (reader.atEnd()) throw refusal('EMPTY_CALL', 'the content is empty', reader.pos);
    const fenced = content.startsWith('```', reader.pos);
    if (fenced) readFenceOpening(reader);
    const args = readCall(reader);
    reader.skipSpace();
    if (fenced) {
      if (!content.startsWith('```', reader.pos)) {
        if (reader.atEnd()) throw refusal('UNCLOSED_FENCE', 'the python fence is not closed', reader.pos);
        throw refusal('TEXT_OUTSIDE_CALL', 'text follows the call inside the fence', reader.pos);
      }
      reader.pos += 3;
      reader.skipSpace();
    }
    if (!reader.atEnd()) throw refusal('TEXT_OUTSIDE_CALL', 'text follows the call', reader.pos);
    return { ok: true, arguments: args };
  } catch (err) {
    if (err instanceof RefusalFailure) return { ok: false, refusal: err.refusal };
    if (err instanceof LiteralFailure) return refuse(err.error.code, err.error.message, err.error.position);
    throw err;
  }
}

/**
 * `tool_call(k=v, ...)` for the arguments, values written as `ast.unparse` writes them. Names are
 * written as they are, as Python's unparse does; one that is not an identifier (`my-key`) makes a
 * call this module's reader would refuse, which is what the model would have seen in training too.
 */
export function formatToolCallCode(args: JsonObject): string {
  const items = Object.entries(args).map(([k, v]) => `${k}=${unparse(v)}`);
  return `${TOOL_CALL_FUNCTION}(${items.join(', ')})`;
}

/** The content of a call turn in ChatGLM3's fine-tuning format: the call in a python fence. */
export function formatToolCallContent(args: JsonObject): string {
  return FENCE_OPEN + formatToolCallCode(args) + FENCE_CLOSE;
}

/** A refusal of the call's own syntax, thrown inside the reader and caught by parseToolCallContent. */
class RefusalFailure extends Error {
  constructor(readonly refusal: ToolCallRefusal) {
    super(refusal.message);
  }
}

function refusal(code: ToolCallRefusalCode, message: string, position: number | null): RefusalFailure {
  return new RefusalFailure({ code, message, position });
}

function refuse(code: ToolCallRefusalCode, message: string, position: number | null): { ok: false; refusal: ToolCallRefusal } {
  return { ok: false, refusal: { code, message, position } };
}

function readFenceOpening(reader: LiteralReader): void {
  const start = reader.pos;
  reader.pos += 3;
  const language = reader.readIdentifier() ?? '';
  if (language !== '' && language.toLowerCase() !== 'python' && language.toLowerCase() !== 'py') {
    throw refusal('FENCE_LANGUAGE', `a fence of ${JSON.stringify(language.slice(0, 40))} is not python`, start);
  }
}

function readCall(reader: LiteralReader): JsonObject {
  reader.skipSpace();
  const start = reader.pos;
  const fn = reader.readIdentifier();
  if (fn !== TOOL_CALL_FUNCTION) {
    const what = fn === null ? 'the content' : `'${fn.slice(0, 64)}'`;
    throw refusal('NOT_TOOL_CALL', `${what} is not a call of ${TOOL_CALL_FUNCTION}(...)`, start);
  }
  reader.skipSpace();
  if (reader.peek() !== '(') throw refusal('NOT_TOOL_CALL', `${TOOL_CALL_FUNCTION} is not called`, reader.pos);
  reader.pos++;
  const args: JsonObject = {};
  for (;;) {
    reader.skipSpace();
    if (reader.peek() === ')') {
      reader.pos++;
      return args;
    }
    if (reader.atEnd()) reader.fail('UNEXPECTED_END', `the call is not closed with ')'`);
    const at = reader.pos;
    if (reader.peek() === '*') throw refusal('UNPACKING_NOT_ALLOWED', '* and ** unpacking are not allowed', at);
    const key = reader.readIdentifier();
    reader.skipSpace();
    if (key === null || reader.peek() !== '=' || reader.peek(1) === '=') {
      throw refusal('POSITIONAL_ARGUMENT', 'only keyword arguments (name=value) are allowed', at);
    }
    reader.pos++;
    if (Object.hasOwn(args, key)) throw refusal('DUPLICATE_ARGUMENT', `argument '${key.slice(0, 64)}' is repeated`, at);
    const value = reader.readValue(1);
    Object.defineProperty(args, key, { value, writable: true, enumerable: true, configurable: true });
    reader.skipSpace();
    if (reader.peek() === ',') reader.pos++;
    else if (reader.peek() !== ')') reader.failAfterValue("',' or ')'");
  }
}

/**
 * One assistant turn of a reply. ChatGLM3 may write several in one answer (`<|assistant|>`
 * between them, before it stops on `<|observation|>`): each call is its own turn.
 */
export interface ReplySegment {
  metadata: string;
  content: string;
}

export interface ReplyReading {
  /** The answer's text: turns with empty metadata, or everything when a call did not parse. */
  content: string;
  /** In the order written; empty when the reply is plain text. */
  toolCalls: ToolCall[];
  /** Why a turn that looked like a call (non-empty metadata) was taken as text. */
  refusal: ToolCallRefusal | null;
}

/**
 * A whole reply: calls when every turn with metadata parses as one, else plain text. A reply is
 * never half calls, half refused calls: one refused call makes all of it text, so that nothing
 * the model wrote is lost or run on a guess. Text is each turn's content without its metadata
 * line, stripped (ChatGLM3's `process_response`), turns joined by a newline.
 */
export function readReply(segments: readonly ReplySegment[], options: ToolCallOptions = {}): ReplyReading {
  const texts: string[] = [];
  const calls: ToolCall[] = [];
  let refused: ToolCallRefusal | null = null;
  for (const s of segments) {
    if (s.metadata.trim() === '') {
      texts.push(s.content.trim());
      continue;
    }
    const r = parseToolCall(s.metadata, s.content, options);
    if (r.ok) calls.push(r.call);
    else refused ??= r.refusal;
  }
  if (refused !== null || calls.length === 0) {
    const all = segments.map((s) => s.content.trim()).filter((t) => t !== '');
    return { content: all.join('\n'), toolCalls: [], refusal: refused };
  }
  return { content: texts.filter((t) => t !== '').join('\n'), toolCalls: calls, refusal: null };
}
