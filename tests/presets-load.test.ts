/**
 * Every preset small enough for CI loads in the engine and generates; the measured snapshot
 * size matches the computed one (bamba-9b-shape is checked by its plan in model-gen.test.ts).
 * tiny-wide-vocab has Bamba-9B's 128,256-token vocabulary, whose list once overflowed the stack
 * when the engine loaded it (as function arguments), so a 9B model could not be served.
 */
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createLlamaEngine, GREEDY } from '@bamba/gpu-node';
import { ensureCachedModel, estimateStateBytes, MODEL_PRESETS } from '@bamba/model-gen';
import { SNAPSHOT_HEADER_BYTES } from '@bamba/shared';

/** llama.cpp's own state-file header and per-layer records: a few hundred bytes. */
const STATE_FILE_OVERHEAD_LIMIT_BYTES = 4096;

describe('presets load in the engine', () => {
  for (const preset of ['tiny', 'tiny-wide-vocab', 'small', 'granite-4.0-h-shape'] as const) {
    it(`${preset}: loads, generates, and its snapshot is the computed size`, async () => {
      const engine = await createLlamaEngine({ modelPath: ensureCachedModel(resolve('.cache'), preset, 42), device: 'cpu', slots: 2, contextSize: 2048 });
      try {
        const slot = engine.acquireSlot()!;
        const prompt = engine.tokenizeChat([{ role: 'user', content: 'Hello' }]);
        const tokens: number[] = [];
        for await (const generated of engine.generate(slot, prompt, { ...GREEDY, maxTokens: 8 })) { if (generated.token !== null) tokens.push(generated.token); }
        expect(tokens.length).toBeGreaterThan(0);
        const held = engine.slotTokens(slot).length;
        const payloadBytes = (await engine.exportState(slot)).length - SNAPSHOT_HEADER_BYTES;
        const estimate = estimateStateBytes(MODEL_PRESETS[preset], held).totalBytes;
        expect(payloadBytes).toBeGreaterThanOrEqual(estimate);
        expect(payloadBytes - estimate).toBeLessThan(STATE_FILE_OVERHEAD_LIMIT_BYTES);
      } finally {
        await engine.close();
      }
    });
  }
});
