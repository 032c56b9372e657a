/**
 * A BM25+ inverted index on typed arrays for the knowledge base, scoring exactly as MiniSearch 7
 * does (same k, b, d, field boosts, per-field average length and final multiplication by the
 * number of matched query terms), so a score threshold tuned on MiniSearch keeps its meaning. It
 * takes additions and removals while it serves, and scores after them as MiniSearch would after
 * the same `add` and `remove` calls.
 *
 * Why hand-written rather than MiniSearch: the degraded path has to answer 5,000 requests/s on
 * two cores, so an uncached search must stay well under 50 µs, and MiniSearch allocates a result
 * object per matched entry per term and merges Maps per term. `npm run bench:kb` (10,000
 * generated entries, 2,000 questions, uncached, this 2-core machine, jieba's words): MiniSearch
 * with the same query shaping 3.7 ms per question at p50, 25.4 ms at p99, 180 questions/s, built
 * in 0.79 s, 11.1 MB; this index 30 µs at p50 (5 µs of it the word segmenter), 130 µs at p99,
 * 21,956 questions/s, built in 0.23 s, 1.9 MB; the same best entry and score for all 2,000 questions.
 * (Since it takes changes: 35 µs at p50 and 3.9 MB, the term frequencies kept for recomputing
 * weights and the room to grow; see ARCHITECTURE.md for the cost of a change.)
 * Another library would score differently, and `knowledgeBase.minScore` would lose its meaning.
 *
 * Layout: every term's postings are one slice of three arrays of a chunk of a shared pool
 * (entry number, ascending; the term's whole weight in that entry, the boosted field scores
 * summed; the term's frequency in each field). Entries holding all the query words are found by intersecting
 * postings, rarest first; otherwise each query term's slice is added into a reused score
 * accumulator that remembers the entries it touched. A query allocates nothing but its words
 * (and, past 32 distinct words, one array view to sort them). Sums are taken in query order, as
 * MiniSearch takes them, so scores are equal to the last bit.
 *
 * Changes: an entry's weight in a term depends on the number of entries, the term's per-field
 * document frequency and the fields' average lengths, so one addition changes, in principle,
 * every weight. Weights are therefore stamped with the index's version and recomputed per term,
 * with the same arithmetic, the first time a query uses a term after a change: an addition or a
 * removal costs what its own words cost, and a query pays once for each stale term it uses.
 * Entry numbers only grow (a replaced entry is removed and added again), so a new entry's
 * postings are appended at the end of its terms' slices. A slice that is full moves to the end
 * of the newest chunk with twice its room (the last slice of that chunk grows where it is); when
 * the newest chunk is full a new one is made, so no change ever copies the whole pool. The room
 * left behind by moved slices is never more than the slices own (each move doubles), and a
 * slice's room does not grow while replacements keep its length. A removed entry is a
 * tombstone: the document frequencies drop at once and
 * its postings are dropped from a slice when the slice's weights are recomputed, which happens
 * before any query reads it.
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

/** MiniSearch's inverse document frequency (the first line of its `calcBM25Score`). */
function idf(matchingCount: number, totalCount: number): number {
  return Math.log(1 + (totalCount - matchingCount + 0.5) / (matchingCount + 0.5));
}

/** The rest of MiniSearch's `calcBM25Score`, written with the same operation order, so the same rounding. */
function bm25(invDocFreq: number, termFreq: number, fieldLength: number, avgFieldLength: number): number {
  const { k, b, d } = BM25;
  return invDocFreq * (d + (termFreq * (k + 1)) / (termFreq + k * (1 - b + (b * fieldLength) / avgFieldLength)));
}

export interface KbIndexOptions {
  /** A term in more entries than this share is left out of a query when rarer terms are left (see `shape`). */
  commonTermShare: number;
}

/** One search result: the entry number and its score. */
export interface IndexHit {
  doc: number;
  score: number;
}

/** The most results one search returns. */
export const MAX_RESULTS = 100;
/** Term frequencies are kept in 16 bits: a word repeated more often in one field counts this often. */
const MAX_TF = 0xffff;

export class KbIndex {
  private readonly boosts: Float64Array;
  private readonly nf: number;
  private readonly commonTermShare: number;
  private readonly termIds = new Map<string, number>();
  private terms = 0;

