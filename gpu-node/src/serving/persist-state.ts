/**
 * After a chat turn: bring the slot to the turn boundary (the rendered history including the
 * answer and its end-of-turn marker), export a snapshot there, store it, and keep the state for
 * the session's next turn (its slot, the host-memory tier). Recurrent state cannot be rewound,
 * so when the slot went past the boundary (a stop string cut the answer) no snapshot is taken
 * and the next turn replays. The snapshot is optional, the transcript is not: a snapshot that
 * cannot be taken or stored only costs the next turn time, never the turn itself.
 *
 * A session turn is two steps around its end event: `commitTranscript` before it (the end event
 * says "committed"), `saveTurnState` after it (the client does not wait for the export and the
 * Redis write; the session's snapshot pointer moves when the snapshot has landed, and a next
 * turn on this node waits for that).
 */
import { answerItemId, ConflictError, ServiceUnavailableError, transcriptItemId, type ChatMessage, type GenerationJob, type SessionRecord, type Tool } from '@bamba/shared';
import { KEEP_SNAPSHOT, TurnCommitRefused, type CommittedTurn, type SnapshotInfo } from '@bamba/region';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import type { ConversationState, RestoredState } from './restore-state.js';
import { isPrefix, type ServingDeps } from './serving-deps.js';

/** A session turn's snapshot cannot be evicted before the session points at it (it follows at once). */
const SNAPSHOT_PIN_MS = 120_000;

/** The tokens of the conversation with its answer, up to the end of the turn: where a snapshot is taken. */
export function turnBoundary(deps: ServingDeps, messages: readonly ChatMessage[], answer: ChatMessage, tools?: readonly Tool[]): number[] {
  return deps.engine.tokenizeChat([...messages, answer], { addGenerationPrompt: false, ...(tools ? { tools } : {}) });
}

interface SavedState {
  info: SnapshotInfo;
  /** The snapshot's bytes, kept by the host tier. */
  bytes: Buffer;
}

async function snapshotAtBoundary(deps: ServingDeps, restored: RestoredState, conversation: ConversationState, boundary: number[]): Promise<SavedState | null> {
  const held = deps.engine.slotTokens(restored.slot);
  if (!isPrefix(held, boundary)) return null;
  try {
    await deps.engine.evaluate(restored.slot, boundary.slice(held.length));
    const bytes = await deps.engine.exportState(restored.slot);
    const info = await deps.snapshots.put(bytes, {
      tenant: conversation.tenant,
      fingerprint: deps.engine.info.fingerprint,
      tokenCount: boundary.length,
      tokenHash: tokenSequenceHash(boundary),
      indexPrefix: true,
      ...(conversation.session ? { sessionId: conversation.session.id, pinMs: SNAPSHOT_PIN_MS } : {}),
    });
    return { info, bytes };
  } catch (error) {
    deps.log(`persist: no snapshot for this turn (${(error as Error).message}); the next turn replays`);
    return null;
  }
}

/** A stateless chat request, after its answer ended: its state as a prefix-cache entry. Frees the slot. */
export async function persistStateless(deps: ServingDeps, conversation: ConversationState, restored: RestoredState, boundary: number[] | null): Promise<void> {
  try {
    if (boundary && conversation.messages && deps.prefixCache) await snapshotAtBoundary(deps, restored, conversation, boundary);
  } finally {
    await deps.engine.releaseSlot(restored.slot);
  }
}

/**
 * Commit a session turn's transcript, before its end event. The session keeps pointing at its
 * previous snapshot until this turn's lands (a next turn elsewhere resumes from that one and
 * evaluates only this turn's tokens), and at this node, which is about to hold the new state.
 * Returns the committed version, or the conflict to report.
 */
