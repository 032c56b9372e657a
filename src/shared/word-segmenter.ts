/**
 * Chinese word segmentation as Python jieba 0.42.1's `jieba.cut(text)` gives it (default mode,
 * HMM on): the words of its dictionary along the most probable path, runs of characters it does
 * not know split by its HMM, and every other character (punctuation, each space) a token of its
 * own. The evaluation scores on these tokens, as finetune_demo does, and the knowledge base indexes
 * and searches its words.
 *
 * The work is done by jieba-rs (`@node-rs/jieba`, the same dictionary and HMM), one instance per
 * process: loading the dictionary takes about 0.1–0.5 s and some 50 MB, so it is loaded once, at
 * the first use (`loadWordSegmenter` loads it ahead, for a server that must not pay it in a request).
 *
 * jieba-rs cuts two kinds of text differently from Python jieba; both are put right here so
 * that tokens are equal (ARCHITECTURE.md, "Word segmentation", has the causes):
 * - CJK characters outside U+4E00–U+9FD5 (extensions A–F, U+9FD6–U+9FFF, compatibility
 *   ideographs): Python jieba gives each one alone; jieba-rs joins a run of them into one token.
 *   The text is cut around them and each is given alone.
 * - Letters or digits, one of `+#&_%-`, digits, among characters the dictionary leaves single
 *   ("3-5年", "1+1", "2023-05-01"): the HMM's pattern for numbers in jieba-rs lets any character
 *   stand where Python's has only '.', so "3-5" comes out as one token where Python gives 3, -, 5.
 *   Such a run is split again with Python's pattern (`resplitNumbers`).
 * Lone surrogates are cut around too (each is one token in Python; jieba-rs would see U+FFFD).
 */
import { Jieba } from '@node-rs/jieba';
import { dict } from '@node-rs/jieba/dict.js';

/** Characters jieba-rs counts as Chinese and Python jieba 0.42.1 does not, and lone surrogates: each is one token. */
const ALONE = /[\u3400-\u4DBF\u9FD6-\u9FFF\uF900-\uFAFF\u{20000}-\u{2A6DF}\u{2A700}-\u{2EBEF}\u{2F800}-\u{2FA1F}\uD800-\uDFFF]/u;
const ALONE_SPLIT = new RegExp(`(${ALONE.source})`, 'u');

/** Where jieba-rs's HMM number pattern can differ from Python's: a letter or digit, one of `+#&_%-`, a digit. */
const NUMBER_RISK = /[a-zA-Z0-9][+#&_%-][0-9]/;
/** A token jieba-rs's pattern `[a-zA-Z0-9]+(?:.\d+)?%?` matched where Python's `[a-zA-Z0-9]+(?:\.\d+)?%?` would have stopped earlier. */
const WIDE_NUMBER = /^[a-zA-Z0-9]+[+#&_%-][0-9]+%?$/;
/** The characters that can stand in one run with letters and digits in a jieba block (besides CJK). */
const BLOCK_ASCII = /^[a-zA-Z0-9+#&._%-]+$/;
/** Python jieba's finalseg `re_skip`, which splits what its HMM does not read (the capture keeps the pieces). */
const PYTHON_HMM_SKIP = /([a-zA-Z0-9]+(?:\.[0-9]+)?%?)/;

interface Segmenter {
  jieba: Jieba;
  /** Dictionary words made only of `BLOCK_ASCII` characters (C++, C#, AT&T, …). */
  asciiWords: Set<string>;
}

let segmenter: Segmenter | undefined;

/** Loads the dictionary now (it is otherwise loaded by the first `cutWords`). */
export function loadWordSegmenter(): void {
  if (segmenter) return;
  const asciiWords = new Set<string>();
  for (const m of new TextDecoder().decode(dict).matchAll(/^([a-zA-Z0-9+#&._%-]+) /gm)) asciiWords.add(m[1]!);
  // resplitNumbers relies on no dictionary word having the shape it re-splits.
  for (const w of asciiWords) if (WIDE_NUMBER.test(w)) throw new Error(`word segmenter: the dictionary has the word ${w}, which the number fix would split`);
  segmenter = { jieba: Jieba.withDict(dict), asciiWords };
}

/** jieba's tokens of a text, as Python's `list(jieba.cut(text))`: they join to the text again. */
export function cutWords(text: string): string[] {
  loadWordSegmenter();
  const { jieba, asciiWords } = segmenter!;
  let tokens: string[];
  if (!ALONE.test(text)) {
    tokens = jieba.cut(text, true);
  } else {
    tokens = [];
    // Odd positions hold the characters matched by ALONE; jieba's blocks never reach across them.
    const parts = text.split(ALONE_SPLIT);
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 1) tokens.push(parts[i]!);
      else if (parts[i]!.length > 0) for (const t of jieba.cut(parts[i]!, true)) tokens.push(t);
    }
  }
  return NUMBER_RISK.test(text) ? resplitNumbers(tokens, asciiWords) : tokens;
}

/**
 * Splits jieba-rs's wide number tokens again as Python jieba's HMM splits them. Such a token is a
 * piece of one run that jieba's HMM got without the Chinese characters (in jieba, such a run lies
 * between Chinese characters, dictionary words and block ends); up to that token both patterns
 * cut the run alike, and from there Python's is applied to the rest of the run. The rest is the
 * tokens that follow while they hold only `BLOCK_ASCII` characters and are not a dictionary word
 * of several characters (a dictionary word is the next step of jieba's path, outside the run;
 * the HMM's pieces never are one).
 */
function resplitNumbers(tokens: string[], asciiWords: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!WIDE_NUMBER.test(token) || asciiWords.has(token)) {
      out.push(token);
      continue;
    }
    let run = token;
    while (i + 1 < tokens.length) {
      const next = tokens[i + 1]!;
      if (!BLOCK_ASCII.test(next) || (next.length > 1 && asciiWords.has(next))) break;
      run += next;
      i++;
    }
    for (const piece of run.split(PYTHON_HMM_SKIP)) if (piece !== '') out.push(piece);
  }
  return out;
}
