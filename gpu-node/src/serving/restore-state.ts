/**
 * Puts a conversation's state into a slot as cheaply as it can: the session's resident slot,
 * else its state in this node's host-memory tier, else a snapshot from Redis (the session's own,
 * or the longest cached prefix of a stateless request or of a session without saved state: a
 * fork of a session's first turns finds the state its source saved at that turn), else nothing
 * (replay: every prompt token is evaluated). A missing, corrupt or incompatible snapshot only
 * costs time: it falls through to replay, never fails the request.
 *
 * A replay of a conversation that opens with a long system prompt saves the state at the end
 * of that prompt on the way (once per distinct prompt, tenant and model): the next conversation
 * with the same system prompt resumes from it.
 */
import { PROBED_MESSAGE_BOUNDARIES, SnapshotRejectedError, type ChatMessage, type ResumePath, type SessionRecord, type Tool } from '@bamba/shared';
import type { Slot } from '../engine/engine.js';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import { PendingSnapshots } from './pending-snapshots.js';
import { acquireSlotEvicting, isPrefix, type ServingDeps } from './serving-deps.js';

export interface RestoredState {
  slot: Slot;
  resume: ResumePath;
  /** Prompt tokens restored from saved state (not computed for this request). */
  cachedTokens: number;
  /** Prompt tokens the slot holds now (cached, or evaluated on the way: a system-prompt checkpoint). */
  heldTokens: number;
}

export interface ConversationState {
  tenant: string;
  /** All messages the prompt renders (chat only). */
  messages: ChatMessage[] | null;
  /** The tools the prompt lists (chat only): part of every boundary's tokens. */
  tools?: readonly Tool[];
  session: SessionRecord | null;
  promptTokens: number[];
  /** Look first at the end of all the messages, where a prefill-only job saved them (the job's `sharedPrefill`). */
  sharedPrefill?: boolean;
}

/**
 * Token sequences at recent message boundaries that the prompt extends, longest first. `whole`:
 * the end of all its messages first (where a prefill-only job left them for a request's choices).
 */
export function boundaryPrefixes(deps: ServingDeps, messages: ChatMessage[], promptTokens: readonly number[], tools?: readonly Tool[], whole = false): number[][] {
  const boundaries = deps.engine.chatBoundaries(messages, PROBED_MESSAGE_BOUNDARIES, tools);
  if (whole) boundaries.unshift(deps.engine.tokenizeChat(messages, { addGenerationPrompt: false, ...(tools ? { tools } : {}) }));
  return boundaries.filter((tokens) => tokens.length < promptTokens.length && isPrefix(tokens, promptTokens));
}

/** The tokens of the conversation's system prompt alone, when it is long enough to be worth saving. */
function systemPromptTokens(deps: ServingDeps, messages: ChatMessage[] | null, promptTokens: readonly number[], tools?: readonly Tool[]): number[] | null {
  if (!messages || messages[0]?.role !== 'system' || deps.systemCheckpointTokens <= 0) return null;
  const tokens = deps.engine.tokenizeChat([messages[0]], { addGenerationPrompt: false, ...(tools ? { tools } : {}) });
  return tokens.length >= deps.systemCheckpointTokens && tokens.length < promptTokens.length && isPrefix(tokens, promptTokens) ? tokens : null;
}

async function importBytes(deps: ServingDeps, slot: Slot, bytes: Uint8Array, what: string, promptTokens: readonly number[]): Promise<boolean> {
  try {
    await deps.engine.importState(slot, bytes);
  } catch (error) {
    if (!(error instanceof SnapshotRejectedError)) throw error;
    deps.log(`restore: ${what} refused (${error.code}); replaying instead`);
    return false;
  }
  const held = deps.engine.slotTokens(slot);
  if (isPrefix(held, promptTokens) && held.length < promptTokens.length) return true;
  await deps.engine.resetSlot(slot); // a snapshot of some other conversation: start clean
  return false;
}

async function importSnapshot(deps: ServingDeps, slot: Slot, snapshotId: string, promptTokens: readonly number[]): Promise<boolean> {
  const bytes = await deps.snapshots.read(snapshotId);
  return bytes !== null && (await importBytes(deps, slot, bytes, `snapshot ${snapshotId}`, promptTokens));
}

const restoredAs = (deps: ServingDeps, slot: Slot, resume: ResumePath): RestoredState => {
  const held = deps.engine.slotTokens(slot).length;
  return { slot, resume, cachedTokens: held, heldTokens: held };
};

