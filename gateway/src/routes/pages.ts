/**
 * The pages people open in a browser: the playground (`/`), the status page (`/status`), the
 * JSON the status page reads (`/status.json`, behind the metrics token like /metrics) and their
 * scripts and stylesheet (`/assets/…`). Everything is served from here: no CDN.
 */
import { Hono } from 'hono';
import { bearerAuth } from '../auth.js';
import { PLAYGROUND_HTML, STATUS_HTML } from '../pages/page-html.js';
import { PAGE_ICON_SVG, PAGE_STYLE } from '../pages/page-style.js';
import type { Clock, PageScripts, RegionState } from '../ports.js';
import type { RecentActivity } from '../status/recent-activity.js';
import { readRegionReport } from '../status/region-report.js';
import { statusToWire } from '../status/status-wire.js';

/** Only this origin's scripts, styles and API; no framing (clickjacking). */
const PAGE_SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

export interface PageDeps {
  region: RegionState;
  recent: RecentActivity;
  scripts: PageScripts;
  clock: Clock;
  metricsToken: string | null;
}

export function pageRoutes({ region, recent, scripts, clock, metricsToken }: PageDeps) {
  return new Hono()
    .get('/', (c) => c.html(PLAYGROUND_HTML, 200, PAGE_SECURITY_HEADERS))
    .get('/status', (c) => c.html(STATUS_HTML, 200, PAGE_SECURITY_HEADERS))
    .get('/status.json', bearerAuth(metricsToken), async (c) => {
      c.header('cache-control', 'no-store');
      return c.json(statusToWire(await readRegionReport(region), recent.report(), clock.nowMs()));
    })
    .get('/assets/favicon.svg', (c) => c.body(PAGE_ICON_SVG, 200, { 'content-type': 'image/svg+xml', 'x-content-type-options': 'nosniff', 'cache-control': 'max-age=86400' }))
    .get('/assets/bamba.css', (c) => c.body(PAGE_STYLE, 200, { 'content-type': 'text/css; charset=utf-8', 'x-content-type-options': 'nosniff' }))
    .get('/assets/:name{[a-z0-9-]+\\.js}', (c) => {
      const script = scripts.get(c.req.param('name'));
      if (script === null) return c.notFound();
      return c.body(script, 200, { 'content-type': 'text/javascript; charset=utf-8', 'x-content-type-options': 'nosniff', 'cache-control': 'no-cache' });
    });
}
