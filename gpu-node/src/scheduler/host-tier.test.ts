import { describe, expect, it } from 'vitest';
import { HostTier } from './host-tier.js';

const bytes = (length: number) => ({ length });

describe('host tier', () => {
  it('keeps states within its byte budget, least recently used out first', () => {
    const tier = new HostTier(100);
    expect(tier.put('a', 's1', bytes(40), 1)).toEqual([]);
    expect(tier.put('b', 's2', bytes(40), 2)).toEqual([]);
    expect(tier.get('a', 's1', 3)).not.toBeNull(); // a is now the most recent
    expect(tier.put('c', 's3', bytes(40), 4)).toEqual(['b']);
    expect(tier.bytes).toBe(80);
    expect([tier.has('a'), tier.has('b'), tier.has('c')]).toEqual([true, false, true]);
  });

  it('answers only for the snapshot the session names now, and replaces a session\'s older state', () => {
    const tier = new HostTier(100);
    tier.put('a', 's1', bytes(30), 1);
    expect(tier.get('a', 's0', 2)).toBeNull();
    tier.put('a', 's2', bytes(50), 3);
    expect(tier.get('a', 's1', 4)).toBeNull();
    expect(tier.get('a', 's2', 4)?.length).toBe(50);
    expect(tier.bytes).toBe(50);
    expect(tier.size).toBe(1);
  });

  it('does not keep a state larger than the whole budget, and forgets on request', () => {
    const tier = new HostTier(10);
    expect(tier.put('a', 's1', bytes(11), 1)).toEqual(['a']);
    expect(tier.size).toBe(0);
    tier.put('b', 's1', bytes(5), 1);
    expect(tier.forget('b')).toBe(true);
    expect(tier.bytes).toBe(0);
  });
});
