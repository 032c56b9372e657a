/**
 * How the chart tests render the chart: `helm template` when helm is on PATH, else helm-template
 * (../shared/tools/helm-template beside the checkout, which renders as `helm template` does, for
 * the helm binary cannot be installed everywhere), else nothing, and the tests that need a render
 * say so in one line. helm-template is built from Debian's Go packages once and cached under the
 * OS temp dir, keyed by the hash of its main.go, so a test run builds it at most once (test/run.ts
 * builds it before the chart tests start).
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HELM_TEMPLATE_DIR } from './paths.js';
import { hasCommand, helmTemplateWanted } from './system-packages.js';

/** The cached binary's path, building it first when it is not there. Throws with the reason when it cannot be built. */
export function helmTemplateBin(): string {
  const source = join(HELM_TEMPLATE_DIR, 'main.go');
  if (!existsSync(source)) throw new Error(`helm-template sources not found at ${HELM_TEMPLATE_DIR}`);
  const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 16);
  const cacheDir = join(tmpdir(), 'glm-legal-serve-helm-template');
  const bin = join(cacheDir, `helm-template-${hash}`);
  if (existsSync(bin)) return bin;
  mkdirSync(cacheDir, { recursive: true });
  // Build beside the target and rename: a concurrent build or an interrupted one never leaves a half-written binary under the final name.
  const work = mkdtempSync(join(cacheDir, 'build-'));
  try {
    const r = spawnSync('bash', [join(HELM_TEMPLATE_DIR, 'build.sh'), join(work, 'helm-template')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`helm-template did not build (exit ${r.status}): ${r.stderr.trim()}`);
    renameSync(join(work, 'helm-template'), bin);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return bin;
}

export interface ChartRenderArgs {
  valuesFiles: string[];
  sets: string[];
  name: string;
  namespace: string;
  chart: string;
}

export interface ChartRenderer {
  /** `helm` or `helm-template`, for messages. */
  name: string;
  render(args: ChartRenderArgs): SpawnSyncReturns<string>;
}

/** Which renderer this machine has: helm first, then helm-template; null says why there is none. */
export function chartRenderer(): ChartRenderer | { missing: string } {
  if (hasCommand('helm')) {
    return {
      name: 'helm',
      render: (a) =>
        spawnSync(
          'helm',
          ['template', a.name, a.chart, '--namespace', a.namespace, ...a.valuesFiles.flatMap((f) => ['-f', f]), ...a.sets.flatMap((s) => ['--set', s])],
          { encoding: 'utf8' },
        ),
    };
  }
  if (helmTemplateWanted()) {
    const bin = helmTemplateBin();
    return {
      name: 'helm-template',
      render: (a) =>
        spawnSync(bin, [...a.valuesFiles.flatMap((f) => ['-f', f]), ...a.sets.flatMap((s) => ['--set', s]), '--name', a.name, '--namespace', a.namespace, a.chart], {
          encoding: 'utf8',
        }),
    };
  }
  return { missing: `neither helm is on PATH nor helm-template's sources are at ${HELM_TEMPLATE_DIR}` };
}