  // Per term (indexed by term id).
  private tStart: Int32Array;
  private tLength: Int32Array;
  private tCapacity: Int32Array;
  /** Live entries holding the term, in any field / in each field (term · nf + field). */
  private tDf: Int32Array;
  private tFieldDf: Int32Array;
  /** The index version the term's weights were computed at. */
  private tVersion: Float64Array;

  /** The chunk of the pool that holds the term's slice. */
  private tChunk: Int32Array;

  // The postings pool, in chunks: entry numbers, weights, and per posting the term's frequency
  // in each field (posting · nf + field). New slices go into the last chunk.
  private readonly cDoc: Int32Array[] = [];
  private readonly cWeight: Float64Array[] = [];
  private readonly cTf: Uint16Array[] = [];
  /** Postings of the last chunk given to slices so far. */
  private used = 0;

  // Per entry (indexed by entry number).
  private docs = 0;
  private live = 0;
  private alive: Uint8Array;
  private fieldLength: Int32Array;
  private readonly avgFieldLength: Float64Array;
  private version = 0;

  // Scratch space reused by every search (searches are synchronous, so one set is enough).
  private score: Float64Array;
  private matched: Int32Array;
  private touched: Int32Array;
  private candidates: Int32Array;
  private queryTerms: Int32Array;
  /** Query terms as df · POSITIONS + position, to sort them rarest first without a comparator. */
  private byDf: Float64Array;
  /** seenAt[t] === stamp: term t is already in the current query. */
  private seenAt: Int32Array;
  private stamp = 0;
  /** The results of the current search, best first (equal scores: lower entry number first). */
  private readonly topDoc = new Int32Array(MAX_RESULTS);
  private readonly topScore = new Float64Array(MAX_RESULTS);
  private topCount = 0;
  private topK = 1;

