/**
 * The evaluation's outputs: `eval-report.json` (everything, per sample), `eval-report.md` (the
 * table of means, "微调前 / 微调后" side by side, and a few answers), and `eval-chart.svg` (a
 * grouped bar per metric); for `eval --score`, the same three files with the means and each
 * answer's scores in the file's order. The chart is written by hand: it is four groups of at most two bars
 * on a fixed 0–100 scale, which a template does in a few lines; a charting library (vega and its
 * d3 tree) would add megabytes for the same picture.
 */
import { basename, join } from 'node:path';
import { writeFileAtomic } from './atomic-file.js';
import type { EvalModel, EvalResult } from './evaluate.js';
import { METRICS, type Scores } from './metrics.js';
import type { ScoreResult } from './score-file.js';

export const REPORT_FILES = { json: 'eval-report.json', markdown: 'eval-report.md', chart: 'eval-chart.svg' } as const;

const METRIC_NAMES: Record<(typeof METRICS)[number], string> = {
  'bleu-4': 'BLEU-4',
  'rouge-1': 'ROUGE-1',
  'rouge-2': 'ROUGE-2',
  'rouge-l': 'ROUGE-L',
};

const fmt = (x: number) => x.toFixed(2);

/** How the scores were made, under each report's table. */
const SCORES_NOTE = [
  'Scores are means over answers, × 100, computed as ChatGLM3\'s finetune_demo computes them: words cut by jieba',
  '(default mode, HMM on), BLEU-4 by NLTK\'s `sentence_bleu` with smoothing method 3, ROUGE F-scores by the `rouge`',
  'package. finetune_demo prints BLEU-4 in 0..1 (here × 100).',
].join('\n');

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function cell(s: string, max = 120): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return (one.length > max ? `${one.slice(0, max)}…` : one).replace(/\|/g, '\\|');
}

export function renderMarkdown(result: EvalResult): string {
  const { models } = result;
  const head = ['指标 metric', ...models.map((m) => `${m.label} (\`${m.model}\`)`)];
  const compare = models.length === 2;
  if (compare) head.push('变化 Δ');
  const rows = METRICS.map((k) => {
    const values = models.map((m) => fmt(m.scores[k]));
    if (compare) {
      const d = models[1]!.scores[k] - models[0]!.scores[k];
      values.push(`${d >= 0 ? '+' : ''}${fmt(d)}`);
    }
    return `| ${METRIC_NAMES[k]} | ${values.join(' | ')} |`;
  });
  const lines = [
    '# 微调效果评估 (evaluation)',
    '',
    `- service: ${result.url}`,
    `- data: ${result.data} (${result.samples.length} conversations)`,
    `- generation: greedy (temperature 0), at most ${result.maxTokens} tokens`,
    `- at: ${result.createdAt}`,
    '',
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows,
    `| answers scored | ${models.map((m) => `${m.scored}${m.failed ? ` (${m.failed} failed)` : ''}`).join(' | ')}${compare ? ' | |' : ' |'}`,
    `| from the fallback | ${models.map((m) => String(m.degraded)).join(' | ')}${compare ? ' | |' : ' |'}`,
    '',
    ...(models.some((m) => m.degraded > 0)
      ? ['**Some answers came from the gateway\'s fallback (knowledge base or canned text), not the model; their scores measure the fallback.**', '']
      : []),
    `![scores](${REPORT_FILES.chart})`,
    '',
    SCORES_NOTE,
    '',
    '## Examples',
    '',
  ];
  for (const s of result.samples.slice(0, 5)) {
    lines.push(`### line ${s.line}`, '', `- question: ${cell(s.prompt)}`, `- reference: ${cell(s.reference)}`);
    models.forEach((m, i) => {
      const a = s.answers[i];
      lines.push(`- ${m.label}: ${a?.answer !== null && a?.answer !== undefined ? cell(a.answer) : `(failed: ${cell(a?.error ?? 'no answer')})`}`);
    });
    lines.push('');
  }
  return lines.join('\n');
}

const COLORS = ['#9aa5b1', '#2f6fde'];

