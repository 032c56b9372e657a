/**
 * helm-template (../shared/tools/helm-template): renders the chart like `helm template`, for the
 * helm binary cannot be installed here. It is built from Debian's Go packages once and cached
 * under the OS temp dir, keyed by the hash of its main.go, so a test run builds it at most once
 * (test/run.ts builds it before the chart tests start; the tests then find it cached).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PROJECT_ROOT } from './paths.js';

export const HELM_TEMPLATE_DIR = resolve(PROJECT_ROOT, '../shared/tools/helm-template');

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