  constructor(fields: readonly IndexedField[], documents: readonly IndexedDocument[], options: KbIndexOptions) {
    const n = documents.length;
    const nf = fields.length;
    this.nf = nf;
    this.boosts = Float64Array.from(fields, (f) => f.boost);
    this.commonTermShare = options.commonTermShare;
    // Field lengths and their running averages, updated per document in MiniSearch's order and
    // arithmetic (`addFieldLength`), so the averages round exactly as its do.
    const docCapacity = Math.max(16, n + (n >> 3));
    this.fieldLength = new Int32Array(docCapacity * nf);
    this.avgFieldLength = new Float64Array(nf);
    this.alive = new Uint8Array(docCapacity);
    // Postings while building: per term, entry numbers and per-field term frequencies.
    const docsOf: number[][] = [];
    const tfOf: number[][] = [];
    for (let doc = 0; doc < n; doc++) {
      const document = documents[doc]!;
      for (let f = 0; f < nf; f++) {
        const words = document[f]!;
        const length = new Set(words).size;
        this.fieldLength[doc * nf + f] = length;
        this.avgFieldLength[f] = (this.avgFieldLength[f]! * doc + length) / (doc + 1);
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
      this.alive[doc] = 1;
    }
    this.docs = n;
    this.live = n;

    const terms = docsOf.length;
    this.terms = terms;
    let total = 0;
    for (const docs of docsOf) total += docs.length;
    const termCapacity = Math.max(64, terms + (terms >> 3));
    this.tStart = new Int32Array(termCapacity);
    this.tLength = new Int32Array(termCapacity);
    this.tCapacity = new Int32Array(termCapacity);
    this.tDf = new Int32Array(termCapacity);
    this.tFieldDf = new Int32Array(termCapacity * nf);
    this.tVersion = new Float64Array(termCapacity);
    this.tChunk = new Int32Array(termCapacity);
    // Room for additions: a slice that grows moves to the end of the chunk.
    this.newChunk(Math.max(1024, total + (total >> 2)), true);
    const pDoc = this.cDoc[0]!;
    const pTf = this.cTf[0]!;
    let p = 0;
    for (let t = 0; t < terms; t++) {
      const docs = docsOf[t]!;
      const tfs = tfOf[t]!;
      this.tStart[t] = p;
      this.tLength[t] = docs.length;
      this.tCapacity[t] = docs.length;
      this.tDf[t] = docs.length;
      for (let i = 0; i < docs.length; i++, p++) {
        pDoc[p] = docs[i]!;
        for (let f = 0; f < nf; f++) {
          const tf = tfs[i * nf + f]!;
          pTf[p * nf + f] = Math.min(tf, MAX_TF);
          if (tf > 0) this.tFieldDf[t * nf + f]! += 1;
        }
      }
      this.weigh(t);
    }
    this.used = p;

    this.score = new Float64Array(docCapacity);
    this.matched = new Int32Array(docCapacity);
    this.touched = new Int32Array(docCapacity);
    this.candidates = new Int32Array(docCapacity);
    this.queryTerms = new Int32Array(termCapacity);
    this.byDf = new Float64Array(termCapacity);
    this.seenAt = new Int32Array(termCapacity);
  }

  /** Live entries. */
  get size(): number {
    return this.live;
  }

  /** Entry numbers given out so far (live or removed); the next addition gets this one. */
  get issued(): number {
    return this.docs;
  }

  has(doc: number): boolean {
    return doc >= 0 && doc < this.docs && this.alive[doc] === 1;
  }

  /** Adds a document (its words per field, as for the constructor); returns its entry number. */
  add(document: IndexedDocument): number {
    const nf = this.nf;
    const doc = this.docs;
    this.ensureDocs(doc + 1);
    for (let f = 0; f < nf; f++) {
      const length = new Set(document[f]!).size;
      this.fieldLength[doc * nf + f] = length;
      // MiniSearch's `addFieldLength`, with the count of entries before this one.
      this.avgFieldLength[f] = (this.avgFieldLength[f]! * this.live + length) / (this.live + 1);
    }
    for (let f = 0; f < nf; f++) {
      for (const word of document[f]!) {
        const term = normalizeTerm(word);
        if (!term) continue;
        let t = this.termIds.get(term);
        if (t === undefined) t = this.newTerm(term);
        let p = this.tStart[t]! + this.tLength[t]! - 1;
        if (this.tLength[t] === 0 || this.cDoc[this.tChunk[t]!]![p] !== doc) {
          p = this.append(t, doc);
          this.tDf[t]! += 1;
        }
        const tfs = this.cTf[this.tChunk[t]!]!;
        const at = p * nf + f;
        if (tfs[at] === 0) this.tFieldDf[t * nf + f]! += 1;
        if (tfs[at]! < MAX_TF) tfs[at]! += 1;
      }
    }
    this.alive[doc] = 1;
    this.docs++;
    this.live++;
    this.version++;
    return doc;
  }

  /**
   * Removes an entry. `document` must be the words it was added with (as MiniSearch's `remove`
   * needs the document): they say which terms lose it, without a scan of every slice.
   */
  remove(doc: number, document: IndexedDocument): void {
    if (!this.has(doc)) return;
    const nf = this.nf;
    for (let f = 0; f < nf; f++) {
      // MiniSearch's `removeFieldLength`, with the count of entries before the removal.
      this.avgFieldLength[f] = this.live === 1 ? 0 : (this.avgFieldLength[f]! * this.live - this.fieldLength[doc * nf + f]!) / (this.live - 1);
    }
    const held = new Set<number>();
    for (let f = 0; f < nf; f++) {
      const inField = new Set<number>();
      for (const word of document[f]!) {
        const t = this.termIds.get(normalizeTerm(word));
        if (t !== undefined) inField.add(t);
      }
      for (const t of inField) {
        this.tFieldDf[t * nf + f]! -= 1;
        held.add(t);
      }
    }
    for (const t of held) this.tDf[t]! -= 1;
    this.alive[doc] = 0;
    this.live--;
    this.version++;
  }

  /** The best match for the query words, or null when no entry has any of them. */
  best(words: readonly string[]): IndexHit | null {
    this.run(words, 1);
    return this.topCount === 0 ? null : { doc: this.topDoc[0]!, score: this.topScore[0]! };
  }

  /**
   * The k best matches (at most MAX_RESULTS), best first; equal scores in entry order. The same
   * results as MiniSearch's first k for the same shaped query (AND, else OR: see `shape`).
   */
  search(words: readonly string[], k: number): IndexHit[] {
    if (!(k >= 1)) return [];
    this.run(words, Math.min(MAX_RESULTS, Math.floor(k)));
    const out: IndexHit[] = [];
    for (let i = 0; i < this.topCount; i++) out.push({ doc: this.topDoc[i]!, score: this.topScore[i]! });
    return out;
  }

  private run(words: readonly string[], k: number): void {
    this.topCount = 0;
    this.topK = k;
    const m = this.shape(words);
    if (m === 0) return;
    for (let i = 0; i < m; i++) this.refresh(this.queryTerms[i]!);
    if (m === 1) this.collectOne(this.queryTerms[0]!);
    else if (!this.collectWithAll(m)) this.accumulate(m);
  }

  /**
   * Puts the query's terms in `queryTerms` and returns how many. Query shaping: words no entry
   * has are dropped, then words in more than `commonTermShare` of the entries (unless nothing else
   * is left: then the rarest, the first of equals); the entries with all remaining words compete
   * first, the entries with any of them only when none has all (MiniSearch's AND, then OR).
   */
  private shape(words: readonly string[]): number {
    if (++this.stamp === 0x7fffffff) {
      this.seenAt.fill(0);
      this.stamp = 1;
    }
    const q = this.queryTerms;
    const df = this.tDf;
    let known = 0;
    for (const word of words) {
      const t = this.termIds.get(normalizeTerm(word));
      if (t === undefined || df[t] === 0 || this.seenAt[t] === this.stamp) continue;
      this.seenAt[t] = this.stamp;
      q[known++] = t;
    }
    if (known === 0) return 0;
    const maxDf = Math.max(1, Math.floor(this.live * this.commonTermShare));
    // Kept in place: the write position never passes the read position.
    let m = 0;
    for (let i = 0; i < known; i++) if (df[q[i]!]! <= maxDf) q[m++] = q[i]!;
    if (m === 0) {
      let rarest = q[0]!;
      for (let i = 1; i < known; i++) if (df[q[i]!]! < df[rarest]!) rarest = q[i]!;
      q[0] = rarest;
      m = 1;
    }
    return m;
  }

  /** Offers a result to the current top k (equal scores: the lower entry number ranks first). */
  private offer(doc: number, score: number): void {
    const { topDoc, topScore } = this;
    let i = this.topCount;
    if (i === this.topK) {
      const last = i - 1;
      if (score < topScore[last]! || (score === topScore[last] && doc > topDoc[last]!)) return;
      i = last;
    } else {
      this.topCount++;
    }
    while (i > 0 && (topScore[i - 1]! < score || (topScore[i - 1] === score && topDoc[i - 1]! > doc))) {
      topDoc[i] = topDoc[i - 1]!;
      topScore[i] = topScore[i - 1]!;
      i--;
    }
    topDoc[i] = doc;
    topScore[i] = score;
  }

  /** One term: its weights are the scores (postings in entry order, so the first of equals stays). */
  private collectOne(t: number): void {
    const pDoc = this.cDoc[this.tChunk[t]!]!;
    const pWeight = this.cWeight[this.tChunk[t]!]!;
    for (let p = this.tStart[t]!, end = p + this.tLength[t]!; p < end; p++) {
      // Cheaper than `offer` for the many postings that cannot enter a full top k.
      if (this.topCount === this.topK && pWeight[p]! <= this.topScore[this.topCount - 1]!) continue;
      this.offer(pDoc[p]!, pWeight[p]!);
    }
  }

  /**
   * The entries holding all m query terms: the rarest term's entries, narrowed by binary search
   * in each other term's postings (rarer first), then scored by looking each term up again and
   * summing in query order, as MiniSearch adds them. False, with nothing collected: no entry holds
   * them all, or so many do that adding up all postings (`accumulate`) is cheaper than the lookups.
   */
  private collectWithAll(m: number): boolean {
    const { queryTerms: q, byDf, tStart, tLength, tChunk, cDoc, candidates } = this;
    let postings = 0;
    for (let i = 0; i < m; i++) {
      byDf[i] = tLength[q[i]!]! * POSITIONS + i;
      postings += tLength[q[i]!]!;
    }
    sortPrefix(byDf, m);
    const rarest = q[byDf[0]! % POSITIONS]!;
    let n = 0;
    const rarestDocs = cDoc[tChunk[rarest]!]!;
    for (let p = tStart[rarest]!, end = p + tLength[rarest]!; p < end; p++) candidates[n++] = rarestDocs[p]!;
    for (let j = 1; j < m && n > 0; j++) {
      const t = q[byDf[j]! % POSITIONS]!;
      const pDoc = cDoc[tChunk[t]!]!;
      const end = tStart[t]! + tLength[t]!;
      let from = tStart[t]!;
      let kept = 0;
      for (let c = 0; c < n; c++) {
        const doc = candidates[c]!;
        from = lowerBound(pDoc, from, end, doc);
        if (from === end) break;
        if (pDoc[from] === doc) candidates[kept++] = doc;
      }
      n = kept;
    }
    if (n === 0) return false;
    // A lookup costs about as much as adding a few postings (a binary search of ~10 steps).
    if (n * m * LOOKUP_COST > postings) return false;
    for (let c = 0; c < n; c++) {
      const doc = candidates[c]!;
      let sum = 0;
      for (let i = 0; i < m; i++) {
        const t = q[i]!;
        const c = tChunk[t]!;
        sum += this.cWeight[c]![lowerBound(cDoc[c]!, tStart[t]!, tStart[t]! + tLength[t]!, doc)]!;
      }
      this.offer(doc, sum * m);
    }
    return true;
  }

  /**
   * The best entries by adding every term's postings into the score accumulator in query order
   * (so the sums round as MiniSearch's do), counting the terms each entry matched: among the
   * entries with all m terms if there are any (AND), else among all (OR).
   * (Stopping early, MaxScore-style, was tried for OR: on the generated corpus the bounds rarely
   * allowed it, and scoring the remaining candidates by lookups made this path 5 times slower.)
   */
  private accumulate(m: number): void {
    const { queryTerms: q, score, matched, touched, tStart, tLength } = this;
    let nTouched = 0;
    for (let i = 0; i < m; i++) {
      const t = q[i]!;
      const pDoc = this.cDoc[this.tChunk[t]!]!;
      const pWeight = this.cWeight[this.tChunk[t]!]!;
      for (let p = tStart[t]!, end = p + tLength[t]!; p < end; p++) {
        const doc = pDoc[p]!;
        const count = matched[doc]!;
        // Branch-free (count - 1 >>> 31 is 1 only for 0): the branch mispredicts about every other
        // posting, and without it this loop took 21 µs instead of 35 µs per query (generated corpus).
        touched[nTouched] = doc;
        nTouched += (count - 1) >>> 31;
        score[doc]! += pWeight[p]!;
        matched[doc] = count + 1;
      }
    }
    let all = false;
    for (let i = 0; i < nTouched; i++) {
      if (matched[touched[i]!] === m) {
        all = true;
        break;
      }
    }
    // MiniSearch's final score is the summed score times the number of query terms matched.
    for (let i = 0; i < nTouched; i++) {
      const doc = touched[i]!;
      const count = matched[doc]!;
      if (!all || count === m) {
        const s = score[doc]! * count;
        if (this.topCount < this.topK || s >= this.topScore[this.topCount - 1]!) this.offer(doc, s);
      }
      score[doc] = 0;
      matched[doc] = 0;
    }
  }

  /** Brings a term's slice and weights up to the index's version: tombstones out, weights recomputed. */
  private refresh(t: number): void {
    if (this.tVersion[t] === this.version) return;
    const nf = this.nf;
    const { alive } = this;
    const pDoc = this.cDoc[this.tChunk[t]!]!;
    const pTf = this.cTf[this.tChunk[t]!]!;
    const start = this.tStart[t]!;
    const length = this.tLength[t]!;
    if (length !== this.tDf[t]) {
      let w = start;
      for (let p = start, end = start + length; p < end; p++) {
        if (alive[pDoc[p]!] !== 1) continue;
        if (w !== p) {
          pDoc[w] = pDoc[p]!;
          pTf.copyWithin(w * nf, p * nf, p * nf + nf);
        }
        w++;
      }
      this.tLength[t] = w - start;
    }
    this.weigh(t);
  }

  /** A term's weight in each of its entries, from the current statistics, as at build time. */
  private weigh(t: number): void {
    const nf = this.nf;
    const n = this.live;
    const { fieldLength, avgFieldLength, boosts } = this;
    const pDoc = this.cDoc[this.tChunk[t]!]!;
    const pTf = this.cTf[this.tChunk[t]!]!;
    const pWeight = this.cWeight[this.tChunk[t]!]!;
    const start = this.tStart[t]!;
    const end = start + this.tLength[t]!;
    const idfs = this.idfScratch(nf);
    for (let f = 0; f < nf; f++) idfs[f] = idf(this.tFieldDf[t * nf + f]!, n);
    for (let p = start; p < end; p++) {
      const doc = pDoc[p]!;
      // MiniSearch adds a term's field scores per entry in field order, then the terms in query order.
      let weight = 0;
      for (let f = 0; f < nf; f++) {
        const tf = pTf[p * nf + f]!;
        if (tf === 0) continue;
        weight += boosts[f]! * bm25(idfs[f]!, tf, fieldLength[doc * nf + f]!, avgFieldLength[f]!);
      }
      pWeight[p] = weight;
    }
    this.tVersion[t] = this.version;
  }

  private idfBuffer = new Float64Array(4);
  private idfScratch(nf: number): Float64Array {
    if (this.idfBuffer.length < nf) this.idfBuffer = new Float64Array(nf);
    return this.idfBuffer;
  }

  private newTerm(term: string): number {
    const t = this.terms++;
    if (t >= this.tStart.length) {
      const cap = this.tStart.length * 2;
      this.tStart = grow(this.tStart, cap);
      this.tLength = grow(this.tLength, cap);
      this.tCapacity = grow(this.tCapacity, cap);
      this.tDf = grow(this.tDf, cap);
      this.tFieldDf = grow(this.tFieldDf, cap * this.nf);
      this.tVersion = grow(this.tVersion, cap);
      this.tChunk = grow(this.tChunk, cap);
      this.queryTerms = new Int32Array(cap);
      this.byDf = new Float64Array(cap);
      this.seenAt = grow(this.seenAt, cap);
    }
    this.termIds.set(term, t);
    this.tChunk[t] = this.cDoc.length - 1;
    this.tStart[t] = this.used;
    // A new term is stale at once: its weights come with the first query that uses it.
    this.tVersion[t] = -1;
    return t;
  }

  /** Appends a posting for `doc` (frequencies zero) to term t's slice; returns its position in the term's chunk. */
  private append(t: number, doc: number): number {
    const nf = this.nf;
    let start = this.tStart[t]!;
    const length = this.tLength[t]!;
    const capacity = this.tCapacity[t]!;
    if (length === capacity) {
      const room = Math.max(4, capacity * 2);
      const last = this.cDoc.length - 1;
      if (this.tChunk[t] === last && start + capacity === this.used && start + room <= this.cDoc[last]!.length) {
        this.used = start + room;
      } else {
        if (this.used + room > this.cDoc[last]!.length) this.newChunk(room);
        const from = this.tChunk[t]!;
        const to = this.cDoc.length - 1;
        const at = this.used;
        this.cDoc[to]!.set(this.cDoc[from]!.subarray(start, start + length), at);
        this.cWeight[to]!.set(this.cWeight[from]!.subarray(start, start + length), at);
        this.cTf[to]!.set(this.cTf[from]!.subarray(start * nf, (start + length) * nf), at * nf);
        this.tChunk[t] = to;
        this.tStart[t] = at;
        this.used = at + room;
        start = at;
      }
      this.tCapacity[t] = room;
    }
    const c = this.tChunk[t]!;
    const p = start + length;
    this.cDoc[c]![p] = doc;
    this.cWeight[c]![p] = 0;
    this.cTf[c]!.fill(0, p * nf, p * nf + nf);
    this.tLength[t] = length + 1;
    return p;
  }

  /** A new last chunk with room for `room` postings; after the first, a quarter of a million at least (a few MB). */
  private newChunk(room: number, first = false): void {
    const size = first ? room : Math.max(CHUNK_POSTINGS, room);
    this.cDoc.push(new Int32Array(size));
    this.cWeight.push(new Float64Array(size));
    this.cTf.push(new Uint16Array(size * this.nf));
    this.used = 0;
  }

  private ensureDocs(n: number): void {
    if (n <= this.alive.length) return;
    const cap = Math.max(n, this.alive.length * 2);
    this.alive = grow(this.alive, cap);
    this.fieldLength = grow(this.fieldLength, cap * this.nf);
    this.score = new Float64Array(cap);
    this.matched = new Int32Array(cap);
    this.touched = new Int32Array(cap);
    this.candidates = new Int32Array(cap);
  }
}

type TypedArray = Int32Array | Uint16Array | Uint8Array | Float64Array;

/** A copy of `a` with room for `length` elements. */
function grow<T extends TypedArray>(a: T, length: number): T {
  const out = new (a.constructor as new (n: number) => T)(length);
  out.set(a as never);
  return out;
}

/** Postings of a chunk made after the first (16 bytes each with two fields). */
const CHUNK_POSTINGS = 1 << 18;

/** How many postings one binary-search lookup is worth, in time (see `collectWithAll`). */
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
