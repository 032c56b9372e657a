/**
 * The load test's request mix: legal questions, short and long, on the three answer routes,
 * streamed and not, with a share of invalid requests that must get a 4xx (or, with --dataset,
 * the dataset's conversations in place of the built-in questions, the same routes and garbage
 * share). Each request kind says what a right answer looks like, so that wrong ones are counted.
 */

/** Short questions, as users type them. Written for this project. */
const SHORT_QUESTIONS = [
  '借钱不还怎么办？',
  '公司拖欠工资可以去哪里投诉？',
  '离婚时房产怎么分割？',
  '交通事故对方全责，误工费怎么算？',
  '租房押金房东不退怎么办？',
  '试用期被辞退有补偿吗？',
  '网购买到假货如何维权？',
  '遗嘱需要公证才有效吗？',
];

/** A long case description, so that prompts of a few hundred tokens are in the mix too. */
const LONG_CASE = [
  '我在2021年3月借给朋友张某人民币五万元，当时他写了一张借条，约定一年内归还，年利率百分之六。',
  '到期后我多次通过微信和电话催要，他一直以生意周转困难为由拖延，只在2022年8月还了五千元。',
  '现在他换了手机号码，微信也把我拉黑了，但我知道他在本市有一套登记在他名下的房子。',
  '借条原件在我手里，转账是通过银行卡转的，有银行流水，催款的微信聊天记录我也截图保存了。',
  '请问：我现在起诉还来得及吗？诉讼时效是从什么时候开始算的？他还的五千元会不会让时效重新计算？',
  '起诉的话应该去哪个法院，需要准备哪些证据，利息能不能一并主张？能不能申请财产保全查封他的房子？',
].join('');

export type RequestKind =
  | 'chat-short'
  | 'chat-long'
  | 'chat-stream'
  | 'completions'
  | 'completions-stream'
  | 'invalid-json'
  | 'invalid-empty-messages'
  | 'invalid-last-not-user'
  | 'invalid-max-tokens';

export interface LoadRequest {
  kind: RequestKind;
  method: 'POST';
  path: string;
  body: string;
  /** True when a 4xx is the right answer. */
  invalid: boolean;
  stream: boolean;
}

export interface Turn {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface WorkloadOptions {
  /** Every valid request streams. */
  stream: boolean;
  maxTokens: number;
  /** The model name sent on /v1/chat/completions. */
  model: string;
  /** Conversations (--dataset) whose turns replace the built-in questions of valid requests. */
  prompts?: readonly (readonly Turn[])[];
}

/** Relative weights of the kinds: most traffic is valid, one request in ten is invalid. */
export const MIX: Record<RequestKind, number> = {
  'chat-short': 30,
  'chat-long': 15,
  'chat-stream': 15,
  completions: 15,
  'completions-stream': 15,
  'invalid-json': 3,
  'invalid-empty-messages': 3,
  'invalid-last-not-user': 2,
  'invalid-max-tokens': 2,
};

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

/** Picks a kind by MIX weights. */
export function pickKind(random: () => number = Math.random): RequestKind {
  const entries = Object.entries(MIX) as [RequestKind, number][];
  const total = entries.reduce((n, [, w]) => n + w, 0);
  let r = random() * total;
  for (const [kind, w] of entries) {
    r -= w;
    if (r < 0) return kind;
  }
  return entries[entries.length - 1]![0];
}

export function buildRequest(kind: RequestKind, options: WorkloadOptions, random: () => number = Math.random): LoadRequest {
  const question = kind === 'chat-long' ? LONG_CASE : pick(SHORT_QUESTIONS, random);
  const user = { role: 'user', content: question };
  const turns = options.prompts && options.prompts.length > 0 ? pick(options.prompts, random) : null;
  const streamOf = (own: boolean) => options.stream || own;
  const chat = (stream: boolean, extra: object = {}) => ({
    kind,
    method: 'POST' as const,
    path: '/v1/chat',
    body: JSON.stringify({ messages: turns ?? [user], max_tokens: options.maxTokens, stream, ...extra }),
    invalid: false,
    stream,
  });
  // A streamed OpenAI answer says how many tokens it had only when asked (stream_options).
  const completions = (stream: boolean) => ({
    kind,
    method: 'POST' as const,
    path: '/v1/chat/completions',
    body: JSON.stringify({
      model: options.model,
      messages: turns ?? [{ role: 'system', content: '你是一名中国法律助手。' }, user],
      max_tokens: options.maxTokens,
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    }),
    invalid: false,
    stream,
  });
  const invalid = (path: string, body: string) => ({ kind, method: 'POST' as const, path, body, invalid: true, stream: false });
  switch (kind) {
    case 'chat-short':
    case 'chat-long':
      return chat(streamOf(false));
    case 'chat-stream':
      return chat(true);
    case 'completions':
      return completions(streamOf(false));
    case 'completions-stream':
      return completions(true);
    case 'invalid-json':
      return invalid('/v1/chat', '{"messages": [{"role": "user", "content": "借钱不还');
    case 'invalid-empty-messages':
      return invalid('/v1/chat/completions', JSON.stringify({ model: options.model, messages: [] }));
    case 'invalid-last-not-user':
      return invalid('/v1/chat', JSON.stringify({ messages: [user, { role: 'assistant', content: '请提供更多细节。' }] }));
    case 'invalid-max-tokens':
      return invalid('/v1/chat', JSON.stringify({ messages: [user], max_tokens: -5 }));
  }
}

/** Where every request sent ends: exactly one of these, or `lost` when the run ended first. */
export const OUTCOMES = ['answered', 'fallback', 'rate_limited', 'refused', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export interface Classified {
  outcome: Outcome;
  /** The answer contradicts the request: a 2xx to an invalid request, a 4xx other than 429 to a valid one. */
  wrong: boolean;
}

/**
 * What one response means. `status` 0 is a transport error (refused, reset or timed-out
 * connection). `streamBroken`: a 200 stream that ended without its `[DONE]` (an error event
 * after the first token, or the connection cut): its status was already on the wire, so it
 * counts as `failed` with status 200, never as an answer.
 */
export function classify(request: Pick<LoadRequest, 'invalid'>, status: number, degraded: boolean, streamBroken = false): Classified {
  if (status === 0 || status >= 500) return { outcome: 'failed', wrong: false };
  if (status === 429) return { outcome: 'rate_limited', wrong: false };
  if (status >= 400) return { outcome: 'refused', wrong: !request.invalid };
  if (streamBroken) return { outcome: 'failed', wrong: request.invalid };
  return { outcome: degraded ? 'fallback' : 'answered', wrong: request.invalid || status >= 300 };
}

/** The kinds in a fixed order, so that a request's kind travels as a small index. */
export const KINDS = Object.keys(MIX) as RequestKind[];
export const KIND_INDEX = Object.fromEntries(KINDS.map((k, i) => [k, i])) as Record<RequestKind, number>;
