/** GET /v1/models: the models the live gpu-nodes serve. */
import { Hono } from 'hono';
import type { AuthVariables } from '../auth.js';
import type { Dispatcher } from '../ports.js';

export function modelsRoute(dispatcher: Dispatcher) {
  return new Hono<{ Variables: AuthVariables }>().get('/', async (c) => {
    const nodes = await dispatcher.liveNodes();
    const models = new Map<string, { created: number; contextSize: number }>();
    for (const node of nodes) {
      for (const model of node.models) {
        const seen = models.get(model.id);
        if (!seen || node.startedAtMs < seen.created * 1000) models.set(model.id, { created: Math.floor(node.startedAtMs / 1000), contextSize: model.contextSize });
      }
    }
    return c.json({
      object: 'list',
      data: [...models].map(([id, model]) => ({ id, object: 'model', created: model.created, owned_by: 'bamba-serve', context_length: model.contextSize })),
    });
  });
}
