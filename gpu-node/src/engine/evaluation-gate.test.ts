import { describe, expect, it } from 'vitest';
import { EvaluationGate } from './evaluation-gate.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('EvaluationGate', () => {
  it('lets decode steps overlap, and runs a prompt only when nothing else evaluates', async () => {
    const gate = new EvaluationGate();
    const log: string[] = [];
    let releaseDecodes!: () => void;
    const decodesDone = new Promise<void>((resolve) => { releaseDecodes = resolve; });
    const decodeA = gate.shared(async () => { log.push('a start'); await decodesDone; log.push('a end'); });
    const decodeB = gate.shared(async () => { log.push('b start'); await decodesDone; log.push('b end'); });
    await tick();
    const prompt = gate.exclusive(async () => { log.push('prompt'); });
    const decodeC = gate.shared(async () => { log.push('c'); }); // arrives after the prompt: waits for it
    await tick();
    expect(log).toEqual(['a start', 'b start']); // both decodes run together; prompt and c wait
    releaseDecodes();
    await Promise.all([decodeA, decodeB, prompt, decodeC]);
    expect(log).toEqual(['a start', 'b start', 'a end', 'b end', 'prompt', 'c']);
  });

  it('never lets a decode slip in while a handed-over prompt has not started yet', async () => {
    const gate = new EvaluationGate();
    let inside = 0;
    let overlap = false;
    const run = (exclusive: boolean) => (exclusive ? gate.exclusive.bind(gate) : gate.shared.bind(gate))(async () => {
      inside += exclusive ? 100 : 1;
      if (inside > 100 || (exclusive && inside !== 100)) overlap = true;
      await tick();
      inside -= exclusive ? 100 : 1;
    });
    await Promise.all(Array.from({ length: 60 }, (_, index) => run(index % 7 === 0)));
    expect(overlap).toBe(false);
  });

  it('lets an urgent prompt wait ahead of the other waiting prompts, behind earlier urgent ones', async () => {
    const gate = new EvaluationGate();
    const log: string[] = [];
    let release!: () => void;
    const running = gate.exclusive(() => new Promise<void>((resolve) => { release = resolve; }));
    await tick();
    const waiting = [
      gate.exclusive(async () => { log.push('batch 1'); }),
      gate.exclusive(async () => { log.push('batch 2'); }),
      gate.exclusive(async () => { log.push('urgent 1'); }, true),
      gate.exclusive(async () => { log.push('urgent 2'); }, true),
    ];
    release();
    await Promise.all([running, ...waiting]);
    expect(log).toEqual(['urgent 1', 'urgent 2', 'batch 1', 'batch 2']);
  });
});
