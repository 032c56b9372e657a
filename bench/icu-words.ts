/**
 * The knowledge base's word segmentation before jieba: ICU's dictionary segmenter
 * (`Intl.Segmenter('zh', {granularity: 'word'})`), word-like segments only, kept as the "before"
 * of `npm run bench:kb`. Texts over 512 characters were segmented in pieces cut between sentences,
 * since ICU's segmentation of Chinese takes time quadratic in the length of the text (100,000
 * characters of a novel: 18.7 s whole, 154 ms in pieces of 512; jieba takes 59 ms whole).
 */
const segmenter = new Intl.Segmenter('zh', { granularity: 'word' });

const SEGMENT_PIECE = 512;
/** Where a long text is preferably cut: spaces and sentence punctuation, which end a word anyway. */
const CUT_AFTER = /[\s，。？！；：、?!;]/;

export function icuWords(text: string): string[] {
  const out: string[] = [];
  if (text.length <= SEGMENT_PIECE) {
    for (const s of segmenter.segment(text)) if (s.isWordLike) out.push(s.segment);
    return out;
  }
  for (let start = 0; start < text.length; ) {
    let end = Math.min(text.length, start + SEGMENT_PIECE);
    if (end < text.length) {
      let cut = end;
      while (cut > start + SEGMENT_PIECE / 2 && !CUT_AFTER.test(text[cut - 1]!)) cut--;
      end = cut > start + SEGMENT_PIECE / 2 ? cut : end;
      // Never between the halves of a surrogate pair.
      const code = text.charCodeAt(end);
      if (code >= 0xdc00 && code <= 0xdfff) end--;
    }
    for (const s of segmenter.segment(text.slice(start, end))) if (s.isWordLike) out.push(s.segment);
    start = end;
  }
  return out;
}
