/**
 * The guard's ordering on a fake native context (the fake is the point: the race it prevents is
 * shown on the real engine by llama-engine.test.ts's concurrent-vs-sequential case).
 */
import { describe, expect, it } from 'vitest';
import { guardOutputReorder } from './reorder-guard.js';

/** A native context whose samples finish when the test says so, and which records their starts. */
function fakeContext() {
  const started: string[] = [];
  const finishers = new Map<string, { resolve: (value: string) => void; reject: (error: Error) => void }>();
  class NativeContext {
    async decodeBatch(): Promise<void> {
      started.push('decode');
    }
    sampleToken(name: unknown): Promise<unknown> {
      started.push(String(name));
      return new Promise((resolve, reject) => finishers.set(String(name), { resolve, reject }));
    }
  }
  // As on the real addon, the methods live on the prototype, read-only to assignment.
  Object.defineProperty(NativeContext.prototype, 'sampleToken', { writable: false });
  const native = new NativeContext();
  return { context: { _ctx: native }, native, started, finish: (name: string) => finishers.get(name)!.resolve(name), fail: (name: string) => finishers.get(name)!.reject(new Error(name)) };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('guardOutputReorder', () => {
  it('runs the first sample after a decode alone, then the batch’s other samples together', async () => {
    const fake = fakeContext();
    guardOutputReorder(fake.context);
    await fake.native.decodeBatch();
    const samples = ['a', 'b', 'c'].map((name) => fake.native.sampleToken(name));
    await settle();
    expect(fake.started).toEqual(['decode', 'a']);
    fake.finish('a');
    await settle();
    expect(fake.started).toEqual(['decode', 'a', 'b', 'c']);
    fake.finish('c');
    fake.finish('b');
    expect(await Promise.all(samples)).toEqual(['a', 'b', 'c']);
  });

  it('holds the next batch’s samples behind that batch’s first one, even when the first one fails', async () => {
    const fake = fakeContext();
    guardOutputReorder(fake.context);
    await fake.native.decodeBatch();
    const first = fake.native.sampleToken('a');
    fake.finish('a');
    await first;
    await fake.native.decodeBatch();
    const failing = fake.native.sampleToken('x');
    const waiting = fake.native.sampleToken('y');
    await settle();
    expect(fake.started).toEqual(['decode', 'a', 'decode', 'x']);
    fake.fail('x');
    await expect(failing).rejects.toThrow('x');
    await settle();
    expect(fake.started.at(-1)).toBe('y');
    fake.finish('y');
    expect(await waiting).toBe('y');
  });

  it('refuses a node-llama-cpp whose context has another shape', () => {
    expect(() => guardOutputReorder({})).toThrow(/node-llama-cpp changed/);
    expect(() => guardOutputReorder({ _ctx: { decodeBatch: () => Promise.resolve() } })).toThrow(/node-llama-cpp changed/);
  });
});
