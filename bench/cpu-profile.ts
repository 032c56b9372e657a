/**
 * Reads the `.cpuprofile` files that `node --cpu-prof` wrote into a folder and sums self time by
 * function and by where the code lives (a package in node_modules, a file of ours, or node's own),
 * for the benchmarks' `--profile` option.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readJson } from '../test/helpers/json.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
}

/** Where a script lives, short: `fastify`, `src/gateway/answer/pipeline.js`, `node:internal/...`. */
function place(url: string): string {
  if (url === '') return '(native)';
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  const dist = url.lastIndexOf('/dist/');
  if (dist >= 0) return url.slice(dist + '/dist/'.length);
  return url.replace(/^node:/, 'node:');
}

/**
 * Adds each node's samples to every distinct function of ours (`src/`) on its stack: the time
 * spent in or under that function, counted once however deep it recurses.
 */
function inclusive(profile: CpuProfile, key: (node: ProfileNode) => string | null, into: Map<string, number>): void {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const onPath = new Map<string, number>();
  const visit = (node: ProfileNode) => {
    const k = key(node);
    if (k) onPath.set(k, (onPath.get(k) ?? 0) + 1);
    const hits = node.hitCount ?? 0;
    if (hits > 0) for (const name of onPath.keys()) into.set(name, (into.get(name) ?? 0) + hits);
    for (const c of node.children ?? []) visit(byId.get(c)!);
    if (k) {
      const left = onPath.get(k)! - 1;
      if (left === 0) onPath.delete(k);
      else onPath.set(k, left);
    }
  };
  visit(profile.nodes[0]!);
}

/** Lines for the `top` functions and places by self time, as percentages of all samples. */
export function summarizeCpuProfile(dir: string, top: number): string[] {
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  const ours = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = readJson<CpuProfile>(join(dir, file));
    inclusive(
      profile,
      (n) => (place(n.callFrame.url).startsWith('src/') ? `${n.callFrame.functionName || '(anonymous)'}  ${place(n.callFrame.url)}:${n.callFrame.lineNumber + 1}` : null),
      ours,
    );
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)' || functionName === '(program)') continue;
      total += hits;
      const where = place(url);
      const fn = `${functionName || '(anonymous)'}  ${where}${url ? `:${lineNumber + 1}` : ''}`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
      byPlace.set(where, (byPlace.get(where) ?? 0) + hits);
    }
  }
  if (total === 0) return ['(no samples)'];
  const lines = (m: Map<string, number>, n: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, hits]) => `${((100 * hits) / total).toFixed(1).padStart(5)}%  ${name}`);
  return ['by place:', ...lines(byPlace, 15), 'by function:', ...lines(byFunction, top), 'our functions, with what they call:', ...lines(ours, top)];
}
