/**
 * The text side of one generation: generated ids → UTF-8-safe stream decode → ChatGLM3's reply
 * post-processing (chat requests only) → `stop` strings. Each step returns the text that is final,
 * holding back only what might still turn out to be part of a stop string (OpenAI semantics: the
 * stop string itself is never returned, and generation ends at its first occurrence).
 *
 * Chat replies are cut into segments on the `<|assistant|>` id: ChatGLM3 writes one assistant turn
 * per tool call and may write several before it stops on `<|observation|>` (its
 * `process_response` splits the reply the same way). Each segment has its own metadata line,
 * reported once it is known (a newline, a first line too long to be metadata, or the segment's
 * end), and its own stripped text; stop strings are matched within a segment. The `<|assistant|>`
 * id itself is no text: its step carries what the segment before it still held.
 */
import { ReplyPostProcessor, type ChatGLMTokenizer, type StreamDecoder } from '../tokenizer/tokenizer.js';

export interface ReplyStreamOptions {
  /** Apply ChatGLM3's assistant-turn post-processing (requests given as `messages` or `turns`). */
  chat: boolean;
  stop: readonly string[];
  /** The first segment's metadata line, already written into the prompt (chat only). */
  answerMetadata?: string | undefined;
}

/** A segment whose metadata line has become known. */
export interface SegmentInfo {
  index: number;
  metadata: string;
}

export interface ReplyStep {
  text: string;
  /** A stop string has appeared; nothing more will come. */
  stopped: boolean;
  /** Chat replies: the segment `text` belongs to. */
  segment: number | undefined;
  /** Metadata lines that became known with this step (to be sent before `text`). */
  segments: SegmentInfo[];
}

export class ReplyStream {
  private readonly decoder: StreamDecoder;
  private readonly chat: boolean;
  private readonly assistantId: number;
  private post: ReplyPostProcessor | null;
  private readonly stops: readonly string[];
  private segment = 0;
  private reported = false;
  private held = '';
  private stopped = false;

  constructor(tokenizer: ChatGLMTokenizer, options: ReplyStreamOptions) {
    this.decoder = tokenizer.createStreamDecoder();
    this.chat = options.chat;
    this.assistantId = tokenizer.specialTokens['<|assistant|>'];
    this.post = options.chat ? new ReplyPostProcessor(undefined, options.answerMetadata) : null;
    this.stops = options.stop.filter((s) => s.length > 0);
  }

  /** Text made final by this id; `stopped` once a stop string has appeared. */
  push(id: number): ReplyStep {
    const segments: SegmentInfo[] = [];
    if (this.stopped) return this.step('', true, segments);
    if (this.chat && id === this.assistantId) {
      const { text, stopped } = this.endSegment(segments);
      const step = this.step(text, stopped, segments);
      if (!stopped) {
        this.segment++;
        this.post = new ReplyPostProcessor();
        this.reported = false;
      }
      return step;
    }
    let text = this.decoder.push(id);
    if (this.post) text = this.post.push(text);
    this.report(segments);
    const { text: out, stopped } = this.match(text);
    return this.step(out, stopped, segments);
  }

  /** At the end of generation: everything still held. */
  end(): ReplyStep {
    const segments: SegmentInfo[] = [];
    if (this.stopped) {
      this.report(segments, true);
      return this.step('', true, segments);
    }
    const { text } = this.endSegment(segments);
    return this.step(text, this.stopped, segments);
  }

  /** Everything the current segment still holds, its metadata reported. */
  private endSegment(segments: SegmentInfo[]): { text: string; stopped: boolean } {
    let text = this.decoder.flush();
    if (this.post) text = this.post.push(text) + this.post.end();
    this.report(segments);
    const { text: out, stopped } = this.match(text);
    if (stopped) return { text: out, stopped };
    const rest = this.held;
    this.held = '';
    return { text: out + rest, stopped: false };
  }

  /** Adds the current segment's metadata line once it is known (or, when `force`d, as far as it is). */
  private report(segments: SegmentInfo[], force = false): void {
    if (!this.post || this.reported) return;
    const metadata = this.post.metadata ?? (force ? '' : null);
    if (metadata === null) return;
    this.reported = true;
    segments.push({ index: this.segment, metadata });
  }

  private step(text: string, stopped: boolean, segments: SegmentInfo[]): ReplyStep {
    return { text, stopped, segment: this.chat ? this.segment : undefined, segments };
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
