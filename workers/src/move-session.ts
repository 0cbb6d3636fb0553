/**
 * Move a session into this region (run by this region's workers, for `POST /v1/sessions/{id}/move`):
 * export it from its home region (which locks it there), fetch its snapshot chunk by chunk,
 * each checked against its digest and the whole against the snapshot's own payload checksum,
 * store it here, create the session under its new id, then ask the home region to swap the
 * session for a forwarding record. A snapshot taken under a model this region does not serve is
 * left behind (the next turn here replays). Any failure before the swap leaves the session at
 * home as it was (the export lock is released or expires); a swap refused because the lock
 * expired undoes the copy here and fails, and the job runs again.
 */
import { createHash } from 'node:crypto';
import { MoveRefused, sessionExportSchema, type MoveJob, type MoveResult, type NodeRegistry, type SessionStore, type SessionTransfer, type SnapshotInfo, type SnapshotStore } from '@bamba/region';
import { CHUNK_DIGEST_HEADER, decodeSnapshot, homeRegionOf, MAX_SESSION_FORWARDS } from '@bamba/shared';
import { z } from 'zod';
import { PeerError, type RegionPeers } from './region-peers.js';

/** The home region keeps the session locked for the move at most this long. */
const MOVE_LOCK_MS = 60_000;
/** A moved snapshot cannot be evicted before the new session owns it. */
const SNAPSHOT_PIN_MS = 120_000;

export interface MoveDeps {
  here: string;
  peers: RegionPeers;
  transfer: SessionTransfer;
  sessions: SessionStore;
  snapshots: SnapshotStore;
  registry: NodeRegistry;
}

async function exportFrom(deps: MoveDeps, job: MoveJob) {
  let sessionId = job.sessionId;
  let source = job.source;
  for (let hop = 0; hop <= MAX_SESSION_FORWARDS; hop++) {
    if (source === deps.here) {
      // The chain reached this region: the session lives here, unless this id moved on as well.
      const onward = await deps.transfer.forwardOf(job.tenant, sessionId);
      if (onward === null) return { sessionId, source, exported: null };
      sessionId = onward;
      source = homeRegionOf(onward) ?? source;
      continue;
    }
    if (!deps.peers.has(source)) throw new MoveRefused('region_unknown', `the session's home region '${source}' is not in this region's BAMBA_REGIONS`);
    let answer: unknown;
    try {
      answer = await deps.peers.json(source, 'POST', `/internal/v1/sessions/${sessionId}/export`, { tenant: job.tenant, moveId: job.moveId, lockTtlMs: MOVE_LOCK_MS });
    } catch (error) {
      if (error instanceof PeerError && error.status === 404) throw new MoveRefused('session_not_found', `session '${job.sessionId}' does not exist`);
      if (error instanceof PeerError && error.status === 409) throw new MoveRefused('session_busy', `session '${job.sessionId}' is running a turn`);
      throw error;
    }
    const exported = sessionExportSchema.parse(answer);
    if (!('movedTo' in exported)) return { sessionId, source, exported };
    // It moved before: follow it (it may live here already).
    sessionId = exported.movedTo;
    source = homeRegionOf(sessionId) ?? source;
  }
  throw new Error(`session '${job.sessionId}' was forwarded more than ${MAX_SESSION_FORWARDS} times`);
}

/** The export lock is taken again (same move id: renewed) after this many chunks, so a long transfer keeps it. */
const CHUNKS_PER_LOCK_RENEWAL = 16;

async function fetchSnapshot(deps: MoveDeps, source: string, snapshot: { snapshotId: string; chunks: number; bytes: number }, renewLock: () => Promise<void>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let index = 0; index < snapshot.chunks; index++) {
    if (index > 0 && index % CHUNKS_PER_LOCK_RENEWAL === 0) await renewLock();
    const response = await deps.peers.call(source, 'GET', `/internal/v1/snapshots/${snapshot.snapshotId}/chunks/${index}`);
    if (!response.ok) throw new Error(`snapshot chunk ${index}: HTTP ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (createHash('sha256').update(bytes).digest('hex') !== response.headers.get(CHUNK_DIGEST_HEADER)) throw new Error(`snapshot chunk ${index} does not match its digest`);
    parts.push(bytes);
  }
  const whole = Buffer.concat(parts);
  if (whole.length !== snapshot.bytes) throw new Error(`snapshot holds ${whole.length} bytes, expected ${snapshot.bytes}`);
  const { header, payload } = decodeSnapshot(whole);
  if (createHash('sha256').update(payload).digest('hex') !== header.payloadChecksum) throw new Error('snapshot payload does not match its checksum');
  return whole;
}

export async function moveSession(deps: MoveDeps, job: MoveJob): Promise<MoveResult> {
  // Whoever asked has been answered (503) by now: a late move would surprise them.
  if (Date.now() > job.deadlineAtMs) throw new MoveRefused('expired', 'the move was not started before its deadline');
  const found = await exportFrom(deps, job);
  if (!found.exported) return { newId: found.sessionId, snapshotMoved: false, reason: 'the session lives here already' };
  const { sessionId, source } = found;
  const { copy, snapshot } = found.exported;
  const newId = deps.transfer.movedId(sessionId, job.moveId);
  const renewLock = async () => { await deps.peers.json(source, 'POST', `/internal/v1/sessions/${sessionId}/export`, { tenant: job.tenant, moveId: job.moveId, lockTtlMs: MOVE_LOCK_MS }); };
  /** Whether the commit was sent and its answer is unknown: then the copy here may be the session, and stays. */
  let commitUnknown = false;
  let imported = false;
  try {
    let stored: SnapshotInfo | null = null;
    let reason = 'the session had no saved state; its next turn replays';
    if (snapshot) {
      const served = (await deps.registry.liveNodes()).some((node) => node.models.some((model) => model.fingerprint === snapshot.fingerprint));
      if (served) {
        const bytes = await fetchSnapshot(deps, source, snapshot, renewLock);
        stored = await deps.snapshots.put(bytes, { tenant: copy.tenant, fingerprint: snapshot.fingerprint, tokenCount: snapshot.tokenCount, tokenHash: snapshot.tokenHash, indexPrefix: true, sessionId: newId, pinMs: SNAPSHOT_PIN_MS });
        reason = 'state moved';
      } else {
        reason = "no gpu-node here serves the model the state was saved under; its next turn replays";
      }
    }
    await deps.transfer.importMoved(newId, copy, stored);
    imported = true;
    commitUnknown = true;
    const committed = z.object({ outcome: z.enum(['moved', 'lost']) }).parse(await deps.peers.json(source, 'POST', `/internal/v1/sessions/${sessionId}/export/commit`, { moveId: job.moveId, newId }));
    commitUnknown = false;
    if (committed.outcome === 'lost') throw new Error('the home region let go of the session before the move completed');
    return { newId, snapshotMoved: stored !== null, reason };
  } catch (error) {
    // Not moved: the copy here goes (a retry makes it again), the session at home is given back.
    // Unless the commit's answer was lost: a retry finds the forwarding record and keeps the copy.
    if (imported && !commitUnknown) await deps.sessions.delete(copy.tenant, newId).catch(() => {});
    await deps.peers.call(source, 'POST', `/internal/v1/sessions/${sessionId}/export/abort`, { moveId: job.moveId }).catch(() => {});
    throw error;
  }
}
