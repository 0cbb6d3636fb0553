/**
 * /v1/batches: create (from an uploaded input file), retrieve, list and cancel, in OpenAI's
 * shapes; scoped to the API key's tenant. The region's workers run them.
 */
import { batchToWire, InvalidRequestError, listObject, NotFoundError, validateCreateBatch, validateCreatedWindow, validateListQuery } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import type { Batches } from '../ports.js';
import { readJsonBody } from './request-body.js';

const batchNotFound = (id: string) => new NotFoundError(`batch '${id.slice(0, 64)}' does not exist`, { param: 'batch_id', code: 'batch_not_found' });

export function batchesRoute(batches: Batches) {
  return new Hono<{ Variables: GatewayVariables }>()
    .post('/', async (c) => {
      const request = validateCreateBatch(await readJsonBody(c));
      return c.json(batchToWire(await batches.create(c.get('tenant'), request)));
    })
    .get('/', async (c) => {
      const query = validateListQuery(c.req.query());
      const page = await batches.list(c.get('tenant'), { ...query, window: validateCreatedWindow(c.req.query()) });
      return c.json(listObject(page.batches.map(batchToWire), page.hasMore));
    })
    .get('/:id', async (c) => {
      const batch = await batches.get(c.get('tenant'), c.req.param('id'));
      if (!batch) throw batchNotFound(c.req.param('id'));
      return c.json(batchToWire(batch));
    })
    .post('/:id/cancel', async (c) => {
      const batch = await batches.cancel(c.get('tenant'), c.req.param('id'));
      if (!batch) throw batchNotFound(c.req.param('id'));
      if (batch.status !== 'cancelling' && batch.status !== 'cancelled') {
        throw new InvalidRequestError(`the batch is ${batch.status}: only a validating or in-progress batch can be cancelled`, { param: 'batch_id', code: 'batch_not_cancellable' });
      }
      return c.json(batchToWire(batch));
    });
}
