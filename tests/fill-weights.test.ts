/**
 * The GPU host writes the two big models itself (bench/gpu/fill-weights.py, from the preamble and
 * manifest pack.mjs makes): here the same path on a small F16 model with Bamba-9B's padded
 * vocabulary. The file loads in llama.cpp, and the unused tokens' output rows are zero, so
 * greedy answers are text (random weights otherwise write unused tokens, which have none).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createLlamaEngine, GREEDY } from '@bamba/gpu-node';
import { hostWeightsManifest, MODEL_PRESETS, planModel } from '@bamba/model-gen';
import { afterAll, describe, expect, it } from 'vitest';

const work = mkdtempSync(join(tmpdir(), 'bamba-fill-weights-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('fill-weights.py', () => {
  it('writes a model llama.cpp loads, whose unused tokens are never the greedy choice', async () => {
    const shape = { ...MODEL_PRESETS['tiny-wide-vocab'], weightType: 'F16' } as const;
    const { preamble, manifest } = hostWeightsManifest(planModel(shape, 1).document);
    writeFileSync(join(work, 'm.preamble'), preamble);
    writeFileSync(join(work, 'm.json'), JSON.stringify(manifest));
    const out = join(work, 'm.gguf');
    const run = spawnSync('python3', [resolve('bench/gpu/fill-weights.py'), join(work, 'm.preamble'), join(work, 'm.json'), out], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(statSync(out).size).toBe(preamble.length + manifest.dataBytes);

    const output = manifest.tensors.find((tensor) => tensor.name === 'output.weight')!;
    expect(output.zeroFromByte).toBe(shape.embeddingLength * 100 * 2); // 3 special and 97 text tokens
    const data = readFileSync(out).subarray(preamble.length + output.offset, preamble.length + output.offset + output.bytes);
    expect(data.subarray(output.zeroFromByte!).every((byte) => byte === 0)).toBe(true);
    expect(data.subarray(0, output.zeroFromByte!).some((byte) => byte !== 0)).toBe(true);

    const engine = await createLlamaEngine({ modelPath: out, device: 'cpu', slots: 1, contextSize: 512, threads: 1 });
    try {
      const slot = engine.acquireSlot()!;
      const tokens: number[] = [];
      let text = '';
      for await (const generated of engine.generate(slot, engine.tokenizeChat([{ role: 'user', content: 'hello' }]), { ...GREEDY, maxTokens: 16 })) {
        if (generated.token !== null) tokens.push(generated.token);
        text += generated.text;
      }
      expect(tokens.length).toBeGreaterThan(0);
      expect(tokens.every((token) => token < 100)).toBe(true);
      expect(engine.tokenize(text)).toEqual(tokens);
    } finally {
      await engine.close();
    }
  });
});
