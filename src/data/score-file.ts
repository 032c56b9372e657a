/**
 * Scores answers someone already has, without a service: a JSONL file with one
 * `{"prediction": "…", "reference": "…"}` object per line (other fields are ignored), each scored
 * as the evaluation scores the service's answers (metrics.ts). Blank lines are skipped.
 *
 * Unlike the conversations the evaluation sends (conversations.ts), a bad line stops the read:
 * the report lists every case's scores in input order, and a line left out would shift the rest.
 */
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { readJsonLines } from './jsonl.js';
import { checkInputFile } from './lawzhidao-csv.js';
import { meanScores, scoreAnswer, type Scores } from './metrics.js';

const kind = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);

const text = () => z.string({ error: (issue) => (issue.input === undefined ? 'is required' : `expected a string, got ${kind(issue.input)}`) });

const CaseSchema = z.object(
  {
    prediction: text(),
    reference: text().refine((s) => s.trim() !== '', 'is empty'),
  },
  { error: (issue) => `expected an object {"prediction", "reference"}, got ${kind(issue.input)}` },
);

export interface ScoreCase {
  line: number;
  prediction: string;
  reference: string;
}

/** Reads every case of the file; throws INVALID_DATA naming the first bad line and its field. */
export async function readScoreCases(path: string): Promise<ScoreCase[]> {
  await checkInputFile(path);
  const bad = (line: number, message: string) => new AppError('INVALID_DATA', `${path} line ${line}: ${message}`, { param: '--score' });
  const cases: ScoreCase[] = [];
  for await (const { line, value } of readJsonLines(path, (line, message) => {
    throw bad(line, message);
  })) {
    const parsed = CaseSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw bad(line, issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ${issue.message}` : issue.message);
    }
    cases.push({ line, ...parsed.data });
  }
  if (cases.length === 0) {
    throw new AppError('INVALID_DATA', `${path}: no answers to score (expected one {"prediction", "reference"} object per line)`, { param: '--score' });
  }
  return cases;
}

export interface ScoreResult {
  data: string;
  createdAt: string;
  /** Means over the cases. */
  scores: Scores;
  /** Each case's scores, in the order of the file. */
  cases: Scores[];
}

export function scoreCases(data: string, cases: readonly ScoreCase[]): ScoreResult {
  const scored = cases.map((c) => scoreAnswer(c.prediction, c.reference));
  return { data, createdAt: new Date().toISOString(), scores: meanScores(scored), cases: scored };
}
