/**
 * One entry of the legal Q&A knowledge base that the gateway answers from when it degrades.
 * The data tools write these as JSONL (one object per line) from the lawzhidao CSV; the gateway
 * loads and indexes them.
 */
import { z } from 'zod';

export const KnowledgeEntrySchema = z.object({
  id: z.string().min(1),
  title: z.string().min(1),
  question: z.string().default(''),
  reply: z.string().min(1),
});
export type KnowledgeEntry = z.infer<typeof KnowledgeEntrySchema>;
