/**
 * `npm run screenshot:load`: the README's picture of the load test's HTML report
 * (docs/load-report.png), from a real run: `npm run load -- --local` at 40 requests/s for 45 s
 * through the README's chaos schedule, its report opened in the browser tests' own headless
 * Chromium. Takes about a minute.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchChromium, saveScreenshot, watchedPage } from './helpers/browser.js';
import { CLI_DIR, PROJECT_ROOT } from './helpers/paths.js';

const OUT = join(PROJECT_ROOT, 'docs/load-report.png');
const dir = mkdtempSync(join(tmpdir(), 'load-screenshot-'));
const html = join(dir, 'load-report.html');
try {
  const args = ['--local', '--rate', '40', '--duration', '45', '--chaos', 'kill-worker@10,stop-redis@20,start-redis@28,degrade-forced@34,degrade-auto@38', '--report', html];
  const run = spawnSync(process.execPath, [join(CLI_DIR, 'load.js'), ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  if (run.status !== 0) throw new Error(`npm run load exited with ${run.status}`);
  const browser = await launchChromium();
  try {
    const { page, pageErrors } = await watchedPage(browser, 'http://127.0.0.1:9');
    await page.setViewportSize({ width: 1040, height: 900 });
    await page.setContent(readFileSync(html, 'utf8'), { waitUntil: 'load' });
    await saveScreenshot({ page, pageErrors }, OUT);
  } finally {
    await browser.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
