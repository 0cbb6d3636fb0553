/**
 * After a chat turn: bring the slot to the turn boundary (the rendered history including the
 * answer and its end-of-turn marker), export a snapshot there, store it, and for a session
 * commit the turn atomically; keep the slot resident for the session's next turn. Recurrent
 * state cannot be rewound, so when the slot went past the boundary (a stop string cut the
 * answer) no snapshot is taken and the next turn replays.
 */
import { ConflictError, type ChatMessage, type GenerationJob } from '@bamba/shared';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import { TurnCommitRefused } from '../state/session-store.js';
import type { SnapshotInfo } from '../state/snapshot-store.js';
import type { ConversationState, RestoredState } from './restore-state.js';
import { isPrefix, type ServingDeps } from './serving-deps.js';

async function snapshotAtBoundary(deps: ServingDeps, restored: RestoredState, conversation: ConversationState, answer: string, indexPrefix: boolean): Promise<SnapshotInfo | null> {
  const boundary = deps.engine.tokenizeChat([...conversation.messages!, { role: 'assistant', content: answer }], { addGenerationPrompt: false });
  const held = deps.engine.slotTokens(restored.slot);
  if (!isPrefix(held, boundary)) return null;
  try {
    await deps.engine.evaluate(restored.slot, boundary.slice(held.length));
  } catch (error) {
    deps.log(`persist: cannot reach the turn boundary (${(error as Error).message}); no snapshot`);
    return null;
  }
  const snapshot = await deps.engine.exportState(restored.slot);
  return deps.snapshots.put(snapshot, {
    tenant: conversation.tenant,
    fingerprint: deps.engine.info.fingerprint,
    tokenCount: boundary.length,
    tokenHash: tokenSequenceHash(boundary),
    indexPrefix,
  });
}

/**
 * Persist what the turn produced and decide the slot's fate. Returns an error when a session
 * turn could not be committed (the caller reports it); the slot is always taken care of.
 */
export async function persistTurn(deps: ServingDeps, job: GenerationJob, conversation: ConversationState, restored: RestoredState, answer: string): Promise<ConflictError | null> {
  const { session } = conversation;
  let keep = false;
  try {
    if (!conversation.messages || (!session && !deps.prefixCache)) return null;
    const snapshot = await snapshotAtBoundary(deps, restored, conversation, answer, true);
    if (!session) return null;
    keep = snapshot !== null && deps.residency.capacity > 0;
    const turnMessages: ChatMessage[] = [...(job.input.kind === 'chat' ? job.input.messages : []), { role: 'assistant', content: answer }];
    try {
      await deps.sessions.commitTurn({
        sessionId: session.id,
        requestId: job.requestId,
        expectedVersion: job.session!.expectedVersion,
        messages: turnMessages,
        snapshotId: snapshot?.snapshotId ?? '',
        tokenCount: snapshot?.tokenCount ?? 0,
        snapshotBytes: snapshot?.bytes ?? 0,
        residentNode: keep ? deps.nodeId : '',
      }, session.snapshotId);
    } catch (error) {
      keep = false;
      if (error instanceof TurnCommitRefused) return new ConflictError(`the turn was not committed (${error.reason}): the session changed or the turn was abandoned`, { code: 'session_conflict' });
      throw error;
    }
    if (keep) {
      for (const pushedOut of deps.residency.keep(session.id, restored.slot, snapshot!.tokenHash, Date.now())) {
        await deps.sessions.clearResidency(pushedOut.sessionId, deps.nodeId).catch(() => {});
        await deps.engine.releaseSlot(pushedOut.slot);
      }
    }
    return null;
  } finally {
    if (!keep) await deps.engine.releaseSlot(restored.slot);
  }
}
