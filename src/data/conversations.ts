/**
 * Reads ChatGLM3 finetune_demo data (`train.json` / `dev.json`: one
 * `{"conversations":[{role,content},...]}` object per line) as evaluation samples: the turns
 * before the last assistant turn are the prompt, the last assistant turn is the reference.
 * A line that is not such an object is reported with its number and skipped.
 */
import { z } from 'zod';
import { AppError } from '../shared/errors.js';
import { readJsonLines } from './jsonl.js';
import { checkInputFile } from './lawzhidao-csv.js';

const TurnSchema = z.object({
  role: z.enum(['system', 'user', 'assistant']),
  content: z.string(),
});

const ConversationSchema = z.object({
  conversations: z
    .array(TurnSchema)
    .min(2, 'needs a user turn and an assistant turn')
    .refine((turns) => turns[turns.length - 1]!.role === 'assistant', 'the last turn must be the assistant\'s')
    .refine((turns) => turns.some((t) => t.role === 'user'), 'needs a user turn')
    .refine((turns) => turns[turns.length - 1]!.content.trim() !== '', 'the reference (last assistant turn) is empty'),
});

export interface ChatTurn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface EvalSample {
  line: number;
  messages: ChatTurn[];
  reference: string;
}

export interface LineSkip {
  line: number;
  message: string;
}

/** Reads up to `limit` samples from a finetune_demo JSONL file. */
export async function readEvalSamples(path: string, options: { limit?: number; onSkip?: (skip: LineSkip) => void } = {}): Promise<EvalSample[]> {
  await checkInputFile(path);
  const samples: EvalSample[] = [];
  const onSkip = options.onSkip ?? (() => {});
  for await (const { line, value } of readJsonLines(path, (line, message) => onSkip({ line, message }))) {
    const parsed = ConversationSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      onSkip({ line, message: `${issue.path.map(String).join('.') || '(line)'}: ${issue.message}` });
      continue;
    }
    const turns = parsed.data.conversations;
    samples.push({ line, messages: turns.slice(0, -1), reference: turns[turns.length - 1]!.content });
    if (options.limit !== undefined && samples.length >= options.limit) break;
  }
  if (samples.length === 0) {
    throw new AppError('INVALID_DATA', `${path}: no conversations to evaluate (expected finetune_demo lines {"conversations":[...]})`, { param: '--data' });
  }
  return samples;
}
