/** Liveness, readiness and metrics: unauthenticated, for load balancers and Prometheus. */
import { Hono } from 'hono';
import type { GatewayMetrics } from '../metrics.js';
import type { Dispatcher } from '../ports.js';

export function healthRoutes(dispatcher: Dispatcher, metrics: GatewayMetrics) {
  return new Hono()
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .get('/readyz', async (c) => {
      const redis = await dispatcher.ping();
      const nodes = redis ? await dispatcher.liveNodes() : [];
      const ready = redis && nodes.length > 0;
      return c.json({ status: ready ? 'ready' : 'not_ready', redis, gpu_nodes: nodes.length }, ready ? 200 : 503);
    })
    .get('/metrics', async (c) => {
      const redis = await dispatcher.ping();
      const [waitingJobs, nodes] = redis ? await Promise.all([dispatcher.waitingJobs(), dispatcher.liveNodes()]) : [null, []];
      return c.text(metrics.render({ waitingJobs, nodes }), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    });
}
