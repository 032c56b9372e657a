/**
 * The golden files copied into test/fixtures/golden/ (same layout as the shared golden folder),
 * for tests that read them from the project itself.
 */
import { join } from 'node:path';
import type { JsonObject } from '../../src/tokenizer/python-literal.js';
import type { ToolMessageInput } from '../../src/tokenizer/tool-template.js';
import { GOLDEN_DIR, GOLDEN_TINY_DIR } from './paths.js';
import { readJson } from './json.js';

export const FIXTURE_TOKENIZER_MODEL = join(GOLDEN_DIR, 'tokenizer/tokenizer.model');

/** One prompt of the tiny model's reference outputs (chatglm3-tiny/expected.json). */
export interface GoldenCase {
  input_ids: number[];
  logits_all_positions: number[][];
  continuation_ids: number[];
  continuation_last_logits: number[][];
  greedy_ids: number[];
}

export interface GoldenExpected {
  lora: { r: number; alpha: number; scaling: number; target_modules: string[] };
  base: GoldenCase[];
  with_lora: GoldenCase[];
  left_padded_batch: { input_ids: number[][]; attention_mask: number[][]; position_ids: number[][]; last_logits: number[][] };
}

export function readTinyGolden(): GoldenExpected {
  return readJson<GoldenExpected>(join(GOLDEN_TINY_DIR, 'expected.json'));
}

export interface ToolsGolden {
  tools_sentence: string;
  render: Array<{ request: { tools?: unknown; messages: ToolMessageInput[] }; input_ids: number[]; text: string }>;
  parse: Array<{ code: string; arguments: JsonObject }>;
  refuse: string[];
}

export interface TokenizerGolden {
  chat: Array<{ messages: Array<{ role: 'system' | 'user' | 'assistant'; content: string }>; input_ids: number[] }>;
}

export function readToolsGolden(): ToolsGolden {
  return readJson<ToolsGolden>(join(GOLDEN_DIR, 'tools/expected.json'));
}

export function readTokenizerGolden(): TokenizerGolden {
  return readJson<TokenizerGolden>(join(GOLDEN_DIR, 'tokenizer/expected.json'));
}
