/** Liveness, readiness and metrics: for load balancers and Prometheus, without API keys. */
import { Hono } from 'hono';
import { bearerAuth } from '../auth.js';
import type { GatewayMetrics } from '../metrics.js';
import type { RegionState } from '../ports.js';
import { readRegionReport } from '../status/region-report.js';

export function healthRoutes(region: RegionState, metrics: GatewayMetrics, metricsToken: string | null) {
  return new Hono()
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .get('/readyz', async (c) => {
      const redis = await region.ping();
      const nodes = redis ? await region.liveNodes().catch(() => []) : [];
      const accepting = nodes.filter((node) => node.accepting);
      const ready = redis && accepting.length > 0;
      return c.json({ status: ready ? 'ready' : 'not_ready', redis, gpu_nodes: accepting.length }, ready ? 200 : 503);
    })
    .get('/metrics', bearerAuth(metricsToken), async (c) => c.text(await metrics.render(await readRegionReport(region)), 200, { 'content-type': metrics.contentType }));
}