export async function commitTranscript(deps: ServingDeps, job: GenerationJob, session: SessionRecord, answer: ChatMessage, turn: CommittedTurn): Promise<number | ConflictError | ServiceUnavailableError> {
  // Nobody got this answer (its gateway died): not committed, as a turn its client hung up on.
  if (await deps.readerGone?.(job).catch(() => false)) {
    return new ServiceUnavailableError('the gateway relaying this turn went away before it was committed; the turn was not committed, send it again', { code: 'reader_gone' });
  }
  // Every transcript entry has an item id (the Conversations API lists them by it).
  const turnMessages: ChatMessage[] = [
    ...(job.input.kind === 'chat' ? job.input.messages : []).map((message, index) => ({ ...message, id: message.id ?? transcriptItemId(job.requestId, index) })),
    { ...answer, id: answerItemId(job.requestId), ...(turn.finishReason === 'length' ? { status: 'incomplete' as const } : {}) },
  ];
  const keepsState = deps.residency.capacity > 0 || deps.hostTier.budgetBytes > 0;
  try {
    const outcome = await deps.sessions.commitTurn({
      sessionId: session.id,
      tenant: session.tenant,
      ttlSeconds: session.ttlSeconds,
      requestId: job.requestId,
      expectedVersion: job.session!.expectedVersion,
      messages: turnMessages,
      // Whatever the session points at when the commit runs (a save that landed meanwhile included).
      snapshotId: KEEP_SNAPSHOT,
      tokenCount: 0,
      snapshotBytes: 0,
      residentNode: keepsState ? deps.nodeId : '',
      turn,
    }, session.snapshotId);
    // Off the answer's path: a lost enqueue is caught up by the session's next commit (whole transcripts travel).
    if (outcome.kind === 'committed') void deps.replicate?.(session.id, outcome.version).catch((error: Error) => deps.log(`persist: replication not queued (${error.message})`));
    deps.afterCommit?.();
    return outcome.version;
  } catch (error) {
    if (error instanceof TurnCommitRefused) return new ConflictError(`the turn was not committed (${error.reason}): the session changed or the turn was abandoned`, { code: 'session_conflict' });
    throw error;
  }
}

/**
 * After a committed turn's end event: snapshot at the boundary, point the session at it (unless
 * a later turn committed first), and keep the state here: in the slot while residency allows,
 * and in the host tier. The slot is always taken care of.
 */
export async function saveTurnState(deps: ServingDeps, conversation: ConversationState, restored: RestoredState, boundary: number[] | null, version: number): Promise<void> {
  const session = conversation.session!;
  /** Set only once the slot is in the residency table: every other way out frees it. */
  let keep = false;
  let held = false;
  try {
    const saved = boundary && conversation.messages ? await snapshotAtBoundary(deps, restored, conversation, boundary) : null;
    if (!saved) return;
    // Turns come here only while this node will hold the state (a slot, or the host tier has room for it).
    const holds = deps.residency.capacity > 0 || deps.hostTier.budgetBytes >= saved.bytes.length;
    const attached = await deps.sessions.attachSnapshot(session, version, saved.info, holds ? deps.nodeId : '').catch((error: Error) => {
      deps.log(`persist: the turn's snapshot was not attached (${error.message}); the next turn resumes from the one before`);
      return false;
    });
    if (!attached) {
      await deps.snapshots.forget(saved.info.snapshotId).catch(() => {});
      return;
    }
    const now = Date.now();
    for (const pushedOut of deps.hostTier.put(session.id, saved.info.snapshotId, saved.bytes, now)) {
      if (pushedOut !== session.id && !deps.residency.has(pushedOut)) await deps.sessions.clearResidency(pushedOut, deps.nodeId).catch(() => {});
    }
    held = deps.hostTier.has(session.id);
    if (deps.residency.capacity > 0) {
      keep = true;
      for (const pushedOut of deps.residency.keep(session.id, restored.slot, saved.info.tokenHash, now)) {
        if (!deps.hostTier.has(pushedOut.sessionId)) await deps.sessions.clearResidency(pushedOut.sessionId, deps.nodeId).catch(() => {});
        await deps.engine.releaseSlot(pushedOut.slot);
      }
    }
  } finally {
    // The commit pointed turns here; nothing of the new state stayed: stop routing them here.
    if (!keep && !held) await deps.sessions.clearResidency(session.id, deps.nodeId).catch(() => {});
    if (!keep) await deps.engine.releaseSlot(restored.slot);
  }
}
