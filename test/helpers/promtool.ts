/** `promtool check metrics` on an exposition (the test runner makes sure promtool is installed). */
import { spawnSync } from 'node:child_process';

/** promtool's exit status and what it printed: status 0 and no output is a clean exposition. */
export function promtoolCheckMetrics(exposition: string): { status: number | null; findings: string } {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { status: r.status, findings: `${r.stdout}${r.stderr}`.trim() };
}
