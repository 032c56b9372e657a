/**
 * The demo model's tokenizer: a SentencePiece BPE model trained here, on the committed legal
 * text, the way ChatGLM3's is configured (byte fallback, digits split, identity normalizer,
 * dummy prefix, unk=0 bos=1 eos=2; ChatGLM3's special tokens then follow the pieces).
 *
 * Algorithm (byte-pair encoding, as SentencePiece's trainer does it, simplified): each line gets
 * the dummy prefix and spaces become "▁"; lines are cut into segments at "▁" and wherever the
 * character class changes (Han, Latin letters, single digits, everything else), "▁" staying with
 * the segment it starts. Starting from single characters, the most frequent adjacent pair across
 * all segments (ties by text, so training is deterministic) is merged into a new piece, up to
 * `maxMerges` times or while a pair occurs at least twice. The vocabulary is the control pieces,
 * the 256 byte pieces, the merged pieces in merge order (score −i, so the encoder applies them in
 * the same order), then every single character seen plus printable ASCII.
 */
import {
  ModelType,
  PieceType,
  encodeSentencePieceModel,
  type SentencePiece,
  type SentencePieceModel,
} from '../tokenizer/sentencepiece-model.js';
import { DEMO_LEGAL_TEXT } from './demo-corpus.js';

const SPACE = '▁';
const MAX_PIECE_LENGTH = 16;

function charClass(c: string): string {
  if (/\p{Script=Han}/u.test(c)) return 'han';
  if (/\p{Script=Latin}/u.test(c)) return 'latin';
  if (/\p{Nd}/u.test(c)) return `digit:${c}`; // every digit its own segment (split_digits)
  return 'other';
}

/** Segments of one line, each a list of characters. */
function segments(line: string): string[][] {
  const chars = [...(SPACE + line.replace(/ /g, SPACE))];
  const out: string[][] = [];
  let current: string[] = [];
  let cls = ''; // class of the segment so far: 'space' while it is only "▁"
  for (const c of chars) {
    const k = c === SPACE ? 'space' : charClass(c);
    const joins = current.length > 0 && k !== 'space' && (cls === 'space' || (k === cls && !k.startsWith('digit')));
    if (current.length > 0 && !joins) {
      out.push(current);
      current = [];
    }
    current.push(c);
    cls = k;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function trainDemoTokenizer(text: string = DEMO_LEGAL_TEXT, maxMerges = 600): SentencePieceModel {
  const counts = new Map<string, { symbols: string[]; count: number }>();
  const charFreq = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    for (const seg of segments(line)) {
      const key = seg.join('\u0000');
      const entry = counts.get(key) ?? { symbols: seg, count: 0 };
      entry.count++;
      counts.set(key, entry);
      for (const c of seg) charFreq.set(c, (charFreq.get(c) ?? 0) + 1);
    }
  }
  const words = [...counts.values()];
  const merged: string[] = [];
  for (let m = 0; m < maxMerges; m++) {
    const pairs = new Map<string, number>();
    for (const w of words) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const a = w.symbols[i]!;
        const b = w.symbols[i + 1]!;
        if ([...(a + b)].length > MAX_PIECE_LENGTH) continue;
        const key = `${a}\u0000${b}`;
        pairs.set(key, (pairs.get(key) ?? 0) + w.count);
      }
    }
    let best: string | undefined;
    let bestCount = 1;
    for (const [key, count] of pairs) {
      if (count > bestCount || (count === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split('\u0000') as [string, string];
    merged.push(a + b);
    for (const w of words) {
      const next: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
          next.push(a + b);
          i++;
        } else {
          next.push(w.symbols[i]!);
        }
      }
      w.symbols = next;
    }
  }
  for (let c = 0x21; c < 0x7f; c++) {
    const ch = String.fromCharCode(c);
    if (!charFreq.has(ch)) charFreq.set(ch, 0);
  }
  const singles = [...charFreq.entries()].sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)).map(([c]) => c);

  const pieces: SentencePiece[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
  ];
  for (let b = 0; b < 256; b++) {
    pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.BYTE });
  }
  let score = 0;
  const seen = new Set<string>();
  for (const p of [...merged, ...singles]) {
    if (seen.has(p)) continue;
    seen.add(p);
    pieces.push({ piece: p, score: -score++, type: PieceType.NORMAL });
  }
  return {
    pieces,
    trainerSpec: {
      modelType: ModelType.BPE,
      vocabSize: pieces.length,
      maxSentencepieceLength: MAX_PIECE_LENGTH,
      splitByUnicodeScript: true,
      splitByWhitespace: true,
      splitByNumber: true,
      treatWhitespaceAsSuffix: false,
      splitDigits: true,
      allowWhitespaceOnlyPieces: true,
      byteFallback: true,
      unkId: 0,
      bosId: 1,
      eosId: 2,
      padId: -1,
      unkPiece: '<unk>',
      bosPiece: '<s>',
      eosPiece: '</s>',
      padPiece: '<pad>',
    },
    normalizerSpec: { name: 'identity', precompiledCharsmap: new Uint8Array(0), addDummyPrefix: true, removeExtraWhitespaces: false },
  };
}

let trained: Uint8Array | undefined;

/** The demo `tokenizer.model` bytes (trained once per process). */
export function demoTokenizerBytes(): Uint8Array {
  trained ??= encodeSentencePieceModel(trainDemoTokenizer());
  return trained.slice();
}
