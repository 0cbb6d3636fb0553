import { parseRegionMap } from '@bamba/shared';
import { describe, expect, it } from 'vitest';
import { RegionHealth } from './region-health.js';

const map = parseRegionMap('[{"name":"us","url":"http://us"},{"name":"eu","url":"http://eu"}]');

function health(ready: Record<string, boolean> = {}) {
  let now = 0;
  const tracker = new RegionHealth(map, async (region) => ((ready[region] ?? true) ? 'ready' : 'not_ready'), () => now, { failureThreshold: 2, openMs: 1000, readyCacheMs: 500 });
  return { tracker, advance: (ms: number) => { now += ms; } };
}

describe('region health', () => {
  it('opens after repeated failures; once the open period is over, a /readyz answer closes it, never a client request', async () => {
    let now = 0;
    let answers: 'ready' | 'unreachable' = 'unreachable';
    const probes: number[] = [];
    const tracker = new RegionHealth(map, async (region) => { if (region === 'us') probes.push(now); return region === 'us' ? answers : 'ready'; }, () => now, { failureThreshold: 2, openMs: 1000, readyCacheMs: 500 });
    tracker.recordFailure('us');
    expect(tracker.view('us')).toBe('closed');
    tracker.recordFailure('us');
    expect(tracker.view('us')).toBe('open');
    expect(tracker.usable('us', false)).toBe(false);
    expect(tracker.order(['us', 'eu'], true)).toEqual(['eu']); // not tried while eu is usable
    tracker.recordFailure('eu');
    tracker.recordFailure('eu');
    expect(tracker.order(['us', 'eu'], true)).toEqual(['us']); // none usable: the first ranked, as a last resort
    tracker.recordSuccess('eu');
    answers = 'ready';
    now = 600;
    await tracker.refresh(); // answered, but begun within the open period: still open
    expect(tracker.view('us')).toBe('open');
    now = 1000;
    expect(tracker.view('us')).toBe('half-open');
    expect(tracker.usable('us', false)).toBe(false); // no client request is the trial
    now = 1100;
    answers = 'unreachable';
    await tracker.refresh(); // the trial gets no answer: open again
    expect(tracker.view('us')).toBe('open');
    now = 2200;
    answers = 'ready';
    await tracker.refresh();
    expect(probes).toEqual([600, 1100, 2200]);
    expect(tracker.view('us')).toBe('closed');
    expect(tracker.usable('us', true)).toBe(true);
  });

  it('a hop that gets an answer closes the breaker too (a last-resort request that went through)', () => {
    const { tracker } = health();
    tracker.recordFailure('us');
    tracker.recordFailure('us');
    tracker.recordSuccess('us');
    expect(tracker.view('us')).toBe('closed');
  });

  it('skips a region that is up but not ready for new work only, and reads readiness at most once per cache period', async () => {
    const probes: string[] = [];
    let now = 0;
    const tracker = new RegionHealth(map, async (region) => { probes.push(region); return region !== 'eu' ? 'ready' : 'not_ready'; }, () => now, { failureThreshold: 1, openMs: 1000, readyCacheMs: 500 });
    await tracker.refresh();
    await tracker.refresh();
    expect(probes).toEqual(['us', 'eu']);
    expect(tracker.usable('eu', true)).toBe(false);
    expect(tracker.usable('eu', false)).toBe(true); // its own sessions still go home
    now += 500;
    await tracker.refresh();
    expect(probes).toHaveLength(4);
  });

  it('opens the breaker for a region whose /readyz gets no answer (hung or gone), so even its sessions go elsewhere', async () => {
    let now = 0;
    let hung = false;
    const tracker = new RegionHealth(map, async (region) => (region === 'us' && hung ? 'unreachable' : 'ready'), () => now, { failureThreshold: 1, openMs: 1000, readyCacheMs: 500 });
    await tracker.refresh();
    expect(tracker.usable('us', false)).toBe(true);
    hung = true;
    now += 500;
    await tracker.refresh();
    expect(tracker.view('us')).toBe('open');
    expect(tracker.usable('us', false)).toBe(false); // a session's turn goes to its backup
    expect(tracker.usable('eu', false)).toBe(true);
  });
});
