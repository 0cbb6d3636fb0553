/**
 * The state-file parser against real payloads exported by the engine (tiny and small presets):
 * sections tile the payload, their sizes match the model's shape, and parse → serialise is
 * byte-exact. Then the bf16 encoding of the same payloads: half-size recurrent tensors, widened
 * back within bf16 precision, everything else untouched.
 */
import { resolve } from 'node:path';
import { ensureCachedModel, MODEL_PRESETS } from '@bamba/model-gen';
import { SNAPSHOT_HEADER_BYTES } from '@bamba/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Engine } from '../engine/engine.js';
import { createLlamaEngine } from '../engine/llama-engine.js';
import { bf16ToF32, decodeRecurrentBf16, encodeRecurrentBf16, f32ToBf16 } from './recurrent-bf16.js';
import { GgmlType, parseSequenceState, sectionTotals, serializeSequenceState, StateLayoutError } from './state-layout.js';

const CACHE_DIR = resolve('.cache');

describe('bf16 conversion', () => {
  const f32Bytes = (values: number[]) => new Uint8Array(new Float32Array(values).buffer);
  const bf16Bits = (values: number[]) => [...new Uint16Array(f32ToBf16(f32Bytes(values)).buffer)];

  it('rounds to nearest, ties to even, and keeps infinities and NaN', () => {
    // 1 + 2^-8 is half-way between bf16 1 (0x3f80) and 1 + 2^-7 (0x3f81): ties go to the even 0x3f80.
    // 1 + 3 × 2^-8 is half-way between 0x3f81 and 0x3f82: to the even 0x3f82.
    expect(bf16Bits([1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 1 + 2 ** -8 + 2 ** -20, -2.5])).toEqual([0x3f80, 0x3f80, 0x3f82, 0x3f81, 0xc020]);
    expect(bf16Bits([Infinity, -Infinity, 3.4e38])).toEqual([0x7f80, 0xff80, 0x7f80]);
    const [nan] = bf16Bits([NaN]);
    expect(Number.isNaN(new Float32Array(bf16ToF32(new Uint8Array(new Uint16Array([nan!]).buffer)).buffer)[0])).toBe(true);
  });

  it('widens exactly and reads unaligned views', () => {
    const values = [0, -0, 1.5, -3.25, 65536, 2 ** -130];
    const padded = Buffer.alloc(1 + values.length * 4);
    padded.set(f32Bytes(values), 1);
    const narrowed = f32ToBf16(padded.subarray(1));
    const oddNarrowed = Buffer.alloc(1 + narrowed.length);
    oddNarrowed.set(narrowed, 1);
    const widened = new Float32Array(bf16ToF32(oddNarrowed.subarray(1)).buffer);
    expect([...widened]).toEqual(values);
  });
});

