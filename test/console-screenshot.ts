/**
 * `npm run screenshot:console`: the README's picture of the operator console (docs/console.png),
 * taken through the browser tests' own launcher on the same stack: a gateway and a sim worker process with a
 * private Redis, some answers, a refused request and a search so that the panels have something
 * to show. The Chinese texts need a CJK font in the browser's machine (Debian: fonts-wqy-microhei).
 */
import { join } from 'node:path';
import { launchChromium, saveScreenshot, watchedPage } from './helpers/browser.js';
import { startConsoleStack } from './helpers/console-stack.js';
import { TEST_ADMIN_TOKEN } from './helpers/gateway.js';
import { PROJECT_ROOT } from './helpers/paths.js';
import { startPrivateRedis } from './helpers/redis.js';

const OUT = join(PROJECT_ROOT, 'docs/console.png');

const redis = await startPrivateRedis();
const stack = await startConsoleStack({ redisUrl: redis.url });
const browser = await launchChromium();
try {
  for (const q of ['借钱不还怎么办？', '劳动合同到期不续签有补偿吗？', '离婚时房产怎么分割？']) await stack.chat(q);
  await fetch(`${stack.url}/v1/chat`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  const { page, pageErrors } = await watchedPage(browser, stack.url);
  await page.setViewportSize({ width: 1200, height: 900 });
  await page.goto(`${stack.url}/console`);
  await page.getByLabel('Admin token').fill(TEST_ADMIN_TOKEN);
  await page.getByRole('button', { name: 'Use token' }).click();
  await page.locator('#workers td', { hasText: /^healthy$/ }).waitFor({ timeout: 5000 });
  await page.getByLabel('Search the knowledge base').fill('借钱');
  await page.getByRole('button', { name: 'Search' }).click();
  await page.locator('#kb-results li').first().waitFor({ timeout: 5000 });
  await page.locator('#by-worker li', { hasText: stack.worker.url }).waitFor({ timeout: 5000 });
  await saveScreenshot({ page, pageErrors }, OUT);
} finally {
  await browser.close();
  await stack.stop();
  await redis.stop();
}
