import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateModel } from './generate-model.js';
import { encodeGgufPreamble, ggufFileBytes } from './gguf-writer.js';
import { planModel } from './model-plan.js';
import { MODEL_PRESETS } from './presets.js';
import { estimateStateBytes, LLAMA_3_1_8B_KV_SHAPE, transformerKvBytes } from './state-size.js';

const directory = mkdtempSync(join(tmpdir(), 'bamba-model-gen-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function metadataOf(preset: keyof typeof MODEL_PRESETS, seed = 1): Map<string, unknown> {
  const plan = planModel(MODEL_PRESETS[preset], seed);
  return new Map(plan.document.metadata.map(([key, value]) => [key, value.kind === 'array' ? value.values : value.value]));
}

describe('model generator', () => {
  it('is deterministic: the same preset and seed give byte-identical files', () => {
    for (const preset of ['tiny', 'granite-4.0-h-shape'] as const) {
      const first = generateModel({ preset, seed: 7, outPath: join(directory, `${preset}-a.gguf`) });
      const second = generateModel({ preset, seed: 7, outPath: join(directory, `${preset}-b.gguf`) });
      expect(first.fileBytes).toBe(second.fileBytes);
      expect(sha256(first.path)).toBe(sha256(second.path));
    }
  });

  it('gives different weights for a different seed', () => {
    const seven = generateModel({ preset: 'tiny', seed: 7, outPath: join(directory, 'seed7.gguf') });
    const eight = generateModel({ preset: 'tiny', seed: 8, outPath: join(directory, 'seed8.gguf') });
    expect(sha256(seven.path)).not.toBe(sha256(eight.path));
  });

  it('plans bamba-9b-shape with Bamba-9B dimensions', () => {
    const metadata = metadataOf('bamba-9b-shape');
    expect(metadata.get('general.architecture')).toBe('granitehybrid');
    expect(metadata.get('granitehybrid.block_count')).toBe(32);
    expect(metadata.get('granitehybrid.embedding_length')).toBe(4096);
    expect(metadata.get('granitehybrid.attention.head_count')).toBe(32);
    const kvHeads = metadata.get('granitehybrid.attention.head_count_kv') as number[];
    expect(kvHeads.flatMap((heads, layer) => (heads > 0 ? [layer] : []))).toEqual([9, 18, 27]);
    expect(new Set(kvHeads.filter((heads) => heads > 0))).toEqual(new Set([8]));
    expect(metadata.get('granitehybrid.ssm.inner_size')).toBe(8192);
    expect(metadata.get('granitehybrid.ssm.time_step_rank')).toBe(128);
    expect(metadata.get('granitehybrid.ssm.state_size')).toBe(128);
    expect(metadata.get('granitehybrid.rope.scaling.finetuned')).toBe(true);
    expect((metadata.get('tokenizer.ggml.tokens') as string[]).length).toBe(128256);
    const plan = planModel(MODEL_PRESETS['bamba-9b-shape'], 1);
    expect(plan.parameterCount).toBeGreaterThan(8.5e9);
    expect(plan.parameterCount).toBeLessThan(10e9);
    expect(ggufFileBytes(plan.document)).toBeGreaterThan(plan.parameterCount * 2); // F16 weights
  });

  it('plans granite-4.0-h-shape without RoPE and with a shared-expert MoE', () => {
    const metadata = metadataOf('granite-4.0-h-shape');
    expect(metadata.get('granitehybrid.rope.scaling.finetuned')).toBe(false);
    expect(metadata.get('granitehybrid.expert_count')).toBe(8);
    expect(metadata.get('granitehybrid.expert_shared_feed_forward_length')).toBe(256);
    const names = planModel(MODEL_PRESETS['granite-4.0-h-shape'], 1).document.tensors.map((tensor) => tensor.name);
    expect(names).toContain('blk.0.ffn_gate_exps.weight');
    expect(names).toContain('blk.0.ffn_down_shexp.weight');
  });

  it('gives the small preset tens of millions of parameters', () => {
    const plan = planModel(MODEL_PRESETS.small, 1);
    expect(plan.parameterCount).toBeGreaterThan(10e6);
    expect(plan.parameterCount).toBeLessThan(100e6);
  });

  it('aligns every tensor offset to 32 bytes', () => {
    const { dataOffsets, preamble } = encodeGgufPreamble(planModel(MODEL_PRESETS.tiny, 1).document);
    expect(preamble.length % 32).toBe(0);
    for (const offset of dataOffsets) expect(offset % 32).toBe(0);
  });
});

describe('state size', () => {
  it("puts Bamba-9B's state at about 119 MiB plus about 12 KiB per token", () => {
    const oneToken = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], 1);
    expect(oneToken.fixedBytes).toBe(29 * (3 * (8192 + 256) * 4 + 128 * 8192 * 4));
    expect(oneToken.perTokenBytes).toBe(3 * 2 * 8 * 128 * 2 + 16);
    // Stored as bf16, the recurrent part halves; attention K/V per token does not change.
    const bf16 = estimateStateBytes(MODEL_PRESETS['bamba-9b-shape'], 1, 'bf16');
    expect(bf16.fixedBytes).toBe(oneToken.fixedBytes / 2);
    expect(bf16.perTokenBytes).toBe(oneToken.perTokenBytes);
    // A transformer of Llama 3.1 8B's shape needs 128 KiB per token instead.
    expect(transformerKvBytes(LLAMA_3_1_8B_KV_SHAPE, 1)).toBe(128 * 1024);
  });
});
