import { describe, expect, it } from 'vitest';
import { SlotScheduler } from './slot-scheduler.js';

describe('SlotScheduler', () => {
  it('reserves up to the slot count and reports capacity as a return value', () => {
    const scheduler = new SlotScheduler(2);
    expect(scheduler.tryReserve()).toBe(true);
    expect(scheduler.tryReserve()).toBe(true);
    expect(scheduler.tryReserve()).toBe(false);
    expect(scheduler.busy).toBe(2);
    scheduler.release();
    expect(scheduler.tryReserve()).toBe(true);
  });

  it('wakes a waiter when a slot is released', async () => {
    const scheduler = new SlotScheduler(1);
    scheduler.tryReserve();
    let woken = false;
    const waiting = scheduler.waitForFree().then(() => { woken = true; });
    await Promise.resolve();
    expect(woken).toBe(false);
    scheduler.release();
    await waiting;
    expect(woken).toBe(true);
  });

  it('treats a release without a reservation as a bug', () => {
    expect(() => new SlotScheduler(1).release()).toThrow(/bug/);
  });
});
