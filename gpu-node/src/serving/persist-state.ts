/**
 * After a chat turn: bring the slot to the turn boundary (the rendered history including the
 * answer and its end-of-turn marker), export a snapshot there, store it, and for a session
 * commit the turn atomically; keep the slot resident for the session's next turn. Recurrent
 * state cannot be rewound, so when the slot went past the boundary (a stop string cut the
 * answer) no snapshot is taken and the next turn replays. The snapshot is optional, the
 * transcript is not: a snapshot that cannot be taken or stored only costs the next turn a
 * replay, never the turn itself.
 */
import { answerItemId, ConflictError, transcriptItemId, type ChatMessage, type GenerationJob } from '@bamba/shared';
import { TurnCommitRefused, type CommittedTurn, type SnapshotInfo } from '@bamba/region';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import type { ConversationState, RestoredState } from './restore-state.js';
import { isPrefix, type ServingDeps } from './serving-deps.js';

/** A session turn's snapshot cannot be evicted before its commit owns it (it follows at once). */
const SNAPSHOT_PIN_MS = 120_000;

/** The tokens of the conversation with its answer, up to the end of the turn: where a snapshot is taken. */
export function turnBoundary(deps: ServingDeps, messages: readonly ChatMessage[], answer: string): number[] {
  return deps.engine.tokenizeChat([...messages, { role: 'assistant', content: answer }], { addGenerationPrompt: false });
}

async function snapshotAtBoundary(deps: ServingDeps, restored: RestoredState, conversation: ConversationState, boundary: number[]): Promise<SnapshotInfo | null> {
  const held = deps.engine.slotTokens(restored.slot);
  if (!isPrefix(held, boundary)) return null;
  try {
    await deps.engine.evaluate(restored.slot, boundary.slice(held.length));
    const snapshot = await deps.engine.exportState(restored.slot);
    return await deps.snapshots.put(snapshot, {
      tenant: conversation.tenant,
      fingerprint: deps.engine.info.fingerprint,
      tokenCount: boundary.length,
      tokenHash: tokenSequenceHash(boundary),
      indexPrefix: true,
      ...(conversation.session ? { sessionId: conversation.session.id, pinMs: SNAPSHOT_PIN_MS } : {}),
    });
  } catch (error) {
    deps.log(`persist: no snapshot for this turn (${(error as Error).message}); the next turn replays`);
    return null;
  }
}

/**
 * Persist what the turn produced and decide the slot's fate. Returns an error when a session
 * turn could not be committed (the caller reports it); the slot is always taken care of.
 */
export async function persistTurn(deps: ServingDeps, job: GenerationJob, conversation: ConversationState, restored: RestoredState, answer: string, turn: CommittedTurn, boundary: number[] | null): Promise<ConflictError | null> {
  const { session } = conversation;
  /** Set only once the slot is in the residency table: every other way out frees it. */
  let keep = false;
  try {
    if (!conversation.messages || !boundary || (!session && !deps.prefixCache)) return null;
    const snapshot = await snapshotAtBoundary(deps, restored, conversation, boundary);
    if (!session) return null;
    const wantResident = snapshot !== null && deps.residency.capacity > 0;
    // Every transcript entry has an item id (the Conversations API lists them by it).
    const turnMessages: ChatMessage[] = [
      ...(job.input.kind === 'chat' ? job.input.messages : []).map((message, index) => ({ ...message, id: message.id ?? transcriptItemId(job.requestId, index) })),
      { role: 'assistant', content: answer, id: answerItemId(job.requestId) },
    ];
    let committedSnapshot = '';
    try {
      const outcome = await deps.sessions.commitTurn({
        sessionId: session.id,
        tenant: session.tenant,
        ttlSeconds: session.ttlSeconds,
        requestId: job.requestId,
        expectedVersion: job.session!.expectedVersion,
        messages: turnMessages,
        snapshotId: snapshot?.snapshotId ?? '',
        tokenCount: snapshot?.tokenCount ?? 0,
        snapshotBytes: snapshot?.bytes ?? 0,
        residentNode: wantResident ? deps.nodeId : '',
        turn,
      }, session.snapshotId);
      committedSnapshot = outcome.kind === 'committed' ? outcome.snapshotId : '';
      // Off the answer's path: a lost enqueue is caught up by the session's next commit (whole transcripts travel).
      if (outcome.kind === 'committed') void deps.replicate?.(session.id, outcome.version).catch((error: Error) => deps.log(`persist: replication not queued (${error.message})`));
      deps.afterCommit?.();
    } catch (error) {
      if (error instanceof TurnCommitRefused) return new ConflictError(`the turn was not committed (${error.reason}): the session changed or the turn was abandoned`, { code: 'session_conflict' });
      throw error;
    }
    // Resident only when the committed state is the one in the slot.
    keep = wantResident && committedSnapshot !== '' && committedSnapshot === snapshot?.snapshotId;
    if (keep) {
      for (const pushedOut of deps.residency.keep(session.id, restored.slot, snapshot!.tokenHash, Date.now())) {
        await deps.sessions.clearResidency(pushedOut.sessionId, deps.nodeId).catch(() => {});
        await deps.engine.releaseSlot(pushedOut.slot);
      }
    } else if (snapshot === null || committedSnapshot === '') {
      await deps.sessions.clearResidency(session.id, deps.nodeId).catch(() => {});
    }
    return null;
  } finally {
    if (!keep) await deps.engine.releaseSlot(restored.slot);
  }
}
