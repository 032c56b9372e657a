/**
 * Debian's chromium driven by playwright-core (no browser download: the test runner installs the
 * `chromium` package, as it does redis-server). A page opened here records its errors, its
 * console's errors and every request it makes; requests to any origin but the allowed one are
 * refused and listed.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
/** Headless on a machine with no GPU, no sandbox (root) and no calls home. */
export const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
}

export interface WatchedPage {
  context: BrowserContext;
  page: Page;
  /** Uncaught exceptions in the page. */
  pageErrors: string[];
  /** Messages the page's console logged as errors. */
  consoleErrors: string[];
  /** Every URL the page asked for. */
  requests: string[];
  /** URLs outside the allowed origin (each refused). */
  outside: string[];
}

/** A fresh context (its own sessionStorage) and page that may reach `origin` only. */
export async function watchedPage(browser: Browser, origin: string): Promise<WatchedPage> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const watched: WatchedPage = { context, page: await context.newPage(), pageErrors: [], consoleErrors: [], requests: [], outside: [] };
  await context.route('**/*', (route) => {
    const url = route.request().url();
    watched.requests.push(url);
    if (new URL(url).origin === origin) return route.continue();
    watched.outside.push(url);
    return route.abort('blockedbyclient');
  });
  watched.page.on('pageerror', (err) => watched.pageErrors.push(err.message));
  watched.page.on('console', (msg) => {
    if (msg.type() === 'error') watched.consoleErrors.push(msg.text());
  });
  return watched;
}

/** The README's pictures: a full-page screenshot to `out`, refused when the page had errors. */
export async function saveScreenshot(watched: Pick<WatchedPage, 'page' | 'pageErrors'>, out: string): Promise<void> {
  mkdirSync(dirname(out), { recursive: true });
  await watched.page.screenshot({ path: out, fullPage: true });
  if (watched.pageErrors.length > 0) throw new Error(`page errors: ${watched.pageErrors.join('; ')}`);
  console.log(`${out}: ${Math.round(statSync(out).size / 1024)} KB`);
}
