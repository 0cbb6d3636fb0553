/**
 * The pages' browser scripts on Node: read once at start from `gateway/browser/dist`, which the
 * project's TypeScript build writes (`tsc --build`). A missing build is an error at start, not a
 * page that silently lacks its script.
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { PageScripts } from '../ports.js';

const BROWSER_BUILD = new URL('../../browser/dist/', import.meta.url);
/** Scripts the pages load (and the modules they import). */
const REQUIRED = ['playground.js', 'status.js'];

export function loadPageScripts(folder: URL = BROWSER_BUILD): PageScripts {
  let names: string[];
  try {
    names = readdirSync(folder).filter((name) => name.endsWith('.js'));
  } catch {
    names = [];
  }
  const missing = REQUIRED.filter((name) => !names.includes(name));
  if (missing.length > 0) throw new Error(`the pages' scripts are not built (${missing.join(', ')} missing in ${folder.pathname}): run npm run build`);
  const scripts = new Map(names.map((name) => [name, readFileSync(new URL(name, folder), 'utf8')]));
  return { get: (name) => scripts.get(name) ?? null };
}
