/**
 * Ids of region records, and the "family" each belongs to. A session's family is its Redis
 * Cluster hash tag: the session, its forks, its transcript, lock and snapshots all share one
 * slot, so every Lua script that changes them touches a single slot. A fork keeps the family of
 * its source; a new session or a stateless request's cache snapshot starts a family of its own.
 *
 * Formats: `sess_<family:16 hex><own:16 hex>`, `snap_<family:16 hex><own:16 hex>`, `resp_<32 hex>`,
 * `file-<32 hex>`, `batch_<32 hex>`.
 */
import { createHash, randomBytes } from 'node:crypto';

const SESSION_ID = /^sess_([0-9a-f]{16})[0-9a-f]{16}$/;
const SNAPSHOT_ID = /^snap_([0-9a-f]{16})[0-9a-f]{16}$/;

const hex16 = () => randomBytes(8).toString('hex');

export function newSessionId(): string {
  return `sess_${hex16()}${hex16()}`;
}

/** A new session id in the family of `sessionId` (a fork). */
export function forkSessionId(sessionId: string): string {
  return `sess_${sessionFamily(sessionId) ?? hex16()}${hex16()}`;
}

/** The family of a session id, or null when the text is not one of our session ids. */
export function sessionFamily(sessionId: string): string | null {
  return SESSION_ID.exec(sessionId)?.[1] ?? null;
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

const RESPONSE_ID = /^resp_[0-9a-f]{32}$/;

/** A new response id (also its generation job's request id). */
export function newResponseId(): string {
  return `resp_${hex16()}${hex16()}`;
}

export function isResponseId(text: string): boolean {
  return RESPONSE_ID.test(text);
}

/** A new transcript item id (a message added outside a turn: a conversation's items). */
export function newItemId(): string {
  return `msg_${hex16()}${hex16()}`;
}

const FILE_ID = /^file-[0-9a-f]{32}$/;

/** A new uploaded file's id (OpenAI's `file-…` form). */
export function newFileId(): string {
  return `file-${hex16()}${hex16()}`;
}

export function isFileId(text: string): boolean {
  return FILE_ID.test(text);
}

const BATCH_ID = /^batch_[0-9a-f]{32}$/;

export function newBatchId(): string {
  return `batch_${hex16()}${hex16()}`;
}

export function isBatchId(text: string): boolean {
  return BATCH_ID.test(text);
}

/**
 * The id of a file a batch writes (its output or error file): derived from the batch, so a
 * finalization that runs again after a crash replaces the same file instead of adding another.
 */
export function batchFileId(batchId: string, kind: 'output' | 'error'): string {
  return `file-${createHash('sha256').update(`${batchId}:${kind}`).digest('hex').slice(0, 32)}`;
}
