/**
 * What the page reads of the admin API's answers. Written here rather than imported from the
 * routes' zod schemas: the page is compiled for the browser on its own, without the server's
 * modules, and reads only these fields (the browser tests run it against the real API).
 */

export interface WorkerStatus {
  url: string;
  healthy: boolean;
  breaker: string;
  in_flight: number;
  queue_length: number | null;
  running_sequences: number | null;
  kv_tokens_in_use: number | null;
  kv_tokens_capacity: number | null;
  model: string | null;
  adapters: string[];
  execution_provider: string | null;
  last_error: string | null;
}

export type Counts = Record<string, number>;

export interface Status {
  generated_at: string;
  draining: boolean;
  in_progress: number;
  breaker: string;
  workers: WorkerStatus[];
  degrade: { mode: string; source: string; updated_at: string; updated_by: string | null; store: string };
  limiter: {
    enabled: boolean;
    redis_connected: boolean;
    mode: string | null;
    outage_policy: string;
    tiers: Array<{ name: string; requests: { per_minute: number; burst: number }; tokens: { per_minute: number; burst: number } }>;
    limited_last_minute: Counts;
  };
  last_minute: { by_worker: Counts; fallback_by_reason: Counts; errors_by_code: Counts };
  knowledge_base: { entries: number };
}

export interface DegradeAnswer {
  mode: string;
  source: string;
  store: string;
  warning?: string;
}

export interface KnowledgeHit {
  id: string;
  question: string;
  /** the question's longer text, when the entry has one */
  detail?: string;
  answer: string;
  /** absent when the list is the latest entries rather than a search */
  score?: number;
}
