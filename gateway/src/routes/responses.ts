/** /v1/responses: create, retrieve (or stream again from a sequence number), delete, cancel, input items. */
import { InvalidRequestError, itemsOfMessage, listPage, responseObject, transcriptItemId, validateListQuery, viewOf, wholeNumberParam } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { createResponse, responseNotFound, type ResponseDeps } from '../responses/run-response.js';
import { settleIfStale, stopRun, stopStored, streamStored } from '../responses/stream-stored.js';
import { readJsonBody } from './request-body.js';

function startingAfterOf(text: string | undefined): number {
  if (text === undefined || text === '') return -1;
  const value = wholeNumberParam(text);
  if (value === null) throw new InvalidRequestError('starting_after must be a non-negative integer (a sequence number)', { param: 'starting_after', code: 'invalid_value' });
  return value;
}

export function responsesRoute(deps: ResponseDeps) {
  const load = async (tenant: string, responseId: string) => {
    const record = await deps.responses.get(tenant, responseId);
    if (!record) throw responseNotFound(responseId);
    return settleIfStale(deps, record);
  };

  return new Hono<{ Variables: GatewayVariables }>()
    .post('/', async (c) => createResponse(c, deps, await readJsonBody(c)))
    .get('/:id', async (c) => {
      const stream = c.req.query('stream');
      if (stream !== undefined && stream !== 'true' && stream !== 'false') throw new InvalidRequestError("stream must be 'true' or 'false'", { param: 'stream', code: 'invalid_value' });
      const startingAfter = startingAfterOf(c.req.query('starting_after'));
      const record = await load(c.get('tenant'), c.req.param('id'));
      if (stream === 'true') return streamStored(c, deps, record, startingAfter);
      return c.json(responseObject(viewOf(record)));
    })
    .delete('/:id', async (c) => {
      const record = await deps.responses.get(c.get('tenant'), c.req.param('id'));
      if (!record || !(await deps.responses.delete(c.get('tenant'), record.id))) throw responseNotFound(c.req.param('id'));
      // A background response runs for nobody once deleted: stop it. (A foreground one still has its client.)
      if (record.background && !record.outcome) await stopRun(deps, record);
      return c.json({ id: record.id, object: 'response.deleted', deleted: true });
    })
    .post('/:id/cancel', async (c) => {
      const record = await load(c.get('tenant'), c.req.param('id'));
      if (!record.background) throw new InvalidRequestError('only background responses can be cancelled', { param: 'response_id', code: 'invalid_value' });
      if (!record.outcome) await stopStored(deps, record);
      return c.json(responseObject(viewOf((await deps.responses.get(c.get('tenant'), record.id)) ?? record)));
    })
    .get('/:id/input_items', async (c) => {
      const query = validateListQuery(c.req.query());
      const record = await load(c.get('tenant'), c.req.param('id'));
      return c.json(listPage(record.input.flatMap((message, index) => itemsOfMessage(message, transcriptItemId(record.id, index))), query));
    });
}
