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

  it('hands a released slot to the first waiter: a second waiter cannot snatch it back', async () => {
    const scheduler = new SlotScheduler(1);
    scheduler.tryReserve(); // held, like the region loop blocked on an empty queue
    const order: string[] = [];
    const affinity = scheduler.reserve().then((granted) => { order.push(`affinity ${granted}`); });
    scheduler.release(); // the region loop gives its slot back after an empty fetch...
    expect(scheduler.tryReserve()).toBe(false); // ...and cannot take it again before the waiter runs
    await affinity;
    expect(order).toEqual(['affinity true']);
    expect(scheduler.busy).toBe(1);
  });

  it('serves waiters in order and wakes them without a slot on shutdown', async () => {
    const scheduler = new SlotScheduler(1);
    scheduler.tryReserve();
    const first = scheduler.reserve();
    const second = scheduler.reserve();
    scheduler.release();
    expect(await first).toBe(true);
    scheduler.wakeAll();
    expect(await second).toBe(false);
  });

  it('treats a release without a reservation as a bug', () => {
    expect(() => new SlotScheduler(1).release()).toThrow(/bug/);
  });

  it('never gives a batch reservation the last free slot of a multi-slot node', async () => {
    const scheduler = new SlotScheduler(3);
    expect(scheduler.tryReserve('batch')).toBe(true);
    expect(scheduler.tryReserve('batch')).toBe(true);
    expect(scheduler.tryReserve('batch')).toBe(false); // the last free slot is not for batches
    const batchWaiter = scheduler.reserve('batch');
    expect(scheduler.tryReserve('any')).toBe(true); // an interactive request still finds one
    expect(scheduler.busy).toBe(3);
    scheduler.release(); // the interactive request's slot: free again, but the last free one
    expect(scheduler.busy).toBe(2);
    scheduler.release(); // a batch request's: now the waiting batch reservation may take one
    expect(await batchWaiter).toBe(true);
    expect(scheduler.busy).toBe(2);
    const busy = new SlotScheduler(3);
    busy.tryReserve('any'); // an interactive request (or its snapshot write) holds one
    busy.tryReserve('batch');
    expect(busy.tryReserve('batch')).toBe(false); // one slot stays free for the next interactive one
    expect(new SlotScheduler(1).tryReserve('batch')).toBe(true); // a one-slot node still runs batches
  });

  it('counts a reservation waiting for an interactive job as the kept slot: batches use the rest', async () => {
    const scheduler = new SlotScheduler(2);
    expect(scheduler.tryReserve('any')).toBe(true); // the region loop, about to wait for a job
    const batch = scheduler.reserve('batch'); // no: that would be the last free slot...
    scheduler.awaitingJob(1); // ...until the region loop's reservation waits: it is the kept slot
    expect(await batch).toBe(true);
    expect(scheduler.busy).toBe(2);
    scheduler.awaitingJob(-1); // the region loop got an interactive job: it runs in its own slot
    scheduler.release(); // the batch request ends
    expect(scheduler.tryReserve('batch')).toBe(false); // the freed slot is kept for the next interactive one
  });
});
