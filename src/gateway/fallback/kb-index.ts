/**
 * A BM25+ inverted index on typed arrays for the knowledge base, scoring exactly as MiniSearch 7
 * does (same k, b, d, field boosts, per-field average length and final multiplication by the
 * number of matched query terms), so a score threshold tuned on MiniSearch keeps its meaning.
 *
 * Why hand-written rather than MiniSearch: the degraded path has to answer 5,000 requests/s on
 * two cores, so an uncached search must stay well under 50 µs, and MiniSearch allocates a result
 * object per matched entry per term and merges Maps per term. `npm run bench:kb` (10,000
 * generated entries, 2,000 questions, uncached, this 2-core machine, jieba's words): MiniSearch
 * with the same query shaping 3.7 ms per question at p50, 25.4 ms at p99, 180 questions/s, built
 * in 0.79 s, 11.1 MB; this index 30 µs at p50 (5 µs of it the word segmenter), 130 µs at p99,
 * 21,956 questions/s, built in 0.23 s, 1.9 MB; the same best entry and score for all 2,000 questions.
 * Another library would score differently, and `knowledgeBase.minScore` would lose its meaning.
 *
 * Layout: every term's postings are one slice of two flat arrays (entry number, ascending, and
 * the term's whole weight in that entry: the boosted field scores summed at build time, since the
 * corpus never changes after start). Entries holding all the query words are found by
 * intersecting postings, rarest first; otherwise each query term's slice is added into a reused
 * score accumulator that remembers the entries it touched. A query allocates nothing but its
 * words (and, past 32 distinct words, one array view to sort them).
 * Sums are taken in query order, as MiniSearch takes them, so scores are equal to the last bit.
 */

/** MiniSearch's defaults (`defaultBM25params` in minisearch 7). */
export const BM25 = { k: 1.2, b: 0.7, d: 0.5 } as const;

/** One field of the indexed documents and its score boost. */
export interface IndexedField {
  name: string;
  boost: number;
}

/**
 * One document: the words of each field, in the order of the index's fields, as the tokenizer
 * gave them (not lower-cased: a field's length is its number of distinct raw words, as in
 * MiniSearch). Every document has every field, if only as an empty list.
 */
export type IndexedDocument = readonly (readonly string[])[];

/** The term as stored and looked up. */
export const normalizeTerm = (word: string): string => word.toLowerCase();

/** The BM25+ score of a term in one field, written exactly as MiniSearch's `calcBM25Score` (same operation order, same rounding). */
function bm25(termFreq: number, matchingCount: number, totalCount: number, fieldLength: number, avgFieldLength: number): number {
  const { k, b, d } = BM25;
  const invDocFreq = Math.log(1 + (totalCount - matchingCount + 0.5) / (matchingCount + 0.5));
  return invDocFreq * (d + (termFreq * (k + 1)) / (termFreq + k * (1 - b + (b * fieldLength) / avgFieldLength)));
}

export interface KbIndexOptions {
  /** A term in more entries than this share is left out of a query when rarer terms are left (see `bestDoc`). */
  commonTermShare: number;
}

export class KbIndex {
  readonly size: number;
  private readonly termIds = new Map<string, number>();
  /** Term t's postings are [postingStart[t], postingStart[t + 1]). */
  private readonly postingStart: Int32Array;
  private readonly postingDoc: Int32Array;
  private readonly postingWeight: Float64Array;
  private readonly maxDf: number;

  // Scratch space reused by every search (searches are synchronous, so one set is enough).
  private readonly score: Float64Array;
  private readonly matched: Int32Array;
  private readonly touched: Int32Array;
  private readonly queryTerms: Int32Array;
  /** Query terms as df · POSITIONS + position, to sort them rarest first without a comparator. */
  private readonly byDf: Float64Array;
  /** Entries that may hold all the query terms. */
  private readonly candidates: Int32Array;
  /** seenAt[t] === stamp: term t is already in the current query. */
  private readonly seenAt: Int32Array;
  private stamp = 0;
  /** The score of the entry the last search found (set by the search paths of `best`). */
  private lastScore = 0;

