/**
 * Line-by-line reading of JSONL files (knowledge bases, finetune_demo data): a BOM before the
 * first line and surrounding whitespace are ignored, blank lines are skipped, and a line that
 * is not JSON is passed to `onBadLine` with its number instead of stopping the read. Memory is
 * one line at a time.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface JsonLine {
  line: number;
  value: unknown;
}

export async function* readJsonLines(path: string, onBadLine: (line: number, message: string) => void): AsyncGenerator<JsonLine> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const raw of lines) {
      line++;
      const text = (line === 1 ? raw.replace(/^\uFEFF/, '') : raw).trim();
      if (text === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (err) {
        onBadLine(line, `not JSON: ${(err as Error).message}`);
        continue;
      }
      yield { line, value };
    }
  } finally {
    lines.close();
  }
}