export async function restoreState(deps: ServingDeps, conversation: ConversationState): Promise<RestoredState> {
  const { session, promptTokens } = conversation;
  if (session) {
    const committed = await committedTokenHash(deps, session);
    const resident = committed ? deps.residency.claim(session.id, committed) : null;
    if (resident) {
      const held = deps.engine.slotTokens(resident);
      if (isPrefix(held, promptTokens) && held.length < promptTokens.length) return { slot: resident, resume: 'resident', cachedTokens: held.length, heldTokens: held.length };
      await deps.engine.releaseSlot(resident);
    } else {
      const stale = deps.residency.forget(session.id);
      if (stale) await deps.engine.releaseSlot(stale.slot);
    }
  }
  const slot = await acquireSlotEvicting(deps);
  try {
    const hosted = session?.snapshotId ? deps.hostTier.get(session.id, session.snapshotId, Date.now()) : null;
    if (hosted && (await importBytes(deps, slot, hosted, `session ${session!.id}'s state in host memory`, promptTokens))) return restoredAs(deps, slot, 'host');
    if (session?.snapshotId && (await importSnapshot(deps, slot, session.snapshotId, promptTokens))) return restoredAs(deps, slot, 'snapshot');
    // No saved state of its own (a fork of its first turns), or one that could not be used: an
    // earlier boundary of the same tokens may still be in the cache.
    if (!conversation.messages || !(session || deps.prefixCache)) return { slot, resume: 'replay', cachedTokens: 0, heldTokens: 0 };
    const system = systemPromptTokens(deps, conversation.messages, promptTokens, conversation.tools);
    const prefixes = boundaryPrefixes(deps, conversation.messages, promptTokens, conversation.tools, conversation.sharedPrefill);
    // A long conversation's probed boundaries do not reach back to its system prompt: look it up too.
    if (system && !prefixes.some((tokens) => tokens.length === system.length)) prefixes.push(system);
    const hashes = prefixes.map((tokens) => tokenSequenceHash(tokens));
    await deps.pendingSnapshots.settle(hashes.map((hash) => PendingSnapshots.key(conversation.tenant, deps.engine.info.fingerprint, hash)));
    const found = await deps.snapshots.findPrefix(conversation.tenant, deps.engine.info.fingerprint, hashes);
    if (found && (await importSnapshot(deps, slot, found.snapshotId, promptTokens))) {
      if (system && prefixes[found.index]!.length === system.length) deps.prefixLookups.systemHits += 1;
      else deps.prefixLookups.turnHits += 1;
      return restoredAs(deps, slot, 'snapshot');
    }
    if (hashes.length > 0) deps.prefixLookups.misses += 1;
    if (system && deps.prefixCache) return await checkpointSystemPrompt(deps, slot, conversation.tenant, system);
  } catch (error) {
    await deps.engine.releaseSlot(slot);
    throw error;
  }
  return { slot, resume: 'replay', cachedTokens: 0, heldTokens: 0 };
}

/**
 * Evaluate the system prompt alone, save the state there as a prefix-cache entry (the Redis
 * write off the request's path; a conversation on this node meanwhile waits for it), and go on
 * from there: the request is still a replay, its prompt evaluated in two steps.
 */
async function checkpointSystemPrompt(deps: ServingDeps, slot: Slot, tenant: string, system: number[]): Promise<RestoredState> {
  await deps.engine.evaluate(slot, system);
  const fingerprint = deps.engine.info.fingerprint;
  const tokenHash = tokenSequenceHash(system);
  try {
    const bytes = await deps.engine.exportState(slot);
    const storing = deps.snapshots.put(bytes, { tenant, fingerprint, tokenCount: system.length, tokenHash, indexPrefix: true })
      .catch((error: Error) => deps.log(`restore: the system prompt's state was not saved (${error.message})`));
    deps.pendingSnapshots.track(PendingSnapshots.key(tenant, fingerprint, tokenHash), storing);
  } catch (error) {
    deps.log(`restore: the system prompt's state was not exported (${(error as Error).message})`);
  }
  return { slot, resume: 'replay', cachedTokens: 0, heldTokens: system.length };
}

/** Token hash of the session's committed state (its latest snapshot's), or null. */
async function committedTokenHash(deps: ServingDeps, session: SessionRecord): Promise<string | null> {
  if (!session.snapshotId) return null;
  return (await deps.snapshots.info(session.snapshotId))?.tokenHash ?? null;
}
