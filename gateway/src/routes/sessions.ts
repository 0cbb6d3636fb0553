/** /v1/sessions: create, read, delete and fork server-side conversations. */
import { InvalidRequestError, NotFoundError, ServiceUnavailableError, sessionToWire, validateCreateSession, validateForkSession } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { sessionBusy, sessionNotFound } from '../generation/session-turn.js';
import type { RegionState, Sessions, SessionView } from '../ports.js';
import { parseJsonText, readJsonBody } from './request-body.js';

export function sessionsRoute(sessions: Sessions, region: RegionState) {
  const respond = async (view: SessionView) => {
    const live = new Set((await region.liveNodes()).map((node) => node.nodeId));
    return sessionToWire(view.session, view.messages, await sessions.stateOf(view.session, live));
  };

  return new Hono<{ Variables: GatewayVariables }>()
    .post('/', async (c) => {
      const request = validateCreateSession(await readJsonBody(c));
      const nodes = await region.liveNodes();
      if (nodes.length === 0) throw new ServiceUnavailableError('no gpu-node is alive in this region; try again shortly', { code: 'no_gpu_node' });
      if (!nodes.some((node) => node.models.some((model) => model.id === request.model))) {
        throw new NotFoundError(`model '${request.model}' does not exist`, { param: 'model', code: 'model_not_found' });
      }
      return c.json(await respond(await sessions.create(c.get('tenant'), request)), 201);
    })
    .get('/:id', async (c) => {
      const view = await sessions.get(c.get('tenant'), c.req.param('id'));
      if (!view) throw sessionNotFound(c.req.param('id'));
      return c.json(await respond(view));
    })
    .delete('/:id', async (c) => {
      const outcome = await sessions.delete(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw sessionNotFound(c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      return c.json({ id: c.req.param('id'), object: 'session.deleted', deleted: true });
    })
    .post('/:id/fork', async (c) => {
      // The body is optional: none forks the whole session.
      const text = await c.req.text();
      const request = validateForkSession(text.trim() === '' ? undefined : parseJsonText(text));
      const outcome = await sessions.fork(c.get('tenant'), c.req.param('id'), request.keepMessages);
      if (outcome === 'not_found') throw sessionNotFound(c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      if (outcome === 'too_few_messages') throw new InvalidRequestError(`keep_messages is ${request.keepMessages}, more than the session's messages`, { param: 'keep_messages', code: 'invalid_value' });
      return c.json(await respond(outcome), 201);
    });
}
