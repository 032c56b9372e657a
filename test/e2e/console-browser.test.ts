/**
 * The operator console in a real browser (Debian's chromium through playwright-core) against a
 * real gateway and a real worker process (simulated engine), with Redis: the worker shows healthy,
 * and unhealthy within 3 s of being killed; forced + Apply makes /v1/chat answer degraded on the
 * switch shared through Redis, and auto brings the worker back; a wrong token shows an error and
 * changes nothing; a knowledge entry full of HTML shows as text and runs nothing; an entry added or deleted
 * in the page is added to or deleted from the knowledge base; no page error;
 * nothing is asked of any origin but the gateway's.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { Browser, Page } from 'playwright-core';
import { launchChromium, watchedPage, type WatchedPage } from '../helpers/browser.js';
import { startConsoleStack, type ConsoleStack } from '../helpers/console-stack.js';
import { TEST_ADMIN_TOKEN, until } from '../helpers/gateway.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

let stack: ConsoleStack;
let browser: Browser;
let redis: Redis;
const watched: WatchedPage[] = [];

before(async () => {
  [stack, browser] = await Promise.all([startConsoleStack({ redisUrl: REDIS_URL }), launchChromium()]);
  redis = new Redis(REDIS_URL);
});
after(async () => {
  redis?.disconnect();
  await browser?.close();
  await stack?.stop();
});

/** The ids the knowledge API finds for a query, asked of the gateway directly. */
async function searchKnowledge(q: string): Promise<{ id: string }[]> {
  const res = await stack.gateway.inject({
    method: 'GET',
    url: `/admin/knowledge?q=${encodeURIComponent(q)}&limit=20`,
    headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` },
  });
  assert.equal(res.statusCode, 200, res.body);
  return (res.json() as { entries: { id: string }[] }).entries;
}

/** A new tab on the console; every tab is checked for errors and outside requests at the end. */
async function open(): Promise<WatchedPage> {
  const w = await watchedPage(browser, stack.url);
  watched.push(w);
  await w.page.goto(`${stack.url}/console`);
  return w;
}

async function useToken(page: Page, token: string): Promise<void> {
  await page.getByLabel('Admin token').fill(token);
  await page.getByRole('button', { name: 'Use token' }).click();
}

const workerRow = (page: Page) => page.locator(`#workers tr[data-worker="${stack.worker.url}"]`);

async function degradeMode(): Promise<string> {
  const res = await fetch(`${stack.url}/admin/degrade`, { headers: { authorization: `Bearer ${TEST_ADMIN_TOKEN}` } });
  return ((await res.json()) as { mode: string }).mode;
}

test('the page loads without a token, then shows the worker healthy with its load and provider', async () => {
  const { page } = await open();
  await page.locator('#connection', { hasText: 'Type the admin token' }).waitFor();
  assert.equal(await page.locator('#workers tr').count(), 0, 'no data without the token');
  await useToken(page, TEST_ADMIN_TOKEN);
  const row = workerRow(page);
  await row.locator('td', { hasText: /^healthy$/ }).waitFor({ timeout: 5000 });
  const cells = await row.locator('td').allTextContents();
  assert.equal(cells[0], 'healthy');
  assert.equal(cells[1], 'closed', 'breaker');
  assert.ok(cells.includes('sim'), `execution provider: ${cells.join(' | ')}`);
  assert.match(cells[5]!, /^ ?0 \/ 16384$/, `KV cache: ${cells[5]}`);
  assert.equal(await page.locator('#kb-count').textContent(), '4');
  // Browser-side expressions as text: the tests are compiled for Node, without the DOM's types.
  assert.equal(await page.evaluate('sessionStorage.length'), 1, 'the token is kept in sessionStorage');
  assert.equal(await page.evaluate('localStorage.length + document.cookie.length'), 0, 'and nowhere else');
  // Live: the refresh stamp moves on its own.
  const stamp = await page.locator('#updated').textContent();
  assert.ok(await until(async () => (await page.locator('#updated').textContent()) !== stamp, 2500, 100), 'refreshed within 2.5 s');
});

test('a wrong token shows an error and changes nothing', async () => {
  const { page } = await open();
  await useToken(page, 'not-the-admin-token');
  await page.locator('#connection[role="alert"]', { hasText: 'invalid_api_key' }).waitFor({ timeout: 3000 });
  assert.equal(await page.locator('#workers tr').count(), 0, 'nothing shown');
  await page.getByLabel('Degrade mode').selectOption('forced');
  await page.getByLabel('Degrade source').selectOption('canned');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#degrade-message[role="alert"]', { hasText: /Not applied: .*invalid_api_key, HTTP 401/ }).waitFor({ timeout: 3000 });
  assert.equal(await degradeMode(), 'auto');
  assert.equal((await stack.chat('房东不退押金怎么办？')).degraded, null, 'the worker still answers');
});

test('forced + Apply makes /v1/chat answer degraded through the switch in Redis; auto brings the worker back', async () => {
  const { page } = await open();
  await useToken(page, TEST_ADMIN_TOKEN);
  await workerRow(page).locator('td', { hasText: /^healthy$/ }).waitFor({ timeout: 5000 });
  assert.equal((await stack.chat('房东不退押金怎么办？')).degraded, null);

  await page.getByLabel('Degrade mode').selectOption('forced');
  await page.getByLabel('Degrade source').selectOption('kb');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#degrade-message', { hasText: 'Applied: forced / kb' }).waitFor({ timeout: 3000 });
  const stored = JSON.parse((await redis.get(`${stack.keyPrefix}degrade`))!) as { mode: string; updated_by: string };
  assert.deepEqual([stored.mode, stored.updated_by], ['forced', 'console'], 'written to Redis, for every replica');
  const forced = await stack.chat('房东不退押金怎么办？');
  assert.deepEqual([forced.status, forced.degraded, forced.reason], [200, 'kb', 'forced']);
  await page.locator('#degrade-state dd', { hasText: /^console$/ }).waitFor({ timeout: 3000 });
  await page.locator('#by-reason li', { hasText: 'forced' }).waitFor({ timeout: 3000 });

  await page.getByLabel('Degrade mode').selectOption('auto');
  await page.getByRole('button', { name: 'Apply' }).click();
  await page.locator('#degrade-message', { hasText: 'Applied: auto / kb' }).waitFor({ timeout: 3000 });
  const back = await stack.chat('房东不退押金怎么办？');
  assert.deepEqual([back.status, back.degraded], [200, null], 'the worker answers again');
  await page.locator('#by-worker li', { hasText: stack.worker.url }).waitFor({ timeout: 3000 });
});

test('a knowledge entry holding <img onerror> and <script> shows as text and runs nothing; add and delete change the knowledge base and show the API’s answer', async () => {
  const { page } = await open();
  await useToken(page, TEST_ADMIN_TOKEN);
  await page.getByLabel('Search the knowledge base').fill('押金');
  await page.getByRole('button', { name: 'Search' }).click();
  const entry = page.locator('#kb-results li', { hasText: 'kb-xss' });
  await entry.waitFor({ timeout: 3000 });
  assert.equal(await entry.locator('h3').textContent(), '<img src=x onerror="window.__pwned=1">房东不退押金');
  assert.equal(await entry.locator('p.detail').textContent(), '房东不退押金<img src=x onerror=window.__pwned=1>怎么办？');
  assert.match((await entry.locator('p.answer').textContent())!, /<img src=x onerror="document.title='pwned';window.__pwned=1">先与房东协商.*<script>window.__pwned=1<\/script>$/);
  assert.equal(await page.locator('#kb-results img, #kb-results script').count(), 0, 'no element made from the text');
  assert.equal(await page.evaluate('window.__pwned'), undefined);
  assert.notEqual(await page.title(), 'pwned');

  // Add and delete go through the live-knowledge routes; the page shows what they answered.
  await page.getByLabel('Question', { exact: true }).fill('新问题：押金条丢了还能要回押金吗？');
  await page.getByLabel('Answer', { exact: true }).fill('新答案：可以用转账记录等证据证明已交押金。');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  const added = page.locator('#kb-message', { hasText: /^Added entry (\S+)\.$/ });
  await added.waitFor({ timeout: 3000 });
  const id = /^Added entry (\S+)\.$/.exec((await added.textContent())!)![1]!;
  const found = await searchKnowledge('押金条丢了');
  assert.ok(found.some((e) => e.id === id), 'the added entry is searchable at once');

  await entry.getByRole('button', { name: 'Delete entry kb-xss' }).click();
  await page.locator('#kb-message', { hasText: 'Deleted entry kb-xss.' }).waitFor({ timeout: 3000 });
  assert.equal(await entry.count(), 0, 'the deleted entry leaves the list');
  const gone = await searchKnowledge('押金');
  assert.ok(!gone.some((e) => e.id === 'kb-xss'), 'and the knowledge base');

  // A refusal is shown as the API gave it.
  await page.getByLabel('Question', { exact: true }).fill('只有问题');
  await page.getByLabel('Answer', { exact: true }).fill(' ');
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('#kb-message[role="alert"]', { hasText: 'A new entry needs a question and an answer.' }).waitFor({ timeout: 3000 });
});

test('killing the worker shows it unhealthy within 3 s', async () => {
  const { page } = await open();
  await useToken(page, TEST_ADMIN_TOKEN);
  await workerRow(page).locator('td', { hasText: /^healthy$/ }).waitFor({ timeout: 5000 });
  const t0 = Date.now();
  stack.worker.child.kill('SIGKILL');
  await workerRow(page).locator('td', { hasText: /^unhealthy/ }).waitFor({ timeout: 3000 });
  const shownAfter = Date.now() - t0;
  assert.ok(shownAfter <= 3000, `${shownAfter} ms`);
  console.log(`console: a killed worker shown unhealthy after ${shownAfter} ms`);
  await page.locator('#workers-summary', { hasText: '0 of 1 healthy' }).waitFor({ timeout: 2000 });
  assert.ok(await until(async () => (await stack.chat('房东不退押金怎么办？')).degraded === 'kb', 2000), 'the fallback answers');
});

test('no page errors; the only console errors are the API refusals the tests asked for; nothing asked of another origin', () => {
  assert.ok(watched.length >= 5);
  for (const [i, w] of watched.entries()) {
    assert.deepEqual(w.pageErrors, [], `tab ${i}`);
    assert.deepEqual(w.outside, [], `tab ${i}`);
    assert.ok(w.requests.every((u) => u.startsWith(`${stack.url}/`)), `tab ${i}`);
    assert.ok(w.requests.some((u) => u.endsWith('/console/assets/main.js')));
    // Chromium logs each failed fetch; the tabs that provoke refusals (a wrong token) may show those, and nothing else.
    for (const m of w.consoleErrors) assert.match(m, /^Failed to load resource: the server responded with a status of 401/, `tab ${i}: ${m}`);
  }
  assert.deepEqual(watched[0]!.consoleErrors, [], 'a tab with the right token logs nothing');
  assert.deepEqual(watched[2]!.consoleErrors, []);
});
