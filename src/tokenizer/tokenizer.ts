/**
 * ChatGLM3's tokenizer, shared by the worker (prompts in, text out) and the gateway (counting
 * prompt tokens for the token budget).
 *
 * SentencePiece itself runs in @sctg/sentencepiece-js (the upstream C++ compiled to WASM); this
 * module adds what ChatGLM3's `tokenization_chatglm.py` adds on top of it:
 * - nine special tokens appended after the SentencePiece pieces, in ChatGLM3's order; their ids
 *   come from the model file's piece count (64789.. for the real model), never from a table;
 * - the chat template `[gMASK] sop` + per turn `<|role|>` encode(metadata + "\n") encode(content)
 *   + `<|assistant|>` (metadata is empty except on tool-call turns), where content is encoded as
 *   plain text, so role markers typed by a user stay text;
 * - decode that writes special tokens as their text and decodes the runs between them with
 *   SentencePiece; ids beyond the tokenizer (the model's padded vocabulary) decode to nothing;
 * - the reply post-processing of `process_response`: the first line of an assistant turn is
 *   metadata (a tool name, usually empty) and is not part of the answer, which is stripped.
 *
 * The library's JS API has no piece table, so the table (vocabulary size, which ids are byte
 * pieces and control pieces) is read from the same bytes with `sentencepiece-model.ts`.
 *
 * Streaming decode (StreamDecoder): each new id is decoded as the difference between
 * SentencePiece's decode of a short window with and without it, the window being the previous
 * emitted chunk (context for SentencePiece's leading-space rule) plus ids not emitted yet. Text
 * is held back only while the trailing byte-fallback pieces could still become one UTF-8
 * character (at most three bytes), so the window never grows and each token costs two decodes
 * of a few ids: O(1) per token. The concatenation of everything it emits equals `decode()` of
 * all ids (tested on random id sequences).
 */
import { readFile } from 'node:fs/promises';
import { SentencePieceProcessor } from '@sctg/sentencepiece-js';
import { CHATGLM3_SPECIAL_TOKENS, type SpecialToken } from '../shared/model-manifest.js';
import type { ChatMessage } from '../protocol/schemas.js';
import type { ChatTurn } from './chat-turn.js';
import { decodeSentencePieceModel, PieceType, SentencePieceModelError } from './sentencepiece-model.js';

export { CHATGLM3_SPECIAL_TOKENS, type SpecialToken };

