/**
 * OpenAI chat requests with tools, as ChatGLM3 prompt turns (what `build_chat_input` and the
 * fine-tuning format of ChatGLM3 feed the model):
 *
 * 1. With tools, a first `system` turn: a sentence, "\n", and the tools' `function` objects as
 *    `json.dumps(functions, indent=4, ensure_ascii=False)`, keys in the order the client sent
 *    them. The sentence is the client's first system (or developer) message, which is then used
 *    up, else ChatGLM3's own (`DEFAULT_TOOLS_SENTENCE`).
 * 2. Every other message is one turn with empty metadata, except: an assistant message with
 *    `tool_calls` is its content (when not empty) as a plain assistant turn, then one assistant
 *    turn per call, metadata = the function's name, content = the call as ChatGLM3's fine-tuning
 *    format writes it (tool-call.ts); a `tool` message is an `observation` turn with its content.
 * 3. Without tools, exactly the chat template of plain requests.
 *
 * `tool_choice` (ChatGLM3 has no native one, and there is no constrained decoding here):
 * - `auto` (the default with tools): all tools listed; the reply is read for calls.
 * - `none`: no tools turn at all, so the model is not invited to call, and the reply is read as
 *   text only (a call written anyway comes out as its text). Calls and results already in the
 *   history still render, so the conversation stays what it was. Keeping the tools listed while
 *   refusing calls would only invite calls that then cannot be answered.
 * - a named function: only that tool is listed, and the answer's metadata line is put in the
 *   prompt (`answerMetadata`: `<|assistant|>` + encode(name + "\n"), the same ids as a turn that
 *   calls it), so the model continues with the call's content. This is the one choice the prompt
 *   can force; the metadata line falls on the same token boundary as in training.
 * - `required`: with one tool, the same as naming it; with several, all are listed as for `auto`
 *   and the model is trusted to call (no tool can be picked for it without guessing). A reply
 *   without a call is then an ordinary answer; `toolChoice` in the result says it was required.
 * `required` or a named function without tools is refused; `none` and `auto` without tools are
 * the plain template.
 *
 * JSON as Python writes it: `pythonJsonDumps` differs from `JSON.stringify(v, null, 4)` only in
 * numbers (integral values as ints, others as Python's float repr: `1e-05` not `1e-7`-style,
 * `1e+16`, `-0.0`), which is all that can differ once the body is parsed. What JSON.parse has
 * already lost cannot come back: a `1.0` the client sent is the number 1 and is written `1`, and
 * integer-like keys (`"10"`, `"2"`) come out first in ascending order, as JS objects keep them.
 * Render from the request as parsed, not from a schema library's output: zod rebuilds objects in
 * its schema's key order and drops keys it does not know, and the model must see the client's.
 */
import type { ChatTurn } from './chat-turn.js';
import { pythonNumberRepr, type JsonObject, type JsonValue } from './python-literal.js';
import { formatToolCallContent, TOOL_NAME_PATTERN } from './tool-call.js';

export const DEFAULT_TOOLS_SENTENCE =
  'Answer the following questions as best as you can. You have access to the following tools:';

export interface ToolLimits {
  /** Most tools in one request. */
  maxTools: number;
  /** Longest tools list as written into the prompt (characters). */
  maxToolsChars: number;
  /** Deepest nesting inside one tool's function object, and inside one call's arguments. */
  maxDepth: number;
}

export const DEFAULT_TOOL_LIMITS: Readonly<ToolLimits> = Object.freeze({
  maxTools: 64,
  maxToolsChars: 131_072,
  maxDepth: 32,
});

export type ToolIssueCode =
  | 'INVALID_TOOLS'
  | 'TOO_MANY_TOOLS'
  | 'TOOLS_TOO_LARGE'
  | 'INVALID_TOOL'
  | 'UNSUPPORTED_TOOL_TYPE'
  | 'INVALID_TOOL_NAME'
  | 'DUPLICATE_TOOL_NAME'
  | 'INVALID_TOOL_DESCRIPTION'
  | 'INVALID_TOOL_PARAMETERS'
  | 'TOOL_TOO_DEEP'
  | 'INVALID_TOOL_CHOICE'
  | 'UNKNOWN_TOOL_CHOICE'
  | 'TOOL_CHOICE_WITHOUT_TOOLS'
  | 'INVALID_MESSAGE'
  | 'INVALID_TOOL_CALL'
  | 'INVALID_TOOL_CALL_ARGUMENTS';

