/**
 * One entry of the legal Q&A knowledge base that the gateway retrieves into prompts and answers
 * from when it degrades. The data tools write these as JSONL (one object per line) from the
 * lawzhidao CSV; the gateway loads and indexes them, and takes more through its admin API.
 */
import { z } from 'zod';

export const KnowledgeEntrySchema = z.object({
  id: z.string().min(1),
  title: z.string().min(1),
  question: z.string().default(''),
  reply: z.string().min(1),
  /** Where the answer comes from (a statute, a document, an operator's note); entries added through the admin API may say. */
  source: z.string().optional(),
});
export type KnowledgeEntry = z.infer<typeof KnowledgeEntrySchema>;
