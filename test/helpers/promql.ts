/**
 * What a PromQL expression names, read from the syntax tree of Prometheus' own grammar
 * (@prometheus-io/lezer-promql, the parser of Prometheus' web UI): its series selectors with
 * their label matchers, the labels it groups or matches on, and the kind of value it gives (a
 * duration, a rate, a ratio, a count), which a panel's unit must fit.
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { SyntaxNode } from '@lezer/common';

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  /** the selector as written, without a range: a query for its series */
  text: string;
  metric: string | null;
  matchers: Matcher[];
}

export interface Grouping {
  /** `by`, `without`, `on` or `ignoring` */
  clause: string;
  labels: string[];
  /** the selectors whose series the labels must be on */
  selectors: Selector[];
}

export type ValueKind = 'time' | 'per-second' | 'ratio' | 'count' | 'bytes' | 'unknown';

export interface Analysis {
  selectors: Selector[];
  groupings: Grouping[];
  kind: ValueKind;
}

const COMPARISONS = new Set(['Eql', 'Neq', 'Gtr', 'Lss', 'Gte', 'Lte']);
const SET_OPS = new Set(['And', 'Or', 'Unless']);
const ARITHMETIC = new Set(['Add', 'Sub', 'Mul', 'Div', 'Mod', 'Pow', 'Atan2']);
/** Functions whose value is of the kind of their (first vector) argument. */
const KIND_PRESERVING = new Set([
  'Abs', 'Ceil', 'Floor', 'Round', 'Clamp', 'ClampMax', 'ClampMin', 'Sort', 'SortDesc', 'LabelReplace', 'LabelJoin',
  'AvgOverTime', 'MaxOverTime', 'MinOverTime', 'LastOverTime', 'QuantileOverTime', 'Deriv', 'Delta', 'Idelta', 'Increase',
]);

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

function unquote(s: string): string {
  return JSON.parse(s.startsWith("'") ? `"${s.slice(1, -1).replaceAll('"', '\\"')}"` : s.startsWith('`') ? JSON.stringify(s.slice(1, -1)) : s) as string;
}

/** Parses `expr`; throws with the position of the first syntax error. */
export function parsePromql(expr: string): SyntaxNode {
  const tree = parser.parse(expr);
  let error: number | null = null;
  tree.iterate({
    enter(n) {
      if (n.type.isError && error === null) error = n.from;
    },
  });
  if (error !== null) throw new Error(`PromQL syntax error at ${error}: ${expr.slice(0, error)}⟨here⟩${expr.slice(error)}`);
  return tree.topNode;
}

function selectorOf(node: SyntaxNode, expr: string): Selector {
  const metricNode = children(node).find((c) => c.name === 'Identifier');
  const matchers: Matcher[] = [];
  const list = children(node).find((c) => c.name === 'LabelMatchers');
  for (const m of list ? children(list) : []) {
    const parts = children(m);
    const name = parts.find((p) => p.name === 'LabelName' || p.name === 'QuotedLabelName');
    const op = parts.find((p) => p.name === 'MatchOp');
    const value = parts.filter((p) => p.name === 'StringLiteral').at(-1);
    if (!op || !value) {
      // `{"name"}`: a metric name written as a quoted matcher
      continue;
    }
    const label = name ? (name.name === 'QuotedLabelName' ? unquote(expr.slice(name.from, name.to)) : expr.slice(name.from, name.to)) : '__name__';
    matchers.push({ label, op: expr.slice(op.from, op.to) as Matcher['op'], value: unquote(expr.slice(value.from, value.to)) });
  }
  const metric = metricNode ? expr.slice(metricNode.from, metricNode.to) : (matchers.find((m) => m.label === '__name__' && m.op === '=')?.value ?? null);
  return { text: expr.slice(node.from, node.to), metric, matchers };
}

function selectorsUnder(node: SyntaxNode, expr: string): Selector[] {
  const out: Selector[] = [];
  const walk = (n: SyntaxNode) => {
    if (n.name === 'VectorSelector') out.push(selectorOf(n, expr));
    else for (const c of children(n)) walk(c);
  };
  walk(node);
  return out;
}

function kindOfMetric(name: string | null): ValueKind {
  if (!name) return 'unknown';
  if (/_seconds(_sum)?$/.test(name)) return 'time';
  if (/_bytes(_sum)?$/.test(name)) return 'bytes';
  if (/_ratio$/.test(name)) return 'ratio';
  if (/_per_second$/.test(name)) return 'per-second';
  return 'count';
}

