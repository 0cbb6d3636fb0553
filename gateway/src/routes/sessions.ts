/** /v1/sessions: create, read, delete, fork and move server-side conversations. */
import { homeRegionOf, InvalidRequestError, servedModel, sessionToWire, validateCreateSession, validateForkSession, validateMoveSession } from '@bamba/shared';
import { Hono } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { noGpuNode } from '../generation/admission.js';
import { checkSessionHome, sessionBusy, sessionMissing } from '../generation/session-turn.js';
import type { RegionState, Sessions, SessionView, Transfers } from '../ports.js';
import { optionalJsonText, readJsonBody } from './request-body.js';

/** How long a move may take (the workers pull the state from the source region). */
const MOVE_DEADLINE_MS = 120_000;

export function sessionsRoute(sessions: Sessions, region: RegionState, transfers: Transfers) {
  const respond = async (view: SessionView) => {
    const live = new Set((await region.liveNodes()).map((node) => node.nodeId));
    return sessionToWire(view.session, view.messages, await sessions.stateOf(view.session, live));
  };

  return new Hono<{ Variables: GatewayVariables }>()
    .post('/', async (c) => {
      const request = validateCreateSession(await readJsonBody(c));
      const nodes = await region.liveNodes();
      if (nodes.length === 0) throw noGpuNode();
      servedModel(nodes, request.model); // 404 naming the models served when it is not one of them
      return c.json(await respond(await sessions.create(c.get('tenant'), request)), 201);
    })
    .get('/:id', async (c) => {
      checkSessionHome(c.req.param('id'), region.name, c.get('failover'));
      const view = await sessions.get(c.get('tenant'), c.req.param('id'));
      if (!view) throw await sessionMissing(sessions, c.get('tenant'), c.req.param('id'));
      return c.json(await respond(view));
    })
    .delete('/:id', async (c) => {
      checkSessionHome(c.req.param('id'), region.name, false);
      const outcome = await sessions.delete(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw await sessionMissing(sessions, c.get('tenant'), c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      return c.json({ id: c.req.param('id'), object: 'session.deleted', deleted: true });
    })
    .post('/:id/fork', async (c) => {
      checkSessionHome(c.req.param('id'), region.name, false);
      // The body is optional: none forks the whole session.
      const request = validateForkSession(optionalJsonText(await c.req.text()));
      const outcome = await sessions.fork(c.get('tenant'), c.req.param('id'), request.keepMessages);
      if (outcome === 'not_found') throw await sessionMissing(sessions, c.get('tenant'), c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      if (outcome === 'too_few_messages') throw new InvalidRequestError(`keep_messages is ${request.keepMessages}, more than the session's messages`, { param: 'keep_messages', code: 'invalid_value' });
      return c.json(await respond(outcome), 201);
    })
    // A move runs in the region the session moves to: its workers pull the session from home.
    .post('/:id/move', async (c) => {
      const sessionId = c.req.param('id');
      const { region: target } = validateMoveSession(await readJsonBody(c));
      const home = homeRegionOf(sessionId);
      if (target !== region.name) throw new InvalidRequestError(`this is region '${region.name}'; send a move to '${target}' to that region (the edge does this)`, { param: 'region', code: 'invalid_value' });
      if (home === null) throw await sessionMissing(sessions, c.get('tenant'), sessionId);
      // Made here and never moved away: nothing to move. Made here but moved away since (its id
      // forwards elsewhere): it comes back, followed from here like any other move.
      const stayed = home === region.name && (await sessions.movedTo(c.get('tenant'), sessionId)) === null;
      const view = stayed
        ? await sessions.get(c.get('tenant'), sessionId)
        : await sessions.get(c.get('tenant'), (await transfers.moveHere(c.get('tenant'), sessionId, Date.now() + MOVE_DEADLINE_MS)).newId);
      if (!view) throw await sessionMissing(sessions, c.get('tenant'), sessionId);
      return c.json(await respond(view));
    });
}
