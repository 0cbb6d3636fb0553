/**
 * A prefill-only job: the state at the end of some chat messages, saved as a prefix-cache entry
 * (tenant, fingerprint, token hash), so later requests that extend those messages resume from it.
 * Nothing is generated; the end event reports the prompt tokens and how many were already cached
 * (all of them when the entry existed: then nothing is evaluated).
 */
import { InvalidRequestError, type GenerationJob } from '@bamba/shared';
import type { TokenEvents } from '@bamba/region';
import { tokenSequenceHash } from '../state/snapshot-codec.js';
import { assertAnswerFits } from '../engine/engine.js';
import { restoreState } from './restore-state.js';
import type { ServingDeps } from './serving-deps.js';

export async function prefillPrefix(deps: ServingDeps, job: GenerationJob, events: TokenEvents): Promise<number> {
  if (job.input.kind !== 'chat' || job.session) throw new InvalidRequestError('a prefill-only job takes chat messages and no session', { code: 'invalid_job' });
  const messages = job.input.messages;
  // The answers it prepares (a request's choices) would be refused: so is it, before any work.
  assertAnswerFits(deps.engine.info.contextSize, deps.engine.tokenizeChat(messages).length, job.params);
  const boundary = deps.engine.tokenizeChat(messages, { addGenerationPrompt: false });
  const hash = tokenSequenceHash(boundary);
  const end = (cachedTokens: number) => events.end({ finishReason: 'stop', promptTokens: boundary.length, completionTokens: 0, cachedTokens, timeToFirstTokenMs: 0, totalMs: 0 });
  // Already saved (another batch, or this job's earlier attempt), or nowhere to save it.
  if (!deps.prefixCache || (await deps.snapshots.findPrefix(job.tenant, deps.engine.info.fingerprint, [hash]))) {
    events.start(boundary.length, boundary.length, 'snapshot');
    await end(boundary.length);
    return 0;
  }
  // An earlier boundary of these messages may be cached: start from it.
  const restored = await restoreState(deps, { tenant: job.tenant, messages, session: null, promptTokens: boundary });
  try {
    events.start(boundary.length, restored.cachedTokens, restored.resume);
    await deps.engine.evaluate(restored.slot, boundary.slice(restored.heldTokens));
    const snapshot = await deps.engine.exportState(restored.slot);
    await deps.snapshots.put(snapshot, { tenant: job.tenant, fingerprint: deps.engine.info.fingerprint, tokenCount: boundary.length, tokenHash: hash, indexPrefix: true });
    await end(restored.cachedTokens);
    return 0;
  } finally {
    await deps.engine.releaseSlot(restored.slot);
  }
}
