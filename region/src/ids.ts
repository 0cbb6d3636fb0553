/**
 * Ids of region records, and the "family" each belongs to. A session's family is its Redis
 * Cluster hash tag: the session, its forks, its transcript, lock and snapshots all share one
 * slot, so every Lua script that changes them touches a single slot. A fork keeps the family of
 * its source; a new session or a stateless request's cache snapshot starts a family of its own.
 *
 * Formats: `sess_<home>_<family:16 hex><own:16 hex>`, `snap_<family:16 hex><own:16 hex>`,
 * `resp_<home>_<32 hex>`, `file-<home>_<32 hex>`, `batch_<home>_<32 hex>`. `<home>` is the region
 * that made the id (`shared/regions.ts`: the edge routes by it without a lookup); a region whose
 * name cannot be a tag leaves it out, and ids without one still parse.
 */
import { createHash, randomBytes } from 'node:crypto';
import { homeRegionOf, regionIdTag } from '@bamba/shared';

const HOME = '(?:[a-z][a-z0-9]{0,15}_)?';
const SESSION_ID = new RegExp(`^sess_${HOME}([0-9a-f]{16})[0-9a-f]{16}$`);
const SNAPSHOT_ID = /^snap_([0-9a-f]{16})[0-9a-f]{16}$/;

const hex16 = () => randomBytes(8).toString('hex');

/** A new session id made in `region`. */
export function newSessionId(region: string): string {
  return `sess_${regionIdTag(region)}${hex16()}${hex16()}`;
}

/** A new session id in the family of `sessionId`, made in `region` (a fork, or a moved session). */
export function forkSessionId(sessionId: string, region: string): string {
  return `sess_${regionIdTag(region)}${sessionFamily(sessionId) ?? hex16()}${hex16()}`;
}

/** The family of a session id, or null when the text is not one of our session ids. */
export function sessionFamily(sessionId: string): string | null {
  return SESSION_ID.exec(sessionId)?.[1] ?? null;
}

/**
 * The id a session gets in `region` when a move (`moveId`) brings it there: in its family, and
 * the same for every retry of that move, so a move that runs again overwrites its own copy.
 */
export function movedSessionId(sessionId: string, region: string, moveId: string): string {
  return `sess_${regionIdTag(region)}${sessionFamily(sessionId) ?? hex16()}${createHash('sha256').update(moveId).digest('hex').slice(0, 16)}`;
}

/** Whether `text` is one of our session ids (anything else can only be "not found"). */
export function isSessionId(text: string): boolean {
  return SESSION_ID.test(text);
}

/** A new snapshot id: in `family` (a session's turn), or in a family of its own (a cache entry). */
export function newSnapshotId(family?: string): string {
  return `snap_${family ?? hex16()}${hex16()}`;
}

export function snapshotFamily(snapshotId: string): string | null {
  return SNAPSHOT_ID.exec(snapshotId)?.[1] ?? null;
}

export function isSnapshotId(text: string): boolean {
  return SNAPSHOT_ID.test(text);
}

const RESPONSE_ID = new RegExp(`^resp_${HOME}[0-9a-f]{32}$`);

/** A new response id made in `region` (also its generation job's request id). */
export function newResponseId(region: string): string {
  return `resp_${regionIdTag(region)}${hex16()}${hex16()}`;
}

export function isResponseId(text: string): boolean {
  return RESPONSE_ID.test(text);
}

/** A new transcript item id (a message added outside a turn: a conversation's items). */
export function newItemId(): string {
  return `msg_${hex16()}${hex16()}`;
}

const FILE_ID = new RegExp(`^file-${HOME}[0-9a-f]{32}$`);

/** A new uploaded file's id (OpenAI's `file-…` form), made in `region`. */
export function newFileId(region: string): string {
  return `file-${regionIdTag(region)}${hex16()}${hex16()}`;
}

export function isFileId(text: string): boolean {
  return FILE_ID.test(text);
}

const BATCH_ID = new RegExp(`^batch_${HOME}[0-9a-f]{32}$`);

export function newBatchId(region: string): string {
  return `batch_${regionIdTag(region)}${hex16()}${hex16()}`;
}

export function isBatchId(text: string): boolean {
  return BATCH_ID.test(text);
}

/**
 * The id of a file a batch writes (its output or error file): derived from the batch, so a
 * finalization that runs again after a crash replaces the same file instead of adding another.
 */
export function batchFileId(batchId: string, kind: 'output' | 'error'): string {
  const home = homeRegionOf(batchId);
  return `file-${home ? `${home}_` : ''}${createHash('sha256').update(`${batchId}:${kind}`).digest('hex').slice(0, 32)}`;
}
