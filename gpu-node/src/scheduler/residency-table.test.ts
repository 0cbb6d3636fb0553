import { describe, expect, it } from 'vitest';
import { ResidencyTable } from './residency-table.js';

describe('ResidencyTable', () => {
  it('gives a slot back only for the expected state', () => {
    const table = new ResidencyTable<number>(2);
    table.keep('a', 0, 'hash-a', 1);
    expect(table.claim('a', 'other-hash')).toBeNull();
    expect(table.claim('a', 'hash-a')).toBe(0);
    expect(table.claim('a', 'hash-a')).toBeNull(); // claimed once
  });

  it('evicts the least recently used resident first', () => {
    const table = new ResidencyTable<number>(3);
    table.keep('old', 0, 'h', 1);
    table.keep('new', 1, 'h', 3);
    table.keep('middle', 2, 'h', 2);
    expect(table.evictLeastRecent()?.sessionId).toBe('old');
    expect(table.evictLeastRecent()?.sessionId).toBe('middle');
    expect(table.size).toBe(1);
  });

  it('pushes out the oldest when over capacity, and keeps nothing at capacity 0', () => {
    const table = new ResidencyTable<number>(1);
    table.keep('first', 0, 'h', 1);
    expect(table.keep('second', 1, 'h', 2).map((resident) => resident.sessionId)).toEqual(['first']);
    const none = new ResidencyTable<number>(0);
    expect(none.keep('x', 5, 'h', 1).map((resident) => resident.slot)).toEqual([5]);
    expect(none.size).toBe(0);
  });

  it('hands back the slot of an older state of the same session when a newer one is kept', () => {
    const table = new ResidencyTable<string>(4);
    table.keep('s', 'slot-a', 'h1', 1);
    expect(table.keep('s', 'slot-b', 'h2', 2).map((resident) => resident.slot)).toEqual(['slot-a']);
    expect(table.keep('s', 'slot-b', 'h3', 3)).toEqual([]); // the same slot is not handed back
    expect(table.size).toBe(1);
  });
});

