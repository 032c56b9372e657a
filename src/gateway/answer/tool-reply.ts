/**
 * The reply of a request with tools, read as it streams. The worker sends one `segment` event per
 * assistant turn of the answer (its metadata line: a function's name, or empty for text) and
 * tags each token's text with its segment. Text segments stream as they come. From the first
 * segment whose metadata looks like a function's name, everything is held until the end, since
 * only the whole reply says whether it is calls: `readReply` (src/tokenizer/tool-call.ts) takes it
 * as calls when every such segment parses as one — a Python-literal reader, nothing is ever
 * evaluated — and otherwise as plain text, which is then sent as it was held.
 */
import { randomBytes } from 'node:crypto';
import { TOOL_NAME_PATTERN, readReply, type ReplySegment } from '../../tokenizer/tool-call.js';

/** How the reply of a request with tools is read. */
export interface AnswerTools {
  /** The names the reply may call. */
  callable: readonly string[];
  /** false: at most one call is returned (the client's `parallel_tool_calls`). */
  parallel: boolean;
}

/** A call as OpenAI's API returns it. */
export interface OpenAIToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ToolReplyEnd {
  /** Calls, in the order written; empty: the reply is text. */
  calls: OpenAIToolCall[];
  /** The whole reply's text (without calls). */
  text: string;
  /** Text held back that the client has not been sent yet (empty when the reply is calls). */
  unsent: string;
}

function callId(): string {
  return `call_${randomBytes(12).toString('hex')}`;
}

export class ToolReply {
  private readonly segments: ReplySegment[] = [];
  /** Index of the first held segment; null while everything streams. */
  private heldFrom: number | null = null;
  /** Whether any text has been streamed (held text then goes after a newline). */
  private streamed = false;

  constructor(private readonly tools: AnswerTools) {}

  /** A segment's metadata line is known. */
  segment(index: number, metadata: string): void {
    while (this.segments.length <= index) this.segments.push({ metadata: '', content: '' });
    this.segments[index]!.metadata = metadata;
    const name = metadata.trim();
    if (this.heldFrom === null && name !== '' && TOOL_NAME_PATTERN.test(name)) this.heldFrom = index;
  }

  /** A token's text; returns what may be streamed now ('' while held). */
  text(text: string, segment: number | undefined): string {
    const i = segment ?? Math.max(0, this.segments.length - 1);
    while (this.segments.length <= i) this.segments.push({ metadata: '', content: '' });
    this.segments[i]!.content += text;
    if (this.heldFrom !== null && i >= this.heldFrom) return '';
    if (text !== '') this.streamed = true;
    return text;
  }

  /** The reply is complete: calls, or the text with what is still unsent. */
  end(): ToolReplyEnd {
    const reading = readReply(this.segments, { toolNames: this.tools.callable });
    if (reading.toolCalls.length > 0) {
      const calls = (this.tools.parallel ? reading.toolCalls : reading.toolCalls.slice(0, 1)).map((c) => ({
        id: callId(),
        type: 'function' as const,
        function: { name: c.name, arguments: JSON.stringify(c.arguments) },
      }));
      return { calls, text: reading.content, unsent: '' };
    }
    let unsent = '';
    if (this.heldFrom !== null) {
      unsent = this.segments
        .slice(this.heldFrom)
        .map((s) => s.content.trim())
        .filter((t) => t !== '')
        .join('\n');
      if (unsent !== '' && this.streamed) unsent = `\n${unsent}`;
    }
    return { calls: [], text: reading.content, unsent };
  }
}
