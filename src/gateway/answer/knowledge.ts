/**
 * Knowledge in the prompt: for a chat answer that asks for it (the request's `knowledge` field, or
 * `knowledge.augment` by default), the best knowledge-base entries for the last user message are
 * put into the worker request as one system turn, right before that message (in a conversation
 * with tools, before the last user turn of ChatGLM3's tool template), and named back to
 * the client as `sources`. It runs when the plan is made, before the answer hooks, so the
 * token budget counts the added tokens and the worker's `prompt_tokens` includes them.
 *
 * The turn (one template, documented in README and ARCHITECTURE):
 *
 *   以下是法律知识库中与用户问题相关的条目……（KNOWLEDGE_PREAMBLE）
 *
 *   [<id>]
 *   问：<question>
 *   补充：<detail>          (when the entry has one)
 *   答：<answer>
 *   来源：<source>          (when the entry has one)
 *
 *   [<id>] ...
 *
 * Entries come best first, at most `top_k`, each scoring at least `min_score` (the fallback's
 * BM25 scores: same index, same meaning), for the first 2,000 characters of the question. The turn stays within `knowledge.maxPromptTokens`
 * prompt tokens counted as the token budget counts them (the model's tokenizer, or its upper
 * bound until the gateway has it): an entry that does not fit is left out, and the first one, if
 * it alone does not fit, is cut (its question and the start of its answer, ending in ……).
 * Placed before the last user message rather than first: the conversation before it stays a
 * common prefix of the next turn's prompt (the workers reuse the KV of shared prefixes), and the
 * knowledge sits next to the question it was chosen for.
 */
import type { ChatMessage } from '../../protocol/schemas.js';
import type { KnowledgeBase, KnowledgeMatch } from '../fallback/knowledge-base.js';
import type { KnowledgeEntry } from '../../shared/knowledge-entry.js';
import { sourceOf } from './formats.js';
import type { AnswerPlan } from './pipeline.js';

/** The request's `knowledge` field: off, on with the configured defaults, or on with its own. */
export type KnowledgeChoice = boolean | { top_k?: number | undefined; min_score?: number | undefined } | null | undefined;

export interface KnowledgeSettings {
  augment: 'off' | 'on';
  topK: number;
  minScore: number;
  maxPromptTokens: number;
}

/** Prompt tokens of one message (its role, line break and content), as the token budget counts them. */
export type MessageCounter = (message: ChatMessage) => number;

export const KNOWLEDGE_PREAMBLE =
  '以下是法律知识库中与用户问题相关的条目，编号在方括号中。回答时请参考这些条目，并注明所依据条目的编号，例如 [kb-5]；与问题无关的条目不要引用。';

const SEPARATOR = '\n\n';
const ELLIPSIS = '……';
/**
 * The question is searched by its first this many characters: segmenting costs time in the length
 * (about 0.4 ms per 1,000 characters), a message may be a megabyte, and this runs on every
 * augmented request, where the fallback's search runs only when the workers cannot answer.
 */
const MAX_QUERY_CHARS = 2000;
/** A cut answer shorter than this (characters) says too little to be worth its place. */
const MIN_CUT_CHARS = 8;

/** One entry as the turn shows it. */
export function entryBlock(entry: KnowledgeEntry): string {
  const lines = [`[${entry.id}]`, `问：${entry.title}`];
  if (entry.question) lines.push(`补充：${entry.question}`);
  lines.push(`答：${entry.reply}`);
  if (entry.source) lines.push(`来源：${entry.source}`);
  return lines.join('\n');
}

/** The first entry cut to fit: its question and the start of its answer. */
function cutBlock(entry: KnowledgeEntry, chars: number): string {
  let end = chars;
  const code = entry.reply.charCodeAt(end);
  // Never between the halves of a surrogate pair.
  if (code >= 0xdc00 && code <= 0xdfff) end--;
  return [`[${entry.id}]`, `问：${entry.title}`, `答：${entry.reply.slice(0, end)}${ELLIPSIS}`].join('\n');
}

/** The whole system turn for the chosen blocks. */
export function knowledgeTurn(blocks: readonly string[]): string {
  return [KNOWLEDGE_PREAMBLE, ...blocks].join(SEPARATOR);
}