/** One group of bars per metric, one bar per model; `caption` says what was scored. */
export function renderChart(models: ReadonlyArray<EvalModel & { scores: Scores }>, caption: string): string {
  const width = 640;
  const height = 360;
  const left = 48;
  const top = 56;
  const plotH = 240;
  const groupW = (width - left - 24) / METRICS.length;
  const barW = Math.min(56, (groupW - 24) / models.length);
  const y = (v: number) => top + plotH - (Math.max(0, Math.min(100, v)) / 100) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="'Noto Sans CJK SC','Microsoft YaHei',sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(models.map((m) => m.label).join(' / '))}</text>`,
  ];
  models.forEach((m, i) => {
    const lx = left + i * 220;
    out.push(`<rect x="${lx}" y="32" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/>`);
    out.push(`<text x="${lx + 18}" y="42">${escapeXml(`${m.label} ${m.model}`)}</text>`);
  });
  for (let t = 0; t <= 100; t += 25) {
    out.push(`<line x1="${left}" x2="${width - 16}" y1="${y(t)}" y2="${y(t)}" stroke="#e3e7eb"/>`);
    out.push(`<text x="${left - 6}" y="${y(t) + 4}" text-anchor="end" fill="#52606d">${t}</text>`);
  }
  METRICS.forEach((k, g) => {
    const gx = left + g * groupW + (groupW - barW * models.length) / 2;
    models.forEach((m, i) => {
      const v = m.scores[k];
      const x = gx + i * barW;
      out.push(`<rect x="${x.toFixed(1)}" y="${y(v).toFixed(1)}" width="${(barW - 4).toFixed(1)}" height="${(top + plotH - y(v)).toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${escapeXml(`${m.label} ${METRIC_NAMES[k]} ${fmt(v)}`)}</title></rect>`);
      out.push(`<text x="${(x + (barW - 4) / 2).toFixed(1)}" y="${(y(v) - 4).toFixed(1)}" text-anchor="middle" font-size="11">${fmt(v)}</text>`);
    });
    out.push(`<text x="${(left + g * groupW + groupW / 2).toFixed(1)}" y="${top + plotH + 20}" text-anchor="middle">${METRIC_NAMES[k]}</text>`);
  });
  out.push(`<line x1="${left}" x2="${width - 16}" y1="${top + plotH}" y2="${top + plotH}" stroke="#52606d"/>`);
  out.push(`<text x="${left}" y="${height - 12}" fill="#52606d" font-size="11">${escapeXml(`${caption} · scores × 100 · jieba words`)}</text>`);
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** Writes a report's three files atomically (JSON, chart, then the Markdown that shows it); returns their paths. */
async function writeFiles(outDir: string, json: object, chart: string, markdown: string): Promise<Record<keyof typeof REPORT_FILES, string>> {
  const paths = {
    json: join(outDir, REPORT_FILES.json),
    markdown: join(outDir, REPORT_FILES.markdown),
    chart: join(outDir, REPORT_FILES.chart),
  };
  await writeFileAtomic(paths.json, JSON.stringify(json, null, 2) + '\n');
  await writeFileAtomic(paths.chart, chart);
  await writeFileAtomic(paths.markdown, markdown + '\n');
  return paths;
}

/** Writes the three files of an evaluation; returns their paths. */
export function writeReport(result: EvalResult, outDir: string): Promise<Record<keyof typeof REPORT_FILES, string>> {
  return writeFiles(outDir, result, renderChart(result.models, `${result.samples.length} conversations`), renderMarkdown(result));
}

/** The report of `eval --score`: the means, then each answer's scores in the file's order. */
export function renderScoreMarkdown(result: ScoreResult): string {
  const file = basename(result.data);
  return [
    '# 评分 (scores of given answers)',
    '',
    `- data: ${result.data} (${result.cases.length} answers)`,
    `- at: ${result.createdAt}`,
    '',
    `| 指标 metric | \`${file}\` |`,
    '| --- | --- |',
    ...METRICS.map((k) => `| ${METRIC_NAMES[k]} | ${fmt(result.scores[k])} |`),
    `| answers scored | ${result.cases.length} |`,
    '',
    `![scores](${REPORT_FILES.chart})`,
    '',
    SCORES_NOTE,
    'Each answer\'s scores are in eval-report.json (`cases`, in the order of the file).',
  ].join('\n');
}

/** Writes the three files of `eval --score`; returns their paths. */
export function writeScoreReport(result: ScoreResult, outDir: string): Promise<Record<keyof typeof REPORT_FILES, string>> {
  return writeFiles(outDir, result, renderChart([{ label: '评分', model: basename(result.data), scores: result.scores }], `${result.cases.length} answers`), renderScoreMarkdown(result));
}