/** A request the template cannot render: a stable code, what is wrong, and the field at fault. */
export interface ToolIssue {
  code: ToolIssueCode;
  message: string;
  /** Dotted path of the field, as the error envelope's `param` (`tools.0.function.name`). */
  param: string;
}

export type ToolResult<T> = { ok: true; value: T } | { ok: false; issue: ToolIssue };

/** A checked tools list; `functions` are the client's own objects (not copies), in its order. */
export interface ValidTools {
  functions: readonly JsonObject[];
  names: readonly string[];
}

export type ToolChoice = { type: 'none' } | { type: 'auto' } | { type: 'required' } | { type: 'function'; name: string };

export interface TextPart {
  type: 'text';
  text: string;
}

/** The parts of an OpenAI chat message the template reads (the gateway validates the rest). */
export interface ToolMessageInput {
  role: string;
  content?: string | readonly TextPart[] | null;
  tool_calls?: readonly unknown[] | null;
  tool_call_id?: string;
}

export interface ToolRequestInput {
  messages: readonly ToolMessageInput[];
  tools?: unknown;
  tool_choice?: unknown;
}

export interface ToolPrompt {
  turns: ChatTurn[];
  /**
   * The metadata line already written for the answer (a named tool_choice): encode it after
   * `<|assistant|>` (ChatGLMTokenizer.encodeTurns' `answerMetadata`), and read the reply as a turn
   * with this metadata (the model continues with the content).
   */
  answerMetadata: string | undefined;
  /** Names the reply may call; empty: read the reply as text only. */
  callableTools: readonly string[];
  toolChoice: ToolChoice;
}

