/**
 * Puts a conversation's state into a slot as cheaply as it can: the session's resident slot,
 * else a snapshot from Redis (the session's own, or the longest cached prefix of a stateless
 * request or of a session without saved state: a fork of a session's first turns finds the
 * state its source saved at that turn), else nothing (replay: every prompt token is evaluated). A missing, corrupt or
 * incompatible snapshot only costs time: it falls through to replay, never fails the request.
 */
import { PROBED_MESSAGE_BOUNDARIES, SnapshotRejectedError, type ChatMessage, type ResumePath, type SessionRecord } from '@bamba/shared';
import type { Slot } from '../engine/engine.js';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import { PendingSnapshots } from './pending-snapshots.js';
import { acquireSlotEvicting, isPrefix, type ServingDeps } from './serving-deps.js';

export interface RestoredState {
  slot: Slot;
  resume: ResumePath;
  /** Prompt tokens already in the slot (not recomputed). */
  cachedTokens: number;
}

export interface ConversationState {
  tenant: string;
  /** All messages the prompt renders (chat only). */
  messages: ChatMessage[] | null;
  session: SessionRecord | null;
  promptTokens: number[];
}


/** Token sequences at recent message boundaries that the prompt extends, longest first. */
export function boundaryPrefixes(deps: ServingDeps, messages: ChatMessage[], promptTokens: readonly number[]): number[][] {
  return deps.engine.chatBoundaries(messages, PROBED_MESSAGE_BOUNDARIES).filter((tokens) => tokens.length < promptTokens.length && isPrefix(tokens, promptTokens));
}

async function importSnapshot(deps: ServingDeps, slot: Slot, snapshotId: string, promptTokens: readonly number[]): Promise<boolean> {
  const bytes = await deps.snapshots.read(snapshotId);
  if (!bytes) return false;
  try {
    await deps.engine.importState(slot, bytes);
  } catch (error) {
    if (!(error instanceof SnapshotRejectedError)) throw error;
    deps.log(`restore: snapshot ${snapshotId} refused (${error.code}); replaying instead`);
    return false;
  }
  const held = deps.engine.slotTokens(slot);
  if (isPrefix(held, promptTokens) && held.length < promptTokens.length) return true;
  await deps.engine.resetSlot(slot); // a snapshot of some other conversation: start clean
  return false;
}

export async function restoreState(deps: ServingDeps, conversation: ConversationState): Promise<RestoredState> {
  const { session, promptTokens } = conversation;
  if (session) {
    const committed = await committedTokenHash(deps, session);
    const resident = committed ? deps.residency.claim(session.id, committed) : null;
    if (resident) {
      const held = deps.engine.slotTokens(resident);
      if (isPrefix(held, promptTokens) && held.length < promptTokens.length) return { slot: resident, resume: 'resident', cachedTokens: held.length };
      await deps.engine.releaseSlot(resident);
    } else {
      const stale = deps.residency.forget(session.id);
      if (stale) await deps.engine.releaseSlot(stale.slot);
    }
  }
  const slot = await acquireSlotEvicting(deps);
  try {
    if (session?.snapshotId && (await importSnapshot(deps, slot, session.snapshotId, promptTokens))) {
      return { slot, resume: 'snapshot', cachedTokens: deps.engine.slotTokens(slot).length };
    }
    // No saved state of its own (a fork of its first turns), or one that could not be used: an
    // earlier boundary of the same tokens may still be in the cache.
    if (conversation.messages && (session || deps.prefixCache)) {
      const hashes = boundaryPrefixes(deps, conversation.messages, promptTokens).map((tokens) => tokenSequenceHash(tokens));
      await deps.pendingSnapshots.settle(hashes.map((hash) => PendingSnapshots.key(conversation.tenant, deps.engine.info.fingerprint, hash)));
      const found = await deps.snapshots.findPrefix(conversation.tenant, deps.engine.info.fingerprint, hashes);
      if (found && (await importSnapshot(deps, slot, found.snapshotId, promptTokens))) return { slot, resume: 'snapshot', cachedTokens: deps.engine.slotTokens(slot).length };
    }
  } catch (error) {
    await deps.engine.releaseSlot(slot);
    throw error;
  }
  return { slot, resume: 'replay', cachedTokens: 0 };
}

/** Token hash of the session's committed state (its latest snapshot's), or null. */
async function committedTokenHash(deps: ServingDeps, session: SessionRecord): Promise<string | null> {
  if (!session.snapshotId) return null;
  return (await deps.snapshots.info(session.snapshotId))?.tokenHash ?? null;
}
