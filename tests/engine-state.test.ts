/**
 * A snapshot taken in one process continues greedy generation token-for-token in another: the
 * property every resumed conversation stands on.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createLlamaEngine, GREEDY, type Engine } from '@bamba/gpu-node';
import { ensureCachedModel } from '@bamba/model-gen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const SLOTS = 4;
const PREFIX_TOKENS = 40;
const CONTINUATION_TOKENS = 32;
const child = resolve('tests/dist/fixtures/continue-from-snapshot.js');
const directory = mkdtempSync(join(tmpdir(), 'bamba-engine-state-'));
const modelPath = ensureCachedModel(resolve('.cache'), 'tiny', 42);
let engine: Engine;

beforeAll(async () => {
  engine = await createLlamaEngine({ modelPath, device: 'cpu', slots: SLOTS, contextSize: 1024, threads: 1 });
});
afterAll(async () => {
  await engine?.close();
  rmSync(directory, { recursive: true, force: true });
});

async function generate(prompt: number[], maxTokens: number) {
  const slot = engine.acquireSlot()!;
  const tokens: number[] = [];
  const probabilities: number[] = [];
  for await (const generated of engine.generate(slot, prompt, { ...GREEDY, maxTokens }, undefined, { probabilities: true })) {
    if (generated.token === null) continue; // the text held back at the end, no token
    tokens.push(generated.token);
    if (generated.probability === undefined) throw new Error('generate was asked for probabilities');
    probabilities.push(generated.probability);
  }
  return { slot, tokens, probabilities };
}

describe('snapshot continuity across processes', () => {
  for (const targetSlot of [0, 2]) {
    it(`continues identically in a fresh process (restored into slot ${targetSlot})`, async () => {
      const prompt = engine.tokenizeChat([{ role: 'user', content: `Tell me about slot ${targetSlot}.` }]);
      const uninterrupted = await generate(prompt, PREFIX_TOKENS + CONTINUATION_TOKENS);
      await engine.releaseSlot(uninterrupted.slot);
      expect(uninterrupted.tokens).toHaveLength(PREFIX_TOKENS + CONTINUATION_TOKENS);

      const prefix = await generate(prompt, PREFIX_TOKENS);
      const snapshotPath = join(directory, `slot-${targetSlot}.snapshot`);
      writeFileSync(snapshotPath, await engine.exportState(prefix.slot));
      await engine.releaseSlot(prefix.slot);

      const { stdout } = await promisify(execFile)(process.execPath, [
        child, modelPath, snapshotPath, String(prefix.tokens.at(-1)), String(CONTINUATION_TOKENS), String(SLOTS), String(targetSlot),
      ]);
      const resumed = JSON.parse(stdout) as { restoredTokens: number; tokens: number[]; probabilities: number[] };
      // The last sampled token is not yet in the state: prompt + 39 generated tokens were.
      expect(resumed.restoredTokens).toBe(prompt.length + PREFIX_TOKENS - 1);
      expect(resumed.tokens).toEqual(uninterrupted.tokens.slice(PREFIX_TOKENS));
      const expectedProbabilities = uninterrupted.probabilities.slice(PREFIX_TOKENS);
      resumed.probabilities.forEach((probability, index) => expect(probability).toBeCloseTo(expectedProbabilities[index]!, 6));
    });
  }
});
