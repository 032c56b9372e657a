/**
 * The console's files, all held in memory from start: the page, its style sheet and icon
 * (page.ts) and the browser scripts tsc compiled from `browser/` beside this module. The list is
 * fixed when the gateway starts, so no part of a URL ever reaches the file system.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_ICON } from './page.js';

export interface ConsoleAsset {
  type: string;
  body: Buffer;
}

export interface ConsoleAssets {
  page: ConsoleAsset;
  /** By file name, as under `/console/assets/`. */
  files: ReadonlyMap<string, ConsoleAsset>;
  /** Set when the browser scripts are missing (a build without the console's tsconfig). */
  problem: string | null;
}

/** The compiled browser scripts (dist/src/gateway/console/browser/ when run from dist). */
export const BROWSER_DIR = fileURLToPath(new URL('./browser/', import.meta.url));

export function loadConsoleAssets(dir = BROWSER_DIR): ConsoleAssets {
  const files = new Map<string, ConsoleAsset>([
    ['console.css', { type: 'text/css; charset=utf-8', body: Buffer.from(CONSOLE_CSS) }],
    ['icon.svg', { type: 'image/svg+xml', body: Buffer.from(CONSOLE_ICON) }],
  ]);
  const scripts = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.js')) : [];
  for (const name of scripts) files.set(name, { type: 'text/javascript; charset=utf-8', body: readFileSync(join(dir, name)) });
  return {
    page: { type: 'text/html; charset=utf-8', body: Buffer.from(CONSOLE_HTML) },
    files,
    problem: scripts.includes('main.js') ? null : `the console's scripts are not in ${dir} (npm run build makes them)`,
  };
}
