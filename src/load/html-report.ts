/**
 * `--report FILE.html`: one self-contained page (inline SVG and CSS, no script, no outside
 * request) with the run's totals, latency and throughput second by second, and the chaos
 * events drawn as marked lines across both charts. Drawn here rather than with a chart library
 * so that the page needs nothing at all to open, offline or in a CI artifact viewer.
 */
import type { LoadSummary, TimelinePoint } from './report.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

interface Series {
  name: string;
  color: string;
  values: (number | null)[];
}

const W = 960;
const H = 260;
const PAD = { l: 56, r: 16, t: 16, b: 34 };

function niceMax(v: number): number {
  if (v <= 0) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function chart(title: string, unit: string, points: TimelinePoint[], series: Series[], chaos: LoadSummary['chaos']): string {
  const n = Math.max(points.length - 1, 1);
  const max = niceMax(Math.max(0, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const x = (t: number) => PAD.l + (t / n) * (W - PAD.l - PAD.r);
  const y = (v: number) => H - PAD.b - (v / max) * (H - PAD.t - PAD.b);
  const parts: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const v = (max * k) / 4;
    parts.push(`<line x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v)}" y2="${y(v)}" class="grid"/><text x="${PAD.l - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toPrecision(3)}</text>`);
  }
  const step = Math.max(1, Math.ceil(n / 12));
  for (let t = 0; t <= n; t += step) parts.push(`<text x="${x(t)}" y="${H - PAD.b + 16}" text-anchor="middle">${t}</text>`);
  parts.push(`<text x="${W - PAD.r}" y="${H - 4}" text-anchor="end">seconds from the start</text><text x="${PAD.l}" y="${PAD.t - 4}">${esc(unit)}</text>`);
  for (const s of series) {
    let d = '';
    s.values.forEach((v, t) => {
      if (v === null) return;
      d += `${d === '' || s.values[t - 1] === null ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
    });
    if (d) parts.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="1.8"><title>${esc(s.name)}</title></path>`);
  }
  for (const c of chaos) {
    const cx = x(c.applied_ms / 1000);
    parts.push(
      `<line x1="${cx}" x2="${cx}" y1="${PAD.t}" y2="${H - PAD.b}" class="chaos"/><text x="${cx + 3}" y="${PAD.t + 10}" class="chaos-label">${esc(c.action)}</text>`,
    );
    if (c.recovered_s !== null) {
      const rx = x(c.applied_ms / 1000 + c.recovered_s);
      parts.push(`<rect x="${cx}" y="${PAD.t}" width="${Math.max(1, rx - cx)}" height="${H - PAD.t - PAD.b}" class="recovery"><title>${esc(`${c.action}: recovered after ${c.recovered_s} s`)}</title></rect>`);
    }
  }
  const legend = series.map((s) => `<span><i style="background:${s.color}"></i>${esc(s.name)}</span>`).join('');
  return `<figure><figcaption>${esc(title)}</figcaption><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(title)}">${parts.join('')}</svg><div class="legend">${legend}</div></figure>`;
}

function rows(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('');
}

export function renderHtmlReport(s: LoadSummary): string {
  const p = s.timeline;
  const q = (v: { p50: number | null; p90: number | null; p99: number | null }) => `${v.p50 ?? '-'} / ${v.p90 ?? '-'} / ${v.p99 ?? '-'} ms`;
  const r = s.requests;
  const totals: [string, string][] = [
    ['target', s.target],
    ['arrivals', s.arrivals],
    ['started', s.started_at],
    ['duration', `${s.duration_s} s`],
    ['sent', String(r.sent)],
    ['answered by a worker / by the fallback', `${r.answered} / ${r.fallback}`],
    ['rate-limited / refused / failed', `${r.rate_limited} / ${r.refused} / ${r.failed}`],
    ['lost', r.lost === 0 ? '0' : `${r.lost} (requests without an outcome at the end of the run)`],
    ['broken streams (counted as failed)', String(s.broken_streams)],
    ['wrong answers', String(s.wrong)],
    ['status codes', Object.entries(s.status).map(([k, v]) => `${k}: ${v}`).join(', ')],
    ['requests/s', String(s.requests_per_s)],
    ['output tokens/s', String(s.output_tokens_per_s)],
    [`goodput (${Object.entries(s.slo_ms).map(([k, v]) => `${k} ≤ ${v} ms`).join(', ')})`, `${s.goodput_rps} requests/s`],
    ['TTFT p50 / p90 / p99', q(s.latency_ms.ttft)],
    ['ITL p50 / p90 / p99', q(s.latency_ms.itl)],
    ['TPOT p50 / p90 / p99', q(s.latency_ms.tpot)],
    ['e2e p50 / p90 / p99', q(s.latency_ms.e2e)],
    ['schedule lag p50 / p99 / max', `${s.schedule_lag_ms.p50 ?? '-'} / ${s.schedule_lag_ms.p99 ?? '-'} / ${s.schedule_lag_ms.max ?? '-'} ms`],
  ];
  const chaosRows = s.chaos
    .map((c) => `<tr><td>${c.at_s}</td><td>${esc(c.action)}</td><td>${esc(c.done)}</td><td>${c.recovered_s === null ? 'not recovered' : `${c.recovered_s} s`}</td><td>${esc(c.recovered_when)}</td></tr>`)
    .join('');
  const stageRows =
    s.stages.length > 1
      ? `<h2>Stages</h2><table><tr><th>rate</th><th>sent</th><th>req/s</th><th>tokens/s</th><th>goodput</th><th>TTFT p50 / p99</th><th>e2e p50 / p99</th><th>lag p99</th><th>failed</th><th>lost</th></tr>${s.stages
          .map(
            (st) =>
              `<tr><td>${st.rate ?? `${st.connections} conn`}</td><td>${st.requests.sent}</td><td>${st.requests_per_s}</td><td>${st.output_tokens_per_s}</td><td>${st.goodput_rps}</td><td>${st.ttft_ms.p50 ?? '-'} / ${st.ttft_ms.p99 ?? '-'}</td><td>${st.e2e_ms.p50 ?? '-'} / ${st.e2e_ms.p99 ?? '-'}</td><td>${st.schedule_lag_ms.p99 ?? '-'}</td><td>${st.requests.failed}</td><td>${st.requests.lost}</td></tr>`,
          )
          .join('')}</table>`
      : '';
  const latency = chart(
    'Latency of worker answers, by the second they ended',
    'ms',
    p,
    [
      { name: 'e2e p50', color: '#1f77b4', values: p.map((x) => x.e2e_p50_ms) },
      { name: 'e2e p99', color: '#d62728', values: p.map((x) => x.e2e_p99_ms) },
      { name: 'TTFT p50 (streamed)', color: '#2ca02c', values: p.map((x) => x.ttft_p50_ms) },
    ],
    s.chaos,
  );
  const throughput = chart(
    'Outcomes per second',
    'requests/s',
    p,
    [
      { name: 'sent', color: '#7f7f7f', values: p.map((x) => x.sent) },
      { name: 'answered by a worker', color: '#1f77b4', values: p.map((x) => x.answered) },
      { name: 'fallback', color: '#ff7f0e', values: p.map((x) => x.fallback) },
      { name: 'failed', color: '#d62728', values: p.map((x) => x.failed) },
      { name: 'rate-limited', color: '#9467bd', values: p.map((x) => x.rate_limited) },
    ],
    s.chaos,
  );
  const tokens = chart('Output tokens per second', 'tokens/s', p, [{ name: 'output tokens', color: '#17becf', values: p.map((x) => x.output_tokens) }], s.chaos);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Load test: ${esc(s.target)}</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
table{border-collapse:collapse;margin:8px 0 20px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f5f5f5;font-weight:600}
figure{margin:12px 0 24px}figcaption{font-weight:600;margin-bottom:4px}
svg text{font-size:11px;fill:#555}.grid{stroke:#eee}.chaos{stroke:#000;stroke-dasharray:4 3}.chaos-label{fill:#000;font-size:11px}.recovery{fill:#d62728;opacity:.08}
.legend span{margin-right:16px}.legend i{display:inline-block;width:12px;height:3px;margin-right:4px;vertical-align:middle}
.bad{color:#b00;font-weight:600}
</style></head><body>
<h1>Load test of ${esc(s.target)}</h1>
${r.lost > 0 ? `<p class="bad">${r.lost} requests had no outcome when the run ended (lost).</p>` : ''}
<table>${rows(totals)}</table>
${stageRows}
${s.chaos.length > 0 ? `<h2>Chaos events</h2><table><tr><th>at s</th><th>action</th><th>done</th><th>recovered</th><th>recovered means</th></tr>${chaosRows}</table>` : ''}
${latency}
${throughput}
${tokens}
</body></html>
`;
}
