/** GET /v1/models and /v1/models/{id}: the models the live gpu-nodes serve. */
import { modelById } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import type { RegionState } from '../ports.js';

/** The list may be this old: node statuses change once per heartbeat anyway. */
const MODELS_MAX_AGE_MS = 200;

export function modelsRoute(region: RegionState) {
  const served = async () => {
    const nodes = await region.liveNodes(MODELS_MAX_AGE_MS);
    const models = new Map<string, { created: number; contextSize: number }>();
    for (const node of nodes) {
      for (const model of node.models) {
        const seen = models.get(model.id);
        if (!seen || node.startedAtMs < seen.created * 1000) models.set(model.id, { created: Math.floor(node.startedAtMs / 1000), contextSize: model.contextSize });
      }
    }
    return [...models].map(([id, model]) => ({ id, object: 'model' as const, created: model.created, owned_by: 'bamba-serve', context_length: model.contextSize }));
  };
  return new Hono<{ Variables: GatewayVariables }>()
    .get('/', async (c) => c.json({ object: 'list', data: await served() }))
    .get('/:id', async (c) => c.json(modelById(await served(), c.req.param('id'))));
}
