/** /v1/sessions: create, read, delete and fork server-side conversations. */
import { ConflictError, NotFoundError, ServiceUnavailableError, sessionToWire, validateCreateSession, type SessionStateLocation } from '@bamba/shared';
import { Hono } from 'hono';
import type { AuthVariables } from '../auth.js';
import type { Dispatcher, Sessions, SessionView } from '../ports.js';
import { readJsonBody } from './request-body.js';

const notFound = (sessionId: string) => new NotFoundError(`session '${sessionId}' does not exist`, { param: 'session_id', code: 'session_not_found' });
const busy = (sessionId: string) => new ConflictError(`session '${sessionId}' is running a turn; retry when it ends`, { code: 'session_busy' });

export function sessionsRoute(sessions: Sessions, dispatcher: Dispatcher) {
  const stateOf = async ({ session }: SessionView): Promise<SessionStateLocation> => {
    if (session.residentNode && (await dispatcher.liveNodes()).some((node) => node.nodeId === session.residentNode)) return 'resident';
    if (session.snapshotId && (await sessions.snapshotExists(session.snapshotId))) return 'snapshot';
    return 'transcript';
  };
  const respond = async (view: SessionView) => sessionToWire(view.session, view.messages, await stateOf(view));

  return new Hono<{ Variables: AuthVariables }>()
    .post('/', async (c) => {
      const request = validateCreateSession(await readJsonBody(c));
      const nodes = await dispatcher.liveNodes();
      if (nodes.length === 0) throw new ServiceUnavailableError('no gpu-node is alive in this region; try again shortly', { code: 'no_gpu_node' });
      if (!nodes.some((node) => node.models.some((model) => model.id === request.model))) {
        throw new NotFoundError(`model '${request.model}' does not exist`, { param: 'model', code: 'model_not_found' });
      }
      return c.json(await respond(await sessions.create(c.get('tenant'), request)), 201);
    })
    .get('/:id', async (c) => {
      const view = await sessions.get(c.get('tenant'), c.req.param('id'));
      if (!view) throw notFound(c.req.param('id'));
      return c.json(await respond(view));
    })
    .delete('/:id', async (c) => {
      const outcome = await sessions.delete(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw notFound(c.req.param('id'));
      if (outcome === 'busy') throw busy(c.req.param('id'));
      return c.json({ id: c.req.param('id'), object: 'session.deleted', deleted: true });
    })
    .post('/:id/fork', async (c) => {
      const outcome = await sessions.fork(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw notFound(c.req.param('id'));
      if (outcome === 'busy') throw busy(c.req.param('id'));
      return c.json(await respond(outcome), 201);
    });
}

export { notFound as sessionNotFound, busy as sessionBusy };