function kindOf(node: SyntaxNode, expr: string): ValueKind {
  const kids = children(node);
  switch (node.name) {
    case 'PromQL':
    case 'ParenExpr':
    case 'OffsetExpr':
    case 'StepInvariantExpr':
    case 'SubqueryExpr':
      return kids[0] ? kindOf(kids.find((k) => k.name !== '(' && k.name !== ')') ?? kids[0], expr) : 'unknown';
    case 'VectorSelector':
      return kindOfMetric(selectorOf(node, expr).metric);
    case 'MatrixSelector':
      return kindOf(kids[0]!, expr);
    case 'AggregateExpr': {
      const op = kids.find((k) => k.name === 'AggregateOp')?.firstChild?.name;
      if (op === 'Count' || op === 'CountValues') return 'count';
      const body = kids.find((k) => k.name === 'FunctionCallBody');
      const args = body ? children(body) : [];
      return args.length ? kindOf(args.at(-1)!, expr) : 'unknown';
    }
    case 'FunctionCall': {
      const fn = kids.find((k) => k.name === 'FunctionIdentifier')?.firstChild?.name ?? '';
      const body = kids.find((k) => k.name === 'FunctionCallBody');
      const args = body ? children(body) : [];
      if (fn === 'Rate' || fn === 'Irate') {
        const inner = args[0] ? kindOf(args[0], expr) : 'unknown';
        // A rate of seconds is seconds per second: a share of time.
        return inner === 'time' ? 'ratio' : inner === 'bytes' ? 'unknown' : 'per-second';
      }
      if (fn === 'HistogramQuantile') {
        const series = args[1] ? selectorsUnder(args[1], expr) : [];
        return kindOfMetric(series[0]?.metric?.replace(/_bucket$/, '') ?? null);
      }
      if (fn === 'Absent' || fn === 'AbsentOverTime' || fn === 'CountOverTime' || fn === 'Changes' || fn === 'Resets') return 'count';
      if (fn === 'Time' || fn === 'Timestamp') return 'time';
      if (KIND_PRESERVING.has(fn)) {
        const vectorArg = args.find((a) => a.name !== 'NumberDurationLiteral' && a.name !== 'StringLiteral');
        return vectorArg ? kindOf(vectorArg, expr) : 'unknown';
      }
      return 'unknown';
    }
    case 'BinaryExpr': {
      const op = kids.find((k) => COMPARISONS.has(k.name) || SET_OPS.has(k.name) || ARITHMETIC.has(k.name));
      const operands = kids.filter((k) => k !== op && !['BoolModifier', 'MatchingModifierClause', 'Bool'].includes(k.name));
      const [left, right] = [operands[0], operands.at(-1)];
      if (!op || !left || !right) return 'unknown';
      const lk = kindOf(left, expr);
      if (COMPARISONS.has(op.name)) return kids.some((k) => k.name === 'BoolModifier' || k.name === 'Bool') ? 'count' : lk;
      if (SET_OPS.has(op.name)) return lk;
      const rIsNumber = right.name === 'NumberDurationLiteral' || right.name === 'NumberLiteral';
      if (rIsNumber) return lk;
      const rk = kindOf(right, expr);
      if (op.name === 'Div') return lk === rk && lk !== 'unknown' ? 'ratio' : 'unknown';
      if (op.name === 'Add' || op.name === 'Sub') return lk === rk ? lk : 'unknown';
      return 'unknown';
    }
    default:
      return 'unknown';
  }
}

function groupingsOf(root: SyntaxNode, expr: string): Grouping[] {
  const out: Grouping[] = [];
  const labelsOf = (clause: SyntaxNode) => {
    const g = children(clause).find((c) => c.name === 'GroupingLabels');
    return (g ? children(g) : []).filter((c) => c.name === 'LabelName').map((c) => expr.slice(c.from, c.to));
  };
  const walk = (n: SyntaxNode) => {
    const kids = children(n);
    if (n.name === 'AggregateExpr') {
      const mod = kids.find((k) => k.name === 'AggregateModifier');
      const body = kids.find((k) => k.name === 'FunctionCallBody');
      if (mod && body) out.push({ clause: mod.firstChild!.name.toLowerCase(), labels: labelsOf(mod), selectors: selectorsUnder(body, expr) });
    }
    if (n.name === 'BinaryExpr') {
      const mod = kids.find((k) => k.name === 'MatchingModifierClause');
      if (mod) {
        const sides = kids.filter((k) => !['MatchingModifierClause', 'BoolModifier', 'Bool'].includes(k.name) && !COMPARISONS.has(k.name) && !SET_OPS.has(k.name) && !ARITHMETIC.has(k.name));
        // `on` labels must be on both sides; each side is one grouping.
        for (const side of sides) out.push({ clause: mod.firstChild!.name.toLowerCase(), labels: labelsOf(mod), selectors: selectorsUnder(side, expr) });
      }
    }
    for (const c of kids) walk(c);
  };
  walk(root);
  return out;
}

export function analyse(expr: string): Analysis {
  const root = parsePromql(expr);
  return { selectors: selectorsUnder(root, expr), groupings: groupingsOf(root, expr), kind: kindOf(root, expr) };
}

/** Grafana's unit ids for each kind of value; `suffix:`/`prefix:` custom units are matched by their text. */
const UNITS: Record<Exclude<ValueKind, 'unknown'>, readonly string[]> = {
  time: ['s', 'ms', 'µs', 'ns', 'm', 'h', 'd', 'dtdurations', 'dtdurationms'],
  'per-second': ['reqps', 'ops', 'rps', 'wps', 'iops', 'cps'],
  ratio: ['percentunit', 'percent', 'short', 'none'],
  count: ['short', 'none', 'locale'],
  bytes: ['bytes', 'decbytes', 'bits'],
};

/** Every unit id above: a unit outside it is a typo or one these checks do not know yet. */
export const KNOWN_UNITS = new Set(Object.values(UNITS).flat());

/** Whether a panel's unit fits a query's kind of value; null when it does, else why not. */
export function unitMismatch(unit: string, kind: ValueKind): string | null {
  const custom = /^(suffix|prefix|count):/.exec(unit);
  if (!custom && !KNOWN_UNITS.has(unit)) return `unknown unit "${unit}"`;
  if (kind === 'unknown') return null;
  if (custom) {
    const perSecond = /\/s(ec)?\s*$/.test(unit);
    if (kind === 'per-second' && !perSecond) return `a rate shown as "${unit}" (no /s)`;
    if (kind !== 'per-second' && perSecond) return `a ${kind} shown as a rate ("${unit}")`;
    if (kind === 'time') return `a duration shown as "${unit}"`;
    return null;
  }
  return UNITS[kind].includes(unit) ? null : `a ${kind} value shown as "${unit}" (fits: ${UNITS[kind].join(', ')})`;
}
