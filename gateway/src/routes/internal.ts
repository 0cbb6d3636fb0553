/**
 * `/internal/v1/…`: what other regions' workers call (signed with the shared secret, no tenant):
 * replicas of sessions whose backup this region is (or whose home it is, after a failover), and
 * this region's side of moving a session out: export (locks it), its snapshot's chunks, commit
 * (the session becomes a forwarding record) or abort.
 */
import { CHUNK_DIGEST_HEADER, InvalidRequestError, MOVE_ID_PATTERN, NotFoundError } from '@bamba/shared';
import { Hono } from 'hono';
import { z } from 'zod';
import { internalAuth } from '../auth.js';
import type { Clock, Transfers } from '../ports.js';
import { readJsonBody } from './request-body.js';
import { sessionBusy } from '../generation/session-turn.js';

const MOVE_ID = z.string().regex(MOVE_ID_PATTERN);
const exportSchema = z.object({ tenant: z.string().min(1), moveId: MOVE_ID, lockTtlMs: z.number().int().min(1000).max(600_000) });
const commitSchema = z.object({ moveId: MOVE_ID, newId: z.string().min(1).max(128) });
const abortSchema = z.object({ moveId: MOVE_ID });
const movedQuerySchema = z.object({ moved_to: z.string().min(1).max(128), tenant: z.string().min(1).max(64) }).partial().refine((query) => (query.moved_to === undefined) === (query.tenant === undefined));

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) throw new InvalidRequestError(`malformed internal request: ${result.error.issues[0]?.message ?? 'invalid'}`, { code: 'invalid_value' });
  return result.data;
}

export function internalRoutes(transfers: Transfers, edgeSecret: string | null, clock: Clock) {
  return new Hono()
    .use('*', internalAuth(edgeSecret, clock))
    .put('/replicas/:id', async (c) => {
      const outcome = await transfers.applyReplica(c.req.param('id'), await readJsonBody(c));
      // Busy: a turn runs here now; the replicating job tries again shortly.
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      return c.json({ outcome });
    })
    .delete('/replicas/:id', async (c) => {
      // `?moved_to=<id>&tenant=<t>`: the session moved (its old id should forward), not deleted.
      const moved = movedQuerySchema.safeParse(c.req.query());
      const outcome = await transfers.dropReplica(c.req.param('id'), moved.success && moved.data.moved_to ? { tenant: moved.data.tenant!, to: moved.data.moved_to } : null);
      if (outcome === 'busy') throw sessionBusy(c.req.param('id'));
      if (outcome === 'not_found') throw new NotFoundError('no such replica', { code: 'session_not_found' });
      return c.json({ outcome });
    })
    .post('/sessions/:id/export', async (c) => {
      const request = parse(exportSchema, await readJsonBody(c));
      const exported = await transfers.exportForMove(c.req.param('id'), request.tenant, request.moveId, request.lockTtlMs);
      if (exported === 'not_found') throw new NotFoundError(`session '${c.req.param('id')}' does not exist`, { code: 'session_not_found' });
      if (exported === 'busy') throw sessionBusy(c.req.param('id'));
      return c.json(exported);
    })
    .get('/snapshots/:id/chunks/:index', async (c) => {
      const bytes = await transfers.snapshotChunk(c.req.param('id'), Number(c.req.param('index')));
      if (!bytes) throw new NotFoundError('no such snapshot chunk', { code: 'snapshot_not_found' });
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
      return c.body(bytes as Uint8Array<ArrayBuffer>, 200, { 'content-type': 'application/octet-stream', [CHUNK_DIGEST_HEADER]: Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('') });
    })
    .post('/sessions/:id/export/commit', async (c) => {
      const request = parse(commitSchema, await readJsonBody(c));
      return c.json({ outcome: await transfers.commitMove(c.req.param('id'), request.moveId, request.newId) });
    })
    .post('/sessions/:id/export/abort', async (c) => {
      const request = parse(abortSchema, await readJsonBody(c));
      await transfers.releaseMove(c.req.param('id'), request.moveId);
      return c.json({ outcome: 'released' });
    });
}
