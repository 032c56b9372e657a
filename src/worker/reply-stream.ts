/**
 * The text side of one generation: generated ids → UTF-8-safe stream decode → ChatGLM3's reply
 * post-processing (chat requests only) → `stop` strings. Each step returns the text that is final,
 * holding back only what might still turn out to be part of a stop string (OpenAI semantics: the
 * stop string itself is never returned, and generation ends at its first occurrence).
 */
import { ReplyPostProcessor, type ChatGLMTokenizer, type StreamDecoder } from '../tokenizer/tokenizer.js';

export interface ReplyStreamOptions {
  /** Apply ChatGLM3's assistant-turn post-processing (requests given as `messages`). */
  chat: boolean;
  stop: readonly string[];
}

export class ReplyStream {
  private readonly decoder: StreamDecoder;
  private readonly post: ReplyPostProcessor | null;
  private readonly stops: readonly string[];
  private held = '';
  private stopped = false;

  constructor(tokenizer: ChatGLMTokenizer, options: ReplyStreamOptions) {
    this.decoder = tokenizer.createStreamDecoder();
    this.post = options.chat ? new ReplyPostProcessor() : null;
    this.stops = options.stop.filter((s) => s.length > 0);
  }

  /** Text made final by this id; `stopped` once a stop string has appeared. */
  push(id: number): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    let text = this.decoder.push(id);
    if (this.post) text = this.post.push(text);
    return this.match(text);
  }

  /** At the end of generation: everything still held. */
  end(): string {
    if (this.stopped) return '';
    let text = this.decoder.flush();
    if (this.post) text = this.post.push(text) + this.post.end();
    const { text: out, stopped } = this.match(text);
    if (stopped) return out;
    const rest = this.held;
    this.held = '';
    return out + rest;
  }

  private match(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    const buf = this.held + text;
    let first = -1;
    for (const s of this.stops) {
      const at = buf.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      this.stopped = true;
      this.held = '';
      return { text: buf.slice(0, first), stopped: true };
    }
    const keep = this.partialStopSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep), stopped: false };
  }

  /** Length of the longest end of `buf` that is the start of a stop string. */
  private partialStopSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, buf.length); k > best; k--) {
        if (buf.endsWith(s.slice(0, k))) {
          best = k;
          break;
        }
      }
    }
    return best;
  }
}