  constructor(fields: readonly IndexedField[], documents: readonly IndexedDocument[], options: KbIndexOptions) {
    const n = documents.length;
    const nf = fields.length;
    this.size = n;
    // Field lengths and their running averages, updated per document in MiniSearch's order and
    // arithmetic (`addFieldLength`), so the averages round exactly as its do.
    const fieldLength = new Int32Array(n * nf);
    const avgFieldLength = new Float64Array(nf);
    // Postings while building: per term, entry numbers and per-field term frequencies.
    const docsOf: number[][] = [];
    const tfOf: number[][] = [];
    for (let doc = 0; doc < n; doc++) {
      const document = documents[doc]!;
      for (let f = 0; f < nf; f++) {
        const words = document[f]!;
        const length = new Set(words).size;
        fieldLength[doc * nf + f] = length;
        avgFieldLength[f] = (avgFieldLength[f]! * doc + length) / (doc + 1);
        for (const word of words) {
          const term = normalizeTerm(word);
          if (!term) continue;
          let t = this.termIds.get(term);
          if (t === undefined) {
            t = docsOf.length;
            this.termIds.set(term, t);
            docsOf.push([]);
            tfOf.push([]);
          }
          const docs = docsOf[t]!;
          const tfs = tfOf[t]!;
          if (docs[docs.length - 1] !== doc) {
            docs.push(doc);
            for (let g = 0; g < nf; g++) tfs.push(0);
          }
          tfs[tfs.length - nf + f]! += 1;
        }
      }
    }

    const terms = docsOf.length;
    let total = 0;
    for (const docs of docsOf) total += docs.length;
    this.postingStart = new Int32Array(terms + 1);
    this.postingDoc = new Int32Array(total);
    this.postingWeight = new Float64Array(total);
    const fieldDf = new Int32Array(nf);
    let p = 0;
    for (let t = 0; t < terms; t++) {
      const docs = docsOf[t]!;
      const tfs = tfOf[t]!;
      fieldDf.fill(0);
      for (let i = 0; i < tfs.length; i++) if (tfs[i]! > 0) fieldDf[i % nf]! += 1;
      this.postingStart[t] = p;
      for (let i = 0; i < docs.length; i++, p++) {
        const doc = docs[i]!;
        // MiniSearch adds a term's field scores per entry in field order, then the terms in query order.
        let weight = 0;
        for (let f = 0; f < nf; f++) {
          const tf = tfs[i * nf + f]!;
          if (tf === 0) continue;
          weight += fields[f]!.boost * bm25(tf, fieldDf[f]!, n, fieldLength[doc * nf + f]!, avgFieldLength[f]!);
        }
        this.postingDoc[p] = doc;
        this.postingWeight[p] = weight;
      }
    }
    this.postingStart[terms] = p;

    this.maxDf = Math.max(1, Math.floor(n * options.commonTermShare));
    this.score = new Float64Array(n);
    this.matched = new Int32Array(n);
    this.touched = new Int32Array(n);
    this.queryTerms = new Int32Array(terms);
    this.byDf = new Float64Array(terms);
    this.candidates = new Int32Array(n);
    this.seenAt = new Int32Array(terms);
  }

  /** How many entries hold the term (in any field). */
  private df(t: number): number {
    return this.postingStart[t + 1]! - this.postingStart[t]!;
  }

  /** The best match for the query words (entry number and score), or null when no entry has any of them. */
  best(words: readonly string[]): { doc: number; score: number } | null {
    const doc = this.bestDoc(words);
    return doc < 0 ? null : { doc, score: this.lastScore };
  }

  /**
   * The entry number of the best match for the query words, or -1 when no entry has any of them;
   * its score is then in `lastScore`. Query shaping: words no entry has are dropped, then words in
   * more than `commonTermShare` of the entries (unless nothing else is left: then the rarest, the
   * first of equals); the entries with all remaining words compete first, the entries with any of
   * them only when none has all (MiniSearch's AND, then OR). Equal scores go to the lower entry
   * number.
   */
  private bestDoc(words: readonly string[]): number {
    if (++this.stamp === 0x7fffffff) {
      this.seenAt.fill(0);
      this.stamp = 1;
    }
    const q = this.queryTerms;
    let known = 0;
    for (const word of words) {
      const t = this.termIds.get(normalizeTerm(word));
      if (t === undefined || this.seenAt[t] === this.stamp) continue;
      this.seenAt[t] = this.stamp;
      q[known++] = t;
    }
    if (known === 0) return -1;
    // Kept in place: the write position never passes the read position.
    let m = 0;
    for (let i = 0; i < known; i++) if (this.df(q[i]!) <= this.maxDf) q[m++] = q[i]!;
    if (m === 0) {
      let rarest = q[0]!;
      for (let i = 1; i < known; i++) if (this.df(q[i]!) < this.df(rarest)) rarest = q[i]!;
      q[0] = rarest;
      m = 1;
    }

    if (m === 1) return this.bestOfOne(q[0]!);
    const found = this.bestWithAll(m);
    return found >= 0 ? found : this.accumulate(m);
  }

  /** One term: its highest weight (the first of equals, postings being in entry order). */
  private bestOfOne(t: number): number {
    let best = -1;
    let bestScore = -Infinity;
    for (let p = this.postingStart[t]!, end = this.postingStart[t + 1]!; p < end; p++) {
      if (this.postingWeight[p]! > bestScore) {
        best = this.postingDoc[p]!;
        bestScore = this.postingWeight[p]!;
      }
    }
    this.lastScore = bestScore;
    return best;
  }