function issue(code: ToolIssueCode, message: string, param: string): { ok: false; issue: ToolIssue } {
  return { ok: false, issue: { code, message, param } };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

/**
 * The first place (dotted path) where `value` is not JSON or nests deeper than `maxDepth`, or
 * null. Recursion stops at maxDepth, so it is bounded whatever the input.
 */
function findNonJson(value: unknown, maxDepth: number, path: string, depth = 0): { path: string; tooDeep: boolean } | null {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return null;
  if (typeof value === 'number') return Number.isFinite(value) ? null : { path, tooDeep: false };
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) return { path, tooDeep: false };
  if (depth + 1 > maxDepth) return { path, tooDeep: true };
  if (isArray) {
    const list = value as unknown[];
    for (let i = 0; i < list.length; i++) {
      if (!(i in list)) return { path: `${path}.${i}`, tooDeep: false };
      const found = findNonJson(list[i], maxDepth, `${path}.${i}`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  for (const k of Object.keys(value as object)) {
    const found = findNonJson((value as Record<string, unknown>)[k], maxDepth, `${path}.${k}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** Checks an OpenAI `tools` list; null or an empty list means no tools. */
export function validateTools(tools: unknown, limits: Partial<ToolLimits> = {}): ToolResult<ValidTools | null> {
  const l = { ...DEFAULT_TOOL_LIMITS, ...limits };
  if (tools === undefined || tools === null) return { ok: true, value: null };
  if (!Array.isArray(tools)) return issue('INVALID_TOOLS', 'tools must be a list', 'tools');
  if (tools.length === 0) return { ok: true, value: null };
  if (tools.length > l.maxTools) return issue('TOO_MANY_TOOLS', `at most ${l.maxTools} tools, got ${tools.length}`, 'tools');
  const functions: JsonObject[] = [];
  const names: string[] = [];
  for (let i = 0; i < tools.length; i++) {
    const at = `tools.${i}`;
    const tool: unknown = tools[i];
    if (!isPlainObject(tool)) return issue('INVALID_TOOL', 'a tool must be an object', at);
    if (tool.type !== 'function') return issue('UNSUPPORTED_TOOL_TYPE', "only tools of type 'function' are supported", `${at}.type`);
    const fn = tool.function;
    if (!isPlainObject(fn)) return issue('INVALID_TOOL', 'function must be an object', `${at}.function`);
    const name = fn.name;
    if (typeof name !== 'string' || !TOOL_NAME_PATTERN.test(name)) {
      return issue('INVALID_TOOL_NAME', `function name must match ${TOOL_NAME_PATTERN.source}`, `${at}.function.name`);
    }
    if (names.includes(name)) return issue('DUPLICATE_TOOL_NAME', `tool '${name}' is listed twice`, `${at}.function.name`);
    if (fn.description !== undefined && typeof fn.description !== 'string') {
      return issue('INVALID_TOOL_DESCRIPTION', 'description must be a string', `${at}.function.description`);
    }
    if (fn.parameters !== undefined) {
      if (!isPlainObject(fn.parameters)) {
        return issue('INVALID_TOOL_PARAMETERS', 'parameters must be a JSON Schema object', `${at}.function.parameters`);
      }
      if (fn.parameters.type !== undefined && fn.parameters.type !== 'object') {
        return issue('INVALID_TOOL_PARAMETERS', "parameters must be a schema of type 'object'", `${at}.function.parameters.type`);
      }
    }
    const bad = findNonJson(fn, l.maxDepth, `${at}.function`);
    if (bad?.tooDeep) return issue('TOOL_TOO_DEEP', `nested deeper than ${l.maxDepth}`, bad.path);
    if (bad) return issue('INVALID_TOOL', 'not a JSON value', bad.path);
    functions.push(fn as JsonObject);
    names.push(name);
  }
  // The dump is bounded by the depth check and the body size; its length bounds the prompt.
  const size = pythonJsonDumps(functions).length;
  if (size > l.maxToolsChars) return issue('TOOLS_TOO_LARGE', `the tools take ${size} characters, more than ${l.maxToolsChars}`, 'tools');
  return { ok: true, value: { functions, names } };
}

/** Checks `tool_choice` against the tools (absent: `auto`). */
export function validateToolChoice(choice: unknown, tools: ValidTools | null): ToolResult<ToolChoice> {
  let parsed: ToolChoice;
  if (choice === undefined || choice === null || choice === 'auto') parsed = { type: 'auto' };
  else if (choice === 'none') parsed = { type: 'none' };
  else if (choice === 'required') parsed = { type: 'required' };
  else if (isPlainObject(choice) && choice.type === 'function' && isPlainObject(choice.function)) {
    const name = choice.function.name;
    if (typeof name !== 'string') return issue('INVALID_TOOL_CHOICE', 'the function name must be a string', 'tool_choice.function.name');
    if (tools !== null && !tools.names.includes(name)) {
      return issue('UNKNOWN_TOOL_CHOICE', `'${name.slice(0, 64)}' is not one of the tools`, 'tool_choice.function.name');
    }
    parsed = { type: 'function', name };
  } else {
    return issue('INVALID_TOOL_CHOICE', "tool_choice must be 'none', 'auto', 'required' or {type: 'function', function: {name}}", 'tool_choice');
  }
  if (tools === null && (parsed.type === 'required' || parsed.type === 'function')) {
    return issue('TOOL_CHOICE_WITHOUT_TOOLS', `tool_choice '${parsed.type}' needs tools`, 'tool_choice');
  }
  return { ok: true, value: parsed };
}

/** A message's text (text parts joined, as plain requests do), or null when it is not text. */
function contentText(content: unknown): string | null {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return null;
  let text = '';
  for (const part of content as unknown[]) {
    if (!isPlainObject(part) || typeof part.text !== 'string') return null;
    text += part.text;
  }
  return text;
}

/** One tool call of an assistant message, as a turn. */
function callTurn(call: unknown, at: string, maxDepth: number): ToolResult<ChatTurn> {
  if (!isPlainObject(call)) return issue('INVALID_TOOL_CALL', 'a tool call must be an object', at);
  if (call.type !== undefined && call.type !== 'function') return issue('INVALID_TOOL_CALL', "only calls of type 'function'", `${at}.type`);
  const fn = call.function;
  if (!isPlainObject(fn)) return issue('INVALID_TOOL_CALL', 'function must be an object', `${at}.function`);
  if (typeof fn.name !== 'string' || !TOOL_NAME_PATTERN.test(fn.name)) {
    return issue('INVALID_TOOL_CALL', `function name must match ${TOOL_NAME_PATTERN.source}`, `${at}.function.name`);
  }
  const argsAt = `${at}.function.arguments`;
  if (typeof fn.arguments !== 'string') return issue('INVALID_TOOL_CALL_ARGUMENTS', 'arguments must be a JSON string', argsAt);
  let args: unknown = {};
  if (fn.arguments.trim() !== '') {
    try {
      args = JSON.parse(fn.arguments);
    } catch {
      return issue('INVALID_TOOL_CALL_ARGUMENTS', 'arguments are not valid JSON', argsAt);
    }
  }
  if (!isPlainObject(args)) return issue('INVALID_TOOL_CALL_ARGUMENTS', 'arguments must be a JSON object', argsAt);
  const bad = findNonJson(args, maxDepth, argsAt);
  if (bad) return issue('INVALID_TOOL_CALL_ARGUMENTS', `arguments nest deeper than ${maxDepth}`, bad.path);
  return { ok: true, value: { role: 'assistant', metadata: fn.name, content: formatToolCallContent(args as JsonObject) } };
}

/** The whole prompt of a chat request as turns (rules in the module comment). */
export function buildToolPrompt(request: ToolRequestInput, limits: Partial<ToolLimits> = {}): ToolResult<ToolPrompt> {
  const l = { ...DEFAULT_TOOL_LIMITS, ...limits };
  const tools = validateTools(request.tools, l);
  if (!tools.ok) return tools;
  const choice = validateToolChoice(request.tool_choice, tools.value);
  if (!choice.ok) return choice;
  const toolChoice = choice.value;
  let listed: ValidTools | null = toolChoice.type === 'none' ? null : tools.value;
  let answerMetadata: string | undefined;
  if (listed !== null) {
    const forced = toolChoice.type === 'function' ? toolChoice.name : toolChoice.type === 'required' && listed.names.length === 1 ? listed.names[0]! : undefined;
    if (forced !== undefined) {
      const i = listed.names.indexOf(forced);
      listed = { functions: [listed.functions[i]!], names: [forced] };
      answerMetadata = forced;
    }
  }

  const messages: readonly unknown[] = request.messages;
  if (!Array.isArray(messages)) return issue('INVALID_MESSAGE', 'messages must be a list', 'messages');
  const texts: string[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    if (!isPlainObject(m)) return issue('INVALID_MESSAGE', 'a message must be an object', `messages.${i}`);
    const text = contentText(m.content);
    if (text === null) return issue('INVALID_MESSAGE', 'content must be text or a list of text parts', `messages.${i}.content`);
    texts.push(text);
  }
  const turns: ChatTurn[] = [];
  let sentenceFrom = -1;
  if (listed !== null) {
    sentenceFrom = (messages as ToolMessageInput[]).findIndex((m) => m.role === 'system' || m.role === 'developer');
    const sentence = sentenceFrom >= 0 ? texts[sentenceFrom]! : DEFAULT_TOOLS_SENTENCE;
    turns.push({ role: 'system', metadata: '', content: `${sentence}\n${pythonJsonDumps(listed.functions)}` });
  }
  for (let i = 0; i < messages.length; i++) {
    if (i === sentenceFrom) continue;
    const m = messages[i] as ToolMessageInput;
    const at = `messages.${i}`;
    const text = texts[i]!;
    switch (m.role) {
      case 'system':
      case 'developer':
        turns.push({ role: 'system', metadata: '', content: text });
        break;
      case 'user':
        turns.push({ role: 'user', metadata: '', content: text });
        break;
      case 'tool':
        turns.push({ role: 'observation', metadata: '', content: text });
        break;
      case 'assistant': {
        const calls = m.tool_calls ?? [];
        if (!Array.isArray(calls)) return issue('INVALID_TOOL_CALL', 'tool_calls must be a list', `${at}.tool_calls`);
        if (calls.length === 0 || text !== '') turns.push({ role: 'assistant', metadata: '', content: text });
        for (let j = 0; j < calls.length; j++) {
          const turn = callTurn(calls[j], `${at}.tool_calls.${j}`, l.maxDepth);
          if (!turn.ok) return turn;
          turns.push(turn.value);
        }
        break;
      }
      default:
        return issue('INVALID_MESSAGE', `role '${String(m.role).slice(0, 32)}' cannot be rendered`, `${at}.role`);
    }
  }
  return { ok: true, value: { turns, answerMetadata, callableTools: listed?.names ?? [], toolChoice } };
}

/**
 * `json.dumps(value, indent=indent, ensure_ascii=False)`. Strings are escaped as JSON.stringify
 * does, which for well-formed text is what Python writes (", \, \n \r \t \b \f, other control
 * characters as \u00XX, everything else as it is); a lone surrogate is written \udXXX, where Python
 * would keep it raw and then fail to encode it.
 */
export function pythonJsonDumps(value: JsonValue | readonly JsonValue[], indent = 4): string {
  return dump(value as JsonValue, indent, 0);
}

function dump(value: JsonValue, indent: number, level: number): string {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return pythonNumberRepr(value);
  if (typeof value === 'string') return JSON.stringify(value);
  const inner = '\n' + ' '.repeat(indent * (level + 1));
  const outer = '\n' + ' '.repeat(indent * level);
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[${inner}${value.map((v) => dump(v, indent, level + 1)).join(`,${inner}`)}${outer}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{${inner}${entries.map(([k, v]) => `${JSON.stringify(k)}: ${dump(v, indent, level + 1)}`).join(`,${inner}`)}${outer}}`;
}
