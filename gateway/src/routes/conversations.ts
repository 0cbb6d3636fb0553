/**
 * /v1/conversations and their items. A conversation is a session (same id, same state, same
 * one-turn-at-a-time rule: item changes while a turn runs get 409) whose turns may use any
 * model; its items are the session's transcript.
 */
import {
  ANY_MODEL,
  callIdOfItem,
  callIdsOf,
  conversationObject,
  itemsOfMessage,
  listPage,
  NotFoundError,
  transcriptItemId,
  validateConversationItems,
  validateConversationUpdate,
  validateCreateConversation,
  validateListQuery,
  type ChatMessage,
} from '@bamba/shared';
import { Hono, type MiddlewareHandler } from 'hono';
import type { GatewayVariables } from '../gateway-env.js';
import { checkSessionHome, sessionBusy, sessionMissing } from '../generation/session-turn.js';
import type { RegionState, Sessions } from '../ports.js';
import { optionalJsonText, readJsonBody } from './request-body.js';

const conversationNotFound = (id: string) => new NotFoundError(`conversation '${id}' does not exist`, { param: 'conversation_id', code: 'conversation_not_found' });
const itemNotFound = (id: string) => new NotFoundError(`item '${id}' does not exist in this conversation`, { param: 'item_id', code: 'item_not_found' });

/** Checks and appends of items racing other edits of one conversation: then it answers 409 (retried by clients). */
const APPEND_ATTEMPTS = 3;

export function conversationsRoute(sessions: Sessions, region: RegionState) {
  /** Not here: it moved to another region (409 with its new id, which the edge follows), or there is none (404). */
  const missing = (tenant: string, id: string) => sessionMissing(sessions, tenant, id, conversationNotFound);
  /** A conversation is a session: it lives in the region its id names (a replica elsewhere is read-only). */
  const atHome: MiddlewareHandler = async (c, next) => {
    checkSessionHome(c.req.param('id')!, region.name, false);
    await next();
  };
  const load = async (tenant: string, id: string) => {
    const view = await sessions.get(tenant, id);
    if (!view) throw await missing(tenant, id);
    return view;
  };
  const itemsOf = (sessionId: string, messages: ChatMessage[]) => messages.flatMap((message, index) => itemsOfMessage(message, transcriptItemId(sessionId, index)));
  const withIds = (messages: ChatMessage[]) => messages.map((message) => ({ ...message, id: sessions.newItemId() }));

  return new Hono<{ Variables: GatewayVariables }>()
    .use('/:id/*', atHome)
    .use('/:id', atHome)
    .post('/', async (c) => {
      // The body is optional, as in OpenAI's API: none is an empty conversation.
      const request = validateCreateConversation(optionalJsonText(await c.req.text(), {}));
      const view = await sessions.create(c.get('tenant'), { model: ANY_MODEL, system: null, metadata: request.metadata, items: withIds(request.items) });
      return c.json(conversationObject(view.session));
    })
    .get('/:id', async (c) => c.json(conversationObject((await load(c.get('tenant'), c.req.param('id'))).session)))
    .post('/:id', async (c) => {
      const metadata = validateConversationUpdate(await readJsonBody(c));
      if ((await sessions.setMetadata(c.get('tenant'), c.req.param('id'), metadata)) === 'not_found') throw await missing(c.get('tenant'), c.req.param('id'));
      return c.json(conversationObject((await load(c.get('tenant'), c.req.param('id'))).session));
    })
    .delete('/:id', async (c) => {
      const outcome = await sessions.delete(c.get('tenant'), c.req.param('id'));
      if (outcome === 'not_found') throw await missing(c.get('tenant'), c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      return c.json({ id: c.req.param('id'), object: 'conversation.deleted', deleted: true });
    })
    .get('/:id/items', async (c) => {
      const query = validateListQuery(c.req.query());
      const view = await load(c.get('tenant'), c.req.param('id'));
      return c.json(listPage(itemsOf(view.session.id, view.messages), query));
    })
    .post('/:id/items', async (c) => {
      const body = await readJsonBody(c);
      // An output item answers a call the conversation (or these items) made: checked against the
      // transcript, and appended only while it is still that transcript (else checked again).
      let messages: ChatMessage[] = [];
      let outcome: Awaited<ReturnType<Sessions['appendItems']>> = 'changed';
      for (let attempt = 0; attempt < APPEND_ATTEMPTS && outcome === 'changed'; attempt++) {
        const transcript = (await load(c.get('tenant'), c.req.param('id'))).messages;
        messages = withIds(validateConversationItems(body, callIdsOf(transcript)));
        outcome = await sessions.appendItems(c.get('tenant'), c.req.param('id'), messages, transcript);
      }
      if (outcome === 'not_found') throw await missing(c.get('tenant'), c.req.param('id'));
      if (outcome === 'busy' || outcome === 'changed') throw sessionBusy(c.req.param('id'));
      const data = itemsOf(c.req.param('id'), messages);
      return c.json({ object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false });
    })
    .get('/:id/items/:item', async (c) => {
      const view = await load(c.get('tenant'), c.req.param('id'));
      const item = itemsOf(view.session.id, view.messages).find((candidate) => candidate.id === c.req.param('item'));
      if (!item) throw itemNotFound(c.req.param('item'));
      return c.json(item);
    })
    .delete('/:id/items/:item', async (c) => {
      // A function_call item is a call of a message: its id names the call (functionCallItemId).
      const itemId = c.req.param('item');
      const outcome = await sessions.deleteItem(c.get('tenant'), c.req.param('id'), itemId, callIdOfItem(itemId) ?? undefined);
      if (outcome === 'not_found') throw await missing(c.get('tenant'), c.req.param('id'));
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      if (outcome === 'item_not_found') throw itemNotFound(c.req.param('item'));
      return c.json(conversationObject((await load(c.get('tenant'), c.req.param('id'))).session));
    });
}