export class KnowledgeAugmenter {
  constructor(
    private readonly kb: KnowledgeBase,
    private readonly countMessage: MessageCounter,
    private readonly settings: KnowledgeSettings,
    /** Told, per augmented request, whether anything was added. */
    private readonly onAugment?: (added: boolean) => void,
  ) {}

  /** Adds the knowledge turn to a chat plan when the request asks for it; sets `plan.sources` (null: not asked). */
  augment(plan: AnswerPlan, choice: KnowledgeChoice): AnswerPlan {
    const asked = choice === true || (typeof choice === 'object' && choice !== null) || (choice == null && this.settings.augment === 'on');
    const { messages, turns } = plan.generate;
    if (!asked || ((!messages || messages.length === 0) && (!turns || turns.length === 0))) return plan;
    const own = typeof choice === 'object' && choice !== null ? choice : {};
    const topK = own.top_k ?? this.settings.topK;
    const minScore = own.min_score ?? this.settings.minScore;
    const matches = this.kb.search(plan.question.slice(0, MAX_QUERY_CHARS), topK).filter((m) => m.score >= minScore);
    const { blocks, used } = this.fit(matches);
    plan.sources = used.map(sourceOf);
    this.onAugment?.(used.length > 0);
    if (used.length > 0) {
      const content = knowledgeTurn(blocks);
      if (messages && messages.length > 0) {
        const turn: ChatMessage = { role: 'system', content };
        plan.generate.messages = [...messages.slice(0, -1), turn, messages[messages.length - 1]!];
      } else {
        // A conversation with tools: before the last user turn, so that a tool loop's later
        // rounds (calls and results after it) keep the knowledge where the question is.
        const list = turns!;
        let at = list.length;
        for (let i = list.length - 1; i >= 0; i--) {
          if (list[i]!.role === 'user') {
            at = i;
            break;
          }
        }
        plan.generate.turns = [...list.slice(0, at), { role: 'system', metadata: '', content }, ...list.slice(at)];
      }
    }
    return plan;
  }

  private cost(blocks: readonly string[]): number {
    return this.countMessage({ role: 'system', content: knowledgeTurn(blocks) });
  }

  /** Prompt tokens of a text inside a message, without the message's own role and line break. */
  private textCost(text: string): number {
    return this.countMessage({ role: 'system', content: text }) - this.countMessage({ role: 'system', content: '' });
  }

  /**
   * The blocks that fit the budget, best first. Counted block by block (the counter caches each
   * text, and most entries come back again and again), then the whole turn once to be sure, since
   * tokens at the joins need not add up exactly.
   */
  private fit(matches: readonly KnowledgeMatch[]): { blocks: string[]; used: KnowledgeMatch[] } {
    const budget = this.settings.maxPromptTokens;
    const blocks: string[] = [];
    const used: KnowledgeMatch[] = [];
    if (matches.length === 0) return { blocks, used };
    const separator = this.textCost(SEPARATOR);
    let estimate = this.cost([]);
    for (const match of matches) {
      const block = entryBlock(match.entry);
      const more = separator + this.textCost(block);
      if (estimate + more <= budget) {
        blocks.push(block);
        used.push(match);
        estimate += more;
      } else if (blocks.length === 0) {
        const cut = this.cut(match.entry, budget);
        if (cut !== null) {
          blocks.push(cut);
          used.push(match);
          estimate = this.cost(blocks);
        }
      }
    }
    while (blocks.length > 0 && this.cost(blocks) > budget) {
      blocks.pop();
      used.pop();
    }
    return { blocks, used };
  }

  /** The entry cut to fit the budget alone, or null when even a short start of its answer does not. */
  private cut(entry: KnowledgeEntry, budget: number): string | null {
    const whole = this.cost([cutBlock(entry, entry.reply.length)]);
    let chars = Math.min(entry.reply.length, Math.floor((entry.reply.length * budget) / Math.max(1, whole)));
    while (chars >= MIN_CUT_CHARS) {
      const block = cutBlock(entry, chars);
      if (this.cost([block]) <= budget) return block;
      chars = Math.floor(chars * 0.85);
    }
    return null;
  }
}