/** Bytes a UTF-8 character takes, from its first byte; 0 for a byte that cannot start one. */
function utf8Length(lead: number): number {
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

function isContinuation(byte: number): boolean {
  return byte >= 0x80 && byte <= 0xbf;
}

/** Lone surrogates become U+FFFD, so that the gateway and the worker count the same tokens. */
function wellFormed(text: string): string {
  return (text as unknown as { toWellFormed(): string }).toWellFormed();
}

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;

export class ChatGLMTokenizer {
  /** Pieces in the SentencePiece model; the special tokens follow them. */
  readonly spVocabSize: number;
  /** Every id the tokenizer knows: pieces plus special tokens (ChatGLM3's `n_words`). */
  readonly vocabSize: number;
  readonly specialTokens: Readonly<Record<SpecialToken, number>>;
  readonly bosId: number;
  readonly eosId: number;
  /** ChatGLM3 pads with the unknown id. */
  readonly padId: number;
  /** Generation stops on any of these: eos, `<|user|>`, `<|observation|>`. */
  readonly stopIds: readonly number[];
  /** The model file, as loaded (served to gateways by `GET /v1/tokenizer`). */
  readonly modelBytes: Uint8Array;

  private readonly sp: SentencePieceProcessor;
  private readonly specialById = new Map<number, string>();
  /** Per piece id: its byte value for byte-fallback pieces, -1 for others. */
  private readonly byteValue: Int16Array;
  private readonly isControl: Uint8Array;
  private readonly pieceText: string[];
  private readonly codec: PieceCodec;

  private constructor(sp: SentencePieceProcessor, bytes: Uint8Array, source: string) {
    const model = decodeSentencePieceModel(bytes);
    this.sp = sp;
    this.modelBytes = bytes;
    this.spVocabSize = model.pieces.length;
    const special = {} as Record<SpecialToken, number>;
    CHATGLM3_SPECIAL_TOKENS.forEach((name, i) => {
      special[name] = this.spVocabSize + i;
      this.specialById.set(this.spVocabSize + i, name);
    });
    this.specialTokens = special;
    this.vocabSize = this.spVocabSize + CHATGLM3_SPECIAL_TOKENS.length;
    const spec = model.trainerSpec;
    this.bosId = spec.bosId ?? 1;
    this.eosId = spec.eosId ?? 2;
    this.padId = spec.unkId ?? 0;
    if (this.eosId < 0 || this.eosId >= this.spVocabSize) {
      throw new SentencePieceModelError(`${source}: eos id ${this.eosId} is not a piece of the model`);
    }
    this.stopIds = [this.eosId, special['<|user|>'], special['<|observation|>']];
    this.byteValue = new Int16Array(this.spVocabSize).fill(-1);
    this.isControl = new Uint8Array(this.spVocabSize);
    this.pieceText = model.pieces.map((p, id) => {
      if (p.type === PieceType.BYTE) {
        const m = BYTE_PIECE.exec(p.piece);
        if (m) this.byteValue[id] = Number.parseInt(m[1]!, 16);
        return p.piece;
      }
      if (p.type === PieceType.CONTROL) this.isControl[id] = 1;
      return p.type === PieceType.NORMAL || p.type === PieceType.USER_DEFINED ? p.piece.replaceAll('▁', ' ') : '';
    });
    this.codec = {
      special: (id) => this.specialById.get(id),
      isPiece: (id) => this.isPiece(id),
      isControl: (id) => this.isPiece(id) && this.isControl[id] === 1,
      byteValue: (id) => (this.isPiece(id) ? this.byteValue[id]! : -1),
      decodePieces: (ids) => this.decodePieces(ids),
    };
  }

  static async fromFile(path: string): Promise<ChatGLMTokenizer> {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await readFile(path));
    } catch (err) {
      throw new SentencePieceModelError(`${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return ChatGLMTokenizer.fromBytes(bytes, path);
  }

  static async fromBytes(bytes: Uint8Array, source = 'tokenizer.model'): Promise<ChatGLMTokenizer> {
    try {
      decodeSentencePieceModel(bytes);
    } catch (err) {
      throw new SentencePieceModelError(`${source}: ${(err as Error).message}`);
    }
    const sp = new SentencePieceProcessor();
    await sp.loadFromB64StringModel(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64'));
    // The library ignores SentencePiece's load status; a model it could not load encodes nothing.
    if (sp.encodeIds('a').length === 0) {
      throw new SentencePieceModelError(`${source}: SentencePiece could not load this model`);
    }
    return new ChatGLMTokenizer(sp, bytes, source);
  }

  /** Plain SentencePiece encode: no special tokens, text that looks like one stays text. */
  encode(text: string): number[] {
    if (text === '') return [];
    return this.sp.encodeIds(wellFormed(text));
  }

  /** ChatGLM3's chat prompt (`build_chat_input` with the `[gMASK] sop` prefix), ending in `<|assistant|>`. */
  applyChatTemplate(messages: readonly ChatMessage[]): number[] {
    return this.encodeTurns(messages.map((m) => ({ role: m.role, metadata: '', content: m.content })));
  }

  /**
   * `[gMASK] sop`, then per turn `build_single_message`: `<|role|>` + encode(metadata + "\n") +
   * encode(content), each encoded on its own; then `<|assistant|>` (unless `generationPrompt` is
   * false), followed by encode(answerMetadata + "\n") when the answer's metadata line is given.
   */
  encodeTurns(
    turns: readonly ChatTurn[],
    options: { generationPrompt?: boolean; answerMetadata?: string } = {},
  ): number[] {
    const s = this.specialTokens;
    const ids = [s['[gMASK]'], s.sop];
    for (const t of turns) {
      ids.push(s[`<|${t.role}|>`], ...this.encode(`${t.metadata}\n`), ...this.encode(t.content));
    }
    if (options.generationPrompt ?? true) {
      ids.push(s['<|assistant|>']);
      if (options.answerMetadata !== undefined) ids.push(...this.encode(`${options.answerMetadata}\n`));
    }
    return ids;
  }

  isSpecial(id: number): boolean {
    return this.specialById.has(id);
  }

  /** Whether SentencePiece can decode this id (a piece of the model, not a special token). */
  private isPiece(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.spVocabSize;
  }

  /** SentencePiece decode of pieces only; ids beyond the tokenizer decode to nothing. */
  private decodePieces(ids: readonly number[]): string {
    const pieces = ids.filter((id) => this.isPiece(id));
    return pieces.length === 0 ? '' : (this.sp.decodeIds(Int32Array.from(pieces)) as string);
  }

  /** ChatGLM3's decode: special tokens as their text, the runs between them through SentencePiece. */
  decode(ids: readonly number[]): string {
    let text = '';
    let run: number[] = [];
    for (const id of ids) {
      const special = this.specialById.get(id);
      if (special === undefined) {
        run.push(id);
        continue;
      }
      text += this.decodePieces(run) + special;
      run = [];
    }
    return text + this.decodePieces(run);
  }

  /**
   * One token as the OpenAI API shows it in logprobs: its text (a byte-fallback piece that is not
   * a character on its own is written `\xNN`) and its bytes.
   */
  tokenInfo(id: number): { token: string; bytes: number[] } {
    const special = this.specialById.get(id);
    if (special !== undefined) return { token: special, bytes: [...Buffer.from(special, 'utf8')] };
    if (!this.isPiece(id)) return { token: '', bytes: [] };
    const byte = this.byteValue[id]!;
    if (byte >= 0) {
      return { token: byte < 0x80 ? String.fromCharCode(byte) : `\\x${byte.toString(16).padStart(2, '0')}`, bytes: [byte] };
    }
    const token = this.pieceText[id]!;
    return { token, bytes: [...Buffer.from(token, 'utf8')] };
  }

  createStreamDecoder(): StreamDecoder {
    return new StreamDecoder(this.codec);
  }
}

/** What the stream decoder needs to know about ids. */
interface PieceCodec {
  special(id: number): string | undefined;
  isPiece(id: number): boolean;
  isControl(id: number): boolean;
  /** The byte of a byte-fallback piece, -1 for any other id. */
  byteValue(id: number): number;
  decodePieces(ids: readonly number[]): string;
}

/** Incremental decode of generated ids; see the module comment for the algorithm. */
export class StreamDecoder {
  /** The previous emitted chunk (context) followed by ids not emitted yet. */
  private window: number[] = [];
  /** window[0, read) is the context chunk; decodePieces of it is `contextText`. */
  private read = 0;
  private contextText = '';

  constructor(private readonly tok: PieceCodec) {}

  /** Text completed by this id ('' while a character is incomplete). */
  push(id: number): string {
    const special = this.tok.special(id);
    if (special !== undefined) {
      return this.flush() + special;
    }
    if (!this.tok.isPiece(id)) return '';
    // A control piece (bos/eos) decodes to nothing; it matters only when it cuts a byte run short.
    if (this.tok.isControl(id) && this.window.length === this.read) return '';
    this.window.push(id);
    return this.emit(this.window.length - this.incompleteTail());
  }

  /** Everything still held (an unfinished character becomes U+FFFD); the decoder starts afresh. */
  flush(): string {
    const text = this.window.length > this.read ? this.emit(this.window.length) : '';
    this.window = [];
    this.read = 0;
    this.contextText = '';
    return text;
  }

  /** Emits window[read, end) and makes it the new context. */
  private emit(end: number): string {
    if (end <= this.read) return '';
    const full = this.tok.decodePieces(this.window.slice(0, end));
    const text = full.slice(this.contextText.length);
    this.window = this.window.slice(this.read);
    this.read = end - this.read;
    this.contextText = this.tok.decodePieces(this.window.slice(0, this.read));
    return text;
  }

  /**
   * How many trailing byte pieces could still be the start of one UTF-8 character: a lead byte
   * followed by fewer continuation bytes than it announces. Erring towards holding is safe; it
   * only delays text.
   */
  private incompleteTail(): number {
    const w = this.window;
    for (let k = 1; k <= 3 && k <= w.length - this.read; k++) {
      const byte = this.tok.byteValue(w[w.length - k]!);
      if (byte < 0) return 0;
      if (isContinuation(byte)) continue;
      return utf8Length(byte) > k ? k : 0;
    }
    return 0;
  }
}

/**
 * ChatGLM3's `process_response` on a stream, for one assistant turn: the text before the first
 * newline is metadata (a tool name; empty for a plain answer), kept apart in `metadata`, and the
 * answer is stripped of leading and trailing white space. Text is held while the first line is
 * open (up to `maxMetadataChars`: a longer first line is taken as answer text with empty
 * metadata, as ChatGLM3 does when no newline ever comes) and while trailing white space might be
 * the end of the answer. A turn whose metadata line was written into the prompt
 * (`presetMetadata`) starts with the answer.
 */
export class ReplyPostProcessor {
  private phase: 'metadata' | 'answer' = 'metadata';
  private firstLine = '';
  private started = false;
  private heldSpace = '';
  private metadataLine: string | null = null;

  constructor(
    private readonly maxMetadataChars = 128,
    presetMetadata?: string,
  ) {
    if (presetMetadata !== undefined) {
      this.phase = 'answer';
      this.metadataLine = presetMetadata;
    }
  }

  /** The turn's metadata line once it is known (null while the first line is open). */
  get metadata(): string | null {
    return this.metadataLine;
  }

  push(text: string): string {
    if (this.phase === 'metadata') {
      this.firstLine += text;
      const nl = this.firstLine.indexOf('\n');
      if (nl >= 0) {
        const rest = this.firstLine.slice(nl + 1);
        this.metadataLine = this.firstLine.slice(0, nl);
        this.firstLine = '';
        this.phase = 'answer';
        return this.answer(rest);
      }
      if (this.firstLine.length <= this.maxMetadataChars) return '';
      const rest = this.firstLine;
      this.metadataLine = '';
      this.firstLine = '';
      this.phase = 'answer';
      return this.answer(rest);
    }
    return this.answer(text);
  }

  /** At the end: a reply without a newline is all answer; trailing white space is dropped. */
  end(): string {
    if (this.phase === 'metadata') {
      this.phase = 'answer';
      this.metadataLine = '';
      const rest = this.firstLine;
      this.firstLine = '';
      return this.answer(rest);
    }
    return '';
  }

  private answer(text: string): string {
    let t = text;
    if (!this.started) {
      t = t.replace(/^\s+/u, '');
      if (t === '') return '';
      this.started = true;
    }
    t = this.heldSpace + t;
    const m = /\s+$/u.exec(t);
    this.heldSpace = m ? m[0] : '';
    return m ? t.slice(0, m.index) : t;
  }
}
