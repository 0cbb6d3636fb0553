import { describe, expect, it } from 'vitest';
import { TTFT_BUCKETS_SECONDS } from '../metrics.js';
import { ACTIVITY_BUCKET_SECONDS, ACTIVITY_BUCKETS, RecentActivity } from './recent-activity.js';

/** A clock the test moves by hand. */
function manualClock(startMs: number) {
  let nowMs = startMs;
  return { nowMs: () => nowMs, advance: (ms: number) => { nowMs += ms; } };
}

const BUCKET_MS = ACTIVITY_BUCKET_SECONDS * 1000;

describe('RecentActivity', () => {
  it('rates tokens per bucket, the current one over its elapsed part', () => {
    const clock = manualClock(1_000 * BUCKET_MS);
    const recent = new RecentActivity(clock);
    recent.recordTokens(100);
    clock.advance(BUCKET_MS);
    recent.recordTokens(30);
    clock.advance(BUCKET_MS / 2);
    const report = recent.report();
    expect(report.tokensPerSecond).toHaveLength(ACTIVITY_BUCKETS);
    expect(report.tokensPerSecond.slice(-2)).toEqual([100 / ACTIVITY_BUCKET_SECONDS, 30 / (ACTIVITY_BUCKET_SECONDS / 2)]);
    expect(report.bucketStartsMs.at(-1)).toBe(1_001 * BUCKET_MS);
  });

  it('counts time to first token into the histogram buckets, the slowest above every bound', () => {
    const recent = new RecentActivity(manualClock(5 * BUCKET_MS));
    for (const seconds of [0.001, 0.005, 0.006, 0.3, 1_000]) recent.recordTimeToFirstToken(seconds);
    const counts = recent.report().ttftCounts;
    expect(counts).toHaveLength(TTFT_BUCKETS_SECONDS.length + 1);
    expect(counts[0]).toBe(2); // ≤ 5 ms, the bound included
    expect(counts[1]).toBe(1);
    expect(counts[TTFT_BUCKETS_SECONDS.indexOf(0.5)]).toBe(1);
    expect(counts.at(-1)).toBe(1);
  });

  it('forgets what is older than the window, even after a long quiet spell', () => {
    const clock = manualClock(7 * BUCKET_MS);
    const recent = new RecentActivity(clock);
    recent.recordTokens(50);
    recent.recordTimeToFirstToken(0.1);
    clock.advance(ACTIVITY_BUCKETS * BUCKET_MS); // the same ring slot again, a window later
    const report = recent.report();
    expect(report.tokensPerSecond.every((rate) => rate === 0)).toBe(true);
    expect(report.ttftCounts.every((count) => count === 0)).toBe(true);
    recent.recordTokens(10); // reuses the stale slot from zero
    expect(recent.report().tokensPerSecond.at(-1)).toBe(10);
  });
});
