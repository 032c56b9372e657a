/** The status panels: workers, degrade switch, limiter, the last minute, the knowledge base's size. */
import { byId, el, fillCounts, fillPairs } from './dom.js';
import type { Status, WorkerStatus } from './types.js';

function count(n: number | null): string {
  return n === null ? '–' : String(n);
}

function kvCell(w: WorkerStatus): HTMLTableCellElement {
  const td = el('td');
  if (w.kv_tokens_in_use === null || w.kv_tokens_capacity === null) {
    td.textContent = '–';
    return td;
  }
  const meter = el('meter');
  meter.min = 0;
  meter.max = Math.max(1, w.kv_tokens_capacity);
  meter.value = w.kv_tokens_in_use;
  meter.setAttribute('aria-label', `KV cache of ${w.url}`);
  td.append(meter, el('span', ` ${w.kv_tokens_in_use} / ${w.kv_tokens_capacity}`));
  return td;
}

function workerRow(w: WorkerStatus): HTMLTableRowElement {
  const tr = el('tr');
  tr.dataset.worker = w.url;
  const health = el('td', w.healthy ? 'healthy' : 'unhealthy', w.healthy ? 'good' : 'bad');
  if (!w.healthy && w.last_error) health.append(el('small', w.last_error));
  tr.append(
    el('th', w.url),
    health,
    el('td', w.breaker, w.breaker === 'closed' ? 'good' : 'bad'),
    el('td', String(w.in_flight)),
    el('td', count(w.queue_length)),
    el('td', count(w.running_sequences)),
    kvCell(w),
    el('td', w.adapters.join(', ') || '–'),
    el('td', w.execution_provider ?? '–'),
    el('td', w.model ?? '–'),
  );
  return tr;
}

function when(iso: string): string {
  const t = Date.parse(iso);
  return Number.isNaN(t) || t === 0 ? 'at start' : new Date(t).toLocaleString();
}

export function renderStatus(s: Status): void {
  const rows = s.workers.map(workerRow);
  byId('workers').replaceChildren(...(rows.length > 0 ? rows : [emptyRow('No workers configured.')]));
  const healthy = s.workers.filter((w) => w.healthy).length;
  byId('workers-summary').textContent = `${healthy} of ${s.workers.length} healthy · breaker ${s.breaker} · ${s.in_progress} answers in progress${s.draining ? ' · draining' : ''}`;

  const d = s.degrade;
  fillPairs(byId('degrade-state'), [
    ['Mode', d.mode],
    ['Source', d.source],
    ['Set by', d.updated_by ?? 'not said'],
    ['Set', when(d.updated_at)],
    ['Shared', d.store === 'redis' ? 'every replica (Redis)' : 'this replica only (Redis unreachable)'],
  ]);
  byId('degrade-section').dataset.mode = d.mode;

  const l = s.limiter;
  fillPairs(byId('limiter-state'), [
    ['Limits', l.enabled ? 'on' : 'off'],
    ['Redis', l.redis_connected ? 'connected' : 'not connected'],
    ['Deciding', l.mode === null ? '–' : l.mode === 'redis' ? 'in Redis' : `outage policy ${l.mode}`],
    ['Outage policy', l.outage_policy],
  ]);
  byId('tiers').replaceChildren(
    ...(l.tiers.length > 0
      ? l.tiers.map((t) => {
          const tr = el('tr');
          tr.append(
            el('th', t.name),
            el('td', `${t.requests.per_minute}/min, burst ${t.requests.burst}`),
            el('td', `${t.tokens.per_minute}/min, burst ${t.tokens.burst}`),
            el('td', String(l.limited_last_minute[t.name] ?? 0)),
          );
          return tr;
        })
      : [emptyRow('No tiers (limits off).')]),
  );
  fillCounts(byId('limited'), l.limited_last_minute, 'No 429s.');

  fillCounts(byId('by-worker'), s.last_minute.by_worker, 'No worker answers.');
  fillCounts(byId('by-reason'), s.last_minute.fallback_by_reason, 'No fallback answers.');
  fillCounts(byId('by-code'), s.last_minute.errors_by_code, 'No errors.');
  byId('kb-count').textContent = String(s.knowledge_base.entries);
  byId('updated').textContent = `Updated ${new Date(s.generated_at).toLocaleTimeString()}`;
}

function emptyRow(text: string): HTMLTableRowElement {
  const tr = el('tr');
  const td = el('td', text, 'empty');
  td.colSpan = 10;
  tr.append(td);
  return tr;
}