for (const preset of ['tiny', 'small'] as const) {
  describe(`state layout on the ${preset} preset`, () => {
    const shape = MODEL_PRESETS[preset];
    let engine: Engine;
    let payload: Uint8Array;
    let heldTokens: readonly number[];

    beforeAll(async () => {
      engine = await createLlamaEngine({ modelPath: ensureCachedModel(CACHE_DIR, preset, 42), device: 'cpu', slots: 2, contextSize: 1024, threads: 1 });
      engine.acquireSlot();
      // The second slot: its KV stream is the second of two, so the first stream is written empty.
      const slot = engine.acquireSlot()!;
      await engine.evaluate(slot, engine.tokenizeChat([{ role: 'user', content: `What does a ${preset} model remember?` }]));
      heldTokens = [...engine.slotTokens(slot)];
      payload = (await engine.exportState(slot, { encoding: 'f32' })).subarray(SNAPSHOT_HEADER_BYTES);
    });
    afterAll(async () => engine?.close());

    it('splits a real payload into sections that tile it and match the model shape', () => {
      const { state, sections } = parseSequenceState(payload);
      expect(state.tokens).toEqual(heldTokens);
      let offset = 0;
      for (const section of sections) {
        expect(section.offset).toBe(offset);
        offset += section.length;
      }
      expect(offset).toBe(payload.length);

      const recurrentLayers = shape.blockCount - shape.attentionLayers.length;
      const innerSize = 2 * shape.embeddingLength;
      const { convKernel, stateSize, groupCount } = shape.ssm;
      const totals = sectionTotals(sections);
      expect(totals['recurrent-conv']).toBe(recurrentLayers * (convKernel - 1) * (innerSize + 2 * groupCount * stateSize) * 4);
      expect(totals['recurrent-ssm']).toBe(recurrentLayers * stateSize * innerSize * 4);
      const kvRowBytes = shape.headCountKv * (shape.embeddingLength / shape.headCount) * 2; // f16
      expect(totals['attention-key']).toBe(shape.attentionLayers.length * heldTokens.length * kvRowBytes);
      expect(totals['attention-value']).toBe(totals['attention-key']);
      expect(totals.metadata).toBeLessThan(4096);

      expect(state.attention?.streams.map((stream) => stream.cells.length)).toEqual([0, heldTokens.length]);
      expect(state.recurrent?.conv).toHaveLength(recurrentLayers);
      expect(state.recurrent?.modelLayerCount).toBe(shape.blockCount);
      expect(new Set(sections.filter((section) => section.kind.startsWith('recurrent')).map((section) => section.ggmlType))).toEqual(new Set([GgmlType.f32]));
    });

    it('serialises a parsed payload back byte for byte', () => {
      const { state } = parseSequenceState(payload);
      expect(Buffer.from(serializeSequenceState(state)).equals(Buffer.from(payload))).toBe(true);
    });

    it('rejects a payload cut short or with bytes added', () => {
      expect(() => parseSequenceState(payload.subarray(0, payload.length - 2))).toThrow(StateLayoutError);
      const longer = new Uint8Array(payload.length + 4);
      longer.set(payload);
      expect(() => parseSequenceState(longer)).toThrow(StateLayoutError);
    });

    it('stores recurrent state as bf16 in half the bytes and widens it back within bf16 precision', async () => {
      const encoded = (await encodeRecurrentBf16(payload))!;
      const original = parseSequenceState(payload);
      const stored = parseSequenceState(encoded);
      const before = sectionTotals(original.sections);
      const after = sectionTotals(stored.sections);
      expect(after['recurrent-conv']).toBe(before['recurrent-conv'] / 2);
      expect(after['recurrent-ssm']).toBe(before['recurrent-ssm'] / 2);
      expect(after['attention-key']).toBe(before['attention-key']);
      expect(after.metadata).toBe(before.metadata);
      expect(stored.state.recurrent?.ssm.every((tensor) => tensor.ggmlType === GgmlType.bf16)).toBe(true);

      const decoded = await decodeRecurrentBf16(encoded);
      expect(decoded.length).toBe(payload.length);
      const widened = parseSequenceState(decoded);
      expect(widened.sections.map(({ kind, offset, length, ggmlType }) => ({ kind, offset, length, ggmlType }))).toEqual(
        original.sections.map(({ kind, offset, length, ggmlType }) => ({ kind, offset, length, ggmlType })),
      );
      for (const section of original.sections) {
        const a = payload.subarray(section.offset, section.offset + section.length);
        const b = decoded.subarray(section.offset, section.offset + section.length);
        if (!section.kind.startsWith('recurrent')) {
          expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
          continue;
        }
        const exact = new Float32Array(new Uint8Array(a).buffer); // copies: a Buffer's slice would not
        const rounded = new Float32Array(new Uint8Array(b).buffer);
        // bf16 keeps 8 significant bits: half an ulp is at most 2^-8 of the value (subnormals aside).
        let outside = 0;
        for (let index = 0; index < exact.length; index++) {
          if (Math.abs(rounded[index]! - exact[index]!) > Math.abs(exact[index]!) * 2 ** -8 + 1e-38) outside++;
        }
        expect(outside).toBe(0);
      }
      // Already-encoded state has nothing f32 left to narrow.
      expect(await encodeRecurrentBf16(encoded)).toBeNull();
    });
  });
}