  /**
   * The best entry holding all m query terms: the rarest term's entries, narrowed by binary search
   * in each other term's postings (rarer first), then scored by looking each term up again and
   * summing in query order, as MiniSearch adds them. -1: no entry holds them all; -2: so many do
   * that adding up all postings (`accumulate`) is cheaper than the lookups.
   */
  private bestWithAll(m: number): number {
    const { queryTerms: q, byDf, postingStart, postingDoc, candidates } = this;
    let postings = 0;
    for (let i = 0; i < m; i++) {
      byDf[i] = this.df(q[i]!) * POSITIONS + i;
      postings += this.df(q[i]!);
    }
    sortPrefix(byDf, m);
    const rarest = q[byDf[0]! % POSITIONS]!;
    let n = 0;
    for (let p = postingStart[rarest]!, end = postingStart[rarest + 1]!; p < end; p++) candidates[n++] = postingDoc[p]!;
    for (let j = 1; j < m && n > 0; j++) {
      const t = q[byDf[j]! % POSITIONS]!;
      const end = postingStart[t + 1]!;
      let from = postingStart[t]!;
      let kept = 0;
      for (let c = 0; c < n; c++) {
        const doc = candidates[c]!;
        from = lowerBound(postingDoc, from, end, doc);
        if (from === end) break;
        if (postingDoc[from] === doc) candidates[kept++] = doc;
      }
      n = kept;
    }
    // A lookup costs about as much as adding a few postings (a binary search of ~10 steps).
    if (n * m * LOOKUP_COST > postings) return -2;
    let best = -1;
    let bestScore = -Infinity;
    for (let c = 0; c < n; c++) {
      const doc = candidates[c]!;
      let sum = 0;
      for (let i = 0; i < m; i++) {
        const t = q[i]!;
        sum += this.postingWeight[lowerBound(postingDoc, postingStart[t]!, postingStart[t + 1]!, doc)]!;
      }
      // Candidates are in entry order, so the first of equal scores stays.
      if (sum * m > bestScore) {
        best = doc;
        bestScore = sum * m;
      }
    }
    this.lastScore = bestScore;
    return best;
  }

  /**
   * The best entry by adding every term's postings into the score accumulator in query order (so
   * the sums round as MiniSearch's do), counting the terms each entry matched: among the entries
   * with all m terms if there are any (AND), else among all (OR).
   * (Stopping early, MaxScore-style, was tried for OR: on the generated corpus the bounds rarely
   * allowed it, and scoring the remaining candidates by lookups made this path 5 times slower.)
   */
  private accumulate(m: number): number {
    const { queryTerms: q, score, matched, touched, postingDoc, postingWeight, postingStart } = this;
    let nTouched = 0;
    for (let i = 0; i < m; i++) {
      const t = q[i]!;
      for (let p = postingStart[t]!, end = postingStart[t + 1]!; p < end; p++) {
        const doc = postingDoc[p]!;
        const count = matched[doc]!;
        // Branch-free (count - 1 >>> 31 is 1 only for 0): the branch mispredicts about every other
        // posting, and without it this loop took 21 µs instead of 35 µs per query (generated corpus).
        touched[nTouched] = doc;
        nTouched += (count - 1) >>> 31;
        score[doc]! += postingWeight[p]!;
        matched[doc] = count + 1;
      }
    }
    // MiniSearch's final score is the summed score times the number of query terms matched.
    let best = -1;
    let bestScore = -Infinity;
    let bestAll = -1;
    let bestAllScore = -Infinity;
    for (let i = 0; i < nTouched; i++) {
      const doc = touched[i]!;
      const count = matched[doc]!;
      const s = score[doc]! * count;
      if (s > bestScore || (s === bestScore && doc < best)) {
        best = doc;
        bestScore = s;
      }
      if (count === m && (s > bestAllScore || (s === bestAllScore && doc < bestAll))) {
        bestAll = doc;
        bestAllScore = s;
      }
      score[doc] = 0;
      matched[doc] = 0;
    }
    if (bestAll !== -1) {
      best = bestAll;
      bestScore = bestAllScore;
    }
    this.lastScore = bestScore;
    return best;
  }
}

/** How many postings one binary-search lookup is worth, in time (see `bestWithAll`). */
const LOOKUP_COST = 8;

/** Room for a query's position in a sort key (a query has fewer distinct words than 2^24). */
const POSITIONS = 2 ** 24;

/** Sorts a[0..n) ascending: in place for the usual handful, by the built-in sort (which needs a view) for more. */
function sortPrefix(a: Float64Array, n: number): void {
  if (n > 32) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const x = a[i]!;
    let j = i - 1;
    while (j >= 0 && a[j]! > x) {
      a[j + 1] = a[j]!;
      j--;
    }
    a[j + 1] = x;
  }
}

/** The first position in [from, to) of the ascending `a` whose value is at least `x` (`to` if none). */
function lowerBound(a: Int32Array, from: number, to: number, x: number): number {
  let lo = from;
  let hi = to;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
