/**
 * A request's events, plus one the gateway adds itself: when the gpu-node running the current
 * attempt leaves the registry (it missed its heartbeats: it died), a `generation-retry` for that
 * attempt, as a stopping node writes one. `answerOf` then fails a request that already relayed
 * text with `node_failed` at once, and lets one that did not wait for the retried attempt.
 * Without it, a reader learns of a dead node only when its job's lock expires and another node
 * starts the job again (BAMBA_LOCK_DURATION_MS, 30 s by default), or not at all when the job
 * has no attempts left. A node must be missing from two looks in a row (fresh reads), so a live
 * node whose heartbeat is merely late does not have its streams failed.
 */
import { isFinalEvent, WIRE_VERSION, type StreamEvent } from '@bamba/shared';

/** How often the node of a running attempt is looked up (the registry read is cached and shared). */
export const NODE_WATCH_MS = 1_000;
/** Looks in a row that must miss the node before its attempt counts as gone. */
const MISSES_TO_GONE = 2;

export async function* withNodeWatch(events: AsyncIterable<StreamEvent>, isLive: (nodeId: string) => Promise<boolean>, intervalMs = NODE_WATCH_MS): AsyncGenerator<StreamEvent, void, undefined> {
  const iterator = events[Symbol.asyncIterator]();
  /** The attempt running now and its node; null before a start and once it ended or was reported gone. */
  let watched: { nodeId: string; attempt: number; misses: number } | null = null;
  let goneAttempt: number | null = null;
  /** Resolves the wait of the loop below; null while it is not waiting (the loop looks at `goneAttempt` first). */
  let wake: (() => void) | null = null;
  const timer = setInterval(() => {
    const target = watched;
    if (!target) return;
    void isLive(target.nodeId).then((live) => {
      if (watched !== target) return;
      target.misses = live ? 0 : target.misses + 1;
      if (target.misses < MISSES_TO_GONE) return;
      watched = null;
      goneAttempt = target.attempt;
      wake?.();
    }, () => { /* the registry cannot be read now: look again next time */ });
  }, intervalMs);
  let pending = iterator.next();
  try {
    for (;;) {
      // Already gone while the reader was busy with the last event: no wait. Events already here
      // still come first (`pending` is first in the race), so a buffered end is not overtaken.
      const woken = goneAttempt !== null ? Promise.resolve('woken' as const) : new Promise<'woken'>((resolve) => { wake = () => resolve('woken'); });
      const step = await Promise.race([pending, woken]);
      wake = null;
      if (step === 'woken') {
        if (goneAttempt !== null) {
          yield { v: WIRE_VERSION, type: 'generation-retry', attempt: goneAttempt, reason: 'the gpu-node running it stopped answering (no heartbeat)' };
          goneAttempt = null;
        }
        continue;
      }
      if (step.done) return;
      const event = step.value;
      if (event.type === 'generation-start' && event.attempt > (watched?.attempt ?? 0)) watched = { nodeId: event.nodeId, attempt: event.attempt, misses: 0 };
      else if (isFinalEvent(event) || (event.type === 'generation-retry' && event.attempt === watched?.attempt)) watched = null;
      // Read ahead while the reader handles this event, so what arrives meanwhile is there first.
      pending = iterator.next();
      yield event;
    }
  } finally {
    clearInterval(timer);
    // The read ahead may still fail (a follower past its deadline) with nobody left to hear it.
    pending.catch(() => {});
    // Not awaited: a source's return may wait for the read still pending when a watch event went out.
    void iterator.return?.()?.catch(() => {});
  }
}
